//! The softmax losses against the `gemm` crate's single-threaded sgemm for the same X·Yᵀ
//! (N×d times d×N), one thread, ratios measured in one run (median of interleaved
//! repetitions): CLIP's forward (both directions) and forward with gradient at N = 1024,
//! d ∈ {128, 768}. With `SOFTMAX_LARGE=1`, also one forward with gradient at N = 65,536,
//! d = 128 (a CLIP-sized batch), its time and scratch.
//!
//! `cargo bench -p contrastive-benches --bench softmax`

#[cfg(all(target_arch = "x86_64", not(miri)))]
mod common;

#[cfg(all(target_arch = "x86_64", not(miri)))]
mod x86 {
    use crate::common::lcg_data as data;
    use std::hint::black_box;
    use std::time::Instant;

    use contrastive::{Backend, InfoNceLoss, SupConLoss};

    /// `out = X·Yᵀ` with gemm, one thread.
    fn sgemm(x: &[f32], y: &[f32], n: usize, d: usize, out: &mut [f32]) {
        // SAFETY: `x` is n×d and `y` n×d row-major, `out` n×n; the strides describe exactly
        // those buffers (Yᵀ read as a d×n matrix with column stride d).
        unsafe {
            gemm::gemm(
                n,
                n,
                d,
                out.as_mut_ptr(),
                1,
                n as isize,
                false,
                x.as_ptr(),
                1,
                d as isize,
                y.as_ptr(),
                d as isize,
                1,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            )
        }
    }

    fn median(v: &mut [f64]) -> f64 {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    }

    fn time(f: &mut dyn FnMut()) -> f64 {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64()
    }

    pub fn run() {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .map(|l| l.to_owned())
            })
            .unwrap_or_default();
        println!("{cpu}");
        let reps: usize = std::env::var("SOFTMAX_REPS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(7);
        let n = 1024;
        println!(
            "{:>8} {:>5} {:>10} {:>10} {:>10} {:>10} {:>12} {:>12} {:>12}",
            "backend",
            "d",
            "gemm ms",
            "fwd ms",
            "fwd+g ms",
            "supcon ms",
            "fwd/gemm",
            "grad/fwd",
            "GFMA/s fwd"
        );
        for d in [128usize, 768] {
            let x = data(n * d, 1);
            let y: Vec<f32> = data(n * d, 2)
                .iter()
                .zip(&x)
                .map(|(a, b)| b + 0.3 * a)
                .collect();
            let mut out = vec![0.0f32; n * n];
            for backend in Backend::available()
                .filter(|b| matches!(b, Backend::Avx2 | Backend::Avx512 | Backend::Portable))
            {
                let clip = InfoNceLoss::clip(20.0).with_backend(backend);
                let supcon = SupConLoss::pml().with_backend(backend);
                let classes: Vec<u32> = (0..n as u32).map(|i| i / 4).collect();
                let mut scratch =
                    vec![0.0f32; clip.scratch_len(n, d).max(supcon.scratch_len(n, d))];
                let (mut gx, mut gy) = (vec![0.0f32; n * d], vec![0.0f32; n * d]);
                let (mut tg, mut tf, mut tb, mut ts) = (vec![], vec![], vec![], vec![]);
                for _ in 0..reps {
                    tg.push(time(&mut || {
                        sgemm(black_box(&x), black_box(&y), n, d, &mut out)
                    }));
                    tf.push(time(&mut || {
                        black_box(
                            clip.forward(black_box(&x), black_box(&y), d, &mut scratch)
                                .unwrap(),
                        );
                    }));
                    tb.push(time(&mut || {
                        black_box(
                            clip.forward_with_grad(&x, &y, d, &mut gx, &mut gy, &mut scratch)
                                .unwrap(),
                        );
                    }));
                    ts.push(time(&mut || {
                        black_box(supcon.forward(&x, d, &classes, &mut scratch).unwrap());
                    }));
                }
                let (g, f, b, s) = (
                    median(&mut tg),
                    median(&mut tf),
                    median(&mut tb),
                    median(&mut ts),
                );
                println!(
                    "{:>8} {:>5} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>12.2} {:>12.2} {:>12.1}",
                    backend.name(),
                    d,
                    g * 1e3,
                    f * 1e3,
                    b * 1e3,
                    s * 1e3,
                    g / f,
                    b / f,
                    (n * n * d) as f64 / f / 1e9
                );
            }
        }
        if std::env::var_os("SOFTMAX_LARGE").is_some() {
            let (n, d) = (65_536usize, 128usize);
            let x = data(n * d, 3);
            let y: Vec<f32> = data(n * d, 4)
                .iter()
                .zip(&x)
                .map(|(a, b)| b + 0.3 * a)
                .collect();
            let clip = InfoNceLoss::clip(100.0);
            let mut scratch = vec![0.0f32; clip.scratch_len(n, d)];
            let (mut gx, mut gy) = (vec![0.0f32; n * d], vec![0.0f32; n * d]);
            let t = time(&mut || {
                black_box(
                    clip.forward_with_grad(&x, &y, d, &mut gx, &mut gy, &mut scratch)
                        .unwrap(),
                );
            });
            println!(
                "CLIP N = {n}, d = {d}, forward + gradient on {}: {t:.1} s, scratch {:.2} MiB",
                Backend::best().name(),
                (scratch.len() * 4) as f64 / (1 << 20) as f64
            );
        }
    }
}

fn main() {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    x86::run();
}
