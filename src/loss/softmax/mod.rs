//! The softmax family: NT-Xent, SupCon, InfoNCE and CLIP, streamed over tiles of the
//! similarity matrix with an online log-sum-exp, in O(N + tile) memory.

#![forbid(unsafe_code)]
// Tile code indexes rows and columns of several arrays at once; iterators would hide it.
#![allow(clippy::needless_range_loop)]

pub(crate) mod engine;
pub(crate) mod infonce;
pub(crate) mod ntxent;
#[cfg(feature = "rayon")]
pub(crate) mod par;
pub(crate) mod supcon;
#[cfg(feature = "alloc")]
pub(crate) mod vec;

use crate::Error;

/// `x` holds `n ≥ 1` rows of `dim > 0`; returns `n`.
pub(super) fn check_rows(x: &[f32], dim: usize) -> Result<usize, Error> {
    if dim == 0 {
        return Err(Error::ZeroDimension);
    }
    if !x.len().is_multiple_of(dim) {
        return Err(Error::NotMultipleOfDim {
            argument: "x",
            len: x.len(),
            dim,
        });
    }
    if x.is_empty() {
        return Err(Error::Empty { argument: "x" });
    }
    Ok(x.len() / dim)
}

/// `x` and `y` hold the same `n ≥ 1` rows of `dim > 0`; returns `n`.
pub(super) fn check_x_y(x: &[f32], y: &[f32], dim: usize) -> Result<usize, Error> {
    let n = check_rows(x, dim)?;
    crate::check::same_len("y", x.len(), y.len())?;
    Ok(n)
}

/// One class per row.
pub(super) fn check_classes(n: usize, classes: &[u32]) -> Result<(), Error> {
    crate::check::same_len("classes", n, classes.len())
}

