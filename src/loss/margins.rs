//! The general per-pair arithmetic of the contrastive loss with pytorch-metric-learning's
//! options: a positive and a negative margin, a linear or squared hinge, and the distance
//! the hinges read (`D`, `D²` or `1 − cos`, optionally between L2-normalised rows).
//!
//! `P(d) = w⁺·relu(d − m₊)^k` and `N(d) = w⁻·relu(m₋ − d)^k` with `k` 1 or 2. Today's
//! presets (`m₊ = 0`, `k = 2`) keep their own, faster path in `contrastive.rs`; this one
//! serves every other combination, on explicit pairs and in the in-batch walks.

#![forbid(unsafe_code)]

use super::contrastive::{Distance, Mining, Reduction};
use super::pair::write_cosine_gradient;
use crate::kernels::Kernels;
use crate::numerics::{Cosine, Separation, sqrt};
use crate::pairwise::add_direction;
use crate::{Error, check};

/// The two hinges of a loss.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Margins {
    pub w_pos: f32,
    pub w_neg: f32,
    pub m_pos: f32,
    pub m_neg: f32,
    pub squared: bool,
}

/// `relu(a)` that keeps NaN.
#[inline]
fn relu(a: f32) -> f32 {
    if a > 0.0 || a.is_nan() { a } else { 0.0 }
}

impl Margins {
    /// `(w·relu(a)^k, ∂/∂a)`: `(0, 0)` when the weight is 0 (select, not multiply) or the
    /// hinge is inactive (`relu'(0) = 0`); NaN for NaN.
    #[inline]
    fn hinge(&self, w: f32, a: f32) -> (f32, f32) {
        // NaN in, NaN out, whatever the weight (as the pair path: a NaN distance makes
        // the pair's loss NaN before any term is selected).
        if a.is_nan() {
            return (f32::NAN, f32::NAN);
        }
        if w == 0.0 {
            return (0.0, 0.0);
        }
        let h = relu(a);
        if h == 0.0 {
            return (0.0, 0.0);
        }
        if self.squared {
            (w * h * h, 2.0 * w * h)
        } else {
            (w * h, w)
        }
    }

    /// The positive term at distance value `d` and its slope `∂/∂d`.
    #[inline]
    pub(crate) fn positive(&self, d: f32) -> (f32, f32) {
        self.hinge(self.w_pos, d - self.m_pos)
    }

    /// The negative term at distance value `d` and its slope `∂/∂d`.
    #[inline]
    pub(crate) fn negative(&self, d: f32) -> (f32, f32) {
        let (loss, slope) = self.hinge(self.w_neg, self.m_neg - d);
        (loss, -slope)
    }

    /// `(y·P, (1 − y)·N, slope)` of a pair with label `y` at distance value `d`, the slope
    /// being `∂/∂d` of `fp·y·P + fn·(1 − y)·N`. Labels 0 and 1 evaluate one term only.
    #[inline]
    pub(crate) fn labelled(&self, y: f32, d: f32, fp: f32, fn_: f32) -> (f32, f32, f32) {
        let (mut pos, mut neg, mut slope) = (0.0, 0.0, 0.0);
        if d.is_nan() {
            return (f32::NAN, f32::NAN, f32::NAN);
        }
        if y != 0.0 {
            let (l, s) = self.positive(d);
            if l != 0.0 || s.is_nan() {
                pos = if y == 1.0 { l } else { y * l };
                slope += fp * if y == 1.0 { s } else { y * s };
            }
        }
        if y != 1.0 {
            let (l, s) = self.negative(d);
            if l != 0.0 || s.is_nan() {
                let q = 1.0 - y;
                neg = if y == 0.0 { l } else { q * l };
                slope += fn_ * if y == 0.0 { s } else { q * s };
            }
        }
        (pos, neg, slope)
    }
}

/// Which distance the hinges read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Measure {
    Euclidean,
    Squared,
    Cosine,
}

/// The thresholds of hard-pair mining ([`Mining::HardPairs`]) over a batch's distances.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Thresholds {
    max_pos: f32,
    min_neg: f32,
    sum_pos: f64,
    sum_neg: f64,
    n_pos: u64,
    n_neg: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_pos: f32::NEG_INFINITY,
            min_neg: f32::INFINITY,
            sum_pos: 0.0,
            sum_neg: 0.0,
            n_pos: 0,
            n_neg: 0,
        }
    }
}

