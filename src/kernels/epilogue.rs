//! The contrastive epilogue of a block of rows: losses and gradient coefficients from the
//! rows' squared distances. Plain Rust without branches over fixed arrays, so that it
//! compiles to vector code; each backend instantiates it under its own target features
//! (AVX-512 gets 16 rows per instruction, the baseline 4).

use crate::numerics;

/// Rows per block.
pub(crate) const EPILOGUE_ROWS: usize = 64;

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
/// bounded by this loop, not by memory). Rows that [`needs_care`] get a loss of 0; returns
/// whether there are any. `params` is `[w⁺, w⁻, m, 2c]`.
#[inline(always)]
pub(crate) fn contrastive_epilogue(
    sums: &[f32; EPILOGUE_ROWS],
    labels: &[f32; EPILOGUE_ROWS],
    params: [f32; 4],
    gradient: bool,
    losses: &mut [f32; EPILOGUE_ROWS],
    coefficients: &mut [f32; EPILOGUE_ROWS],
) -> bool {
    if gradient {
        rows::<true>(sums, labels, params, losses, coefficients)
    } else {
        rows::<false>(sums, labels, params, losses, coefficients)
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
) -> bool {
    let [positive, negative, margin, two_c] = params;
    let mut flagged = 0u32;
    for r in 0..EPILOGUE_ROWS {
        let (s, y) = (sums[r], labels[r]);
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
        flagged |= u32::from(care);
        losses[r] = if care { 0.0 } else { similar + dissimilar };
        coefficients[r] = k;
    }
    flagged != 0
}
