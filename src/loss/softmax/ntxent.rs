//! NT-Xent with class labels, as pytorch-metric-learning computes it.

#![forbid(unsafe_code)]

use super::engine::{self, Acc64, At, GradRows, Lse, Pair, take};
use super::softplus;
use crate::Backend;
use crate::kernels::dot_tile::{self, TILE_COLS};

/// NT-Xent (normalised temperature-scaled cross entropy) over every ordered positive pair
/// of a labelled batch, pytorch-metric-learning's `NTXentLoss`. With `sᵢⱼ = cos(xᵢ, xⱼ)/τ`
/// and `N(i)` the rows of another class than `i`:
///
/// ```text
/// ℓᵢₚ = −log( e^sᵢₚ / (e^sᵢₚ + Σ_{n∈N(i)} e^sᵢₙ) )      for i ≠ p of one class
/// L   = mean over those ordered pairs
/// ```
///
/// Other positives of `i` are not in the denominator; with exactly two rows per class
/// (SimCLR's two views) this is SimCLR's NT-Xent. A batch with no positive pair or no
/// negative pair has loss 0 (and gradient 0).
///
/// ```
/// use contrastive::NtXentLoss;
/// let x = [1.0, 0.1, 0.9, 0.2, -1.0, 0.0]; // three rows of dim 2
/// let loss = NtXentLoss::pml(); // τ = 0.07
/// let mut scratch = vec![0.0; loss.scratch_len(3, 2)];
/// let l = loss.forward(&x, 2, &[4, 4, 9], &mut scratch)?;
/// assert!(l >= 0.0);
/// # Ok::<(), contrastive::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NtXentLoss {
    /// `τ`, finite and positive.
    pub temperature: f32,
    /// The kernel backend; `None` runs the best one available.
    pub backend: Option<Backend>,
}

impl Default for NtXentLoss {
    fn default() -> Self {
        Self::pml()
    }
}

impl NtXentLoss {
    /// NT-Xent at temperature `τ`.
    pub const fn new(temperature: f32) -> Self {
        NtXentLoss {
            temperature,
            backend: None,
        }
    }

    /// pytorch-metric-learning's `NTXentLoss()`: τ = 0.07.
    pub const fn pml() -> Self {
        Self::new(0.07)
    }

    super::labelled_batch_api!(
        per_row: 8,
        temperatures: |loss| [("temperature", loss.temperature)]
    );
}

/// Whether the tile at `at` holds an ordered positive pair.
fn has_positive(classes: &[u32], at: At) -> bool {
    (at.i0..at.i0 + at.rows)
        .any(|i| (at.j0..at.j0 + at.cols).any(|j| j != i && classes[j] == classes[i]))
}

/// Forward and optional gradient in `scratch`:
/// `[inv n | lse hi/lo 2n | a 2n | work 3n | panel]`: pass 1 streams each anchor's
/// log-sum-exp over its negatives, pass 2 visits the positive pairs (only tiles that have
/// one), pass 3 the gradient.
fn run(
    loss: &NtXentLoss,
    k: &'static dot_tile::SoftmaxKernels,
    x: &[f32],
    dim: usize,
    classes: &[u32],
    scratch: &mut [f32],
    grad: Option<&mut [f32]>,
) -> f64 {
    let n = x.len() / dim;
    let mut s: &mut [f32] = scratch;
    let inv = take(&mut s, n);
    engine::inverse_norms(x, dim, inv);
    let hi = take(&mut s, n);
    let lo = take(&mut s, n);
    let mut a = Acc64::new(take(&mut s, Acc64::slots(n)), 0);
    a.fill(0.0);
    let work = take(&mut s, 3 * n);
    let panel = s;
    let pair = Pair {
        kernels: k,
        x,
        inv_x: inv,
        y: x,
        inv_y: inv,
        dim,
        width: engine::panel_width(panel.len(), dim),
        row0: 0,
    };
    let has_negative = {
        let mut w: &mut [f32] = &mut *work;
        let mut neg = Lse::take(&mut w, n);
        negatives(loss, &pair, panel, classes, &mut neg);
        neg.split_into(hi, lo);
        neg.max.iter().any(|&m| m != f32::NEG_INFINITY)
    };
    let (sum, pairs) = positives(loss, &pair, panel, classes, hi, lo, &mut a);
    let Some(grad) = grad else {
        return value(sum, pairs, has_negative);
    };
    grad.fill(0.0);
    if !(pairs > 0 && has_negative) {
        return 0.0;
    }
    let mut w: &mut [f32] = &mut *work;
    let mut rows = GradRows::new(grad, dim, &mut w);
    grad_rows(loss, &pair, panel, classes, hi, lo, &a, pairs, &mut rows);
    rows.finish(x, inv);
    value(sum, pairs, has_negative)
}

/// The loss from the positive pairs' sum and count: 0 without a positive or a negative.
pub(super) fn value(sum: f64, pairs: usize, has_negative: bool) -> f64 {
    if pairs > 0 && has_negative {
        sum / pairs as f64
    } else {
        0.0
    }
}