impl Thresholds {
    /// Takes the distance `d` of a positive (or negative) pair into account, `times` times.
    #[inline]
    pub(crate) fn observe(&mut self, d: f32, positive: bool, times: u64) {
        if d.is_nan() {
            return;
        }
        if positive {
            self.max_pos = if d > self.max_pos { d } else { self.max_pos };
            self.sum_pos += f64::from(d) * times as f64;
            self.n_pos += times;
        } else {
            self.min_neg = if d < self.min_neg { d } else { self.min_neg };
            self.sum_neg += f64::from(d) * times as f64;
            self.n_neg += times;
        }
    }

    pub(crate) fn merge(&mut self, o: &Thresholds) {
        self.max_pos = if o.max_pos > self.max_pos {
            o.max_pos
        } else {
            self.max_pos
        };
        self.min_neg = if o.min_neg < self.min_neg {
            o.min_neg
        } else {
            self.min_neg
        };
        self.sum_pos += o.sum_pos;
        self.sum_neg += o.sum_neg;
        self.n_pos += o.n_pos;
        self.n_neg += o.n_neg;
    }

    /// Whether a pair at distance `d` is hard: a positive farther than the closest
    /// negative (or than the positives' mean, with no negative), a negative closer than
    /// the farthest positive (or the negatives' mean). NaN is always selected.
    #[inline]
    pub(crate) fn select(&self, d: f32, positive: bool) -> bool {
        if d.is_nan() {
            return true;
        }
        let d = f64::from(d);
        if positive {
            let t = if self.n_neg > 0 {
                f64::from(self.min_neg)
            } else {
                self.sum_pos / self.n_pos.max(1) as f64
            };
            d > t
        } else {
            let t = if self.n_pos > 0 {
                f64::from(self.max_pos)
            } else {
                self.sum_neg / self.n_neg.max(1) as f64
            };
            d < t
        }
    }
}

/// The distance value the hinges of an explicit pair read.
fn distance_value(
    kernels: &Kernels,
    measure: Measure,
    normalize: bool,
    a: &[f32],
    b: &[f32],
) -> f32 {
    match measure {
        Measure::Cosine => 1.0 - Cosine::of(kernels, a, b).cos,
        _ if normalize => {
            let ((ia, _), (ib, _)) = (inverse_norm(a), inverse_norm(b));
            let s: f64 = a
                .iter()
                .zip(b)
                .map(|(&x, &z)| {
                    let t = f64::from(x) * ia - f64::from(z) * ib;
                    t * t
                })
                .sum();
            if measure == Measure::Squared {
                s as f32
            } else {
                libm::sqrt(s) as f32
            }
        }
        Measure::Euclidean => Separation::of(kernels, a, b).distance,
        Measure::Squared => Separation::of(kernels, a, b).squared,
    }
}

