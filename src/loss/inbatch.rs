//! In-batch and cross-batch contrastive losses: every pair of a batch from class labels,
//! on the tile engine ([`crate::pairwise`]), with no N×N matrix.

#![forbid(unsafe_code)]

use super::contrastive::Mining;
use super::contrastive::{ContrastiveLoss, Distance, Reduction};
use super::margins::{Margins, NonZeroSums, Thresholds, chain_normalization, unit_scale};
use crate::kernels::{self, Kernels, tile::TileKernels};
use crate::pairwise::{self, RowScale, Tile};
use crate::{Error, check};
use wide::f32x8;

#[cfg(feature = "rayon")]
pub(crate) mod par;

/// Which pairs a call visits.
#[derive(Clone, Copy)]
enum Pairs<'a> {
    /// Every ordered pair `(i, j)`, `i ≠ j`, of one batch (walked once per unordered pair).
    Within { x: &'a [f32], classes: &'a [u32] },
    /// Every `(i, j)` of `x` against `y`.
    Across {
        x: &'a [f32],
        y: &'a [f32],
        x_classes: &'a [u32],
        y_classes: &'a [u32],
    },
}

impl ContrastiveLoss {
    /// The scratch (in `f32`s) that [`in_batch`](Self::in_batch) needs for a batch of
    /// `rows` rows of `dim`, and [`cross_batch`](Self::cross_batch) for `rows = N + M`:
    /// `O(rows + tile)`, never `O(rows²)`. At most 8,192 floats (32 KiB) for the tiles,
    /// plus, when the rows are normalised (`normalize` or the cosine distance), 2 per row
    /// and two packed blocks of up to 64 rows. Any longer scratch works too.
    ///
    /// ```
    /// use contrastive::ContrastiveLoss;
    /// let loss = ContrastiveLoss::new(1.0);
    /// assert!(loss.scratch_len(65_536, 128) <= 8_192);
    /// assert!(ContrastiveLoss::pml().scratch_len(65_536, 128) < 1 << 20); // under 4 MiB
    /// ```
    pub fn scratch_len(&self, rows: usize, dim: usize) -> usize {
        if self.scaled_rows() {
            pairwise::scaled_scratch_len(rows, dim).saturating_add(rows.saturating_mul(2))
        } else {
            pairwise::scratch_len(rows)
        }
    }

    /// The least scratch the in-batch calls accept for `rows` rows of `dim` (as in
    /// [`scratch_len`](Self::scratch_len)): tiles of 4 × 4 pairs, for memory-starved
    /// targets. Any length from this one up works; the tiles grow with it (up to 64 × 64
    /// at [`scratch_len`](Self::scratch_len)), and so does the speed.
    ///
    /// ```
    /// use contrastive::ContrastiveLoss;
    /// // 32 embeddings of 16 floats on a microcontroller: 128 bytes of scratch.
    /// assert_eq!(ContrastiveLoss::new(1.0).min_scratch_len(32, 16) * 4, 128);
    /// ```
    pub fn min_scratch_len(&self, rows: usize, dim: usize) -> usize {
        if self.scaled_rows() {
            pairwise::scaled_scratch_len(1, dim).saturating_add(rows.saturating_mul(2))
        } else {
            pairwise::scratch_len(1)
        }
    }