/// Pass 1 over `pair`'s rows: each anchor's log-sum-exp over its negatives, into `neg`
/// (those rows' states).
pub(super) fn negatives(
    loss: &NtXentLoss,
    pair: &Pair<'_>,
    panel: &mut [f32],
    classes: &[u32],
    neg: &mut Lse<'_>,
) {
    let k = pair.kernels;
    let inv_t = 1.0 / loss.temperature;
    let mut l = [0.0f32; TILE_COLS];
    let mut buf = [0.0f32; TILE_COLS];
    pair.walk(
        panel,
        |_| true,
        |at: At, cos| {
            for r in 0..at.rows {
                let i = at.i0 + r;
                for j in 0..at.cols {
                    let negative = classes[at.j0 + j] != classes[i];
                    l[j] = if negative {
                        cos[r][j] * inv_t
                    } else {
                        f32::NEG_INFINITY
                    };
                }
                row_update(neg, k, i, &l[..at.cols], &mut buf[..at.cols]);
            }
        },
    );
}

/// Pass 2 over `pair`'s rows: the positive pairs' losses (their sum and count) and, per
/// anchor, aᵢ = Σₚ σ(lseᵢ − sᵢₚ) into `a` (those rows'). `hi`, `lo`: every row's.
pub(super) fn positives(
    loss: &NtXentLoss,
    pair: &Pair<'_>,
    panel: &mut [f32],
    classes: &[u32],
    hi: &[f32],
    lo: &[f32],
    a: &mut Acc64<'_>,
) -> (f64, usize) {
    let inv_t = 1.0 / loss.temperature;
    let mut sum = 0.0f64;
    let mut pairs = 0usize;
    pair.walk(
        panel,
        |at| has_positive(classes, at),
        |at, cos| {
            for r in 0..at.rows {
                let i = at.i0 + r;
                let lse = f64::from(hi[i]) + f64::from(lo[i]);
                let mut ai = 0.0f64;
                for j in 0..at.cols {
                    let jj = at.j0 + j;
                    if jj == i || classes[jj] != classes[i] {
                        continue;
                    }
                    let z = lse - f64::from(cos[r][j] * inv_t);
                    sum += softplus(z);
                    ai += 1.0 / (1.0 + libm::exp(-z));
                    pairs += 1;
                }
                a.add(i, ai);
            }
        },
    );
    (sum, pairs)
}

/// Pass 3 over `pair`'s rows, into `rows` (those rows' gradient); `hi`, `lo`, `a`:
/// every row's; `pairs`: the batch's count of positive pairs.
#[allow(clippy::too_many_arguments)]
pub(super) fn grad_rows(
    loss: &NtXentLoss,
    pair: &Pair<'_>,
    panel: &mut [f32],
    classes: &[u32],
    hi: &[f32],
    lo: &[f32],
    a: &Acc64<'_>,
    pairs: usize,
    rows: &mut GradRows<'_>,
) {
    let k = pair.kernels;
    let inv_t = 1.0 / loss.temperature;
    let wp = 1.0 / pairs as f32;
    let mut l = [0.0f32; TILE_COLS];
    let mut p = [0.0f32; TILE_COLS];
    let mut q = [0.0f32; TILE_COLS];
    pair.walk_grad(
        panel,
        rows,
        None,
        |_| true,
        |at, cos, h| {
            let c = at.cols;
            let cols = at.j0..at.j0 + c;
            for rr in 0..at.rows {
                let i = at.i0 + rr;
                for j in 0..c {
                    l[j] = cos[rr][j] * inv_t;
                }
                engine::softmax_row(k, &l[..c], hi[i], lo[i], &mut p[..c]);
                engine::softmax_cols(
                    k,
                    &l[..c],
                    &hi[cols.clone()],
                    &lo[cols.clone()],
                    &mut q[..c],
                );
                let ai = a.get(i) as f32;
                for j in 0..c {
                    let jj = at.j0 + j;
                    if jj == i {
                        continue;
                    }
                    // As anchor i (p = e^(sᵢⱼ − lseᵢ)) and as anchor j (q = e^(sᵢⱼ − lseⱼ)).
                    let g = if classes[jj] == classes[i] {
                        -wp / (1.0 + p[j]) - wp / (1.0 + q[j])
                    } else {
                        wp * ai * p[j] + wp * (a.get(jj) as f32) * q[j]
                    };
                    h[rr][j] = g * inv_t;
                }
            }
        },
    );
}

/// The row update, skipping rows whose tile part is all masked (no negative in it).
#[inline]
fn row_update(
    neg: &mut Lse<'_>,
    k: &dot_tile::SoftmaxKernels,
    i: usize,
    l: &[f32],
    buf: &mut [f32],
) {
    if l.iter().all(|&v| v == f32::NEG_INFINITY) {
        return;
    }
    neg.update(k, i, l, buf);
}
