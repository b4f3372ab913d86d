//! Learning an embedding of hand-written digits with `contrastive`: the data, the
//! training loop and the evaluation behind `cargo run --release -p digits`.
//!
//! The network, the optimiser and the losses' glue are in [`net`], which is `no_std` and
//! allocation-free: the Cortex-M firmware in `qemu-selftest/` compiles the same file.

pub mod net;

use contrastive::{BatchHardTripletLoss, ContrastiveLoss, Error, SupConLoss};
use net::{PIXEL_MAX, PIXELS, Rng, Sgd, Shape};
use std::time::{Duration, Instant};

/// The UCI optical digits as scikit-learn ships them (`data/digits/`).
pub const CSV: &str = include_str!("../../../data/digits/digits.csv");

/// A set of 8×8 images with their classes.
#[derive(Clone, Debug, Default)]
pub struct Digits {
    /// `len × 64` pixels, row by row, each in `0..=16`.
    pub pixels: Vec<u8>,
    /// The class `0..=9` of each image.
    pub classes: Vec<u8>,
}

impl Digits {
    /// The 1,797 images of the committed data file.
    pub fn load() -> Result<Digits, String> {
        Digits::parse(CSV)
    }

    /// Parses lines of 64 pixels in `0..=16` and a class in `0..=9`, comma-separated.
    pub fn parse(csv: &str) -> Result<Digits, String> {
        let mut d = Digits::default();
        for (n, line) in csv
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let fields: Vec<&str> = line.trim().split(',').collect();
            if fields.len() != PIXELS + 1 {
                return Err(format!(
                    "line {}: {} fields, expected {}",
                    n + 1,
                    fields.len(),
                    PIXELS + 1
                ));
            }
            for (i, f) in fields.iter().enumerate() {
                let v: u8 = f
                    .trim()
                    .parse()
                    .map_err(|e| format!("line {}, field {}: {f:?}: {e}", n + 1, i + 1))?;
                let max = if i == PIXELS { 9 } else { 16 };
                if v > max {
                    return Err(format!("line {}, field {}: {v} > {max}", n + 1, i + 1));
                }
                if i == PIXELS {
                    d.classes.push(v);
                } else {
                    d.pixels.push(v);
                }
            }
        }
        Ok(d)
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.classes.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// Image `i`'s pixels scaled to `[0, 1]`.
    pub fn features(&self, i: usize) -> impl Iterator<Item = f32> + '_ {
        self.pixels[i * PIXELS..(i + 1) * PIXELS]
            .iter()
            .map(|&p| f32::from(p) / PIXEL_MAX)
    }

    /// All images' pixels scaled to `[0, 1]`, `len × 64`.
    pub fn feature_matrix(&self) -> Vec<f32> {
        (0..self.len()).flat_map(|i| self.features(i)).collect()
    }

    /// The images whose class satisfies `keep`.
    pub fn select(&self, keep: impl Fn(u8) -> bool) -> Digits {
        let mut d = Digits::default();
        for i in (0..self.len()).filter(|&i| keep(self.classes[i])) {
            d.pixels
                .extend_from_slice(&self.pixels[i * PIXELS..(i + 1) * PIXELS]);
            d.classes.push(self.classes[i]);
        }
        d
    }

    /// A random split: about `fraction` of each class goes to the second set.
    pub fn split(&self, fraction: f64, rng: &mut Rng) -> (Digits, Digits) {
        let (mut a, mut b) = (Digits::default(), Digits::default());
        for class in 0..10u8 {
            let mut members: Vec<usize> = (0..self.len())
                .filter(|&i| self.classes[i] == class)
                .collect();
            shuffle(&mut members, rng);
            let cut = members.len() - (members.len() as f64 * fraction).round() as usize;
            for (k, &i) in members.iter().enumerate() {
                let to = if k < cut { &mut a } else { &mut b };
                to.pixels
                    .extend_from_slice(&self.pixels[i * PIXELS..(i + 1) * PIXELS]);
                to.classes.push(class);
            }
        }
        (a, b)
    }

    /// The row indices of each class present, in class order.
    pub fn groups(&self) -> Vec<Vec<u16>> {
        let mut g: Vec<Vec<u16>> = vec![Vec::new(); 10];
        for (i, &c) in self.classes.iter().enumerate() {
            g[c as usize].push(i as u16);
        }
        g.retain(|m| !m.is_empty());
        g
    }
}

/// Fisher-Yates.
pub fn shuffle<T>(v: &mut [T], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        v.swap(i, rng.below(i + 1));
    }
}

