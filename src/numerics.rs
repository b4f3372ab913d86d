//! Cold paths that keep results right at extreme magnitudes, and the square root.
//!
//! The kernels compute plain f32 sums. Those are right unless a sum underflows (components
//! below about 1e-19 square to subnormals or zero) or overflows (components above about
//! 1e19 square to infinity). Only then do the functions here run: they find the largest
//! component, rescale by a power of two (exact), and sum again in scalar code, as careful
//! `nrm2` implementations do. They read the inputs once more, which costs nothing on the
//! fast path.

#![forbid(unsafe_code)]

/// The plain f32 sums that [`Separation::of`] and [`Cosine::of`] start from: implemented
/// by the kernel table (`crate::kernels::Kernels`), so that this module, which the kernels
/// use, does not depend on them in turn.
pub(crate) trait PlainSums {
    /// `Σ (a[i] − b[i])²`, plainly summed.
    fn squared_euclidean(&self, a: &[f32], b: &[f32]) -> f32;
    /// `[a·b, a·a, b·b]`, plainly summed.
    fn dot_and_norms(&self, a: &[f32], b: &[f32]) -> [f32; 3];
}

impl<T: PlainSums + ?Sized> PlainSums for &T {
    #[inline(always)]
    fn squared_euclidean(&self, a: &[f32], b: &[f32]) -> f32 {
        (**self).squared_euclidean(a, b)
    }
    #[inline(always)]
    fn dot_and_norms(&self, a: &[f32], b: &[f32]) -> [f32; 3] {
        (**self).dot_and_norms(a, b)
    }
}

/// `√x`, correctly rounded (IEEE 754 requires it of every implementation used here).
#[inline(always)]
pub(crate) fn sqrt(x: f32) -> f32 {
    #[cfg(feature = "std")]
    {
        x.sqrt()
    }
    #[cfg(not(feature = "std"))]
    {
        crate::arch_sqrt::sqrt(x)
    }
}

/// Whether `x` is positive, normal and finite: one unsigned comparison of its bits, which
/// for such numbers run from those of `f32::MIN_POSITIVE` up to, not including, those of
/// infinity. (Two float comparisons and a NaN test cost a d = 128 pair a tenth of its
/// time.)
#[inline(always)]
pub(crate) fn is_positive_normal(x: f32) -> bool {
    const LOW: u32 = f32::MIN_POSITIVE.to_bits();
    const SPAN: u32 = f32::INFINITY.to_bits() - LOW;
    x.to_bits().wrapping_sub(LOW) < SPAN
}

/// Whether every value of `v` is positive, normal and finite ([`is_positive_normal`]):
/// sixteen at a time without an early exit inside a chunk, which compiles to vector
/// compares (a short-circuiting `all` stays one value per iteration).
#[inline]
pub(crate) fn all_positive_normal(v: &[f32]) -> bool {
    const LOW: u32 = f32::MIN_POSITIVE.to_bits();
    const SPAN: u32 = f32::INFINITY.to_bits() - LOW;
    let (chunks, rest) = v.as_chunks::<16>();
    for c in chunks {
        let bad = c.iter().fold(0u32, |acc, &s| {
            acc | u32::from(s.to_bits().wrapping_sub(LOW) >= SPAN)
        });
        if bad != 0 {
            return false;
        }
    }
    rest.iter().all(|&s| is_positive_normal(s))
}

/// `s = Σ (a[i] − b[i])²` from a plain kernel sum: `s` itself when it is positive, normal
/// and finite, else recomputed from `a` and `b` with a power-of-two scale (NaN stays NaN).
/// Inlined into the kernels' `robust_squared_euclidean`, so that the common case costs one
/// integer comparison and the rare one a jump.
#[inline(always)]
pub(crate) fn squared_or_rescaled(s: f32, a: &[f32], b: &[f32]) -> f32 {
    if is_positive_normal(s) {
        s
    } else {
        squared_rescaled(s, a, b)
    }
}

