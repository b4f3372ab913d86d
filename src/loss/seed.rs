//! The numpy function this crate was specified from, ported faithfully: its "seed".
//!
//! The crate grew from one contrastive loss written in numpy (its body, verbatim):
//!
//! ```python
//! def contrastive_loss(input_1, input_2, label, margin):
//!     squared_distance = np.sum(np.square((input_1 - input_2)))
//!     loss_function = label*squared_distance*0.5 + (1 - label)*np.square(max(0, (margin - np.sqrt(squared_distance))))
//!     return np.sum(loss_function)/len(input_1)
//! ```
//!
//! It is not the per-pair loss of [`ContrastiveLoss`](crate::ContrastiveLoss), which is what
//! a training loop usually wants (with [`ContrastiveLoss::seed`](crate::ContrastiveLoss::seed)
//! for the same weights, ½ and 1). The seed computes ONE squared distance
//! `s = Σ (input_1 − input_2)²` over the whole vectors, broadcasts it against every label,
//! and divides the sum by `len(input_1)` (not by the number of labels):
//!
//! ```text
//! loss = Σ_j [ label_j · s · 0.5 + (1 − label_j) · max(0, m − √s)² ] / len(input_1)
//! ```
//!
//! [`contrastive_loss`] computes exactly that, and [`contrastive_loss_with_grad`] its
//! gradient. Where the seed multiplies (`label · s`), this port selects: a label of exactly 0
//! or 1 does not evaluate the unused term, so an infinite input gives `+∞` rather than
//! numpy's `0 · ∞ = NaN`. At `s = 0` the gradient of the hinge is the subgradient 0. Everything
//! else (label range, margin, lengths) is validated as in the rest of the crate, and an empty
//! `input_1` (the seed's division by zero) is an error.
//!
//! The seed's own example, `np.random.seed(0)`, two `np.random.randn(10)` inputs, labels
//! `[0, 0, 1, 1, 1, 0, 0, 1, 0, 1]` and margin 0.5, gives 3.5227843918588326 in float64;
//! `cargo run --release --example seed` prints this port's f32 result next to it.
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

/// The seed's loss: one squared distance over the whole vectors, against every label,
/// divided by `input_1.len()` (see the [module docs](self)).
///
/// # Errors
///
/// - [`Error::InvalidMargin`] if `margin` is negative, NaN or infinite;
/// - [`Error::LengthMismatch`] if `input_2` is not as long as `input_1`;
/// - [`Error::InvalidLabel`] for a label outside `[0, 1]` or NaN (with its index);
/// - [`Error::Empty`] if `input_1` is empty (the seed divides by its length).
///
/// # Examples
///
/// ```
/// use contrastive::{Error, seed};
///
/// // s = 1 + 1 = 2, D = √2 > 0.5, so the dissimilar label pays nothing:
/// // (1·2·0.5 + 0) / len 2.
/// let loss = seed::contrastive_loss(&[1.0, 0.0], &[0.0, 1.0], &[1.0, 0.0], 0.5)?;
/// assert_eq!(loss, 0.5);
///
/// let err = seed::contrastive_loss(&[], &[], &[1.0], 0.5).unwrap_err();
/// assert_eq!(err, Error::Empty { argument: "input_1" });
/// # Ok::<(), contrastive::Error>(())
/// ```
pub fn contrastive_loss(
    input_1: &[f32],
    input_2: &[f32],
    labels: &[f32],
    margin: f32,
) -> Result<f32, Error> {
    seed_loss(None, input_1, input_2, labels, margin, None)
}

/// The seed's loss and its gradients with respect to both inputs, written over `grad_1`
/// and `grad_2` (each as long as `input_1`; `grad_2` is `−grad_1`). The buffers are left
/// untouched on an error.
///
/// # Errors
///
/// - [`Error::InvalidMargin`] if `margin` is negative, NaN or infinite;
/// - [`Error::LengthMismatch`] if `input_2`, `grad_1` or `grad_2` is not as long as `input_1`;
/// - [`Error::InvalidLabel`] for a label outside `[0, 1]` or NaN (with its index);
/// - [`Error::Empty`] if `input_1` is empty (the seed divides by its length).
///
/// # Examples
///
/// ```
/// use contrastive::seed;
///
/// let (mut grad_1, mut grad_2) = ([0.0; 2], [0.0; 2]);
/// let loss = seed::contrastive_loss_with_grad(
///     &[1.0, 0.0], &[0.0, 1.0], &[1.0, 0.0], 0.5, &mut grad_1, &mut grad_2,
/// )?;
/// assert_eq!(loss, 0.5);
/// // ∂/∂input_1 of Σlabel·0.5·s / len is Σlabel·(input_1 − input_2) / len.
/// assert_eq!((grad_1, grad_2), ([0.5, -0.5], [-0.5, 0.5]));
/// # Ok::<(), contrastive::Error>(())
/// ```
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
///
/// # Errors
///
/// - [`Error::BackendUnavailable`] if `backend` cannot run on this CPU or target;
/// - [`Error::InvalidMargin`] if `margin` is negative, NaN or infinite;
/// - [`Error::LengthMismatch`] if `input_2` is not as long as `input_1`;
/// - [`Error::InvalidLabel`] for a label outside `[0, 1]` or NaN (with its index);
/// - [`Error::Empty`] if `input_1` is empty (the seed divides by its length).
///
/// # Examples
///
/// ```
/// use contrastive::{Backend, seed};
///
/// for backend in Backend::available() {
///     let loss = seed::contrastive_loss_on(backend, &[1.0, 0.0], &[0.0, 1.0], &[1.0, 0.0], 0.5)?;
///     assert_eq!(loss, 0.5);
/// }
/// # Ok::<(), contrastive::Error>(())
/// ```
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
///
/// # Errors
///
/// - [`Error::BackendUnavailable`] if `backend` cannot run on this CPU or target;
/// - [`Error::InvalidMargin`] if `margin` is negative, NaN or infinite;
/// - [`Error::LengthMismatch`] if `input_2`, `grad_1` or `grad_2` is not as long as `input_1`;
/// - [`Error::InvalidLabel`] for a label outside `[0, 1]` or NaN (with its index);
/// - [`Error::Empty`] if `input_1` is empty (the seed divides by its length).
///
/// # Examples
///
/// ```
/// use contrastive::{Backend, seed};
///
/// let (mut grad_1, mut grad_2) = ([0.0; 2], [0.0; 2]);
/// for backend in Backend::available() {
///     let (x1, x2, labels) = ([1.0, 0.0], [0.0, 1.0], [1.0, 0.0]);
///     let loss =
///         seed::contrastive_loss_with_grad_on(backend, &x1, &x2, &labels, 0.5, &mut grad_1, &mut grad_2)?;
///     assert_eq!((loss, grad_1), (0.5, [0.5, -0.5]));
/// }
/// # Ok::<(), contrastive::Error>(())
/// ```
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
        EuclideanGradient::new(terms, sep, 2.0).write(kernels, &sep, (input_1, input_2), (g1, g2));
    }
    Ok(terms.loss_at(&sep))
}
