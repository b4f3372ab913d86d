//! In-batch triplet margin losses on one batch with class labels: batch-all
//! (pytorch-metric-learning) and batch-hard (sentence-transformers). Neither builds an
//! N×N (let alone N×N×N) matrix: each anchor takes one row of distances (O(N) scratch),
//! then batch-hard scans it, and batch-all sorts its positives' and negatives' distances
//! and counts active triplets by merging and binary search.

#![forbid(unsafe_code)]

use super::cosine_embedding::write_cosine_gradient;
use super::direction::Leg;
use crate::kernels::{self, Kernels};
use crate::numerics::{Cosine, Separation, is_positive_normal, sqrt};
use crate::{Backend, Distance, Error, check};

/// STAND-IN for the in-batch tile engine (until it lands, then deleted): `out[j]` is the
/// distance of row `anchor` of `x` to row `j`, with `out[anchor] = 0`. Euclidean distances
/// are exact at every magnitude (rescaled where `D²` under- or overflows f32); the cosine
/// distance is `1 − cos`, exactly 0 for bitwise-identical nonzero rows.
fn distance_row(
    kernels: &Kernels,
    distance: Distance,
    anchor: usize,
    x: &[f32],
    dim: usize,
    out: &mut [f32],
) {
    let xa = &x[anchor * dim..(anchor + 1) * dim];
    for (j, (xj, o)) in x.chunks_exact(dim).zip(out.iter_mut()).enumerate() {
        *o = if j == anchor {
            0.0
        } else {
            match distance {
                Distance::Euclidean | Distance::SquaredEuclidean => {
                    let s = (kernels.squared_euclidean)(xa, xj);
                    if is_positive_normal(s) {
                        sqrt(s)
                    } else {
                        Separation::from_sum(s, xa, xj).distance
                    }
                }
                Distance::Cosine => cosine_distance(kernels, xa, xj),
            }
        };
    }
}

/// `1 − cos(a, b)`, exactly 0 for bitwise-identical nonzero rows (rounding would leave a
/// few ulps and break ties and hinges that are exact).
fn cosine_distance(kernels: &Kernels, a: &[f32], b: &[f32]) -> f32 {
    let cos = Cosine::of(kernels, a, b);
    if a == b && !cos.has_zero_vector() && !cos.cos.is_nan() {
        0.0
    } else {
        1.0 - cos.cos
    }
}

/// Checks shared by the in-batch losses; returns the number of rows.
fn check_in_batch(
    x: &[f32],
    dim: usize,
    classes: &[u32],
    scratch: usize,
    needed: usize,
) -> Result<usize, Error> {
    if dim == 0 {
        return Err(Error::ZeroDimension);
    }
    if !x.len().is_multiple_of(dim) {
        return Err(Error::NotMultipleOfDim {
            argument: "x",
            len: x.len(),
            dim,
        });
    }
    let rows = x.len() / dim;
    check::same_len("classes", rows, classes.len())?;
    if scratch < needed {
        return Err(Error::ScratchTooSmall {
            needed,
            found: scratch,
        });
    }
    Ok(rows)
}

/// Rows `i` and `j` (`i ≠ j`) of `grad`, both mutable.
fn two_rows(grad: &mut [f32], dim: usize, i: usize, j: usize) -> (&mut [f32], &mut [f32]) {
    if i < j {
        let (lo, hi) = grad.split_at_mut(j * dim);
        (&mut lo[i * dim..(i + 1) * dim], &mut hi[..dim])
    } else {
        let (lo, hi) = grad.split_at_mut(i * dim);
        (&mut hi[..dim], &mut lo[j * dim..(j + 1) * dim])
    }
}