/// The checks of a loss over one labelled batch: whole rows, one class per row, each named
/// temperature finite and positive, and, given a scratch, at least [`min_scratch`] of
/// `per_row` floats a row (the parallel calls allocate their own).
pub(super) fn check_labelled(
    x: &[f32],
    dim: usize,
    classes: &[u32],
    temperatures: &[(&'static str, f32)],
    per_row: usize,
    scratch: Option<&[f32]>,
) -> Result<(), Error> {
    let n = check_rows(x, dim)?;
    check_classes(n, classes)?;
    for &(argument, value) in temperatures {
        check_temperature(argument, value)?;
    }
    match scratch {
        Some(scratch) => check_scratch(min_scratch(per_row, n, dim), scratch),
        None => Ok(()),
    }
}

/// Writes, in the `impl` of a loss over one labelled batch (NT-Xent, SupCon), the methods
/// they share: `with_backend`, `scratch_len`, `min_scratch_len`, `forward` and
/// `forward_with_grad` (and `check`, which the `rayon` twins in `par.rs` call without a
/// scratch), over the module's
/// `run(loss, kernels, x, dim, classes, scratch, grad) -> f64`, with `$per_row` floats of
/// state a row and the named temperatures `$temperatures` of `$loss`, each checked finite
/// and positive.
macro_rules! labelled_batch_api {
    (per_row: $per_row:literal, temperatures: |$loss:ident| $temperatures:expr) => {
        /// The same loss computed on a named backend (for tests and benchmarks).
        pub const fn with_backend(mut self, backend: crate::Backend) -> Self {
            self.backend = Some(backend);
            self
        }

        #[doc = concat!(
            "The scratch length (in f32) for the fastest calls on `n` rows of `dim`:\n`",
            stringify!($per_row),
            "·n + 32·dim`, of which `32·dim` holds 32 normalised rows at a time."
        )]
        pub const fn scratch_len(&self, n: usize, dim: usize) -> usize {
            super::full_scratch($per_row, n, dim)
        }

        #[doc = concat!(
            "The least scratch the calls accept: `",
            stringify!($per_row),
            "·n + dim`, room for one normalised row\n",
            "at a time. Any length from here up to [`scratch_len`](Self::scratch_len) works, ",
            "with\nas many rows at a time as fit (below 32 the similarities are plain dot ",
            "products:\nslower, for microcontrollers); the results meet the same bounds."
        )]
        pub const fn min_scratch_len(&self, n: usize, dim: usize) -> usize {
            super::min_scratch($per_row, n, dim)
        }

        pub(super) fn check(
            &self,
            x: &[f32],
            dim: usize,
            classes: &[u32],
            scratch: Option<&[f32]>,
        ) -> Result<(), crate::Error> {
            let $loss = self;
            super::check_labelled(x, dim, classes, &$temperatures, $per_row, scratch)
        }

        /// The loss of the batch `x` (`n ≥ 1` rows of `dim`), row `i` of class `classes[i]`.
        ///
        /// # Errors
        /// [`Error::ZeroDimension`](crate::Error::ZeroDimension),
        /// [`Error::NotMultipleOfDim`](crate::Error::NotMultipleOfDim),
        /// [`Error::Empty`](crate::Error::Empty) (no rows),
        /// [`Error::LengthMismatch`](crate::Error::LengthMismatch) (`classes` not one per
        /// row), [`Error::InvalidParameter`](crate::Error::InvalidParameter) (a temperature
        /// not finite and positive), [`Error::ScratchTooShort`](crate::Error::ScratchTooShort),
        /// [`Error::BackendUnavailable`](crate::Error::BackendUnavailable).
        pub fn forward(
            &self,
            x: &[f32],
            dim: usize,
            classes: &[u32],
            scratch: &mut [f32],
        ) -> Result<f32, crate::Error> {
            self.check(x, dim, classes, Some(scratch))?;
            let k = crate::kernels::select_softmax(self.backend)?;
            Ok(run(self, k, x, dim, classes, scratch, None) as f32)
        }

        /// The loss, with `∂loss/∂x` written into `grad` (as long as `x`).
        ///
        /// # Errors
        /// As [`forward`](Self::forward), and
        /// [`Error::LengthMismatch`](crate::Error::LengthMismatch) for `grad`.
        pub fn forward_with_grad(
            &self,
            x: &[f32],
            dim: usize,
            classes: &[u32],
            grad: &mut [f32],
            scratch: &mut [f32],
        ) -> Result<f32, crate::Error> {
            self.check(x, dim, classes, Some(scratch))?;
            crate::check::same_len("grad", x.len(), grad.len())?;
            let k = crate::kernels::select_softmax(self.backend)?;
            Ok(run(self, k, x, dim, classes, scratch, Some(grad)) as f32)
        }
    };
}
pub(super) use labelled_batch_api;

/// The scratch of the fastest calls: `per_row·n` floats of state and a panel of
/// `32·dim` (32 normalised rows at a time).
pub(super) const fn full_scratch(per_row: usize, n: usize, dim: usize) -> usize {
    n.saturating_mul(per_row)
        .saturating_add(engine::panel_len(dim))
}

/// The least scratch: `per_row·n` floats of state and one normalised row.
pub(super) const fn min_scratch(per_row: usize, n: usize, dim: usize) -> usize {
    n.saturating_mul(per_row).saturating_add(dim)
}

/// A temperature is finite and positive.
pub(super) fn check_temperature(argument: &'static str, value: f32) -> Result<(), Error> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidParameter { argument, value })
    }
}

/// The scratch holds at least `needed` elements.
pub(super) fn check_scratch(needed: usize, scratch: &[f32]) -> Result<(), Error> {
    if scratch.len() >= needed {
        Ok(())
    } else {
        Err(Error::ScratchTooShort {
            needed,
            found: scratch.len(),
        })
    }
}

/// `log(1 + e^z)` in f64, without overflow; `0` at `z = −∞`.
pub(super) fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + libm::log1p(libm::exp(-z))
    } else {
        libm::log1p(libm::exp(z))
    }
}
