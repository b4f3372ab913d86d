//! The softmax losses split across rayon's threads (feature `rayon`).
//!
//! Every pass of the serial walk is cut along its rows, at multiples of the tile height,
//! and each block of rows is one task that walks every column in the serial order, with
//! a panel of its own. A row's state (running maximum and sum, the sums of its
//! positives, its gradient row and that row's power-of-two scale) sees the same tiles in
//! the same order as in the serial walk, so it has the serial bits; whatever is per
//! column is collected per task and merged in task order:
//!
//! - CLIP's column log-sum-exps: each task's partial states are merged (maximum, and the
//!   f64 sums rescaled to it), in task order.
//! - InfoNCE's key-side gradient (`grad_y`): each task sums its rows' tiles into a
//!   buffer of its own (one per thread), each row at its own power-of-two scale; a merged
//!   row removes each partial's scale in f64, adds them in task order, applies the chain
//!   rule through the normalisation in f64 and rounds once.
//! - NT-Xent's sum over positive pairs: one f64 partial sum per task, added in task order.
//!
//! The O(N) steps between the passes (from the states to the loss and the per-row
//! coefficients) run on the calling thread, as in the serial call.

#![forbid(unsafe_code)]

use super::engine::{self, Acc64, GradRows, Lse, Pair};
use super::infonce::{self, InfoNceLoss, Stats};
use super::ntxent::{self, NtXentLoss};
use super::supcon::{self, Anchors, SupConLoss};
use crate::Error;
use crate::kernels::dot_tile::{SoftmaxKernels, TILE_COLS, TILE_ROWS};
use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;
use rayon::prelude::*;

/// The least work (`N²·dim`) that a parallel softmax call splits across threads; below
/// it the serial call runs on the calling thread. From the `rayon` bench
/// (`-- softmax-threshold`; see docs/bench.md: where the split's extra CPU time falls
/// below what a second core gives). A build with `CONTRASTIVE_SOFTMAX_MIN_PARALLEL_WORK=<n>` in its
/// environment uses `n` instead (the bench measures the crossover with 0).
pub(crate) const MIN_PARALLEL_WORK: u64 = match option_env!("CONTRASTIVE_SOFTMAX_MIN_PARALLEL_WORK")
{
    Some(n) => crate::loss::inbatch::par::parse(n),
    None => 1 << 21,
};

/// Whether a call on `n` rows of `dim` is split: more than one thread, more than one
/// block of tile rows, and enough work.
fn worth_splitting(n: usize, dim: usize) -> bool {
    rayon::current_num_threads() > 1
        && n > TILE_ROWS
        && (n as u64)
            .saturating_mul(n as u64)
            .saturating_mul(dim as u64)
            >= MIN_PARALLEL_WORK
}

/// Tasks a pass with small per-task state is cut into, per thread (for the balance).
const TASKS_PER_THREAD: usize = 4;

/// `n` rows cut into at most `chunks` contiguous ranges of whole tile-row blocks (the
/// last may be partial), of about equal size, none empty, in order.
fn row_chunks(n: usize, chunks: usize) -> Vec<Range<usize>> {
    let blocks = n.div_ceil(TILE_ROWS);
    let chunks = chunks.clamp(1, blocks);
    (0..chunks)
        .map(|c| {
            let b0 = blocks * c / chunks;
            let b1 = blocks * (c + 1) / chunks;
            (b0 * TILE_ROWS).min(n)..(b1 * TILE_ROWS).min(n)
        })
        .collect()
}

/// `s` cut at `ranges` (contiguous from 0), `per_row` elements a row.
fn split_rows<'a, T>(
    mut s: &'a mut [T],
    ranges: &[Range<usize>],
    per_row: usize,
) -> Vec<&'a mut [T]> {
    let mut out = Vec::with_capacity(ranges.len());
    for r in ranges {
        let (head, tail) = s.split_at_mut(r.len() * per_row);
        out.push(head);
        s = tail;
    }
    out
}

/// Rows handed out at a time by the passes over whole rows.
const ROWS_PER_TASK: usize = 64;

