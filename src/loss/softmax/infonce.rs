//! InfoNCE on query/key pairs: sentence-transformers' multiple-negatives ranking loss (one
//! direction) and CLIP's symmetric loss.

#![forbid(unsafe_code)]

use super::engine::{self, At, GradRows, Lse, Pair, take};
use super::{check_scratch, check_x_y, full_scratch, min_scratch, softplus};
use crate::kernels::dot_tile::{self, TILE_COLS, TILE_ROWS};
use crate::{Backend, Error};

/// InfoNCE over a batch of query/key pairs: row `i` of `x` matches row `i` of `y`, every
/// other row of `y` is a negative for it. With logits `Lᵢⱼ = scale·cos(xᵢ, yⱼ)`:
///
/// ```text
/// loss_xy = meanᵢ [ log Σⱼ e^Lᵢⱼ − Lᵢᵢ ]          (queries to keys)
/// loss_yx = meanⱼ [ log Σᵢ e^Lᵢⱼ − Lⱼⱼ ]          (keys to queries)
/// loss    = loss_xy, or (loss_xy + loss_yx)/2 when symmetric (CLIP)
/// ```
///
/// | preset | scale | directions | who |
/// |---|---|---|---|
/// | [`InfoNceLoss::mnrl`] | 20 | `x → y` | sentence-transformers `MultipleNegativesRankingLoss` |
/// | [`InfoNceLoss::clip`] | given (CLIP starts at 1/0.07, clamps at 100) | both | CLIP, open_clip `ClipLoss` |
///
/// Memory is O(N): nothing N×N is ever formed (see [`scratch_len`](Self::scratch_len)).
/// A logit scale up to 100 and beyond does not overflow (every exponent is taken after
/// subtracting its row's or column's running maximum); a saturated row costs exactly its
/// logit gap, never `0 − log 0`.
///
/// ```
/// use contrastive::InfoNceLoss;
/// let x = [1.0, 0.0, 0.0, 1.0]; // two queries of dim 2
/// let y = [0.9, 0.1, 0.2, 0.8]; // their keys
/// let loss = InfoNceLoss::clip(20.0);
/// let mut scratch = vec![0.0; loss.scratch_len(2, 2)];
/// let (mut gx, mut gy) = ([0.0; 4], [0.0; 4]);
/// let l = loss.forward_with_grad(&x, &y, 2, &mut gx, &mut gy, &mut scratch)?;
/// assert!(l > 0.0 && l < 1e-3);
/// # Ok::<(), contrastive::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InfoNceLoss {
    /// The logit scale `1/τ`. Finite.
    pub scale: f32,
    /// Both directions (CLIP) or queries to keys only (MNRL's default).
    pub symmetric: bool,
    /// The kernel backend; `None` runs the best one available.
    pub backend: Option<Backend>,
}

impl Default for InfoNceLoss {
    fn default() -> Self {
        Self::mnrl()
    }
}

impl InfoNceLoss {
    /// Queries to keys with logit scale `scale` (= 1/τ).
    pub const fn new(scale: f32) -> Self {
        InfoNceLoss {
            scale,
            symmetric: false,
            backend: None,
        }
    }

    /// sentence-transformers' `MultipleNegativesRankingLoss` defaults: scale 20, queries to
    /// keys.
    pub const fn mnrl() -> Self {
        Self::new(20.0)
    }

    /// CLIP's symmetric loss with logit scale `scale` (already exponentiated, as
    /// open_clip's `ClipLoss` takes it).
    pub const fn clip(scale: f32) -> Self {
        InfoNceLoss {
            scale,
            symmetric: true,
            backend: None,
        }
    }

    /// The same loss computed on a named backend (for tests and benchmarks).
    pub const fn with_backend(mut self, backend: Backend) -> Self {
        self.backend = Some(backend);
        self
    }

    /// The scratch length (in f32) for the fastest calls on `n` pairs of rows of `dim`:
    /// `14·n + 32·dim`, of which `32·dim` holds 32 normalised rows at a time.
    pub const fn scratch_len(&self, n: usize, dim: usize) -> usize {
        full_scratch(14, n, dim)
    }