/// Adds `w·∂D/∂x_i` to row `i` of `grad` and `w·∂D/∂x_j` to row `j`, for the Euclidean
/// distance `D = d` of rows `i ≠ j` (nothing at `D = 0`: the subgradient 0).
fn add_euclidean(grad: &mut [f32], x: &[f32], dim: usize, i: usize, j: usize, d: f32, w: f32) {
    if d == 0.0 || w == 0.0 {
        return;
    }
    let (xi, xj) = (&x[i * dim..(i + 1) * dim], &x[j * dim..(j + 1) * dim]);
    let (gi, gj) = two_rows(grad, dim, i, j);
    let leg = Leg::from_distance(d, xi, xj);
    match leg.direction.plain() {
        Some(k) => {
            let wk = w * k;
            for (((g_i, g_j), &a), &b) in gi.iter_mut().zip(gj.iter_mut()).zip(xi).zip(xj) {
                let u = (a - b) * wk;
                *g_i += u;
                *g_j -= u;
            }
        }
        None => {
            let dir = leg.direction;
            for (((g_i, g_j), &a), &b) in gi.iter_mut().zip(gj.iter_mut()).zip(xi).zip(xj) {
                let u = w * dir.at(a, b);
                *g_i += u;
                *g_j -= u;
            }
        }
    }
}

/// Adds `w·∂D/∂x_i` and `w·∂D/∂x_j` for the cosine distance `D = 1 − cos` of rows `i ≠ j`;
/// `tmp` holds `2·dim` floats.
#[allow(clippy::too_many_arguments)]
fn add_cosine(
    kernels: &Kernels,
    grad: &mut [f32],
    x: &[f32],
    dim: usize,
    i: usize,
    j: usize,
    d: f32,
    w: f32,
    tmp: &mut [f32],
) {
    if d == 0.0 || w == 0.0 {
        return;
    }
    let (xi, xj) = (&x[i * dim..(i + 1) * dim], &x[j * dim..(j + 1) * dim]);
    let (ti, tj) = tmp[..2 * dim].split_at_mut(dim);
    // ∂D/∂x = −∂cos/∂x.
    write_cosine_gradient(kernels, Cosine::of(kernels, xi, xj), -w, xi, xj, ti, tj);
    let (gi, gj) = two_rows(grad, dim, i, j);
    for (g, t) in gi.iter_mut().zip(ti.iter()) {
        *g += *t;
    }
    for (g, t) in gj.iter_mut().zip(tj.iter()) {
        *g += *t;
    }
}

/// Whether every component is finite; if not, the loss and gradient are NaN.
fn all_finite(x: &[f32]) -> bool {
    x.iter().fold(true, |ok, v| ok & v.is_finite())
}

// ---------------------------------------------------------------------------------------

/// Batch-hard triplet loss (sentence-transformers' `BatchHardTripletLoss`): for each anchor
/// `i` of a batch with class labels, the hardest positive `hp = max D(i, j)` over the other
/// rows of its class and the hardest negative `hn = min D(i, j)` over the rows of other
/// classes; the loss is the **mean over all N anchors** of `max(0, hp − hn + m)`, and the
/// gradient flows only through the chosen pairs.
///
/// Decided edge cases (sentence-transformers' behaviour, kept on purpose):
/// - **Ties go to the lowest index** (for both the hardest positive and negative).
/// - **An anchor without a positive** (a singleton class) has `hp = 0` and still counts in
///   the mean: it pays `max(0, m − hn)`.
/// - **An anchor without a negative** (one class in the batch) takes as `hn` the largest
///   distance of its row, self included at `D = 0`: with a positive that is `hp`'s own
///   pair or an equal one, so it pays `m` with gradient 0.
/// - A batch of one row pays `m`; a batch of zero rows is an error (a mean over nothing).
/// - A non-finite component anywhere in `x` makes the loss and every gradient NaN.
///
/// Memory: [`scratch_len`](Self::scratch_len) floats (`N`, plus `2·dim` for the cosine
/// distance); work: `N²·dim` for the distances, `N·dim` for the gradient.
///
/// | preset | margin | distance | who |
/// |---|---|---|---|
/// | [`BatchHardTripletLoss::sentence_transformers`] | 5 | Euclidean | `BatchHardTripletLoss` |
/// | [`BatchHardTripletLoss::new`] | given | Euclidean | |
///
/// ```
/// use contrastive::BatchHardTripletLoss;
/// // Four embeddings of dim 2, two classes.
/// let x = [0.0, 0.0, 0.0, 1.0, 3.0, 0.0, 3.0, 2.0];
/// let classes = [7, 7, 9, 9];
/// let loss = BatchHardTripletLoss::new(2.0);
/// let mut scratch = vec![0.0; loss.scratch_len(4, 2)];
/// let mut grad = [0.0; 8];
/// let l = loss.batch_with_grad(&x, 2, &classes, &mut grad, &mut scratch)?;
/// // Anchors 0 and 1 are inactive (1 − 3 + 2 = 0, 1 − √10 + 2 < 0); anchor 2 pays
/// // 2 − 3 + 2 = 1, anchor 3 pays 2 − √10 + 2 (its hardest negative is row 1).
/// assert!((l - (1.0 + 4.0 - 10f32.sqrt()) / 4.0).abs() < 1e-6);
/// # Ok::<(), contrastive::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchHardTripletLoss {
    /// `m`, finite and ≥ 0.
    pub margin: f32,
    /// Euclidean (default) or cosine distance `1 − cos`.
    pub distance: Distance,
    /// The kernel backend; `None` runs the best one available.
    pub backend: Option<Backend>,
}