/// An explicit pair under a general loss: `(y·P, (1 − y)·N)`, and with `grads` the
/// gradients of `fp·y·P + fn·(1 − y)·N`, written over `grad_a` and `grad_b`. With
/// `mining`, a pair that is not hard costs 0 and gets a zero gradient.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pair(
    kernels: &Kernels,
    margins: &Margins,
    measure: Measure,
    normalize: bool,
    (a, b, y): (&[f32], &[f32], f32),
    (fp, fn_): (f32, f32),
    grads: Option<(&mut [f32], &mut [f32])>,
    mining: Option<&Thresholds>,
) -> (f32, f32) {
    if let Some(th) = mining
        && !th.select(distance_value(kernels, measure, normalize, a, b), y == 1.0)
    {
        if let Some((ga, gb)) = grads {
            ga.fill(0.0);
            gb.fill(0.0);
        }
        return (0.0, 0.0);
    }
    match measure {
        Measure::Cosine => {
            let cos = Cosine::of(kernels, a, b);
            let d = 1.0 - cos.cos;
            let (pos, neg, slope) = margins.labelled(y, d, fp, fn_);
            if let Some((ga, gb)) = grads {
                // ∂D/∂cos = −1.
                write_cosine_gradient(kernels, (cos, -slope), (a, b), (ga, gb));
            }
            (pos, neg)
        }
        _ if normalize => normalized_pair(margins, measure, (a, b, y), (fp, fn_), grads),
        Measure::Euclidean => {
            let sep = Separation::of(kernels, a, b);
            let d = sep.distance;
            let (pos, neg, slope) = margins.labelled(y, d, fp, fn_);
            if let Some((ga, gb)) = grads {
                let k = slope / d;
                if slope == 0.0 || d == 0.0 {
                    ga.fill(0.0);
                    gb.fill(0.0);
                } else if sep.rescaled.is_none() && k.is_normal() && d.is_finite() {
                    (kernels.scaled_difference)(a, b, k, ga, gb);
                } else {
                    ga.fill(0.0);
                    gb.fill(0.0);
                    add_direction(a, b, slope, ga, gb);
                }
            }
            (pos, neg)
        }
        Measure::Squared => {
            let sep = Separation::of(kernels, a, b);
            let (pos, neg, slope) = margins.labelled(y, sep.squared, fp, fn_);
            if let Some((ga, gb)) = grads {
                let k = 2.0 * slope;
                if k.is_finite() {
                    (kernels.scaled_difference)(a, b, k, ga, gb);
                } else {
                    // Select, not multiply: a zero component stays 0 under an infinite `k`.
                    for ((&x, &z), (ga, gb)) in a.iter().zip(b).zip(ga.iter_mut().zip(gb)) {
                        let g = if x == z { 0.0 } else { k * (x - z) };
                        *ga = g;
                        *gb = -g;
                    }
                }
            }
            (pos, neg)
        }
    }
}

/// `(1/‖x‖, ‖x‖)` in f64, `(0, 0)` for a zero row (f32 components square to f64 without
/// under- or overflow).
fn inverse_norm(x: &[f32]) -> (f64, f64) {
    let n = libm::sqrt(x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>());
    if n == 0.0 { (0.0, 0.0) } else { (1.0 / n, n) }
}

/// An explicit pair between L2-normalised rows (Euclidean or squared Euclidean), in f64
/// scalar code: `â = a/‖a‖` (0 for a zero row), the distance of `â − b̂`, and the gradient
/// chained through the normalisation, `(g − (g·â)·â)/‖a‖`.
fn normalized_pair(
    margins: &Margins,
    measure: Measure,
    (a, b, y): (&[f32], &[f32], f32),
    (fp, fn_): (f32, f32),
    grads: Option<(&mut [f32], &mut [f32])>,
) -> (f32, f32) {
    let ((ia, _), (ib, _)) = (inverse_norm(a), inverse_norm(b));
    let unit = |x: f32, i: f64| f64::from(x) * i;
    let s: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &z)| {
            let t = unit(x, ia) - unit(z, ib);
            t * t
        })
        .sum();
    let d = if measure == Measure::Squared {
        s
    } else {
        libm::sqrt(s)
    };
    let (pos, neg, slope) = margins.labelled(y, d as f32, fp, fn_);
    if let Some((ga, gb)) = grads {
        // ∂d/∂â = k·(â − b̂).
        let k = match measure {
            Measure::Squared => 2.0 * f64::from(slope),
            _ if d == 0.0 || slope == 0.0 => 0.0,
            _ => f64::from(slope) / d,
        };
        if k == 0.0 {
            ga.fill(0.0);
            gb.fill(0.0);
            return (pos, neg);
        }
        // g_â = k·δ̂, g_b̂ = −k·δ̂; projections g·â and g·b̂.
        let (mut ga_dot, mut gb_dot) = (0.0f64, 0.0f64);
        for (&x, &z) in a.iter().zip(b) {
            let delta = unit(x, ia) - unit(z, ib);
            ga_dot += k * delta * unit(x, ia);
            gb_dot -= k * delta * unit(z, ib);
        }
        for ((&x, &z), (ga, gb)) in a.iter().zip(b).zip(ga.iter_mut().zip(gb)) {
            let (ua, ub) = (unit(x, ia), unit(z, ib));
            let g = k * (ua - ub);
            *ga = ((g - ga_dot * ua) * ia) as f32;
            *gb = ((-g - gb_dot * ub) * ib) as f32;
        }
    }
    (pos, neg)
}

