//! The contrastive epilogue of a block of rows: losses and gradient coefficients from the
//! rows' squared distances. Plain Rust without branches over fixed arrays, so that it
//! compiles to vector code; each backend instantiates it under its own target features
//! (AVX-512 gets 16 rows per instruction, the baseline 4).

use crate::numerics;

/// Rows per epilogue call (a block holds one or more such chunks).
pub(crate) const EPILOGUE_ROWS: usize = 64;

/// What the epilogue found in its rows.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Summary {
    /// `Σ losses`, in f64 (flagged rows count 0 until the caller fixes them).
    pub sum: f64,
    /// Whether some row [`needs_care`].
    pub flagged: bool,
    /// Whether every label lies in `[0, 1]` (NaN does not).
    pub labels_valid: bool,
}

/// Whether a row's plain result cannot be trusted: its sum is zero, subnormal, infinite
/// or NaN, or its coefficient overflowed. (Comparisons only, so that it vectorizes.)
#[inline(always)]
pub(crate) fn needs_care(sum: f32, coefficient: f32) -> bool {
    !(f32::MIN_POSITIVE..=f32::MAX).contains(&sum)
        | (coefficient.abs() > f32::MAX)
        | coefficient.is_nan()
}

/// For every row `r`, with `p = w⁺·y`, `q = w⁻·(1 − y)`, `D = √s` and `h = m − D`:
/// `losses[r] = p·s + q·h²` and, with `gradient`, `coefficients[r] = 2c·(p − q·h/D)`
/// (terms with a zero weight, or an inactive hinge, not evaluated); without, the
/// coefficients are 0 and no division runs (the forward pass of a batch at d = 2 is
/// bounded by this loop, not by memory). Rows that [`needs_care`] get a loss of 0.
/// `params` is `[w⁺, w⁻, m, 2c]`; `sum_losses` is the backend's [`sum_f64`]. The label
/// check and the f64 sum run here, not in the caller, so that they too get the backend's
/// vectors (at d = 2 they cost as much as the loss itself in baseline x86-64 code).
#[inline(always)]
pub(crate) fn contrastive_epilogue(
    sums: &[f32; EPILOGUE_ROWS],
    labels: &[f32; EPILOGUE_ROWS],
    params: [f32; 4],
    gradient: bool,
    losses: &mut [f32; EPILOGUE_ROWS],
    coefficients: &mut [f32; EPILOGUE_ROWS],
    sum_losses: impl FnOnce(&[f32; EPILOGUE_ROWS]) -> f64,
) -> Summary {
    let (flagged, labels_valid) = if gradient {
        rows::<true>(sums, labels, params, losses, coefficients)
    } else {
        rows::<false>(sums, labels, params, losses, coefficients)
    };
    Summary {
        sum: sum_losses(losses),
        flagged,
        labels_valid,
    }
}

/// [`contrastive_epilogue`], with `GRADIENT` known at compile time.
#[inline(always)]
fn rows<const GRADIENT: bool>(
    sums: &[f32; EPILOGUE_ROWS],
    labels: &[f32; EPILOGUE_ROWS],
    params: [f32; 4],
    losses: &mut [f32; EPILOGUE_ROWS],
    coefficients: &mut [f32; EPILOGUE_ROWS],
) -> (bool, bool) {
    let mut flagged = 0u32;
    let mut labels_valid = true;
    for r in 0..EPILOGUE_ROWS {
        let (s, y) = (sums[r], labels[r]);
        // Not `contains`: its `&&` would keep the loop scalar.
        #[allow(clippy::manual_range_contains)]
        let valid = (y >= 0.0) & (y <= 1.0);
        labels_valid &= valid;
        let (loss, k, care) = contrastive_row::<GRADIENT>(s, y, params);
        flagged |= u32::from(care);
        losses[r] = loss;
        coefficients[r] = k;
    }
    (flagged != 0, labels_valid)
}

/// One row of [`contrastive_epilogue`]: `(loss, coefficient, needs care)` from the row's
/// squared distance `s` and label `y` (the loss is 0 where the row [`needs_care`]). Also
/// what the one-pass kernels of long rows compute per row, so that they give the same
/// bits.
#[inline(always)]
pub(crate) fn contrastive_row<const GRADIENT: bool>(
    s: f32,
    y: f32,
    params: [f32; 4],
) -> (f32, f32, bool) {
    let [positive, negative, margin, two_c] = params;
    let (p, q) = (positive * y, negative * (1.0 - y));
    let d = numerics::sqrt(s);
    let h = margin - d;
    let active = (q != 0.0) & (h > 0.0);
    let similar = if p != 0.0 { p * s } else { 0.0 };
    let dissimilar = if active { q * h * h } else { 0.0 };
    let k = if GRADIENT {
        let k_similar = if p != 0.0 { two_c * p } else { 0.0 };
        let k_dissimilar = if active { two_c * q * h / d } else { 0.0 };
        k_similar - k_dissimilar
    } else {
        0.0
    };
    let care = needs_care(s, k);
    (if care { 0.0 } else { similar + dissimilar }, k, care)
}

/// `Σ x` in f64, with eight independent partial sums. Not inlined: inlined after the
/// epilogue's loop, LLVM left it as 64 scalar conversions and additions in a default
/// release build; on its own it is vectorized (SSE2 on x86-64). The AVX-512 backend has a
/// wider one.
#[inline(never)]
pub(crate) fn sum_f64(x: &[f32; EPILOGUE_ROWS]) -> f64 {
    let mut partial = [0.0f64; 8];
    for chunk in x.chunks_exact(8) {
        for (p, &v) in partial.iter_mut().zip(chunk) {
            *p += f64::from(v);
        }
    }
    partial.iter().sum()
}
