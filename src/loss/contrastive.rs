//! The contrastive loss of Hadsell, Chopra & LeCun (2006), with its presets.

#![forbid(unsafe_code)]

use super::block::{self, Block, LabelledPairs, Weights};
use super::pair::{EuclideanGradient, Terms, cosine_gradient, cosine_loss};
use crate::kernels::{self, Kernels, OnePass};
use crate::numerics::{Cosine, Separation};
use crate::{Backend, Error, check};

/// The distance a loss is computed on.
///
/// More distances may come: a `match` on it needs a wildcard arm.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Distance {
    /// `D = ‖a − b‖₂` (Hadsell et al., TF-Addons, Caffe, pytorch-metric-learning).
    #[default]
    Euclidean,
    /// `D = 1 − cos(a, b)`, with the cosine clamped to `[-1, 1]` so that `D ∈ [0, 2]`
    /// (sentence-transformers' default). A zero vector has cosine 0 with anything.
    Cosine,
    /// `D = ‖a − b‖₂²`: the hinges read the squared distance (pytorch-metric-learning's
    /// `LpDistance(power=2)`). Only with a margin option of this crate's general form:
    /// with today's presets (`positive_margin = 0`, squared hinge) the positive term is
    /// then `w⁺·y·D²`, the square of the squared distance.
    SquaredEuclidean,
}

/// How per-pair losses of a batch are combined.
///
/// More reductions may come: a `match` on it needs a wildcard arm.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Reduction {
    /// The mean over pairs (an error over zero pairs).
    #[default]
    Mean,
    /// The sum over pairs (0 over zero pairs).
    Sum,
    /// pytorch-metric-learning's `AvgNonZeroReducer`: the mean of the positive-pair
    /// losses that are not zero plus the mean of the negative-pair losses that are not
    /// zero, an empty mean being 0 (so a batch with no active pair, or no pair at all,
    /// costs 0). Needs hard labels (exactly 0 or 1). A NaN loss counts as not zero.
    AvgNonZero,
}

/// Which pairs of a batch pay their loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mining {
    /// Every pair.
    #[default]
    None,
    /// sentence-transformers' `OnlineContrastiveLoss` (its current version): only the hard
    /// pairs of the batch pay, the negatives closer than the farthest positive and the
    /// positives farther than the closest negative (strict inequalities, so ties are not
    /// hard); with no positive pair the negatives' threshold is their mean distance, with
    /// no negative pair the positives' is theirs. The other pairs cost 0 and have no
    /// gradient (the selection is held fixed, as the reference's). Needs labels exactly 0
    /// or 1. A NaN distance is always selected (NaN in, NaN out).
    HardPairs,
}

/// The shape of the two hinges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Hinge {
    /// `relu(·)²`: Hadsell et al., sentence-transformers, TF-Addons (with
    /// `positive_margin = 0` the positive term is `D²`).
    #[default]
    Squared,
    /// `relu(·)`: pytorch-metric-learning's `ContrastiveLoss` (since 2.0).
    Linear,
}