    /// The loss over every ordered pair `(i, j)`, `i ≠ j`, of the batch `x` (N rows of
    /// `dim`): a pair is similar (`y = 1`) when `classes[i] == classes[j]`, dissimilar
    /// otherwise (pytorch-metric-learning's pairs from labels). `Mean` divides by
    /// `N·(N − 1)`.
    ///
    /// Memory: `scratch` holds [`scratch_len(N, dim)`](Self::scratch_len) floats for
    /// full speed, at least [`min_scratch_len(N, dim)`](Self::min_scratch_len); no N×N
    /// matrix is formed. Each unordered pair's distance is computed once
    /// (direct differences, exact at any magnitude as the pair API).
    ///
    /// Empty cases: with fewer than two rows there is no pair: `Mean` is an error, `Sum`
    /// and `AvgNonZero` give 0. No similar (or no dissimilar) pair: that term is 0 (and
    /// its `AvgNonZero` mean is 0).
    ///
    /// ```
    /// use contrastive::ContrastiveLoss;
    /// let loss = ContrastiveLoss::pml();
    /// let x = [1.0, 0.0, 0.9, 0.1, 0.0, 1.0]; // three embeddings of dim 2
    /// let classes = [7, 7, 3];
    /// let mut scratch = vec![0.0; loss.scratch_len(3, 2)];
    /// let l = loss.in_batch(&x, 2, &classes, &mut scratch)?;
    /// assert!(l > 0.0);
    /// # Ok::<(), contrastive::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ZeroDimension`], [`Error::NotMultipleOfDim`] (`x`),
    /// [`Error::LengthMismatch`] (`classes` is not one per row),
    /// [`Error::ScratchTooShort`], [`Error::InvalidMargin`], [`Error::InvalidWeight`],
    /// [`Error::BackendUnavailable`], and [`Error::Empty`] for `Mean` over fewer than two
    /// rows.
    pub fn in_batch(
        &self,
        x: &[f32],
        dim: usize,
        classes: &[u32],
        scratch: &mut [f32],
    ) -> Result<f32, Error> {
        self.run(
            Pairs::Within { x, classes },
            dim,
            None,
            Exec::Serial(scratch),
        )
    }