/// `1/‖x‖` as two f32 factors (a power of two, then the rest) such that `(x·s0)·s1` is the
/// unit vector of `x` for every finite row, subnormal norms included; zeros for a zero
/// row; NaN factors for a row with a NaN or infinite component.
pub(crate) fn unit_scale(kernels: &Kernels, x: &[f32]) -> [f32; 2] {
    let ss = (kernels.dot)(x, x);
    if crate::numerics::is_positive_normal(ss) {
        return [1.0 / sqrt(ss), 1.0];
    }
    unit_scale_careful(x)
}

#[cold]
#[inline(never)]
fn unit_scale_careful(x: &[f32]) -> [f32; 2] {
    if x.iter().any(|v| !v.is_finite()) {
        return [f32::NAN, f32::NAN];
    }
    let (_, n) = inverse_norm(x);
    if n == 0.0 {
        return [0.0, 0.0];
    }
    // A power of two that brings the norm near [1, 2), within f32's normal exponents (a
    // row's norm lies in [2⁻¹⁴⁹, 2¹²⁹)): exact on every component that stays normal.
    // n is normal in f64 here: its exponent field is ⌊log₂ n⌋ + 1023.
    let e = (1023 - ((n.to_bits() >> 52) & 0x7ff) as i32).clamp(-126, 127);
    let s0 = f32::from_bits(((e + 127) as u32) << 23);
    let s1 = (1.0 / (n * f64::from(s0))) as f32;
    [s0, s1]
}

/// `g_i ← (g_i − (g_i·x̂_i)·x̂_i)·(1/‖x_i‖)` for every row: the gradient with respect to the
/// normalised rows `x̂ = (x·s0)·s1` chained to the raw rows (0 for a zero row).
pub(crate) fn chain_normalization(x: &[f32], scales: &[[f32; 2]], dim: usize, grad: &mut [f32]) {
    for ((row, g), &[s0, s1]) in x
        .chunks_exact(dim)
        .zip(grad.chunks_exact_mut(dim))
        .zip(scales)
    {
        if s0 == 0.0 {
            g.fill(0.0);
            continue;
        }
        let dot: f64 = row
            .iter()
            .zip(g.iter())
            .map(|(&v, &gv)| f64::from((v * s0) * s1) * f64::from(gv))
            .sum();
        let dot = dot as f32;
        for (gv, &v) in g.iter_mut().zip(row) {
            let u = (v * s0) * s1;
            *gv = ((*gv - dot * u) * s0) * s1;
        }
    }
}

impl crate::ContrastiveLoss {
    /// The hinges of this loss.
    pub(crate) fn margins(&self) -> Margins {
        Margins {
            w_pos: self.positive_weight,
            w_neg: self.negative_weight,
            m_pos: self.positive_margin,
            m_neg: self.margin,
            squared: self.hinge == crate::loss::contrastive::Hinge::Squared,
        }
    }

    /// The distance the hinges read.
    pub(crate) fn measure(&self) -> Measure {
        match self.distance {
            Distance::Euclidean => Measure::Euclidean,
            Distance::SquaredEuclidean => Measure::Squared,
            Distance::Cosine => Measure::Cosine,
        }
    }

    /// One explicit pair under the general form (no reduction); with `grads`, its
    /// gradients written over them.
    pub(crate) fn general_pair(
        &self,
        kernels: &Kernels,
        a: &[f32],
        b: &[f32],
        label: f32,
        grads: Option<(&mut [f32], &mut [f32])>,
    ) -> f32 {
        let (margins, measure) = (self.margins(), self.measure());
        let mining = self.thresholds(kernels, (a, b, a.len(), core::slice::from_ref(&label)));
        let (pos, neg) = pair(
            kernels,
            &margins,
            measure,
            self.normalize,
            (a, b, label),
            (1.0, 1.0),
            grads,
            mining.as_ref(),
        );
        pos + neg
    }

