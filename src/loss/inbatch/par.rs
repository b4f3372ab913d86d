//! The in-batch and cross-batch losses split across rayon's threads (feature `rayon`).
//!
//! The pair space is cut along its column blocks, at the tile boundaries of the serial
//! walk with full scratch, so every tile is the serial walk's tile with the same bits.
//! Each chunk of column blocks is one task, with its own scratch:
//!
//! - The loss: each chunk sums its tiles as the serial walk does; the chunks' sums are
//!   merged in chunk order (f64), so the result is the serial one up to the
//!   reassociation of f64 sums of nonnegative terms.
//! - The gradient rows of a chunk's columns (`grad_y` of a cross batch) are written by
//!   that chunk only, in the serial order: the same bits. The other side (`grad_x`, and
//!   the rows above a symmetric chunk's columns) collects a chunk's tiles in a buffer of
//!   its own (the first chunk writes into the caller's), added to the result in chunk
//!   order afterwards: deterministic for a given number of chunks, within the serial
//!   gradient's bound of the serial result.

#![forbid(unsafe_code)]

use super::{Epilogue, Exec, Pairs, Walk};
use crate::loss::margins::{NonZeroSums, chain_normalization, unit_scale};
use crate::pairwise::{self, RowScale};
use crate::{ContrastiveLoss, Error};
use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;
use rayon::prelude::*;

/// The least work (`pairs · dim`, ordered pairs) that a parallel call splits across
/// threads; below it the serial walk runs on the calling thread. Measured with the
/// `rayon` bench: on two threads the split pays from about this size on. A build with
/// `CONTRASTIVE_MIN_PARALLEL_WORK=<n>` in its environment uses `n` instead (the bench
/// measures the crossover with 0).
pub(crate) const MIN_PARALLEL_WORK: u64 = match option_env!("CONTRASTIVE_MIN_PARALLEL_WORK") {
    Some(n) => parse(n),
    None => 1 << 21,
};

/// A decimal number, at compile time (a build with a malformed one fails).
pub(crate) const fn parse(s: &str) -> u64 {
    let b = s.as_bytes();
    assert!(
        !b.is_empty(),
        "a CONTRASTIVE_*MIN_PARALLEL_WORK variable is empty"
    );
    let (mut v, mut i) = (0u64, 0);
    while i < b.len() {
        assert!(
            b[i].is_ascii_digit(),
            "a CONTRASTIVE_*MIN_PARALLEL_WORK variable is not a number"
        );
        v = v * 10 + (b[i] - b'0') as u64;
        i += 1;
    }
    v
}

/// Whether a call of `pairs` ordered pairs of `dim`, over `columns` rows on the column
/// side (`N` in-batch, `M` across), is split across threads: more than one thread, more
/// than one column block of tiles, and enough work.
pub(super) fn worth_splitting(pairs: u64, dim: usize, columns: usize) -> bool {
    rayon::current_num_threads() > 1
        && columns > pairwise::MAX_SIDE
        && pairs.saturating_mul(dim as u64) >= MIN_PARALLEL_WORK
}

/// `count` blocks cut into at most `chunks` contiguous ranges of about equal weight
/// (`weight(b)` for block `b`), none empty.
fn cut(count: usize, chunks: usize, weight: impl Fn(usize) -> u64) -> Vec<Range<usize>> {
    let chunks = chunks.clamp(1, count.max(1));
    let total: u64 = (0..count).map(&weight).sum();
    let mut out = Vec::with_capacity(chunks);
    let (mut start, mut acc) = (0, 0u64);
    for b in 0..count {
        acc += weight(b);
        // Chunk `k` (from 1) is being filled; close it at its share of the weight, or
        // when the blocks left are just enough for one per later chunk.
        let k = out.len() + 1;
        let forced = count - (b + 1) == chunks - k;
        if k < chunks && (acc * chunks as u64 >= k as u64 * total || forced) {
            out.push(start..b + 1);
            start = b + 1;
        }
    }
    out.push(start..count);
    out
}

