//! The symmetric path of the batch-all hinge loss: each unordered pair's distance once
//! (rows of a block of anchors against the rows after them, as the contrastive loss walks
//! its tiles) and each pair's gradient once, with the coefficients of both of its anchors.
//!
//! What makes that possible is a first, cheap pass over the positive pairs only (`N·P`
//! distances for classes of `P + 1` rows): each anchor's positives' thresholds
//! `d(a, p) + m`, sorted. A negative pair `(a, n)` met once in the walk then knows how many
//! active triplets it is in as a negative of `a` (the thresholds of `a` above `d(a, n)`)
//! and as a negative of `n` (those of `n` above the same distance), and adds to both
//! anchors' histograms (by that number), from which each positive pair's count (how many
//! negatives it is active with) follows at the end. The positive pairs, `N·P` of them, get
//! their gradient in a last pass.
//!
//! Scratch: `(P + 1)·3`-odd floats an anchor on top of the row path's, so the row path
//! (`Anchor` in the parent module) stays as the small-scratch path and the one for classes
//! of more than [`MAX_POSITIVES`] + 1 rows.

#![forbid(unsafe_code)]
// Positions in a class run index the run and the anchors' distance rows alike.
#![allow(clippy::needless_range_loop)]

use crate::kernels::Kernels;
pub(super) use crate::kernels::threshold::MAX_POSITIVES;
use crate::kernels::threshold::{CountBlock, Hists};
use crate::kernels::tile::TileKernels;
use crate::numerics::is_positive_normal;
use crate::pairwise;

/// Floats of per-anchor state for anchors of at most `p` positives: `p` sorted thresholds
/// padded to whole blocks of 8, a histogram of `p + 1` counts, and the distances to the
/// `p + 1` rows of its class (itself included, at 0) in class order.
pub(super) const fn stride(p: usize) -> usize {
    p.div_ceil(8) * 8 + 2 * (p + 1)
}

use crate::kernels::threshold::BLOCK;

/// Floats of state of the symmetric path for `rows` rows whose anchors have at most `p`
/// positives: the active-triplet count of each pair of a block of anchors, and
/// [`stride`]`(p)` an anchor.
pub(super) const fn state_len(rows: usize, p: usize) -> usize {
    let b = if rows < BLOCK { rows } else { BLOCK };
    b.saturating_mul(rows)
        .saturating_add(rows.saturating_mul(stride(p)))
}

/// The batch and what every pass reads.
pub(super) struct Batch<'a> {
    pub tiles: &'static TileKernels,
    pub pair: &'static Kernels,
    /// The rows the distances are of (normalised or not).
    pub xs: &'a [f32],
    pub dim: usize,
    pub classes: &'a [u32],
    pub m: f64,
    /// Every difference of two rows is finite: the accumulation kernel needs no scan.
    pub direct: bool,
}

/// The largest class of `classes` (rows of one label), with `order` (as long as
/// `classes`) left holding the row indices sorted by (class, index), as f32 (exact below
/// 2²⁴ rows).
pub(super) fn sort_by_class(classes: &[u32], order: &mut [f32]) -> usize {
    for (i, o) in order.iter_mut().enumerate() {
        *o = i as f32;
    }
    order.sort_unstable_by_key(|&i| (classes[i as usize], i as u32));
    let mut largest = 0;
    let mut start = 0;
    for e in 1..=order.len() {
        if e == order.len() || classes[order[e] as usize] != classes[order[start] as usize] {
            largest = largest.max(e - start);
            start = e;
        }
    }
    largest
}

/// The runs of one class in `order` (see [`sort_by_class`]): `(start, end)` positions.
fn runs<'a>(classes: &'a [u32], order: &'a [f32]) -> impl Iterator<Item = (usize, usize)> + 'a {
    let mut start = 0;
    core::iter::from_fn(move || {
        if start >= order.len() {
            return None;
        }
        let c = classes[order[start] as usize];
        let mut end = start + 1;
        while end < order.len() && classes[order[end] as usize] == c {
            end += 1;
        }
        let run = (start, end);
        start = end;
        Some(run)
    })
}

