//! The training step, `no_std` and allocation-free: a small embedding network (dense
//! layers, ReLU), SGD with momentum, the contrastive loss over every pair of a mini-batch,
//! a batch-hard triplet loss, and few-shot evaluation by nearest prototype.
//!
//! Everything works on caller-provided slices, so that the same code runs in the desktop
//! example (buffers in `Vec`s) and in the Cortex-M firmware (buffers in statics): this file
//! uses `core` and `contrastive` only.

use contrastive::Error;

/// Pixels are integers in `0..=16`; the network sees them divided by 16.
pub const PIXEL_MAX: f32 = 16.0;
/// Pixels per image (8×8).
pub const PIXELS: usize = 64;

/// The layer sizes of an embedding network `input → hidden → output` (ReLU after the hidden
/// layer), or a linear map `input → output` when `hidden == 0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Input features.
    pub input: usize,
    /// Hidden units (0: no hidden layer).
    pub hidden: usize,
    /// Embedding dimension.
    pub output: usize,
}

impl Shape {
    /// The number of parameters: weights then biases of each layer, in one flat slice.
    pub const fn param_len(&self) -> usize {
        if self.hidden == 0 {
            self.input * self.output + self.output
        } else {
            self.input * self.hidden + self.hidden + self.hidden * self.output + self.output
        }
    }

    /// The inputs of the last layer: `hidden`, or `input` for a linear map.
    const fn last_in(&self) -> usize {
        if self.hidden == 0 {
            self.input
        } else {
            self.hidden
        }
    }

    /// Splits the parameters (or gradients) into `(w1, b1, w2, b2)`; `w1`, `b1` are empty
    /// for a linear map. Weights are row-major `[out][in]`.
    pub fn split<'a>(&self, p: &'a [f32]) -> (&'a [f32], &'a [f32], &'a [f32], &'a [f32]) {
        let (first, last) = p.split_at(p.len() - (self.last_in() * self.output + self.output));
        let (w1, b1) = first.split_at(first.len() - self.hidden);
        let (w2, b2) = last.split_at(self.last_in() * self.output);
        (w1, b1, w2, b2)
    }

    /// [`split`](Self::split), mutable.
    pub fn split_mut<'a>(
        &self,
        p: &'a mut [f32],
    ) -> (&'a mut [f32], &'a mut [f32], &'a mut [f32], &'a mut [f32]) {
        let tail = self.last_in() * self.output + self.output;
        let at = p.len() - tail;
        let (first, last) = p.split_at_mut(at);
        let hidden = self.hidden;
        let (w1, b1) = first.split_at_mut(first.len() - hidden);
        let (w2, b2) = last.split_at_mut(self.last_in() * self.output);
        (w1, b1, w2, b2)
    }
}

/// A small deterministic generator (SplitMix64): the same sequence on every target.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub const fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; the modulo bias is below 2⁻³² for the sizes used here).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `[-1, 1)`.
    pub fn symmetric(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 23) as f32) - 1.0
    }
}

/// `√x` for `x ≥ 0` by Newton's method (for initialisation scales: no libm needed).
pub fn sqrt(x: f32) -> f32 {
    if x <= 0.0 {
        return 0.0;
    }
    let mut r = if x > 1.0 { x } else { 1.0 };
    for _ in 0..40 {
        r = 0.5 * (r + x / r);
    }
    r
}

/// He-uniform weights (`±√(6 / fan_in)`) and zero biases.
pub fn init(shape: &Shape, params: &mut [f32], rng: &mut Rng) {
    let (w1, b1, w2, b2) = shape.split_mut(params);
    let a1 = sqrt(6.0 / shape.input as f32);
    w1.iter_mut().for_each(|w| *w = a1 * rng.symmetric());
    b1.fill(0.0);
    // The last layer has no ReLU after it: Glorot-like scale.
    let a2 = sqrt(3.0 / shape.last_in() as f32);
    w2.iter_mut().for_each(|w| *w = a2 * rng.symmetric());
    b2.fill(0.0);
}

