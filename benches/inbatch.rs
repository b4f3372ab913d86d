//! The in-batch contrastive loss on the tile engine against a GEMM and an exact peer, as
//! ratios measured in one run (interleaved rounds, as `interleaved.rs`: each round runs
//! every kernel in turn; a ratio is given from each kernel's best round and as the median
//! of the per-round ratios). It asserts nothing.
//!
//! `cargo bench -p contrastive-benches --bench inbatch` (a minute or two);
//! `-- ROUNDS` changes the number of rounds (default 5); `-- big` times one forward with
//! gradient at N = 65,536, d = 128 instead (minutes).
//!
//! Rows (N = M = 1024, one thread):
//! - `cross/gemm`: our cross-batch forward (X against Y, N·M·d pair-elements) over the
//!   FMA rate of the `gemm` crate's single-threaded sgemm computing X·Yᵀ (N·M·d FMAs):
//!   that sgemm's time over ours. Per backend (AVX2 and AVX-512) and for the best one.
//! - `cross/numkong`: `numkong`'s `euclideans_packed` (f64 accumulation, Y packed once,
//!   outside the timing) over ours.
//! - `symmetric/cross`: the in-batch forward (Y = X, each unordered pair once) over the
//!   cross-batch forward.
//! - `fused/forward`: forward with gradient over the forward (cross and in-batch).
//! - `explicit/ours` (d = 128): building the N² explicit pairs (in blocks of 64 anchors,
//!   32 MiB a side) and calling `batch_with_grad` on them, scattering the pair gradients
//!   back to the batch, over our in-batch forward with gradient.

#[cfg(all(target_arch = "x86_64", not(miri)))]
mod common;

#[cfg(all(target_arch = "x86_64", not(miri)))]
mod x86 {
    use crate::common::lcg_data as data;
    use contrastive::{Backend, ContrastiveLoss};
    use std::hint::black_box;
    use std::time::Instant;

    const N: usize = 1024;
    const DIMS: [usize; 3] = [64, 128, 768];
    const CLASSES: u32 = 16;

    fn seconds(f: &mut dyn FnMut()) -> f64 {
        let start = Instant::now();
        f();
        start.elapsed().as_secs_f64()
    }

    /// A named kernel of a round.
    type Kernel<'a> = (&'static str, Box<dyn FnMut() + 'a>);

