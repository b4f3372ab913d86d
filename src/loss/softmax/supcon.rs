//! Supervised contrastive loss (Khosla et al. 2020), as pytorch-metric-learning and the
//! authors' code compute it.

#![forbid(unsafe_code)]

use super::engine::{self, Acc64, At, GradRows, Lse, Pair, take};
use crate::Backend;
use crate::kernels::dot_tile::{self, TILE_COLS};

/// What an anchor without a positive (no other row of its class) contributes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum NoPositive {
    /// Dropped from the mean, as pytorch-metric-learning's `AvgNonZeroReducer` drops every
    /// anchor whose loss is not positive; a batch with no such anchor has loss 0. "Not
    /// positive" is decided in exact arithmetic: an anchor with a positive and any other
    /// row besides it always counts, however close to 0 its loss rounds (where PML's
    /// float32 would drop a saturated anchor).
    #[default]
    Exclude,
    /// Counted as 0 in the mean over all anchors (the authors' code since their fix).
    Zero,
    /// NaN, as the authors' original code's `0/0` (loss and gradient NaN).
    Nan,
}

/// Supervised contrastive loss, `L_out` of Khosla et al. (2020), one view per row. With
/// `sᵢⱼ = cos(xᵢ, xⱼ)/τ`, `A(i)` every other row and `P(i)` the rows of `i`'s class:
///
/// ```text
/// Lᵢ = (τ/τ_b) · [ log Σ_{a∈A(i)} e^sᵢₐ − (1/|P(i)|) Σ_{p∈P(i)} sᵢₚ ]
/// ```
///
/// reduced by the mean over anchors (see [`NoPositive`] for anchors without positives).
///
/// | preset | τ | τ_b | no positive | who |
/// |---|---|---|---|---|
/// | [`SupConLoss::pml`] | 0.1 | 0.1 | excluded | pytorch-metric-learning `SupConLoss` |
/// | [`SupConLoss::khosla`] | 0.07 | 0.07 | counted as 0 | SupContrast `SupConLoss` |
///
/// ```
/// use contrastive::SupConLoss;
/// let x = [1.0, 0.2, 0.6, 0.8, -0.2, 1.0]; // three rows of dim 2
/// let classes = [0, 0, 1];
/// let loss = SupConLoss::pml();
/// let mut scratch = vec![0.0; loss.scratch_len(3, 2)];
/// let mut grad = [0.0; 6];
/// let l = loss.forward_with_grad(&x, 2, &classes, &mut grad, &mut scratch)?;
/// assert!(l > 0.0);
/// # Ok::<(), contrastive::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SupConLoss {
    /// `τ`, finite and positive.
    pub temperature: f32,
    /// `τ_b`, finite and positive: the loss is scaled by `τ/τ_b`.
    pub base_temperature: f32,
    /// What an anchor without a positive contributes.
    pub no_positive: NoPositive,
    /// The kernel backend; `None` runs the best one available.
    pub backend: Option<Backend>,
}

impl Default for SupConLoss {
    fn default() -> Self {
        Self::pml()
    }
}

impl SupConLoss {
    /// Temperature `τ`, no `τ/τ_b` factor, anchors without positives excluded.
    pub const fn new(temperature: f32) -> Self {
        SupConLoss {
            temperature,
            base_temperature: temperature,
            no_positive: NoPositive::Exclude,
            backend: None,
        }
    }

    /// pytorch-metric-learning's `SupConLoss()`: τ = 0.1, anchors without positives
    /// excluded (its `AvgNonZeroReducer`).
    pub const fn pml() -> Self {
        Self::new(0.1)
    }

    /// The authors' `SupConLoss()`: τ = τ_b = 0.07, anchors without positives counted as 0.
    pub const fn khosla() -> Self {
        SupConLoss {
            temperature: 0.07,
            base_temperature: 0.07,
            no_positive: NoPositive::Zero,
            backend: None,
        }
    }

    /// The same loss with base temperature `τ_b`.
    pub const fn with_base_temperature(mut self, base_temperature: f32) -> Self {
        self.base_temperature = base_temperature;
        self
    }

    /// The same loss with another rule for anchors without positives.
    pub const fn with_no_positive(mut self, no_positive: NoPositive) -> Self {
        self.no_positive = no_positive;
        self
    }

    super::labelled_batch_api!(
        per_row: 10,
        temperatures: |loss| [("temperature", loss.temperature), ("base_temperature", loss.base_temperature)]
    );
}

/// Forward and optional gradient in `scratch`:
/// `[inv n | lse hi/lo 2n | weight n | positives n | work 5n | panel]`.
fn run(
    loss: &SupConLoss,
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
    let weight = take(&mut s, n);
    let npos = take(&mut s, n);
    let work = take(&mut s, 5 * n);
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
    let (value, any_nan) = {
        let mut w: &mut [f32] = &mut *work;
        let mut row = Lse::take(&mut w, n);
        let mut pos_sum = Acc64::new(take(&mut w, Acc64::slots(n)), 0);
        pos_sum.fill(0.0);
        forward_rows(loss, &pair, panel, classes, &mut row, &mut pos_sum, npos);
        row.split_into(hi, lo);
        weights(loss, &row, &pos_sum, npos, weight)
    };
    let Some(grad) = grad else {
        return value;
    };
    if any_nan {
        // The original code's 0/0: the whole gradient is NaN, as autograd makes it.
        grad.fill(f32::NAN);
        return value;
    }
    let mut w: &mut [f32] = &mut *work;
    let mut rows = GradRows::new(grad, dim, &mut w);
    let st = Anchors {
        hi,
        lo,
        weight,
        npos,
    };
    grad_rows(loss, &pair, panel, classes, &st, &mut rows);
    rows.finish(x, inv);
    value
}