/// The rare path of [`squared_or_rescaled`].
#[cold]
#[inline(never)]
fn squared_rescaled(s: f32, a: &[f32], b: &[f32]) -> f32 {
    Separation::from_sum(s, a, b).squared
}

/// A power of two `2^k`, `k` in `[-150, 254]`, held as two normal factors so that scaling
/// by it is exact whenever the result is normal.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pow2 {
    factors: [f32; 2],
}

impl Pow2 {
    // Not inlined: the cold paths build many, and flash is what they cost on a
    // microcontroller (qemu-selftest/flash-report.sh).
    #[inline(never)]
    fn new(k: i32) -> Pow2 {
        // The fuzzers build with debug assertions: an exponent out of range panics there.
        debug_assert!((-150..=254).contains(&k), "2^{k} is out of Pow2's range");
        // `⌊k/2⌋` by a shift: both factors in [-75, 127].
        let half = k >> 1;
        Pow2 {
            factors: [pow2_normal(half), pow2_normal(k - half)],
        }
    }
    #[inline]
    pub(crate) fn apply(self, x: f32) -> f32 {
        x * self.factors[0] * self.factors[1]
    }
    /// `k`, for `2^k` (the cosine's cold path; [`Rescaled`] keeps its exponent instead).
    fn exponent(self) -> i32 {
        exponent(self.factors[0]) + exponent(self.factors[1])
    }
}

/// `2^k` for `k` in `[-126, 127]`.
fn pow2_normal(k: i32) -> f32 {
    f32::from_bits(((k + 127) as u32) << 23)
}

/// `2^e` for any `e`, as normal factors `2^f` (three times) and `2^(e − 3f)`, `f = ⌊e/4⌋`:
/// scaling by it is exact until the result leaves the normal range. Beyond `f32::MAX` the
/// result overflows as it should (for `|x| ≥ 1`); below `f32::MIN_POSITIVE` each of the
/// last few roundings is within `2⁻¹⁴⁹`. Exponents past ±300 give ±∞ or 0 for every `x`
/// with `2⁻¹⁴⁹ ≤ |x| < 2¹²⁸` either way.
#[derive(Clone, Copy, Debug)]
struct Scale {
    quarter: f32,
    last: f32,
}

impl Scale {
    // Out of line, like `Pow2::new`: two cold paths build one.
    #[inline(never)]
    fn new(e: i32) -> Scale {
        let e = e.clamp(-300, 300);
        // `f` in [-75, 75], `e − 3f` in [-75, 78]: both normal powers of two.
        let f = e >> 2;
        Scale {
            quarter: pow2_normal(f),
            last: pow2_normal(e - 3 * f),
        }
    }
    #[inline]
    fn apply(self, x: f32) -> f32 {
        x * self.quarter * self.quarter * self.quarter * self.last
    }
}

/// The exponent `e` with `2^e ≤ x < 2^(e+1)`, for finite `x > 0` (subnormals included).
#[inline(never)]
fn exponent(x: f32) -> i32 {
    // A subnormal times `2^64` is normal (and exact).
    let (x, bias) = if x < f32::MIN_POSITIVE {
        (x * pow2_normal(64), 127 + 64)
    } else {
        (x, 127)
    };
    (x.to_bits() >> 23) as i32 - bias
}

/// A rescaled view of a difference vector: `u = δ·down` has its largest component in
/// `[1, 2)`, `t = Σ u²`, `D = √t·up` and `s = t·up²` (`up = 1/down = 2^up_exponent`).
/// When `a − b` itself overflows (components near `±f32::MAX`), `u` is formed from halved
/// inputs (`half = ½`; otherwise `half = 1`, and `x·1 − y·1` is `x − y` exactly: one
/// branch-free loop serves both, which is flash on a microcontroller).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rescaled {
    down: Pow2,
    up_exponent: i32,
    pub t: f32,
    half: f32,
}

