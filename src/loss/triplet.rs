//! The triplet margin loss on explicit (anchor, positive, negative) rows, with torch's
//! semantics.

#![forbid(unsafe_code)]

use super::direction::{Direction, Leg};
use crate::kernels::{self, Kernels};
use crate::{Backend, Error, Reduction, check};

/// The triplet margin loss `L = max(0, m + d(a, p) − d(a, n))` of an anchor `a`, a
/// positive `p` and a negative `n` (torch's `TripletMarginLoss` with `p = 2`).
///
/// - `swap` (torch's distance swap, Balntas et al. 2016): the negative distance is
///   `min(d(a, n), d(p, n))`; at a tie the gradient is split ½/½.
/// - `eps`: 0 (the default of [`TripletLoss::new`]) is the exact Euclidean distance, with
///   the subgradient 0 at `d = 0`. A positive `eps` is torch's `F.pairwise_distance`,
///   `d = ‖x − y + eps‖` with `eps` added to every component of the difference, so that
///   torch's numbers can be reproduced ([`TripletLoss::torch`] uses torch's 1e-6; the
///   distance then is `eps·√dim` for identical rows, and its gradient a fixed push). That
///   path sums in f64 in scalar code.
/// - A triplet at the hinge (`m + d(a, p) − d(a, n) = 0` exactly) has gradient 0.
///
/// | preset | margin | eps | who |
/// |---|---|---|---|
/// | [`TripletLoss::new`] | given | 0 (exact) | this crate |
/// | [`TripletLoss::torch`] | 1.0 | 1e-6 | `torch.nn.TripletMarginLoss()`, burn |
///
/// ```
/// use contrastive::TripletLoss;
/// let loss = TripletLoss::new(1.0);
/// let (a, p, n) = ([0.0, 0.0], [3.0, 4.0], [6.0, 8.0]); // d(a, p) = 5, d(a, n) = 10
/// assert_eq!(loss.triplet(&a, &p, &n)?, 0.0);
/// let (mut ga, mut gp, mut gn) = ([0.0; 2], [0.0; 2], [0.0; 2]);
/// let l = loss.triplet_with_grad(&a, &n, &p, &mut ga, &mut gp, &mut gn)?; // swapped roles
/// assert_eq!(l, 6.0); // 1 + 10 − 5
/// // ∂a = u_ap − u_an = (−0.6, −0.8) − (−0.6, −0.8), ∂p = −u_ap, ∂n = u_an.
/// assert!(ga[0].abs() < 1e-6 && (gp[0] - 0.6).abs() < 1e-6 && (gn[1] + 0.8).abs() < 1e-6);
/// # Ok::<(), contrastive::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TripletLoss {
    /// `m`, finite and ≥ 0.
    pub margin: f32,
    /// Use `min(d(a, n), d(p, n))` as the negative distance.
    pub swap: bool,
    /// 0 for the exact distance, else torch's `eps` added to the difference (finite, ≥ 0).
    pub eps: f32,
    /// How batches combine triplets.
    pub reduction: Reduction,
    /// The kernel backend; `None` runs the best one available.
    pub backend: Option<Backend>,
}

/// One triplet's loss and the coefficients of its gradient.
struct Evaluated {
    loss: f32,
    ap: Leg,
    an: Leg,
    pn: Option<Leg>,
    /// Weights of `d(a, n)` and `d(p, n)` in the negative distance (swap ties: ½, ½).
    w_an: f32,
    w_pn: f32,
    /// `∂L/∂v`: 1 active, 0 inactive, NaN for a NaN violation.
    active: f32,
}

impl TripletLoss {
    /// The exact Euclidean distance, no swap, mean.
    pub const fn new(margin: f32) -> Self {
        TripletLoss {
            margin,
            swap: false,
            eps: 0.0,
            reduction: Reduction::Mean,
            backend: None,
        }
    }

    /// `torch.nn.TripletMarginLoss()`: margin 1, `eps = 1e-6` on the difference, no swap,
    /// mean.
    pub const fn torch() -> Self {
        Self::new(1.0).with_eps(1e-6)
    }