    /// A batch of explicit pairs under the general form: the reduced loss, and per-pair
    /// losses into `out` and gradients into `grads` where given. `AvgNonZero` needs its
    /// counts before any gradient, so it reads the batch twice when it has gradients.
    pub(crate) fn general_batch(
        &self,
        kernels: &Kernels,
        (a, b, dim, labels): (&[f32], &[f32], usize, &[f32]),
        mut out: Option<&mut [f32]>,
        mut grads: Option<(&mut [f32], &mut [f32])>,
        weights: Option<&[f32]>,
    ) -> Result<f32, Error> {
        check::labels(labels)?;
        if let Some(w) = weights {
            pair_weights(w, labels.len())?;
        }
        let weight = |r: usize| weights.map_or(1.0, |w| w[r]);
        let avg_nonzero = self.reduction == Reduction::AvgNonZero;
        if avg_nonzero || self.mining != Mining::None {
            hard_labels(labels)?;
        }
        let mining = self.thresholds(kernels, (a, b, dim, labels));
        let (margins, measure) = (self.margins(), self.measure());
        let rows = labels.len();
        let mean = 1.0 / rows as f32;
        let factors = match self.reduction {
            Reduction::Mean => (mean, mean),
            _ => (1.0, 1.0),
        };
        // One pass with gradients unless AvgNonZero needs its counts first.
        let first_grads = !avg_nonzero;
        let mut sums = NonZeroSums::default();
        for (r, &y) in labels.iter().enumerate() {
            let (ra, rb) = (&a[r * dim..(r + 1) * dim], &b[r * dim..(r + 1) * dim]);
            let g = match &mut grads {
                Some((ga, gb)) if first_grads => Some((
                    &mut ga[r * dim..(r + 1) * dim],
                    &mut gb[r * dim..(r + 1) * dim],
                )),
                _ => None,
            };
            let w = weight(r);
            if w == 0.0 {
                // Select, not multiply: a pair of weight 0 is not evaluated.
                if let Some((ga, gb)) = g {
                    ga.fill(0.0);
                    gb.fill(0.0);
                }
                if let Some(out) = &mut out {
                    out[r] = 0.0;
                }
                continue;
            }
            let (pos, neg) = pair(
                kernels,
                &margins,
                measure,
                self.normalize,
                (ra, rb, y),
                (factors.0 * w, factors.1 * w),
                g,
                mining.as_ref(),
            );
            let (pos, neg) = (pos * w, neg * w);
            if let Some(out) = &mut out {
                out[r] = pos + neg;
            }
            sums.add(pos, neg);
        }
        let loss = match self.reduction {
            Reduction::Mean => (sums.total / rows as f64) as f32,
            Reduction::Sum => sums.total as f32,
            Reduction::AvgNonZero => sums.avg_nonzero(),
        };
        if avg_nonzero && let Some((ga, gb)) = grads {
            let factors = sums.factors();
            for (r, &y) in labels.iter().enumerate() {
                let (ra, rb) = (&a[r * dim..(r + 1) * dim], &b[r * dim..(r + 1) * dim]);
                let (ga, gb) = (
                    &mut ga[r * dim..(r + 1) * dim],
                    &mut gb[r * dim..(r + 1) * dim],
                );
                let w = weight(r);
                if w == 0.0 {
                    ga.fill(0.0);
                    gb.fill(0.0);
                    continue;
                }
                pair(
                    kernels,
                    &margins,
                    measure,
                    self.normalize,
                    (ra, rb, y),
                    (factors.0 * w, factors.1 * w),
                    Some((ga, gb)),
                    mining.as_ref(),
                );
            }
        }
        Ok(loss)
    }
}

impl crate::ContrastiveLoss {
    /// The mining thresholds of a batch of explicit pairs (a first pass over their
    /// distances), or `None` without mining.
    fn thresholds(
        &self,
        kernels: &Kernels,
        (a, b, dim, labels): (&[f32], &[f32], usize, &[f32]),
    ) -> Option<Thresholds> {
        if self.mining == Mining::None {
            return None;
        }
        let mut th = Thresholds::default();
        for (r, &y) in labels.iter().enumerate() {
            let (ra, rb) = (&a[r * dim..(r + 1) * dim], &b[r * dim..(r + 1) * dim]);
            let d = distance_value(kernels, self.measure(), self.normalize, ra, rb);
            th.observe(d, y == 1.0, 1);
        }
        Some(th)
    }
}