/// Per-anchor state: `stride` floats an anchor, laid out as [`stride`] says.
struct State<'a> {
    all: &'a mut [f32],
    /// Padded threshold width (a multiple of 8).
    width: usize,
    /// `p + 1` for the largest class's `p` positives.
    class: usize,
}

impl State<'_> {
    fn at(&self, a: usize) -> usize {
        a * (self.width + 2 * self.class)
    }
    fn thresholds(&self, a: usize) -> &[f32] {
        &self.all[self.at(a)..][..self.width]
    }
}

/// The least f32 not below `t` (so that for every f32 `d`, `d < t` exactly when
/// `d < round_up(t)`); ∞ above the f32 range.
fn round_up(t: f64) -> f32 {
    let f = t as f32;
    if f64::from(f) < t { f.next_up() } else { f }
}

/// The coefficient `w/D` of a pair for the direct-form accumulation; where it would
/// overflow or `D` lost its digits (tiny or huge rows), the pair's gradient is added right
/// away on a rescaled difference and the coefficient is 0.
#[inline(always)]
fn coefficient(b: &Batch, w: f32, d: f32, (i, j): (usize, usize), grad: &mut [f32]) -> f32 {
    if w == 0.0 || d == 0.0 {
        return 0.0;
    }
    let c = w / d;
    if is_positive_normal(d * d) && c.is_finite() {
        return c;
    }
    add_rescaled(b, w, (i, j), grad);
    0.0
}

/// Adds the pair (i, j)'s gradient `w·∂D` on a rescaled difference.
#[cold]
#[inline(never)]
fn add_rescaled(b: &Batch, w: f32, (i, j): (usize, usize), grad: &mut [f32]) {
    let dim = b.dim;
    let (xi, xj) = (&b.xs[i * dim..(i + 1) * dim], &b.xs[j * dim..(j + 1) * dim]);
    let (gi, gj) = two_rows(grad, dim, i, j);
    pairwise::add_direction(xi, xj, w, gi, gj);
}