    /// The same loss with torch's distance swap on or off.
    pub const fn with_swap(mut self, swap: bool) -> Self {
        self.swap = swap;
        self
    }

    /// The same loss with `eps` added to each component of the difference (0: exact).
    pub const fn with_eps(mut self, eps: f32) -> Self {
        self.eps = eps;
        self
    }

    /// The same loss with another batch reduction.
    pub const fn with_reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// The same loss computed on a named backend.
    pub const fn with_backend(mut self, backend: Backend) -> Self {
        self.backend = Some(backend);
        self
    }

    /// The loss of one triplet. The three rows have equal lengths (0 is allowed: every
    /// distance is then 0, or `eps·0 = 0`).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] for rows of different lengths, [`Error::InvalidMargin`],
    /// [`Error::InvalidParameter`] for a negative or non-finite `eps`,
    /// [`Error::BackendUnavailable`].
    pub fn triplet(
        &self,
        anchor: &[f32],
        positive: &[f32],
        negative: &[f32],
    ) -> Result<f32, Error> {
        let kernels = self.kernels()?;
        check::same_len("positive", anchor.len(), positive.len())?;
        check::same_len("negative", anchor.len(), negative.len())?;
        Ok(self.evaluate(kernels, anchor, positive, negative).loss)
    }

    /// The loss of one triplet and its gradients, written over `grad_anchor`,
    /// `grad_positive` and `grad_negative` (each as long as `anchor`).
    ///
    /// # Errors
    /// As [`triplet`](Self::triplet), and [`Error::LengthMismatch`] for a gradient buffer
    /// of the wrong length.
    pub fn triplet_with_grad(
        &self,
        anchor: &[f32],
        positive: &[f32],
        negative: &[f32],
        grad_anchor: &mut [f32],
        grad_positive: &mut [f32],
        grad_negative: &mut [f32],
    ) -> Result<f32, Error> {
        let kernels = self.kernels()?;
        let n = anchor.len();
        check::same_len("positive", n, positive.len())?;
        check::same_len("negative", n, negative.len())?;
        check::same_len("grad_anchor", n, grad_anchor.len())?;
        check::same_len("grad_positive", n, grad_positive.len())?;
        check::same_len("grad_negative", n, grad_negative.len())?;
        let e = self.evaluate(kernels, anchor, positive, negative);
        write_gradient(
            &e,
            1.0,
            [anchor, positive, negative],
            [grad_anchor, grad_positive, grad_negative],
        );
        Ok(e.loss)
    }

    /// The reduced loss of a batch: `anchor`, `positive` and `negative` hold `N` rows of
    /// `dim` floats each (row-major).
    ///
    /// # Errors
    /// [`Error::ZeroDimension`], [`Error::NotMultipleOfDim`], [`Error::LengthMismatch`],
    /// [`Error::InvalidMargin`], [`Error::InvalidParameter`] (`eps`),
    /// [`Error::Empty`] for a mean over zero rows, [`Error::BackendUnavailable`].
    pub fn batch(
        &self,
        anchor: &[f32],
        positive: &[f32],
        negative: &[f32],
        dim: usize,
    ) -> Result<f32, Error> {
        let (kernels, rows) = self.check_batch(anchor, positive, negative, dim)?;
        self.check_reducible(rows)?;
        let mut total = 0.0f64;
        for ((a, p), n) in anchor
            .chunks_exact(dim)
            .zip(positive.chunks_exact(dim))
            .zip(negative.chunks_exact(dim))
        {
            total += f64::from(self.evaluate(kernels, a, p, n).loss);
        }
        Ok(self.reduce(total, rows))
    }

