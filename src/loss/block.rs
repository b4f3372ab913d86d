//! The Euclidean batch, in blocks of rows: the rows kernel computes a block's squared
//! distances, a branch-free epilogue turns them into losses and gradient coefficients, and
//! only the rows it flags (underflow, overflow, zero distance, NaN, an overflowing
//! coefficient) go through the careful per-pair path.
//!
//! Why an epilogue over a whole block: at d = 2 a row is 16 bytes, so per-row scalar work
//! (a square root, two branches, an f64 add) would cost more than reading the row. Written
//! without branches over fixed arrays, the epilogue compiles to vector code.

#![forbid(unsafe_code)]

use super::pair::{EuclideanGradient, Terms};
use crate::kernels::epilogue::Summary;
use crate::kernels::{EPILOGUE_ROWS, Kernels, needs_care};
use crate::numerics::Separation;
use crate::{Error, check};
use core::ops::Range;

/// Most rows per block: the block's rows are read by the distance kernel and read again,
/// from L1, by the gradient kernel; the epilogue takes them [`EPILOGUE_ROWS`] at a time.
/// On 64-bit targets 256 for tiny rows (see [`block_rows`]); on 32-bit targets 64, so that
/// a block, kept on the stack, is under 1 KiB on a microcontroller rather than 3 KiB.
#[cfg(target_pointer_width = "64")]
pub(crate) const BLOCK_ROWS: usize = 4 * EPILOGUE_ROWS;
#[cfg(not(target_pointer_width = "64"))]
pub(crate) const BLOCK_ROWS: usize = EPILOGUE_ROWS;
/// Most elements per side in a block of [`EPILOGUE_ROWS`] rows or fewer (32 KiB of f32
/// across both sides).
const BLOCK_ELEMENTS: usize = 4096;
/// Most elements per side in a block of more than [`EPILOGUE_ROWS`] rows: 4 KiB, so that
/// only rows of up to 4 elements get the long blocks.
const TINY_BLOCK_ELEMENTS: usize = 1024;

/// Gradients of at least this many bytes a side are written with non-temporal stores
/// where the backend has them (AVX-512): together twice the 32 MiB last-level cache of the
/// machine we measure on, they would leave the cache before anyone reads them, and a
/// streaming store saves reading each line before writing it (out of cache, the gradient
/// pass then moves four streams of data instead of six). Smaller gradients stay in cache
/// for the optimizer step that reads them next.
pub(crate) const STREAM_BYTES: usize = 32 << 20;

/// Whether a gradient of `len` floats a side is written with non-temporal stores.
pub(crate) fn streams(len: usize) -> bool {
    len.saturating_mul(size_of::<f32>()) >= STREAM_BYTES
}

/// The rows of each block of a batch of `rows` rows of `dim`, whose inputs are `a` and `b`:
/// a short first block up to the first row at which `a` and `b` both start on a 64-byte
/// boundary (if one of the first 16 rows does), then blocks of `per_block` rows
/// ([`block_rows`] or [`gradient_block_rows`]). Why: a `Vec` of a few MiB or more from the
/// system allocator starts 16 bytes past a 64-byte boundary, and every 64-byte load of a
/// tiny-row kernel then spans two cache lines; the gradients, allocated alike, are then
/// aligned too, and stream (without this, forward with gradient at d = 2 and 3 out of
/// cache took 1.3-1.5 times as long with such buffers as with aligned ones; with it, no
/// longer).
pub(crate) fn ranges(
    a: &[f32],
    b: &[f32],
    dim: usize,
    rows: usize,
    per_block: usize,
) -> impl Iterator<Item = Range<usize>> {
    let head = aligned_rows(a, b, dim).min(rows);
    let per_block = per_block.max(1);
    let blocks = (head..rows)
        .step_by(per_block)
        .map(move |first| first..rows.min(first + per_block));
    (head > 0).then_some(0..head).into_iter().chain(blocks)
}