    /// [`in_batch`](Self::in_batch) and its gradient with respect to `x`, written over
    /// `grad` (as long as `x`).
    ///
    /// # Errors
    /// As [`in_batch`](Self::in_batch), and [`Error::LengthMismatch`] for `grad`.
    pub fn in_batch_with_grad(
        &self,
        x: &[f32],
        dim: usize,
        classes: &[u32],
        grad: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<f32, Error> {
        self.run(
            Pairs::Within { x, classes },
            dim,
            Some((grad, None)),
            Exec::Serial(scratch),
        )
    }

    /// The loss over every pair `(i, j)` of `x` (N rows) against `y` (M rows), similar
    /// when `x_classes[i] == y_classes[j]` (queries against references; two views of a
    /// batch). `Mean` divides by `N·M`. `scratch` holds at least
    /// [`scratch_len(N + M, dim)`](Self::scratch_len) floats.
    ///
    /// Empty cases: with no pair (`N·M = 0`) `Mean` is an error, `Sum` and `AvgNonZero`
    /// give 0.
    ///
    /// # Errors
    /// As [`in_batch`](Self::in_batch), for both `x` and `y` (and `y_classes`).
    pub fn cross_batch(
        &self,
        x: &[f32],
        y: &[f32],
        dim: usize,
        x_classes: &[u32],
        y_classes: &[u32],
        scratch: &mut [f32],
    ) -> Result<f32, Error> {
        let pairs = Pairs::Across {
            x,
            y,
            x_classes,
            y_classes,
        };
        self.run(pairs, dim, None, Exec::Serial(scratch))
    }

    /// [`cross_batch`](Self::cross_batch) and its gradients with respect to `x` and `y`,
    /// written over `grad_x` and `grad_y`.
    ///
    /// # Errors
    /// As [`cross_batch`](Self::cross_batch), and [`Error::LengthMismatch`] for the
    /// gradients.
    #[allow(clippy::too_many_arguments)]
    pub fn cross_batch_with_grad(
        &self,
        x: &[f32],
        y: &[f32],
        dim: usize,
        x_classes: &[u32],
        y_classes: &[u32],
        grad_x: &mut [f32],
        grad_y: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<f32, Error> {
        let pairs = Pairs::Across {
            x,
            y,
            x_classes,
            y_classes,
        };
        self.run(
            pairs,
            dim,
            Some((grad_x, Some(grad_y))),
            Exec::Serial(scratch),
        )
    }

    /// Whether the rows are normalised before the distance.
    fn scaled_rows(&self) -> bool {
        self.normalize || self.distance == Distance::Cosine
    }

    fn run(
        &self,
        pairs: Pairs,
        dim: usize,
        mut grads: Option<(&mut [f32], Option<&mut [f32]>)>,
        exec: Exec,
    ) -> Result<f32, Error> {
        let kernels = self.kernels()?;
        let tiles = kernels::select_tile(self.backend)?;
        if dim == 0 {
            return Err(Error::ZeroDimension);
        }
        let (x, y) = match pairs {
            Pairs::Within { x, .. } => (x, x),
            Pairs::Across { x, y, .. } => (x, y),
        };
        let rows_of = |argument: &'static str, v: &[f32]| {
            if v.len().is_multiple_of(dim) {
                Ok(v.len() / dim)
            } else {
                Err(Error::NotMultipleOfDim {
                    argument,
                    len: v.len(),
                    dim,
                })
            }
        };
        let n = rows_of("x", x)?;
        let (m, pair_count, rows) = match pairs {
            Pairs::Within { classes, .. } => {
                check::same_len("classes", n, classes.len())?;
                (n, n as u64 * n.saturating_sub(1) as u64, n)
            }
            Pairs::Across {
                x_classes,
                y_classes,
                ..
            } => {
                let m = rows_of("y", y)?;
                check::same_len("x_classes", n, x_classes.len())?;
                check::same_len("y_classes", m, y_classes.len())?;
                (m, n as u64 * m as u64, n + m)
            }
        };
        if let Some((gx, gy)) = &grads {
            let name = if gy.is_some() { "grad_x" } else { "grad" };
            check::same_len(name, x.len(), gx.len())?;
            if let Some(gy) = gy {
                check::same_len("grad_y", y.len(), gy.len())?;
            }
        }
        match &exec {
            Exec::Serial(scratch) => {
                let needed = self.min_scratch_len(rows, dim);
                if scratch.len() < needed {
                    return Err(Error::ScratchTooShort {
                        needed,
                        found: scratch.len(),
                    });
                }
            }
            // Scratch of its own.
            #[cfg(feature = "rayon")]
            Exec::Parallel => {}
        }
        if let Some((gx, gy)) = &mut grads {
            gx.fill(0.0);
            if let Some(gy) = gy {
                gy.fill(0.0);
            }
        }
        if pair_count == 0 {
            return match self.reduction {
                Reduction::Mean => Err(Error::Empty { argument: "x" }),
                _ => Ok(0.0),
            };
        }
        let mean = (1.0 / pair_count as f64) as f32;
        let epilogue = Epilogue {
            margins: self.margins(),
            measure: self.distance,
            pairs,
            factors: match self.reduction {
                Reduction::Mean => (mean, mean),
                _ => (1.0, 1.0),
            },
            mining: None,
            collect: false,
        };
        let walk = Walk {
            tiles,
            kernels,
            dim,
            n,
            m,
            scaled: self.scaled_rows(),
        };
        // A parallel call on a small batch runs the serial walk (no threads), on its own
        // scratch.
        #[cfg(feature = "rayon")]
        let mut owned = alloc::vec::Vec::new();
        #[cfg(feature = "rayon")]
        let exec = match exec {
            Exec::Parallel if !par::worth_splitting(pair_count, dim, m) => {
                owned.resize(self.scratch_len(rows, dim), 0.0);
                Exec::Serial(&mut owned)
            }
            exec => exec,
        };
        let mut exec = exec;
        let epilogue = if self.mining == Mining::None {
            epilogue
        } else {
            // A first pass for the thresholds over every pair's distance.
            let first = Epilogue {
                collect: true,
                ..epilogue
            };
            let th = walk.go(&first, None, &mut exec).thresholds;
            Epilogue {
                mining: Some(th),
                ..epilogue
            }
        };
        let sums = if self.reduction == Reduction::AvgNonZero && grads.is_some() {
            // The 1/count factors are known only after every pair: a forward pass for
            // the counts, then the pass with gradients (the same distances, so the same
            // selections).
            let sums = walk.go(&epilogue, None, &mut exec);
            let factors = sums.factors();
            walk.go(
                &Epilogue {
                    factors,
                    ..epilogue
                },
                grads,
                &mut exec,
            );
            sums
        } else {
            walk.go(&epilogue, grads, &mut exec)
        };
        Ok(match self.reduction {
            Reduction::Mean => (sums.total / pair_count as f64) as f32,
            Reduction::Sum => sums.total as f32,
            Reduction::AvgNonZero => sums.avg_nonzero(),
        })
    }
}

/// Lane-wise correctly rounded square roots: the vector instruction where there is one,
/// else the crate's scalar root per lane (`wide`'s software fallback is not exact).
#[inline(always)]
fn sqrt8(v: f32x8) -> f32x8 {
    #[cfg(any(
        target_arch = "x86_64",
        all(target_arch = "aarch64", target_feature = "neon"),
        all(target_family = "wasm", target_feature = "simd128")
    ))]
    {
        v.sqrt()
    }
    #[cfg(not(any(
        target_arch = "x86_64",
        all(target_arch = "aarch64", target_feature = "neon"),
        all(target_family = "wasm", target_feature = "simd128")
    )))]
    {
        f32x8::from(v.to_array().map(crate::numerics::sqrt))
    }
}