    /// The loss of each triplet of a batch, written into `out` (one per row).
    ///
    /// # Errors
    /// As [`batch`](Self::batch) (a batch of zero rows is `Ok`), and
    /// [`Error::LengthMismatch`] for `out`.
    pub fn batch_per_triplet(
        &self,
        anchor: &[f32],
        positive: &[f32],
        negative: &[f32],
        dim: usize,
        out: &mut [f32],
    ) -> Result<(), Error> {
        let (kernels, rows) = self.check_batch(anchor, positive, negative, dim)?;
        check::same_len("out", rows, out.len())?;
        for (((a, p), n), o) in anchor
            .chunks_exact(dim)
            .zip(positive.chunks_exact(dim))
            .zip(negative.chunks_exact(dim))
            .zip(out)
        {
            *o = self.evaluate(kernels, a, p, n).loss;
        }
        Ok(())
    }

    /// The reduced loss of a batch and its gradients with respect to the three batches,
    /// written over the three gradient buffers (each as long as `anchor`).
    ///
    /// # Errors
    /// As [`batch`](Self::batch), and [`Error::LengthMismatch`] for a gradient buffer.
    #[allow(clippy::too_many_arguments)]
    pub fn batch_with_grad(
        &self,
        anchor: &[f32],
        positive: &[f32],
        negative: &[f32],
        dim: usize,
        grad_anchor: &mut [f32],
        grad_positive: &mut [f32],
        grad_negative: &mut [f32],
    ) -> Result<f32, Error> {
        let (kernels, rows) = self.check_batch(anchor, positive, negative, dim)?;
        check::same_len("grad_anchor", anchor.len(), grad_anchor.len())?;
        check::same_len("grad_positive", anchor.len(), grad_positive.len())?;
        check::same_len("grad_negative", anchor.len(), grad_negative.len())?;
        self.check_reducible(rows)?;
        let c = match self.reduction {
            Reduction::Mean | Reduction::AvgNonZero => 1.0 / rows as f32,
            Reduction::Sum => 1.0,
        };
        let mut total = 0.0f64;
        let rows_in = anchor
            .chunks_exact(dim)
            .zip(positive.chunks_exact(dim))
            .zip(negative.chunks_exact(dim));
        let rows_out = grad_anchor
            .chunks_exact_mut(dim)
            .zip(grad_positive.chunks_exact_mut(dim))
            .zip(grad_negative.chunks_exact_mut(dim));
        for (((a, p), n), ((ga, gp), gn)) in rows_in.zip(rows_out) {
            let e = self.evaluate(kernels, a, p, n);
            total += f64::from(e.loss);
            write_gradient(&e, c, [a, p, n], [ga, gp, gn]);
        }
        Ok(self.reduce(total, rows))
    }