/// Most rows, and most elements a side, in a run of whole blocks that a one-pass forward
/// takes in one call ([`spans`]): enough that a call's and a block's bookkeeping (about 200
/// instructions each) vanish against the rows (at d = 16, 3-4 instructions a row with a
/// call per 64-row block), few enough that a run with a row that needs care, done again
/// by the block path, reads at most 64 KiB a side twice.
const SPAN_ROWS: usize = 4096;
const SPAN_ELEMENTS: usize = 16 * 1024;

/// The blocks of [`ranges`] grouped into runs for the one-pass forward: each item is the
/// rows of a run and the rows of each of its blocks (the run's last block may be
/// shorter). The head block (if any) is a run of its own, then come runs of whole blocks
/// of `per_block` rows (as many as fit in [`SPAN_ROWS`] rows and [`SPAN_ELEMENTS`]
/// elements a side, at least one), then the last, short block (if any) alone. So a
/// backend that takes tiny rows in whole chunks only declines no more rows than it did
/// block by block.
pub(crate) fn spans(
    a: &[f32],
    b: &[f32],
    dim: usize,
    rows: usize,
    per_block: usize,
) -> impl Iterator<Item = (Range<usize>, usize)> {
    let head = aligned_rows(a, b, dim).min(rows);
    let per_block = per_block.max(1);
    let whole_end = head + (rows - head) / per_block * per_block;
    let span_rows = SPAN_ROWS.min(SPAN_ELEMENTS / dim.max(1)) / per_block * per_block;
    let span_rows = span_rows.max(per_block);
    let runs = (head..whole_end)
        .step_by(span_rows)
        .map(move |first| (first..whole_end.min(first + span_rows), per_block));
    let head = (head > 0).then_some((0..head, head));
    let last = (whole_end < rows).then_some((whole_end..rows, rows - whole_end));
    head.into_iter().chain(runs).chain(last)
}

/// How many rows of `dim` come before the first row at which `x` and `y` both start on a
/// 64-byte boundary: 0 to 15, or 0 if `x` and `y` sit at different offsets from one, or if
/// none of the first 16 rows starts on one (rows of a multiple of 64 bytes never move).
fn aligned_rows(x: &[f32], y: &[f32], dim: usize) -> usize {
    const LINE: usize = 64;
    let (offset, offset_y) = (x.as_ptr().addr() % LINE, y.as_ptr().addr() % LINE);
    if offset != offset_y {
        return 0;
    }
    let row_bytes = dim.saturating_mul(size_of::<f32>()) % LINE;
    (0..16)
        .find(|&r| (offset + r * row_bytes).is_multiple_of(LINE))
        .unwrap_or(0)
}

/// The loss's parameters, the same for every row.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Weights {
    pub positive: f32,
    pub negative: f32,
    pub margin: f32,
    /// `2c`, with `c` the reduction factor.
    pub two_c: f32,
}

impl Weights {
    pub(crate) fn params(self) -> [f32; 4] {
        [self.positive, self.negative, self.margin, self.two_c]
    }

    fn terms(self, label: f32) -> Terms {
        Terms {
            p: self.positive * label,
            q: self.negative * (1.0 - label),
            margin: self.margin,
        }
    }
}

/// Labelled pairs: `a` and `b` hold rows of `dim` floats (row-major), `labels` one label
/// a row.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LabelledPairs<'a> {
    pub a: &'a [f32],
    pub b: &'a [f32],
    pub dim: usize,
    pub labels: &'a [f32],
}

impl<'a> LabelledPairs<'a> {
    /// The pairs of rows `r`.
    #[inline]
    pub(crate) fn rows(self, r: Range<usize>) -> LabelledPairs<'a> {
        let dim = self.dim;
        LabelledPairs {
            a: &self.a[r.start * dim..r.end * dim],
            b: &self.b[r.start * dim..r.end * dim],
            dim,
            labels: &self.labels[r],
        }
    }
}

/// One block of rows, reused from block to block (so that nothing is zeroed or copied per
/// block), after [`Block::compute`].
pub(crate) struct Block {
    /// Index of the block's first row in the batch.
    pub first: usize,
    pub rows: usize,
    sums: [f32; BLOCK_ROWS],
    pub losses: [f32; BLOCK_ROWS],
    /// `k[r]` such that row `r`'s gradient is `k[r]·(a_r − b_r)`; 0 for rescaled rows.
    pub coefficients: [f32; BLOCK_ROWS],
    /// Σ losses, in f64.
    pub sum: f64,
    /// Whether some row's gradient needs the rescaled path.
    rescaled: bool,
}

