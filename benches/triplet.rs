//! In-batch triplet losses, forward and forward with gradient, at N = 1024, d = 128 (one
//! batch of 512 KiB, in L2): batch-hard (sentence-transformers, Euclidean and cosine) and
//! batch-all (hinge on raw rows, PML's normalised rows, and softplus), on the best backend.
//! Compare ratios within one run only (the machine is shared). 64 classes of 16 rows.
//!
//! `cargo bench -p contrastive-benches --bench triplet`; results land in
//! `target/criterion/triplet_inbatch/<name>/`.

#[cfg(target_arch = "x86_64")]
mod common;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::hint::black_box;

    use contrastive::{BatchAllTripletLoss, BatchHardTripletLoss, Distance};
    use criterion::Criterion;

    use crate::common::AlignedBuf;

    const N: usize = 1024;
    const DIM: usize = 128;
    const CLASSES: u32 = 64;

    pub fn triplet(c: &mut Criterion) {
        let x = AlignedBuf::random(N * DIM, 0x7219);
        let x = x.as_slice();
        let classes: Vec<u32> = (0..N as u32).map(|i| i % CLASSES).collect();
        let mut grad = AlignedBuf::zeroed(N * DIM);
        let grad = grad.as_mut_slice();
        let mut group = c.benchmark_group("triplet_inbatch");
        group.sample_size(10);
        let hard = [
            ("batch_hard", BatchHardTripletLoss::new(1.0)),
            (
                "batch_hard_cosine",
                BatchHardTripletLoss::new(0.2).with_distance(Distance::Cosine),
            ),
        ];
        for (name, loss) in hard {
            let mut scratch = vec![0.0; loss.scratch_len(N, DIM)];
            group.bench_function(format!("{name}/forward"), |b| {
                b.iter(|| loss.batch(black_box(x), DIM, &classes, &mut scratch))
            });
            group.bench_function(format!("{name}/with_grad"), |b| {
                b.iter(|| {
                    loss.batch_with_grad(
                        black_box(x),
                        DIM,
                        &classes,
                        black_box(&mut *grad),
                        &mut scratch,
                    )
                })
            });
        }
        let all = [
            ("batch_all", BatchAllTripletLoss::new(0.5)),
            ("batch_all_pml", BatchAllTripletLoss::pml()),
            (
                "batch_all_smooth",
                BatchAllTripletLoss::new(0.5).with_smooth(true),
            ),
        ];
        for (name, loss) in all {
            let mut scratch = vec![0.0; loss.scratch_len(N, DIM)];
            group.bench_function(format!("{name}/forward"), |b| {
                b.iter(|| loss.batch(black_box(x), DIM, &classes, &mut scratch))
            });
            group.bench_function(format!("{name}/with_grad"), |b| {
                b.iter(|| {
                    loss.batch_with_grad(
                        black_box(x),
                        DIM,
                        &classes,
                        black_box(&mut *grad),
                        &mut scratch,
                    )
                })
            });
        }
        group.finish();
    }
}

#[cfg(target_arch = "x86_64")]
criterion::criterion_group! {
    name = benches;
    config = common::config();
    targets = x86::triplet
}
#[cfg(target_arch = "x86_64")]
criterion::criterion_main!(benches);

#[cfg(not(target_arch = "x86_64"))]
fn main() {}