/// Which loss a run trains with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Objective {
    /// The contrastive loss over every pair of each mini-batch
    /// ([`ContrastiveLoss::in_batch_with_grad`]).
    Contrastive(ContrastiveLoss),
    /// The batch-hard triplet loss (for each anchor, its farthest positive and nearest
    /// negative in the mini-batch).
    TripletBatchHard(BatchHardTripletLoss),
    /// The supervised contrastive loss (a softmax over the cosine similarities of every
    /// other row of the mini-batch, divided by a temperature, [`SupConLoss::forward_with_grad`]).
    SupCon(SupConLoss),
}

impl Objective {
    /// A short name for tables and legends.
    pub fn name(&self) -> &'static str {
        match self {
            Objective::Contrastive(_) => "contrastive",
            Objective::TripletBatchHard(_) => "triplet (batch-hard)",
            Objective::SupCon(_) => "SupCon",
        }
    }
}

/// The settings of a training run.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// The network.
    pub shape: Shape,
    /// The loss.
    pub objective: Objective,
    /// The optimiser.
    pub sgd: Sgd,
    /// Classes per mini-batch.
    pub classes_per_batch: usize,
    /// Images per class in a mini-batch.
    pub per_class: usize,
    /// Passes over the training set (in mini-batches of `classes_per_batch × per_class`).
    pub epochs: usize,
    /// The seed of the initialisation and of the batches.
    pub seed: u64,
    /// Shift each training image by a random −1, 0 or +1 pixel in each direction.
    pub augment: bool,
}

/// The network of the example, 64 → 64 → 16 with ReLU.
pub const SHAPE: Shape = Shape {
    input: PIXELS,
    hidden: 64,
    output: 16,
};

impl Config {
    /// The settings of the example for `objective`: SGD with momentum 0.9, batches of
    /// 5 classes × 8 images, 30 epochs. Shifted copies of the images (augmentation) for
    /// the contrastive and SupCon losses, not the triplet loss: with them, the batch-hard
    /// triplet loss at this learning rate collapsed every embedding onto one point (loss
    /// stuck at the margin).
    pub fn example(objective: Objective) -> Config {
        Config {
            shape: SHAPE,
            objective,
            sgd: Sgd {
                learning_rate: 0.05,
                momentum: 0.9,
                weight_decay: 1e-4,
            },
            classes_per_batch: 5,
            per_class: 8,
            epochs: 30,
            seed: 7,
            augment: !matches!(objective, Objective::TripletBatchHard(_)),
        }
    }
}

/// What a training run produced.
#[derive(Clone, Debug)]
pub struct Trained {
    /// The parameters after training.
    pub params: Vec<f32>,
    /// The mean training loss of each epoch.
    pub epoch_loss: Vec<f32>,
    /// The wall time of the training (without evaluation).
    pub time: Duration,
}

/// Random initial parameters for `shape` from `seed`.
pub fn initial_params(shape: &Shape, seed: u64) -> Vec<f32> {
    let mut params = vec![0.0; shape.param_len()];
    net::init(shape, &mut params, &mut Rng::new(seed));
    params
}