/// Rows per block for rows of `dim` elements. Tiny rows ([`BLOCK_ROWS`] of them in
/// [`TINY_BLOCK_ELEMENTS`]) get the longest blocks: at d = 2 a row is 16 bytes, and with
/// 64-row blocks the calls and bookkeeping of each block kept the forward pass at 17-23
/// GB/s in cache (now 21-28) and 0.84-0.89x the read roofline out of cache. Other rows
/// keep the blocks they had, as many as fit in [`BLOCK_ELEMENTS`], at least one, at most
/// [`EPILOGUE_ROWS`] (at d = 16 a 256-row block would be 16 KiB a side, and the fused
/// gradient reads its block a second time, from L1; no gain was measurable there).
pub(crate) fn block_rows(dim: usize) -> usize {
    let dim = dim.max(1);
    if dim.saturating_mul(BLOCK_ROWS) <= TINY_BLOCK_ELEMENTS {
        BLOCK_ROWS
    } else {
        (BLOCK_ELEMENTS / dim).clamp(1, EPILOGUE_ROWS)
    }
}

/// Rows per block of a forward with gradient: [`block_rows`], but half as many tiny rows
/// when the gradients go beyond the caches (`stream`, see [`streams`]). Measured at d = 2,
/// 3 and 4 with 64 MiB a side, builds alternating: 128-row blocks ran the gradient 1.05-1.4x
/// as fast as 256-row ones, on the AVX-512 backend (non-temporal stores) and the AVX2 one
/// (ordinary stores) alike, and the forward alone no faster; in cache (64 KiB a side) they
/// ran 5-10% slower, so gradients that stay in cache keep the long blocks.
pub(crate) fn gradient_block_rows(dim: usize, stream: bool) -> usize {
    let rows = block_rows(dim);
    if stream && rows > EPILOGUE_ROWS {
        rows / 2
    } else {
        rows
    }
}

impl Block {
    pub(crate) fn new() -> Block {
        Block {
            first: 0,
            rows: 0,
            sums: [0.0; BLOCK_ROWS],
            losses: [0.0; BLOCK_ROWS],
            coefficients: [0.0; BLOCK_ROWS],
            sum: 0.0,
            rescaled: false,
        }
    }

    /// Losses and, with `gradient`, gradient coefficients of the rows
    /// `first..first + pairs.labels.len()`, whose data are `pairs` (exactly those rows).
    #[inline]
    pub(crate) fn compute(
        &mut self,
        kernels: &Kernels,
        first: usize,
        pairs: LabelledPairs,
        w: Weights,
        gradient: bool,
    ) -> Result<(), Error> {
        let LabelledPairs { a, b, dim, labels } = pairs;
        let rows = labels.len();
        self.first = first;
        self.rows = rows;
        self.rescaled = false;
        (kernels.squared_euclidean_rows)(a, b, dim, &mut self.sums[..rows]);
        let mut summary = Summary {
            sum: 0.0,
            flagged: false,
            labels_valid: true,
        };
        let chunks = self.sums[..rows]
            .chunks(EPILOGUE_ROWS)
            .zip(labels.chunks(EPILOGUE_ROWS))
            .zip(
                self.losses[..rows]
                    .chunks_mut(EPILOGUE_ROWS)
                    .zip(self.coefficients[..rows].chunks_mut(EPILOGUE_ROWS)),
            );
        for ((sums, labels), (losses, coefficients)) in chunks {
            let part = epilogue(kernels, sums, labels, w, gradient, losses, coefficients);
            summary.sum += part.sum;
            summary.flagged |= part.flagged;
            summary.labels_valid &= part.labels_valid;
        }
        if !summary.labels_valid {
            // Names the first invalid label (before the careful path sees any of them).
            check::labels_from(first, labels)?;
        }
        self.sum = summary.sum;
        if summary.flagged {
            self.careful_rows(pairs, w);
            self.sum = self.losses[..rows].iter().map(|&l| f64::from(l)).sum();
        }
        Ok(())
    }

