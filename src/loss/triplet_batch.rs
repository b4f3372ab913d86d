//! In-batch triplet margin losses on one batch with class labels: batch-all
//! (pytorch-metric-learning) and batch-hard (sentence-transformers). Neither builds an
//! N×N (let alone N×N×N) matrix. Batch-hard walks the pair tiles once per unordered pair
//! (the tile engine's symmetric walk) and keeps each anchor's hardest positive and
//! negative as it goes (`4·N` floats of state); batches of fewer than 8 rows compute rows
//! of distances per anchor instead. Batch-all computes the rows of distances of a block
//! of up to 8 anchors (O(N) scratch), sorts the smaller side of each anchor (its
//! positives' or its negatives' distances) and counts the active triplets of the other
//! side against it (a vector comparison for a side of up to 64 rows, else by binary
//! search). With more scratch, batch-all's hinge takes the symmetric path of
//! `triplet_batch_sym.rs` (each unordered pair once).

#![forbid(unsafe_code)]

use super::cosine_embedding::write_cosine_gradient;
use super::direction::Leg;
use super::triplet_batch_sym::{self as sym, two_rows};
use super::triplet_hard;
use crate::kernels::tile::TileKernels;
use crate::kernels::{self, Kernels, select_tile};
use crate::numerics::Cosine;
use crate::numerics::is_positive_normal;
use crate::pairwise;
use crate::{Backend, Distance, Error, check};

/// Anchors whose distance rows are computed together (the tile kernels block several
/// anchors against the same rows); the scratch holds this many rows of `N`.
const ANCHOR_BLOCK: usize = 8;

/// The rows of distances of a block of anchors: `min(ANCHOR_BLOCK, rows)·rows` floats.
const fn block_len(rows: usize) -> usize {
    let b = if rows < ANCHOR_BLOCK {
        rows
    } else {
        ANCHOR_BLOCK
    };
    b.saturating_mul(rows)
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
        return Err(Error::ScratchTooShort {
            needed,
            found: scratch,
        });
    }
    Ok(rows)
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