impl ContrastiveLoss {
    /// [`in_batch`](Self::in_batch) with the tiles split across the threads of the
    /// current rayon pool (the global one, or the one a
    /// [`ThreadPool::install`](rayon::ThreadPool::install) runs in). The same arguments
    /// but the scratch: each task allocates its own ([`scratch_len`](Self::scratch_len)
    /// floats, the full tile).
    ///
    /// Small batches run the serial call on the calling thread, with the same result
    /// bits as [`in_batch`](Self::in_batch): fewer than 2²¹ pair-elements
    /// (`N·(N − 1)·dim`: `N` below 182 at `dim = 64`), at most 64 rows (one column of
    /// tiles, nothing to split), or a pool of one thread.
    ///
    /// Result: every pair's loss has the same bits as in the serial call (the same
    /// tiles); the per-chunk sums (f64, of nonnegative terms) are added in a fixed order,
    /// so the loss is the serial one or one unit in the last place from it.
    ///
    /// ```
    /// use contrastive::ContrastiveLoss;
    /// let (n, dim) = (512, 32);
    /// let x: Vec<f32> = (0..n * dim).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
    /// let classes: Vec<u32> = (0..n as u32).map(|i| i % 10).collect();
    /// let loss = ContrastiveLoss::pml();
    /// let parallel = loss.in_batch_par(&x, dim, &classes)?;
    /// let serial = loss.in_batch_vec(&x, dim, &classes)?;
    /// assert!((parallel - serial).abs() <= f32::EPSILON * serial.abs());
    /// # Ok::<(), contrastive::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`in_batch`](Self::in_batch), without [`Error::ScratchTooShort`].
    #[cfg_attr(docsrs, doc(cfg(feature = "rayon")))]
    pub fn in_batch_par(&self, x: &[f32], dim: usize, classes: &[u32]) -> Result<f32, Error> {
        self.run(Pairs::Within { x, classes }, dim, None, Exec::Parallel)
    }

    /// [`in_batch_with_grad`](Self::in_batch_with_grad) split across rayon's threads, as
    /// [`in_batch_par`](Self::in_batch_par); the gradient is written over `grad`.
    ///
    /// Memory: besides a tile's scratch per task, the call splits the column blocks into
    /// one chunk per thread of the pool, and every chunk but the first adds its tiles'
    /// gradients into a buffer of its own (at most `x.len()` floats each, allocated per
    /// call), summed into `grad` at the end.
    ///
    /// Result: the loss as in [`in_batch_par`](Self::in_batch_par). The gradient is the
    /// serial one's terms, summed in another order (the chunks' partial sums are added in
    /// chunk order): deterministic for a given number of threads, and within the serial
    /// gradient's bound of the exact value; below the threshold (or on one thread), the
    /// serial bits.
    ///
    /// # Errors
    /// As [`in_batch_with_grad`](Self::in_batch_with_grad), without
    /// [`Error::ScratchTooShort`].
    #[cfg_attr(docsrs, doc(cfg(feature = "rayon")))]
    pub fn in_batch_with_grad_par(
        &self,
        x: &[f32],
        dim: usize,
        classes: &[u32],
        grad: &mut [f32],
    ) -> Result<f32, Error> {
        let pairs = Pairs::Within { x, classes };
        self.run(pairs, dim, Some((grad, None)), Exec::Parallel)
    }

    /// [`cross_batch`](Self::cross_batch) split across rayon's threads (the blocks of
    /// `y`'s rows), as [`in_batch_par`](Self::in_batch_par), with the same results
    /// promise and the same threshold (`N·M·dim` pair-elements).
    ///
    /// # Errors
    /// As [`cross_batch`](Self::cross_batch), without [`Error::ScratchTooShort`].
    #[cfg_attr(docsrs, doc(cfg(feature = "rayon")))]
    pub fn cross_batch_par(
        &self,
        x: &[f32],
        y: &[f32],
        dim: usize,
        x_classes: &[u32],
        y_classes: &[u32],
    ) -> Result<f32, Error> {
        let pairs = Pairs::Across {
            x,
            y,
            x_classes,
            y_classes,
        };
        self.run(pairs, dim, None, Exec::Parallel)
    }

    /// [`cross_batch_with_grad`](Self::cross_batch_with_grad) split across rayon's
    /// threads by blocks of `y`'s rows. `grad_y` has the serial bits (each of its rows is
    /// written by one task, in the serial order); `grad_x` is summed from one partial
    /// buffer per thread (`x.len()` floats each, but the first), as the gradient of
    /// [`in_batch_with_grad_par`](Self::in_batch_with_grad_par).
    ///
    /// # Errors
    /// As [`cross_batch_with_grad`](Self::cross_batch_with_grad), without
    /// [`Error::ScratchTooShort`].
    #[cfg_attr(docsrs, doc(cfg(feature = "rayon")))]
    #[allow(clippy::too_many_arguments)]
    pub fn cross_batch_with_grad_par(
        &self,
        x: &[f32],
        y: &[f32],
        dim: usize,
        x_classes: &[u32],
        y_classes: &[u32],
        grad_x: &mut [f32],
        grad_y: &mut [f32],
    ) -> Result<f32, Error> {
        let pairs = Pairs::Across {
            x,
            y,
            x_classes,
            y_classes,
        };
        self.run(pairs, dim, Some((grad_x, Some(grad_y))), Exec::Parallel)
    }
}