    /// The careful per-pair path for the rows the epilogue flagged.
    #[cold]
    fn careful_rows(&mut self, pairs: LabelledPairs, w: Weights) {
        let LabelledPairs { a, b, dim, labels } = pairs;
        let rows = a.chunks_exact(dim).zip(b.chunks_exact(dim));
        for (r, ((ra, rb), &y)) in rows.zip(labels).enumerate() {
            if !needs_care(self.sums[r], self.coefficients[r]) {
                continue;
            }
            let terms = w.terms(y);
            let sep = Separation::from_sum(self.sums[r], ra, rb);
            self.losses[r] = terms.loss_at(&sep);
            self.coefficients[r] = match EuclideanGradient::new(terms, sep, w.two_c).plain() {
                Some(k) => k,
                None => {
                    self.rescaled = true;
                    0.0
                }
            };
        }
    }

    /// Writes the block's gradients: one kernel call over the block's rows (with
    /// non-temporal stores if `stream`), then the rescaled rows.
    #[inline]
    pub(crate) fn write_gradients(
        &self,
        kernels: &Kernels,
        pairs: LabelledPairs,
        w: Weights,
        (grad_a, grad_b): (&mut [f32], &mut [f32]),
        stream: bool,
    ) {
        (kernels.scaled_difference_rows)(
            pairs.a,
            pairs.b,
            pairs.dim,
            &self.coefficients[..self.rows],
            grad_a,
            grad_b,
            stream,
        );
        if self.rescaled {
            if stream {
                // The rows below are rewritten with ordinary stores: after the streamed ones.
                (kernels.fence)();
            }
            rewrite_rescaled_rows(kernels, pairs, w, grad_a, grad_b);
        }
    }
}

/// The epilogue of up to [`EPILOGUE_ROWS`] rows (all slices as long as `sums`): a full
/// chunk goes to the kernel as it is; a shorter one (the last of a batch, or each one when
/// rows are long) is padded with rows at distance 1 and label 1, whose losses are left out.
/// (They are flagged only where `2c·w⁺` overflows; then the block takes the careful path,
/// which looks at its own rows only and sums their losses in order.)
#[inline]
fn epilogue(
    kernels: &Kernels,
    sums: &[f32],
    labels: &[f32],
    w: Weights,
    gradient: bool,
    losses: &mut [f32],
    coefficients: &mut [f32],
) -> Summary {
    let full = (
        <&[f32; EPILOGUE_ROWS]>::try_from(sums),
        <&[f32; EPILOGUE_ROWS]>::try_from(labels),
        <&mut [f32; EPILOGUE_ROWS]>::try_from(&mut *losses),
        <&mut [f32; EPILOGUE_ROWS]>::try_from(&mut *coefficients),
    );
    if let (Ok(sums), Ok(labels), Ok(losses), Ok(coefficients)) = full {
        return (kernels.contrastive_epilogue)(
            sums,
            labels,
            w.params(),
            gradient,
            losses,
            coefficients,
        );
    }
    let rows = sums.len();
    let (mut padded_sums, mut padded_labels) = ([1.0f32; EPILOGUE_ROWS], [1.0f32; EPILOGUE_ROWS]);
    padded_sums[..rows].copy_from_slice(sums);
    padded_labels[..rows].copy_from_slice(labels);
    let (mut all_losses, mut all_coefficients) = ([0.0f32; EPILOGUE_ROWS], [0.0f32; EPILOGUE_ROWS]);
    let summary = (kernels.contrastive_epilogue)(
        &padded_sums,
        &padded_labels,
        w.params(),
        gradient,
        &mut all_losses,
        &mut all_coefficients,
    );
    losses.copy_from_slice(&all_losses[..rows]);
    coefficients.copy_from_slice(&all_coefficients[..rows]);
    Summary {
        sum: all_losses[..rows].iter().map(|&l| f64::from(l)).sum(),
        ..summary
    }
}