    /// The least scratch the calls accept: `14·n + dim`, room for one normalised row
    /// at a time. Any length from here up to [`scratch_len`](Self::scratch_len) works, with
    /// as many rows at a time as fit (below 32 the similarities are plain dot products:
    /// slower, for microcontrollers); the results meet the same bounds.
    pub const fn min_scratch_len(&self, n: usize, dim: usize) -> usize {
        min_scratch(14, n, dim)
    }

    /// The checks of a call; a scratch is checked when given (the parallel calls
    /// allocate their own).
    pub(super) fn check(
        &self,
        x: &[f32],
        y: &[f32],
        dim: usize,
        scratch: Option<&[f32]>,
    ) -> Result<(), Error> {
        let n = check_x_y(x, y, dim)?;
        if !self.scale.is_finite() {
            return Err(Error::InvalidParameter {
                argument: "scale",
                value: self.scale,
            });
        }
        if let Some(scratch) = scratch {
            check_scratch(min_scratch(14, n, dim), scratch)?;
        }
        Ok(())
    }

    /// The loss of the batch `x`, `y` (each `n` rows of `dim`, `n ≥ 1`).
    ///
    /// # Errors
    /// [`Error::ZeroDimension`], [`Error::NotMultipleOfDim`], [`Error::LengthMismatch`] (`y`
    /// not as long as `x`), [`Error::Empty`] (no rows), [`Error::InvalidParameter`] (scale
    /// not finite), [`Error::ScratchTooShort`], [`Error::BackendUnavailable`].
    pub fn forward(
        &self,
        x: &[f32],
        y: &[f32],
        dim: usize,
        scratch: &mut [f32],
    ) -> Result<f32, Error> {
        self.check(x, y, dim, Some(scratch))?;
        let kernels = crate::kernels::select_softmax(self.backend)?;
        Ok(run(self, kernels, x, y, dim, scratch, None) as f32)
    }

    /// The loss, with `∂loss/∂x` and `∂loss/∂y` written into `grad_x` and `grad_y` (as long
    /// as `x`).
    ///
    /// # Errors
    /// As [`forward`](Self::forward), and [`Error::LengthMismatch`] for a gradient buffer.
    pub fn forward_with_grad(
        &self,
        x: &[f32],
        y: &[f32],
        dim: usize,
        grad_x: &mut [f32],
        grad_y: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<f32, Error> {
        self.check(x, y, dim, Some(scratch))?;
        crate::check::same_len("grad_x", x.len(), grad_x.len())?;
        crate::check::same_len("grad_y", x.len(), grad_y.len())?;
        let kernels = crate::kernels::select_softmax(self.backend)?;
        Ok(run(self, kernels, x, y, dim, scratch, Some((grad_x, grad_y))) as f32)
    }
}

/// Forward, and with `grads` the gradient, in `scratch` (14·n + panel):
/// `[inv_x n | inv_y n | lse hi/lo 4n | diagonal coefficients n | work 7n | panel]`, where the work area holds the
/// running states (and the diagonal) in the forward pass and the chain-rule sums after.
fn run(
    loss: &InfoNceLoss,
    k: &'static dot_tile::SoftmaxKernels,
    x: &[f32],
    y: &[f32],
    dim: usize,
    scratch: &mut [f32],
    grads: Option<(&mut [f32], &mut [f32])>,
) -> f64 {
    let n = x.len() / dim;
    let mut s: &mut [f32] = scratch;
    let inv_x = take(&mut s, n);
    engine::inverse_norms(x, dim, inv_x);
    let inv_y = take(&mut s, n);
    engine::inverse_norms(y, dim, inv_y);
    let mut st = Stats {
        row_hi: take(&mut s, n),
        row_lo: take(&mut s, n),
        col_hi: take(&mut s, n),
        col_lo: take(&mut s, n),
        diag_coef: take(&mut s, n),
    };
    let work = take(&mut s, 7 * n);
    let panel = s;
    let pair = Pair {
        kernels: k,
        x,
        inv_x,
        y,
        inv_y,
        dim,
        width: engine::panel_width(panel.len(), dim),
        row0: 0,
    };
    let value = {
        let mut w: &mut [f32] = &mut *work;
        let mut row = Lse::take(&mut w, n);
        let mut col = Lse::take(&mut w, n);
        let diag = take(&mut w, n);
        forward_rows(loss, &pair, panel, &mut row, diag, &mut col);
        statistics(loss, &row, &col, diag, &mut st)
    };
    let Some((grad_x, grad_y)) = grads else {
        return value;
    };
    let mut w: &mut [f32] = &mut *work;
    let mut gx = GradRows::new(grad_x, dim, &mut w);
    let mut gy = GradRows::new(grad_y, dim, &mut w);
    grad_rows(loss, &pair, panel, &st.view(), &mut gx, &mut gy);
    gx.finish(x, inv_x);
    gy.finish(y, inv_y);
    value
}

/// Per row (and, for CLIP, per column) what the gradient pass needs from the forward.
pub(super) struct Stats<'a> {
    /// Row `i`'s full log-sum-exp, `hi + lo`.
    pub row_hi: &'a mut [f32],
    pub row_lo: &'a mut [f32],
    /// Column `j`'s full log-sum-exp (CLIP).
    pub col_hi: &'a mut [f32],
    pub col_lo: &'a mut [f32],
    /// `−∂L/∂Lᵢᵢ`, the diagonal's coefficient, from the exact `σ`.
    pub diag_coef: &'a mut [f32],
}

