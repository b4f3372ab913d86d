//! The per-pair arithmetic shared by every contrastive loss: `L = p·s + q·h²` with
//! `h = max(0, m − D)`, where `p` and `q` are the effective weights of the two terms
//! (`w⁺·y` and `w⁻·(1 − y)` for a label `y`). A term whose weight is exactly zero is not
//! evaluated ("select, not multiply"), so an infinite distance cannot turn an unused term
//! into `0 · ∞ = NaN`.

#![forbid(unsafe_code)]

use crate::kernels::Kernels;
use crate::numerics::{self, Cosine, RescaledTerms, Separation, Wide};

/// Effective weights and margin of one pair.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Terms {
    /// Weight of the similar term `D²`.
    pub p: f32,
    /// Weight of the dissimilar term `max(0, m − D)²`.
    pub q: f32,
    pub margin: f32,
}

impl Terms {
    /// The Euclidean loss at separation `sep`.
    #[inline]
    pub(crate) fn loss_at(self, sep: &Separation) -> f32 {
        self.loss_with(|p| sep.weighted_square(p), sep.distance)
    }

    /// `p·D² + q·max(0, m − D)²` given `D²` and `D`; NaN if `D` is NaN.
    #[inline]
    pub(crate) fn loss(self, squared: f32, distance: f32) -> f32 {
        self.loss_with(|p| p * squared, distance)
    }

    /// The loss, with `p·D²` computed by `weighted_square(p)` (only when `p ≠ 0`).
    #[inline]
    fn loss_with(self, weighted_square: impl FnOnce(f32) -> f32, distance: f32) -> f32 {
        if distance.is_nan() {
            return f32::NAN;
        }
        let mut loss = 0.0;
        if self.p != 0.0 {
            loss += weighted_square(self.p);
        }
        let h = self.hinge(distance);
        if h > 0.0 {
            loss += self.q * h * h;
        }
        loss
    }

    /// `m − D` when the dissimilar term is active (`q ≠ 0` and `D < m`), else 0.
    #[inline]
    fn hinge(self, distance: f32) -> f32 {
        if self.q != 0.0 && distance < self.margin {
            self.margin - distance
        } else {
            0.0
        }
    }
}

/// How to write the gradient `∂L/∂a = 2c·(p − q·h/D)·δ` of a Euclidean pair.
#[derive(Clone, Copy, Debug)]
pub(crate) enum EuclideanGradient {
    /// `k·δ`: the common case, one kernel call.
    Plain(f32),
    /// `2c·(p·δ − q·h·δ/D)` evaluated on the rescaled difference, where `h/D`, `k` or
    /// `k·δ` would overflow or `D` was not representable; `q` is 0 where the dissimilar
    /// term has no gradient. [`write`](Self::write) takes the separation the gradient
    /// was made from, whose rescaling it uses (or makes).
    Rescaled(RescaledTerms),
}

impl EuclideanGradient {
    /// The gradient of `c·L` for a pair at separation `sep`; `two_c` is `2c`.
    #[inline]
    pub(crate) fn new(terms: Terms, sep: Separation, two_c: f32) -> Self {
        let distance = sep.distance;
        if distance.is_nan() {
            return EuclideanGradient::Plain(f32::NAN);
        }
        let h = terms.hinge(distance);
        // At D = 0 the dissimilar term's direction is undefined; 0 is its subgradient.
        let q = if h == 0.0 || distance == 0.0 {
            0.0
        } else {
            terms.q
        };
        // A rescaled separation or an infinite distance (an infinite input, `h = 0`,
        // `q = 0`, where `2c·p` or `a − b` may overflow in the finite components) always
        // takes the rescaled writer; a finite one where its plain coefficient fails.
        if sep.rescaled.is_none() && !distance.is_infinite() {
            // (`2c` is finite: `2c·0 = 0`.)
            let pc = two_c * terms.p;
            let qc = two_c * q;
            // `h/D` first: `2c·q·h` alone can overflow for margins near f32::MAX.
            let k = if qc == 0.0 {
                pc
            } else {
                pc - qc * (h / distance)
            };
            // A weight that lost its precision multiplying by `2c` (subnormal or 0) would
            // silently skew the gradient: only normal coefficients take the plain path.
            // (`2c·w ≥ 0`: positive, normal and finite is one comparison of its bits.)
            let kept = |c: f32, w: f32| w == 0.0 || numerics::is_positive_normal(c);
            if k.is_finite() && kept(pc, terms.p) && kept(qc, q) {
                return EuclideanGradient::Plain(k);
            }
        }
        // The writer ([`numerics::rescaled_difference`]) chooses the scale from the
        // separation: one call, four floats, for every case (flash).
        EuclideanGradient::Rescaled(RescaledTerms {
            two_c,
            p: terms.p,
            q,
            h,
        })
    }

    /// The coefficient `k` of the plain form `k·δ`, if this gradient has it.
    #[inline]
    pub(crate) fn plain(self) -> Option<f32> {
        match self {
            EuclideanGradient::Plain(k) => Some(k),
            _ => None,
        }
    }

