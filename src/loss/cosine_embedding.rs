//! torch's cosine embedding loss.

#![forbid(unsafe_code)]

use crate::kernels::{self, Kernels};
use crate::numerics::Cosine;
use crate::{Backend, Error, Reduction, check};

/// torch's `CosineEmbeddingLoss`: for a pair `(a, b)` with target `t`,
///
/// ```text
/// L = 1 − cos(a, b)             if t = 1
///     max(0, cos(a, b) − m)     if t = −1
///     0                         for any other target (still counted by the mean)
/// ```
///
/// **Targets are ±1** (torch's convention, not the 0/1 labels of
/// [`ContrastiveLoss`](crate::ContrastiveLoss)). The cosine is this crate's exact one,
/// clamped to `[-1, 1]`; a zero vector has cosine 0 with anything and gradient 0. torch
/// adds `1e-12` to each squared norm, which changes the cosine by a relative `1e-12/‖x‖²`
/// (invisible in f32 unless a norm is below about 1e-3) and gives a zero vector a gradient
/// of order `1e6·b/‖b‖`; this crate does not copy that. A NaN anywhere in a pair makes its
/// loss and gradient NaN whatever its target (torch returns 0 for other targets).
///
/// | preset | margin | who |
/// |---|---|---|
/// | [`CosineEmbeddingLoss::torch`] | 0.0 | `torch.nn.CosineEmbeddingLoss()`, burn |
/// | [`CosineEmbeddingLoss::new`] | given | torch suggests 0 to 0.5 |
///
/// ```
/// use contrastive::CosineEmbeddingLoss;
/// let loss = CosineEmbeddingLoss::new(0.2);
/// let a = [1.0, 0.0, 0.0, 1.0];
/// let b = [1.0, 1.0, 1.0, 0.0];
/// let per = loss.batch(&a, &b, 2, &[1.0, -1.0])?; // cos 0.707 (t = 1), cos 0 (t = −1)
/// assert!((per - (1.0 - core::f32::consts::FRAC_1_SQRT_2) / 2.0).abs() < 1e-6);
/// # Ok::<(), contrastive::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineEmbeddingLoss {
    /// `m`: a dissimilar pair (`t = −1`) pays `cos − m` above it. Finite (torch suggests
    /// 0 to 0.5; margins outside `[-1, 1]` make the term always or never active).
    pub margin: f32,
    /// How batches combine pairs.
    pub reduction: Reduction,
    /// The kernel backend; `None` runs the best one available.
    pub backend: Option<Backend>,
}

impl CosineEmbeddingLoss {
    /// Margin `m`, mean.
    pub const fn new(margin: f32) -> Self {
        CosineEmbeddingLoss {
            margin,
            reduction: Reduction::Mean,
            backend: None,
        }
    }

