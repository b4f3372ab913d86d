//! The counting step of the batch-all hinge loss's symmetric path: for a block of anchors'
//! rows of distances, each pair's number of active triplets as a negative of either of its
//! anchors (how many of that anchor's sorted positive thresholds `d(a, p) + m` lie above
//! the pair's distance), and the histograms of those numbers from which each positive
//! pair's count follows. Plain Rust over fixed-width threshold rows, which the x86 tile
//! tables compile again under AVX2 and AVX-512F (the compares then run 8 or 16 wide).

#![forbid(unsafe_code)]

use wide::f32x8;

/// The most positives an anchor may have (its thresholds are compared with each distance
/// in straight-line code, `MAX_POSITIVES` lanes at most).
pub(crate) const MAX_POSITIVES: usize = 64;

/// Anchors whose rows of distances are counted together.
pub(crate) const BLOCK: usize = 8;

/// Columns of a block's rows counted together (their thresholds stay in L1 while the
/// block's anchors pass).
const CHUNK: usize = 64;

/// Histograms of a block's anchors (by number of active triplets), four interleaved copies
/// each, so that consecutive pairs of an anchor (which mostly add to the same count) do
/// not wait for each other's store.
pub(crate) type Hists = [[[u32; MAX_POSITIVES + 1]; 4]; BLOCK];

/// A block of anchors `a0..a1` and what counting it reads.
pub(crate) struct CountBlock<'a> {
    pub a0: usize,
    pub a1: usize,
    /// Rows of distances: `a1 − a0` rows of `N − a0` (columns `a0..N`).
    pub out: &'a [f32],
    /// The class of each of the `N` rows.
    pub classes: &'a [u32],
    /// The block's anchors' thresholds, `width` of each used (padding −∞).
    pub ta: &'a [[f32; MAX_POSITIVES]; BLOCK],
    /// Thresholds an anchor: a multiple of 8, at most [`MAX_POSITIVES`].
    pub width: usize,
    /// Floats of state an anchor: its `width` thresholds, then its histogram.
    pub stride: usize,
}

/// `(block, ks, hists, state)`: every anchor's thresholds (the block's in `ta`, the others'
/// in `state`) sorted ascending in their first places and −∞ after them. For every column
/// `j > a` of each anchor `a` of the block,
/// `ks[r·(N − a0) + j − a0]` = the thresholds of `a` above `d(a, j)` plus those of `j`
/// (0 for a pair of one class), `hists[r][_][k_a] += 1` and
/// `state[j·stride + width + k_j] += 1`. Other entries of `ks` are left as they are.
pub(crate) type CountFn = fn(&CountBlock, &mut [f32], &mut Hists, &mut [f32]);

/// [`CountFn`], with the thresholds' width made known to the compiler.
#[inline(always)]
pub(crate) fn count(b: &CountBlock, ks: &mut [f32], hist: &mut Hists, state: &mut [f32]) {
    match b.width {
        0 => count_block::<0>(b, ks, hist, state),
        8 => count_block::<8>(b, ks, hist, state),
        16 => count_block::<16>(b, ks, hist, state),
        24 => count_block::<24>(b, ks, hist, state),
        32 => count_block::<32>(b, ks, hist, state),
        40 => count_block::<40>(b, ks, hist, state),
        48 => count_block::<48>(b, ks, hist, state),
        56 => count_block::<56>(b, ks, hist, state),
        _ => count_block::<64>(b, ks, hist, state),
    }
}

/// The first `W` floats of `s` (every caller's slice holds them).
#[inline(always)]
fn wide<const W: usize>(s: &[f32]) -> &[f32; W] {
    s.first_chunk()
        .expect("a row of thresholds holds its width")
}

/// Number of thresholds above `d`, for thresholds sorted ascending and padded with −∞
/// (which no `d` is below): those above `d` are one run of positions, so the count is the
/// span of the comparison mask's set bits (a vector compare and a move of its mask, then
/// two bit scans; no population count, which the baseline x86-64 lacks).
#[inline(always)]
fn above<const W: usize>(d: f32, t: &[f32; W]) -> u32 {
    let (chunks, _) = t.as_chunks::<8>();
    let dv = f32x8::splat(d);
    let mask = chunks.iter().enumerate().fold(0u64, |m, (c, t)| {
        let below = dv.simd_lt(f32x8::from(*t)).to_bitmask();
        m | (u64::from(below) << (8 * c))
    });
    if mask == 0 {
        0
    } else {
        (64 - mask.leading_zeros()) - mask.trailing_zeros()
    }
}

/// [`count`] for thresholds `W` wide: in chunks of columns, anchor by anchor.
#[inline(always)]
fn count_block<const W: usize>(
    b: &CountBlock,
    ks: &mut [f32],
    hist: &mut Hists,
    state: &mut [f32],
) {
    let (a0, a1, classes, stride) = (b.a0, b.a1, b.classes, b.stride);
    let len = classes.len() - a0;
    for c0 in (1..len).step_by(CHUNK) {
        let c1 = (c0 + CHUNK).min(len);
        for r in 0..a1 - a0 {
            let ca = classes[a0 + r];
            let ta: &[f32; W] = wide(&b.ta[r]);
            let hist = &mut hist[r];
            let (row, krow) = (
                &b.out[r * len..(r + 1) * len],
                &mut ks[r * len..(r + 1) * len],
            );
            for jj in c0.max(r + 1)..c1 {
                let j = a0 + jj;
                if classes[j] == ca {
                    krow[jj] = 0.0;
                    continue;
                }
                let d = row[jj];
                let at = j * stride;
                let ka = above(d, ta);
                let kj = above(d, wide::<W>(&state[at..]));
                hist[jj & 3][ka as usize] += 1;
                state[at + W + kj as usize] += 1.0;
                krow[jj] = (ka + kj) as f32;
            }
        }
    }
}
