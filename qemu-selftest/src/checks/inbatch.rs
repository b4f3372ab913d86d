//! The in-batch loss on the emulated microcontrollers: forward and gradient of every
//! ordered pair of 32 rows of 16 (Hadsell's loss from class labels) in 128 bytes of
//! scratch, against float64 loops, on every backend the target has.

use super::{Failure, Mismatch, close, on, value};
use contrastive::{Backend, ContrastiveLoss};

const N: usize = 32;
const D: usize = 16;
const MARGIN: f32 = 1.5;

/// Deterministic rows in [-0.5, 0.5) and four classes.
fn batch() -> ([f32; N * D], [u32; N]) {
    let mut x = [0.0f32; N * D];
    let mut s = 0x2545_f491u32;
    for v in x.iter_mut() {
        s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        *v = (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
    }
    let mut classes = [0u32; N];
    for (i, c) in classes.iter_mut().enumerate() {
        *c = (i as u32 * 7) % 4;
    }
    (x, classes)
}

fn distance(x: &[f32], i: usize, j: usize) -> (f64, [f64; D]) {
    let mut delta = [0.0f64; D];
    let mut s = 0.0;
    for (k, d) in delta.iter_mut().enumerate() {
        *d = f64::from(x[i * D + k]) - f64::from(x[j * D + k]);
        s += *d * *d;
    }
    (libm::sqrt(s), delta)
}

/// `in_batch_with_grad` of `ContrastiveLoss::new(1.5)` against the float64 loops, with
/// the least scratch the call accepts (128 bytes).
pub(super) fn in_batch_forward_and_gradient() -> Result<(), Failure> {
    let (x, classes) = batch();
    let pairs = (N * (N - 1)) as f64;
    // Every ordered pair: ½·s for similar rows, ½·relu(m − D)² for the others; the
    // gradient of row i gathers both orders of each of its pairs.
    let mut want = 0.0f64;
    for i in 0..N {
        for j in 0..N {
            if i != j {
                let (d, _) = distance(&x, i, j);
                want += if classes[i] == classes[j] {
                    0.5 * d * d
                } else {
                    let h = (f64::from(MARGIN) - d).max(0.0);
                    0.5 * h * h
                };
            }
        }
    }
    want /= pairs;
    for backend in Backend::available() {
        let loss = ContrastiveLoss::new(MARGIN).with_backend(backend);
        let mut scratch = [0.0f32; 32];
        let mut grad = [0.0f32; N * D];
        if loss.min_scratch_len(N, D) > scratch.len() {
            return Err(Failure {
                what: "in_batch scratch",
                backend: Some(backend),
                mismatch: Mismatch::TooLarge {
                    len: loss.min_scratch_len(N, D),
                },
            });
        }
        let got = value(
            "in_batch_with_grad",
            loss.in_batch_with_grad(&x, D, &classes, &mut grad, &mut scratch),
        );
        on(
            backend,
            got.and_then(|got| close("in_batch", None, 0, got, want as f32, 1e-5 * want)),
        )?;
        for i in 0..N {
            let mut g = [0.0f64; D];
            for j in 0..N {
                if i == j {
                    continue;
                }
                let (d, delta) = distance(&x, i, j);
                let k = if classes[i] == classes[j] {
                    2.0
                } else if d < f64::from(MARGIN) {
                    -2.0 * (f64::from(MARGIN) - d) / d
                } else {
                    0.0
                };
                for (gk, dk) in g.iter_mut().zip(delta) {
                    *gk += k * dk / pairs;
                }
            }
            for (k, &gk) in g.iter().enumerate() {
                let got = grad[i * D + k];
                on(
                    backend,
                    close(
                        "in_batch grad",
                        None,
                        i * D + k,
                        got,
                        gk as f32,
                        1e-4 * (1e-3 + gk.abs()),
                    ),
                )?;
            }
        }
    }
    Ok(())
}