impl Walk<'_> {
    /// [`Walk::run`] split across threads, with scratch of its own: the same tiles, the
    /// chunks of column blocks in parallel.
    pub(super) fn run_par(
        &self,
        e: &Epilogue,
        grads: Option<(&mut [f32], Option<&mut [f32]>)>,
    ) -> NonZeroSums {
        let dim = self.dim;
        let (x, y) = match e.pairs {
            Pairs::Within { x, .. } => (x, x),
            Pairs::Across { x, y, .. } => (x, y),
        };
        let rows = match e.pairs {
            Pairs::Within { .. } => self.n,
            Pairs::Across { .. } => self.n + self.m,
        };
        // The scratch of the serial walk with full scratch, so the same tile side.
        let scratch_len = if self.scaled {
            pairwise::scaled_scratch_len(rows, dim)
        } else {
            pairwise::scratch_len(rows)
        };
        let side = if self.scaled {
            pairwise::side_of_scaled_scratch(scratch_len, dim)
        } else {
            pairwise::side_of_scratch(scratch_len)
        };
        let scales: Vec<RowScale> = if self.scaled {
            let k = self.kernels;
            x.par_chunks_exact(dim)
                .chain(y.par_chunks_exact(dim))
                .take(rows)
                .map(|row| unit_scale(k, row))
                .collect()
        } else {
            Vec::new()
        };
        let threads = rayon::current_num_threads();
        match e.pairs {
            Pairs::Within { x, classes } => {
                let blocks = self.n.div_ceil(side);
                let mut grad = grads.map(|(g, _)| g);
                // Without a gradient a chunk costs only its scratch: one column block a
                // task, for the balance. With one, a buffer per chunk: one per thread,
                // of equal work (block `b` has `b + 1` tiles).
                let chunks = if grad.is_some() { threads } else { blocks };
                let ranges = cut(blocks, chunks, |b| b as u64 + 1);
                let end = |r: &Range<usize>| (r.end * side).min(self.n);
                let mut partials: Vec<Vec<f32>> = match grad {
                    Some(_) => ranges[1..]
                        .iter()
                        .map(|r| vec![0.0; end(r) * dim])
                        .collect(),
                    None => Vec::new(),
                };
                let mut targets: Vec<Option<&mut [f32]>> = Vec::with_capacity(ranges.len());
                match grad.as_deref_mut() {
                    Some(g) => {
                        targets.push(Some(&mut g[..end(&ranges[0]) * dim]));
                        targets.extend(partials.iter_mut().map(|p| Some(&mut p[..])));
                    }
                    None => targets.extend(ranges.iter().map(|_| None)),
                }
                let sums: Vec<NonZeroSums> = ranges
                    .par_iter()
                    .zip(targets.into_par_iter())
                    .map(|(r, g)| {
                        let mut scratch = vec![0.0; scratch_len];
                        let mut sums = NonZeroSums::default();
                        let rows_end = end(r);
                        let xs = &x[..rows_end * dim];
                        let first = r.start * side;
                        if self.scaled {
                            let s = &scales[..rows_end];
                            pairwise::symmetric_scaled_from(
                                self.tiles,
                                (xs, s),
                                dim,
                                first,
                                &mut scratch,
                                g,
                                |t| e.tile(t, classes, classes, s, s, &mut sums),
                            );
                        } else {
                            pairwise::symmetric_from(
                                self.tiles,
                                xs,
                                dim,
                                first,
                                &mut scratch,
                                g,
                                |t| e.tile(t, classes, classes, &[], &[], &mut sums),
                            );
                        }
                        sums
                    })
                    .collect();
                if let Some(g) = grad {
                    add_partials(g, &partials, dim);
                    if self.scaled {
                        chain_par(x, &scales, dim, g);
                    }
                }
                merge(&sums)
            }
            Pairs::Across {
                x,
                y,
                x_classes,
                y_classes,
            } => {
                let blocks = self.m.div_ceil(side);
                let grads = grads.and_then(|(gx, gy)| gy.map(|gy| (gx, gy)));
                let chunks = if grads.is_some() { threads } else { blocks };
                let ranges = cut(blocks, chunks, |_| 1);
                let span = |r: &Range<usize>| r.start * side..(r.end * side).min(self.m);
                let (sx, sy) = scales.split_at(if self.scaled { self.n } else { 0 });
                let mut partials: Vec<Vec<f32>> = match grads {
                    Some(_) => ranges[1..].iter().map(|_| vec![0.0; x.len()]).collect(),
                    None => Vec::new(),
                };
                let mut targets: Vec<Option<(&mut [f32], &mut [f32])>> =
                    Vec::with_capacity(ranges.len());
                let mut grads = grads;
                match grads.as_mut() {
                    Some((gx, gy)) => {
                        // Each chunk's rows of `grad_y`, disjoint.
                        let mut gy_parts = Vec::with_capacity(ranges.len());
                        let mut rest = &mut **gy;
                        for r in &ranges {
                            let (head, tail) = rest.split_at_mut(span(r).len() * dim);
                            gy_parts.push(head);
                            rest = tail;
                        }
                        let mut gx_parts: Vec<&mut [f32]> = Vec::with_capacity(ranges.len());
                        gx_parts.push(&mut **gx);
                        gx_parts.extend(partials.iter_mut().map(|p| &mut p[..]));
                        targets.extend(gx_parts.into_iter().zip(gy_parts).map(Some));
                    }
                    None => targets.extend(ranges.iter().map(|_| None)),
                }
                let sums: Vec<NonZeroSums> = ranges
                    .par_iter()
                    .zip(targets.into_par_iter())
                    .map(|(r, g)| {
                        let mut scratch = vec![0.0; scratch_len];
                        let mut sums = NonZeroSums::default();
                        let cols = span(r);
                        let ys = &y[cols.start * dim..cols.end * dim];
                        let yc = &y_classes[cols.clone()];
                        if self.scaled {
                            let sy = &sy[cols];
                            pairwise::cross_scaled(
                                self.tiles,
                                (x, sx),
                                (ys, sy),
                                dim,
                                &mut scratch,
                                g,
                                |t| e.tile(t, x_classes, yc, sx, sy, &mut sums),
                            );
                        } else {
                            pairwise::cross(self.tiles, x, ys, dim, &mut scratch, g, |t| {
                                e.tile(t, x_classes, yc, &[], &[], &mut sums)
                            });
                        }
                        sums
                    })
                    .collect();
                if let Some((gx, gy)) = grads {
                    add_partials(gx, &partials, dim);
                    if self.scaled {
                        chain_par(x, sx, dim, gx);
                        chain_par(y, sy, dim, gy);
                    }
                }
                merge(&sums)
            }
        }
    }
}