/// `y = x·Wᵀ + b` for `rows` rows: `x` is `rows × n_in`, `w` is `n_out × n_in`, `y` is
/// `rows × n_out`.
pub fn dense_forward(w: &[f32], b: &[f32], x: &[f32], n_in: usize, y: &mut [f32]) {
    let n_out = b.len();
    for (xr, yr) in x.chunks_exact(n_in).zip(y.chunks_exact_mut(n_out)) {
        for ((yo, wo), bo) in yr.iter_mut().zip(w.chunks_exact(n_in)).zip(b) {
            let mut s = *bo;
            for (wi, xi) in wo.iter().zip(xr) {
                s += wi * xi;
            }
            *yo = s;
        }
    }
}

/// The backward pass of [`dense_forward`]: adds `dyᵀ·x` to `dw` and the column sums of
/// `dy` to `db`, and writes `dx = dy·W` if asked.
pub fn dense_backward(
    w: &[f32],
    x: &[f32],
    dy: &[f32],
    n_in: usize,
    dw: &mut [f32],
    db: &mut [f32],
    mut dx: Option<&mut [f32]>,
) {
    let n_out = db.len();
    for (r, (xr, dyr)) in x.chunks_exact(n_in).zip(dy.chunks_exact(n_out)).enumerate() {
        for ((dwo, dbo), g) in dw.chunks_exact_mut(n_in).zip(db.iter_mut()).zip(dyr) {
            *dbo += g;
            for (d, xi) in dwo.iter_mut().zip(xr) {
                *d += g * xi;
            }
        }
        if let Some(dx) = dx.as_deref_mut() {
            let dxr = &mut dx[r * n_in..(r + 1) * n_in];
            dxr.fill(0.0);
            for (wo, g) in w.chunks_exact(n_in).zip(dyr) {
                for (d, wi) in dxr.iter_mut().zip(wo) {
                    *d += g * wi;
                }
            }
        }
    }
}

/// The forward pass of `rows` inputs `x` (`rows × input`): the hidden activations after
/// ReLU go to `hidden` (`rows × shape.hidden`, kept for the backward pass), the
/// embeddings to `out` (`rows × output`).
pub fn forward(shape: &Shape, params: &[f32], x: &[f32], hidden: &mut [f32], out: &mut [f32]) {
    let (w1, b1, w2, b2) = shape.split(params);
    if shape.hidden == 0 {
        dense_forward(w2, b2, x, shape.input, out);
        return;
    }
    dense_forward(w1, b1, x, shape.input, hidden);
    hidden.iter_mut().for_each(|h| *h = h.max(0.0));
    dense_forward(w2, b2, hidden, shape.hidden, out);
}

/// The backward pass: writes the gradient of the loss with respect to the parameters into
/// `grads` (overwritten), given `d_out`, its gradient with respect to the embeddings.
/// `x` and `hidden` are those of [`forward`]; `d_hidden` is scratch of the size of `hidden`.
pub fn backward(
    shape: &Shape,
    params: &[f32],
    x: &[f32],
    hidden: &[f32],
    d_out: &[f32],
    grads: &mut [f32],
    d_hidden: &mut [f32],
) {
    grads.fill(0.0);
    let (_, _, w2, _) = shape.split(params);
    let (gw1, gb1, gw2, gb2) = shape.split_mut(grads);
    if shape.hidden == 0 {
        dense_backward(w2, x, d_out, shape.input, gw2, gb2, None);
        return;
    }
    dense_backward(w2, hidden, d_out, shape.hidden, gw2, gb2, Some(d_hidden));
    for (d, h) in d_hidden.iter_mut().zip(hidden) {
        if *h <= 0.0 {
            *d = 0.0;
        }
    }
    let (w1, _, _, _) = shape.split(params);
    dense_backward(w1, x, d_hidden, shape.input, gw1, gb1, None);
}

/// Stochastic gradient descent with momentum and decoupled weight decay.
#[derive(Clone, Copy, Debug)]
pub struct Sgd {
    /// Step size.
    pub learning_rate: f32,
    /// Momentum (0: plain SGD).
    pub momentum: f32,
    /// Weight decay per step, applied to every parameter.
    pub weight_decay: f32,
}

