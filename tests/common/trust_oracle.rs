//! A float64 oracle for `contrastive` and the bounds the crate documents, shared by the
//! tests (through `tests/common/`) and the fuzz targets (`fuzz/src/lib.rs` includes this
//! file by path, so both check the same contract).
//!
//! The oracle is written from the definitions of the crate docs and docs/guarantees.md, independently of the
//! crate's kernels: every sum is taken in f64, where the squares and products of any two
//! f32 values are finite and normal (2⁻²⁹⁸ ≤ |x·y| ≤ 2²⁵⁶), so the reference is the exact
//! value up to a relative 2⁻⁴⁵ for the lengths used here.
//!
//! Bounds (docs/guarantees.md, with `u = 2⁻²⁴`, `n` the vector length):
//! - `squared_euclidean`: `(n + 4)·u·Σδ²`; `euclidean`: `(n/2 + 4)·u·D`;
//! - `dot`: `(n + 4)·u·Σ|a·b| + n·2⁻¹⁴⁹`; `cosine_similarity`: `(2n + 16)·u` absolute;
//! - per-pair loss and gradient: `(2n + 16)·u·scale`, the scale built from the absolute
//!   terms of the pair (see [`euclidean_pair`] and [`cosine_pair`]);
//! - every result may also be off by [`SUBNORMAL_SLACK`] (`2⁻¹²⁶`) in absolute terms: a
//!   result in the subnormal range cannot carry a relative error bound.

/// `u = 2⁻²⁴`, the unit roundoff of f32.
pub const U: f64 = 1.0 / 16_777_216.0;
/// Absolute slack for results in or near the subnormal range, where no relative bound can
/// hold: the smallest normal f32, `2⁻¹²⁶` (the same `atol` as tests/common).
pub const SUBNORMAL_SLACK: f64 = f32::MIN_POSITIVE as f64;
/// `2⁻¹⁴⁹`, the smallest positive subnormal f32.
pub const TINY: f64 = 1.401_298_464_324_817e-45;

/// `Σ (a − b)²` in f64.
pub fn squared_euclidean(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = f64::from(x) - f64::from(y);
            d * d
        })
        .sum()
}

/// `Σ a·b` and `Σ |a·b|` in f64.
pub fn dot(a: &[f32], b: &[f32]) -> (f64, f64) {
    let mut sum = 0.0;
    let mut abs = 0.0;
    for (&x, &y) in a.iter().zip(b) {
        let t = f64::from(x) * f64::from(y);
        sum += t;
        abs += t.abs();
    }
    (sum, abs)
}

fn has_non_finite(x: &[f32]) -> bool {
    x.iter().any(|v| !v.is_finite())
}