impl BatchHardTripletLoss {
    /// Margin `m`, Euclidean distance.
    pub const fn new(margin: f32) -> Self {
        BatchHardTripletLoss {
            margin,
            distance: Distance::Euclidean,
            backend: None,
        }
    }

    /// sentence-transformers' `BatchHardTripletLoss()`: margin 5, Euclidean distance.
    pub const fn sentence_transformers() -> Self {
        Self::new(5.0)
    }

    /// The same loss on another distance.
    pub const fn with_distance(mut self, distance: Distance) -> Self {
        self.distance = distance;
        self
    }

    /// The same loss computed on a named backend.
    pub const fn with_backend(mut self, backend: Backend) -> Self {
        self.backend = Some(backend);
        self
    }

    /// The scratch length [`batch`](Self::batch) and
    /// [`batch_with_grad`](Self::batch_with_grad) need for `rows` rows of `dim`.
    pub const fn scratch_len(&self, rows: usize, dim: usize) -> usize {
        match self.distance {
            Distance::Euclidean | Distance::SquaredEuclidean => rows,
            Distance::Cosine => rows.saturating_add(dim.saturating_mul(2)),
        }
    }

    /// The loss of a batch `x` of `N` rows of `dim` floats with class labels `classes`.
    ///
    /// # Errors
    /// [`Error::ZeroDimension`], [`Error::NotMultipleOfDim`], [`Error::LengthMismatch`]
    /// (`classes`), [`Error::ScratchTooSmall`], [`Error::InvalidMargin`], [`Error::Empty`]
    /// for zero rows, [`Error::BackendUnavailable`].
    pub fn batch(
        &self,
        x: &[f32],
        dim: usize,
        classes: &[u32],
        scratch: &mut [f32],
    ) -> Result<f32, Error> {
        self.run(x, dim, classes, None, scratch)
    }

