//! `e^x` for f32 without libm: the scalar and `wide` backends (the x86-64 backends write
//! the same steps in intrinsics, in `x86_64/dot_tile.rs`).
//!
//! The method, the same on every backend:
//! 1. clamp `x` to `[-104, 89]` (below, `e^x` rounds to 0; above, it overflows to `+∞`),
//! 2. `n = round(x·log₂e)` by the `1.5·2²³` trick, `r = x − n·ln2` with `ln2` split in a
//!    high part exact in 9 bits and a low part (Cody and Waite), so `|r| ≤ ln2/2 + ε`,
//! 3. `e^r ≈ 1 + r + r²·P(r)`, `P` of degree 5 (Cephes `expf`'s minimax coefficients),
//! 4. `e^x = e^r · 2^(n − ⌊n/2⌋) · 2^⌊n/2⌋`: two exact power-of-two factors, each a normal
//!    number, so that results in the subnormal range round once and `n = 128` (x up to
//!    88.72) does not overflow the exponent field,
//! 5. NaN is passed through.
//!
//! Bound: 1.5 ULP against the exact `e^x` over the whole f32 range, subnormal results
//! included. Measured by a sweep of all 2³² inputs against f64 (`examples/exp_ulp.rs`):
//! at most 0.990 ULP where the polynomial rounds twice per step (scalar, and `wide` on
//! SSE2), at most 1.010 ULP with FMA (AVX2, AVX-512; 22 inputs above 1 ULP);
//! `tests/softmax_exp.rs` keeps a strided sweep at the 1.5 ULP bound. `e^(−∞) = 0`,
//! `e^(+∞) = +∞`, `e^NaN = NaN`.

#![forbid(unsafe_code)]

/// Inputs below this give 0 (`e^−104 < 2⁻¹⁵⁰`, half the smallest subnormal).
pub(crate) const EXP_LO: f32 = -104.0;
/// Inputs above this give `+∞` (`e^89 > f32::MAX`).
pub(crate) const EXP_HI: f32 = 89.0;
/// `log₂ e`.
pub(crate) const LOG2E: f32 = core::f32::consts::LOG2_E;
/// `1.5·2²³`: adding and subtracting it rounds to the nearest integer (|v| < 2²²).
pub(crate) const ROUNDER: f32 = 12_582_912.0;
/// The high part of `ln 2`, exact in 9 bits, so `n·LN2_HI` is exact for `|n| ≤ 2⁸`.
pub(crate) const LN2_HI: f32 = 0.693_359_4;
/// `ln 2 − LN2_HI`.
pub(crate) const LN2_LO: f32 = -2.121_944_4e-4;
/// `P(r)` of `e^r ≈ 1 + r + r²·P(r)`, highest degree first.
pub(crate) const P: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5,
];

/// `e^x` of one f32, by the steps of the module docs (two roundings per polynomial step:
/// no FMA is assumed).
#[inline]
pub(crate) fn exp_f32(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    let xc = x.clamp(EXP_LO, EXP_HI);
    let n = (xc * LOG2E + ROUNDER) - ROUNDER;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let mut p = P[0];
    for c in &P[1..] {
        p = p * r + c;
    }
    let e = (r * r) * p + r + 1.0;
    let n = n as i32;
    let half = n >> 1;
    e * pow2(n - half) * pow2(half)
}

/// `2^k` for `k` in the normal exponent range.
#[inline(always)]
fn pow2(k: i32) -> f32 {
    f32::from_bits(((k + 127) as u32) << 23)
}

/// `e^x` of each element, in place, one at a time.
pub(crate) fn exp_in_place_scalar(x: &mut [f32]) {
    for v in x {
        *v = exp_f32(*v);
    }
}

/// `e^x` of each lane of a `wide::f32x8`: the same steps, lane-wise (FMA where the build
/// has it, two roundings otherwise).
#[inline]
pub(crate) fn exp_f32x8(x: wide::f32x8) -> wide::f32x8 {
    use wide::{f32x8, i32x8};
    let xc = x
        .fast_max(f32x8::splat(EXP_LO))
        .fast_min(f32x8::splat(EXP_HI));
    let rounder = f32x8::splat(ROUNDER);
    let n = xc.mul_add(f32x8::splat(LOG2E), rounder) - rounder;
    let r = n.mul_neg_add(f32x8::splat(LN2_HI), xc);
    let r = n.mul_neg_add(f32x8::splat(LN2_LO), r);
    let mut p = f32x8::splat(P[0]);
    for c in &P[1..] {
        p = p.mul_add(r, f32x8::splat(*c));
    }
    let e = (r * r).mul_add(p, r) + f32x8::splat(1.0);
    let n: i32x8 = n.fast_round_int();
    let half = n >> 1;
    let bias = i32x8::splat(127);
    let hi: f32x8 = wide::bytemuck::cast((n - half + bias) << 23);
    let lo: f32x8 = wide::bytemuck::cast((half + bias) << 23);
    let y = e * hi * lo;
    x.is_nan().bitselect(x, y)
}

/// `e^x` of each element, in place, eight at a time with `wide`.
pub(crate) fn exp_in_place_wide(x: &mut [f32]) {
    let (chunks, tail) = x.as_chunks_mut::<8>();
    for c in chunks {
        *c = exp_f32x8(wide::f32x8::new(*c)).to_array();
    }
    if !tail.is_empty() {
        let mut buf = [0.0f32; 8];
        buf[..tail.len()].copy_from_slice(tail);
        let out = exp_f32x8(wide::f32x8::new(buf)).to_array();
        tail.copy_from_slice(&out[..tail.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_exp_is_close_on_a_few_points() {
        for &x in &[0.0f32, 1.0, -1.0, 10.0, -10.0, 88.5, -87.0, -100.0, 0.5] {
            let want = libm::exp(f64::from(x));
            let got = f64::from(exp_f32(x));
            assert!(
                (got - want).abs() <= want * 4.0 * f64::from(f32::EPSILON) + 1e-45,
                "{x}: {got} vs {want}"
            );
        }
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert!(exp_f32(f32::NAN).is_nan());
    }
}