/// Adds `w·∂D/∂x_i` and `w·∂D/∂x_j` for the cosine distance `D = 1 − cos` of rows `i ≠ j`,
/// from the rows themselves (not their normalised copies, whose components below `2⁻¹⁴⁹`
/// of their row's norm are lost, while the gradient divides by that norm); `tmp` holds
/// `2·dim` floats.
#[allow(clippy::too_many_arguments)]
fn add_cosine(
    kernels: &Kernels,
    grad: &mut [f32],
    x: &[f32],
    dim: usize,
    (i, j): (usize, usize),
    w: f32,
    tmp: &mut [f32],
) {
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
/// Memory: [`scratch_len`](Self::scratch_len) floats (`min(8, N)·N`; for the cosine
/// distance also the normalised rows, `N·dim`, and `N + 2·dim`); work: `N²·dim/2` for the
/// distances (each unordered pair once, both anchors' hardest kept as the tiles pass),
/// `N·dim` for the gradient (two pairs per anchor).
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
            Distance::Euclidean | Distance::SquaredEuclidean => block_len(rows),
            // The normalised rows, a flag per row (zero or not), and two rows of work.
            Distance::Cosine => block_len(rows)
                .saturating_add(rows)
                .saturating_add(rows.saturating_mul(dim))
                .saturating_add(dim.saturating_mul(2)),
        }
    }

    /// The loss of a batch `x` of `N` rows of `dim` floats with class labels `classes`.
    ///
    /// # Errors
    /// [`Error::ZeroDimension`], [`Error::NotMultipleOfDim`], [`Error::LengthMismatch`]
    /// (`classes`), [`Error::ScratchTooShort`], [`Error::InvalidMargin`], [`Error::Empty`]
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
        // The squared Euclidean distance (an option of the in-batch contrastive loss) is not
        // defined for batch-hard triplets: refused, so that no arm below meets it.
        if self.distance == Distance::SquaredEuclidean {
            return Err(Error::InvalidParameter {
                argument: "distance",
                value: f32::NAN,
            });
        }
        let tiles = select_tile(self.backend)?;
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
        let (block, rest) = scratch.split_at_mut(block_len(rows));
        let cosine = self.distance == Distance::Cosine;
        // The cosine distance is `1 − cos = ‖x̂_i − x̂_j‖²/2` on the normalised rows: the
        // tile engine's exact squared distances, so that near-duplicates keep their
        // digits (`1 − cos` from a dot product loses them) and identical rows are at 0.
        let pair_kernels = kernels::select(self.backend)?;
        let (zero, xs, tmp): (&[f32], &[f32], &mut [f32]) = if cosine {
            let (zero, rest) = rest.split_at_mut(rows);
            let (xs, tmp) = rest.split_at_mut(rows * dim);
            normalize_rows(x, dim, xs);
            for (z, r) in zero.iter_mut().zip(x.chunks_exact(dim)) {
                *z = if r.iter().all(|&v| v == 0.0) {
                    1.0
                } else {
                    0.0
                };
            }
            (zero, xs, tmp)
        } else {
            (&[], x, &mut [])
        };
        let m = f64::from(self.margin);
        let w = 1.0 / rows as f32;
        let mut total = 0.0f64;
        // Adds anchor `i`'s term, and with a gradient its two pairs' gradients.
        let mut settle = |i: usize, (v, positive, negative): (f64, Chosen, Chosen)| {
            total += v;
            let Some(g) = grad.as_deref_mut() else {
                return;
            };
            // An anchor without negatives whose row maximum is its hardest positive: the
            // two terms are one pair's, and cancel exactly (as ∞ − ∞ they would not).
            if positive.0 == negative.0 {
                return;
            }
            for (j, d, sign) in [(positive.0, positive.1, w), (negative.0, negative.1, -w)] {
                // Self (no positive, or the row maximum of an anchor without negatives
                // at 0) and pairs at distance 0 have the subgradient 0; a pair with a
                // zero row has a constant distance. A cosine distance at its clamp of 2
                // keeps its gradient: the clamp is the rounding of the normalised rows
                // (the exact distance of two rows is 2 only when they are antipodal, where
                // the gradient from the rows themselves is 0 anyway).
                if j == i || d == 0.0 || (cosine && (zero[i] != 0.0 || zero[j] != 0.0)) {
                    continue;
                }
                if cosine {
                    add_cosine(pair_kernels, g, x, dim, (i, j), sign, tmp);
                } else {
                    add_euclidean(g, x, dim, i, j, d, sign);
                }
            }
        };
        if triplet_hard::fits(rows, block.len()) {
            // Each unordered pair once, both anchors' hardest kept as the walk goes.
            let hardest =
                triplet_hard::walk(tiles, xs, dim, classes, cosine.then_some(zero), block);
            for i in 0..rows {
                let positive = hardest.positive(i).unwrap_or((i, 0.0));
                // Without negatives (one class in the batch), the row maximum with self
                // at 0: the hardest positive when it is above 0 (the lowest index of the
                // largest distance either way), else self.
                let negative = hardest.negative(i).unwrap_or(if positive.1 > 0.0 {
                    positive
                } else {
                    (i, 0.0)
                });
                let v = f64::from(positive.1) - f64::from(negative.1) + m;
                // Inactive (v ≤ 0, or NaN for ∞ − ∞).
                if v > 0.0 {
                    settle(i, (v, positive, negative));
                }
            }
            return Ok((total / rows as f64) as f32);
        }
        // Small batches (fewer than 8 rows, whose scratch holds no state and tiles): rows
        // of distances per block of anchors.
        for a0 in (0..rows).step_by(ANCHOR_BLOCK) {
            let a1 = (a0 + ANCHOR_BLOCK).min(rows);
            let out = &mut block[..(a1 - a0) * rows];
            if cosine {
                pairwise::squared_rows(tiles, &xs[a0 * dim..a1 * dim], xs, dim, out);
            } else {
                pairwise::distance_rows(tiles, &xs[a0 * dim..a1 * dim], xs, dim, out);
            }
            for (i, row) in (a0..a1).zip(out.chunks_exact_mut(rows)) {
                if cosine {
                    for (j, d) in row.iter_mut().enumerate() {
                        *d = if j == i {
                            0.0
                        } else if zero[i] != 0.0 || zero[j] != 0.0 {
                            1.0 // a zero row has cosine 0 with anything
                        } else {
                            (*d * 0.5).min(2.0)
                        };
                    }
                }
                if let Some(found) = hardest(i, row, classes, m) {
                    settle(i, found);
                }
            }
        }
        Ok((total / rows as f64) as f32)
    }
}