    /// `torch.nn.CosineEmbeddingLoss()`: margin 0, mean.
    pub const fn torch() -> Self {
        Self::new(0.0)
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

    /// The loss of one pair with target `t` (1 similar, −1 dissimilar, anything else 0).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`], [`Error::InvalidMargin`] for a non-finite margin,
    /// [`Error::InvalidLabel`] for a NaN target, [`Error::BackendUnavailable`].
    pub fn pair(&self, a: &[f32], b: &[f32], target: f32) -> Result<f32, Error> {
        let kernels = self.kernels()?;
        check::same_len("b", a.len(), b.len())?;
        targets_from(&[target])?;
        Ok(self.pair_loss(kernels, a, b, target).0)
    }

    /// The loss of one pair and its gradients, written over `grad_a` and `grad_b`.
    ///
    /// # Errors
    /// As [`pair`](Self::pair), and [`Error::LengthMismatch`] for a gradient buffer.
    pub fn pair_with_grad(
        &self,
        a: &[f32],
        b: &[f32],
        target: f32,
        grad_a: &mut [f32],
        grad_b: &mut [f32],
    ) -> Result<f32, Error> {
        let kernels = self.kernels()?;
        check::same_len("b", a.len(), b.len())?;
        check::same_len("grad_a", a.len(), grad_a.len())?;
        check::same_len("grad_b", a.len(), grad_b.len())?;
        targets_from(&[target])?;
        Ok(self.pair_with_grad_in(kernels, (a, b, target), 1.0, (grad_a, grad_b)))
    }

    /// The reduced loss of a batch of `N` rows of `dim` floats, with `N` targets.
    ///
    /// # Errors
    /// [`Error::ZeroDimension`], [`Error::NotMultipleOfDim`], [`Error::LengthMismatch`],
    /// [`Error::InvalidMargin`], [`Error::InvalidLabel`] (NaN target), [`Error::Empty`]
    /// for a mean over zero rows, [`Error::BackendUnavailable`].
    pub fn batch(&self, a: &[f32], b: &[f32], dim: usize, targets: &[f32]) -> Result<f32, Error> {
        let (kernels, rows) = self.check_batch(a, b, dim, targets)?;
        self.check_reducible(rows)?;
        let mut total = 0.0f64;
        for ((ra, rb), &t) in a.chunks_exact(dim).zip(b.chunks_exact(dim)).zip(targets) {
            total += f64::from(self.pair_loss(kernels, ra, rb, t).0);
        }
        Ok(self.reduce(total, rows))
    }

    /// The loss of each pair of a batch, written into `out`.
    ///
    /// # Errors
    /// As [`batch`](Self::batch) (zero rows are `Ok`), and [`Error::LengthMismatch`] for
    /// `out`.
    pub fn batch_per_pair(
        &self,
        a: &[f32],
        b: &[f32],
        dim: usize,
        targets: &[f32],
        out: &mut [f32],
    ) -> Result<(), Error> {
        let (kernels, rows) = self.check_batch(a, b, dim, targets)?;
        check::same_len("out", rows, out.len())?;
        let pairs = a.chunks_exact(dim).zip(b.chunks_exact(dim)).zip(targets);
        for (((ra, rb), &t), o) in pairs.zip(out) {
            *o = self.pair_loss(kernels, ra, rb, t).0;
        }
        Ok(())
    }

    /// The reduced loss of a batch and its gradients, written over `grad_a` and `grad_b`.
    ///
    /// # Errors
    /// As [`batch`](Self::batch), and [`Error::LengthMismatch`] for a gradient buffer.
    pub fn batch_with_grad(
        &self,
        a: &[f32],
        b: &[f32],
        dim: usize,
        targets: &[f32],
        grad_a: &mut [f32],
        grad_b: &mut [f32],
    ) -> Result<f32, Error> {
        let (kernels, rows) = self.check_batch(a, b, dim, targets)?;
        check::same_len("grad_a", a.len(), grad_a.len())?;
        check::same_len("grad_b", a.len(), grad_b.len())?;
        self.check_reducible(rows)?;
        let c = match self.reduction {
            Reduction::Mean | Reduction::AvgNonZero => 1.0 / rows as f32,
            Reduction::Sum => 1.0,
        };
        let mut total = 0.0f64;
        let pairs = a.chunks_exact(dim).zip(b.chunks_exact(dim)).zip(targets);
        let grads = grad_a
            .chunks_exact_mut(dim)
            .zip(grad_b.chunks_exact_mut(dim));
        for (((ra, rb), &t), (ga, gb)) in pairs.zip(grads) {
            total += f64::from(self.pair_with_grad_in(kernels, (ra, rb, t), c, (ga, gb)));
        }
        Ok(self.reduce(total, rows))
    }

    fn kernels(&self) -> Result<&'static Kernels, Error> {
        if !self.margin.is_finite() {
            return Err(Error::InvalidMargin {
                margin: self.margin,
            });
        }
        kernels::select(self.backend)
    }

    fn check_batch(
        &self,
        a: &[f32],
        b: &[f32],
        dim: usize,
        targets: &[f32],
    ) -> Result<(&'static Kernels, usize), Error> {
        let kernels = self.kernels()?;
        let rows = check::rows(a, b, dim)?;
        check::same_len("targets", rows, targets.len())?;
        targets_from(targets)?;
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
            Err(Error::Empty {
                argument: "targets",
            })
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

    /// The loss and `∂L/∂cos` (0 where the pair's term is inactive or absent).
    fn pair_loss(&self, kernels: &Kernels, a: &[f32], b: &[f32], t: f32) -> (f32, f32, Cosine) {
        let cos = Cosine::of(kernels, a, b);
        let c = cos.cos;
        let (loss, slope) = if c.is_nan() {
            (f32::NAN, f32::NAN)
        } else if t == 1.0 {
            (1.0 - c, -1.0)
        } else if t == -1.0 {
            // In f64, so that the side of the hinge is that of the exact `cos − m`.
            let v = f64::from(c) - f64::from(self.margin);
            if v > 0.0 { (v as f32, 1.0) } else { (0.0, 0.0) }
        } else {
            (0.0, 0.0)
        };
        (loss, slope, cos)
    }

    /// The loss of the pair `(a, b)` with target `t`, and the gradients of `c` times it.
    fn pair_with_grad_in(
        &self,
        kernels: &Kernels,
        (a, b, t): (&[f32], &[f32], f32),
        c: f32,
        (grad_a, grad_b): (&mut [f32], &mut [f32]),
    ) -> f32 {
        let (loss, slope, cos) = self.pair_loss(kernels, a, b, t);
        write_cosine_gradient(kernels, cos, slope * c, a, b, grad_a, grad_b);
        loss
    }
}

/// The cosine gradient writer of the pair losses, without their case of an infinite `g`
/// (`g` here is `±c` or 0, and the triplet losses' weights).
pub(crate) use super::pair::write_cosine_gradient_of as write_cosine_gradient;

/// Targets may be any value but NaN (other values than ±1 give 0, as in torch).
fn targets_from(targets: &[f32]) -> Result<(), Error> {
    match targets.iter().position(|t| t.is_nan()) {
        None => Ok(()),
        Some(index) => Err(Error::InvalidLabel {
            index,
            label: targets[index],
        }),
    }
}