/// The chunks' sums, merged in chunk order.
fn merge(sums: &[NonZeroSums]) -> NonZeroSums {
    let mut all = NonZeroSums::default();
    for s in sums {
        all.merge(s);
    }
    all
}

/// Rows of the gradient handed out at a time by the parallel passes over it.
const ROWS_PER_TASK: usize = 64;

/// `grad += partials[0] + partials[1] + ...`, added in that order to each element (a
/// partial covers the first `len / dim` rows).
fn add_partials(grad: &mut [f32], partials: &[Vec<f32>], dim: usize) {
    if partials.is_empty() {
        return;
    }
    let step = ROWS_PER_TASK * dim;
    grad.par_chunks_mut(step).enumerate().for_each(|(c, g)| {
        let at = c * step;
        for p in partials {
            if p.len() <= at {
                continue;
            }
            let p = &p[at..p.len().min(at + g.len())];
            for (gv, &pv) in g.iter_mut().zip(p) {
                *gv += pv;
            }
        }
    });
}

/// The chain rule through the normalisation, rows in parallel (each row on its own: the
/// same bits as the serial pass).
fn chain_par(x: &[f32], scales: &[RowScale], dim: usize, grad: &mut [f32]) {
    let step = ROWS_PER_TASK * dim;
    grad.par_chunks_mut(step)
        .zip(x.par_chunks(step))
        .zip(scales.par_chunks(ROWS_PER_TASK))
        .for_each(|((g, x), s)| chain_normalization(x, s, dim, g));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_covers_every_block_once_in_order() {
        for count in 1..40 {
            for chunks in 1..10 {
                for w in [0u64, 1] {
                    let r = cut(count, chunks, |b| w * b as u64 + 1);
                    assert!(!r.is_empty() && r.len() <= chunks.min(count));
                    assert_eq!(r[0].start, 0);
                    assert_eq!(r.last().unwrap().end, count);
                    for p in r.windows(2) {
                        assert_eq!(p[0].end, p[1].start);
                    }
                    assert!(r.iter().all(|r| !r.is_empty()));
                }
            }
        }
    }
}