impl Sgd {
    /// `v ← μ·v + g;  p ← p − η·(v + λ·p)`.
    pub fn step(&self, params: &mut [f32], grads: &[f32], velocity: &mut [f32]) {
        for ((p, g), v) in params.iter_mut().zip(grads).zip(velocity.iter_mut()) {
            *v = self.momentum * *v + g;
            *p -= self.learning_rate * (*v + self.weight_decay * *p);
        }
    }
}

fn same_len(argument: &'static str, expected: usize, found: usize) -> Result<(), Error> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            argument,
            expected,
            found,
        })
    }
}

/// The most ways and the most images per class of a [`prototype_episode`].
pub const EPISODE_MAX_WAYS: usize = 10;
/// The most support plus query images per class of a [`prototype_episode`].
pub const EPISODE_MAX_PER_CLASS: usize = 32;

/// Picks `count` distinct members of `members` (`count ≤ EPISODE_MAX_PER_CLASS`,
/// `count ≤ members.len()`) into `out`.
fn pick_distinct(rng: &mut Rng, members: &[u16], out: &mut [u16]) {
    let mut chosen = 0;
    while chosen < out.len() {
        let m = members[rng.below(members.len())];
        if !out[..chosen].contains(&m) {
            out[chosen] = m;
            chosen += 1;
        }
    }
}

/// One N-way K-shot episode by nearest prototype: for each class (`groups[c]` lists the
/// rows of `emb` in class `c`), `shots` random support rows whose mean is the class's
/// prototype and `queries` other rows, each classified by its nearest prototype
/// (Euclidean). Returns the number of queries classified right (out of
/// `groups.len() × queries`).
///
/// # Errors
/// [`Error::LengthMismatch`] if there are more than [`EPISODE_MAX_WAYS`] groups, more than
/// [`EPISODE_MAX_PER_CLASS`] images per class, a group smaller than `shots + queries`, or
/// `prototypes` is not `groups.len() × dim`.
pub fn prototype_episode(
    rng: &mut Rng,
    emb: &[f32],
    dim: usize,
    groups: &[&[u16]],
    shots: usize,
    queries: usize,
    prototypes: &mut [f32],
) -> Result<usize, Error> {
    let ways = groups.len();
    let per_class = shots + queries;
    if ways > EPISODE_MAX_WAYS {
        return Err(Error::LengthMismatch {
            argument: "groups",
            expected: EPISODE_MAX_WAYS,
            found: ways,
        });
    }
    if per_class > EPISODE_MAX_PER_CLASS || shots == 0 {
        return Err(Error::LengthMismatch {
            argument: "shots + queries",
            expected: EPISODE_MAX_PER_CLASS,
            found: per_class,
        });
    }
    same_len("prototypes", ways * dim, prototypes.len())?;
    let mut picked = [[0u16; EPISODE_MAX_PER_CLASS]; EPISODE_MAX_WAYS];
    for (g, p) in groups.iter().zip(picked.iter_mut()) {
        if g.len() < per_class {
            return Err(Error::LengthMismatch {
                argument: "groups",
                expected: per_class,
                found: g.len(),
            });
        }
        pick_distinct(rng, g, &mut p[..per_class]);
    }
    prototypes.fill(0.0);
    for (p, proto) in picked.iter().zip(prototypes.chunks_exact_mut(dim)) {
        for &s in &p[..shots] {
            let r = &emb[s as usize * dim..(s as usize + 1) * dim];
            proto.iter_mut().zip(r).for_each(|(a, x)| *a += x);
        }
        proto.iter_mut().for_each(|a| *a /= shots as f32);
    }
    let mut correct = 0;
    for (class, p) in picked.iter().enumerate().take(ways) {
        for &q in &p[shots..per_class] {
            let r = &emb[q as usize * dim..(q as usize + 1) * dim];
            let mut best = (f32::INFINITY, usize::MAX);
            for (c, proto) in prototypes.chunks_exact(dim).enumerate() {
                let d = contrastive::squared_euclidean(r, proto)?;
                if d < best.0 {
                    best = (d, c);
                }
            }
            correct += usize::from(best.1 == class);
        }
    }
    Ok(correct)
}