/// The forward walk over `pair`'s rows (from `pair.row0`), into those rows' states: the
/// log-sum-exp over the other rows in `row`, the sum of the positives' logits in
/// `pos_sum` and their count in `npos` (indexed from `pair.row0`).
pub(super) fn forward_rows(
    loss: &SupConLoss,
    pair: &Pair<'_>,
    panel: &mut [f32],
    classes: &[u32],
    row: &mut Lse<'_>,
    pos_sum: &mut Acc64<'_>,
    npos: &mut [f32],
) {
    let k = pair.kernels;
    let inv_t = 1.0 / loss.temperature;
    let row0 = pair.row0;
    npos.fill(0.0);
    let mut l = [0.0f32; TILE_COLS];
    let mut buf = [0.0f32; TILE_COLS];
    pair.walk(
        panel,
        |_| true,
        |at: At, cos| {
            for r in 0..at.rows {
                let i = at.i0 + r;
                let mut ps = 0.0f64;
                let mut pc = 0.0f32;
                for j in 0..at.cols {
                    let jj = at.j0 + j;
                    let v = cos[r][j] * inv_t;
                    l[j] = if jj == i { f32::NEG_INFINITY } else { v };
                    if jj != i && classes[jj] == classes[i] {
                        ps += f64::from(v);
                        pc += 1.0;
                    }
                }
                row.update(k, i, &l[..at.cols], &mut buf[..at.cols]);
                pos_sum.add(i, ps);
                npos[i - row0] += pc;
            }
        },
    );
}

/// The loss from every anchor's state, and each anchor's weight in the gradient (0 for
/// an anchor that is not kept or has no positive); whether an anchor's loss is NaN.
pub(super) fn weights(
    loss: &SupConLoss,
    row: &Lse<'_>,
    pos_sum: &Acc64<'_>,
    npos: &[f32],
    weight: &mut [f32],
) -> (f64, bool) {
    let n = npos.len();
    let factor = f64::from(loss.temperature) / f64::from(loss.base_temperature);
    let mut any_nan = false;
    let mut sum = 0.0f64;
    let mut count = 0usize;
    for i in 0..n {
        let mut li = if npos[i] > 0.0 {
            factor * (row.value(i) - pos_sum.get(i) / f64::from(npos[i]))
        } else if loss.no_positive == NoPositive::Nan {
            f64::NAN
        } else {
            0.0
        };
        // An anchor's loss is > 0 in exact arithmetic whenever it has two positives, or
        // one and a negative (a log-sum-exp exceeds the mean of two or more of its
        // terms, and its one term by the others'). A saturated anchor's rounded value
        // can be 0 or a little below: it is clamped, and whether it counts in the mean
        // is decided from the counts, not from its sign.
        if li < 0.0 {
            li = 0.0;
        }
        any_nan |= li.is_nan();
        let positive = npos[i] >= 2.0 || (npos[i] > 0.0 && (npos[i] as usize) < n - 1);
        let kept = match loss.no_positive {
            NoPositive::Exclude => positive || li.is_nan(),
            NoPositive::Zero | NoPositive::Nan => true,
        };
        if kept {
            sum += li;
            count += 1;
        }
        // Mark kept anchors with a positive; scaled by 1/count below.
        weight[i] = if kept && npos[i] > 0.0 { 1.0 } else { 0.0 };
    }
    let value = if count == 0 { 0.0 } else { sum / count as f64 };
    let scale = if count == 0 { 0.0 } else { 1.0 / count as f32 };
    for w in weight.iter_mut() {
        *w *= scale;
    }
    (value, any_nan)
}

/// Every anchor's statistics for the gradient pass.
#[derive(Clone, Copy)]
pub(super) struct Anchors<'a> {
    /// The log-sum-exp, `hi + lo`.
    pub hi: &'a [f32],
    pub lo: &'a [f32],
    /// The weight in the gradient (see [`weights`]).
    pub weight: &'a [f32],
    /// The count of positives.
    pub npos: &'a [f32],
}

/// The gradient walk over `pair`'s rows, into `rows` (those rows' gradient).
pub(super) fn grad_rows(
    loss: &SupConLoss,
    pair: &Pair<'_>,
    panel: &mut [f32],
    classes: &[u32],
    st: &Anchors<'_>,
    rows: &mut GradRows<'_>,
) {
    let k = pair.kernels;
    let inv_t = 1.0 / loss.temperature;
    let f = (f64::from(loss.temperature) / f64::from(loss.base_temperature)) as f32;
    let Anchors {
        hi,
        lo,
        weight,
        npos,
    } = *st;
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
                let wi = weight[i];
                if wi != 0.0 {
                    engine::softmax_row(k, &l[..c], hi[i], lo[i], &mut p[..c]);
                }
                engine::softmax_cols(
                    k,
                    &l[..c],
                    &hi[cols.clone()],
                    &lo[cols.clone()],
                    &mut q[..c],
                );
                for j in 0..c {
                    let jj = at.j0 + j;
                    if jj == i {
                        continue;
                    }
                    let same = classes[jj] == classes[i];
                    let mut g = 0.0f32;
                    if wi != 0.0 {
                        let t = if same { 1.0 / npos[i] } else { 0.0 };
                        g += f * wi * (p[j] - t);
                    }
                    let wj = weight[jj];
                    if wj != 0.0 {
                        let t = if same { 1.0 / npos[jj] } else { 0.0 };
                        g += f * wj * (q[j] - t);
                    }
                    h[rr][j] = g * inv_t;
                }
            }
        },
    );
}
