//! Distances between two vectors, robust to extreme magnitudes: validate, then call the
//! kernels of the best backend (or of a named one, through [`Backend`]'s methods).

#![forbid(unsafe_code)]

use crate::kernels::{self, Kernels};
use crate::numerics::{Cosine, Separation};
use crate::{Backend, Error, check};

/// `Σ (a[i] − b[i])²`.
///
/// Accurate for components from 1e-38 to 1e38 (see the crate's numerical guarantees):
/// a sum that underflows or overflows in f32 is recomputed with a power-of-two scale.
///
/// # Errors
///
/// [`Error::LengthMismatch`] if `b` is not as long as `a`.
///
/// # Examples
///
/// ```
/// use contrastive::{Error, squared_euclidean};
///
/// assert_eq!(squared_euclidean(&[1.0, 2.0], &[4.0, 6.0])?, 25.0);
///
/// let err = squared_euclidean(&[1.0, 2.0], &[4.0]).unwrap_err();
/// assert_eq!(err, Error::LengthMismatch { argument: "b", expected: 2, found: 1 });
/// # Ok::<(), contrastive::Error>(())
/// ```
#[inline]
pub fn squared_euclidean(a: &[f32], b: &[f32]) -> Result<f32, Error> {
    squared_euclidean_with(kernels::select(None)?, a, b)
}

/// `√Σ (a[i] − b[i])²`, right for components from the smallest subnormal to `f32::MAX`.
///
/// # Errors
///
/// [`Error::LengthMismatch`] if `b` is not as long as `a`.
///
/// # Examples
///
/// ```
/// let d = contrastive::euclidean(&[1e-30, 0.0], &[0.0, 1e-30])?;
/// assert!((d / 1.414_213_5e-30 - 1.0).abs() < 1e-6); // plain f32 would give 0
/// # Ok::<(), contrastive::Error>(())
/// ```
#[inline]
pub fn euclidean(a: &[f32], b: &[f32]) -> Result<f32, Error> {
    euclidean_with(kernels::select(None)?, a, b)
}

/// `Σ a[i]·b[i]`.
///
/// # Errors
///
/// [`Error::LengthMismatch`] if `b` is not as long as `a`.
///
/// # Examples
///
/// ```
/// assert_eq!(contrastive::dot(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0])?, 32.0);
/// # Ok::<(), contrastive::Error>(())
/// ```
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> Result<f32, Error> {
    dot_with(kernels::select(None)?, a, b)
}

/// `a·b / (‖a‖‖b‖)`, clamped to `[-1, 1]`; 0 when either vector is zero (including empty
/// vectors); NaN when any component is NaN or infinite.
///
/// # Errors
///
/// [`Error::LengthMismatch`] if `b` is not as long as `a`.
///
/// # Examples
///
/// ```
/// let c = contrastive::cosine_similarity(&[1.0, 0.0], &[1.0, 1.0])?;
/// assert!((c - core::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
/// # Ok::<(), contrastive::Error>(())
/// ```
#[inline]
pub fn cosine_similarity(a: &[f32], b: &[f32]) -> Result<f32, Error> {
    cosine_similarity_with(kernels::select(None)?, a, b)
}

/// Squared distances of row-major batches: `out[r] = Σ (a_r − b_r)²` for each of the
/// `a.len() / dim` rows. A zero-row batch (`a` and `b` empty, `out` empty) is `Ok` for
/// any `dim > 0`.
///
/// # Errors
///
/// - [`Error::ZeroDimension`] if `dim == 0`;
/// - [`Error::LengthMismatch`] if `b` is not as long as `a`, or `out` does not hold one
///   element per row;
/// - [`Error::NotMultipleOfDim`] if `a` is not a whole number of rows.
///
/// # Examples
///
/// ```
/// use contrastive::{Error, squared_euclidean_rows};
///
/// // Two rows of dim 2.
/// let (a, b) = ([0.0, 0.0, 1.0, 1.0], [3.0, 4.0, 1.0, 1.0]);
/// let mut out = [0.0; 2];
/// squared_euclidean_rows(&a, &b, 2, &mut out)?;
/// assert_eq!(out, [25.0, 0.0]);
///
/// // Four floats are not a whole number of rows of dim 3.
/// let err = squared_euclidean_rows(&a, &b, 3, &mut out).unwrap_err();
/// assert_eq!(err, Error::NotMultipleOfDim { argument: "a", len: 4, dim: 3 });
/// # Ok::<(), contrastive::Error>(())
/// ```
#[inline]
pub fn squared_euclidean_rows(
    a: &[f32],
    b: &[f32],
    dim: usize,
    out: &mut [f32],
) -> Result<(), Error> {
    squared_euclidean_rows_with(kernels::select(None)?, a, b, dim, out)
}

