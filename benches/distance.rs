//! Squared Euclidean distance of one pair: every backend available here, the default
//! dispatch, the peers `simsimd` and `numkong`, and the read-only roofline over the same
//! bytes (`a` and `b`, both in L1 or L2).
//!
//! `cargo bench --bench distance`; results land in `target/criterion/distance/<name>/<d>/`.

#[cfg(target_arch = "x86_64")]
mod common;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::hint::black_box;

    use contrastive::Backend;
    use criterion::{BenchmarkId, Criterion, Throughput};

    use crate::common::{AlignedBuf, roofline::Roofline};

    const DIMS: [usize; 5] = [16, 128, 768, 1536, 4096];

    pub fn distance(c: &mut Criterion) {
        let roofline = Roofline::detect();
        let mut group = c.benchmark_group("distance");
        for dim in DIMS {
            let a = AlignedBuf::random(dim, 1);
            let b = AlignedBuf::random(dim, 2);
            let (a, b) = (a.as_slice(), b.as_slice());
            group.throughput(Throughput::Bytes((2 * dim * size_of::<f32>()) as u64));

            // `black_box` on the inputs of every call, and criterion's on each result: the
            // compiler can neither hoist the computation out of the loop nor drop it. Each
            // result is unwrapped to the number a caller uses, ours (`Result`) and the peers'
            // (`Option`) alike: black-boxing our whole 40-byte `Result` would time stores of
            // an error payload that no caller makes (0.8 ns of a 6.9 ns call at d = 128).
            for backend in Backend::available() {
                group.bench_with_input(BenchmarkId::new(backend.name(), dim), &dim, |bench, _| {
                    bench.iter(|| {
                        backend
                            .squared_euclidean(black_box(a), black_box(b))
                            .unwrap()
                    })
                });
            }
            group.bench_with_input(BenchmarkId::new("dispatch", dim), &dim, |bench, _| {
                bench.iter(|| contrastive::squared_euclidean(black_box(a), black_box(b)).unwrap())
            });
            group.bench_with_input(BenchmarkId::new("simsimd", dim), &dim, |bench, _| {
                use simsimd::SpatialSimilarity;
                bench.iter(|| f32::sqeuclidean(black_box(a), black_box(b)).unwrap())
            });
            group.bench_with_input(BenchmarkId::new("numkong", dim), &dim, |bench, _| {
                use numkong::Euclidean;
                bench.iter(|| <f32 as Euclidean>::sqeuclidean(black_box(a), black_box(b)).unwrap())
            });
            if let Some(roofline) = roofline {
                group.bench_with_input(BenchmarkId::new("roofline", dim), &dim, |bench, _| {
                    bench.iter(|| roofline.read(black_box(a), black_box(b)))
                });
            }
        }
        group.finish();
    }
}

#[cfg(target_arch = "x86_64")]
criterion::criterion_group! {
    name = benches;
    config = common::config();
    targets = x86::distance
}

#[cfg(target_arch = "x86_64")]
criterion::criterion_main!(benches);

/// The peers and the roofline are x86-64 only (see the dev-dependency table).
#[cfg(not(target_arch = "x86_64"))]
fn main() {}