/// The distances of [`Epilogue::row_sums`], as const parameters.
const EUCLIDEAN: u8 = 0;
const SQUARED: u8 = 1;
const COSINE: u8 = 2;

/// What a walk needs besides the loss.
struct Walk<'k> {
    tiles: &'k TileKernels,
    kernels: &'k Kernels,
    dim: usize,
    n: usize,
    m: usize,
    scaled: bool,
}

/// The loss applied to each tile.
#[derive(Clone, Copy)]
struct Epilogue<'a> {
    margins: Margins,
    measure: Distance,
    pairs: Pairs<'a>,
    /// Gradient factors of the positive and the negative terms (the reduction's).
    factors: (f32, f32),
    /// Hard-pair mining: the thresholds, once known (only hard pairs pay).
    mining: Option<Thresholds>,
    /// Hard-pair mining's first pass: collect the thresholds, nothing else.
    collect: bool,
}

/// How a call runs: serially on the caller's scratch, or split across rayon's threads.
enum Exec<'s> {
    Serial(&'s mut [f32]),
    #[cfg(feature = "rayon")]
    Parallel,
}

impl Walk<'_> {
    /// One walk over the pairs, as `exec` says.
    fn go(
        &self,
        e: &Epilogue,
        grads: Option<(&mut [f32], Option<&mut [f32]>)>,
        exec: &mut Exec,
    ) -> NonZeroSums {
        match exec {
            Exec::Serial(scratch) => self.run(e, grads, scratch),
            #[cfg(feature = "rayon")]
            Exec::Parallel => self.run_par(e, grads),
        }
    }

    /// One walk over the pairs: the loss's sums, and with `grads` the gradients added to
    /// them (zeroed by the caller).
    fn run(
        &self,
        e: &Epilogue,
        grads: Option<(&mut [f32], Option<&mut [f32]>)>,
        scratch: &mut [f32],
    ) -> NonZeroSums {
        let dim = self.dim;
        let mut sums = NonZeroSums::default();
        let rows = match e.pairs {
            Pairs::Within { .. } => self.n,
            Pairs::Across { .. } => self.n + self.m,
        };
        let (scales, rest) = if self.scaled {
            let (s, rest) = scratch.split_at_mut(2 * rows);
            (s.as_chunks_mut::<2>().0, rest)
        } else {
            (&mut [][..], scratch)
        };
        match e.pairs {
            Pairs::Within { x, classes } => {
                let grad = grads.map(|(g, _)| g);
                if self.scaled {
                    for (s, row) in scales.iter_mut().zip(x.chunks_exact(dim)) {
                        *s = unit_scale(self.kernels, row);
                    }
                    let scales: &[RowScale] = scales;
                    let mut grad = grad;
                    pairwise::symmetric_scaled(
                        self.tiles,
                        (x, scales),
                        dim,
                        rest,
                        grad.as_deref_mut(),
                        |t| e.tile(t, classes, classes, scales, scales, &mut sums),
                    );
                    if let Some(g) = grad {
                        chain_normalization(x, scales, dim, g);
                    }
                } else {
                    pairwise::symmetric(self.tiles, x, dim, rest, grad, |t| {
                        e.tile(t, classes, classes, &[], &[], &mut sums)
                    });
                }
            }
            Pairs::Across {
                x,
                y,
                x_classes,
                y_classes,
            } => {
                let grads = grads.and_then(|(gx, gy)| gy.map(|gy| (gx, gy)));
                if self.scaled {
                    let all = x.chunks_exact(dim).chain(y.chunks_exact(dim));
                    for (s, row) in scales.iter_mut().zip(all) {
                        *s = unit_scale(self.kernels, row);
                    }
                    let (sx, sy): (&[RowScale], &[RowScale]) = scales.split_at(self.n);
                    let mut grads = grads;
                    pairwise::cross_scaled(
                        self.tiles,
                        (x, sx),
                        (y, sy),
                        dim,
                        rest,
                        grads.as_mut().map(|(gx, gy)| (&mut **gx, &mut **gy)),
                        |t| e.tile(t, x_classes, y_classes, sx, sy, &mut sums),
                    );
                    if let Some((gx, gy)) = grads {
                        chain_normalization(x, sx, dim, gx);
                        chain_normalization(y, sy, dim, gy);
                    }
                } else {
                    pairwise::cross(self.tiles, x, y, dim, rest, grads, |t| {
                        e.tile(t, x_classes, y_classes, &[], &[], &mut sums)
                    });
                }
            }
        }
        sums
    }
}

