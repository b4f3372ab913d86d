//! The one error type of the crate.

use core::fmt;

/// Why a call was refused. Every check is always on (never a `debug_assert`), and every
/// variant names the argument at fault and the sizes or value that were wrong.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Error {
    /// Two slices that must have the same length do not.
    LengthMismatch {
        /// The argument whose length is wrong (for example `"b"` or `"grad_a"`).
        argument: &'static str,
        /// The length it must have.
        expected: usize,
        /// The length it has.
        found: usize,
    },
    /// A batch was given `dim == 0`.
    ZeroDimension,
    /// A batch buffer's length is not a multiple of `dim`.
    NotMultipleOfDim {
        /// The argument at fault.
        argument: &'static str,
        /// Its length.
        len: usize,
        /// The row length it must be a multiple of.
        dim: usize,
    },
    /// The margin is negative, NaN or infinite.
    InvalidMargin {
        /// The margin given.
        margin: f32,
    },
    /// A term weight is negative, NaN or infinite.
    InvalidWeight {
        /// `"positive_weight"` or `"negative_weight"`.
        argument: &'static str,
        /// The weight given.
        weight: f32,
    },
    /// A label is outside `[0, 1]` or NaN.
    InvalidLabel {
        /// Its position in the label slice.
        index: usize,
        /// The label given.
        label: f32,
    },
    /// A mean over zero pairs (or a division by an empty length) was asked for.
    Empty {
        /// The argument that is empty.
        argument: &'static str,
    },
    /// A loss parameter other than the margin or a weight (an `eps`, say) is outside the
    /// range its documentation gives.
    InvalidParameter {
        /// The parameter at fault (for example `"eps"`).
        argument: &'static str,
        /// The value given.
        value: f32,
    },
    /// A caller-provided scratch buffer is shorter than the call needs (see the
    /// `scratch_len` of the function called).
    ScratchTooShort {
        /// The length the call needs.
        needed: usize,
        /// The length given.
        found: usize,
    },
    /// The requested kernel backend cannot run on this CPU or target.
    BackendUnavailable {
        /// The backend asked for.
        backend: crate::Backend,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::LengthMismatch {
                argument,
                expected,
                found,
            } => write!(f, "`{argument}` has length {found}, expected {expected}"),
            Error::ZeroDimension => {
                f.write_str("`dim` is 0; a batch needs rows of at least one element")
            }
            Error::NotMultipleOfDim { argument, len, dim } => write!(
                f,
                "`{argument}` has length {len}, which is not a multiple of dim = {dim}"
            ),
            Error::InvalidMargin { margin } => {
                write!(f, "margin {margin} is not finite and non-negative")
            }
            Error::InvalidWeight { argument, weight } => {
                write!(f, "`{argument}` = {weight} is not finite and non-negative")
            }
            Error::InvalidLabel { index, label } => {
                write!(f, "label {label} at index {index} is outside [0, 1]")
            }
            Error::Empty { argument } => {
                write!(f, "`{argument}` is empty; its mean is undefined")
            }
            Error::InvalidParameter { argument, value } => {
                write!(f, "`{argument}` = {value} is outside its valid range")
            }
            Error::ScratchTooShort { needed, found } => {
                write!(f, "`scratch` has length {found}, at least {needed} needed")
            }
            Error::BackendUnavailable { backend } => {
                write!(
                    f,
                    "backend {backend:?} is not available on this CPU or target"
                )
            }
        }
    }
}

impl core::error::Error for Error {}