    /// Writes the gradient of one pair, at the separation `sep` it was made from.
    #[inline]
    pub(crate) fn write(
        self,
        kernels: &Kernels,
        sep: &Separation,
        (a, b): (&[f32], &[f32]),
        (grad_a, grad_b): (&mut [f32], &mut [f32]),
    ) {
        match self {
            EuclideanGradient::Plain(k) => (kernels.scaled_difference)(a, b, k, grad_a, grad_b),
            EuclideanGradient::Rescaled(terms) => {
                numerics::rescaled_difference(a, b, terms, sep, grad_a, grad_b)
            }
        }
    }
}

/// The cosine-distance loss of a pair, `D = 1 − cos`.
#[inline]
pub(crate) fn cosine_loss(terms: Terms, cos: &Cosine) -> f32 {
    let distance = 1.0 - cos.cos;
    terms.loss(distance * distance, distance)
}

/// Writes `∂(c·L)/∂a` and `∂(c·L)/∂b` for the cosine distance; zero when either vector is
/// zero (the cosine is then constant), NaN when the cosine is.
pub(crate) fn cosine_gradient(
    kernels: &Kernels,
    terms: Terms,
    (cos, two_c): (Cosine, f32),
    (a, b): (&[f32], &[f32]),
    (grad_a, grad_b): (&mut [f32], &mut [f32]),
) {
    if cos.cos.is_nan() {
        grad_a.fill(f32::NAN);
        grad_b.fill(f32::NAN);
        return;
    }
    let distance = 1.0 - cos.cos;
    let mut slope = 0.0; // ∂L/∂D
    if terms.p != 0.0 {
        slope += terms.p * distance;
    }
    let h = terms.hinge(distance);
    if h > 0.0 {
        slope -= terms.q * h;
    }
    // ∂L/∂cos = −∂L/∂D.
    let g = -two_c * slope;
    if g == 0.0 || cos.has_zero_vector() {
        grad_a.fill(0.0);
        grad_b.fill(0.0);
        return;
    }
    if !g.is_finite() {
        // `p·D`, `q·h` or `2c` times their difference overflowed (weights or a margin near
        // `f32::MAX`): `g = 2c·(q·h − p·D)` as a mantissa and an exponent.
        let g = Wide::difference(
            two_c,
            Wide::product(terms.q, h),
            Wide::product(terms.p, distance),
        );
        return cosine_gradient_rescaled(a, b, cos, g, grad_a, grad_b);
    }
    write_cosine_gradient_of(kernels, cos, g, a, b, grad_a, grad_b);
}

/// Writes `g·∂cos/∂a` and `g·∂cos/∂b` (NaN for a NaN cosine or `g`, 0 where either
/// vector is zero or `g` is 0; for an infinite `g`, the direction times ±∞): through the
/// kernel where the coefficients are normal, else on rescaled vectors.
pub(crate) fn write_cosine_gradient(
    kernels: &Kernels,
    (cos, g): (Cosine, f32),
    (a, b): (&[f32], &[f32]),
    (grad_a, grad_b): (&mut [f32], &mut [f32]),
) {
    if g.is_infinite() && !cos.cos.is_nan() && !cos.has_zero_vector() {
        // The direction times ±∞ (select: a zero component stays 0).
        write_cosine_gradient_of(kernels, cos, g.signum(), a, b, grad_a, grad_b);
        for v in grad_a.iter_mut().chain(grad_b.iter_mut()) {
            *v = if *v == 0.0 { 0.0 } else { *v * f32::INFINITY };
        }
        return;
    }
    write_cosine_gradient_of(kernels, cos, g, a, b, grad_a, grad_b);
}

/// [`write_cosine_gradient`] without its case of an infinite `g` (which goes to the
/// rescaled path as it is): exact zeros for `g = 0` or a zero vector, NaN for a NaN `g` or
/// cosine.
pub(crate) fn write_cosine_gradient_of(
    kernels: &Kernels,
    cos: Cosine,
    g: f32,
    a: &[f32],
    b: &[f32],
    grad_a: &mut [f32],
    grad_b: &mut [f32],
) {
    if cos.cos.is_nan() || g.is_nan() {
        grad_a.fill(f32::NAN);
        grad_b.fill(f32::NAN);
        return;
    }
    if g == 0.0 || cos.has_zero_vector() {
        grad_a.fill(0.0);
        grad_b.fill(0.0);
        return;
    }
    if cos.plain {
        let cross = g / (cos.norm_a * cos.norm_b);
        let self_a = -g * cos.cos / (cos.norm_a * cos.norm_a);
        let self_b = -g * cos.cos / (cos.norm_b * cos.norm_b);
        // Normal, or exactly zero where the exact value is (the self terms at cos = 0): a
        // subnormal coefficient, or one that underflowed to 0, has lost its precision.
        let usable_self = |x: f32| x.is_normal() || (x == 0.0 && cos.cos == 0.0);
        if cross.is_normal() && usable_self(self_a) && usable_self(self_b) {
            (kernels.linear_combination)(a, b, [self_a, cross, cross, self_b], grad_a, grad_b);
            return;
        }
    }
    cosine_gradient_rescaled(a, b, cos, Wide::of(g), grad_a, grad_b);
}

fn cosine_gradient_rescaled(
    a: &[f32],
    b: &[f32],
    cos: Cosine,
    g: Wide,
    grad_a: &mut [f32],
    grad_b: &mut [f32],
) {
    let cos = if cos.plain {
        Cosine::rescaled(a, b)
    } else {
        cos
    };
    numerics::rescaled_cosine_gradient(a, b, cos, g, grad_a, grad_b);
}