/// Per-pair weights: one per pair, each finite and ≥ 0.
pub(crate) fn pair_weights(weights: &[f32], pairs: usize) -> Result<(), Error> {
    check::same_len("weights", pairs, weights.len())?;
    match weights.iter().find(|w| !(w.is_finite() && **w >= 0.0)) {
        None => Ok(()),
        Some(&weight) => Err(Error::InvalidWeight {
            argument: "weights",
            weight,
        }),
    }
}

impl crate::ContrastiveLoss {
    /// The loss of pairs whose distances the caller already computed: pair `i` at
    /// distance `distances[i]` (the value the hinges read: `D`, or `D²` for
    /// [`Distance::SquaredEuclidean`], or `1 − cos`; `normalize` does not apply) with
    /// label `labels[i]` and, optionally, weight `weights[i]` (the pair's loss times it;
    /// `Mean` still divides by the number of pairs, as Keras' `sample_weight`). With
    /// `grad`, `∂loss/∂distances[i]` is written into it. Reductions and mining as for
    /// [`batch`](Self::batch); the classic presets give `w⁺·y·D² + w⁻·(1 − y)·relu(m − D)²`.
    ///
    /// ```
    /// use contrastive::ContrastiveLoss;
    /// let loss = ContrastiveLoss::tfa(1.0); // y·D² + (1 − y)·relu(1 − D)², mean
    /// let mut grad = [0.0; 2];
    /// let l = loss.from_distances(&[0.5, 0.25], &[1.0, 0.0], None, Some(&mut grad))?;
    /// assert_eq!(l, (0.25 + 0.5625) / 2.0);
    /// assert_eq!(grad, [0.5, -0.75]);
    /// # Ok::<(), contrastive::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] (`labels`, `weights` or `grad` not one per distance),
    /// [`Error::InvalidLabel`] (outside [0, 1], or not 0 or 1 with `AvgNonZero` or
    /// mining), [`Error::InvalidWeight`] (a weight negative or not finite),
    /// [`Error::InvalidDistance`] (a negative distance; +∞ and NaN are accepted),
    /// [`Error::InvalidMargin`], and [`Error::Empty`] for `Mean` over no pair.
    pub fn from_distances(
        &self,
        distances: &[f32],
        labels: &[f32],
        weights: Option<&[f32]>,
        mut grad: Option<&mut [f32]>,
    ) -> Result<f32, Error> {
        self.kernels()?;
        let n = distances.len();
        check::same_len("labels", n, labels.len())?;
        check::labels(labels)?;
        if let Some(w) = weights {
            pair_weights(w, n)?;
        }
        if let Some(g) = &grad {
            check::same_len("grad", n, g.len())?;
        }
        if let Some(index) = distances.iter().position(|d| *d < 0.0) {
            return Err(Error::InvalidDistance {
                index,
                distance: distances[index],
            });
        }
        if self.reduction == Reduction::AvgNonZero || self.mining != Mining::None {
            hard_labels(labels)?;
        }
        if n == 0 && self.reduction == Reduction::Mean {
            return Err(Error::Empty {
                argument: "distances",
            });
        }
        let mining = (self.mining != Mining::None).then(|| {
            let mut th = Thresholds::default();
            for (&d, &y) in distances.iter().zip(labels) {
                th.observe(d, y == 1.0, 1);
            }
            th
        });
        let margins = self.margins();
        let weight = |i: usize| weights.map_or(1.0, |w| w[i]);
        let selected = |d: f32, y: f32| mining.as_ref().is_none_or(|th| th.select(d, y == 1.0));
        let mut sums = NonZeroSums::default();
        for (i, (&d, &y)) in distances.iter().zip(labels).enumerate() {
            let w = weight(i);
            if w != 0.0 && selected(d, y) {
                let (pos, neg, _) = margins.labelled(y, d, 1.0, 1.0);
                sums.add(pos * w, neg * w);
            }
        }
        let loss = match self.reduction {
            Reduction::Mean => (sums.total / n as f64) as f32,
            Reduction::Sum => sums.total as f32,
            Reduction::AvgNonZero => sums.avg_nonzero(),
        };
        if let Some(g) = &mut grad {
            let (fp, fn_) = match self.reduction {
                Reduction::Mean => (1.0 / n as f32, 1.0 / n as f32),
                Reduction::Sum => (1.0, 1.0),
                Reduction::AvgNonZero => sums.factors(),
            };
            for (i, (&d, &y)) in distances.iter().zip(labels).enumerate() {
                let w = weight(i);
                g[i] = if w != 0.0 && selected(d, y) {
                    margins.labelled(y, d, fp * w, fn_ * w).2
                } else {
                    0.0
                };
            }
        }
        Ok(loss)
    }