    /// The loss and its gradient with respect to `x`, written over `grad` (as long as `x`).
    ///
    /// # Errors
    /// As [`batch`](Self::batch), and [`Error::LengthMismatch`] for `grad`.
    pub fn batch_with_grad(
        &self,
        x: &[f32],
        dim: usize,
        classes: &[u32],
        grad: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<f32, Error> {
        check::same_len("grad", x.len(), grad.len())?;
        self.run(x, dim, classes, Some(grad), scratch)
    }

    fn run(
        &self,
        x: &[f32],
        dim: usize,
        classes: &[u32],
        mut grad: Option<&mut [f32]>,
        scratch: &mut [f32],
    ) -> Result<f32, Error> {
        check::margin(self.margin)?;
        // The squared Euclidean distance (the in-batch contrastive loss's option) is not
        // defined for the triplet losses yet: refused, so the arms that accept it are never
        // reached with it.
        if self.distance == Distance::SquaredEuclidean {
            return Err(Error::InvalidParameter {
                argument: "distance",
                value: f32::NAN,
            });
        }
        let kernels = kernels::select(self.backend)?;
        let rows = x.len().checked_div(dim).unwrap_or(0);
        let rows = check_in_batch(x, dim, classes, scratch.len(), self.scratch_len(rows, dim))?;
        if rows == 0 {
            return Err(Error::Empty { argument: "x" });
        }
        if !all_finite(x) {
            if let Some(g) = grad {
                g.fill(f32::NAN);
            }
            return Ok(f32::NAN);
        }
        if let Some(g) = grad.as_deref_mut() {
            g.fill(0.0);
        }
        let (row, tmp) = scratch.split_at_mut(rows);
        let m = f64::from(self.margin);
        let w = 1.0 / rows as f32;
        let mut total = 0.0f64;
        for i in 0..rows {
            distance_row(kernels, self.distance, i, x, dim, row);
            let class = classes[i];
            let mut positive: Option<(usize, f32)> = None;
            let mut negative: Option<(usize, f32)> = None;
            let mut largest = (i, 0.0f32);
            for (j, (&d, &c)) in row.iter().zip(classes).enumerate() {
                if d > largest.1 {
                    largest = (j, d);
                }
                if j == i {
                    continue;
                }
                if c == class {
                    if positive.is_none_or(|(_, hp)| d > hp) {
                        positive = Some((j, d));
                    }
                } else if negative.is_none_or(|(_, hn)| d < hn) {
                    negative = Some((j, d));
                }
            }
            let hp = positive.map_or(0.0, |p| p.1);
            let (hn_index, hn) = negative.unwrap_or(largest);
            let v = f64::from(hp) - f64::from(hn) + m;
            // Inactive (v ≤ 0; x is finite here, so v is not NaN).
            if v <= 0.0 {
                continue;
            }
            total += v;
            let Some(g) = grad.as_deref_mut() else {
                continue;
            };
            let mut add = |j: usize, d: f32, sign: f32| {
                if j == i {
                    return;
                }
                match self.distance {
                    Distance::Euclidean | Distance::SquaredEuclidean => {
                        add_euclidean(g, x, dim, i, j, d, sign * w)
                    }
                    Distance::Cosine => add_cosine(kernels, g, x, dim, i, j, d, sign * w, tmp),
                }
            };
            if let Some((j, d)) = positive {
                add(j, d, 1.0);
            }
            add(hn_index, hn, -1.0);
        }
        Ok((total / rows as f64) as f32)
    }
}

// ---------------------------------------------------------------------------------------

/// Batch-all triplet loss (pytorch-metric-learning's `TripletMarginLoss` with its default
/// "all" triplets): every triplet `(a, p, n)` of a batch with class labels, `p ≠ a` of
/// `a`'s class and `n` of another class, with violation `v = d(a, p) − d(a, n) + m` on the
/// Euclidean distance.
///
/// - `smooth = false`: loss `max(0, v)`, reduced by **AvgNonZero**: the sum over triplets
///   divided by the number with `v > 0` (0 when there is none; a triplet exactly at the
///   hinge is not counted and has gradient 0).
/// - `smooth = true`: loss `softplus(v) = ln(1 + eᵛ)`, the **mean over all valid
///   triplets** (PML's AvgNonZero equals it unless softplus underflows to 0 in f32; this
///   crate computes it in f64 and counts every triplet). No valid triplet: 0.
/// - `normalize`: rows are L2-normalised first (PML's default `LpDistance`), with the
///   gradient through the normalisation; a zero row stays zero and gets gradient 0.
/// - A batch of zero rows, or one without a valid triplet, has loss 0 and gradient 0. A
///   non-finite component anywhere in `x` makes the loss and every gradient NaN.
///
/// Cost: no N×N×N mask or loop. Each anchor computes one row of N distances, sorts its
/// positives' and negatives' distances (O(N log N)), and counts active triplets and their
/// sum by merging the two sorted lists; the gradient coefficient of each pair (how many
/// active triplets it is in) comes by binary search, and AvgNonZero's `1/count` is applied
/// at the end. The smooth loss evaluates softplus per triplet: O(N·|P|·|N|) scalar work
/// (no `dim` factor), still O(N) memory.
///
/// | preset | margin | normalize | who |
/// |---|---|---|---|
/// | [`BatchAllTripletLoss::pml`] | 0.05 | yes | PML `TripletMarginLoss()` |
/// | [`BatchAllTripletLoss::new`] | given | no | sentence-transformers `BatchAllTripletLoss` (margin 5) |
///
/// sentence-transformers' `BatchAllTripletLoss` divides by the number of triplets with a
/// loss above `1e-16` (plus `1e-16`), which is the same AvgNonZero up to that threshold.
///
/// ```
/// use contrastive::BatchAllTripletLoss;
/// let x = [0.0, 0.0, 0.0, 1.0, 1.5, 0.0];
/// let loss = BatchAllTripletLoss::new(1.0);
/// let mut scratch = vec![0.0; loss.scratch_len(3, 2)];
/// // Triplets (0, 1, 2): 1 − 1.5 + 1 = 0.5 and (1, 0, 2): 1 − √3.25 + 1 ≈ 0.197.
/// let l = loss.batch(&x, 2, &[4, 4, 8], &mut scratch)?;
/// assert!((l - (0.5 + 2.0 - 3.25f32.sqrt()) / 2.0).abs() < 1e-6);
/// # Ok::<(), contrastive::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchAllTripletLoss {
    /// `m`, finite and ≥ 0.
    pub margin: f32,
    /// Softplus instead of the hinge, with the mean over all valid triplets.
    pub smooth: bool,
    /// L2-normalise the rows first.
    pub normalize: bool,
    /// The kernel backend; `None` runs the best one available.
    pub backend: Option<Backend>,
}

