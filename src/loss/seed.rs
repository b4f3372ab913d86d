//! The seed document's function, ported faithfully.
//!
//! The seed computes ONE squared distance `s = Σ (input_1 − input_2)²` over the whole
//! vectors, broadcasts it against every label, and divides the sum by `len(input_1)`
//! (not by the number of labels):
//!
//! ```text
//! loss = Σ_j [ label_j · s · 0.5 + (1 − label_j) · max(0, m − √s)² ] / len(input_1)
//! ```
//!
//! Where the seed multiplies (`label · s`), this port selects: a label of exactly 0 or 1
//! does not evaluate the unused term, so an infinite input gives `+∞` rather than numpy's
//! `0 · ∞ = NaN`. Everything else (label range, margin, lengths) is validated as in the rest
//! of the crate, and an empty `input_1` (the seed's division by zero) is an error.
//!
//! ```
//! let loss = contrastive::seed::contrastive_loss(&[1.0, 2.0], &[1.0, 2.0], &[1.0, 0.0], 0.5)?;
//! assert_eq!(loss, 0.125); // s = 0: the dissimilar label pays 0.5², divided by len 2
//! # Ok::<(), contrastive::Error>(())
//! ```

#![forbid(unsafe_code)]

use super::pair::{EuclideanGradient, Terms};
use crate::kernels::{self, Kernels};
use crate::numerics::Separation;
use crate::{Backend, Error, check};

/// The seed document's loss (see the [module docs](self)).
pub fn contrastive_loss(
    input_1: &[f32],
    input_2: &[f32],
    labels: &[f32],
    margin: f32,
) -> Result<f32, Error> {
    seed_loss(None, input_1, input_2, labels, margin, None)
}

/// The seed document's loss and its gradients with respect to both inputs, written over
/// `grad_1` and `grad_2` (each as long as `input_1`).
pub fn contrastive_loss_with_grad(
    input_1: &[f32],
    input_2: &[f32],
    labels: &[f32],
    margin: f32,
    grad_1: &mut [f32],
    grad_2: &mut [f32],
) -> Result<f32, Error> {
    seed_loss(
        None,
        input_1,
        input_2,
        labels,
        margin,
        Some((grad_1, grad_2)),
    )
}

/// [`contrastive_loss`] on a named backend.
pub fn contrastive_loss_on(
    backend: Backend,
    input_1: &[f32],
    input_2: &[f32],
    labels: &[f32],
    margin: f32,
) -> Result<f32, Error> {
    seed_loss(Some(backend), input_1, input_2, labels, margin, None)
}

/// [`contrastive_loss_with_grad`] on a named backend.
pub fn contrastive_loss_with_grad_on(
    backend: Backend,
    input_1: &[f32],
    input_2: &[f32],
    labels: &[f32],
    margin: f32,
    grad_1: &mut [f32],
    grad_2: &mut [f32],
) -> Result<f32, Error> {
    seed_loss(
        Some(backend),
        input_1,
        input_2,
        labels,
        margin,
        Some((grad_1, grad_2)),
    )
}

fn seed_loss(
    backend: Option<Backend>,
    input_1: &[f32],
    input_2: &[f32],
    labels: &[f32],
    margin: f32,
    grads: Option<(&mut [f32], &mut [f32])>,
) -> Result<f32, Error> {
    let kernels: &Kernels = kernels::select(backend)?;
    check::margin(margin)?;
    check::same_len("input_2", input_1.len(), input_2.len())?;
    check::labels(labels)?;
    if input_1.is_empty() {
        return Err(Error::Empty {
            argument: "input_1",
        });
    }
    if let Some((g1, g2)) = &grads {
        check::same_len("grad_1", input_1.len(), g1.len())?;
        check::same_len("grad_2", input_1.len(), g2.len())?;
    }
    // Σ label·(½s) + Σ (1 − label)·h², divided by len, is one pair with weights
    // ½·Σlabel/len and Σ(1 − label)/len (dividing the weights, not the loss, so that a
    // finite loss cannot overflow on the way).
    let len = input_1.len() as f64;
    let similar: f64 = labels.iter().map(|&y| f64::from(y)).sum();
    let dissimilar: f64 = labels.iter().map(|&y| 1.0 - f64::from(y)).sum();
    let terms = Terms {
        p: (0.5 * similar / len) as f32,
        q: (dissimilar / len) as f32,
        margin,
    };
    let sep = Separation::of(kernels, input_1, input_2);
    if let Some((g1, g2)) = grads {
        EuclideanGradient::new(terms, sep, 2.0, input_1, input_2)
            .write(kernels, input_1, input_2, g1, g2);
    }
    Ok(terms.loss_at(&sep))
}