/// The contrastive loss `L = w⁺·y·D² + w⁻·(1 − y)·max(0, m − D)²` of a pair at distance
/// `D` with label `y`, and its general form with pytorch-metric-learning's options:
///
/// ```text
/// L = w⁺·y·relu(D − m₊)^k + w⁻·(1 − y)·relu(m − D)^k,   k = 2 (squared hinge) or 1 (linear)
/// ```
///
/// with `D` Euclidean, squared Euclidean or cosine, optionally between L2-normalised
/// embeddings (`normalize`), and reductions `Mean`, `Sum` or `AvgNonZero`. With
/// `m₊ = 0`, the squared hinge and no normalisation, `relu(D)² = D²` and this is the
/// first form, computed as it always was (same results, same speed).
///
/// **Label convention: `y = 1` means similar, `y = 0` dissimilar** (as in TF-Addons,
/// sentence-transformers and Caffe; the Hadsell paper and the Keras example use the
/// opposite, pass `1 − y` for those). Soft labels in `[0, 1]` blend the two terms; labels
/// exactly 0 or 1 do not evaluate the unused term at all.
///
/// | preset | `w⁺` | `w⁻` | who |
/// |---|---|---|---|
/// | [`ContrastiveLoss::new`] | ½ | ½ | Hadsell et al. 2006, sentence-transformers, Caffe |
/// | [`ContrastiveLoss::tfa`] | 1 | 1 | TF-Addons, Keras example |
/// | [`ContrastiveLoss::seed`] | ½ | 1 | the seed document |
/// | [`ContrastiveLoss::pml`] | 1 | 1 | pytorch-metric-learning `ContrastiveLoss()`: `m₊ = 0`, `m = 1`, linear hinges, normalised Euclidean, `AvgNonZero` |
/// | [`ContrastiveLoss::sentence_transformers`] | ½ | ½ | sentence-transformers `ContrastiveLoss`: cosine distance, margin 0.5, mean |
/// | [`ContrastiveLoss::sentence_transformers_online`] | 1 | 1 | sentence-transformers `OnlineContrastiveLoss`: hard pairs only, cosine, margin 0.5, sum |
///
/// ```
/// use contrastive::ContrastiveLoss;
/// let loss = ContrastiveLoss::new(1.0);
/// let (a, b) = ([0.0, 0.0], [0.3, 0.4]); // D = 0.5
/// let (mut ga, mut gb) = ([0.0; 2], [0.0; 2]);
/// let l = loss.pair_with_grad(&a, &b, 0.0, &mut ga, &mut gb)?; // dissimilar
/// assert!((l - 0.125).abs() < 1e-7); // ½·(1 − 0.5)²
/// assert!((ga[0] - 0.3).abs() < 1e-6 && gb[0] == -ga[0]);
/// # Ok::<(), contrastive::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ContrastiveLoss {
    /// `m`: dissimilar pairs closer than this pay `w⁻·(m − D)²`. Finite and ≥ 0.
    pub margin: f32,
    /// `w⁺`, the weight of the similar term. Finite and ≥ 0.
    pub positive_weight: f32,
    /// `w⁻`, the weight of the dissimilar term. Finite and ≥ 0.
    pub negative_weight: f32,
    /// The distance `D`.
    pub distance: Distance,
    /// How [`batch`](Self::batch) and [`batch_with_grad`](Self::batch_with_grad) combine
    /// pairs.
    pub reduction: Reduction,
    /// The kernel backend; `None` runs the best one available.
    pub backend: Option<Backend>,
    /// `m₊`: similar pairs farther apart than this pay `w⁺·(D − m₊)^k`. Finite and ≥ 0;
    /// 0 in every preset.
    pub positive_margin: f32,
    /// The shape of both hinges.
    pub hinge: Hinge,
    /// Whether the embeddings are L2-normalised before the distance (with the gradient
    /// taken through the normalisation; a zero row stays zero and gets a zero gradient).
    /// The cosine distance is the same either way.
    pub normalize: bool,
    /// Which pairs pay (hard-pair mining).
    pub mining: Mining,
}

impl ContrastiveLoss {
    /// Hadsell et al.'s loss: `w⁺ = w⁻ = ½`, Euclidean, mean.
    pub const fn new(margin: f32) -> Self {
        ContrastiveLoss {
            margin,
            positive_weight: 0.5,
            negative_weight: 0.5,
            distance: Distance::Euclidean,
            reduction: Reduction::Mean,
            backend: None,
            positive_margin: 0.0,
            hinge: Hinge::Squared,
            normalize: false,
            mining: Mining::None,
        }
    }

    /// pytorch-metric-learning's `ContrastiveLoss()` with its defaults: `pos_margin = 0`,
    /// `neg_margin = 1`, linear hinges `relu(D − m₊) + relu(m − D)` (not squared),
    /// Euclidean distance between L2-normalised embeddings, `w⁺ = w⁻ = 1`, and the mean
    /// of the non-zero positive losses plus the mean of the non-zero negative ones
    /// ([`Reduction::AvgNonZero`]). Other margins: [`with_margins`](Self::with_margins).
    pub const fn pml() -> Self {
        let mut loss = Self::new(1.0).with_weights(1.0, 1.0);
        loss.hinge = Hinge::Linear;
        loss.normalize = true;
        loss.reduction = Reduction::AvgNonZero;
        loss
    }

    /// sentence-transformers' `ContrastiveLoss` defaults: `½·(y·D² + (1 − y)·relu(m − D)²)`
    /// on the cosine distance with margin 0.5, mean over pairs.
    pub const fn sentence_transformers() -> Self {
        Self::new(0.5).with_distance(Distance::Cosine)
    }

    /// sentence-transformers' `OnlineContrastiveLoss` defaults: hard-pair mining
    /// ([`Mining::HardPairs`]) with `y·D² + (1 − y)·relu(m − D)²` (no ½) on the cosine
    /// distance, margin 0.5, summed over the hard pairs.
    pub const fn sentence_transformers_online() -> Self {
        let mut loss = Self::tfa(0.5).with_distance(Distance::Cosine);
        loss.reduction = Reduction::Sum;
        loss.mining = Mining::HardPairs;
        loss
    }

    /// The same loss with another pair selection.
    pub const fn with_mining(mut self, mining: Mining) -> Self {
        self.mining = mining;
        self
    }

    /// The same loss with margins `m₊` (positive pairs) and `m` (negative pairs).
    pub const fn with_margins(mut self, positive_margin: f32, negative_margin: f32) -> Self {
        self.positive_margin = positive_margin;
        self.margin = negative_margin;
        self
    }