/// Trains on `train` from [`initial_params`]`(config.seed)`, calling `progress` after
/// each epoch with its number, its mean loss, the time so far (the time spent in
/// `progress` excluded) and the parameters.
///
/// # Errors
/// Any error of the loss (none is expected for valid settings).
pub fn train(
    config: &Config,
    train: &Digits,
    mut progress: impl FnMut(usize, f32, Duration, &[f32]),
) -> Result<Trained, Error> {
    let start = Instant::now();
    let mut outside = Duration::ZERO;
    let shape = config.shape;
    let mut params = initial_params(&shape, config.seed);
    let mut rng = Rng::new(config.seed ^ 0x5eed);
    let (mut grads, mut velocity) = (vec![0.0; params.len()], vec![0.0; params.len()]);
    let groups = train.groups();
    let n = config.classes_per_batch.min(groups.len()) * config.per_class;
    let (mut x, mut classes) = (vec![0.0f32; n * shape.input], vec![0u32; n]);
    let mut scratch = Vec::new();
    let mut hidden = vec![0.0f32; n * shape.hidden];
    let mut d_hidden = vec![0.0f32; n * shape.hidden];
    let (mut emb, mut d_emb) = (
        vec![0.0f32; n * shape.output],
        vec![0.0f32; n * shape.output],
    );
    let steps = train.len().div_ceil(n).max(1);
    let mut order: Vec<usize> = (0..groups.len()).collect();
    let mut epoch_loss = Vec::with_capacity(config.epochs);
    for epoch in 0..config.epochs {
        let mut sum = 0.0f64;
        for _ in 0..steps {
            // A batch: `classes_per_batch` random classes, `per_class` random images each.
            shuffle(&mut order, &mut rng);
            for (slot, &g) in order.iter().take(config.classes_per_batch).enumerate() {
                for k in 0..config.per_class {
                    let row = slot * config.per_class + k;
                    let i = groups[g][rng.below(groups[g].len())] as usize;
                    let dst = &mut x[row * shape.input..(row + 1) * shape.input];
                    if config.augment {
                        let (dx, dy) = (rng.below(3) as isize - 1, rng.below(3) as isize - 1);
                        shift(&train.pixels[i * PIXELS..(i + 1) * PIXELS], dx, dy, dst);
                    } else {
                        dst.iter_mut()
                            .zip(train.features(i))
                            .for_each(|(d, s)| *d = s);
                    }
                    classes[row] = u32::from(train.classes[i]);
                }
            }
            net::forward(&shape, &params, &x, &mut hidden, &mut emb);
            let loss = match config.objective {
                Objective::Contrastive(loss) => {
                    scratch.resize(loss.scratch_len(n, shape.output), 0.0);
                    loss.in_batch_with_grad(&emb, shape.output, &classes, &mut d_emb, &mut scratch)?
                }
                Objective::TripletBatchHard(loss) => {
                    scratch.resize(loss.scratch_len(n, shape.output), 0.0);
                    loss.batch_with_grad(&emb, shape.output, &classes, &mut d_emb, &mut scratch)?
                }
                Objective::SupCon(loss) => {
                    scratch.resize(loss.scratch_len(n, shape.output), 0.0);
                    loss.forward_with_grad(&emb, shape.output, &classes, &mut d_emb, &mut scratch)?
                }
            };
            sum += f64::from(loss);
            net::backward(
                &shape,
                &params,
                &x,
                &hidden,
                &d_emb,
                &mut grads,
                &mut d_hidden,
            );
            config.sgd.step(&mut params, &grads, &mut velocity);
        }
        let mean = (sum / steps as f64) as f32;
        epoch_loss.push(mean);
        let now = Instant::now();
        progress(epoch + 1, mean, now - start - outside, &params);
        outside += now.elapsed();
    }
    Ok(Trained {
        params,
        epoch_loss,
        time: start.elapsed() - outside,
    })
}

/// Image `pixels` (8×8) moved by `dx` columns and `dy` rows, zeros shifted in, scaled to
/// `[0, 1]`, into `out`.
pub fn shift(pixels: &[u8], dx: isize, dy: isize, out: &mut [f32]) {
    for r in 0..8isize {
        for c in 0..8isize {
            let (sr, sc) = (r - dy, c - dx);
            out[(r * 8 + c) as usize] = if (0..8).contains(&sr) && (0..8).contains(&sc) {
                f32::from(pixels[(sr * 8 + sc) as usize]) / PIXEL_MAX
            } else {
                0.0
            };
        }
    }
}

/// The embeddings of every image of `data` (`len × shape.output`).
pub fn embed(shape: &Shape, params: &[f32], data: &Digits) -> Vec<f32> {
    let x = data.feature_matrix();
    let mut hidden = vec![0.0; data.len() * shape.hidden];
    let mut out = vec![0.0; data.len() * shape.output];
    net::forward(shape, params, &x, &mut hidden, &mut out);
    out
}

/// The hidden-layer activations (after ReLU) of every image of `data`
/// (`len × shape.hidden`).
pub fn embed_hidden(shape: &Shape, params: &[f32], data: &Digits) -> Vec<f32> {
    let x = data.feature_matrix();
    let mut hidden = vec![0.0; data.len() * shape.hidden];
    let mut out = vec![0.0; data.len() * shape.output];
    net::forward(shape, params, &x, &mut hidden, &mut out);
    hidden
}

/// Each row of `x` (`dim` floats) scaled to unit Euclidean length (zero rows stay zero).
pub fn normalize_rows(mut x: Vec<f32>, dim: usize) -> Vec<f32> {
    for r in x.chunks_exact_mut(dim) {
        let norm = r.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            r.iter_mut().for_each(|v| *v /= norm);
        }
    }
    x
}