impl Rescaled {
    /// No scale (`u = δ`, `t = 1`): for the gradient of a pair at infinite distance, whose
    /// finite components are formed one by one (see [`rescaled_difference`]).
    pub(crate) const fn identity() -> Rescaled {
        Rescaled {
            down: Pow2 {
                factors: [1.0, 1.0],
            },
            up_exponent: 0,
            t: 1.0,
            half: 1.0,
        }
    }

    /// `w·t·up²` (that is `w·s`) for a finite `w ≥ 0`, rounded once unless it is
    /// subnormal: the mantissas of `w` and `t` are multiplied and every power of two is
    /// applied at once, so a huge `w` with a tiny `up²` (or a tiny `w` with a huge one)
    /// does not overflow (or underflow) on the way to a result that does not.
    #[cold]
    fn weighted(&self, w: f32) -> f32 {
        let w = Wide::of(w);
        Scale::new(w.e + 2 * self.up_exponent).apply(w.m * self.t)
    }

    /// `(x − y)·down`, without overflowing where `x − y` would.
    #[inline]
    pub(crate) fn unit(&self, x: f32, y: f32) -> f32 {
        self.down.apply(x * self.half - y * self.half)
    }

    /// `(x − y)·down` as `u·k`, `k` 1 or 2: 2 where `x − y` overflows though both are
    /// finite (only under the identity scale; a real scale is halved already).
    fn gradient_unit(&self, x: f32, y: f32) -> (f32, f32) {
        let u = self.unit(x, y);
        if u.is_infinite() {
            // Finite halves where `x` and `y` are finite (their difference overflowed);
            // an infinite input keeps `u` (±∞).
            let halves = self.down.apply(x * 0.5 - y * 0.5);
            if halves.is_finite() {
                return (halves, 2.0);
            }
        }
        (u, 1.0)
    }
}

/// The Euclidean separation of two vectors: `s = Σδ²`, `D = √s`, and, when the plain sum
/// under- or overflowed, the rescaled form that the gradient needs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Separation {
    pub squared: f32,
    pub distance: f32,
    pub rescaled: Option<Rescaled>,
}

impl Separation {
    /// From a plain kernel sum `s`; rescales (reading `a` and `b` again) only when `s` is
    /// zero, subnormal or infinite.
    #[inline]
    pub(crate) fn from_sum(s: f32, a: &[f32], b: &[f32]) -> Separation {
        if is_positive_normal(s) || s.is_nan() {
            Separation {
                squared: s,
                distance: sqrt(s),
                rescaled: None,
            }
        } else {
            Separation::rescaled(a, b)
        }
    }

    /// Computes `a − b` through the kernel, then rescales if needed.
    #[inline]
    pub(crate) fn of(kernels: &impl PlainSums, a: &[f32], b: &[f32]) -> Separation {
        Separation::from_sum(kernels.squared_euclidean(a, b), a, b)
    }

    /// `w·s` without overflowing where `s` alone would (a similar pair at 1e19 has
    /// `s > f32::MAX` but `½·s` finite).
    #[inline]
    pub(crate) fn weighted_square(&self, w: f32) -> f32 {
        match self.rescaled {
            Some(r) => r.weighted(w),
            None => w * self.squared,
        }
    }