/// `cos(a, b)` clamped to `[-1, 1]`; 0 when either vector is zero (or empty); NaN when a
/// component is NaN or infinite. Also returns `‖a‖` and `‖b‖`.
pub fn cosine(a: &[f32], b: &[f32]) -> (f64, f64, f64) {
    if has_non_finite(a) || has_non_finite(b) {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let (ab, _) = dot(a, b);
    let na = dot(a, a).0.sqrt();
    let nb = dot(b, b).0.sqrt();
    if na == 0.0 || nb == 0.0 {
        return (0.0, na, nb);
    }
    ((ab / na / nb).clamp(-1.0, 1.0), na, nb)
}

/// Whether the products `a_i·b_i` of finite inputs could overflow f32 to `+∞` in one
/// partial sum and to `−∞` in another (their positive and their negative parts both pass
/// `f32::MAX`): a known gap of `cosine_similarity` and the cosine loss, whose plain dot
/// product is then `∞ − ∞ = NaN`, which they take for a NaN input (a known gap, listed in docs/guarantees.md's
/// note; `tests/trust_regressions.rs` reproduces it).
pub fn products_cancel_overflow(a: &[f32], b: &[f32]) -> bool {
    if has_non_finite(a) || has_non_finite(b) {
        return false;
    }
    let (mut positive, mut negative) = (0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let t = f64::from(x) * f64::from(y);
        if t > 0.0 {
            positive += t;
        } else {
            negative -= t;
        }
    }
    let max = f64::from(f32::MAX);
    positive > max && negative > max
}

/// Whether an infinite input meets a product of finite inputs that overflows f32: the
/// crate's dot product is then NaN (`∞ − ∞`) or an infinity of either sign, where the
/// exact sum is the infinite input's (a known gap, listed in docs/guarantees.md).
pub fn dot_overflow_meets_infinity(a: &[f32], b: &[f32]) -> bool {
    let max = f64::from(f32::MAX);
    (has_non_finite(a) || has_non_finite(b))
        && a.iter().zip(b).any(|(&x, &y)| {
            x.is_finite() && y.is_finite() && (f64::from(x) * f64::from(y)).abs() > max
        })
}

/// Whether any value lies strictly between 0 and the smallest normal f32 in magnitude
/// (with a few ulps of margin for the crate's own rounding).
fn any_subnormal(values: &[f64]) -> bool {
    let normal = f64::from(f32::MIN_POSITIVE) * (1.0 + 64.0 * U);
    values.iter().any(|v| *v != 0.0 && v.abs() < normal)
}

/// Whether `got` agrees with the reference `r` within `bound`: NaN only for NaN, an
/// infinite reference exactly, and an infinite result only where `r` could round past
/// `f32::MAX`.
pub fn agrees(got: f32, r: f64, bound: f64) -> bool {
    if r.is_nan() || got.is_nan() {
        return r.is_nan() && got.is_nan();
    }
    let g = f64::from(got);
    if r.is_infinite() {
        return g == r;
    }
    if got.is_infinite() {
        return g.signum() * r + bound >= f64::from(f32::MAX);
    }
    (g - r).abs() <= bound + SUBNORMAL_SLACK
}

/// Like [`agrees`], returning a message that names the quantity (formatted only on
/// failure: the fuzzers call this millions of times).
pub fn check(what: impl core::fmt::Display, got: f32, r: f64, bound: f64) -> Result<(), String> {
    if agrees(got, r, bound) {
        Ok(())
    } else {
        Err(format!(
            "{what}: got {got:e} ({:#010x}), reference {r:e}, bound {bound:e}, error {:e}",
            got.to_bits(),
            (f64::from(got) - r).abs()
        ))
    }
}

/// The documented bound of `squared_euclidean` for length `n` and reference `s`.
pub fn squared_euclidean_bound(n: usize, s: f64) -> f64 {
    (n as f64 + 4.0) * U * s
}

/// The documented bound of `euclidean`.
pub fn euclidean_bound(n: usize, d: f64) -> f64 {
    (n as f64 / 2.0 + 4.0) * U * d
}

/// The documented bound of `dot` given `Σ|a·b|`.
pub fn dot_bound(n: usize, abs_sum: f64) -> f64 {
    (n as f64 + 4.0) * U * abs_sum + n as f64 * TINY
}

/// The documented bound of `cosine_similarity` (absolute).
pub fn cosine_bound(n: usize) -> f64 {
    (2.0 * n as f64 + 16.0) * U
}

/// The documented per-pair bound factor of losses and gradients.
pub fn pair_factor(n: usize) -> f64 {
    (2.0 * n as f64 + 16.0) * U
}

/// Checks the four distance functions of one backend-independent call site against the
/// oracle: `(squared_euclidean, euclidean, dot, cosine_similarity)`.
pub fn check_distances(a: &[f32], b: &[f32], got: [f32; 4]) -> Result<(), String> {
    let n = a.len();
    let s = squared_euclidean(a, b);
    check(
        "squared_euclidean",
        got[0],
        s,
        squared_euclidean_bound(n, s),
    )?;
    let d = s.sqrt();
    check("euclidean", got[1], d, euclidean_bound(n, d))?;
    let (ab, abs) = dot(a, b);
    check("dot", got[2], ab, dot_bound(n, abs))?;
    let (cos, _, _) = cosine(a, b);
    check("cosine_similarity", got[3], cos, cosine_bound(n))?;
    Ok(())
}

/// The weights of one pair's terms, in f64 from the same f32 inputs the crate gets.
#[derive(Clone, Copy, Debug)]
pub struct Terms {
    /// `w⁺·y`.
    pub p: f64,
    /// `w⁻·(1 − y)`.
    pub q: f64,
    pub margin: f64,
    /// `2c`: 2 for a pair or a sum, `2/N` for a mean over `N` pairs, `2/len` for the seed.
    pub two_c: f64,
}

impl Terms {
    pub fn new(positive_weight: f32, negative_weight: f32, label: f32, margin: f32) -> Terms {
        let y = f64::from(label);
        Terms {
            p: f64::from(positive_weight) * y,
            q: f64::from(negative_weight) * (1.0 - y),
            margin: f64::from(margin),
            two_c: 2.0,
        }
    }

    /// The hinge `m − D` of a negative term at distance `d`, 0 where it is inactive.
    fn hinge(self, d: f64) -> f64 {
        if self.q != 0.0 && d < self.margin {
            self.margin - d
        } else {
            0.0
        }
    }
}

/// The reference of one pair: loss and gradients, with the scales of the bound.
#[derive(Clone, Debug)]
pub struct PairRef {
    pub n: usize,
    pub loss: f64,
    pub loss_scale: f64,
    pub grad_a: Vec<f64>,
    pub grad_b: Vec<f64>,
    pub grad_scale_a: f64,
    pub grad_scale_b: f64,
    /// The largest gradient coefficient of the pair, `2c·max(p, q·m)` (Euclidean)
    /// or `2c·max(p·D, q·h)` (cosine): where it passes `f32::MAX` the crate's f32
    /// coefficient overflows (see [`PairRef::coefficient_overflows`]).
    pub coefficient: f64,
    /// Whether `a − b` overflows f32 in some component though both are finite (Euclidean
    /// only): the crate's f32 difference is then `±∞` where the exact one is not (reported
    /// in docs/guarantees.md's known gaps; `tests/trust_regressions.rs` reproduces it).
    pub difference_overflows: bool,
    /// Whether the products `a_i·b_i` overflow f32 with both signs (cosine only): the
    /// crate's plain dot product is then `∞ − ∞ = NaN`, which it takes for a NaN input
    /// (see [`products_cancel_overflow`]).
    pub products_cancel: bool,
    /// Whether a gradient coefficient of the pair is a nonzero f32 subnormal (Euclidean:
    /// `2c·p`, `2c·q·h`, `2c·(p − q·h/D)`; cosine: `g`, `g/(‖a‖‖b‖)`, `g·cos/‖a‖²`,
    /// `g·cos/‖b‖²`): the crate's f32 coefficient then keeps only a few bits, a known gap
    /// (a known gap, listed in docs/guarantees.md's note; `tests/trust_regressions.rs` reproduces it).
    pub coefficient_underflows: bool,
    /// Whether `p = w⁺·y` or `q = w⁻·(1 − y)` is a nonzero f32 subnormal (a soft label
    /// near 1e-40, say): the crate's f32 weight then keeps only a few bits, and the loss
    /// and gradient lose their bound (an open gap; `tests/trust_regressions.rs`).
    pub weights_subnormal: bool,
    /// Whether an input of the pair is infinite.
    pub infinite_input: bool,
}

impl PairRef {
    fn nan(n: usize) -> PairRef {
        PairRef {
            n,
            loss: f64::NAN,
            loss_scale: 0.0,
            grad_a: vec![f64::NAN; n],
            grad_b: vec![f64::NAN; n],
            grad_scale_a: 0.0,
            grad_scale_b: 0.0,
            coefficient: 0.0,
            difference_overflows: false,
            products_cancel: false,
            coefficient_underflows: false,
            weights_subnormal: false,
            infinite_input: false,
        }
    }

    /// Whether an f32 gradient coefficient of this pair overflows (up to rounding): the
    /// crate must then take its mantissa-exponent path (it multiplied `∞ · 0` here before
    /// 4e21bb7 for the Euclidean distance, and later for the cosine one;
    /// `tests/trust_regressions.rs` keeps both fixed).
    pub fn coefficient_overflows(&self) -> bool {
        self.coefficient * (1.0 + pair_factor(self.n)) >= f64::from(f32::MAX)
    }

    /// The loss bound (per pair, before any reduction factor).
    pub fn loss_bound(&self) -> f64 {
        pair_factor(self.n) * self.loss_scale
    }

    /// Checks a loss (already multiplied by `factor`, e.g. `1/len` for the seed).
    pub fn check_loss(
        &self,
        what: impl core::fmt::Display,
        got: f32,
        factor: f64,
    ) -> Result<(), String> {
        check(
            what,
            got,
            self.loss * factor,
            self.loss_bound() * factor + U * (self.loss * factor).abs(),
        )
    }

    /// Checks both gradients element by element.
    pub fn check_grads(
        &self,
        what: impl core::fmt::Display,
        ga: &[f32],
        gb: &[f32],
    ) -> Result<(), String> {
        let f = pair_factor(self.n);
        let sides = [
            ("grad_a", ga, &self.grad_a, self.grad_scale_a),
            ("grad_b", gb, &self.grad_b, self.grad_scale_b),
        ];
        for (side, got, reference, scale) in sides {
            assert_eq!(got.len(), reference.len(), "{what}: {side} length");
            for (i, (&g, &r)) in got.iter().zip(reference).enumerate() {
                if !agrees(g, r, f * scale) {
                    return check(format_args!("{what} {side}[{i}]"), g, r, f * scale);
                }
            }
        }
        Ok(())
    }
}

/// Whether the dissimilar term may be active: `D < m`, widened by the distance bound so
/// that a pair on the kink may go either way.
fn hinge_may_act(t: Terms, n: usize, d: f64) -> bool {
    t.q != 0.0 && d.is_finite() && d < t.margin + pair_factor(n) * (t.margin + d)
}

/// The Euclidean pair `L = p·s + q·max(0, m − D)²`, terms with zero weight not evaluated;
/// gradient `2c·(p − q·h/D)·δ`, with the subgradient 0 for the dissimilar term at `D = 0`.
///
/// Scales: loss `p·s + q·(m + D)²` (the second only where the hinge may act); gradient
/// `2c·(p + q·(m + D)/D)·max|δ|` over the finite components.
pub fn euclidean_pair(a: &[f32], b: &[f32], t: Terms) -> PairRef {
    let n = a.len();
    let delta: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) - f64::from(y))
        .collect();
    if delta.iter().any(|d| d.is_nan()) {
        return PairRef::nan(n);
    }
    let s: f64 = delta.iter().map(|d| d * d).sum();
    let d = s.sqrt();
    let mut loss = 0.0;
    if t.p != 0.0 {
        loss += t.p * s;
    }
    let h = t.hinge(d);
    if h > 0.0 {
        loss += t.q * h * h;
    }
    let may_act = hinge_may_act(t, n, d);
    let mut loss_scale = if t.p != 0.0 { t.p * s } else { 0.0 };
    if may_act {
        loss_scale += t.q * (t.margin + d) * (t.margin + d);
    }
    let largest = delta
        .iter()
        .filter(|x| x.is_finite())
        .fold(0.0f64, |m, x| m.max(x.abs()));
    let mut k_scale = t.p;
    if may_act && d > 0.0 {
        k_scale += t.q * (t.margin + d) / d;
    }
    let grad_scale = t.two_c * k_scale * largest;
    let grad_a: Vec<f64> = delta
        .iter()
        .map(|&x| {
            let mut g = 0.0;
            if t.p != 0.0 {
                g += t.two_c * t.p * x;
            }
            if h > 0.0 && d > 0.0 {
                g -= t.two_c * t.q * h * x / d;
            }
            g
        })
        .collect();
    let grad_b = grad_a.iter().map(|g| -g).collect();
    let mut coefficient = t.two_c * t.p;
    if may_act {
        coefficient = coefficient.max(t.two_c * t.q * t.margin);
    }
    PairRef {
        n,
        loss,
        loss_scale,
        grad_a,
        grad_b,
        grad_scale_a: grad_scale,
        grad_scale_b: grad_scale,
        coefficient,
        difference_overflows: delta
            .iter()
            .any(|d| d.is_finite() && d.abs() > f64::from(f32::MAX)),
        products_cancel: false,
        coefficient_underflows: any_subnormal(&[
            t.two_c * t.p,
            t.two_c * t.q * h,
            if d > 0.0 {
                t.two_c * (t.p - t.q * h / d)
            } else {
                0.0
            },
        ]),
        weights_subnormal: any_subnormal(&[t.p, t.q]),
        infinite_input: a.iter().chain(b).any(|x| x.is_infinite()),
    }
}