    /// `times[k][r]`: kernel `k` in round `r`, each run twice in its turn, the second
    /// timed.
    fn rounds(rounds: usize, kernels: &mut [Kernel<'_>]) -> Vec<Vec<f64>> {
        let mut times = vec![Vec::new(); kernels.len()];
        for r in 0..rounds {
            for t in 0..kernels.len() {
                let k = (t + r) % kernels.len();
                (kernels[k].1)();
                times[k].push(seconds(&mut *kernels[k].1));
            }
        }
        times
    }

    fn best(v: &[f64]) -> f64 {
        v.iter().copied().fold(f64::INFINITY, f64::min)
    }

    /// `den`'s time over `num`'s: from the best rounds, and the median of per-round ratios.
    fn ratio(num: &[f64], den: &[f64]) -> (f64, f64) {
        let mut per: Vec<f64> = num.iter().zip(den).map(|(a, b)| b / a).collect();
        per.sort_by(f64::total_cmp);
        (best(den) / best(num), per[per.len() / 2])
    }

    fn sgemm(x: &[f32], y: &[f32], dim: usize, out: &mut [f32]) {
        // SAFETY: x is N×dim, y is N×dim (row-major), out is N×N row-major; strides
        // describe exactly those buffers.
        unsafe {
            gemm::gemm(
                N,
                N,
                dim,
                out.as_mut_ptr(),
                1,
                N as isize,
                false,
                x.as_ptr(),
                1,
                dim as isize,
                y.as_ptr(),
                dim as isize,
                1,
                0.0f32,
                1.0f32,
                false,
                false,
                false,
                gemm::Parallelism::None,
            )
        }
    }

    /// `-- big`: one in-batch forward with gradient at N = 65,536, d = 128 (the issue's
    /// memory case), timed once, with its scratch size.
    fn big() {
        let (n, dim) = (65_536, 128);
        let x = data(n * dim, 3);
        let classes: Vec<u32> = (0..n as u32)
            .map(|i| i.wrapping_mul(2_654_435_761) % 1024)
            .collect();
        for loss in [ContrastiveLoss::new(9.0), ContrastiveLoss::pml()] {
            let mut scratch = vec![0.0f32; loss.scratch_len(n, dim)];
            let mut grad = vec![0.0f32; n * dim];
            let start = Instant::now();
            let l = loss
                .in_batch_with_grad(&x, dim, &classes, &mut grad, &mut scratch)
                .unwrap();
            println!(
                "N = {n}, d = {dim}, {:?}/{:?}: forward + gradient {:.1} s, scratch {} KiB, loss {l}",
                loss.reduction,
                loss.hinge,
                start.elapsed().as_secs_f64(),
                scratch.len() * 4 / 1024
            );
        }
    }

    pub fn main() {
        if std::env::args().any(|a| a == "big") {
            return big();
        }
        let rounds_n: usize = std::env::args()
            .skip(1)
            .find_map(|a| a.parse().ok())
            .unwrap_or(5);
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .map(String::from)
            })
            .unwrap_or_default();
        println!(
            "{cpu}; best backend {:?}; {rounds_n} rounds",
            Backend::best()
        );
        println!("| case | ratio | best rounds | median of rounds | ours best (ms) |");
        println!("|---|---|---|---|---|");
        for dim in DIMS {
            let (x, y) = (data(N * dim, 1), data(N * dim, 2));
            let xc: Vec<u32> = (0..N as u32)
                .map(|i| i.wrapping_mul(2_654_435_761) % CLASSES)
                .collect();
            let yc: Vec<u32> = (0..N as u32)
                .map(|i| i.wrapping_mul(40_503) % CLASSES)
                .collect();
            let (x, y, xc, yc) = (&x[..], &y[..], &xc[..], &yc[..]);
            // Rows of uniform [-1, 1) components are about √(2d/3) apart: a margin there
            // keeps about half the negative pairs active.
            let margin = (2.0 * dim as f32 / 3.0).sqrt();
            let loss = ContrastiveLoss::new(margin);
            let backends: Vec<Backend> = [Backend::Avx2, Backend::Avx512]
                .into_iter()
                .filter(|b| b.is_available())
                .collect();
            let mut scratch = vec![0.0f32; loss.scratch_len(2 * N, dim)];
            let mut scratch2 = scratch.clone();
            let mut scratch3 = scratch.clone();
            let mut scratch4 = scratch.clone();
            let mut scratch5 = scratch.clone();
            let mut per_backend: Vec<Vec<f32>> = backends.iter().map(|_| scratch.clone()).collect();
            let mut gemm_out = vec![0.0f32; N * N];
            let xt = numkong::Tensor::<f32>::try_from_slice(x, &[N, dim]).unwrap();
            let yt = numkong::Tensor::<f32>::try_from_slice(y, &[N, dim]).unwrap();
            let packed = numkong::PackedMatrix::try_pack(&yt).unwrap();
            let (mut gx, mut gy) = (vec![0.0f32; N * dim], vec![0.0f32; N * dim]);
            let mut g = vec![0.0f32; N * dim];
            // The explicit pairs' buffers (d = 128 only): 64 anchors' pairs, 32 MiB a side.
            let cap = if dim == 128 { 64 * N * dim } else { 0 };
            let (mut ea, mut eb) = (vec![0.0f32; cap], vec![0.0f32; cap]);
            let (mut ega, mut egb) = (vec![0.0f32; cap], vec![0.0f32; cap]);
            let mut labels = vec![0.0f32; 64 * N];
            let mut eg = vec![0.0f32; N * dim];
            let mut kernels: Vec<Kernel<'_>> = Vec::new();
            kernels.push((
                "cross",
                Box::new(|| {
                    black_box(loss.cross_batch(x, y, dim, xc, yc, &mut scratch).unwrap());
                }),
            ));
            kernels.push((
                "gemm",
                Box::new(|| {
                    sgemm(x, y, dim, &mut gemm_out);
                    black_box(&gemm_out);
                }),
            ));
            kernels.push((
                "numkong",
                Box::new(|| {
                    black_box(xt.euclideans_packed(&packed));
                }),
            ));
            kernels.push((
                "symmetric",
                Box::new(|| {
                    black_box(loss.in_batch(x, dim, xc, &mut scratch2).unwrap());
                }),
            ));
            kernels.push((
                "cross+grad",
                Box::new(|| {
                    black_box(
                        loss.cross_batch_with_grad(
                            x,
                            y,
                            dim,
                            xc,
                            yc,
                            &mut gx,
                            &mut gy,
                            &mut scratch3,
                        )
                        .unwrap(),
                    );
                }),
            ));
            kernels.push((
                "symmetric+grad",
                Box::new(|| {
                    black_box(
                        loss.in_batch_with_grad(x, dim, xc, &mut g, &mut scratch4)
                            .unwrap(),
                    );
                }),
            ));
            for (b, s) in backends.iter().zip(per_backend.iter_mut()) {
                let l = loss.with_backend(*b);
                let name: &'static str = if *b == Backend::Avx2 {
                    "cross avx2"
                } else {
                    "cross avx512"
                };
                kernels.push((
                    name,
                    Box::new(move || {
                        black_box(l.cross_batch(x, y, dim, xc, yc, s).unwrap());
                    }),
                ));
            }
            if dim == 128 {
                let _ = &mut scratch5;
                kernels.push((
                    "explicit",
                    Box::new(|| {
                        // Every ordered pair (i, j), i ≠ j, as explicit rows, 64 anchors at a
                        // time; Sum per block, scaled to the mean at the end.
                        let loss = loss.with_reduction(contrastive::Reduction::Sum);
                        eg.fill(0.0);
                        let mut total = 0.0f64;
                        for a0 in (0..N).step_by(64) {
                            let mut rows = 0;
                            for i in a0..a0 + 64 {
                                for j in 0..N {
                                    if i == j {
                                        continue;
                                    }
                                    ea[rows * dim..][..dim].copy_from_slice(&x[i * dim..][..dim]);
                                    eb[rows * dim..][..dim].copy_from_slice(&x[j * dim..][..dim]);
                                    labels[rows] = f32::from(u8::from(xc[i] == xc[j]));
                                    rows += 1;
                                }
                            }
                            let n = rows * dim;
                            total += f64::from(
                                loss.batch_with_grad(
                                    &ea[..n],
                                    &eb[..n],
                                    dim,
                                    &labels[..rows],
                                    &mut ega[..n],
                                    &mut egb[..n],
                                )
                                .unwrap(),
                            );
                            let mut r = 0;
                            for i in a0..a0 + 64 {
                                for j in 0..N {
                                    if i == j {
                                        continue;
                                    }
                                    for k in 0..dim {
                                        eg[i * dim + k] += ega[r * dim + k];
                                        eg[j * dim + k] += egb[r * dim + k];
                                    }
                                    r += 1;
                                }
                            }
                        }
                        black_box((total, &eg));
                    }),
                ));
            }
            let times = rounds(rounds_n, &mut kernels);
            let t = |name: &str| &times[kernels.iter().position(|k| k.0 == name).unwrap()];
            let row = |case: String, num: &[f64], den: &[f64]| {
                let (b, m) = ratio(num, den);
                println!(
                    "| {case} | {:.2} | {b:.2} | {m:.2} | {:.2} |",
                    b,
                    best(num) * 1e3
                );
            };
            row(
                format!("d={dim} cross/gemm (best backend)"),
                t("cross"),
                t("gemm"),
            );
            for b in &backends {
                let name = if *b == Backend::Avx2 {
                    "cross avx2"
                } else {
                    "cross avx512"
                };
                row(
                    format!("d={dim} cross/gemm ({})", b.name()),
                    t(name),
                    t("gemm"),
                );
            }
            row(format!("d={dim} cross/numkong"), t("cross"), t("numkong"));
            // "symmetric/cross" and "fused/forward" are time ratios (lower is better):
            // printed as num/den times.
            let inv = |case: String, num: &[f64], den: &[f64]| {
                let (b, m) = ratio(den, num);
                println!(
                    "| {case} | {b:.2} | {b:.2} | {m:.2} | {:.2} |",
                    best(num) * 1e3
                );
            };
            inv(
                format!("d={dim} symmetric/cross (time)"),
                t("symmetric"),
                t("cross"),
            );
            inv(
                format!("d={dim} fused/forward cross (time)"),
                t("cross+grad"),
                t("cross"),
            );
            inv(
                format!("d={dim} fused/forward symmetric (time)"),
                t("symmetric+grad"),
                t("symmetric"),
            );
            if dim == 128 {
                row(
                    format!("d={dim} explicit/ours (in-batch with gradient)"),
                    t("symmetric+grad"),
                    t("explicit"),
                );
            }
            println!(
                "| d={dim} GFMA/s: ours {:.1}, gemm {:.1}, numkong {:.1} | | | | |",
                (N * N * dim) as f64 / best(t("cross")) / 1e9,
                (N * N * dim) as f64 / best(t("gemm")) / 1e9,
                (N * N * dim) as f64 / best(t("numkong")) / 1e9
            );
        }
    }
}

#[cfg(all(target_arch = "x86_64", not(miri)))]
fn main() {
    x86::main()
}

#[cfg(not(all(target_arch = "x86_64", not(miri))))]
fn main() {}