impl Backend {
    /// [`squared_euclidean`] on this backend.
    ///
    /// # Errors
    ///
    /// [`Error::BackendUnavailable`] if this backend cannot run on this CPU or target (see
    /// [`Backend::is_available`]); otherwise as [`squared_euclidean`].
    ///
    /// # Examples
    ///
    /// ```
    /// use contrastive::{Backend, Error};
    ///
    /// for backend in Backend::available() {
    ///     assert_eq!(backend.squared_euclidean(&[1.0, 2.0], &[4.0, 6.0])?, 25.0);
    /// }
    /// match Backend::Avx512.squared_euclidean(&[1.0, 2.0], &[4.0, 6.0]) {
    ///     Ok(s) => assert_eq!(s, 25.0),
    ///     Err(e) => assert_eq!(e, Error::BackendUnavailable { backend: Backend::Avx512 }),
    /// }
    /// # Ok::<(), contrastive::Error>(())
    /// ```
    #[inline]
    pub fn squared_euclidean(self, a: &[f32], b: &[f32]) -> Result<f32, Error> {
        squared_euclidean_with(kernels::table(self)?, a, b)
    }
    /// [`euclidean`] on this backend.
    ///
    /// # Errors
    ///
    /// [`Error::BackendUnavailable`] if this backend cannot run on this CPU or target (see
    /// [`Backend::is_available`]); otherwise as [`euclidean`].
    ///
    /// # Examples
    ///
    /// ```
    /// use contrastive::{Backend, Error};
    ///
    /// for backend in Backend::available() {
    ///     assert_eq!(backend.euclidean(&[1.0, 2.0], &[4.0, 6.0])?, 5.0);
    /// }
    /// match Backend::Avx512.euclidean(&[1.0, 2.0], &[4.0, 6.0]) {
    ///     Ok(d) => assert_eq!(d, 5.0),
    ///     Err(e) => assert_eq!(e, Error::BackendUnavailable { backend: Backend::Avx512 }),
    /// }
    /// # Ok::<(), contrastive::Error>(())
    /// ```
    #[inline]
    pub fn euclidean(self, a: &[f32], b: &[f32]) -> Result<f32, Error> {
        euclidean_with(kernels::table(self)?, a, b)
    }
    /// [`dot`] on this backend.
    ///
    /// # Errors
    ///
    /// [`Error::BackendUnavailable`] if this backend cannot run on this CPU or target (see
    /// [`Backend::is_available`]); otherwise as [`dot`].
    ///
    /// # Examples
    ///
    /// ```
    /// use contrastive::{Backend, Error};
    ///
    /// for backend in Backend::available() {
    ///     assert_eq!(backend.dot(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0])?, 32.0);
    /// }
    /// match Backend::Avx512.dot(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]) {
    ///     Ok(p) => assert_eq!(p, 32.0),
    ///     Err(e) => assert_eq!(e, Error::BackendUnavailable { backend: Backend::Avx512 }),
    /// }
    /// # Ok::<(), contrastive::Error>(())
    /// ```
    #[inline]
    pub fn dot(self, a: &[f32], b: &[f32]) -> Result<f32, Error> {
        dot_with(kernels::table(self)?, a, b)
    }
    /// [`cosine_similarity`] on this backend.
    ///
    /// # Errors
    ///
    /// [`Error::BackendUnavailable`] if this backend cannot run on this CPU or target (see
    /// [`Backend::is_available`]); otherwise as [`cosine_similarity`].
    ///
    /// # Examples
    ///
    /// ```
    /// use contrastive::{Backend, Error};
    ///
    /// for backend in Backend::available() {
    ///     assert_eq!(backend.cosine_similarity(&[3.0, 4.0], &[6.0, 8.0])?, 1.0);
    /// }
    /// match Backend::Avx512.cosine_similarity(&[3.0, 4.0], &[0.0, 0.0]) {
    ///     Ok(c) => assert_eq!(c, 0.0),
    ///     Err(e) => assert_eq!(e, Error::BackendUnavailable { backend: Backend::Avx512 }),
    /// }
    /// # Ok::<(), contrastive::Error>(())
    /// ```
    #[inline]
    pub fn cosine_similarity(self, a: &[f32], b: &[f32]) -> Result<f32, Error> {
        cosine_similarity_with(kernels::table(self)?, a, b)
    }
    /// [`squared_euclidean_rows`] on this backend.
    ///
    /// # Errors
    ///
    /// [`Error::BackendUnavailable`] if this backend cannot run on this CPU or target (see
    /// [`Backend::is_available`]); otherwise as [`squared_euclidean_rows`].
    ///
    /// # Examples
    ///
    /// ```
    /// use contrastive::{Backend, Error};
    ///
    /// let mut out = [0.0; 2];
    /// for backend in Backend::available() {
    ///     backend.squared_euclidean_rows(&[0.0, 0.0, 1.0, 1.0], &[3.0, 4.0, 1.0, 1.0], 2, &mut out)?;
    ///     assert_eq!(out, [25.0, 0.0]);
    /// }
    /// match Backend::Avx512.squared_euclidean_rows(&[1.0], &[3.0], 1, &mut out[..1]) {
    ///     Ok(()) => assert_eq!(out[0], 4.0),
    ///     Err(e) => assert_eq!(e, Error::BackendUnavailable { backend: Backend::Avx512 }),
    /// }
    /// # Ok::<(), contrastive::Error>(())
    /// ```
    #[inline]
    pub fn squared_euclidean_rows(
        self,
        a: &[f32],
        b: &[f32],
        dim: usize,
        out: &mut [f32],
    ) -> Result<(), Error> {
        squared_euclidean_rows_with(kernels::table(self)?, a, b, dim, out)
    }
}