/// The cosine pair: `D = 1 − cos`, `L = p·D² + q·max(0, m − D)²`; gradient
/// `−2c·(p·D − q·h)·∂cos/∂a`, zero when either vector is zero.
///
/// Scales: `D` is known to `(2n + 16)·u` absolute, so the loss scale is
/// `p·(D + 1)² + q·(m + 2)²` and the gradient scale of side `a` is
/// `2c·(p·(D + 1) + q·(m + 2))·max_i (|b_i|/(‖a‖‖b‖) + |a_i|/‖a‖²)`.
pub fn cosine_pair(a: &[f32], b: &[f32], t: Terms) -> PairRef {
    let n = a.len();
    let (cos, na, nb) = cosine(a, b);
    if cos.is_nan() {
        return PairRef::nan(n);
    }
    let d = 1.0 - cos;
    let mut loss = 0.0;
    let mut slope = 0.0;
    if t.p != 0.0 {
        loss += t.p * d * d;
        slope += t.p * d;
    }
    let h = t.hinge(d);
    if h > 0.0 {
        loss += t.q * h * h;
        slope -= t.q * h;
    }
    // D is known to the cosine bound only, so the scales add 1 to D and 2 to the margin
    // (the same scales as tests/common).
    let mut loss_scale = 0.0;
    let mut slope_scale = 0.0;
    if t.p != 0.0 {
        loss_scale += t.p * (d + 1.0) * (d + 1.0);
        slope_scale += t.p * (d + 1.0);
    }
    if t.q != 0.0 {
        loss_scale += t.q * (t.margin + 2.0) * (t.margin + 2.0);
        slope_scale += t.q * (t.margin + 2.0);
    }
    let g = -t.two_c * slope;
    // The crate forms `p·D − q·h` before scaling by `2c`, so either may overflow.
    let coefficient = t.two_c.max(1.0) * slope_scale;
    if na == 0.0 || nb == 0.0 {
        return PairRef {
            n,
            loss,
            loss_scale,
            grad_a: vec![0.0; n],
            grad_b: vec![0.0; n],
            grad_scale_a: 0.0,
            grad_scale_b: 0.0,
            coefficient,
            difference_overflows: false,
            products_cancel: products_cancel_overflow(a, b),
            coefficient_underflows: false,
            weights_subnormal: any_subnormal(&[t.p, t.q]),
            infinite_input: a.iter().chain(b).any(|x| x.is_infinite()),
        };
    }
    let mut grad_a = Vec::with_capacity(n);
    let mut grad_b = Vec::with_capacity(n);
    let (mut wa, mut wb) = (0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        grad_a.push(g * (y / na / nb - cos * x / na / na));
        grad_b.push(g * (x / na / nb - cos * y / nb / nb));
        wa = wa.max(y.abs() / na / nb + x.abs() / na / na);
        wb = wb.max(x.abs() / na / nb + y.abs() / nb / nb);
    }
    PairRef {
        n,
        loss,
        loss_scale,
        grad_a,
        grad_b,
        grad_scale_a: t.two_c * slope_scale * wa,
        grad_scale_b: t.two_c * slope_scale * wb,
        coefficient,
        difference_overflows: false,
        products_cancel: products_cancel_overflow(a, b),
        coefficient_underflows: any_subnormal(&[
            g,
            g / na / nb,
            g * cos / na / na,
            g * cos / nb / nb,
        ]),
        weights_subnormal: any_subnormal(&[t.p, t.q]),
        infinite_input: a.iter().chain(b).any(|x| x.is_infinite()),
    }
}
