//! A softmax loss on the emulated microcontrollers: InfoNCE (query row `i` against key row
//! `i`, every other key a negative, logit scale 20) on 16 rows of 16, forward and both
//! gradients, in 960 bytes of scratch, against float64 loops, on every backend the target
//! has.

use super::{Failure, Mismatch, close, on, value};
use contrastive::{Backend, InfoNceLoss};

const N: usize = 16;
const D: usize = 16;
const SCALE: f32 = 20.0;
/// `InfoNceLoss::min_scratch_len(16, 16)`: `14·N + D` floats (960 bytes), one key row at a
/// time.
const SCRATCH: usize = 14 * N + D;

/// Deterministic rows in [-0.5, 0.5); each key is its query plus a little noise, so the
/// softmax is neither flat nor saturated.
fn batch() -> ([f32; N * D], [f32; N * D]) {
    let mut s = 0x9e37_79b9u32;
    let mut next = move || {
        s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    };
    let mut x = [0.0f32; N * D];
    let mut y = [0.0f32; N * D];
    for (xv, yv) in x.iter_mut().zip(y.iter_mut()) {
        *xv = next();
        *yv = *xv + 0.5 * next();
    }
    (x, y)
}

/// Row norms in f64.
fn norms(v: &[f32]) -> [f64; N] {
    let mut norm = [0.0f64; N];
    for (n, row) in norm.iter_mut().zip(v.chunks_exact(D)) {
        *n = libm::sqrt(row.iter().map(|&a| f64::from(a) * f64::from(a)).sum());
    }
    norm
}

/// The float64 reference, recomputing what it needs rather than storing N×N or N×D
/// tables in f64 (Cortex-M0's board has 16 KiB of RAM).
struct Reference<'a> {
    x: &'a [f32],
    y: &'a [f32],
    xn: [f64; N],
    yn: [f64; N],
    lse: [f64; N],
}

impl Reference<'_> {
    fn cos(&self, i: usize, j: usize) -> f64 {
        let dot: f64 = (0..D)
            .map(|k| f64::from(self.x[i * D + k]) * f64::from(self.y[j * D + k]))
            .sum();
        dot / (self.xn[i] * self.yn[j])
    }

    /// `hᵢⱼ = ∂L/∂cosᵢⱼ = S·(pᵢⱼ − δᵢⱼ)/N`.
    fn h(&self, i: usize, j: usize) -> f64 {
        let s = f64::from(SCALE);
        let p = libm::exp(s * self.cos(i, j) - self.lse[i]);
        s * (p - if i == j { 1.0 } else { 0.0 }) / N as f64
    }
}

/// `forward_with_grad` of `InfoNceLoss::new(20)` against the float64 loops:
/// `L = mean_i [lse_j(20·cosᵢⱼ) − 20·cosᵢᵢ]`, `∂L/∂xᵢ = Σⱼ hᵢⱼ·(ŷⱼ − cosᵢⱼ·x̂ᵢ)/‖xᵢ‖` and
/// `∂L/∂yⱼ = Σᵢ hᵢⱼ·(x̂ᵢ − cosᵢⱼ·ŷⱼ)/‖yⱼ‖`.
pub(super) fn infonce_forward_and_gradients() -> Result<(), Failure> {
    let (x, y) = batch();
    let s = f64::from(SCALE);
    let mut r = Reference {
        x: &x,
        y: &y,
        xn: norms(&x),
        yn: norms(&y),
        lse: [0.0; N],
    };
    let mut want = 0.0f64;
    for i in 0..N {
        let m = (0..N).fold(f64::NEG_INFINITY, |m, j| m.max(s * r.cos(i, j)));
        let sum: f64 = (0..N).map(|j| libm::exp(s * r.cos(i, j) - m)).sum();
        r.lse[i] = m + libm::log(sum);
        want += r.lse[i] - s * r.cos(i, i);
    }
    want /= N as f64;
    for backend in Backend::available() {
        let loss = InfoNceLoss::new(SCALE).with_backend(backend);
        if loss.min_scratch_len(N, D) > SCRATCH {
            return Err(Failure {
                what: "infonce scratch",
                backend: Some(backend),
                mismatch: Mismatch::TooLarge {
                    len: loss.min_scratch_len(N, D),
                },
            });
        }
        let mut scratch = [0.0f32; SCRATCH];
        let mut grad_x = [0.0f32; N * D];
        let mut grad_y = [0.0f32; N * D];
        let got = value(
            "infonce forward_with_grad",
            loss.forward_with_grad(&x, &y, D, &mut grad_x, &mut grad_y, &mut scratch),
        );
        // The crate's bound, (S·(d + 8) + 64)·u·max(1, |L|), is 2.9e-5 here.
        on(
            backend,
            got.and_then(|got| close("infonce", None, 0, got, want as f32, 3e-5 * want.max(1.0))),
        )?;
        for i in 0..N {
            let mut gx = [0.0f64; D];
            let mut gy = [0.0f64; D];
            for j in 0..N {
                // Row i of x against key j, and row i of y against query j.
                let (hx, cx) = (r.h(i, j), r.cos(i, j));
                let (hy, cy) = (r.h(j, i), r.cos(j, i));
                for k in 0..D {
                    let (xi, yi) = (f64::from(x[i * D + k]), f64::from(y[i * D + k]));
                    let (xj, yj) = (f64::from(x[j * D + k]), f64::from(y[j * D + k]));
                    gx[k] += hx * (yj / r.yn[j] - cx * xi / r.xn[i]) / r.xn[i];
                    gy[k] += hy * (xj / r.xn[j] - cy * yi / r.yn[i]) / r.yn[i];
                }
            }
            for (what, got, want) in [
                ("infonce grad x", &grad_x, &gx),
                ("infonce grad y", &grad_y, &gy),
            ] {
                // Within 1e-4 of the row's largest component (the crate's bound is
                // (S·(d + 8) + N + 64)·u = 3.0e-5 of the row's scale).
                let row_max = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                for k in 0..D {
                    on(
                        backend,
                        close(
                            what,
                            None,
                            i * D + k,
                            got[i * D + k],
                            want[k] as f32,
                            1e-4 * row_max + 1e-7,
                        ),
                    )?;
                }
            }
        }
    }
    Ok(())
}