/// [`Stats`], read-only (shared by the tasks of a parallel pass).
pub(super) struct StatsRef<'a> {
    row_hi: &'a [f32],
    row_lo: &'a [f32],
    col_hi: &'a [f32],
    col_lo: &'a [f32],
    diag_coef: &'a [f32],
}

impl Stats<'_> {
    pub(super) fn view(&self) -> StatsRef<'_> {
        StatsRef {
            row_hi: self.row_hi,
            row_lo: self.row_lo,
            col_hi: self.col_hi,
            col_lo: self.col_lo,
            diag_coef: self.diag_coef,
        }
    }
}

/// The forward walk over `pair`'s rows (from `pair.row0`): their states in `row` and
/// their diagonal logits in `diag` (both of those rows only), and with CLIP every
/// column's state over those rows in `col`.
pub(super) fn forward_rows(
    loss: &InfoNceLoss,
    pair: &Pair<'_>,
    panel: &mut [f32],
    row: &mut Lse<'_>,
    diag: &mut [f32],
    col: &mut Lse<'_>,
) {
    let k = pair.kernels;
    let scale = loss.scale;
    let row0 = pair.row0;
    let mut l = [[0.0f32; TILE_COLS]; TILE_ROWS];
    pair.walk(
        panel,
        |_| true,
        |at: At, cos| {
            for r in 0..at.rows {
                // The whole tile row (columns past `at.cols` are never read).
                for (l, &c) in l[r].iter_mut().zip(&cos[r]) {
                    *l = scale * c;
                }
                let i = at.i0 + r;
                // The diagonal is kept apart: each state is the log-sum-exp of the
                // off-diagonal logits, so that a saturated row's loss is
                // log1p(Σ e^(Lᵢⱼ − Lᵢᵢ)), exact, rather than lse − Lᵢᵢ ≈ 0 − 0.
                if (at.j0..at.j0 + at.cols).contains(&i) {
                    diag[i - row0] = l[r][i - at.j0];
                    l[r][i - at.j0] = f32::NEG_INFINITY;
                }
            }
            row.update_rows(k, at.i0, &l, at.rows, at.cols);
            if loss.symmetric {
                col.update_columns(k, at.j0, &l, at.rows, at.cols);
            }
        },
    );
}

