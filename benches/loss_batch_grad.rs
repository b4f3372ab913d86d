//! `ContrastiveLoss::batch_with_grad` (Euclidean, mean) on every backend available here,
//! for a batch that fits in cache and one of 64 MiB per side, against the
//! read-two-write-two roofline over the same bytes (reads both sides and the labels,
//! writes two outputs as large as a side). Out of cache, the roofline also runs with
//! streaming stores (`roofline_stream`), the bound for a kernel that skips reading the
//! gradient lines before writing them.
//!
//! `cargo bench --bench loss_batch_grad`; results land in
//! `target/criterion/loss_batch_grad_{in_cache,out_of_cache}/<name>/<d>/`.

#[cfg(target_arch = "x86_64")]
mod common;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::hint::black_box;

    use contrastive::{Backend, ContrastiveLoss};
    use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};

    use crate::common::roofline::{Roofline, RooflineAvx2};
    use crate::common::{AlignedBuf, BATCH_DIMS, Batch, Footprint, margin};

    pub fn loss_batch_grad(c: &mut Criterion) {
        let roofline = Roofline::detect();
        let roofline_avx2 = RooflineAvx2::detect();
        for footprint in Footprint::ALL {
            let mut group = c.benchmark_group(format!("loss_batch_grad_{}", footprint.suffix()));
            if let Footprint::OutOfCache = footprint {
                // Tens of milliseconds per call: see `loss_batch`.
                group.sampling_mode(SamplingMode::Flat).sample_size(10);
            }
            for dim in BATCH_DIMS {
                let batch = Batch::new(footprint, dim);
                let (a, b, labels) = batch.slices();
                let mut grad_a = AlignedBuf::zeroed(a.len());
                let mut grad_b = AlignedBuf::zeroed(a.len());
                let (ga, gb) = (grad_a.as_mut_slice(), grad_b.as_mut_slice());
                group.throughput(Throughput::Bytes(batch.gradient_bytes()));
                for backend in Backend::available() {
                    let loss = ContrastiveLoss::new(margin(dim)).with_backend(backend);
                    group.bench_with_input(
                        BenchmarkId::new(backend.name(), dim),
                        &dim,
                        |bench, &dim| {
                            bench.iter(|| {
                                loss.batch_with_grad(
                                    black_box(a),
                                    black_box(b),
                                    dim,
                                    black_box(labels),
                                    black_box(&mut *ga),
                                    black_box(&mut *gb),
                                )
                            })
                        },
                    );
                }
                // The AVX2 backend's bound on this CPU: the same bytes with 256-bit vectors.
                if let Some(roofline) = roofline_avx2 {
                    let id = BenchmarkId::new("roofline_avx2", dim);
                    group.bench_with_input(id, &dim, |bench, _| {
                        bench.iter(|| {
                            roofline.read2_write2(
                                black_box(a),
                                black_box(b),
                                black_box(&mut *ga),
                                black_box(&mut *gb),
                            );
                            roofline.read_one(black_box(labels))
                        })
                    });
                }
                let Some(roofline) = roofline else { continue };
                group.bench_with_input(BenchmarkId::new("roofline", dim), &dim, |bench, _| {
                    bench.iter(|| {
                        roofline.read2_write2(
                            black_box(a),
                            black_box(b),
                            black_box(&mut *ga),
                            black_box(&mut *gb),
                        );
                        roofline.read_one(black_box(labels))
                    })
                });
                if let Footprint::OutOfCache = footprint {
                    group.bench_with_input(
                        BenchmarkId::new("roofline_stream", dim),
                        &dim,
                        |bench, _| {
                            bench.iter(|| {
                                roofline.read2_write2_stream(
                                    black_box(a),
                                    black_box(b),
                                    black_box(&mut *ga),
                                    black_box(&mut *gb),
                                );
                                roofline.read_one(black_box(labels))
                            })
                        },
                    );
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
    targets = x86::loss_batch_grad
}

#[cfg(target_arch = "x86_64")]
criterion::criterion_main!(benches);

/// The roofline is x86-64 only, and so is criterion (see the dev-dependency table).
#[cfg(not(target_arch = "x86_64"))]
fn main() {}
