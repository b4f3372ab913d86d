//! Batch-hard mining on the symmetric tile walk: each unordered pair's distance is
//! computed once ([`pairwise::symmetric`]) and updates the hardest positive and negative
//! of both its rows, kept per anchor in `4·N` floats of scratch. Half the distance work of
//! a row of `N` distances per anchor, and no row of `N` distances is ever formed.
//!
//! Ties go to the lowest index whatever order the walk hands the pairs in: each candidate
//! is a 64-bit key, the distance's bits (which order as the distance, for `d ≥ 0`) above
//! the index (complemented for the positives, whose hardest is the largest key), and the
//! kept key is the largest (positives) or smallest (negatives) seen.

#![forbid(unsafe_code)]

use crate::kernels::tile::TileKernels;
use crate::numerics::all_positive_normal;
use crate::pairwise::{self, MAX_SIDE, Tile};

/// Floats of per-anchor state: the hardest positive's key and the hardest negative's (see
/// [`positive_key`], [`negative_key`]), each a `u64` in two floats' bits.
pub(super) const STATE: usize = 4;

/// The largest index the keys hold (no row has it: the walk is only taken below it).
const NONE: u32 = u32::MAX;

/// A positive candidate at distance `d ≥ 0` and row `at`: keys order as "harder, or as hard
/// with a lower index" (the distance's bits order as the distance for `d ≥ 0`). 0 is below
/// every candidate's key.
#[inline(always)]
fn positive_key(d: f32, at: u32) -> u64 {
    (u64::from((d + 0.0).to_bits()) << 32) | u64::from(!at)
}

/// A negative candidate: the smaller key is the harder one, or as hard with a lower index.
/// `u64::MAX` is above every candidate's key.
#[inline(always)]
fn negative_key(d: f32, at: u32) -> u64 {
    (u64::from((d + 0.0).to_bits()) << 32) | u64::from(at)
}

#[inline(always)]
fn load(k: &[f32; 2]) -> u64 {
    (u64::from(k[0].to_bits()) << 32) | u64::from(k[1].to_bits())
}

#[inline(always)]
fn store(k: &mut [f32; 2], v: u64) {
    *k = [f32::from_bits((v >> 32) as u32), f32::from_bits(v as u32)];
}

/// The hardest positive and negative of every anchor, from one symmetric walk.
pub(super) struct Hardest<'s> {
    positive: &'s [[f32; 2]],
    negative: &'s [[f32; 2]],
}

/// Whether the walk can run on `rows` rows with `scratch` floats (the state, then at least
/// the walk's smallest tiles); otherwise the caller computes rows of distances per anchor.
pub(super) fn fits(rows: usize, scratch: usize) -> bool {
    rows < NONE as usize
        && scratch
            .checked_sub(STATE * rows)
            .is_some_and(|rest| pairwise::side_of_scratch(rest) > 0)
}

/// Walks every unordered pair of `xs` (N×dim, finite) once. The distance is Euclidean, or
/// with `zero` (a flag per row, nonzero for a zero row) the cosine distance
/// `min(2, s/2)` of the normalised rows `xs` (1 against a zero row). `scratch` holds
/// [`fits`]'s floats.
pub(super) fn walk<'s>(
    tiles: &TileKernels,
    xs: &[f32],
    dim: usize,
    classes: &[u32],
    zero: Option<&[f32]>,
    scratch: &'s mut [f32],
) -> Hardest<'s> {
    let rows = classes.len();
    let (state, rest) = scratch.split_at_mut(STATE * rows);
    let (positive, negative) = state.split_at_mut(2 * rows);
    let positive = positive.as_chunks_mut::<2>().0;
    let negative = negative.as_chunks_mut::<2>().0;
    positive.iter_mut().for_each(|k| store(k, 0));
    negative.iter_mut().for_each(|k| store(k, u64::MAX));
    let mut d = [0.0f32; MAX_SIDE];
    pairwise::symmetric(tiles, xs, dim, rest, None, |t: &mut Tile| {
        for i in t.rows.clone() {
            let cols = t.pair_columns(i);
            if cols.is_empty() {
                continue;
            }
            let d = &mut d[..cols.len()];
            distances(t, i, cols.start, zero, d);
            let class = classes[i];
            let at = i as u32;
            // Row i as the anchor of its columns, and each column as the anchor of row i:
            // straight-line selects on integer keys, so that the loop runs as vector code.
            let (mut p, mut n) = (0u64, u64::MAX);
            let lanes = positive[cols.clone()]
                .iter_mut()
                .zip(&mut negative[cols.clone()])
                .zip(d.iter().zip(&classes[cols.clone()]));
            for (j, ((pk, nk), (&dk, &c))) in (cols.start as u32..).zip(lanes) {
                let same = c == class;
                let (pj, nj) = (positive_key(dk, j), negative_key(dk, j));
                p = p.max(if same { pj } else { 0 });
                n = n.min(if same { u64::MAX } else { nj });
                let (pi, ni) = (positive_key(dk, at), negative_key(dk, at));
                store(pk, load(pk).max(if same { pi } else { 0 }));
                store(nk, load(nk).min(if same { u64::MAX } else { ni }));
            }
            let (kp, kn) = (load(&positive[i]).max(p), load(&negative[i]).min(n));
            store(&mut positive[i], kp);
            store(&mut negative[i], kn);
        }
    });
    Hardest { positive, negative }
}

/// The distances of row `i` to columns `first..first + d.len()` of the tile.
#[inline]
fn distances(t: &Tile, i: usize, first: usize, zero: Option<&[f32]>, d: &mut [f32]) {
    let off = first - t.cols.start;
    let s = &t.squared_row(i)[off..off + d.len()];
    match zero {
        Some(zero) => {
            for ((v, &s), &z) in d.iter_mut().zip(s).zip(&zero[first..]) {
                // A zero row has cosine 0 with anything.
                *v = if zero[i] != 0.0 || z != 0.0 {
                    1.0
                } else {
                    (s * 0.5).min(2.0)
                };
            }
        }
        None if all_positive_normal(s) => {
            for (v, &s) in d.iter_mut().zip(s) {
                *v = crate::numerics::sqrt(s);
            }
        }
        None => {
            for (k, v) in d.iter_mut().enumerate() {
                *v = t.distance(i, first + k);
            }
        }
    }
}

impl Hardest<'_> {
    /// Anchor `i`'s hardest positive `(index, distance)`, if it has a positive.
    pub(super) fn positive(&self, i: usize) -> Option<(usize, f32)> {
        let k = load(&self.positive[i]);
        (k != 0).then(|| ((!(k as u32)) as usize, f32::from_bits((k >> 32) as u32)))
    }

    /// Anchor `i`'s hardest negative `(index, distance)`, if it has a negative.
    pub(super) fn negative(&self, i: usize) -> Option<(usize, f32)> {
        let k = load(&self.negative[i]);
        (k != u64::MAX).then(|| (k as u32 as usize, f32::from_bits((k >> 32) as u32)))
    }
}
