//! Input validation shared by the public functions. Every check is always on.

#![forbid(unsafe_code)]

use crate::Error;

/// `found` must equal `expected`.
#[inline]
pub(crate) fn same_len(argument: &'static str, expected: usize, found: usize) -> Result<(), Error> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            argument,
            expected,
            found,
        })
    }
}

/// Rows of a batch: `a` and `b` are equally long, a whole number of rows of `dim > 0`.
/// Returns the number of rows. Callers answer a batch of zero rows before any kernel runs:
/// with no rows `dim` may be any size at all, and kernels need not handle that.
#[inline]
pub(crate) fn rows(a: &[f32], b: &[f32], dim: usize) -> Result<usize, Error> {
    if dim == 0 {
        return Err(Error::ZeroDimension);
    }
    same_len("b", a.len(), b.len())?;
    if !a.len().is_multiple_of(dim) {
        return Err(Error::NotMultipleOfDim {
            argument: "a",
            len: a.len(),
            dim,
        });
    }
    Ok(a.len() / dim)
}

/// The label of a pair lies in `[0, 1]` (NaN does not); an error names it as index 0.
#[inline]
pub(crate) fn label(label: f32) -> Result<(), Error> {
    if (0.0..=1.0).contains(&label) {
        Ok(())
    } else {
        Err(Error::InvalidLabel { index: 0, label })
    }
}

/// Every label lies in `[0, 1]` (NaN does not).
#[inline]
pub(crate) fn labels(labels: &[f32]) -> Result<(), Error> {
    labels_from(0, labels)
}

/// Every label lies in `[0, 1]`; `labels` starts at index `first` of the caller's labels
/// (the index an error names).
#[inline]
pub(crate) fn labels_from(first: usize, labels: &[f32]) -> Result<(), Error> {
    // Without an early exit, so that it compiles to vector compares (a label a cycle or
    // two otherwise, as much as the loss itself at d = 2); the index only on failure.
    // Not `contains`: its `&&` keeps the loop scalar (batch at d = 2 39% slower).
    #[allow(clippy::manual_range_contains)]
    let valid = labels
        .iter()
        .fold(true, |ok, &l| ok & (l >= 0.0) & (l <= 1.0));
    if valid {
        Ok(())
    } else {
        first_invalid_label(first, labels)
    }
}

#[cold]
#[inline(never)]
fn first_invalid_label(first: usize, labels: &[f32]) -> Result<(), Error> {
    match labels.iter().position(|l| !(0.0..=1.0).contains(l)) {
        None => Ok(()),
        Some(index) => Err(Error::InvalidLabel {
            index: first + index,
            label: labels[index],
        }),
    }
}

/// A margin is finite and non-negative.
#[inline]
pub(crate) fn margin(margin: f32) -> Result<(), Error> {
    if in_finite_non_negative(margin) {
        Ok(())
    } else {
        Err(Error::InvalidMargin { margin })
    }
}

/// A term weight is finite and non-negative.
#[inline]
pub(crate) fn weight(argument: &'static str, weight: f32) -> Result<(), Error> {
    if in_finite_non_negative(weight) {
        Ok(())
    } else {
        Err(Error::InvalidWeight { argument, weight })
    }
}

/// `0 ≤ x ≤ f32::MAX` (−0 included, NaN and infinities not), on the bits: `+0` up to
/// `f32::MAX` are the patterns below that of `+∞`, and `−0` is the sign bit alone. Integer
/// comparisons: on Cortex-M4F fewer bytes than `is_finite() && x >= 0.0`, and on cores
/// without an FPU no call to a float comparison routine.
#[inline(always)]
fn in_finite_non_negative(x: f32) -> bool {
    let bits = x.to_bits();
    bits < f32::INFINITY.to_bits() || bits == (-0.0f32).to_bits()
}