impl Epilogue<'_> {
    /// The losses of a tile's pairs into `sums`, their gradient coefficients into the
    /// tile. A symmetric walk's pair stands for both orders: counted twice, its
    /// coefficient doubled.
    fn tile(
        &self,
        t: &mut Tile,
        row_classes: &[u32],
        col_classes: &[u32],
        row_scales: &[RowScale],
        col_scales: &[RowScale],
        sums: &mut NonZeroSums,
    ) {
        let times: u64 = match self.pairs {
            Pairs::Within { .. } => 2,
            Pairs::Across { .. } => 1,
        };
        let gradient = t.has_gradient();
        let c0 = t.cols.start;
        let mut block = NonZeroSums::default();
        let cosine = self.measure == Distance::Cosine;
        // Whether a cosine tile has a zero row among its columns (then every row takes
        // the careful loop).
        let zero_cols = cosine && col_scales[t.cols.clone()].iter().any(|s| s[0] == 0.0);
        for i in t.rows.clone() {
            let class = row_classes[i];
            let zero_row = cosine && row_scales[i][0] == 0.0;
            let pairs = t.pair_columns(i);
            if !(zero_row || zero_cols || self.collect || self.mining.is_some()) {
                let (squared, coefficients) = t.row(i);
                let (a, b) = (pairs.start - c0, pairs.end - c0);
                let classes = &col_classes[pairs.clone()];
                if self.fast_row(
                    (&squared[a..b], &mut coefficients[a..b], classes),
                    class,
                    times,
                    gradient,
                    &mut block,
                ) {
                    continue;
                }
            }
            for j in pairs {
                let positive = class == col_classes[j];
                let d = match self.measure {
                    Distance::Euclidean => t.distance(i, j),
                    Distance::SquaredEuclidean => t.squared(i, j),
                    Distance::Cosine => {
                        if row_scales[i][0].is_nan() || col_scales[j][0].is_nan() {
                            // NaN in, NaN out, before the zero-row rule (as the pair API).
                            f32::NAN
                        } else if zero_row || col_scales[j][0] == 0.0 {
                            // A zero row has cosine 0 with anything, and a constant one.
                            1.0
                        } else {
                            // ½‖x̂ − ŷ‖² = 1 − cos, from the exact difference of the
                            // unit rows (exactly 0 for identical rows), clamped to [0, 2].
                            let d = 0.5 * t.squared(i, j);
                            // Not `min`: it would turn a NaN into 2.
                            if d > 2.0 { 2.0 } else { d }
                        }
                    }
                };
                if self.collect {
                    block.thresholds.observe(d, positive, times);
                    continue;
                }
                if let Some(th) = &self.mining
                    && !th.select(d, positive)
                {
                    continue;
                }
                let ((loss, slope), factor) = if positive {
                    (self.margins.positive(d), self.factors.0)
                } else {
                    (self.margins.negative(d), self.factors.1)
                };
                if positive {
                    block.add_times(loss, 0.0, times);
                } else {
                    block.add_times(0.0, loss, times);
                }
                if !gradient || slope == 0.0 {
                    continue;
                }
                let g = slope * factor * times as f32;
                let c = match self.measure {
                    Distance::Euclidean => {
                        if d == 0.0 {
                            // The subgradient 0 at zero distance.
                            continue;
                        }
                        let c = g / d;
                        if !(c.is_normal() && d.is_normal() && d.is_finite()) {
                            t.add_direction(i, j, g);
                            continue;
                        }
                        c
                    }
                    Distance::SquaredEuclidean => 2.0 * g,
                    Distance::Cosine => {
                        if zero_row || col_scales[j][0] == 0.0 {
                            continue;
                        }
                        g
                    }
                };
                t.row(i).1[j - c0] = c;
            }
        }
        sums.merge(&block);
    }

    /// The common case of a row, in straight-line code over chunks of eight pairs that
    /// compiles to vector instructions: every squared distance positive, normal and
    /// finite (so no rescaling, no NaN, no zero distance). Returns false, having changed
    /// nothing, when the row is not such a row or a coefficient would not be normal; the
    /// caller then takes the careful loop.
    #[inline]
    fn fast_row(
        &self,
        (squared, coefficients, classes): (&[f32], &mut [f32], &[u32]),
        class: u32,
        times: u64,
        gradient: bool,
        block: &mut NonZeroSums,
    ) -> bool {
        if !crate::numerics::all_positive_normal(squared) {
            return false;
        }
        // One straight-line loop per combination, so that no branch on the options is
        // left inside it.
        let row = (squared, &mut *coefficients, classes);
        let squared_hinge = self.margins.squared;
        // The four hinge × gradient instances of one distance `M`.
        macro_rules! row_sums {
            ($m:expr) => {
                match (squared_hinge, gradient) {
                    (true, true) => self.row_sums::<{ $m }, true, true>(row, class, times),
                    (true, false) => self.row_sums::<{ $m }, true, false>(row, class, times),
                    (false, true) => self.row_sums::<{ $m }, false, true>(row, class, times),
                    (false, false) => self.row_sums::<{ $m }, false, false>(row, class, times),
                }
            };
        }
        let sums = match self.measure {
            Distance::Euclidean => row_sums!(EUCLIDEAN),
            Distance::SquaredEuclidean => row_sums!(SQUARED),
            _ => row_sums!(COSINE),
        };
        let Some((pos, neg, n_pos, n_neg)) = sums else {
            // A coefficient beyond f32 (extreme weights over a small distance): the
            // careful loop adds those pairs' directions on rescaled differences.
            coefficients.fill(0.0);
            return false;
        };
        let t = times as f64;
        block.positive += t * pos;
        block.negative += t * neg;
        block.total += t * (pos + neg);
        block.positive_count += times * n_pos;
        block.negative_count += times * n_neg;
        true
    }

    /// The sums (positive and negative losses, their non-zero counts) of a row whose
    /// squared distances are all normal, and with `GRAD` its coefficients; `None` if a
    /// coefficient is not normal (or 0). `M` is the distance ([`EUCLIDEAN`], [`SQUARED`],
    /// [`COSINE`]), `SQ` the squared hinge.
    #[inline]
    fn row_sums<const M: u8, const SQ: bool, const GRAD: bool>(
        &self,
        (squared, coefficients, classes): (&[f32], &mut [f32], &[u32]),
        class: u32,
        times: u64,
    ) -> Option<(f64, f64, u64, u64)> {
        let m = self.margins;
        let t = times as f32;
        let (fp, fn_) = (self.factors.0 * t, self.factors.1 * t);
        let (mut pos, mut neg) = (0.0f64, 0.0f64);
        let (mut n_pos, mut n_neg) = (0u64, 0u64);
        let mut usable = true;
        // Eight pairs at a time on fixed-size arrays, every option a select: straight-line
        // code the compiler turns into vector instructions (a loop of unknown length with
        // branches stays scalar, and was most of a forward pass at small `d`).
        let splat = f32x8::splat;
        let zero = splat(0.0);
        let mut chunk = |s: &[f32; 8], c: &mut [f32; 8], k: &[u32; 8], len: usize| {
            // All-ones lanes where the pair is positive (same class).
            let ones = f32::from_bits(u32::MAX);
            let positive = f32x8::from(core::array::from_fn::<f32, 8, _>(|l| {
                if k[l] == class { ones } else { 0.0 }
            }));
            let s = f32x8::from(*s);
            let d = match M {
                EUCLIDEAN => sqrt8(s),
                SQUARED => s,
                _ => {
                    let d = splat(0.5) * s;
                    d.simd_gt(splat(2.0)).bitselect(splat(2.0), d)
                }
            };
            let a = positive.bitselect(d - splat(m.m_pos), splat(m.m_neg) - d);
            let w = positive.bitselect(splat(m.w_pos), splat(m.w_neg));
            let active = a.simd_gt(zero);
            let h = active.bitselect(a, zero);
            let loss = if SQ { w * h * h } else { w * h };
            let lanes = (1u32 << len) - 1;
            let (pm, nz) = (positive.to_bitmask(), loss.simd_ne(zero).to_bitmask());
            n_pos += u64::from((pm & nz & lanes).count_ones());
            n_neg += u64::from((!pm & nz & lanes).count_ones());
            let (mut p8, mut n8) = (
                positive.bitselect(loss, zero).to_array(),
                positive.bitselect(zero, loss).to_array(),
            );
            // Lanes past `len` (a padded remainder) count for nothing. (Behind the test:
            // a loop of unknown length becomes a memset call per chunk.)
            if len < 8 {
                for l in len..8 {
                    p8[l] = 0.0;
                    n8[l] = 0.0;
                }
            }
            if GRAD {
                let slope = if SQ {
                    splat(2.0) * w * h
                } else {
                    active.bitselect(w, zero)
                };
                let g = slope * positive.bitselect(splat(fp), splat(-fn_));
                let coefficient = match M {
                    EUCLIDEAN => g / d,
                    SQUARED => splat(2.0) * g,
                    _ => g,
                };
                // Zero or normal (NaN fails both comparisons).
                let size = coefficient.abs();
                let ok = coefficient.simd_eq(zero)
                    | (size.simd_ge(splat(f32::MIN_POSITIVE)) & size.simd_le(splat(f32::MAX)));
                usable &= (!ok.to_bitmask() & lanes) == 0;
                *c = coefficient.to_array();
            }
            // Eight terms in f32 (a tree: 3 roundings), then into f64.
            let tree =
                |v: [f32; 8]| ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
            pos += f64::from(tree(p8));
            neg += f64::from(tree(n8));
        };
        // One call site for whole and padded chunks, so that the chunk is inlined.
        let n = squared.len();
        for at in (0..n).step_by(8) {
            let len = (n - at).min(8);
            let (s, k) = if len == 8 {
                (
                    *squared[at..].first_chunk::<8>().unwrap_or(&[1.0; 8]),
                    *classes[at..].first_chunk::<8>().unwrap_or(&[class; 8]),
                )
            } else {
                // The remainder, padded with a harmless distance (1) and masked out.
                let (mut s, mut k) = ([1.0f32; 8], [class; 8]);
                s[..len].copy_from_slice(&squared[at..]);
                k[..len].copy_from_slice(&classes[at..at + len]);
                (s, k)
            };
            let mut c = [0.0f32; 8];
            chunk(&s, &mut c, &k, len);
            if GRAD {
                match coefficients[at..].first_chunk_mut::<8>() {
                    // A whole chunk as one array store (a slice copy of unknown length
                    // is a memcpy call).
                    Some(whole) if len == 8 => *whole = c,
                    _ => coefficients[at..at + len].copy_from_slice(&c[..len]),
                }
            }
        }
        usable.then_some((pos, neg, n_pos, n_neg))
    }
}

