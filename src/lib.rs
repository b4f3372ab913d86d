//! Hand-vectorized, allocation-free f32 kernels for the contrastive loss of Hadsell, Chopra
//! & LeCun (2006) and its gradient, on plain `&[f32]` slices, from Cortex-M to AVX-512.
//!
//! For a pair of embeddings at distance `D` with label `y` and margin `m`:
//!
//! ```text
//! L = w⁺·y·D² + w⁻·(1 − y)·max(0, m − D)²
//! ```
//!
//! **Label convention: `y = 1` means similar.**
//!
//! ```
//! use contrastive::{ContrastiveLoss, Reduction};
//!
//! let loss = ContrastiveLoss::new(1.0); // Hadsell: w⁺ = w⁻ = ½, Euclidean, mean
//! let (a, b) = ([0.1, 0.2, 0.3], [0.3, 0.2, 0.1]);
//! let (mut ga, mut gb) = ([0.0; 3], [0.0; 3]);
//! let l = loss.pair_with_grad(&a, &b, 1.0, &mut ga, &mut gb)?;
//! assert!((l - 0.04).abs() < 1e-6);
//!
//! // A batch of two rows of dim 3, one similar and one dissimilar pair.
//! let a2 = [0.1, 0.2, 0.3, 0.0, 0.0, 0.0];
//! let b2 = [0.3, 0.2, 0.1, 0.0, 0.0, 0.5];
//! let mut grad_a = [0.0; 6];
//! let mut grad_b = [0.0; 6];
//! let mean = loss.batch_with_grad(&a2, &b2, 3, &[1.0, 0.0], &mut grad_a, &mut grad_b)?;
//! assert!((mean - (0.04 + 0.125) / 2.0).abs() < 1e-6);
//! # Ok::<(), contrastive::Error>(())
//! ```
//!
//! # What is where
//!
//! - [`ContrastiveLoss`]: the loss and its presets, on one pair or on a row-major batch,
//!   with or without gradients; [`Distance`] and [`Reduction`] configure it.
//! - [`seed`]: the numpy function the crate was specified from, ported exactly.
//! - Distances on their own: [`squared_euclidean`], [`euclidean`], [`dot`],
//!   [`cosine_similarity`], [`squared_euclidean_rows`].
//! - [`Backend`]: which kernels run; every computation can run on a named one.
//! - [`Error`]: why a call was refused; every fallible function lists its errors.
//!
//! # Numerical guarantees
//!
//! With `u = 2⁻²⁴` and `n` the vector length:
//! - **Distances.** `squared_euclidean` and `dot` are within `(n + 4)·u·Σ|terms|` of the
//!   exact value (plus `n·2⁻¹⁴⁹` for dot products of subnormal products); `euclidean` within
//!   `(n/2 + 4)·u` relative. Components from the smallest subnormal to `f32::MAX` give the
//!   right distance: a sum that underflows or overflows is recomputed with a power-of-two
//!   scale (only then; the fast path is plain f32).
//! - **Losses and gradients.** Per pair, within `(2n + 16)·u` of the pair's scale: for the
//!   loss `w⁺·y·s + w⁻·(1 − y)·(m + D)²`, for a gradient the largest component of
//!   `2c·(w⁺·y + w⁻·(1 − y)·(m + D)/D)·|δ|` (cosine: the analogous sum of absolute terms).
//! - **Zero distance.** At `D = 0` the dissimilar term's gradient is the subgradient 0: never
//!   NaN, never a division by zero. A zero vector has cosine 0 and a zero cosine gradient.
//! - **NaN in, NaN out.** A NaN anywhere in a pair makes its loss and gradient NaN.
//! - **Select, not multiply.** A term whose weight is zero (labels exactly 0 or 1) is not
//!   evaluated: a dissimilar pair at infinite distance costs exactly 0, gradient 0.
//! - **Overflow.** A per-pair loss beyond `f32::MAX` is `+∞`, and so is any reduction that
//!   contains it. Reductions sum per-pair losses in f64, so any `N` keeps the bound.
//! - **Bad input is an [`Error`]**, never a panic. No result is promised to be bit-identical
//!   across backends; every backend keeps the bound.
//!
//! Every statement, with the test (and fuzz target) that backs it, and the corners still
//! open: [`guarantees`].
//!
//! # Crate features
//! - `std` (default): run-time detection of AVX2/AVX-512 on x86-64 (cached after the first
//!   call), and `f32::sqrt`. Implies `alloc`. Without it (`default-features = false`) the
//!   crate is `no_std` and picks its backend from `cfg(target_feature)` at compile time.
//! - `alloc`: the `Vec`-returning twins of the slice APIs
//!   (`ContrastiveLoss::pair_with_grad_vec`, `squared_euclidean_rows_vec`, …). They need
//!   a global allocator, not `std`. Without `alloc` the crate never allocates.

#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

#[cfg(any(test, feature = "std"))]
extern crate std;

#[cfg(feature = "alloc")]
extern crate alloc;

#[cfg(any(test, not(feature = "std")))]
mod arch_sqrt;
mod backend;
mod check;
mod distance;
mod error;
mod kernels;
mod loss;
mod numerics;
// Some items serve the in-batch losses built on the engine elsewhere (triplets, softmax).
#[allow(dead_code)]
mod pairwise;

pub use distance::{cosine_similarity, dot, euclidean, squared_euclidean, squared_euclidean_rows};
pub use error::Error;
pub use kernels::Backend;
pub use loss::contrastive::{ContrastiveLoss, Distance, Hinge, Mining, Reduction};
pub use loss::cosine_embedding::CosineEmbeddingLoss;
pub use loss::seed;
pub use loss::softmax::infonce::InfoNceLoss;
pub use loss::softmax::ntxent::NtXentLoss;
pub use loss::softmax::supcon::{NoPositive, SupConLoss};
#[cfg(feature = "alloc")]
pub use loss::softmax::vec::{BatchLossWithGrad, PairedLossWithGrad};
pub use loss::triplet::TripletLoss;
pub use loss::triplet_batch::{BatchAllTripletLoss, BatchHardTripletLoss};

#[doc = include_str!("../docs/guarantees.md")]
pub mod guarantees {}
#[cfg(feature = "alloc")]
mod vec;
#[cfg(feature = "alloc")]
pub use vec::{LossWithGrad, squared_euclidean_rows_vec};

/// The README's examples run as doctests, so that it keeps telling the truth.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
