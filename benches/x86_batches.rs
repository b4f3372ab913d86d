//! The batch forward and forward with gradient of the AVX2 and the AVX-512 backends, each
//! against the roofline of its own vector width, in cache (64 KiB a side) and out of cache
//! (64 MiB a side), timed in interleaved rounds: each round runs a kernel and its roofline
//! back to back (each twice, the second run timed), and the ratio is that of each
//! kernel's best round (other tenants of a shared machine only ever slow a round down),
//! with the median of the per-round ratios beside it. On a CPU with AVX-512 this measures
//! the AVX2 backend on the same machine, forced with `with_backend(Backend::Avx2)`.
//!
//! `cargo bench -p contrastive-benches --bench x86_batches` (about a minute or two);
//! `-- ROUNDS` to change the number of rounds (default 11). It asserts nothing.
//!
//! Every row is `| backend | footprint | d | ratio | best rounds | median of rounds |`,
//! a ratio `ours/roofline` being the roofline's time over ours (1.0: as fast as reading,
//! or reading and writing, the same bytes and doing nothing else). In cache, the last
//! column is nanoseconds per row of ours in its best round.

#[cfg(target_arch = "x86_64")]
mod common;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::hint::black_box;

    use contrastive::{Backend, ContrastiveLoss};

    use crate::common::roofline::{Roofline, RooflineAvx2};
    use crate::common::{AlignedBuf, BATCH_DIMS, Batch, Footprint, margin, rounds_of};

    fn best(t: &[f64]) -> f64 {
        t.iter().copied().fold(f64::INFINITY, f64::min)
    }

    /// The row of the roofline's time over ours: best rounds, and the median of rounds;
    /// and ours per row in its best round (ns).
    fn row(what: &str, ratio: &str, ours: &[f64], roofline: &[f64], rows: usize) {
        let mut ratios: Vec<f64> = roofline.iter().zip(ours).map(|(r, o)| r / o).collect();
        ratios.sort_by(f64::total_cmp);
        println!(
            "| {what} | {ratio} | {:.2} | {:.2} | {:.3} |",
            best(roofline) / best(ours),
            ratios[ratios.len() / 2],
            best(ours) / rows as f64 * 1e9,
        );
    }

    /// A roofline of either width.
    #[derive(Clone, Copy)]
    enum Bound {
        Avx2(RooflineAvx2),
        Avx512(Roofline),
    }

    impl Bound {
        /// The epilogue's bound over `labels` (one float per row): a square root per row,
        /// and a division with `divide`.
        fn epilogue(self, labels: &[f32], divide: bool) -> f32 {
            match self {
                Bound::Avx2(r) => r.epilogue(labels, divide),
                Bound::Avx512(r) => r.epilogue(labels, divide),
            }
        }

        fn read(self, a: &[f32], b: &[f32], labels: &[f32]) -> f32 {
            match self {
                Bound::Avx2(r) => r.read(a, b) + r.read_one(labels),
                Bound::Avx512(r) => r.read(a, b) + r.read_one(labels),
            }
        }

        fn read2_write2(
            self,
            a: &[f32],
            b: &[f32],
            labels: &[f32],
            oa: &mut [f32],
            ob: &mut [f32],
        ) -> f32 {
            match self {
                Bound::Avx2(r) => {
                    r.read2_write2(a, b, oa, ob);
                    r.read_one(labels)
                }
                Bound::Avx512(r) => {
                    r.read2_write2(a, b, oa, ob);
                    r.read_one(labels)
                }
            }
        }
    }

    pub fn main() {
        let rounds = std::env::args()
            .skip(1)
            .find_map(|a| a.parse().ok())
            .unwrap_or(11);
        let mut backends = Vec::new();
        if let (true, Some(r)) = (Backend::Avx2.is_available(), RooflineAvx2::detect()) {
            backends.push((Backend::Avx2, Bound::Avx2(r)));
        }
        if let (true, Some(r)) = (Backend::Avx512.is_available(), Roofline::detect()) {
            backends.push((Backend::Avx512, Bound::Avx512(r)));
        }
        println!("{rounds} rounds; ours/roofline above 1: ours is faster.\n");
        println!("| backend, footprint, d | ratio | best rounds | median of rounds | ns per row |");
        println!("|---|---|---|---|---|");
        for footprint in Footprint::ALL {
            // In cache, a turn is many calls (about a millisecond), so that the timer's
            // resolution and the first call's misses do not count.
            let calls = match footprint {
                Footprint::InCache => 100,
                Footprint::OutOfCache => 1,
            };
            for dim in BATCH_DIMS {
                let batch = Batch::new(footprint, dim);
                let (a, b, labels) = (
                    batch.a.as_slice(),
                    batch.b.as_slice(),
                    batch.labels.as_slice(),
                );
                let (mut ga, mut gb) = (AlignedBuf::zeroed(a.len()), AlignedBuf::zeroed(a.len()));
                let (mut ra, mut rb) = (AlignedBuf::zeroed(a.len()), AlignedBuf::zeroed(a.len()));
                let rows = batch.rows * calls;
                for &(backend, bound) in &backends {
                    let loss = ContrastiveLoss::new(margin(dim)).with_backend(backend);
                    let mut forward = || {
                        for _ in 0..calls {
                            black_box(loss.batch(black_box(a), black_box(b), dim, labels).unwrap());
                        }
                    };
                    let mut read = || {
                        for _ in 0..calls {
                            black_box(bound.read(black_box(a), black_box(b), labels));
                        }
                    };
                    let what = format!("{} {} d={dim}", backend.name(), footprint.suffix());
                    let times = rounds_of(rounds, &mut [&mut forward, &mut read]);
                    row(
                        &what,
                        "forward: ours/read roofline",
                        &times[0],
                        &times[1],
                        rows,
                    );
                    let mut gradient = || {
                        for _ in 0..calls {
                            let (ga, gb) = (ga.as_mut_slice(), gb.as_mut_slice());
                            let sum = loss.batch_with_grad(
                                black_box(a),
                                black_box(b),
                                dim,
                                labels,
                                ga,
                                gb,
                            );
                            black_box(sum.unwrap());
                        }
                    };
                    let mut read2_write2 = || {
                        for _ in 0..calls {
                            let (ra, rb) = (ra.as_mut_slice(), rb.as_mut_slice());
                            black_box(bound.read2_write2(
                                black_box(a),
                                black_box(b),
                                labels,
                                ra,
                                rb,
                            ));
                        }
                    };
                    let times = rounds_of(rounds, &mut [&mut gradient, &mut read2_write2]);
                    let ratio = "forward+gradient: ours/r2w2 roofline";
                    row(&what, ratio, &times[0], &times[1], rows);
                    if let (Footprint::InCache, true) = (footprint, dim <= 3) {
                        // In cache, rows this short are bound by the epilogue's square
                        // root (and, with the gradient, division): both kernels against it.
                        let mut sqrt = || {
                            for _ in 0..calls {
                                black_box(bound.epilogue(black_box(labels), false));
                            }
                        };
                        let mut sqrt_div = || {
                            for _ in 0..calls {
                                black_box(bound.epilogue(black_box(labels), true));
                            }
                        };
                        let times = rounds_of(rounds, &mut [&mut forward, &mut sqrt]);
                        row(
                            &what,
                            "forward: ours/sqrt bound",
                            &times[0],
                            &times[1],
                            rows,
                        );
                        let ns = best(&times[1]) / rows as f64 * 1e9;
                        println!("| {what} | sqrt bound, ns per row | {ns:.3} | | |");
                        let times = rounds_of(rounds, &mut [&mut gradient, &mut sqrt_div]);
                        let ratio = "forward+gradient: ours/sqrt+div bound";
                        row(&what, ratio, &times[0], &times[1], rows);
                        let ns = best(&times[1]) / rows as f64 * 1e9;
                        println!("| {what} | sqrt+div bound, ns per row | {ns:.3} | | |");
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn main() {
    x86::main()
}

/// The rooflines are x86-64 only.
#[cfg(not(target_arch = "x86_64"))]
fn main() {}