    /// Always the rescaled form (for callers whose coefficients overflowed on the plain
    /// form): `None` only for a true zero, an infinite input, or NaN.
    #[cold]
    #[inline(never)]
    pub(crate) fn rescaled(a: &[f32], b: &[f32]) -> Separation {
        let mut largest = largest_difference(a, b, 1.0);
        let (mut half, mut halved) = (1.0, 0);
        if largest.is_infinite() {
            // `a − b` overflowed: if the inputs are finite (then their halves' difference
            // is), work on halves.
            let of_halves = largest_difference(a, b, 0.5);
            if of_halves.is_finite() {
                largest = of_halves;
                (half, halved) = (0.5, 1);
            }
        }
        // `largest` is `+0`, positive or `+NaN` (a magnitude): positive and finite is one
        // unsigned comparison of its bits.
        if largest.to_bits().wrapping_sub(1) >= f32::INFINITY.to_bits() - 1 {
            // All equal (a true zero), an infinite input, or NaN.
            return Separation {
                squared: largest * largest,
                distance: largest,
                rescaled: None,
            };
        }
        let e = exponent(largest);
        let up_exponent = e + halved;
        let up = Pow2::new(up_exponent);
        let scale = Rescaled {
            down: Pow2::new(-e),
            up_exponent,
            t: 0.0,
            half,
        };
        let t = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| {
                let u = scale.unit(x, y);
                u * u
            })
            .sum::<f32>();
        Separation {
            squared: up.apply(up.apply(t)),
            distance: up.apply(sqrt(t)),
            rescaled: Some(Rescaled { t, ..scale }),
        }
    }
}

/// `max |a·half − b·half|` (`half` 1 or ½), NaN if any difference is NaN. Out of line:
/// both of its calls share one copy (flash).
#[inline(never)]
fn largest_difference(a: &[f32], b: &[f32], half: f32) -> f32 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x * half - y * half).abs())
        .fold(0.0f32, |m, d| if d > m || d.is_nan() { d } else { m })
}

/// What the gradient of a pair whose distance was rescaled is made of: `2c`, the weights
/// `p` and `q` (0 where the dissimilar term has no gradient) and the hinge `h`. Four
/// floats: passed in registers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RescaledTerms {
    pub two_c: f32,
    pub p: f32,
    pub q: f32,
    pub h: f32,
}

/// `g_a = 2c·(p·δ − q·h·δ/D)` and `g_b = −g_a`, in scalar code, at the separation `sep`:
/// the gradient of a pair whose distance was rescaled, where `h/D`, `δ` or either term
/// alone would overflow or lose all precision; under [`Rescaled::identity`] (with
/// `q = 0`), of a pair at infinite distance; and of a pair whose plain coefficient
/// overflowed or lost its precision, rescaled here (0 for a true zero, `δ = 0`). With
/// `u = δ·down`, `δ = u·up` and `δ/D = u/√t`, so the gradient is `K·u` for the one
/// coefficient `K = 2c·(p·up − q·h/√t)`. `K` is held as a mantissa and a power of two
/// ([`Wide`]), so neither term overflows on its own: a component is ±∞ only when the true
/// gradient is beyond f32 (or `u` is infinite), and never `∞ − ∞` or `∞·0`.
#[cold]
pub(crate) fn rescaled_difference(
    a: &[f32],
    b: &[f32],
    terms: RescaledTerms,
    sep: &Separation,
    grad_a: &mut [f32],
    grad_b: &mut [f32],
) {
    let scale = match sep.rescaled {
        Some(r) => Some(r),
        None if sep.distance.is_infinite() => Some(Rescaled::identity()),
        None => Separation::rescaled(a, b).rescaled,
    };
    let (r, k) = match scale {
        Some(r) => (r, rescaled_coefficient(terms, r)),
        // A true zero (`δ = 0`, `q = 0`) whose plain coefficient overflowed: the loop
        // below writes 0 for `K = 0`, not `∞·0 = NaN`.
        None => (Rescaled::identity(), Wide::ZERO),
    };
    // `u` is scaled first: beyond `f32::MAX` the gradient overflows too (`|m| ≥ 1`).
    let scale = Scale::new(k.e);
    for (((&x, &y), ga), gb) in a.iter().zip(b).zip(grad_a).zip(grad_b) {
        let (u, doubled) = r.gradient_unit(x, y);
        let g = if k.m == 0.0 {
            // Select, not multiply: `0·∞` would be NaN.
            0.0
        } else {
            scale.apply(u) * k.m * doubled
        };
        *ga = g;
        *gb = -g;
    }
}

