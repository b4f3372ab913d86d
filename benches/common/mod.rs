//! What the three benches share: criterion's settings, 64-byte aligned inputs, the batch
//! shapes, and the roofline kernels ([`roofline`]).
//!
//! Each bench uses a subset of this module.
#![allow(dead_code)]

pub mod roofline;

use std::time::{Duration, Instant};

use criterion::Criterion;

/// Short runs, so that the three benches take a few minutes on a 2-core machine. The
/// command line overrides these (`--warm-up-time`, `--measurement-time`, `--sample-size`),
/// which is how `scripts/bench_summary.py --quick` shortens them further.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(800))
        .sample_size(20)
        .without_plots()
}

/// The embedding dimensions of the batch benches: the seed document's tiny rows up to a
/// transformer embedding.
pub const BATCH_DIMS: [usize; 5] = [2, 3, 16, 128, 768];

/// One side of the in-cache batch: 64 KiB, so that `a`, `b` and both gradients stay in L2.
pub const IN_CACHE_BYTES: usize = 64 << 10;
/// One side of the out-of-cache batch: 64 MiB, twice this machine's L3.
pub const OUT_OF_CACHE_BYTES: usize = 64 << 20;

/// A batch size that fits in cache and one that does not.
#[derive(Clone, Copy, Debug)]
pub enum Footprint {
    InCache,
    OutOfCache,
}

impl Footprint {
    pub const ALL: [Footprint; 2] = [Footprint::InCache, Footprint::OutOfCache];

    /// The criterion group name suffix (`target/criterion/<bench>_<suffix>/...`).
    pub fn suffix(self) -> &'static str {
        match self {
            Footprint::InCache => "in_cache",
            Footprint::OutOfCache => "out_of_cache",
        }
    }

    /// Rows of `dim` floats that fill one side.
    pub fn rows(self, dim: usize) -> usize {
        let bytes = match self {
            Footprint::InCache => IN_CACHE_BYTES,
            Footprint::OutOfCache => OUT_OF_CACHE_BYTES,
        };
        bytes / 4 / dim
    }
}

/// A heap buffer of `f32` whose start is 64-byte aligned, so that every backend and peer
/// sees the same alignment from run to run (the system allocator hands large blocks out
/// 16 bytes past a page boundary), and so that the streaming-store roofline may use
/// aligned stores.
pub struct AlignedBuf {
    blocks: Vec<Block>,
    len: usize,
}

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Block([f32; 16]);

impl AlignedBuf {
    pub fn zeroed(len: usize) -> Self {
        AlignedBuf {
            blocks: vec![Block([0.0; 16]); len.div_ceil(16)],
            len,
        }
    }

    /// `len` floats uniform in `[-1, 1)`, a different sequence for each `seed`.
    pub fn random(len: usize, seed: u64) -> Self {
        let mut buf = Self::zeroed(len);
        let mut rng = SplitMix64(seed);
        for x in buf.as_mut_slice() {
            *x = rng.next_unit() * 2.0 - 1.0;
        }
        buf
    }

    pub fn as_slice(&self) -> &[f32] {
        // SAFETY: `blocks` holds `16 * blocks.len() >= len` initialized f32 (a `Block` is
        // `repr(C)` over `[f32; 16]`, with no padding since 64 = 16·4), borrowed for the
        // lifetime of `&self`.
        unsafe { std::slice::from_raw_parts(self.blocks.as_ptr().cast::<f32>(), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        // SAFETY: as in `as_slice`, and `&mut self` makes this the only borrow.
        unsafe { std::slice::from_raw_parts_mut(self.blocks.as_mut_ptr().cast::<f32>(), self.len) }
    }
}

/// Labels alternating similar (1) and dissimilar (0), so that both terms of the loss and
/// both branches of the gradient run.
pub fn labels(rows: usize) -> AlignedBuf {
    let mut buf = AlignedBuf::zeroed(rows);
    for (i, y) in buf.as_mut_slice().iter_mut().enumerate() {
        *y = if i % 2 == 0 { 1.0 } else { 0.0 };
    }
    buf
}

/// A margin near the typical distance of two rows uniform in `[-1, 1)^dim`
/// (`E[D²] = 2·dim/3`), so that about half the dissimilar pairs are inside it and have a
/// non-zero gradient.
pub fn margin(dim: usize) -> f32 {
    (2.0 * dim as f32 / 3.0).sqrt()
}

/// A tiny deterministic generator (Steele, Lea & Flood's SplitMix64): the benches need
/// reproducible inputs, not statistical quality.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 24 random bits.
    fn next_unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }
}

/// One batch of `rows` pairs of `dim` floats, with its labels.
pub struct Batch {
    pub dim: usize,
    pub rows: usize,
    pub a: AlignedBuf,
    pub b: AlignedBuf,
    pub labels: AlignedBuf,
}

impl Batch {
    pub fn new(footprint: Footprint, dim: usize) -> Self {
        let rows = footprint.rows(dim);
        Batch {
            dim,
            rows,
            a: AlignedBuf::random(rows * dim, 1),
            b: AlignedBuf::random(rows * dim, 2),
            labels: labels(rows),
        }
    }

    /// Bytes a forward pass reads: both sides and the labels.
    pub fn forward_bytes(&self) -> u64 {
        ((2 * self.rows * self.dim + self.rows) * size_of::<f32>()) as u64
    }

    /// Bytes a forward pass with gradient moves: it reads both sides and the labels, and
    /// writes two gradients as large as a side.
    pub fn gradient_bytes(&self) -> u64 {
        ((4 * self.rows * self.dim + self.rows) * size_of::<f32>()) as u64
    }
}

/// Seconds taken by `f`.
pub fn seconds(f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64()
}

/// `times[k][r]`: the time of kernel `k` in round `r`, every kernel running once per
/// round, in turn. The turn starts one kernel later each round. Each kernel runs twice
/// in its turn and the second run is timed: out of cache, a kernel with ordinary stores
/// leaves up to a last-level cache of dirty lines whose write-back the next kernel's
/// reads pay for. Timed right after itself, every kernel pays for its own, as it would
/// in a loop (and as in criterion's iterations), never for another's.
pub fn rounds_of(rounds: usize, kernels: &mut [&mut dyn FnMut()]) -> Vec<Vec<f64>> {
    let count = kernels.len();
    let mut times = vec![Vec::with_capacity(rounds); count];
    for round in 0..rounds {
        for turn in 0..count {
            let k = (round + turn) % count;
            kernels[k]();
            times[k].push(seconds(&mut kernels[k]));
        }
    }
    times
}
