//! Batch-hard mining on the symmetric tile walk: each unordered pair's distance is
//! computed once ([`pairwise::symmetric`]) and updates the hardest positive and negative
//! of both its rows, kept per anchor in `4·N` floats of scratch. Half the distance work of
//! a row of `N` distances per anchor, and no row of `N` distances is ever formed.
//!
//! Ties go to the lowest index whatever order the walk hands the pairs in: a candidate
//! replaces the kept one when it is strictly harder, or equally hard with a lower index.

#![forbid(unsafe_code)]

use crate::kernels::tile::TileKernels;
use crate::numerics::all_positive_normal;
use crate::pairwise::{self, MAX_SIDE, Tile};

/// Floats of per-anchor state: hardest positive's distance and index, hardest negative's
/// distance and index (indices stored as the bits of a `u32`).
pub(super) const STATE: usize = 4;

/// The index meaning "none yet" (no row has it: the walk is only taken below it).
const NONE: u32 = u32::MAX;

/// The hardest positive and negative of every anchor, from one symmetric walk.
pub(super) struct Hardest<'s> {
    positive: &'s [f32],
    positive_at: &'s [f32],
    negative: &'s [f32],
    negative_at: &'s [f32],
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
    let (positive, state) = state.split_at_mut(rows);
    let (positive_at, state) = state.split_at_mut(rows);
    let (negative, negative_at) = state.split_at_mut(rows);
    // Distances are ≥ 0: −1 loses to any positive, ∞ with index NONE to any negative.
    positive.fill(-1.0);
    negative.fill(f32::INFINITY);
    positive_at.fill(f32::from_bits(NONE));
    negative_at.fill(f32::from_bits(NONE));
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
            let cls = &classes[cols.clone()];
            // Row i as the anchor: its columns in increasing order, so strict
            // comparisons keep the lowest index of a tie within the tile.
            let (mut p, mut pk, mut n, mut nk) = (-1.0f32, NONE, f32::INFINITY, NONE);
            for (k, (&dk, &c)) in d.iter().zip(cls).enumerate() {
                if c == class {
                    if dk > p {
                        (p, pk) = (dk, k as u32);
                    }
                } else if dk < n || nk == NONE {
                    (n, nk) = (dk, k as u32);
                }
            }
            let base = cols.start as u32;
            if pk != NONE {
                keep_max(&mut positive[i], &mut positive_at[i], p, base + pk);
            }
            if nk != NONE {
                keep_min(&mut negative[i], &mut negative_at[i], n, base + nk);
            }
            // The columns as anchors, row i their candidate (straight-line selects, so
            // that the loop runs as vector code).
            let at = i as u32;
            let lanes = positive[cols.clone()]
                .iter_mut()
                .zip(&mut positive_at[cols.clone()])
                .zip(&mut negative[cols.clone()])
                .zip(&mut negative_at[cols.clone()])
                .zip(d.iter().zip(cls));
            for ((((p, pa), n), na), (&dk, &c)) in lanes {
                let same = c == class;
                let pa_bits = pa.to_bits();
                let na_bits = na.to_bits();
                let take_p = same & ((dk > *p) | ((dk == *p) & (at < pa_bits)));
                let take_n = !same & ((dk < *n) | ((dk == *n) & (at < na_bits)));
                *p = if take_p { dk } else { *p };
                *pa = f32::from_bits(if take_p { at } else { pa_bits });
                *n = if take_n { dk } else { *n };
                *na = f32::from_bits(if take_n { at } else { na_bits });
            }
        }
    });
    Hardest {
        positive,
        positive_at,
        negative,
        negative_at,
    }
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

/// Keeps `(d, at)` if it is larger than the kept one, or as large with a lower index.
#[inline]
fn keep_max(kept: &mut f32, kept_at: &mut f32, d: f32, at: u32) {
    if d > *kept || (d == *kept && at < kept_at.to_bits()) {
        (*kept, *kept_at) = (d, f32::from_bits(at));
    }
}

/// Keeps `(d, at)` if it is smaller than the kept one, or as small with a lower index.
#[inline]
fn keep_min(kept: &mut f32, kept_at: &mut f32, d: f32, at: u32) {
    if d < *kept || (d == *kept && at < kept_at.to_bits()) {
        (*kept, *kept_at) = (d, f32::from_bits(at));
    }
}

impl Hardest<'_> {
    /// Anchor `i`'s hardest positive `(index, distance)`, if it has a positive.
    pub(super) fn positive(&self, i: usize) -> Option<(usize, f32)> {
        let at = self.positive_at[i].to_bits();
        (at != NONE).then(|| (at as usize, self.positive[i]))
    }

    /// Anchor `i`'s hardest negative `(index, distance)`, if it has a negative.
    pub(super) fn negative(&self, i: usize) -> Option<(usize, f32)> {
        let at = self.negative_at[i].to_bits();
        (at != NONE).then(|| (at as usize, self.negative[i]))
    }
}