/// `K = 2c·(p·up − q·h/√t)` for finite `2c` in `(0, 2]`, `p, q, h ≥ 0`. `p`, `q` and `h`
/// are split into mantissa and exponent, so `p·up` and `q·h` never overflow or underflow
/// however extreme the weights and margin.
fn rescaled_coefficient(terms: RescaledTerms, r: Rescaled) -> Wide {
    let RescaledTerms { two_c, p, q, h } = terms;
    let qh = Wide::product(q, h);
    // `√t` is in `[1, 2·√n)`: dividing by it keeps the mantissa normal and within a few
    // powers of two of `[1, 2)`, which is all the alignment needs.
    let qh = Wide {
        m: qh.m / sqrt(r.t),
        ..qh
    };
    Wide::difference(two_c, Wide::of(p).shifted(r.up_exponent), qh)
}

/// `m·2^e`, `|m|` in `[1, 2)` from [`Wide::of`] (or `m = 0`; products keep it in
/// `[1, 4)`), with an exponent beyond f32's range: the cold paths multiply factors that
/// would overflow or underflow f32 on the way to a product that does not.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Wide {
    m: f32,
    e: i32,
}

impl Wide {
    /// Zero, with an exponent below that of any nonzero value here (products and shifts
    /// of f32 stay above −600), so that the larger of two exponents is a nonzero term's
    /// where there is one; sums of a few such exponents stay far from `i32::MIN`.
    /// (`−2²⁸`: one instruction on Arm, `mov r, #0xf0000000`.)
    const ZERO: Wide = Wide {
        m: 0.0,
        e: -(1 << 28),
    };

    /// `self·2^d`.
    fn shifted(self, d: i32) -> Wide {
        Wide {
            e: self.e + d,
            ..self
        }
    }

    /// `x·y` for finite `x` and `y`, with a mantissa in `[1, 4)` (or 0): never overflows
    /// or underflows, whatever f32 would do with the product.
    pub(crate) fn product(x: f32, y: f32) -> Wide {
        let (x, y) = (Wide::of(x), Wide::of(y));
        Wide {
            m: x.m * y.m,
            e: x.e + y.e,
        }
    }

    /// `2c·(x − y)` for a finite `2c` in `(0, 2]` and mantissas within a few powers of two
    /// of `[1, 2)`: the smaller term is aligned to the larger one before they are
    /// subtracted, so neither overflows nor underflows on its own, and `∞ − ∞` cannot
    /// happen.
    #[inline(always)]
    pub(crate) fn difference(two_c: f32, x: Wide, y: Wide) -> Wide {
        // A zero term's exponent is below any other ([`Wide::ZERO`]): `e` is a nonzero
        // term's where there is one (two zeros give zero, whatever `e`).
        let e = x.e.max(y.e);
        // Every shift is at most 0 (`e` is the larger exponent). A term shifted by 60 or
        // more is below a quarter of an ulp of the other, whose mantissa is at least
        // `2⁻³⁰` (`[1, 4)`, or that divided by `√t < 2·√n`): it changes no bit of the
        // difference, and the shift is clamped there, to one normal power of two (a zero
        // term's shift is far below f32's range, and `0·2⁻⁶⁰` is 0).
        let align = |w: Wide| w.m * pow2_normal((w.e - e).max(-60));
        Wide::of(two_c * (align(x) - align(y))).shifted(e)
    }

    /// A finite `x` as `m·2^e`.
    pub(crate) fn of(x: f32) -> Wide {
        if x == 0.0 {
            return Wide::ZERO;
        }
        let e = exponent(x.abs());
        Wide {
            m: Pow2::new(-e).apply(x),
            e,
        }
    }
}