/// `1/‖row‖` of each row, rows in parallel (each row on its own: the serial bits).
fn inverse_norms(x: &[f32], dim: usize) -> Vec<f32> {
    let mut inv = vec![0.0; x.len() / dim];
    inv.par_chunks_mut(ROWS_PER_TASK)
        .zip(x.par_chunks(ROWS_PER_TASK * dim))
        .for_each(|(o, x)| engine::inverse_norms(x, dim, o));
    inv
}

/// A pass's view of the whole batch.
struct Batch<'a> {
    k: &'static SoftmaxKernels,
    x: &'a [f32],
    inv_x: &'a [f32],
    y: &'a [f32],
    inv_y: &'a [f32],
    dim: usize,
}

impl<'a> Batch<'a> {
    /// The view of a one-batch loss (NT-Xent, SupCon): `x` against itself, `inv` its
    /// inverse norms.
    fn one(k: &'static SoftmaxKernels, x: &'a [f32], inv: &'a [f32], dim: usize) -> Self {
        Batch {
            k,
            x,
            inv_x: inv,
            y: x,
            inv_y: inv,
            dim,
        }
    }

    /// The walk over rows `r` of `x` against every row of `y`, full width.
    fn pair(&self, r: &Range<usize>) -> Pair<'a> {
        let d = self.dim;
        Pair {
            kernels: self.k,
            x: &self.x[r.start * d..r.end * d],
            inv_x: &self.inv_x[r.clone()],
            y: self.y,
            inv_y: self.inv_y,
            dim: d,
            width: TILE_COLS,
            row0: r.start,
        }
    }

    /// A task's panel.
    fn panel(&self) -> Vec<f32> {
        vec![0.0; engine::panel_len(self.dim)]
    }
}

/// A gradient pass over row blocks: `pass(pair, panel, rows)` walks block `r` into its
/// own [`GradRows`] over those rows of `grad`, then the rows are finished (each on its
/// own: the serial bits).
fn grad_blocks(
    b: &Batch<'_>,
    ranges: &[Range<usize>],
    grad: &mut [f32],
    pass: impl Fn(&Pair<'_>, &mut [f32], &mut GradRows<'_>) + Sync,
) {
    let d = b.dim;
    let parts = split_rows(grad, ranges, d);
    ranges
        .par_iter()
        .zip(parts.into_par_iter())
        .for_each(|(r, g)| {
            let pair = b.pair(r);
            let mut panel = b.panel();
            let mut state = vec![0.0; engine::grad_state_len(r.len())];
            let mut s: &mut [f32] = &mut state;
            let mut rows = GradRows::new(g, d, &mut s);
            pass(&pair, &mut panel, &mut rows);
            rows.finish(pair.x, pair.inv_x);
        });
}