/// The hinge loss on the symmetric path: returns (sum of violations, number of active
/// triplets), with `grad` (zeroed by the caller) holding the gradient times that number.
///
/// `largest` is the largest class's size (from [`sort_by_class`] into `order`), at most
/// `MAX_POSITIVES + 1`; `block` holds `min(8, N)·N` floats; `state` `N·stride(largest − 1)`.
pub(super) fn hinge(
    b: &Batch,
    order: &[f32],
    largest: usize,
    block: &mut [f32],
    state: &mut [f32],
    mut grad: Option<&mut [f32]>,
) -> (f64, f64) {
    let (xs, dim, classes, m) = (b.xs, b.dim, b.classes, b.m);
    let rows = classes.len();
    let p_max = largest.saturating_sub(1);
    let width = p_max.div_ceil(8) * 8;
    let (counts, state) = state.split_at_mut(rows.min(BLOCK) * rows);
    let st = State {
        all: &mut state[..rows * stride(p_max)],
        width,
        class: p_max + 1,
    };
    let threshold = |d: f32| f64::from(d) + m;
    // Pass 1: the positive pairs' distances (each pair once, kept by both anchors so
    // that both see one distance), each anchor's sorted thresholds, histograms cleared.
    let at_dist = width + st.class;
    for (s, e) in runs(classes, order) {
        for u in s..e {
            let a = order[u] as usize;
            let xa = &xs[a * dim..(a + 1) * dim];
            st.all[st.at(a) + at_dist + (u - s)] = 0.0;
            for v in u + 1..e {
                let p = order[v] as usize;
                let xp = &xs[p * dim..(p + 1) * dim];
                let d = pairwise::distance_of((b.pair.squared_euclidean)(xa, xp), xa, xp);
                st.all[st.at(a) + at_dist + (v - s)] = d;
                st.all[st.at(p) + at_dist + (u - s)] = d;
            }
        }
        for u in s..e {
            let a = order[u] as usize;
            let at = st.at(a);
            let (t, rest) = st.all[at..].split_at_mut(width);
            let (hist, dist) = rest.split_at_mut(st.class);
            hist.fill(0.0);
            let mut k = 0;
            for v in (s..e).filter(|&v| v != u) {
                t[k] = round_up(threshold(dist[v - s]));
                k += 1;
            }
            t[..k].sort_unstable_by(f32::total_cmp);
            t[k..].fill(f32::NEG_INFINITY);
        }
    }
    // Pass 2: every negative pair once, in blocks of 8 anchors against the rows after
    // them.
    let (mut total, mut count) = (0.0f64, 0u64);
    for a0 in (0..rows).step_by(BLOCK) {
        let a1 = (a0 + BLOCK).min(rows);
        let len = rows - a0;
        let out = &mut block[..(a1 - a0) * len];
        let ks = &mut counts[..(a1 - a0) * len];
        pairwise::distance_rows(b.tiles, &xs[a0 * dim..a1 * dim], &xs[a0 * dim..], dim, out);
        // The block's anchors' thresholds, and their histograms in four interleaved
        // copies (consecutive pairs of an anchor mostly add to the same count and would
        // wait for each other's store).
        let mut ta = [[f32::NEG_INFINITY; MAX_POSITIVES]; BLOCK];
        for (t, a) in ta.iter_mut().zip(a0..a1) {
            t[..width].copy_from_slice(st.thresholds(a));
        }
        let mut hist: Hists = [[[0u32; MAX_POSITIVES + 1]; 4]; BLOCK];
        // Each pair's number of active triplets (as a negative of either anchor), with
        // the thresholds' width known to the compiler.
        let blk = CountBlock {
            a0,
            a1,
            out: &*out,
            classes,
            ta: &ta,
            width,
            stride: stride(p_max),
        };
        (b.tiles.count)(&blk, ks, &mut hist, &mut *st.all);
        for (r, h) in hist.iter().enumerate().take(a1 - a0) {
            let at = st.at(a0 + r) + width;
            for (k, s) in st.all[at..at + p_max + 1].iter_mut().enumerate() {
                *s += (h[0][k] + h[1][k] + h[2][k] + h[3][k]) as f32;
            }
        }
        // The sums and the coefficients `−k/D`, a row at a time.
        for r in 0..a1 - a0 {
            let first = r + 1;
            let (row, krow) = (
                &mut out[r * len..(r + 1) * len],
                &ks[r * len..(r + 1) * len],
            );
            row[..first].fill(0.0);
            let (sum, n, plain) = row_sums(&row[first..], &krow[first..]);
            total -= sum;
            count += n;
            let Some(g) = grad.as_deref_mut() else {
                continue;
            };
            if plain {
                for (slot, &k) in row[first..].iter_mut().zip(&krow[first..]) {
                    *slot = if k == 0.0 { 0.0 } else { -k / *slot };
                }
            } else {
                for (jj, slot) in row.iter_mut().enumerate().skip(first) {
                    let k = krow[jj];
                    *slot = coefficient(b, -k, *slot, (a0 + r, a0 + jj), g);
                }
            }
        }
        if let Some(g) = grad.as_deref_mut() {
            scatter_upper(b, (a0, a1), out, g);
        }
    }
    // Pass 3: each positive pair's count (the negatives it is active with) from its
    // anchor's histogram; its share of the loss and its gradient.
    for (s, e) in runs(classes, order) {
        let p = e - s - 1;
        for u in s..e {
            let a = order[u] as usize;
            let at = st.at(a);
            let (t, rest) = st.all[at..].split_at_mut(width);
            let (hist, dist) = rest.split_at_mut(st.class);
            // hist[k]: negatives with k active positives (the top k thresholds); its
            // suffix sums: how many negatives reach down to sorted position p − k.
            let mut run = 0.0f32;
            for h in hist[..=p].iter_mut().rev() {
                run += *h;
                *h = run;
            }
            for v in (s..e).filter(|&v| v != u) {
                let d = dist[v - s];
                let tv = round_up(threshold(d));
                // Equal thresholds share their count: the first of them answers.
                let i = t[..p].partition_point(|&x| x < tv);
                let c = hist[p - i];
                if c == 0.0 {
                    continue;
                }
                total += f64::from(c) * threshold(d);
                if let Some(g) = grad.as_deref_mut() {
                    let j = order[v] as usize;
                    let w = coefficient(b, c, d, (a, j), g);
                    if w != 0.0 {
                        let (xa, xj) = (&xs[a * dim..(a + 1) * dim], &xs[j * dim..(j + 1) * dim]);
                        let (ga, gj) = two_rows(g, dim, a, j);
                        for (((g_a, g_j), &x), &y) in
                            ga.iter_mut().zip(gj.iter_mut()).zip(xa).zip(xj)
                        {
                            let q = (x - y) * w;
                            *g_a += q;
                            *g_j -= q;
                        }
                    }
                }
            }
        }
    }
    (total.max(0.0), count as f64)
}