    fn kernels(&self) -> Result<&'static Kernels, Error> {
        check::margin(self.margin)?;
        if !(self.eps.is_finite() && self.eps >= 0.0) {
            return Err(Error::InvalidParameter {
                argument: "eps",
                value: self.eps,
            });
        }
        kernels::select(self.backend)
    }

    fn check_batch(
        &self,
        anchor: &[f32],
        positive: &[f32],
        negative: &[f32],
        dim: usize,
    ) -> Result<(&'static Kernels, usize), Error> {
        let kernels = self.kernels()?;
        let rows = check::rows(anchor, positive, dim).map_err(|e| match e {
            Error::LengthMismatch {
                expected, found, ..
            } => Error::LengthMismatch {
                argument: "positive",
                expected,
                found,
            },
            Error::NotMultipleOfDim { len, dim, .. } => Error::NotMultipleOfDim {
                argument: "anchor",
                len,
                dim,
            },
            other => other,
        })?;
        check::same_len("negative", anchor.len(), negative.len())?;
        Ok((kernels, rows))
    }

    fn check_reducible(&self, rows: usize) -> Result<(), Error> {
        // `AvgNonZero` (the in-batch contrastive loss's reduction) is not defined for this
        // loss yet: refused, so the arms below that accept it are never reached with it.
        if self.reduction == Reduction::AvgNonZero {
            return Err(Error::InvalidParameter {
                argument: "reduction",
                value: f32::NAN,
            });
        }
        if rows == 0 && self.reduction == Reduction::Mean {
            Err(Error::Empty { argument: "anchor" })
        } else {
            Ok(())
        }
    }

    fn reduce(&self, total: f64, rows: usize) -> f32 {
        match self.reduction {
            Reduction::Mean | Reduction::AvgNonZero => (total / rows as f64) as f32,
            Reduction::Sum => total as f32,
        }
    }

    #[inline]
    fn leg(&self, kernels: &Kernels, x: &[f32], y: &[f32]) -> Leg {
        if self.eps == 0.0 {
            Leg::euclidean(kernels, x, y)
        } else {
            Leg::shifted(x, y, self.eps)
        }
    }

    fn evaluate(&self, kernels: &Kernels, a: &[f32], p: &[f32], n: &[f32]) -> Evaluated {
        let ap = self.leg(kernels, a, p);
        let an = self.leg(kernels, a, n);
        let (pn, negative, w_an, w_pn) = if self.swap {
            let pn = self.leg(kernels, p, n);
            let (d_an, d_pn) = (an.distance, pn.distance);
            let (negative, w_an) = if d_an < d_pn {
                (d_an, 1.0)
            } else if d_an == d_pn {
                (d_an, 0.5)
            } else if d_pn < d_an {
                (d_pn, 0.0)
            } else {
                (f32::NAN, f32::NAN)
            };
            (Some(pn), negative, w_an, 1.0 - w_an)
        } else {
            (None, an.distance, 1.0, 0.0)
        };
        // In f64: `m + d(a, p)` is exact there for any f32 values within 2^29 of each
        // other, so the hinge's side is decided on the exact violation.
        let v = f64::from(self.margin) + f64::from(ap.distance) - f64::from(negative);
        let (loss, active) = if v > 0.0 {
            (v as f32, 1.0)
        } else if v.is_nan() {
            (f32::NAN, f32::NAN)
        } else {
            (0.0, 0.0)
        };
        Evaluated {
            loss,
            ap,
            an,
            pn,
            w_an,
            w_pn,
            active,
        }
    }
}

/// `∂a = c·(u_ap − w_an·u_an)`, `∂p = c·(−u_ap − w_pn·u_pn)`, `∂n = c·(w_an·u_an + w_pn·u_pn)`
/// with `u_xy = (x − y)/d(x, y)`; exact zeros for an inactive triplet, NaN for a NaN one.
fn write_gradient(e: &Evaluated, c: f32, [a, p, n]: [&[f32]; 3], [ga, gp, gn]: [&mut [f32]; 3]) {
    if e.active == 0.0 || e.active.is_nan() {
        let fill = e.active * c; // 0 or NaN
        ga.fill(fill);
        gp.fill(fill);
        gn.fill(fill);
        return;
    }
    let (w_an, w_pn) = (c * e.w_an, c * e.w_pn);
    match (e.ap.direction.plain(), e.an.direction.plain(), e.pn) {
        (Some(k_ap), Some(k_an), None) => {
            // The common case: one vectorisable pass.
            let (k_ap, k_an) = (c * k_ap, w_an * k_an);
            for k in 0..a.len() {
                let ap = (a[k] - p[k]) * k_ap;
                let an = (a[k] - n[k]) * k_an;
                ga[k] = ap - an;
                gp[k] = -ap;
                gn[k] = an;
            }
        }
        _ => {
            let pn = e.pn.map_or(Direction::Constant(0.0), |l| l.direction);
            let (u_ap, u_an) = (e.ap.direction, e.an.direction);
            for k in 0..a.len() {
                let ap = c * u_ap.at(a[k], p[k]);
                let an = if w_an == 0.0 {
                    0.0
                } else {
                    w_an * u_an.at(a[k], n[k])
                };
                let pn = if w_pn == 0.0 {
                    0.0
                } else {
                    w_pn * pn.at(p[k], n[k])
                };
                ga[k] = ap - an;
                gp[k] = -ap - pn;
                gn[k] = an + pn;
            }
        }
    }
}
