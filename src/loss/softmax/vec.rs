//! Allocating twins of the softmax losses (feature `alloc`): the scratch and the gradient
//! buffers are allocated per call.

#![forbid(unsafe_code)]

use super::infonce::InfoNceLoss;
use super::ntxent::NtXentLoss;
use super::supcon::SupConLoss;
use crate::Error;
use alloc::vec;
use alloc::vec::Vec;

/// A loss over one batch and its gradient with respect to that batch.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchLossWithGrad {
    /// The loss.
    pub loss: f32,
    /// `∂loss/∂x`, as long as `x`.
    pub grad: Vec<f32>,
}

/// A loss over query/key batches and its gradients with respect to both.
#[derive(Clone, Debug, PartialEq)]
pub struct PairedLossWithGrad {
    /// The loss.
    pub loss: f32,
    /// `∂loss/∂x`, as long as `x`.
    pub grad_x: Vec<f32>,
    /// `∂loss/∂y`, as long as `y`.
    pub grad_y: Vec<f32>,
}

/// A zeroed scratch of `len` elements.
fn scratch(len: usize) -> Vec<f32> {
    vec![0.0; len]
}

impl InfoNceLoss {
    /// [`forward`](Self::forward) with its scratch allocated.
    ///
    /// # Errors
    /// As [`forward`](Self::forward).
    pub fn forward_vec(&self, x: &[f32], y: &[f32], dim: usize) -> Result<f32, Error> {
        let mut s = scratch(self.scratch_len(x.len() / dim.max(1), dim));
        self.forward(x, y, dim, &mut s)
    }

    /// [`forward_with_grad`](Self::forward_with_grad), returning the gradients.
    ///
    /// # Errors
    /// As [`forward_with_grad`](Self::forward_with_grad).
    pub fn forward_with_grad_vec(
        &self,
        x: &[f32],
        y: &[f32],
        dim: usize,
    ) -> Result<PairedLossWithGrad, Error> {
        let mut s = scratch(self.scratch_len(x.len() / dim.max(1), dim));
        let (mut grad_x, mut grad_y) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        let loss = self.forward_with_grad(x, y, dim, &mut grad_x, &mut grad_y, &mut s)?;
        Ok(PairedLossWithGrad {
            loss,
            grad_x,
            grad_y,
        })
    }
}

macro_rules! batch_twins {
    ($loss:ty) => {
        impl $loss {
            /// [`forward`](Self::forward) with its scratch allocated.
            ///
            /// # Errors
            /// As [`forward`](Self::forward).
            pub fn forward_vec(
                &self,
                x: &[f32],
                dim: usize,
                classes: &[u32],
            ) -> Result<f32, Error> {
                let mut s = scratch(self.scratch_len(x.len() / dim.max(1), dim));
                self.forward(x, dim, classes, &mut s)
            }

            /// [`forward_with_grad`](Self::forward_with_grad), returning the gradient.
            ///
            /// # Errors
            /// As [`forward_with_grad`](Self::forward_with_grad).
            pub fn forward_with_grad_vec(
                &self,
                x: &[f32],
                dim: usize,
                classes: &[u32],
            ) -> Result<BatchLossWithGrad, Error> {
                let mut s = scratch(self.scratch_len(x.len() / dim.max(1), dim));
                let mut grad = vec![0.0; x.len()];
                let loss = self.forward_with_grad(x, dim, classes, &mut grad, &mut s)?;
                Ok(BatchLossWithGrad { loss, grad })
            }
        }
    };
}

batch_twins!(SupConLoss);
batch_twins!(NtXentLoss);