impl BatchAllTripletLoss {
    /// Margin `m`, hinge, no normalisation.
    pub const fn new(margin: f32) -> Self {
        BatchAllTripletLoss {
            margin,
            smooth: false,
            normalize: false,
            backend: None,
        }
    }

    /// PML's `TripletMarginLoss()`: margin 0.05, hinge, normalised rows.
    pub const fn pml() -> Self {
        Self::new(0.05).with_normalize(true)
    }

    /// The same loss with softplus (`smooth_loss=True` in PML) on or off.
    pub const fn with_smooth(mut self, smooth: bool) -> Self {
        self.smooth = smooth;
        self
    }

    /// The same loss with L2-normalised rows, or not.
    pub const fn with_normalize(mut self, normalize: bool) -> Self {
        self.normalize = normalize;
        self
    }

    /// The same loss computed on a named backend.
    pub const fn with_backend(mut self, backend: Backend) -> Self {
        self.backend = Some(backend);
        self
    }

    /// The scratch length [`batch`](Self::batch) and
    /// [`batch_with_grad`](Self::batch_with_grad) need: `2·rows`, plus `rows·dim` for the
    /// normalised copy of the batch when `normalize`.
    pub const fn scratch_len(&self, rows: usize, dim: usize) -> usize {
        let base = rows.saturating_mul(2);
        if self.normalize {
            base.saturating_add(rows.saturating_mul(dim))
        } else {
            base
        }
    }

    /// The loss of a batch `x` of `N` rows of `dim` floats with class labels `classes`.
    ///
    /// # Errors
    /// [`Error::ZeroDimension`], [`Error::NotMultipleOfDim`], [`Error::LengthMismatch`]
    /// (`classes`), [`Error::ScratchTooSmall`], [`Error::InvalidMargin`],
    /// [`Error::BackendUnavailable`].
    pub fn batch(
        &self,
        x: &[f32],
        dim: usize,
        classes: &[u32],
        scratch: &mut [f32],
    ) -> Result<f32, Error> {
        self.run(x, dim, classes, None, scratch)
    }