/// Rows whose distance needed rescaling get their gradient rewritten one by one.
#[cold]
fn rewrite_rescaled_rows(
    kernels: &Kernels,
    pairs: LabelledPairs,
    w: Weights,
    grad_a: &mut [f32],
    grad_b: &mut [f32],
) {
    let LabelledPairs { a, b, dim, labels } = pairs;
    let rows = a.chunks_exact(dim).zip(b.chunks_exact(dim)).zip(
        grad_a
            .chunks_exact_mut(dim)
            .zip(grad_b.chunks_exact_mut(dim)),
    );
    for (((ra, rb), (ga, gb)), &y) in rows.zip(labels) {
        let sep = Separation::of(kernels, ra, rb);
        let gradient = EuclideanGradient::new(w.terms(y), sep, w.two_c);
        if gradient.plain().is_none() {
            gradient.write(kernels, &sep, (ra, rb), (ga, gb));
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::{block_rows, gradient_block_rows, ranges, spans};
    use std::format;
    use std::vec::Vec;

    #[repr(C, align(64))]
    struct Lines([f32; 20_000 + 64]);

    /// Every row once, in order, in blocks of at most `block_rows`; and when `a` and `b`
    /// sit at the same offset from a 64-byte boundary and one of the first 16 rows starts
    /// on one, every block after the first does. Address arithmetic without `unsafe`: it
    /// runs natively (host, aarch64, wasm32), not under Miri, where it took 85 s a pass.
    #[test]
    #[cfg_attr(miri, ignore = "no unsafe code: runs natively")]
    fn ranges_cover_the_rows_and_align_later_blocks() {
        let (x, y) = (Lines([0.0; 20_000 + 64]), Lines([0.0; 20_000 + 64]));
        // Each distinct block length once: the streaming gradient's differs for tiny rows.
        let sizes = |dim| {
            let (rows, streaming) = (block_rows(dim), gradient_block_rows(dim, true));
            [Some(rows), (streaming != rows).then_some(streaming)]
        };
        let cases =
            (1..=20).flat_map(|dim| sizes(dim).into_iter().flatten().map(move |n| (dim, n)));
        for (dim, per_block) in cases {
            // 9000 rows of up to 2: more than one run of the one-pass forward.
            let counts = [
                0, 1, 5, 15, 16, 17, 127, 128, 129, 255, 256, 257, 1000, 9000,
            ];
            for rows in counts.into_iter().filter(|&r| r * dim <= 20_000) {
                let n = rows * dim;
                for (start, start_b) in (0..16).flat_map(|s| [(s, s), (s, s + 1)]) {
                    let (a, b) = (&x.0[start..start + n], &y.0[start_b..start_b + n]);
                    // Formatted only on a failure.
                    let case = || {
                        format!(
                            "dim {dim} rows {rows} per block {per_block} starts {start} {start_b}"
                        )
                    };
                    let blocks: Vec<_> = ranges(a, b, dim, rows, per_block).collect();
                    // The runs of the one-pass forward are the same blocks, in order.
                    let in_runs: Vec<_> = spans(a, b, dim, rows, per_block)
                        .flat_map(|(run, n)| {
                            assert!(n > 0 && !run.is_empty(), "{}", case());
                            let end = run.end;
                            run.step_by(n).map(move |first| first..end.min(first + n))
                        })
                        .collect();
                    assert_eq!(in_runs, blocks, "{}", case());
                    let mut next = 0;
                    for r in &blocks {
                        assert_eq!(r.start, next, "{}", case());
                        assert!(!r.is_empty() && r.len() <= per_block, "{}", case());
                        next = r.end;
                    }
                    assert_eq!(next, rows, "{}", case());
                    let starts_line = |r: usize| a[r * dim..].as_ptr().addr().is_multiple_of(64);
                    if start == start_b && (0..rows.min(16)).any(starts_line) {
                        for r in blocks.iter().skip(1) {
                            assert!(starts_line(r.start), "{}: {r:?}", case());
                        }
                    } else if start != start_b {
                        assert!(
                            blocks.len() <= 1 || blocks[0].len() == per_block,
                            "{}",
                            case()
                        );
                    }
                }
            }
        }
    }
}