/// The `_par` twins of a loss over one labelled batch, with their docs, on `$run`.
macro_rules! labelled_par {
    ($loss:ty, $run:ident, { $(#[$f:meta])* }, { $(#[$g:meta])* }) => {
        impl $loss {
            $(#[$f])*
            #[cfg_attr(docsrs, doc(cfg(feature = "rayon")))]
            pub fn forward_par(
                &self,
                x: &[f32],
                dim: usize,
                classes: &[u32],
            ) -> Result<f32, Error> {
                self.check(x, dim, classes, None)?;
                let k = crate::kernels::select_softmax(self.backend)?;
                if !worth_splitting(x.len() / dim, dim) {
                    return self.forward_vec(x, dim, classes);
                }
                Ok($run(self, k, x, dim, classes, None) as f32)
            }

            $(#[$g])*
            #[cfg_attr(docsrs, doc(cfg(feature = "rayon")))]
            pub fn forward_with_grad_par(
                &self,
                x: &[f32],
                dim: usize,
                classes: &[u32],
                grad: &mut [f32],
            ) -> Result<f32, Error> {
                self.check(x, dim, classes, None)?;
                crate::check::same_len("grad", x.len(), grad.len())?;
                let k = crate::kernels::select_softmax(self.backend)?;
                if !worth_splitting(x.len() / dim, dim) {
                    let mut s = vec![0.0; self.scratch_len(x.len() / dim, dim)];
                    return self.forward_with_grad(x, dim, classes, grad, &mut s);
                }
                Ok($run(self, k, x, dim, classes, Some(grad)) as f32)
            }
        }
    };
}

labelled_par!(
    SupConLoss,
    supcon_par,
    {
        /// [`forward`](Self::forward) split across the threads of the current rayon pool (the
        /// global one, or the one a [`ThreadPool::install`](rayon::ThreadPool::install) runs
        /// in), by blocks of rows. The same arguments but the scratch: the call allocates its
        /// own (`O(N)` floats, and a panel of `32·dim` per task).
        ///
        /// Small batches run the serial call on the calling thread: fewer than 2²¹
        /// elements of work (`N²·dim`: `N` below 182 at `dim = 64`, 128 at `dim = 128`), at
        /// most 6 rows (one block), or a pool of one thread.
        ///
        /// Result: the same bits as [`forward_vec`](Self::forward_vec) on any number of
        /// threads (each anchor's state sees the serial call's tiles in the serial order, and
        /// the mean is taken on the calling thread).
        ///
        /// ```
        /// use contrastive::SupConLoss;
        /// let (n, dim) = (512, 32);
        /// let x: Vec<f32> = (0..n * dim).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
        /// let classes: Vec<u32> = (0..n as u32).map(|i| i % 10).collect();
        /// let loss = SupConLoss::pml();
        /// let parallel = loss.forward_par(&x, dim, &classes)?;
        /// assert_eq!(parallel.to_bits(), loss.forward_vec(&x, dim, &classes)?.to_bits());
        /// # Ok::<(), contrastive::Error>(())
        /// ```
        ///
        /// # Errors
        /// As [`forward`](Self::forward), without [`Error::ScratchTooShort`].
    },
    {
        /// [`forward_with_grad`](Self::forward_with_grad) split across rayon's threads, as
        /// [`forward_par`](Self::forward_par); the gradient is written over `grad`.
        ///
        /// Result: the loss and the gradient have the same bits as the serial call's on any
        /// number of threads (each gradient row is written by one task, from the serial
        /// call's tiles in the serial order, at the serial call's scale).
        ///
        /// # Errors
        /// As [`forward_with_grad`](Self::forward_with_grad), without
        /// [`Error::ScratchTooShort`].
    }
);

labelled_par!(
    NtXentLoss,
    ntxent_par,
    {
        /// [`forward`](Self::forward) split across the threads of the current rayon pool, by
        /// blocks of rows, as [`SupConLoss::forward_par`], with the same threshold.
        ///
        /// Result: every positive pair's term has the serial call's bits; the per-task sums
        /// (f64, of nonnegative terms) are added in task order, so the loss is the serial one
        /// or one unit in the last place from it, deterministic for a given number of
        /// threads; below the threshold, the serial bits.
        ///
        /// # Errors
        /// As [`forward`](Self::forward), without [`Error::ScratchTooShort`].
    },
    {
        /// [`forward_with_grad`](Self::forward_with_grad) split across rayon's threads, as
        /// [`forward_par`](Self::forward_par); the gradient is written over `grad`.
        ///
        /// Result: the loss as [`forward_par`](Self::forward_par)'s; the gradient has the
        /// serial call's bits on any number of threads (each row is written by one task, from
        /// the serial call's tiles in the serial order).
        ///
        /// # Errors
        /// As [`forward_with_grad`](Self::forward_with_grad), without
        /// [`Error::ScratchTooShort`].
    }
);

fn supcon_par(
    loss: &SupConLoss,
    k: &'static SoftmaxKernels,
    x: &[f32],
    dim: usize,
    classes: &[u32],
    grad: Option<&mut [f32]>,
) -> f64 {
    let n = x.len() / dim;
    let inv = inverse_norms(x, dim);
    let b = Batch::one(k, x, &inv, dim);
    let ranges = row_chunks(n, TASKS_PER_THREAD * rayon::current_num_threads());
    let mut max = vec![0.0; n];
    let mut sum = vec![0.0; Acc64::slots(n)];
    let mut pos = vec![0.0; Acc64::slots(n)];
    let mut npos = vec![0.0; n];
    split_rows(&mut max, &ranges, 1)
        .into_par_iter()
        .zip(split_rows(&mut sum, &ranges, 2))
        .zip(split_rows(&mut pos, &ranges, 2))
        .zip(split_rows(&mut npos, &ranges, 1))
        .zip(ranges.par_iter())
        .for_each(|((((max, sum), pos), npos), r)| {
            let mut row = Lse::new(max, sum, r.start);
            let mut pos_sum = Acc64::new(pos, r.start);
            pos_sum.fill(0.0);
            let mut panel = b.panel();
            let pair = b.pair(r);
            supcon::forward_rows(
                loss,
                &pair,
                &mut panel,
                classes,
                &mut row,
                &mut pos_sum,
                npos,
            );
        });
    let row = Lse::view(&mut max, &mut sum, 0);
    let pos_sum = Acc64::new(&mut pos, 0);
    let (mut hi, mut lo, mut weight) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    row.split_into(&mut hi, &mut lo);
    let (value, any_nan) = supcon::weights(loss, &row, &pos_sum, &npos, &mut weight);
    let Some(grad) = grad else {
        return value;
    };
    if any_nan {
        // As the serial call: the original code's 0/0 makes the whole gradient NaN.
        grad.fill(f32::NAN);
        return value;
    }
    let st = Anchors {
        hi: &hi,
        lo: &lo,
        weight: &weight,
        npos: &npos,
    };
    grad_blocks(&b, &ranges, grad, |pair, panel, rows| {
        supcon::grad_rows(loss, pair, panel, classes, &st, rows)
    });
    value
}

fn ntxent_par(
    loss: &NtXentLoss,
    k: &'static SoftmaxKernels,
    x: &[f32],
    dim: usize,
    classes: &[u32],
    grad: Option<&mut [f32]>,
) -> f64 {
    let n = x.len() / dim;
    let inv = inverse_norms(x, dim);
    let b = Batch::one(k, x, &inv, dim);
    let ranges = row_chunks(n, TASKS_PER_THREAD * rayon::current_num_threads());
    let (mut hi, mut lo) = (vec![0.0; n], vec![0.0; n]);
    // Pass 1: each anchor's log-sum-exp over its negatives.
    let has_negative = {
        let mut max = vec![0.0; n];
        let mut sum = vec![0.0; Acc64::slots(n)];
        split_rows(&mut max, &ranges, 1)
            .into_par_iter()
            .zip(split_rows(&mut sum, &ranges, 2))
            .zip(split_rows(&mut hi, &ranges, 1))
            .zip(split_rows(&mut lo, &ranges, 1))
            .zip(ranges.par_iter())
            .map(|((((max, sum), hi), lo), r)| {
                let mut neg = Lse::new(max, sum, r.start);
                let mut panel = b.panel();
                ntxent::negatives(loss, &b.pair(r), &mut panel, classes, &mut neg);
                neg.split_into(hi, lo);
                neg.max.iter().any(|&m| m != f32::NEG_INFINITY)
            })
            .collect::<Vec<bool>>()
            .into_iter()
            .any(|h| h)
    };
    // Pass 2: the positive pairs.
    let mut a = vec![0.0; Acc64::slots(n)];
    let parts: Vec<(f64, usize)> = split_rows(&mut a, &ranges, 2)
        .into_par_iter()
        .zip(ranges.par_iter())
        .map(|(a, r)| {
            let mut a = Acc64::new(a, r.start);
            a.fill(0.0);
            let mut panel = b.panel();
            ntxent::positives(loss, &b.pair(r), &mut panel, classes, &hi, &lo, &mut a)
        })
        .collect();
    let (mut sum, mut pairs) = (0.0f64, 0usize);
    for (s, p) in parts {
        sum += s;
        pairs += p;
    }
    let value = ntxent::value(sum, pairs, has_negative);
    let Some(grad) = grad else {
        return value;
    };
    grad.fill(0.0);
    if !(pairs > 0 && has_negative) {
        return value;
    }
    let a = Acc64::new(&mut a, 0);
    grad_blocks(&b, &ranges, grad, |pair, panel, rows| {
        ntxent::grad_rows(loss, pair, panel, classes, &hi, &lo, &a, pairs, rows)
    });
    value
}

impl InfoNceLoss {
    /// [`forward`](Self::forward) split across the threads of the current rayon pool, by
    /// blocks of query rows, as [`SupConLoss::forward_par`], with the same threshold
    /// (`N²·dim`).
    ///
    /// Result: one direction, the same bits as [`forward_vec`](Self::forward_vec) on any
    /// number of threads. Symmetric (CLIP): each task keeps the keys' log-sum-exps over
    /// its queries, merged in task order (f64 sums rescaled to the larger maximum), so
    /// the loss is within f64 rounding of the serial one before it is rounded to f32
    /// (in practice the serial bits or one unit in the last place from them), and
    /// deterministic for a given number of threads.
    ///
    /// # Errors
    /// As [`forward`](Self::forward), without [`Error::ScratchTooShort`].
    #[cfg_attr(docsrs, doc(cfg(feature = "rayon")))]
    pub fn forward_par(&self, x: &[f32], y: &[f32], dim: usize) -> Result<f32, Error> {
        self.check(x, y, dim, None)?;
        let k = crate::kernels::select_softmax(self.backend)?;
        if !worth_splitting(x.len() / dim, dim) {
            return self.forward_vec(x, y, dim);
        }
        Ok(infonce_par(self, k, x, y, dim, None) as f32)
    }

    /// [`forward_with_grad`](Self::forward_with_grad) split across rayon's threads, as
    /// [`forward_par`](Self::forward_par); the gradients are written over `grad_x` and
    /// `grad_y`.
    ///
    /// Memory: besides `O(N)` floats of state, one buffer of `y.len()` floats per thread
    /// of the pool, where each task sums its queries' terms of `grad_y`.
    ///
    /// Result: the loss as [`forward_par`](Self::forward_par)'s. `grad_x`: one direction,
    /// the serial bits; CLIP, within the serial gradient's bound of the exact value (its
    /// coefficients come from the merged column states). `grad_y`: each task's partial
    /// rows, each at its own power-of-two scale, are unscaled and added in f64 in task
    /// order and rounded once after the chain rule, so each row keeps the serial
    /// gradient's bound; deterministic for a given number of threads.
    ///
    /// # Errors
    /// As [`forward_with_grad`](Self::forward_with_grad), without
    /// [`Error::ScratchTooShort`].
    #[cfg_attr(docsrs, doc(cfg(feature = "rayon")))]
    pub fn forward_with_grad_par(
        &self,
        x: &[f32],
        y: &[f32],
        dim: usize,
        grad_x: &mut [f32],
        grad_y: &mut [f32],
    ) -> Result<f32, Error> {
        self.check(x, y, dim, None)?;
        crate::check::same_len("grad_x", x.len(), grad_x.len())?;
        crate::check::same_len("grad_y", x.len(), grad_y.len())?;
        let k = crate::kernels::select_softmax(self.backend)?;
        if !worth_splitting(x.len() / dim, dim) {
            let mut s = vec![0.0; self.scratch_len(x.len() / dim, dim)];
            return self.forward_with_grad(x, y, dim, grad_x, grad_y, &mut s);
        }
        Ok(infonce_par(self, k, x, y, dim, Some((grad_x, grad_y))) as f32)
    }
}

fn infonce_par(
    loss: &InfoNceLoss,
    k: &'static SoftmaxKernels,
    x: &[f32],
    y: &[f32],
    dim: usize,
    grads: Option<(&mut [f32], &mut [f32])>,
) -> f64 {
    let n = x.len() / dim;
    let inv_x = inverse_norms(x, dim);
    let inv_y = inverse_norms(y, dim);
    let b = Batch {
        k,
        x,
        inv_x: &inv_x,
        y,
        inv_y: &inv_y,
        dim,
    };
    let threads = rayon::current_num_threads();
    let ranges = row_chunks(n, TASKS_PER_THREAD * threads);
    let mut max = vec![0.0; n];
    let mut sum = vec![0.0; Acc64::slots(n)];
    let mut diag = vec![0.0; n];
    // Each task's column states (CLIP): `[max n | sum 2n]`.
    let cols_len = if loss.symmetric { 3 * n } else { 0 };
    let mut cols: Vec<Vec<f32>> = split_rows(&mut max, &ranges, 1)
        .into_par_iter()
        .zip(split_rows(&mut sum, &ranges, 2))
        .zip(split_rows(&mut diag, &ranges, 1))
        .zip(ranges.par_iter())
        .map(|(((max, sum), diag), r)| {
            let mut row = Lse::new(max, sum, r.start);
            let mut c = vec![0.0; cols_len];
            let (cm, cs) = c.split_at_mut(cols_len / 3);
            let mut col = Lse::new(cm, cs, 0);
            let mut panel = b.panel();
            infonce::forward_rows(loss, &b.pair(r), &mut panel, &mut row, diag, &mut col);
            c
        })
        .collect();
    let (first, rest) = cols.split_first_mut().expect("at least one task");
    let (cm, cs) = first.split_at_mut(cols_len / 3);
    let mut col = Lse::view(cm, cs, 0);
    for c in rest.iter_mut() {
        let (m, s) = c.split_at_mut(cols_len / 3);
        col.merge(&Lse::view(m, s, 0));
    }
    let row = Lse::view(&mut max, &mut sum, 0);
    let mut bufs = vec![0.0; 5 * n];
    let mut it = bufs.chunks_exact_mut(n);
    let mut st = Stats {
        row_hi: it.next().unwrap(),
        row_lo: it.next().unwrap(),
        col_hi: it.next().unwrap(),
        col_lo: it.next().unwrap(),
        diag_coef: it.next().unwrap(),
    };
    let value = infonce::statistics(loss, &row, &col, &diag, &mut st);
    let Some((grad_x, grad_y)) = grads else {
        return value;
    };
    // One task per thread: each has a whole `grad_y` of its own.
    let ranges = row_chunks(n, threads);
    let st = st.view();
    let d = dim;
    let partials: Vec<(Vec<f32>, Vec<f32>)> = split_rows(grad_x, &ranges, d)
        .into_par_iter()
        .zip(ranges.par_iter())
        .map(|(gx, r)| {
            let pair = b.pair(r);
            let mut panel = b.panel();
            let mut state = vec![0.0; engine::grad_state_len(r.len())];
            let mut s: &mut [f32] = &mut state;
            let mut rows = GradRows::new(gx, d, &mut s);
            let mut gy = vec![0.0; y.len()];
            let mut gy_state = vec![0.0; engine::grad_state_len(n)];
            {
                let mut s: &mut [f32] = &mut gy_state;
                let mut cols = GradRows::new(&mut gy, d, &mut s);
                infonce::grad_rows(loss, &pair, &mut panel, &st, &mut rows, &mut cols);
            }
            rows.finish(pair.x, pair.inv_x);
            (gy, gy_state)
        })
        .collect();
    let parts: Vec<(&[f32], &[f32])> = partials
        .iter()
        .map(|(g, s)| (g.as_slice(), s.as_slice()))
        .collect();
    grad_y
        .par_chunks_mut(ROWS_PER_TASK * d)
        .zip(y.par_chunks(ROWS_PER_TASK * d))
        .zip(inv_y.par_chunks(ROWS_PER_TASK))
        .enumerate()
        .for_each(|(c, ((out, y), inv))| {
            engine::finish_partials(&parts, y, inv, d, c * ROWS_PER_TASK, out)
        });
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    /// tests/rayon_softmax.rs relies on these shapes splitting in a pool of 2 threads and
    /// on the smaller ones not (with the default threshold).
    #[test]
    fn the_integration_tests_shapes_split_as_documented() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| {
            assert!(worth_splitting(301, 24) && worth_splitting(353, 17));
            if MIN_PARALLEL_WORK == 1 << 21 {
                for (n, d) in [(1, 5), (2, 3), (7, 9), (65, 33), (127, 128)] {
                    assert!(!worth_splitting(n, d), "{n} x {d}");
                }
                assert!(worth_splitting(128, 128) && worth_splitting(182, 64));
                assert!(!worth_splitting(181, 64));
            }
        });
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        one.install(|| assert!(!worth_splitting(4096, 128)));
    }

    #[test]
    fn row_chunks_cover_every_row_once_at_tile_boundaries() {
        for n in 1..100 {
            for chunks in 1..12 {
                let r = row_chunks(n, chunks);
                assert!(!r.is_empty() && r.len() <= chunks);
                assert_eq!(r[0].start, 0);
                assert_eq!(r.last().unwrap().end, n);
                for p in r.windows(2) {
                    assert_eq!(p[0].end, p[1].start);
                    assert_eq!(p[0].end % TILE_ROWS, 0);
                }
                assert!(r.iter().all(|r| !r.is_empty()));
            }
        }
    }
}