/// A chosen row of an anchor's hardest pair: `(index, distance)`.
type Chosen = (usize, f32);

/// The hardest positive and negative of anchor `i` from its row of distances: returns the
/// violation `hp − hn + m` when it is positive, with the chosen `(index, distance)` pairs
/// (the positive is `(i, 0)` when the anchor has none). Ties go to the lowest index.
fn hardest(i: usize, row: &[f32], classes: &[u32], m: f64) -> Option<(f64, Chosen, Chosen)> {
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
    let positive = positive.unwrap_or((i, 0.0));
    let negative = negative.unwrap_or(largest);
    let v = f64::from(positive.1) - f64::from(negative.1) + m;
    // Inactive (v ≤ 0; the rows are finite here, so v is not NaN).
    (v > 0.0).then_some((v, positive, negative))
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
/// Cost: no N×N×N mask or loop. Each anchor computes one row of N distances and sorts the
/// smaller of its positives' and negatives' distances (O(N log N)); each row of the other
/// side counts its active partners in it (a vector comparison against f32 thresholds that
/// decide exactly as the f64 ones, for a sorted side of up to 64 rows; a binary search
/// beyond), which gives the triplets' count, their sum, and the gradient coefficient of
/// each pair (how many active triplets it is in); AvgNonZero's `1/count` is applied at
/// the end. The gradient is dense (every pair in an active triplet has a coefficient):
/// `N²·dim` for the distances and as much again for the gradient. With
/// [`symmetric_scratch_len`](Self::symmetric_scratch_len) scratch the hinge loss halves
/// both (each unordered pair's distance and gradient once, counted for both its anchors
/// against their sorted positive thresholds). The smooth loss has no
/// sorted shortcut (softplus is not piecewise linear): it evaluates softplus per triplet,
/// O(N·|P|·|N|) scalar work (no `dim` factor; at N = 1024 in 64 classes of 16, some 15
/// million triplets, about 250 times the in-batch contrastive loss's time), still O(N)
/// memory.
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
    /// [`batch_with_grad`](Self::batch_with_grad) need: `min(8, rows)·rows` for the rows of
    /// distances of a block of anchors, `rows` more, plus `rows·dim` for the normalised copy
    /// of the batch when `normalize`.
    pub const fn scratch_len(&self, rows: usize, dim: usize) -> usize {
        let base = block_len(rows).saturating_add(rows);
        if self.normalize {
            base.saturating_add(rows.saturating_mul(dim))
        } else {
            base
        }
    }

    /// The scratch length with which the hinge loss (not `smooth`) takes its **symmetric
    /// path** on batches whose largest class has at most `largest_class` rows:
    /// [`scratch_len`](Self::scratch_len) plus about `3·largest_class` floats a row (each
    /// anchor's sorted positive thresholds, a histogram and its class's distances). The
    /// symmetric path computes each unordered pair's distance and gradient once, with the
    /// coefficients of both its anchors (about half the work of the row path at N = 1024);
    /// same loss and gradient up to rounding. For `largest_class` above 65 (more than 64
    /// positives an anchor) the path is not taken and this is `scratch_len`.
    ///
    /// Any scratch of at least [`scratch_len`](Self::scratch_len) is accepted: with less
    /// than this, or a batch with a larger class, the row path runs.
    ///
    /// ```
    /// use contrastive::BatchAllTripletLoss;
    /// let (rows, dim) = (6, 2);
    /// let x = [0.0, 0.0, 0.0, 1.0, 3.0, 0.0, 3.0, 2.0, 1.0, 1.0, 2.0, 2.0];
    /// let classes = [7, 7, 9, 9, 7, 9];
    /// let loss = BatchAllTripletLoss::pml();
    /// // The largest class has 3 rows.
    /// let mut scratch = vec![0.0; loss.symmetric_scratch_len(rows, dim, 3)];
    /// let mut grad = [0.0; 12];
    /// let l = loss.batch_with_grad(&x, dim, &classes, &mut grad, &mut scratch)?;
    /// // The row path, in its own scratch: the same loss up to rounding.
    /// let mut short = vec![0.0; loss.scratch_len(rows, dim)];
    /// let row = loss.batch(&x, dim, &classes, &mut short)?;
    /// assert!((l - row).abs() <= 1e-6 * row.abs());
    /// # Ok::<(), contrastive::Error>(())
    /// ```
    pub const fn symmetric_scratch_len(
        &self,
        rows: usize,
        dim: usize,
        largest_class: usize,
    ) -> usize {
        let base = self.scratch_len(rows, dim);
        let p = largest_class.saturating_sub(1);
        if p > sym::MAX_POSITIVES {
            return base;
        }
        base.saturating_add(sym::state_len(rows, p))
    }

    /// The loss of a batch `x` of `N` rows of `dim` floats with class labels `classes`.
    ///
    /// # Errors
    /// [`Error::ZeroDimension`], [`Error::NotMultipleOfDim`], [`Error::LengthMismatch`]
    /// (`classes`), [`Error::ScratchTooShort`], [`Error::InvalidMargin`],
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
        let tiles = select_tile(self.backend)?;
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
        let (block, rest) = scratch.split_at_mut(block_len(rows));
        let (work, rest) = rest.split_at_mut(rows);
        let (copy, state) = rest.split_at_mut(if self.normalize { rows * dim } else { 0 });
        let xs: &[f32] = if self.normalize {
            normalize_rows(x, dim, copy);
            copy
        } else {
            x
        };
        let m = f64::from(self.margin);
        // No difference of two rows can overflow (every component is below 2¹²⁶ in
        // magnitude): the accumulation kernel is called directly, without the engine's
        // scan of both blocks for non-finite values on every call (a third of the
        // gradient's time at N = 1024, d = 128).
        const BOUND: f32 = 8.507_059e37; // 2¹²⁶
        let direct = xs.iter().fold(true, |ok, v| ok & (v.abs() < BOUND));
        let (mut total, mut count) = (0.0f64, 0.0f64);
        // The symmetric path, where the scratch holds its per-anchor state (see
        // `symmetric_scratch_len`).
        let symmetric =
            !self.smooth && rows < (1 << 24) && state.len() >= sym::state_len(rows, 0) && {
                let largest = sym::sort_by_class(classes, work);
                largest <= sym::MAX_POSITIVES + 1
                    && state.len() >= sym::state_len(rows, largest.saturating_sub(1))
                    && {
                        let batch = sym::Batch {
                            tiles,
                            pair: kernels::select(self.backend)?,
                            xs,
                            dim,
                            classes,
                            m,
                            direct,
                        };
                        (total, count) =
                            sym::hinge(&batch, work, largest, block, state, grad.as_deref_mut());
                        true
                    }
            };
        for a0 in (0..rows).step_by(ANCHOR_BLOCK).filter(|_| !symmetric) {
            let a1 = (a0 + ANCHOR_BLOCK).min(rows);
            let out = &mut block[..(a1 - a0) * rows];
            pairwise::distance_rows(tiles, &xs[a0 * dim..a1 * dim], xs, dim, out);
            for (a, row) in (a0..a1).zip(out.chunks_exact_mut(rows)) {
                let anchor = Anchor {
                    a,
                    classes,
                    m,
                    xs,
                    dim,
                };
                let (t, c) = if self.smooth {
                    anchor.smooth(row, work, grad.as_deref_mut())
                } else {
                    anchor.hinge(row, work, grad.as_deref_mut())
                };
                total += t;
                count += c;
            }
            if let Some(g) = grad.as_deref_mut() {
                scatter_block(tiles, direct, xs, dim, (a0, a1), out, g);
            }
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

/// One anchor of the batch-all loss and what its gradient needs.
struct Anchor<'a> {
    a: usize,
    classes: &'a [u32],
    m: f64,
    /// The rows the distances are of (normalised or not).
    xs: &'a [f32],
    dim: usize,
}

impl Anchor<'_> {
    /// The hinge loss: returns (sum of violations, number of active triplets). With
    /// `grad`, `row` (the anchor's distances) is overwritten with the coefficients of the
    /// gradient times that number (the caller divides and scatters them).
    fn hinge(&self, row: &mut [f32], work: &mut [f32], mut grad: Option<&mut [f32]>) -> (f64, f64) {
        let (a, classes, m) = (self.a, self.classes, self.m);
        let class = classes[a];
        let is_pos = |j: usize| j != a && classes[j] == class;
        let is_neg = |j: usize| classes[j] != class;
        let np = (0..row.len()).filter(|&j| is_pos(j)).count();
        let nn = row.len() - 1 - np;
        row[a] = 0.0; // no pair, no coefficient
        if np == 0 || nn == 0 {
            row.fill(0.0); // no triplet: no coefficient
            return (0.0, 0.0);
        }
        // Active: d_an < d_ap + m, decided in f64 (the same expression everywhere below).
        let threshold = |d_ap: f32| f64::from(d_ap) + m;
        // Only the smaller side is sorted (with 64 classes of 16 rows, 15 positives
        // against 1008 negatives); each row of the other side finds its active partners
        // by binary search, and a histogram over the sorted positions gives the sorted
        // side's counts. `2·min(np, nn) + 1 ≤ N` floats fit in `work` (and the f32
        // thresholds of a short side, padded to a multiple of 8, where they fit).
        let positives_sorted = np <= nn;
        let s = np.min(nn);
        let (sorted, rest) = work.split_at_mut(s);
        let sorted_side = |j: usize| {
            if positives_sorted {
                is_pos(j)
            } else {
                is_neg(j)
            }
        };
        for (slot, j) in sorted
            .iter_mut()
            .zip((0..row.len()).filter(|&j| sorted_side(j)))
        {
            *slot = row[j];
        }
        sorted.sort_unstable_by(f32::total_cmp);
        let (counts, tail) = rest.split_at_mut(s + 1);
        counts.fill(0.0);
        let (mut total, mut count) = (0.0f64, 0usize);
        // A short sorted side (a class of a few rows among many) is counted by a straight
        // vector comparison against f32 thresholds rounded up from the f64 ones (for f32
        // `d` and f64 `t`, `d < t` exactly when `d < t↑`), not by a binary search.
        // Positives' thresholds padded to whole blocks of 8 with −∞ (no `d` is below it),
        // so that each count is straight-line code.
        let padded = s.div_ceil(8) * 8;
        let linear = s <= LINEAR_SIDE && tail.len() >= padded;
        let thresholds = if linear {
            let t = &mut tail[..padded];
            if positives_sorted {
                for (t, &p) in t.iter_mut().zip(sorted.iter()) {
                    *t = round_up(threshold(p));
                }
                t[s..].fill(f32::NEG_INFINITY);
            }
            &*t
        } else {
            &[]
        };
        let blocks = thresholds.as_chunks::<8>().0;
        // The other side: each row's number of active triplets, its gradient coefficient
        // (how many active triplets the pair (a, j) is in, with the sign of ∂v/∂d)
        // written over its distance at once.
        for j in (0..row.len()).filter(|&j| j != a && !sorted_side(j)) {
            let d = row[j];
            let w = if positives_sorted {
                // A negative with k active positives activates the top k sorted positions.
                let dn = f64::from(d);
                let k = if linear {
                    let below = |b: &[f32; 8]| b.iter().fold(0u32, |k, &t| k + u32::from(d < t));
                    blocks.iter().fold(0u32, |k, b| k + below(b)) as usize
                } else {
                    s - sorted.partition_point(|&p| threshold(p) <= dn)
                };
                total -= k as f64 * dn;
                counts[s - k] += 1.0;
                count += k;
                -(k as f32)
            } else {
                // A positive with k active negatives activates the first k sorted positions.
                let t = threshold(d);
                let k = if linear {
                    let t = round_up(t);
                    sorted.iter().fold(0u32, |k, &n| k + u32::from(n < t)) as usize
                } else {
                    sorted.partition_point(|&n| f64::from(n) < t)
                };
                total += k as f64 * t;
                counts[k] += 1.0;
                count += k;
                k as f32
            };
            if let Some(g) = grad.as_deref_mut() {
                row[j] = self.coefficient(w, d, j, g);
            }
        }
        // The sorted side's counts, by position: a prefix (positives) or suffix (negatives)
        // sum of the histogram, in place (each entry is read before it is replaced).
        if positives_sorted {
            let mut run = 0.0f32;
            for (c, &d) in counts.iter_mut().zip(sorted.iter()) {
                run += *c;
                *c = run;
                total += f64::from(run) * threshold(d);
            }
        } else {
            let (mut run, mut carried) = (0.0f32, counts[s]);
            for i in (0..s).rev() {
                run += carried;
                carried = counts[i];
                counts[i] = run;
                total -= f64::from(run) * f64::from(sorted[i]);
            }
        }
        if let Some(g) = grad {
            // Equal distances share their count, so the first of them answers.
            for j in (0..row.len()).filter(|&j| sorted_side(j)) {
                let d = row[j];
                let k = counts[sorted.partition_point(|&v| v < d)];
                let w = if positives_sorted { k } else { -k };
                row[j] = self.coefficient(w, d, j, g);
            }
        }
        // The sum of violations is non-negative; rounding in the difference of sums
        // must not make it otherwise.
        (total.max(0.0), count as f64)
    }

    /// The smooth loss: returns (sum of softplus, number of valid triplets). With `grad`,
    /// `row` is overwritten with the coefficients of the gradient times that number (the
    /// caller divides and scatters them); `coef` is work space.
    fn smooth(&self, row: &mut [f32], coef: &mut [f32], grad: Option<&mut [f32]>) -> (f64, f64) {
        let (a, classes, m) = (self.a, self.classes, self.m);
        let class = classes[a];
        let is_pos = |j: usize| j != a && classes[j] == class;
        let is_neg = |j: usize| classes[j] != class;
        let np = (0..row.len()).filter(|&j| is_pos(j)).count();
        let nn = (0..row.len()).filter(|&j| is_neg(j)).count();
        if np == 0 || nn == 0 {
            row.fill(0.0); // no triplet: no coefficient
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
            for (j, (c, d)) in coef.iter().zip(row.iter_mut()).enumerate() {
                *d = if j == a {
                    0.0
                } else {
                    self.coefficient(*c, *d, j, g)
                };
            }
        }
        (total, (np * nn) as f64)
    }

    /// The coefficient `w/D` of the pair (a, j) for the direct-form accumulation; where it
    /// would overflow or `D` lost its digits (tiny or huge rows), the pair's gradient is
    /// added right away on a rescaled difference and the coefficient is 0.
    #[inline(always)]
    fn coefficient(&self, w: f32, d: f32, j: usize, grad: &mut [f32]) -> f32 {
        if w == 0.0 || d == 0.0 {
            return 0.0;
        }
        let c = w / d;
        if is_positive_normal(d * d) && c.is_finite() {
            return c;
        }
        self.add_rescaled(w, j, grad);
        0.0
    }

    /// Adds the pair (a, j)'s gradient `w·∂D` on a rescaled difference.
    #[cold]
    #[inline(never)]
    fn add_rescaled(&self, w: f32, j: usize, grad: &mut [f32]) {
        let dim = self.dim;
        let (xa, xj) = (
            &self.xs[self.a * dim..(self.a + 1) * dim],
            &self.xs[j * dim..(j + 1) * dim],
        );
        let (ga, gj) = two_rows(grad, dim, self.a, j);
        pairwise::add_direction(xa, xj, w, ga, gj);
    }
}