/// `max |x|`, NaN if any component is NaN.
fn largest_magnitude(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |m, &v| {
        if v.abs() > m || v.is_nan() {
            v.abs()
        } else {
            m
        }
    })
}

/// Cosine of two vectors, robust to the magnitude of either, with what its gradient needs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cosine {
    /// `cos(a, b)` clamped to `[-1, 1]`; 0 if either vector is zero; NaN if any input is
    /// NaN or infinite.
    pub cos: f32,
    /// `a·down_a` and `b·down_b` have norms `norm_a`, `norm_b` (not overflowing).
    pub down_a: Pow2,
    pub down_b: Pow2,
    pub norm_a: f32,
    pub norm_b: f32,
    /// Whether the plain f32 norms were usable (`down_* = 1`).
    pub plain: bool,
}

impl Cosine {
    pub(crate) fn of(kernels: &impl PlainSums, a: &[f32], b: &[f32]) -> Cosine {
        let [ab, aa, bb] = kernels.dot_and_norms(a, b);
        let one = Pow2::new(0);
        if is_positive_normal(aa) && is_positive_normal(bb) && ab.is_finite() {
            let (norm_a, norm_b) = (sqrt(aa), sqrt(bb));
            return Cosine {
                cos: clamp_cos(ab / (norm_a * norm_b)),
                down_a: one,
                down_b: one,
                norm_a,
                norm_b,
                plain: true,
            };
        }
        // Sums of squares are NaN only for NaN inputs; a NaN `ab` can also be `∞ − ∞` from
        // finite products that overflow, which the rescaled path gets right.
        if aa.is_nan() || bb.is_nan() {
            return Cosine {
                cos: f32::NAN,
                down_a: one,
                down_b: one,
                norm_a: f32::NAN,
                norm_b: f32::NAN,
                plain: true,
            };
        }
        Cosine::rescaled(a, b)
    }

    #[cold]
    pub(crate) fn rescaled(a: &[f32], b: &[f32]) -> Cosine {
        let (ma, mb) = (largest_magnitude(a), largest_magnitude(b));
        let one = Pow2::new(0);
        let mut out = Cosine {
            cos: 0.0,
            down_a: one,
            down_b: one,
            norm_a: 0.0,
            norm_b: 0.0,
            plain: false,
        };
        if ma.is_nan() || mb.is_nan() || ma.is_infinite() || mb.is_infinite() {
            out.cos = f32::NAN;
            out.norm_a = f32::NAN;
            out.norm_b = f32::NAN;
            return out;
        }
        if ma == 0.0 || mb == 0.0 {
            return out;
        }
        out.down_a = Pow2::new(-exponent(ma));
        out.down_b = Pow2::new(-exponent(mb));
        let (mut ab, mut aa, mut bb) = (0.0f32, 0.0f32, 0.0f32);
        for (&x, &y) in a.iter().zip(b) {
            let (x, y) = (out.down_a.apply(x), out.down_b.apply(y));
            ab += x * y;
            aa += x * x;
            bb += y * y;
        }
        out.norm_a = sqrt(aa);
        out.norm_b = sqrt(bb);
        out.cos = clamp_cos(ab / (out.norm_a * out.norm_b));
        out
    }

    /// Whether either vector is zero (then the cosine is 0 and its gradient is 0).
    pub(crate) fn has_zero_vector(&self) -> bool {
        self.norm_a == 0.0 || self.norm_b == 0.0
    }
}

/// Clamps rounding excursions of `cos` back into `[-1, 1]`, keeping NaN.
fn clamp_cos(c: f32) -> f32 {
    c.clamp(-1.0, 1.0)
}

