//! `ContrastiveLoss::batch` (Euclidean, mean) on every backend available here, for a batch
//! that fits in cache and one of 64 MiB per side, against the read-only roofline over the
//! same bytes (both sides and the labels).
//!
//! `cargo bench --bench loss_batch`; results land in
//! `target/criterion/loss_batch_{in_cache,out_of_cache}/<name>/<d>/`.

#[cfg(target_arch = "x86_64")]
mod common;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::hint::black_box;

    use contrastive::{Backend, ContrastiveLoss};
    use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};

    use crate::common::roofline::{Roofline, RooflineAvx2};
    use crate::common::{BATCH_DIMS, Batch, Footprint, margin};

    pub fn loss_batch(c: &mut Criterion) {
        let roofline = Roofline::detect();
        let roofline_avx2 = RooflineAvx2::detect();
        for footprint in Footprint::ALL {
            let mut group = c.benchmark_group(format!("loss_batch_{}", footprint.suffix()));
            if let Footprint::OutOfCache = footprint {
                // Milliseconds per call: criterion's default linear sampling would need
                // hundreds of calls per sample, and ten samples of a 64 MiB pass are plenty
                // for a median.
                group.sampling_mode(SamplingMode::Flat).sample_size(10);
            }
            for dim in BATCH_DIMS {
                let batch = Batch::new(footprint, dim);
                let (a, b, labels) = batch.slices();
                group.throughput(Throughput::Bytes(batch.forward_bytes()));
                for backend in Backend::available() {
                    let loss = ContrastiveLoss::new(margin(dim)).with_backend(backend);
                    group.bench_with_input(
                        BenchmarkId::new(backend.name(), dim),
                        &dim,
                        |bench, &dim| {
                            bench.iter(|| {
                                loss.batch(black_box(a), black_box(b), dim, black_box(labels))
                            })
                        },
                    );
                }
                if let Some(roofline) = roofline {
                    group.bench_with_input(BenchmarkId::new("roofline", dim), &dim, |bench, _| {
                        bench.iter(|| {
                            roofline.read(black_box(a), black_box(b))
                                + roofline.read_one(black_box(labels))
                        })
                    });
                }
                // The AVX2 backend's bound on this CPU: the same bytes read with 256-bit loads.
                if let Some(roofline) = roofline_avx2 {
                    let id = BenchmarkId::new("roofline_avx2", dim);
                    group.bench_with_input(id, &dim, |bench, _| {
                        bench.iter(|| {
                            roofline.read(black_box(a), black_box(b))
                                + roofline.read_one(black_box(labels))
                        })
                    });
                }
            }
            group.finish();
        }
    }
}

#[cfg(target_arch = "x86_64")]
criterion::criterion_group! {
    name = benches;
    config = common::config();
    targets = x86::loss_batch
}

#[cfg(target_arch = "x86_64")]
criterion::criterion_main!(benches);

/// The roofline is x86-64 only, and so is criterion (see the dev-dependency table).
#[cfg(not(target_arch = "x86_64"))]
fn main() {}
