//! `Vec`-returning twins of the slice APIs (feature `alloc`, which `std` implies): the same
//! checks, the same kernels, one allocation per output. They need a global allocator, not
//! `std`, so firmware with a heap can use them too.

#![forbid(unsafe_code)]

use crate::{ContrastiveLoss, Error};
use alloc::vec;
use alloc::vec::Vec;

/// A loss and its gradients with respect to `a` and `b`, as the `*_vec` methods of
/// [`ContrastiveLoss`] return them.
#[cfg_attr(docsrs, doc(cfg(feature = "alloc")))]
#[derive(Clone, Debug, PartialEq)]
pub struct LossWithGrad {
    /// The (reduced) loss.
    pub loss: f32,
    /// `∂loss/∂a`, as long as `a`.
    pub grad_a: Vec<f32>,
    /// `∂loss/∂b`, as long as `b`.
    pub grad_b: Vec<f32>,
}

impl ContrastiveLoss {
    /// [`pair_with_grad`](Self::pair_with_grad), returning the gradients in a
    /// [`LossWithGrad`] instead of writing them into buffers of yours.
    ///
    /// # Errors
    ///
    /// As [`pair_with_grad`](Self::pair_with_grad): [`Error::LengthMismatch`] if `b` is
    /// not as long as `a`, [`Error::InvalidLabel`] for a label outside `[0, 1]` or NaN, and
    /// [`Error::InvalidMargin`], [`Error::InvalidWeight`] or
    /// [`Error::BackendUnavailable`] for a loss whose fields are invalid.
    ///
    /// # Examples
    ///
    /// ```
    /// use contrastive::ContrastiveLoss;
    ///
    /// // A similar pair at distance 1: ½·1², gradient (a − b) and its negation.
    /// let r = ContrastiveLoss::new(1.0).pair_with_grad_vec(&[1.0, 0.0], &[0.0, 0.0], 1.0)?;
    /// assert_eq!((r.loss, r.grad_a, r.grad_b), (0.5, vec![1.0, 0.0], vec![-1.0, -0.0]));
    /// # Ok::<(), contrastive::Error>(())
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "alloc")))]
    pub fn pair_with_grad_vec(
        &self,
        a: &[f32],
        b: &[f32],
        label: f32,
    ) -> Result<LossWithGrad, Error> {
        let (mut grad_a, mut grad_b) = (vec![0.0; a.len()], vec![0.0; a.len()]);
        let loss = self.pair_with_grad(a, b, label, &mut grad_a, &mut grad_b)?;
        Ok(LossWithGrad {
            loss,
            grad_a,
            grad_b,
        })
    }

    /// [`batch_per_pair`](Self::batch_per_pair), returning one loss per row.
    ///
    /// # Errors
    ///
    /// As [`batch_per_pair`](Self::batch_per_pair): [`Error::ZeroDimension`] if
    /// `dim == 0`, [`Error::LengthMismatch`] if `b` is not as long as `a` or `labels` does
    /// not hold one label per row, [`Error::NotMultipleOfDim`] if `a` is not a whole number
    /// of rows, [`Error::InvalidLabel`] for a label outside `[0, 1]` or NaN, and
    /// [`Error::InvalidMargin`], [`Error::InvalidWeight`] or
    /// [`Error::BackendUnavailable`] for a loss whose fields are invalid.
    ///
    /// # Examples
    ///
    /// ```
    /// use contrastive::ContrastiveLoss;
    ///
    /// // Two rows of dim 2: a similar pair at distance 5, a dissimilar pair at distance 0.
    /// let (a, b) = ([0.0, 0.0, 1.0, 1.0], [3.0, 4.0, 1.0, 1.0]);
    /// let losses = ContrastiveLoss::tfa(1.0).batch_per_pair_vec(&a, &b, 2, &[1.0, 0.0])?;
    /// assert_eq!(losses, vec![25.0, 1.0]);
    /// # Ok::<(), contrastive::Error>(())
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "alloc")))]
    pub fn batch_per_pair_vec(
        &self,
        a: &[f32],
        b: &[f32],
        dim: usize,
        labels: &[f32],
    ) -> Result<Vec<f32>, Error> {
        let mut out = vec![0.0; labels.len()];
        self.batch_per_pair(a, b, dim, labels, &mut out)?;
        Ok(out)
    }

    /// [`batch_with_grad`](Self::batch_with_grad), returning the gradients in a
    /// [`LossWithGrad`] instead of writing them into buffers of yours.
    ///
    /// # Errors
    ///
    /// As [`batch_with_grad`](Self::batch_with_grad): [`Error::ZeroDimension`] if
    /// `dim == 0`, [`Error::LengthMismatch`] if `b` is not as long as `a` or `labels` does
    /// not hold one label per row, [`Error::NotMultipleOfDim`] if `a` is not a whole number
    /// of rows, [`Error::InvalidLabel`] for a label outside `[0, 1]` or NaN,
    /// [`Error::Empty`] for a [`Reduction::Mean`](crate::Reduction::Mean) over zero rows,
    /// and [`Error::InvalidMargin`], [`Error::InvalidWeight`] or
    /// [`Error::BackendUnavailable`] for a loss whose fields are invalid.
    ///
    /// # Examples
    ///
    /// ```
    /// use contrastive::ContrastiveLoss;
    ///
    /// // Two rows of dim 2, mean over the rows: (½·25 + ½·1²) / 2.
    /// let (a, b) = ([0.0, 0.0, 1.0, 1.0], [3.0, 4.0, 1.0, 1.0]);
    /// let r = ContrastiveLoss::new(1.0).batch_with_grad_vec(&a, &b, 2, &[1.0, 0.0])?;
    /// assert_eq!(r.loss, 6.5);
    /// assert_eq!(r.grad_a.len(), 4);
    /// assert_eq!(&r.grad_a[..2], &[-1.5, -2.0]); // 2·½·(a − b) / 2
    /// # Ok::<(), contrastive::Error>(())
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "alloc")))]
    pub fn batch_with_grad_vec(
        &self,
        a: &[f32],
        b: &[f32],
        dim: usize,
        labels: &[f32],
    ) -> Result<LossWithGrad, Error> {
        let (mut grad_a, mut grad_b) = (vec![0.0; a.len()], vec![0.0; a.len()]);
        let loss = self.batch_with_grad(a, b, dim, labels, &mut grad_a, &mut grad_b)?;
        Ok(LossWithGrad {
            loss,
            grad_a,
            grad_b,
        })
    }
}

/// [`squared_euclidean_rows`](crate::squared_euclidean_rows), returning one distance per
/// row.
///
/// # Errors
///
/// As [`squared_euclidean_rows`](crate::squared_euclidean_rows): [`Error::ZeroDimension`]
/// if `dim == 0`, [`Error::LengthMismatch`] if `b` is not as long as `a`, and
/// [`Error::NotMultipleOfDim`] if `a` is not a whole number of rows.
///
/// # Examples
///
/// ```
/// let d = contrastive::squared_euclidean_rows_vec(&[0.0, 0.0, 1.0, 1.0], &[3.0, 4.0, 1.0, 1.0], 2)?;
/// assert_eq!(d, vec![25.0, 0.0]);
/// # Ok::<(), contrastive::Error>(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "alloc")))]
pub fn squared_euclidean_rows_vec(a: &[f32], b: &[f32], dim: usize) -> Result<Vec<f32>, Error> {
    let mut out = vec![0.0; a.len().checked_div(dim).unwrap_or(0)];
    crate::squared_euclidean_rows(a, b, dim, &mut out)?;
    Ok(out)
}