/// `grad_i += Σ_j c_ij·(x_i − x_j)` and `grad_j −= c_ij·(x_i − x_j)` for the anchors
/// `a0..a1` (coefficients `c`, one row of `rows` per anchor, `c_ii = 0`), in direct form:
/// the tile engine's accumulation kernel takes the block of anchors against the rows
/// before it and after it (each gradient row of those read and written once per block,
/// not once per anchor); the few pairs inside the block go one by one.
#[allow(clippy::too_many_arguments)]
fn scatter_block(
    tiles: &TileKernels,
    direct: bool,
    xs: &[f32],
    dim: usize,
    (a0, a1): (usize, usize),
    c: &[f32],
    grad: &mut [f32],
) {
    let rows = xs.len() / dim;
    let xa = &xs[a0 * dim..a1 * dim];
    let (before, rest) = grad.split_at_mut(a0 * dim);
    let (ga, after) = rest.split_at_mut((a1 - a0) * dim);
    // Coefficients are finite (see `Anchor::coefficient`); with `direct`, so is every
    // difference.
    let accumulate = |y: &[f32], c: &[f32], ga: &mut [f32], gy: &mut [f32]| {
        if direct {
            (tiles.accumulate)(xa, y, dim, c, rows, ga, gy);
        } else {
            pairwise::accumulate_block(tiles, xa, y, dim, c, rows, ga, gy);
        }
    };
    if a0 > 0 {
        accumulate(&xs[..a0 * dim], c, ga, before);
    }
    if a1 < rows {
        accumulate(&xs[a1 * dim..], &c[a1..], ga, after);
    }
    for i in 0..a1 - a0 {
        for j in 0..a1 - a0 {
            let w = c[i * rows + a0 + j];
            if i == j || w == 0.0 {
                continue;
            }
            let (xi, xj) = (&xa[i * dim..(i + 1) * dim], &xa[j * dim..(j + 1) * dim]);
            let (gi, gj) = two_rows(ga, dim, i, j);
            for (((g_i, g_j), &a), &b) in gi.iter_mut().zip(gj.iter_mut()).zip(xi).zip(xj) {
                let u = (a - b) * w;
                *g_i += u;
                *g_j -= u;
            }
        }
    }
}