/// The loss from every row's (and column's) state and diagonal logit, and the [`Stats`]
/// of the gradient pass.
pub(super) fn statistics(
    loss: &InfoNceLoss,
    row: &Lse<'_>,
    col: &Lse<'_>,
    diag: &[f32],
    st: &mut Stats<'_>,
) -> f64 {
    let n = diag.len();
    let nf = n as f64;
    let (w_row, w_col) = if loss.symmetric {
        (0.5 / nf, 0.5 / nf)
    } else {
        (1.0 / nf, 0.0)
    };
    let mut xy = 0.0f64;
    let mut yx = 0.0f64;
    for i in 0..n {
        let li = f64::from(diag[i]);
        let zr = row.value(i) - li;
        xy += softplus(zr);
        // Row i's full log-sum-exp, for the off-diagonal probabilities; and
        // 1 − pᵢᵢ = σ(zr), exact when the row is saturated.
        let mut coef = w_row * sigmoid(zr);
        set_split(li + softplus(zr), &mut st.row_hi[i], &mut st.row_lo[i]);
        if loss.symmetric {
            let zc = col.value(i) - li;
            yx += softplus(zc);
            coef += w_col * sigmoid(zc);
            set_split(li + softplus(zc), &mut st.col_hi[i], &mut st.col_lo[i]);
        }
        st.diag_coef[i] = coef as f32;
    }
    if loss.symmetric {
        (xy / nf + yx / nf) / 2.0
    } else {
        xy / nf
    }
}

/// The gradient walk over `pair`'s rows: into `gx` (those rows) and `gy` (every row of
/// `y`, the sums of those rows' tiles).
pub(super) fn grad_rows(
    loss: &InfoNceLoss,
    pair: &Pair<'_>,
    panel: &mut [f32],
    st: &StatsRef<'_>,
    gx: &mut GradRows<'_>,
    gy: &mut GradRows<'_>,
) {
    let k = pair.kernels;
    let scale = loss.scale;
    let n = pair.y.len() / pair.dim;
    let nf = n as f32;
    let (w_row, w_col) = if loss.symmetric {
        (0.5 / nf, 0.5 / nf)
    } else {
        (1.0 / nf, 0.0)
    };
    // The exponents of a whole tile in one call: `p` (row softmax) in the first
    // `TILE_ROWS` rows, `q` (column softmax) in the next.
    let mut pq = [[0.0f32; TILE_COLS]; 2 * TILE_ROWS];
    pair.walk_grad(
        panel,
        gx,
        Some(gy),
        |_| true,
        |at, cos, h| {
            let c = at.cols.min(TILE_COLS);
            let rows = at.rows.min(TILE_ROWS);
            let (p, q) = pq.split_at_mut(TILE_ROWS);
            for r in 0..rows {
                let i = at.i0 + r;
                let (hi, lo) = (st.row_hi[i], st.row_lo[i]);
                for (p, &cos) in p[r].iter_mut().zip(&cos[r]) {
                    *p = (scale * cos - hi) - lo;
                }
                if loss.symmetric {
                    let hi = &st.col_hi[at.j0..at.j0 + c];
                    let lo = &st.col_lo[at.j0..at.j0 + c];
                    for (((q, &cos), &hi), &lo) in q[r].iter_mut().zip(&cos[r]).zip(hi).zip(lo) {
                        *q = (scale * cos - hi) - lo;
                    }
                }
            }
            let n = if loss.symmetric { 2 * TILE_ROWS } else { rows };
            (k.exp)(pq[..n].as_flattened_mut());
            let (p, q) = pq.split_at(TILE_ROWS);
            for r in 0..rows {
                let i = at.i0 + r;
                if loss.symmetric {
                    for ((h, &p), &q) in h[r][..c].iter_mut().zip(&p[r]).zip(&q[r]) {
                        *h = scale * (w_row * p + w_col * q);
                    }
                } else {
                    for (h, &p) in h[r][..c].iter_mut().zip(&p[r]) {
                        *h = scale * (w_row * p);
                    }
                }
                if (at.j0..at.j0 + c).contains(&i) {
                    // The diagonal: −(1 − pᵢᵢ) from the forward's exact σ, not pᵢᵢ − 1.
                    h[r][i - at.j0] = -scale * st.diag_coef[i];
                }
            }
        },
    );
}

/// `1/(1 + e^−z)` in f64; 0 at `z = −∞`.
fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + libm::exp(-z))
}

/// Stores `v` as `hi + lo` in f32 (`lo = 0` where `hi` is not finite).
fn set_split(v: f64, hi: &mut f32, lo: &mut f32) {
    *hi = v as f32;
    *lo = if hi.is_finite() {
        (v - f64::from(*hi)) as f32
    } else {
        0.0
    };
}