#[cfg(feature = "alloc")]
mod alloc_twins {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    impl ContrastiveLoss {
        /// [`in_batch`](Self::in_batch) with its scratch allocated.
        ///
        /// # Errors
        /// As [`in_batch`](Self::in_batch).
        pub fn in_batch_vec(&self, x: &[f32], dim: usize, classes: &[u32]) -> Result<f32, Error> {
            let mut scratch = vec![0.0; self.scratch_len(classes.len(), dim)];
            self.in_batch(x, dim, classes, &mut scratch)
        }

        /// [`in_batch_with_grad`](Self::in_batch_with_grad) with its scratch allocated,
        /// returning the loss and the gradient with respect to `x`.
        ///
        /// ```
        /// use contrastive::ContrastiveLoss;
        /// let x = [1.0, 0.0, 0.0, 1.0, 0.8, 0.6];
        /// let (loss, grad) = ContrastiveLoss::new(1.0).in_batch_with_grad_vec(&x, 2, &[0, 1, 0])?;
        /// assert_eq!(grad.len(), x.len());
        /// assert!(loss > 0.0);
        /// # Ok::<(), contrastive::Error>(())
        /// ```
        ///
        /// # Errors
        /// As [`in_batch_with_grad`](Self::in_batch_with_grad).
        pub fn in_batch_with_grad_vec(
            &self,
            x: &[f32],
            dim: usize,
            classes: &[u32],
        ) -> Result<(f32, Vec<f32>), Error> {
            let mut scratch = vec![0.0; self.scratch_len(classes.len(), dim)];
            let mut grad = vec![0.0; x.len()];
            let loss = self.in_batch_with_grad(x, dim, classes, &mut grad, &mut scratch)?;
            Ok((loss, grad))
        }

