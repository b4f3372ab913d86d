//! The error of an f32 result in ULP against f64: shared by tests/softmax_exp.rs and
//! examples/exp_ulp.rs (which includes this file by path).

/// The distance in ULP of `got` from `want` (f64), counting in the spacing of f32 at
/// `want` (the subnormal spacing below the normal range); 0 when both overflow to the
/// same infinity (`want` beyond f32::MAX: f32 overflow is the right answer) or are both
/// NaN.
pub fn ulps(got: f32, want: f64) -> f64 {
    if got.is_nan() || want.is_nan() {
        return if got.is_nan() && want.is_nan() {
            0.0
        } else {
            f64::INFINITY
        };
    }
    let w32 = want as f32;
    if w32.is_infinite() || got.is_infinite() {
        return if got == w32 { 0.0 } else { f64::INFINITY };
    }
    let a = want.abs().max(f64::from(f32::MIN_POSITIVE));
    let spacing = 2f64.powi(a.log2().floor() as i32 - 23);
    (f64::from(got) - want).abs() / spacing
}
