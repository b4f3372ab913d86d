//! `Vec`-returning twins of the slice APIs (feature `std`): the same checks, the same
//! kernels, one allocation per output.

#![forbid(unsafe_code)]

use crate::{ContrastiveLoss, Error};
use std::vec;
use std::vec::Vec;

/// A loss and its gradients with respect to `a` and `b`.
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
    /// [`pair_with_grad`](Self::pair_with_grad), returning the gradients.
    ///
    /// ```
    /// let r = contrastive::ContrastiveLoss::new(1.0).pair_with_grad_vec(&[1.0, 0.0], &[0.0, 0.0], 1.0)?;
    /// assert_eq!((r.loss, r.grad_a, r.grad_b), (0.5, vec![1.0, 0.0], vec![-1.0, -0.0]));
    /// # Ok::<(), contrastive::Error>(())
    /// ```
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

    /// [`batch_with_grad`](Self::batch_with_grad), returning the gradients.
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
pub fn squared_euclidean_rows_vec(a: &[f32], b: &[f32], dim: usize) -> Result<Vec<f32>, Error> {
    let mut out = vec![0.0; a.len().checked_div(dim).unwrap_or(0)];
    crate::squared_euclidean_rows(a, b, dim, &mut out)?;
    Ok(out)
}