        /// [`cross_batch`](Self::cross_batch) with its scratch allocated.
        ///
        /// # Errors
        /// As [`cross_batch`](Self::cross_batch).
        pub fn cross_batch_vec(
            &self,
            x: &[f32],
            y: &[f32],
            dim: usize,
            x_classes: &[u32],
            y_classes: &[u32],
        ) -> Result<f32, Error> {
            let rows = x_classes.len() + y_classes.len();
            let mut scratch = vec![0.0; self.scratch_len(rows, dim)];
            self.cross_batch(x, y, dim, x_classes, y_classes, &mut scratch)
        }

        /// [`cross_batch_with_grad`](Self::cross_batch_with_grad) with its scratch
        /// allocated, returning the loss and the gradients with respect to `x` and `y`.
        ///
        /// # Errors
        /// As [`cross_batch_with_grad`](Self::cross_batch_with_grad).
        pub fn cross_batch_with_grad_vec(
            &self,
            x: &[f32],
            y: &[f32],
            dim: usize,
            x_classes: &[u32],
            y_classes: &[u32],
        ) -> Result<(f32, Vec<f32>, Vec<f32>), Error> {
            let rows = x_classes.len() + y_classes.len();
            let mut scratch = vec![0.0; self.scratch_len(rows, dim)];
            let (mut gx, mut gy) = (vec![0.0; x.len()], vec![0.0; y.len()]);
            let loss = self.cross_batch_with_grad(
                x,
                y,
                dim,
                x_classes,
                y_classes,
                &mut gx,
                &mut gy,
                &mut scratch,
            )?;
            Ok((loss, gx, gy))
        }
    }
}