    /// The same loss with another hinge shape.
    pub const fn with_hinge(mut self, hinge: Hinge) -> Self {
        self.hinge = hinge;
        self
    }

    /// The same loss with or without L2 normalisation of the embeddings.
    pub const fn with_normalize(mut self, normalize: bool) -> Self {
        self.normalize = normalize;
        self
    }

    /// TF-Addons' and the Keras example's loss: `w⁺ = w⁻ = 1` (their default margin is
    /// 1.0).
    pub const fn tfa(margin: f32) -> Self {
        Self::new(margin).with_weights(1.0, 1.0)
    }

    /// The per-pair weights of the numpy function the crate was specified from: `w⁺ = ½`,
    /// `w⁻ = 1` (its example margin is 0.5). For that exact function, which is not a
    /// per-pair loss, see [`seed::contrastive_loss`](crate::seed::contrastive_loss).
    pub const fn seed(margin: f32) -> Self {
        Self::new(margin).with_weights(0.5, 1.0)
    }

    /// The same loss with weights `w⁺`, `w⁻`.
    pub const fn with_weights(mut self, positive_weight: f32, negative_weight: f32) -> Self {
        self.positive_weight = positive_weight;
        self.negative_weight = negative_weight;
        self
    }

    /// The same loss on another distance.
    pub const fn with_distance(mut self, distance: Distance) -> Self {
        self.distance = distance;
        self
    }

    /// The same loss with another batch reduction.
    pub const fn with_reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// The same loss computed on a named backend (for tests and benchmarks); its methods
    /// return [`Error::BackendUnavailable`] if that backend cannot run here.
    pub const fn with_backend(mut self, backend: Backend) -> Self {
        self.backend = Some(backend);
        self
    }

    /// The loss of one pair (no reduction). `a` and `b` have equal lengths, which may be 0
    /// (then `D = 0`).
    ///
    /// # Errors
    ///
    /// - [`Error::LengthMismatch`] if `b` is not as long as `a`;
    /// - [`Error::InvalidLabel`] if `label` is outside `[0, 1]` or NaN;
    /// - [`Error::InvalidMargin`] if the margin is negative, NaN or infinite;
    /// - [`Error::InvalidWeight`] if a weight is negative, NaN or infinite;
    /// - [`Error::BackendUnavailable`] if a backend named with
    ///   [`with_backend`](Self::with_backend) cannot run here.
    ///
    /// # Examples
    ///
    /// ```
    /// use contrastive::{ContrastiveLoss, Distance, Error};
    ///
    /// let loss = ContrastiveLoss::new(1.0);
    /// // A dissimilar pair at distance 0.5, inside the margin: ½·(1 − 0.5)².
    /// assert_eq!(loss.pair(&[0.0, 0.0], &[0.3, 0.4], 0.0)?, 0.125);
    /// // The same pair, similar: ½·0.5².
    /// assert!((loss.pair(&[0.0, 0.0], &[0.3, 0.4], 1.0)? - 0.125).abs() < 1e-7);
    /// // Orthogonal vectors are at cosine distance 1.
    /// let cosine = loss.with_distance(Distance::Cosine);
    /// assert_eq!(cosine.pair(&[1.0, 0.0], &[0.0, 1.0], 1.0)?, 0.5);
    ///
    /// // Labels are in [0, 1], 1 meaning similar.
    /// let err = loss.pair(&[0.0], &[1.0], -1.0).unwrap_err();
    /// assert_eq!(err, Error::InvalidLabel { index: 0, label: -1.0 });
    /// # Ok::<(), contrastive::Error>(())
    /// ```
    pub fn pair(&self, a: &[f32], b: &[f32], label: f32) -> Result<f32, Error> {
        let kernels = self.kernels()?;
        check::same_len("b", a.len(), b.len())?;
        check::label(label)?;
        if !self.is_classic() {
            return Ok(self.general_pair(kernels, a, b, label, None));
        }
        Ok(self.pair_loss(kernels, a, b, label))
    }