/// The longest sorted side of a batch-all anchor counted by a linear scan instead of a
/// binary search per row of the other side.
const LINEAR_SIDE: usize = 64;

/// The least f32 not below `t` (so that for every f32 `d`, `d < t` exactly when
/// `d < round_up(t)`); ∞ above the f32 range.
fn round_up(t: f64) -> f32 {
    let f = t as f32;
    if f64::from(f) < t { f.next_up() } else { f }
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
    libm::sqrt(sum4(row, row, |a, b| a * b))
}

/// `Σ f(a_k, b_k)` in f64, in four interleaved partial sums (so that it vectorises
/// instead of waiting on one add chain; the f64 sum's rounding is far below f32's).
#[inline(always)]
fn sum4(a: &[f32], b: &[f32], f: impl Fn(f64, f64) -> f64) -> f64 {
    let (ac, ar) = a.as_chunks::<4>();
    let (bc, br) = b.as_chunks::<4>();
    let mut s = [0.0f64; 4];
    for (a, b) in ac.iter().zip(bc) {
        for l in 0..4 {
            s[l] += f(f64::from(a[l]), f64::from(b[l]));
        }
    }
    let mut t = (s[0] + s[1]) + (s[2] + s[3]);
    for (&a, &b) in ar.iter().zip(br) {
        t += f(f64::from(a), f64::from(b));
    }
    t
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
        let dot = sum4(r, g, |x, g| x / n * g);
        for (gv, &x) in g.iter_mut().zip(r) {
            let xh = f64::from(x) / n;
            *gv = ((f64::from(*gv) - xh * dot) / n) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::round_up;

    /// `d < t` (f64) and `d < round_up(t)` (f32) agree for f32 `d` at and around `t`.
    /// Plain arithmetic: it runs natively, not under Miri (6 s a pass there).
    #[test]
    #[cfg_attr(miri, ignore = "no unsafe code: runs natively")]
    fn round_up_keeps_every_f32_comparison() {
        let mut state = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let fixed = [0.0, 1.0, 0.1, f64::from(f32::MAX), 1e39, f64::INFINITY];
        let random = (0..2000).map(|_| {
            let d = f32::from_bits((next() >> 40) as u32 + 0x3000_0000);
            let m = f64::from(f32::from_bits((next() >> 41) as u32 + 0x3000_0000));
            f64::from(d) + m
        });
        for t in fixed.into_iter().chain(random) {
            let up = round_up(t);
            assert!(f64::from(up) >= t, "{t:e}");
            let near = t as f32;
            for d in [near.next_down(), near, near.next_up(), up, up.next_down()] {
                assert_eq!(d < up, f64::from(d) < t, "t = {t:e}, d = {d:e}");
            }
        }
    }
}