    /// [`batch_with_grad`](Self::batch_with_grad) with a weight per pair (each pair's loss
    /// and gradient times `weights[i]`; `Mean` still divides by the number of pairs; a
    /// pair of weight 0 is not evaluated). `grads` may be `None` for the loss alone.
    ///
    /// # Errors
    /// As [`batch_with_grad`](Self::batch_with_grad), and [`Error::LengthMismatch`] or
    /// [`Error::InvalidWeight`] for `weights`.
    pub fn batch_weighted(
        &self,
        a: &[f32],
        b: &[f32],
        dim: usize,
        labels: &[f32],
        weights: &[f32],
        grads: Option<(&mut [f32], &mut [f32])>,
    ) -> Result<f32, Error> {
        let kernels = self.kernels()?;
        let rows = check::rows(a, b, dim)?;
        check::same_len("labels", rows, labels.len())?;
        if let Some((ga, gb)) = &grads {
            check::same_len("grad_a", a.len(), ga.len())?;
            check::same_len("grad_b", a.len(), gb.len())?;
        }
        if rows == 0 {
            pair_weights(weights, 0)?;
            return match self.reduction {
                Reduction::Mean => Err(Error::Empty { argument: "labels" }),
                _ => Ok(0.0),
            };
        }
        self.general_batch(kernels, (a, b, dim, labels), None, grads, Some(weights))
    }
}

/// `AvgNonZero` needs labels exactly 0 or 1.
pub(crate) fn hard_labels(labels: &[f32]) -> Result<(), Error> {
    match labels.iter().position(|&y| y != 0.0 && y != 1.0) {
        None => Ok(()),
        Some(index) => Err(Error::InvalidLabel {
            index,
            label: labels[index],
        }),
    }
}

/// Running sums of a batch's positive and negative losses, in f64, with the counts of the
/// non-zero ones (a NaN counts).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct NonZeroSums {
    /// Hard-pair mining's first pass collects its thresholds here.
    pub thresholds: Thresholds,
    pub total: f64,
    pub positive: f64,
    pub negative: f64,
    pub positive_count: u64,
    pub negative_count: u64,
}

impl NonZeroSums {
    #[inline]
    pub(crate) fn add(&mut self, pos: f32, neg: f32) {
        self.total += f64::from(pos) + f64::from(neg);
        if pos != 0.0 {
            self.positive += f64::from(pos);
            self.positive_count += 1;
        }
        if neg != 0.0 {
            self.negative += f64::from(neg);
            self.negative_count += 1;
        }
    }

    /// `w`-weighted counts: for ordered pairs counted once per unordered pair.
    #[inline]
    pub(crate) fn add_times(&mut self, pos: f32, neg: f32, times: u64) {
        let t = times as f64;
        self.total += t * (f64::from(pos) + f64::from(neg));
        if pos != 0.0 {
            self.positive += t * f64::from(pos);
            self.positive_count += times;
        }
        if neg != 0.0 {
            self.negative += t * f64::from(neg);
            self.negative_count += times;
        }
    }

    pub(crate) fn merge(&mut self, other: &NonZeroSums) {
        self.thresholds.merge(&other.thresholds);
        self.total += other.total;
        self.positive += other.positive;
        self.negative += other.negative;
        self.positive_count += other.positive_count;
        self.negative_count += other.negative_count;
    }

    /// The mean of the non-zero positive losses plus that of the negative ones.
    pub(crate) fn avg_nonzero(&self) -> f32 {
        let mean = |sum: f64, n: u64| if n == 0 { 0.0 } else { sum / n as f64 };
        (mean(self.positive, self.positive_count) + mean(self.negative, self.negative_count)) as f32
    }

    /// The gradient factors of `AvgNonZero`: `1/count` per side (0 for an empty side).
    pub(crate) fn factors(&self) -> (f32, f32) {
        let inv = |n: u64| if n == 0 { 0.0 } else { (1.0 / n as f64) as f32 };
        (inv(self.positive_count), inv(self.negative_count))
    }
}