/// Writes `g·∂cos/∂a` and `g·∂cos/∂b` in scalar code for a rescaled cosine:
/// `∂cos/∂a = down_a·(b̂/(|â||b̂|) − cos·â/|â|²)` with `â = a·down_a`, `b̂ = b·down_b`. `g`
/// comes as a mantissa and an exponent (it may be beyond f32, as for a margin near
/// `f32::MAX`), and the bracket is of order 1, so a component overflows or underflows
/// only when the exact gradient does.
#[cold]
pub(crate) fn rescaled_cosine_gradient(
    a: &[f32],
    b: &[f32],
    c: Cosine,
    g: Wide,
    grad_a: &mut [f32],
    grad_b: &mut [f32],
) {
    let inv_ab = 1.0 / (c.norm_a * c.norm_b);
    let (inv_aa, inv_bb) = (1.0 / (c.norm_a * c.norm_a), 1.0 / (c.norm_b * c.norm_b));
    let scale_a = Scale::new(g.e + c.down_a.exponent());
    let scale_b = Scale::new(g.e + c.down_b.exponent());
    for (((&x, &y), ga), gb) in a.iter().zip(b).zip(grad_a).zip(grad_b) {
        let (x, y) = (c.down_a.apply(x), c.down_b.apply(y));
        *ga = scale_a.apply(g.m * (y * inv_ab - c.cos * x * inv_aa));
        *gb = scale_b.apply(g.m * (x * inv_ab - c.cos * y * inv_bb));
    }
}

/// A dot product whose plain f32 sum overflowed (or met `∞ − ∞`): recomputed with both
/// vectors scaled by powers of two, then scaled back. Inputs with NaN or infinite
/// components keep the plain result.
#[cold]
pub(crate) fn dot_rescaled(a: &[f32], b: &[f32], plain: f32) -> f32 {
    let (ma, mb) = (largest_magnitude(a), largest_magnitude(b));
    if ma.is_nan() || mb.is_nan() || ma == 0.0 || mb == 0.0 {
        return plain;
    }
    if ma.is_infinite() || mb.is_infinite() {
        // An infinite product outweighs any finite one: the sum of the infinite products
        // alone (NaN for ∞ − ∞ or ∞·0 among them).
        return a
            .iter()
            .zip(b)
            .filter(|(x, y)| x.is_infinite() || y.is_infinite())
            .map(|(&x, &y)| x * y)
            .sum();
    }
    let (ea, eb) = (exponent(ma), exponent(mb));
    let (da, db) = (Pow2::new(-ea), Pow2::new(-eb));
    let sum: f32 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| da.apply(x) * db.apply(y))
        .sum();
    Pow2::new(eb).apply(Pow2::new(ea).apply(sum))
}

#[cfg(test)]
mod tests {
    use super::is_positive_normal;

    /// The bit comparison against its definition: around every boundary (zero, the smallest
    /// normal, the largest finite, infinity, the NaNs, all with either sign), then every
    /// 4,099th bit pattern. Plain integer arithmetic without `unsafe`: it runs natively
    /// (host, aarch64, wasm32), not under Miri, where its million cases took minutes a pass.
    #[test]
    #[cfg_attr(miri, ignore = "no unsafe code: runs natively")]
    fn is_positive_normal_is_the_float_range() {
        let definition = |x: f32| (f32::MIN_POSITIVE..=f32::MAX).contains(&x);
        let edges = [0.0, f32::MIN_POSITIVE, f32::MAX, f32::INFINITY, f32::NAN];
        let near_edges = edges.iter().flat_map(|&e| {
            let sign = (e.to_bits(), (-e).to_bits());
            [sign.0, sign.1]
                .into_iter()
                .flat_map(|b| (0..9).map(move |k| b.wrapping_add(k).wrapping_sub(4)))
        });
        let sweep = (0..=u32::MAX / 4_099).map(|k| k * 4_099);
        let mut checked = 0;
        for bits in near_edges.chain(sweep) {
            let x = f32::from_bits(bits);
            assert_eq!(is_positive_normal(x), definition(x), "{x:e} ({bits:#010x})");
            checked += 1;
        }
        assert!(checked > 1_000_000);
    }
}
