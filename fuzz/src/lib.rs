//! Shared parts of the fuzz targets: the float64 oracle (the very file the trust tests
//! use, so the fuzzers and the tests check one contract) and a decoder that turns the
//! fuzzer's bytes into vectors that reach every numerical regime: ordinary values, one
//! magnitude from the smallest subnormal to `f32::MAX`, mixed magnitudes within a vector,
//! NaN, infinities, signed zeros, and pairs at zero or a few ulps of distance.

#[path = "../../tests/common/trust_oracle.rs"]
pub mod oracle;
#[path = "../../tests/common/softmax_oracle.rs"]
pub mod softmax_oracle;

pub use libfuzzer_sys::arbitrary::{Result, Unstructured};

/// Values worth hitting on purpose.
pub const SPECIALS: [f32; 16] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    f32::INFINITY,
    f32::NEG_INFINITY,
    f32::NAN,
    f32::MIN_POSITIVE,
    -f32::MIN_POSITIVE,
    1.0e-45, // the smallest subnormal
    -1.0e-45,
    f32::MAX,
    f32::MIN,
    1.0e19, // where a square overflows
    1.0e-20,
    f32::EPSILON,
];

/// `m·2^e` for a mantissa `m ∈ [1, 2)` from the fuzzer's bits; any `e` in `[-150, 128]`
/// gives every f32 magnitude, subnormals and overflow to infinity included.
fn scaled(u: &mut Unstructured, exponent: i32) -> Result<f32> {
    let bits: u32 = u.arbitrary()?;
    let mantissa = f32::from_bits(0x3f80_0000 | (bits & 0x007f_ffff));
    let sign = if bits & 0x8000_0000 != 0 { -1.0 } else { 1.0 };
    Ok((sign * f64::from(mantissa) * 2f64.powi(exponent)) as f32)
}

fn exponent(u: &mut Unstructured) -> Result<i32> {
    u.int_in_range(-150..=128)
}

/// How the components of one vector are drawn.
#[derive(Clone, Copy, Debug)]
enum Regime {
    /// One magnitude `2^e` (±3 binades) for the whole vector.
    Magnitude(i32),
    /// Every component at its own magnitude.
    Mixed,
    /// One magnitude, with NaN, infinities and other specials sprinkled in.
    Sprinkled(i32),
    /// Raw bit patterns (NaN payloads included).
    Bits,
    /// Small integers: exact arithmetic, cancellations, zeros.
    Integers,
}

fn regime(u: &mut Unstructured) -> Result<Regime> {
    Ok(match u.int_in_range(0..=7u8)? {
        0..=2 => Regime::Magnitude(exponent(u)?),
        3 => Regime::Mixed,
        4 => Regime::Sprinkled(exponent(u)?),
        5 => Regime::Bits,
        _ => Regime::Integers,
    })
}

fn component(u: &mut Unstructured, r: Regime) -> Result<f32> {
    Ok(match r {
        Regime::Magnitude(e) => {
            let jitter = u.int_in_range(-3..=3)?;
            scaled(u, (e + jitter).clamp(-150, 128))?
        }
        Regime::Mixed => {
            let e = exponent(u)?;
            scaled(u, e)?
        }
        Regime::Sprinkled(e) => {
            if u.ratio(1u8, 8u8)? {
                *u.choose(&SPECIALS)?
            } else {
                scaled(u, e)?
            }
        }
        Regime::Bits => f32::from_bits(u.arbitrary()?),
        Regime::Integers => f32::from(u.int_in_range(-4i8..=4)?),
    })
}

/// A vector of `n` components in one regime.
pub fn vector(u: &mut Unstructured, n: usize) -> Result<Vec<f32>> {
    let r = regime(u)?;
    (0..n).map(|_| component(u, r)).collect()
}

/// A second vector for `a`: independent, equal to `a`, or `a` nudged by a few ulps in some
/// components (distances at and just above zero, where the rescaling paths run).
pub fn partner(u: &mut Unstructured, a: &[f32]) -> Result<Vec<f32>> {
    match u.int_in_range(0..=5u8)? {
        0 => Ok(a.to_vec()),
        1 => a
            .iter()
            .map(|&x| {
                let step: i8 = u.int_in_range(-3..=3)?;
                Ok(f32::from_bits(
                    x.to_bits().wrapping_add_signed(i32::from(step)),
                ))
            })
            .collect(),
        2 => {
            // b = a + small: the difference is far below the components.
            let e = exponent(u)?;
            a.iter()
                .map(|&x| Ok(x + scaled(u, e)?))
                .collect::<Result<Vec<f32>>>()
        }
        _ => vector(u, a.len()),
    }
}

/// `values` placed at `offset` floats into a fresh buffer: the slice `&buf[offset..]`
/// starts misaligned for every vector width when `offset` is not a multiple of 16.
pub fn placed(values: &[f32], offset: usize) -> Vec<f32> {
    let mut buf = vec![f32::from_bits(0x7fa0_0bad); offset];
    buf.extend_from_slice(values);
    buf
}

/// A start offset in floats, 0 to 15.
pub fn offset(u: &mut Unstructured) -> Result<usize> {
    Ok(usize::from(u.int_in_range(0..=15u8)?))
}

/// A label: 0, 1, or soft in `[0, 1]` (from a coarse grid, or any f32 in range).
pub fn label(u: &mut Unstructured) -> Result<f32> {
    Ok(match u.int_in_range(0..=5u8)? {
        0 | 1 => 0.0,
        2 | 3 => 1.0,
        4 => f32::from(u.int_in_range(0..=16u8)?) / 16.0,
        _ => {
            // Any soft label, subnormals included.
            let e = u.int_in_range(-150..=0)?;
            let x = scaled(u, e)?.abs();
            if x <= 1.0 { x } else { 2.0 - x }
        }
    })
}

/// A finite, non-negative value for a margin or a weight: usually a familiar one, else
/// any value with a binary exponent in `exponents`.
pub fn non_negative(
    u: &mut Unstructured,
    familiar: &[f32],
    exponents: core::ops::RangeInclusive<i32>,
) -> Result<f32> {
    if u.ratio(3u8, 4u8)? {
        return Ok(*u.choose(familiar)?);
    }
    let e = u.int_in_range(exponents)?;
    let x = scaled(u, e)?.abs();
    Ok(if x.is_finite() { x } else { f32::MAX })
}

/// Panics with the case when a check failed: libFuzzer records the input as a crash.
pub fn require(result: core::result::Result<(), String>, context: impl FnOnce() -> String) {
    if let Err(message) = result {
        panic!("mismatch: {message}\n  case: {}", context());
    }
}