// Inlined into each public function, so that a call costs one indirect call into the
// kernel, not two calls (a pair at d = 16 is a few nanoseconds of work).
#[inline]
fn squared_euclidean_with(k: &Kernels, a: &[f32], b: &[f32]) -> Result<f32, Error> {
    check::same_len("b", a.len(), b.len())?;
    Ok((k.robust_squared_euclidean)(a, b))
}

#[inline]
fn euclidean_with(k: &Kernels, a: &[f32], b: &[f32]) -> Result<f32, Error> {
    check::same_len("b", a.len(), b.len())?;
    Ok(Separation::of(k, a, b).distance)
}

#[inline]
fn dot_with(k: &Kernels, a: &[f32], b: &[f32]) -> Result<f32, Error> {
    check::same_len("b", a.len(), b.len())?;
    let plain = (k.dot)(a, b);
    if plain.is_finite() {
        Ok(plain)
    } else {
        Ok(crate::numerics::dot_rescaled(a, b, plain))
    }
}

#[inline]
fn cosine_similarity_with(k: &Kernels, a: &[f32], b: &[f32]) -> Result<f32, Error> {
    check::same_len("b", a.len(), b.len())?;
    Ok(Cosine::of(k, a, b).cos)
}

#[inline]
fn squared_euclidean_rows_with(
    k: &Kernels,
    a: &[f32],
    b: &[f32],
    dim: usize,
    out: &mut [f32],
) -> Result<(), Error> {
    let rows = check::rows(a, b, dim)?;
    check::same_len("out", rows, out.len())?;
    if rows == 0 {
        return Ok(());
    }
    (k.squared_euclidean_rows)(a, b, dim, out);
    for ((s, ra), rb) in out
        .iter_mut()
        .zip(a.chunks_exact(dim))
        .zip(b.chunks_exact(dim))
    {
        *s = crate::numerics::squared_or_rescaled(*s, ra, rb);
    }
    Ok(())
}