    /// The loss and its gradient with respect to `x`, written over `grad` (as long as `x`).
    ///
    /// # Errors
    /// As [`batch`](Self::batch), and [`Error::LengthMismatch`] for `grad`.
    pub fn batch_with_grad(
        &self,
        x: &[f32],
        dim: usize,
        classes: &[u32],
        grad: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<f32, Error> {
        check::same_len("grad", x.len(), grad.len())?;
        self.run(x, dim, classes, Some(grad), scratch)
    }

    fn run(
        &self,
        x: &[f32],
        dim: usize,
        classes: &[u32],
        mut grad: Option<&mut [f32]>,
        scratch: &mut [f32],
    ) -> Result<f32, Error> {
        check::margin(self.margin)?;
        let kernels = kernels::select(self.backend)?;
        let rows = x.len().checked_div(dim).unwrap_or(0);
        let rows = check_in_batch(x, dim, classes, scratch.len(), self.scratch_len(rows, dim))?;
        if !all_finite(x) {
            if let Some(g) = grad {
                g.fill(f32::NAN);
            }
            return Ok(f32::NAN);
        }
        if let Some(g) = grad.as_deref_mut() {
            g.fill(0.0);
        }
        let (row, rest) = scratch.split_at_mut(rows);
        let (work, rest) = rest.split_at_mut(rows);
        let xs: &[f32] = if self.normalize {
            let copy = &mut rest[..rows * dim];
            normalize_rows(x, dim, copy);
            copy
        } else {
            x
        };
        let m = f64::from(self.margin);
        let (mut total, mut count) = (0.0f64, 0.0f64);
        for a in 0..rows {
            distance_row(kernels, Distance::Euclidean, a, xs, dim, row);
            let (t, c) = if self.smooth {
                smooth_anchor(a, classes, row, work, m, xs, dim, grad.as_deref_mut())
            } else {
                hinge_anchor(a, classes, row, work, m, xs, dim, grad.as_deref_mut())
            };
            total += t;
            count += c;
        }
        let loss = if count > 0.0 { total / count } else { 0.0 };
        if let Some(g) = grad {
            if count > 0.0 {
                let inv = (1.0 / count) as f32;
                g.iter_mut().for_each(|v| *v *= inv);
            }
            if self.normalize {
                normalize_gradient(x, dim, g);
            }
        }
        Ok(loss as f32)
    }
}

/// One anchor of the hinge loss: returns (sum of violations, number of active triplets)
/// and adds the gradient times that count's reciprocal's inverse (the caller scales).
#[allow(clippy::too_many_arguments)]
fn hinge_anchor(
    a: usize,
    classes: &[u32],
    row: &[f32],
    work: &mut [f32],
    m: f64,
    x: &[f32],
    dim: usize,
    grad: Option<&mut [f32]>,
) -> (f64, f64) {
    let class = classes[a];
    // Positives' distances at the front of `work`, negatives' behind them.
    let mut np = 0;
    for (j, (&d, &c)) in row.iter().zip(classes).enumerate() {
        if j != a && c == class {
            work[np] = d;
            np += 1;
        }
    }
    let mut nn = 0;
    for (&d, &c) in row.iter().zip(classes) {
        if c != class {
            work[np + nn] = d;
            nn += 1;
        }
    }
    if np == 0 || nn == 0 {
        return (0.0, 0.0);
    }
    let (pos, neg) = work[..np + nn].split_at_mut(np);
    pos.sort_unstable_by(f32::total_cmp);
    neg.sort_unstable_by(f32::total_cmp);
    // Active: d_an < d_ap + m, decided in f64 (the same expression everywhere below).
    let threshold = |d_ap: f32| f64::from(d_ap) + m;
    let (mut total, mut count) = (0.0f64, 0usize);
    let (mut k, mut prefix) = (0usize, 0.0f64);
    for &d_ap in pos.iter() {
        let t = threshold(d_ap);
        while k < nn && f64::from(neg[k]) < t {
            prefix += f64::from(neg[k]);
            k += 1;
        }
        total += k as f64 * t - prefix;
        count += k;
    }
    if let Some(g) = grad
        && count > 0
    {
        {
            for (j, (&d, &c)) in row.iter().zip(classes).enumerate() {
                if j == a {
                    continue;
                }
                // How many active triplets the pair (a, j) is in, with the sign of ∂v/∂d.
                let w = if c == class {
                    let t = threshold(d);
                    neg.partition_point(|&n| f64::from(n) < t) as f32
                } else {
                    let dn = f64::from(d);
                    -((np - pos.partition_point(|&p| threshold(p) <= dn)) as f32)
                };
                add_euclidean(g, x, dim, a, j, d, w);
            }
        }
    }
    (total, count as f64)
}

/// One anchor of the smooth loss: returns (sum of softplus, number of valid triplets) and
/// adds the gradient times that count (the caller scales).
#[allow(clippy::too_many_arguments)]
fn smooth_anchor(
    a: usize,
    classes: &[u32],
    row: &[f32],
    coef: &mut [f32],
    m: f64,
    x: &[f32],
    dim: usize,
    grad: Option<&mut [f32]>,
) -> (f64, f64) {
    let class = classes[a];
    let is_pos = |j: usize| j != a && classes[j] == class;
    let is_neg = |j: usize| classes[j] != class;
    let np = (0..row.len()).filter(|&j| is_pos(j)).count();
    let nn = (0..row.len()).filter(|&j| is_neg(j)).count();
    if np == 0 || nn == 0 {
        return (0.0, 0.0);
    }
    coef.fill(0.0);
    let mut total = 0.0f64;
    for p in (0..row.len()).filter(|&j| is_pos(j)) {
        let t = f64::from(row[p]) + m;
        let mut sigma_sum = 0.0f64;
        for n in (0..row.len()).filter(|&j| is_neg(j)) {
            let v = t - f64::from(row[n]);
            total += softplus(v);
            let s = sigmoid(v);
            sigma_sum += s;
            coef[n] -= s as f32;
        }
        coef[p] = sigma_sum as f32;
    }
    if let Some(g) = grad {
        for (j, &w) in coef.iter().enumerate() {
            if j != a {
                add_euclidean(g, x, dim, a, j, row[j], w);
            }
        }
    }
    (total, (np * nn) as f64)
}

/// `ln(1 + eᵛ)` without overflow or cancellation.
fn softplus(v: f64) -> f64 {
    if v > 0.0 {
        v + libm::log1p(libm::exp(-v))
    } else {
        libm::log1p(libm::exp(v))
    }
}

/// `1/(1 + e⁻ᵛ)` without overflow.
fn sigmoid(v: f64) -> f64 {
    if v >= 0.0 {
        1.0 / (1.0 + libm::exp(-v))
    } else {
        let e = libm::exp(v);
        e / (1.0 + e)
    }
}

/// `‖x‖` of a row in f64 (finite for every finite f32 row, never under- or overflowing).
fn norm64(row: &[f32]) -> f64 {
    libm::sqrt(row.iter().map(|&v| f64::from(v) * f64::from(v)).sum())
}

/// `out_i = x_i/‖x_i‖` (a zero row stays zero).
fn normalize_rows(x: &[f32], dim: usize, out: &mut [f32]) {
    for (r, o) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
        let n = norm64(r);
        if n == 0.0 {
            o.fill(0.0);
        } else {
            for (v, &x) in o.iter_mut().zip(r) {
                *v = (f64::from(x) / n) as f32;
            }
        }
    }
}

/// Turns `grad` (with respect to the normalised rows `x̂`) into the gradient with respect
/// to `x`: `(g − x̂·(x̂·g))/‖x‖` per row; 0 for a zero row.
fn normalize_gradient(x: &[f32], dim: usize, grad: &mut [f32]) {
    for (r, g) in x.chunks_exact(dim).zip(grad.chunks_exact_mut(dim)) {
        let n = norm64(r);
        if n == 0.0 {
            g.fill(0.0);
            continue;
        }
        let dot: f64 = r
            .iter()
            .zip(g.iter())
            .map(|(&x, &g)| f64::from(x) / n * f64::from(g))
            .sum();
        for (gv, &x) in g.iter_mut().zip(r) {
            let xh = f64::from(x) / n;
            *gv = ((f64::from(*gv) - xh * dot) / n) as f32;
        }
    }
}