/// For a row's distances `d` and active-triplet counts `k`: `Σ k·d` (f64), `Σ k`, and
/// whether every pair with `k > 0` has a plain coefficient `−k/d` (`d > 0`, `d²` a normal
/// float, the quotient finite), in eight independent lanes so that it vectorises.
fn row_sums(d: &[f32], k: &[f32]) -> (f64, u64, bool) {
    let mut sum = [0.0f64; 8];
    let mut n = [0u32; 8];
    let mut plain = true;
    let (dc, dr) = d.as_chunks::<8>();
    let (kc, kr) = k.as_chunks::<8>();
    let mut lane = |l: usize, d: f32, k: f32, sum: &mut [f64; 8], n: &mut [u32; 8]| {
        let active = k != 0.0;
        sum[l] += if active {
            f64::from(k) * f64::from(d)
        } else {
            0.0
        };
        n[l] += k as u32;
        let c = k / d;
        plain &= !active || (is_positive_normal(d * d) && c.is_finite());
    };
    for (dv, kv) in dc.iter().zip(kc) {
        for l in 0..8 {
            lane(l, dv[l], kv[l], &mut sum, &mut n);
        }
    }
    for (l, (&d, &k)) in dr.iter().zip(kr).enumerate() {
        lane(l, d, k, &mut sum, &mut n);
    }
    let total = ((sum[0] + sum[1]) + (sum[2] + sum[3])) + ((sum[4] + sum[5]) + (sum[6] + sum[7]));
    let count = n.iter().map(|&v| u64::from(v)).sum();
    (total, count, plain)
}

/// `grad_i += Σ_j c_ij·(x_i − x_j)` and `grad_j −= c_ij·(x_i − x_j)` for the anchors
/// `a0..a1` against the rows from `a0` on (coefficients `c`, one row of `N − a0` per
/// anchor, zero at and before the anchor's own column): the kernel takes the rows after
/// the block; the pairs inside it go one by one.
fn scatter_upper(b: &Batch, (a0, a1): (usize, usize), c: &[f32], grad: &mut [f32]) {
    let (xs, dim) = (b.xs, b.dim);
    let rows = xs.len() / dim;
    let len = rows - a0;
    let xa = &xs[a0 * dim..a1 * dim];
    let (ga, after) = grad[a0 * dim..].split_at_mut((a1 - a0) * dim);
    if a1 < rows {
        let (y, c) = (&xs[a1 * dim..], &c[a1 - a0..]);
        if b.direct {
            (b.tiles.accumulate)(xa, y, dim, c, len, ga, after);
        } else {
            pairwise::accumulate_block(b.tiles, xa, y, dim, c, len, ga, after);
        }
    }
    for i in 0..a1 - a0 {
        for j in i + 1..a1 - a0 {
            let w = c[i * len + j];
            if w == 0.0 {
                continue;
            }
            let (xi, xj) = (&xa[i * dim..(i + 1) * dim], &xa[j * dim..(j + 1) * dim]);
            let (gi, gj) = two_rows(ga, dim, i, j);
            for (((g_i, g_j), &x), &y) in gi.iter_mut().zip(gj.iter_mut()).zip(xi).zip(xj) {
                let u = (x - y) * w;
                *g_i += u;
                *g_j -= u;
            }
        }
    }
}

/// Rows `i` and `j` (`i ≠ j`) of `grad`, both mutable.
pub(super) fn two_rows(
    grad: &mut [f32],
    dim: usize,
    i: usize,
    j: usize,
) -> (&mut [f32], &mut [f32]) {
    if i < j {
        let (lo, hi) = grad.split_at_mut(j * dim);
        (&mut lo[i * dim..(i + 1) * dim], &mut hi[..dim])
    } else {
        let (lo, hi) = grad.split_at_mut(i * dim);
        (&mut hi[..dim], &mut lo[j * dim..(j + 1) * dim])
    }
}