/// Mean accuracy and the half-width of its 95 % interval (1.96 standard errors over the
/// episodes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Accuracy {
    /// The mean accuracy over episodes, in `[0, 1]`.
    pub mean: f64,
    /// 1.96 × the standard error of the mean.
    pub ci95: f64,
}

/// `episodes` random `groups.len()`-way `shots`-shot episodes with `queries` queries per
/// class on the embeddings `emb` (`dim` floats per row), by nearest prototype. The
/// episodes depend on `seed` only, so two embeddings of the same images see the same
/// episodes.
///
/// # Errors
/// Those of [`net::prototype_episode`].
pub fn few_shot(
    emb: &[f32],
    dim: usize,
    groups: &[Vec<u16>],
    shots: usize,
    queries: usize,
    episodes: usize,
    seed: u64,
) -> Result<Accuracy, Error> {
    let groups: Vec<&[u16]> = groups.iter().map(|g| g.as_slice()).collect();
    let mut rng = Rng::new(seed);
    let mut protos = vec![0.0; groups.len() * dim];
    let per_episode = (groups.len() * queries) as f64;
    let accs: Vec<f64> = (0..episodes)
        .map(|_| {
            net::prototype_episode(&mut rng, emb, dim, &groups, shots, queries, &mut protos)
                .map(|c| c as f64 / per_episode)
        })
        .collect::<Result<_, _>>()?;
    Ok(mean_ci95(&accs))
}

/// Mean and 1.96 standard errors.
pub fn mean_ci95(xs: &[f64]) -> Accuracy {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    Accuracy {
        mean,
        ci95: 1.96 * (var / n).sqrt(),
    }
}

/// 1-nearest-neighbour accuracy (Euclidean) of `query` rows against `reference` rows.
///
/// # Errors
/// Those of [`contrastive::squared_euclidean`] (none for rows of equal length).
pub fn nearest_neighbour_accuracy(
    reference: &[f32],
    reference_classes: &[u8],
    query: &[f32],
    query_classes: &[u8],
    dim: usize,
) -> Result<f64, Error> {
    let mut correct = 0usize;
    for (q, &qc) in query.chunks_exact(dim).zip(query_classes) {
        let mut best = (f32::INFINITY, u8::MAX);
        for (r, &rc) in reference.chunks_exact(dim).zip(reference_classes) {
            let d = contrastive::squared_euclidean(q, r)?;
            if d < best.0 {
                best = (d, rc);
            }
        }
        correct += usize::from(best.1 == qc);
    }
    Ok(correct as f64 / query_classes.len() as f64)
}

/// The projections of the rows of `x` (`dim` floats each) on their first two principal
/// components (power iteration on the covariance, in f64).
pub fn pca2(x: &[f32], dim: usize) -> Vec<[f64; 2]> {
    let n = x.len() / dim;
    let mut mean = vec![0.0f64; dim];
    for r in x.chunks_exact(dim) {
        mean.iter_mut()
            .zip(r)
            .for_each(|(m, &v)| *m += f64::from(v));
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut cov = vec![0.0f64; dim * dim];
    for r in x.chunks_exact(dim) {
        for i in 0..dim {
            let ci = f64::from(r[i]) - mean[i];
            for j in 0..dim {
                cov[i * dim + j] += ci * (f64::from(r[j]) - mean[j]);
            }
        }
    }
    let mut components: Vec<Vec<f64>> = Vec::new();
    for k in 0..2 {
        let mut v: Vec<f64> = (0..dim).map(|i| 1.0 + (i * (k + 3) % 7) as f64).collect();
        for _ in 0..500 {
            let mut w: Vec<f64> = (0..dim)
                .map(|i| (0..dim).map(|j| cov[i * dim + j] * v[j]).sum())
                .collect();
            for c in &components {
                let p: f64 = w.iter().zip(c).map(|(a, b)| a * b).sum();
                w.iter_mut().zip(c).for_each(|(a, b)| *a -= p * b);
            }
            let norm = w.iter().map(|a| a * a).sum::<f64>().sqrt();
            if norm == 0.0 {
                break;
            }
            v = w.iter().map(|a| a / norm).collect();
        }
        components.push(v);
    }
    x.chunks_exact(dim)
        .map(|r| {
            let p = |c: &Vec<f64>| {
                r.iter()
                    .zip(c)
                    .zip(&mean)
                    .map(|((&v, c), m)| (f64::from(v) - m) * c)
                    .sum::<f64>()
            };
            [p(&components[0]), p(&components[1])]
        })
        .collect()
}