    /// The loss of one pair and its gradients, written over `grad_a` and `grad_b` (each as
    /// long as `a`). For the Euclidean distance `grad_b` is `−grad_a`. The buffers are
    /// overwritten, not accumulated into, and left untouched on an error.
    ///
    /// # Errors
    ///
    /// - [`Error::LengthMismatch`] if `b`, `grad_a` or `grad_b` is not as long as `a`;
    /// - [`Error::InvalidLabel`] if `label` is outside `[0, 1]` or NaN;
    /// - [`Error::InvalidMargin`] if the margin is negative, NaN or infinite;
    /// - [`Error::InvalidWeight`] if a weight is negative, NaN or infinite;
    /// - [`Error::BackendUnavailable`] if a backend named with
    ///   [`with_backend`](Self::with_backend) cannot run here.
    ///
    /// # Examples
    ///
    /// ```
    /// use contrastive::{ContrastiveLoss, Error};
    ///
    /// let loss = ContrastiveLoss::new(1.0);
    /// let (a, b) = ([1.0, 2.0], [1.0, 1.0]);
    /// let (mut grad_a, mut grad_b) = ([0.0; 2], [0.0; 2]);
    /// // A similar pair at distance 1: ½·1², ∂L/∂a = a − b.
    /// let l = loss.pair_with_grad(&a, &b, 1.0, &mut grad_a, &mut grad_b)?;
    /// assert_eq!((l, grad_a, grad_b), (0.5, [0.0, 1.0], [-0.0, -1.0]));
    ///
    /// // A gradient buffer of the wrong length is refused.
    /// let err = loss.pair_with_grad(&a, &b, 1.0, &mut [0.0; 3], &mut grad_b).unwrap_err();
    /// assert_eq!(err, Error::LengthMismatch { argument: "grad_a", expected: 2, found: 3 });
    /// # Ok::<(), contrastive::Error>(())
    /// ```
    #[inline]
    pub fn pair_with_grad(
        &self,
        a: &[f32],
        b: &[f32],
        label: f32,
        grad_a: &mut [f32],
        grad_b: &mut [f32],
    ) -> Result<f32, Error> {
        // A dispatcher small enough to inline: where the loss is known at the call site
        // (Hadsell's Euclidean loss, as firmware builds it), only its path is linked, not
        // the cosine path or the general form.
        if self.is_classic() && matches!(self.distance, Distance::Euclidean) {
            self.euclidean_pair_with_grad(a, b, label, grad_a, grad_b)
        } else {
            self.any_pair_with_grad(a, b, label, grad_a, grad_b)
        }
    }

