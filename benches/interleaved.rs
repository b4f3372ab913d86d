//! Interleaved timing, for a shared machine whose speed drifts over seconds: each round
//! times a roofline and our kernel back to back on the same bytes, and the summary gives
//! the ratio of their best rounds (other tenants only ever slow a round down) beside the
//! median of the per-round ratios. The criterion benches time each kernel seconds apart,
//! so a drift between them lands in their ratios; this one narrows that window to one
//! round. It asserts nothing.
//!
//! `cargo bench --bench interleaved` (under a minute); `cargo bench --bench interleaved --
//! ROUNDS` to change the number of rounds (default 15).

#[cfg(target_arch = "x86_64")]
mod common;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::hint::black_box;
    use std::time::Instant;

    use contrastive::{Backend, ContrastiveLoss};

    use crate::common::{AlignedBuf, BATCH_DIMS, Batch, Footprint, margin, roofline::Roofline};

    /// Pair calls per round: about a millisecond at d = 128.
    const PAIR_CALLS: u32 = 100_000;

    /// Seconds taken by `f`.
    fn seconds(f: impl FnOnce()) -> f64 {
        let start = Instant::now();
        f();
        start.elapsed().as_secs_f64()
    }

    /// `PAIR_CALLS` calls of `f`, each result through `black_box`.
    fn calls<T>(f: impl Fn() -> T) {
        for _ in 0..PAIR_CALLS {
            black_box(f());
        }
    }

    /// Times `kernels` (ours first) `rounds` times each, in turn within each round, and
    /// prints, for every other kernel, its time over ours: from the best round of each, and
    /// the median over rounds.
    fn compare(label: &str, rounds: usize, kernels: &mut [(&str, &mut dyn FnMut())]) {
        let mut times = vec![Vec::with_capacity(rounds); kernels.len()];
        for _ in 0..rounds {
            for ((_, kernel), times) in kernels.iter_mut().zip(&mut times) {
                times.push(seconds(kernel));
            }
        }
        let best = |t: &[f64]| t.iter().copied().fold(f64::INFINITY, f64::min);
        for (k, (name, _)) in kernels.iter().enumerate().skip(1) {
            let mut ratios: Vec<f64> = times[k].iter().zip(&times[0]).map(|(t, o)| t / o).collect();
            ratios.sort_by(f64::total_cmp);
            println!(
                "| {label} | {} / {name} | {:.2} | {:.2} |",
                kernels[0].0,
                best(&times[k]) / best(&times[0]),
                ratios[ratios.len() / 2],
            );
        }
    }

    pub fn main() {
        let rounds = std::env::args()
            .skip(1)
            .find_map(|a| a.parse().ok())
            .unwrap_or(15);
        let Some(roofline) = Roofline::detect() else {
            println!("no AVX-512F: the rooflines cannot run here");
            return;
        };
        println!("{rounds} rounds; above 1: ours is faster than the other kernel.\n");
        println!("| case | ours / other (time ratio) | best rounds | median of rounds |");
        println!("|---|---|---|---|");
        for dim in [16, 128] {
            let (a, b) = (AlignedBuf::random(dim, 1), AlignedBuf::random(dim, 2));
            let (a, b) = (a.as_slice(), b.as_slice());
            compare(
                &format!("pair d={dim}"),
                rounds,
                &mut [
                    ("ours", &mut || {
                        calls(|| contrastive::squared_euclidean(black_box(a), black_box(b)))
                    }),
                    ("roofline", &mut || {
                        calls(|| roofline.read(black_box(a), black_box(b)))
                    }),
                    ("simsimd", &mut || {
                        use simsimd::SpatialSimilarity;
                        calls(|| f32::sqeuclidean(black_box(a), black_box(b)))
                    }),
                ],
            );
        }
        for dim in BATCH_DIMS {
            let batch = Batch::new(Footprint::OutOfCache, dim);
            let (a, b, labels) = (
                batch.a.as_slice(),
                batch.b.as_slice(),
                batch.labels.as_slice(),
            );
            let loss = ContrastiveLoss::new(margin(dim)).with_backend(Backend::best());
            let (mut ga, mut gb) = (AlignedBuf::zeroed(a.len()), AlignedBuf::zeroed(a.len()));
            let (ga, gb) = (ga.as_mut_slice(), gb.as_mut_slice());
            compare(
                &format!("batch forward d={dim}, 64 MiB a side"),
                rounds,
                &mut [
                    ("ours", &mut || {
                        black_box(loss.batch(black_box(a), black_box(b), dim, labels).unwrap());
                    }),
                    ("read roofline", &mut || {
                        black_box(
                            roofline.read(black_box(a), black_box(b)) + roofline.read_one(labels),
                        );
                    }),
                ],
            );
            // Each kernel writes its own outputs; the first round also faults their pages in,
            // which the best round leaves out.
            let mut ours = || {
                black_box(
                    loss.batch_with_grad(black_box(a), black_box(b), dim, labels, ga, gb)
                        .unwrap(),
                );
            };
            let mut roof = AlignedBuf::zeroed(a.len());
            let mut roof_b = AlignedBuf::zeroed(a.len());
            let mut r2w2 = || {
                roofline.read2_write2(
                    black_box(a),
                    black_box(b),
                    roof.as_mut_slice(),
                    roof_b.as_mut_slice(),
                );
                black_box(roofline.read_one(labels));
            };
            compare(
                &format!("batch forward + gradient d={dim}, 64 MiB a side"),
                rounds,
                &mut [("ours", &mut ours), ("r2w2 roofline", &mut r2w2)],
            );
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn main() {
    x86::main()
}

/// The rooflines are x86-64 only (see the dev-dependency table).
#[cfg(not(target_arch = "x86_64"))]
fn main() {}