    /// The checks of [`pair_with_grad`](Self::pair_with_grad), in its documented order.
    #[inline(always)]
    fn check_pair_with_grad(
        &self,
        a: &[f32],
        b: &[f32],
        label: f32,
        grads: (usize, usize),
    ) -> Result<&'static Kernels, Error> {
        let kernels = self.kernels()?;
        check::same_len("b", a.len(), b.len())?;
        check::same_len("grad_a", a.len(), grads.0)?;
        check::same_len("grad_b", a.len(), grads.1)?;
        check::label(label)?;
        Ok(kernels)
    }

    /// `pair_with_grad` of the classic loss on the Euclidean distance.
    fn euclidean_pair_with_grad(
        &self,
        a: &[f32],
        b: &[f32],
        label: f32,
        grad_a: &mut [f32],
        grad_b: &mut [f32],
    ) -> Result<f32, Error> {
        let kernels = self.check_pair_with_grad(a, b, label, (grad_a.len(), grad_b.len()))?;
        let terms = self.terms(label);
        Ok(euclidean_loss_with_grad(
            kernels, terms, 2.0, a, b, grad_a, grad_b,
        ))
    }

    /// `pair_with_grad` of every other loss.
    fn any_pair_with_grad(
        &self,
        a: &[f32],
        b: &[f32],
        label: f32,
        grad_a: &mut [f32],
        grad_b: &mut [f32],
    ) -> Result<f32, Error> {
        let kernels = self.check_pair_with_grad(a, b, label, (grad_a.len(), grad_b.len()))?;
        if !self.is_classic() {
            return Ok(self.general_pair(kernels, a, b, label, Some((grad_a, grad_b))));
        }
        Ok(self.pair_loss_with_grad(kernels, (a, b), label, 2.0, (grad_a, grad_b)))
    }

    /// The reduced loss of a batch: `a` and `b` hold `N` rows of `dim` floats each
    /// (row-major), `labels` holds `N` labels. Per-pair losses are summed in f64.
    ///
    /// # Errors
    ///
    /// - [`Error::ZeroDimension`] if `dim == 0`;
    /// - [`Error::LengthMismatch`] if `b` is not as long as `a`, or `labels` does not hold
    ///   one label per row;
    /// - [`Error::NotMultipleOfDim`] if `a` is not a whole number of rows of `dim`;
    /// - [`Error::InvalidLabel`] for a label outside `[0, 1]` or NaN (with its index);
    /// - [`Error::Empty`] for a [`Reduction::Mean`] over zero rows (a `Sum` is 0);
    /// - [`Error::InvalidMargin`] if the margin is negative, NaN or infinite;
    /// - [`Error::InvalidWeight`] if a weight is negative, NaN or infinite;
    /// - [`Error::BackendUnavailable`] if a backend named with
    ///   [`with_backend`](Self::with_backend) cannot run here.
    ///
    /// # Examples
    ///
    /// ```
    /// use contrastive::{ContrastiveLoss, Error, Reduction};
    ///
    /// // Two rows of dim 2: similar at distance 5, dissimilar at distance 0.
    /// let a = [0.0, 0.0, 1.0, 1.0];
    /// let b = [3.0, 4.0, 1.0, 1.0];
    /// let sum = ContrastiveLoss::tfa(1.0).with_reduction(Reduction::Sum);
    /// assert_eq!(sum.batch(&a, &b, 2, &[1.0, 0.0])?, 25.0 + 1.0);
    ///
    /// // The mean over no pairs is undefined; their sum is 0.
    /// let mean = ContrastiveLoss::tfa(1.0);
    /// assert_eq!(mean.batch(&[], &[], 2, &[]), Err(Error::Empty { argument: "labels" }));
    /// assert_eq!(sum.batch(&[], &[], 2, &[])?, 0.0);
    /// # Ok::<(), contrastive::Error>(())
    /// ```
    pub fn batch(&self, a: &[f32], b: &[f32], dim: usize, labels: &[f32]) -> Result<f32, Error> {
        let kernels = self.kernels()?;
        let rows = check::rows(a, b, dim)?;
        check::same_len("labels", rows, labels.len())?;
        self.check_reducible(rows)?;
        if rows == 0 {
            return Ok(0.0);
        }
        if !self.is_classic() {
            return self.general_batch(kernels, (a, b, dim, labels), None, None, None);
        }
        let mut total = 0.0f64;
        match self.distance {
            // The blocks check their labels (this call has no output to leave untouched on
            // an error): a pass of its own would read the labels from memory twice.
            Distance::Euclidean => {
                let pairs = LabelledPairs { a, b, dim, labels };
                total = self.euclidean_batch_sum(kernels, pairs)?;
            }
            Distance::Cosine | Distance::SquaredEuclidean => {
                check::labels(labels)?;
                self.for_each_cosine_loss(kernels, a, b, dim, labels, |_, loss| {
                    total += f64::from(loss)
                })
            }
        }
        Ok(self.reduce(total, rows))
    }

    /// The loss of each pair of a batch, written into `out` (one per row, no reduction);
    /// `out` is left untouched on an error.
    ///
    /// # Errors
    ///
    /// - [`Error::ZeroDimension`] if `dim == 0`;
    /// - [`Error::LengthMismatch`] if `b` is not as long as `a`, or `labels` does not hold
    ///   one label per row, or `out` one element per row;
    /// - [`Error::NotMultipleOfDim`] if `a` is not a whole number of rows of `dim`;
    /// - [`Error::InvalidLabel`] for a label outside `[0, 1]` or NaN (with its index);
    /// - [`Error::InvalidMargin`] if the margin is negative, NaN or infinite;
    /// - [`Error::InvalidWeight`] if a weight is negative, NaN or infinite;
    /// - [`Error::BackendUnavailable`] if a backend named with
    ///   [`with_backend`](Self::with_backend) cannot run here.
    ///
    /// # Examples
    ///
    /// ```
    /// use contrastive::ContrastiveLoss;
    ///
    /// // Three rows of dim 2: similar at distance 5, dissimilar at 0, dissimilar at 5.
    /// let a = [0.0, 0.0, 1.0, 1.0, 0.0, 0.0];
    /// let b = [3.0, 4.0, 1.0, 1.0, 3.0, 4.0];
    /// let mut out = [0.0; 3];
    /// ContrastiveLoss::tfa(1.0).batch_per_pair(&a, &b, 2, &[1.0, 0.0, 0.0], &mut out)?;
    /// assert_eq!(out, [25.0, 1.0, 0.0]); // the last pair is beyond the margin
    /// # Ok::<(), contrastive::Error>(())
    /// ```
    pub fn batch_per_pair(
        &self,
        a: &[f32],
        b: &[f32],
        dim: usize,
        labels: &[f32],
        out: &mut [f32],
    ) -> Result<(), Error> {
        let (kernels, rows) = self.check_batch(a, b, dim, labels)?;
        check::same_len("out", rows, out.len())?;
        if rows == 0 {
            return Ok(());
        }
        if !self.is_classic() {
            return self
                .general_batch(kernels, (a, b, dim, labels), Some(out), None, None)
                .map(|_| ());
        }
        match self.distance {
            Distance::Euclidean => {
                let pairs = LabelledPairs { a, b, dim, labels };
                self.for_each_block(kernels, pairs, 2.0, |block| {
                    out[block.first..block.first + block.rows]
                        .copy_from_slice(&block.losses[..block.rows]);
                })?
            }
            Distance::Cosine | Distance::SquaredEuclidean => {
                self.for_each_cosine_loss(kernels, a, b, dim, labels, |row, loss| out[row] = loss)
            }
        }
        Ok(())
    }

    /// The reduced loss of a batch and its gradients with respect to `a` and `b`, written
    /// over `grad_a` and `grad_b` (each as long as `a`). The buffers are overwritten, not
    /// accumulated into, and left untouched on an error. A [`Reduction::Mean`] scales every
    /// gradient by `1/N`.
    ///
    /// # Errors
    ///
    /// - [`Error::ZeroDimension`] if `dim == 0`;
    /// - [`Error::LengthMismatch`] if `b` is not as long as `a`, or `labels` does not hold
    ///   one label per row, or `grad_a` or `grad_b` is not as long as `a`;
    /// - [`Error::NotMultipleOfDim`] if `a` is not a whole number of rows of `dim`;
    /// - [`Error::InvalidLabel`] for a label outside `[0, 1]` or NaN (with its index);
    /// - [`Error::Empty`] for a [`Reduction::Mean`] over zero rows (a `Sum` is 0);
    /// - [`Error::InvalidMargin`] if the margin is negative, NaN or infinite;
    /// - [`Error::InvalidWeight`] if a weight is negative, NaN or infinite;
    /// - [`Error::BackendUnavailable`] if a backend named with
    ///   [`with_backend`](Self::with_backend) cannot run here.
    ///
    /// # Examples
    ///
    /// ```
    /// use contrastive::ContrastiveLoss;
    ///
    /// // Two rows of dim 2: similar at distance 5, dissimilar at distance 0.
    /// let (a, b) = ([0.0, 0.0, 1.0, 1.0], [3.0, 4.0, 1.0, 1.0]);
    /// let (mut grad_a, mut grad_b) = ([0.0; 4], [0.0; 4]);
    /// let loss = ContrastiveLoss::new(1.0);
    /// let mean = loss.batch_with_grad(&a, &b, 2, &[1.0, 0.0], &mut grad_a, &mut grad_b)?;
    /// assert_eq!(mean, (12.5 + 0.5) / 2.0);
    /// // Row 0: 2·½·(a − b)/2. Row 1: at distance 0 the gradient is the subgradient 0.
    /// assert_eq!(grad_a, [-1.5, -2.0, 0.0, 0.0]);
    /// # Ok::<(), contrastive::Error>(())
    /// ```
    pub fn batch_with_grad(
        &self,
        a: &[f32],
        b: &[f32],
        dim: usize,
        labels: &[f32],
        grad_a: &mut [f32],
        grad_b: &mut [f32],
    ) -> Result<f32, Error> {
        let (kernels, rows) = self.check_batch(a, b, dim, labels)?;
        check::same_len("grad_a", a.len(), grad_a.len())?;
        check::same_len("grad_b", a.len(), grad_b.len())?;
        self.check_reducible(rows)?;
        if rows == 0 {
            return Ok(0.0);
        }
        if !self.is_classic() {
            let grads = Some((grad_a, grad_b));
            return self.general_batch(kernels, (a, b, dim, labels), None, grads, None);
        }
        let two_c = match self.reduction {
            Reduction::Mean => 2.0 / rows as f32,
            _ => 2.0,
        };
        let total = match self.distance {
            Distance::Euclidean => {
                let pairs = LabelledPairs { a, b, dim, labels };
                self.euclidean_batch_with_grad(kernels, pairs, two_c, (grad_a, grad_b))?
            }
            Distance::Cosine | Distance::SquaredEuclidean => {
                let mut total = 0.0f64;
                let rows = a.chunks_exact(dim).zip(b.chunks_exact(dim)).zip(
                    grad_a
                        .chunks_exact_mut(dim)
                        .zip(grad_b.chunks_exact_mut(dim)),
                );
                for (((ra, rb), (ga, gb)), &y) in rows.zip(labels) {
                    let cos = Cosine::of(kernels, ra, rb);
                    let terms = self.terms(y);
                    total += f64::from(cosine_loss(terms, &cos));
                    cosine_gradient(kernels, terms, (cos, two_c), (ra, rb), (ga, gb));
                }
                total
            }
        };
        Ok(self.reduce(total, rows))
    }

    /// Whether this is the loss of today's presets (`m₊ = 0`, squared hinge, no
    /// normalisation, Euclidean or cosine distance, mean or sum), which keeps its own,
    /// faster path; every other combination takes the general one (`margins.rs`).
    #[inline]
    pub(crate) fn is_classic(&self) -> bool {
        self.positive_margin == 0.0
            && self.hinge == Hinge::Squared
            && !self.normalize
            && self.mining == Mining::None
            && matches!(self.distance, Distance::Euclidean | Distance::Cosine)
            && matches!(self.reduction, Reduction::Mean | Reduction::Sum)
    }

    pub(crate) fn kernels(&self) -> Result<&'static Kernels, Error> {
        check::margin(self.positive_margin)?;
        check::margin(self.margin)?;
        check::weight("positive_weight", self.positive_weight)?;
        check::weight("negative_weight", self.negative_weight)?;
        kernels::select(self.backend)
    }

    fn check_batch(
        &self,
        a: &[f32],
        b: &[f32],
        dim: usize,
        labels: &[f32],
    ) -> Result<(&'static Kernels, usize), Error> {
        let kernels = self.kernels()?;
        let rows = check::rows(a, b, dim)?;
        check::same_len("labels", rows, labels.len())?;
        check::labels(labels)?;
        Ok((kernels, rows))
    }

    fn check_reducible(&self, rows: usize) -> Result<(), Error> {
        if rows == 0 && self.reduction == Reduction::Mean {
            Err(Error::Empty { argument: "labels" })
        } else {
            Ok(())
        }
    }

    /// Sums in f64, so that a million pairs sum as well as ten; a pair at `+∞` makes the
    /// reduction `+∞`.
    fn reduce(&self, total: f64, rows: usize) -> f32 {
        match self.reduction {
            Reduction::Mean => (total / rows as f64) as f32,
            Reduction::Sum | Reduction::AvgNonZero => total as f32,
        }
    }

    #[inline]
    fn terms(&self, label: f32) -> Terms {
        Terms {
            p: self.positive_weight * label,
            q: self.negative_weight * (1.0 - label),
            margin: self.margin,
        }
    }

    fn pair_loss(&self, kernels: &Kernels, a: &[f32], b: &[f32], label: f32) -> f32 {
        let terms = self.terms(label);
        match self.distance {
            Distance::Euclidean => {
                let sep = Separation::of(kernels, a, b);
                terms.loss_at(&sep)
            }
            Distance::Cosine | Distance::SquaredEuclidean => {
                cosine_loss(terms, &Cosine::of(kernels, a, b))
            }
        }
    }

    fn pair_loss_with_grad(
        &self,
        kernels: &Kernels,
        (a, b): (&[f32], &[f32]),
        label: f32,
        two_c: f32,
        (grad_a, grad_b): (&mut [f32], &mut [f32]),
    ) -> f32 {
        let terms = self.terms(label);
        match self.distance {
            Distance::Euclidean => {
                euclidean_loss_with_grad(kernels, terms, two_c, a, b, grad_a, grad_b)
            }
            Distance::Cosine | Distance::SquaredEuclidean => {
                let cos = Cosine::of(kernels, a, b);
                cosine_gradient(kernels, terms, (cos, two_c), (a, b), (grad_a, grad_b));
                cosine_loss(terms, &cos)
            }
        }
    }

    /// Calls `f(row, loss)` for every pair of a cosine batch.
    fn for_each_cosine_loss(
        &self,
        kernels: &Kernels,
        a: &[f32],
        b: &[f32],
        dim: usize,
        labels: &[f32],
        mut f: impl FnMut(usize, f32),
    ) {
        let rows = a.chunks_exact(dim).zip(b.chunks_exact(dim)).zip(labels);
        for (row, ((ra, rb), &y)) in rows.enumerate() {
            f(
                row,
                cosine_loss(self.terms(y), &Cosine::of(kernels, ra, rb)),
            );
        }
    }

    fn weights(&self, two_c: f32) -> Weights {
        Weights {
            positive: self.positive_weight,
            negative: self.negative_weight,
            margin: self.margin,
            two_c,
        }
    }

    /// `Σ losses` of a Euclidean batch: runs of blocks ([`block::spans`]) through the
    /// backend's one-pass forward where it has one, else (or where a row needs care, or a
    /// label is invalid) block by block through the block path, which checks the block's
    /// labels. The same bits either way: the blocks' sums are added in order.
    fn euclidean_batch_sum(&self, kernels: &Kernels, pairs: LabelledPairs) -> Result<f64, Error> {
        let LabelledPairs { a, b, dim, labels } = pairs;
        let w = self.weights(2.0);
        let mut total = 0.0f64;
        // Made on the first block the one-pass kernel leaves: 3 KiB to zero, which a call
        // on a few long rows would otherwise pay for nothing.
        let mut block: Option<Block> = None;
        let per_block = block::block_rows(dim);
        // As in `euclidean_batch_with_grad`: where runs and blocks that need care outnumber
        // the others, the rest of the batch takes the block path only.
        let (mut one_pass, mut done, mut redone) = (true, 0usize, 0usize);
        let params = w.params();
        for (run, block_rows) in block::spans(a, b, dim, labels.len(), per_block) {
            // Where a row of a run of several blocks needs care, its blocks are tried one
            // by one, so that only the blocks with such a row take the block path.
            let mut by_block = false;
            if one_pass {
                let LabelledPairs { a, b, labels, .. } = pairs.rows(run.clone());
                match (kernels.contrastive_forward)(a, b, dim, labels, params, block_rows, total) {
                    OnePass::Done(sum) => {
                        total = sum;
                        done += 1;
                        continue;
                    }
                    OnePass::NeedsCare => {
                        redone += 1;
                        one_pass = redone <= done + 2;
                        by_block = one_pass && run.len() > block_rows;
                    }
                    OnePass::Declined => {}
                }
            }
            let block = block.get_or_insert_with(Block::new);
            for first in run.clone().step_by(block_rows) {
                let r = first..run.end.min(first + block_rows);
                if by_block {
                    let LabelledPairs { a, b, labels, .. } = pairs.rows(r.clone());
                    let one =
                        (kernels.contrastive_forward)(a, b, dim, labels, params, r.len(), total);
                    if let OnePass::Done(sum) = one {
                        total = sum;
                        done += 1;
                        continue;
                    }
                    redone += 1;
                }
                block.compute(kernels, r.start, pairs.rows(r), w, false)?;
                total += block.sum;
            }
            one_pass = redone <= done + 2;
        }
        Ok(total)
    }

    /// Calls `f` with every block of a Euclidean batch, its losses computed.
    fn for_each_block(
        &self,
        kernels: &Kernels,
        pairs: LabelledPairs,
        two_c: f32,
        mut f: impl FnMut(&Block),
    ) -> Result<(), Error> {
        let LabelledPairs { a, b, dim, labels } = pairs;
        let w = self.weights(two_c);
        let mut block = Block::new();
        for r in block::ranges(a, b, dim, labels.len(), block::block_rows(dim)) {
            // The epilogue checks each block's labels, while they are in cache (callers
            // with outputs have checked them all first, so that an error leaves the outputs
            // untouched).
            block.compute(kernels, r.start, pairs.rows(r), w, false)?;
            f(&block);
        }
        Ok(())
    }

    /// Forward and gradient, fused per block: the rows kernel reads a block, the gradient
    /// kernel reads it again from L1 and writes both gradients; or, where the backend has
    /// one, a kernel that reads each row once and writes its gradients right away.
    fn euclidean_batch_with_grad(
        &self,
        kernels: &Kernels,
        pairs: LabelledPairs,
        two_c: f32,
        (grad_a, grad_b): (&mut [f32], &mut [f32]),
    ) -> Result<f64, Error> {
        let LabelledPairs { a, b, dim, labels } = pairs;
        let w = self.weights(two_c);
        let stream = block::streams(grad_a.len());
        let mut total = 0.0f64;
        let mut block = Block::new();
        let per_block = block::gradient_block_rows(dim, stream);
        let mut one_pass = (kernels.one_pass_takes)(dim, stream);
        // A block with a row that needs care does its work twice (one pass, then the block
        // path): where such blocks outnumber the others (duplicate pairs throughout, say),
        // the rest of the batch takes the block path only.
        let (mut done, mut redone) = (0usize, 0usize);
        for r in block::ranges(a, b, dim, labels.len(), per_block) {
            let (ba, bb) = (
                &a[r.start * dim..r.end * dim],
                &b[r.start * dim..r.end * dim],
            );
            let (ga, gb) = (
                &mut grad_a[r.start * dim..r.end * dim],
                &mut grad_b[r.start * dim..r.end * dim],
            );
            let ys = &labels[r.clone()];
            // The backend's one-pass kernel where it has one; the block path where it
            // declines, or where a row needs care.
            if one_pass {
                let params = w.params();
                match (kernels.contrastive_one_pass)(ba, bb, dim, ys, params, ga, gb, stream) {
                    OnePass::Done(sum) => {
                        total += sum;
                        done += 1;
                        continue;
                    }
                    OnePass::NeedsCare => {
                        redone += 1;
                        one_pass = redone <= done + 2;
                        if stream {
                            // Its streamed stores, before the same lines are written again.
                            (kernels.fence)();
                        }
                    }
                    OnePass::Declined => {}
                }
            }
            // The labels were checked before any output was written: this cannot fail.
            let block_pairs = pairs.rows(r.clone());
            block.compute(kernels, r.start, block_pairs, w, true)?;
            block.write_gradients(kernels, block_pairs, w, (ga, gb), stream);
            total += block.sum;
        }
        if stream {
            (kernels.fence)();
        }
        Ok(total)
    }
}

/// The loss of one pair on the Euclidean distance, its gradients written.
#[inline(always)]
fn euclidean_loss_with_grad(
    kernels: &Kernels,
    terms: Terms,
    two_c: f32,
    a: &[f32],
    b: &[f32],
    grad_a: &mut [f32],
    grad_b: &mut [f32],
) -> f32 {
    let sep = Separation::of(kernels, a, b);
    EuclideanGradient::new(terms, sep, two_c).write(kernels, &sep, (a, b), (grad_a, grad_b));
    terms.loss_at(&sep)
}
