//! The loop shapes of the x86-64 backends, written once: `loop_shapes!` expands them in
//! the module that invokes it, at that module's vector width, over the names it defines.
//!
//! What the invoking module defines (and so all that AVX2 and AVX-512 differ in):
//! - `Vector`, its vector type, `Indices`, its vector of `i32`, `LANES` (f32 per vector),
//!   and `Flags`, what marks rows that need care (a mask register, or all bits set in a
//!   vector's lanes);
//! - memory access: `load`, `load_partial`, `store`, `store_partial` and
//!   `store_to::<STREAM>` (non-temporal where the backend has such stores: `STREAMS`);
//! - lane arithmetic, each one intrinsic imported under that name (`use
//!   core::arch::x86_64::_mm256_add_ps as add`): `zero`, `splat`, `add`, `sub`, `mul`,
//!   `fmadd` (`a·b + c`), and on indices `splat_i32`, `add_i32`, `mullo_i32` and
//!   `shift_right_i32`;
//! - what takes more than one intrinsic, or differs between the ISAs: `lane_numbers`,
//!   `sum_lanes` (across lanes), `scaled_lanes` (`(k·d, −k·d)`, exact zeros where
//!   `k == 0`), `permute` (with `RowOf`, the coefficient of each lane's row), `row_sums`
//!   (8 or 16 rows of `D` summed, from their `D` vectors of squares), `sum_each` (lane `r`
//!   the sum of vector `r`), `sum_f64_of` (the f64 sum of a chunk of losses);
//! - the one-pass epilogue in lanes: `contrastive_lanes`, `forward_lanes` (the loss
//!   alone), `invalid_labels`, `label_bits_max` and `labels_above_one` (labels checked a
//!   chunk at a time, in tiny rows where `TINY_LABELS_BY_CHUNK`), and `no_flags`,
//!   `either` and `any` over `Flags`.
//!
//! Every function the macro writes is `#[inline]` and `#[target_feature]` with the
//! module's features, so the helpers above inline into it and it inlines into the table's
//! entry points: the loops are the module's own, at its width.
//!
//! `kernel_table!` then wraps the kernels of that module (these and its own rows kernels)
//! into its table of safe entries.

/// Expands to the loop shapes of an x86-64 backend (see the module documentation for the
/// names they use): `$features` is its `target_feature` list, `tiny` the row lengths of its
/// one-pass kernels for tiny rows (1 to `TINY_ROWS`, written out: each is a
/// monomorphization).
macro_rules! loop_shapes {
    ($features:literal, tiny: [$($d:literal),+]) => {
        /// The row of each lane within a group of `LANES` rows of `dim ≤ LANES`, without a
        /// division: `⌊x / dim⌋ = (x · ⌈2¹⁶ / dim⌉) >> 16` is exact for `x < 256` (the
        /// error term `x / 2¹⁶ < 1 / dim`).
        struct RowOf {
            magic: Indices,
        }

        impl RowOf {
            #[inline]
            #[target_feature(enable = $features)]
            fn new(dim: usize) -> RowOf {
                let magic = (1usize << 16).div_ceil(dim.max(1)) as i32;
                RowOf {
                    magic: splat_i32(magic),
                }
            }

            /// The rows of lanes `LANES·j .. LANES·(j + 1)`.
            #[inline]
            #[target_feature(enable = $features)]
            fn lanes_of_vector(&self, j: usize) -> Indices {
                let x = add_i32(lane_numbers(), splat_i32((LANES * j) as i32));
                shift_right_i32::<16>(mullo_i32(x, self.magic))
            }
        }

        /// Elements per step of the four-accumulator loops.
        const BLOCK: usize = 4 * LANES;

        /// The longest rows [`tiny_rows`] and [`tiny_forward`] take.
        const TINY_ROWS: usize = [$($d),+].len();

        /// The four vectors of a block.
        #[inline]
        #[target_feature(enable = $features)]
        fn load_block(x: &[f32; BLOCK]) -> [Vector; 4] {
            let (v, _) = x.as_chunks::<LANES>();
            [load(&v[0]), load(&v[1]), load(&v[2]), load(&v[3])]
        }

        /// `K` lane-wise sums of `step` over `a` and `b` (up to the shorter length), not
        /// yet summed across lanes: four accumulator sets over blocks of four vectors, then
        /// up to three single vectors (one per accumulator, so the chains stay
        /// independent), then one masked tail. Up to one vector takes one masked step and
        /// no loop.
        #[inline]
        #[target_feature(enable = $features)]
        fn lane_sums<const K: usize>(
            a: &[f32],
            b: &[f32],
            step: impl Fn([Vector; K], Vector, Vector) -> [Vector; K],
        ) -> [Vector; K] {
            let n = a.len().min(b.len());
            let (a, b) = (&a[..n], &b[..n]);
            let zero = [zero(); K];
            if n <= LANES {
                return step(zero, load_partial(a), load_partial(b));
            }
            let mut acc = [zero; 4];
            let (blocks_a, rest_a) = a.as_chunks::<BLOCK>();
            let (blocks_b, rest_b) = b.as_chunks::<BLOCK>();
            for (xa, xb) in blocks_a.iter().zip(blocks_b) {
                let (va, vb) = (load_block(xa), load_block(xb));
                for j in 0..4 {
                    acc[j] = step(acc[j], va[j], vb[j]);
                }
            }
            let (singles_a, tail_a) = rest_a.as_chunks::<LANES>();
            let (singles_b, tail_b) = rest_b.as_chunks::<LANES>();
            for (acc, (xa, xb)) in acc.iter_mut().zip(singles_a.iter().zip(singles_b)) {
                *acc = step(*acc, load(xa), load(xb));
            }
            if !tail_a.is_empty() {
                acc[3] = step(acc[3], load_partial(tail_a), load_partial(tail_b));
            }
            let mut sums = zero;
            for (k, sum) in sums.iter_mut().enumerate() {
                let pairs = (add(acc[0][k], acc[1][k]), add(acc[2][k], acc[3][k]));
                *sum = add(pairs.0, pairs.1);
            }
            sums
        }

        /// Writes `f(a[i], b[i])` into `(out_a[i], out_b[i])` up to the shortest length, a
        /// vector at a time with a masked tail. With `STREAM`, first, with one masked step,
        /// the elements before both outputs reach a 64-byte boundary (when they reach it
        /// together), so that the rest streams.
        #[inline]
        #[target_feature(enable = $features)]
        fn map2<const STREAM: bool>(
            a: &[f32],
            b: &[f32],
            out_a: &mut [f32],
            out_b: &mut [f32],
            f: impl Fn(Vector, Vector) -> (Vector, Vector),
        ) {
            let n = a.len().min(b.len()).min(out_a.len()).min(out_b.len());
            let (a, b, out_a, out_b) = (&a[..n], &b[..n], &mut out_a[..n], &mut out_b[..n]);
            let head = if STREAM {
                super::aligned_head(out_a, out_b).min(n)
            } else {
                0
            };
            let ((head_a, a), (head_b, b)) = (a.split_at(head), b.split_at(head));
            let (head_oa, out_a) = out_a.split_at_mut(head);
            let (head_ob, out_b) = out_b.split_at_mut(head);
            if head > 0 {
                let (ra, rb) = f(load_partial(head_a), load_partial(head_b));
                store_partial(head_oa, ra);
                store_partial(head_ob, rb);
            }
            let (whole_a, tail_a) = a.as_chunks::<LANES>();
            let (whole_b, tail_b) = b.as_chunks::<LANES>();
            let (whole_oa, tail_oa) = out_a.as_chunks_mut::<LANES>();
            let (whole_ob, tail_ob) = out_b.as_chunks_mut::<LANES>();
            let whole = whole_a
                .iter()
                .zip(whole_b)
                .zip(whole_oa.iter_mut().zip(whole_ob));
            for ((xa, xb), (ya, yb)) in whole {
                let (ra, rb) = f(load(xa), load(xb));
                store_to::<STREAM>(ya, ra);
                store_to::<STREAM>(yb, rb);
            }
            if !tail_a.is_empty() {
                let (ra, rb) = f(load_partial(tail_a), load_partial(tail_b));
                store_partial(tail_oa, ra);
                store_partial(tail_ob, rb);
            }
        }

        /// Each of `p` in every lane. Written out: `p.map(|p| splat(p))` left its closure a
        /// call (AVX2, Rust 1.95).
        #[inline]
        #[target_feature(enable = $features)]
        fn splat4(p: [f32; 4]) -> [Vector; 4] {
            [splat(p[0]), splat(p[1]), splat(p[2]), splat(p[3])]
        }

        /// `(x − y)²`.
        #[inline]
        #[target_feature(enable = $features)]
        fn squared_difference(x: Vector, y: Vector) -> Vector {
            let d = sub(x, y);
            mul(d, d)
        }

        /// `Σ (a[i] − b[i])²` per lane.
        #[inline]
        #[target_feature(enable = $features)]
        fn squared_euclidean_lanes(a: &[f32], b: &[f32]) -> Vector {
            let [s] = lane_sums(a, b, |[acc], x, y| {
                let d = sub(x, y);
                [fmadd(d, d, acc)]
            });
            s
        }

        // -------------------------------------------------------------------------------
        // The kernels of the table (see `Kernels` for their contracts).

        #[inline]
        #[target_feature(enable = $features)]
        fn squared_euclidean(a: &[f32], b: &[f32]) -> f32 {
            sum_lanes(squared_euclidean_lanes(a, b))
        }

        #[target_feature(enable = $features)]
        fn robust_squared_euclidean(a: &[f32], b: &[f32]) -> f32 {
            crate::numerics::squared_or_rescaled(squared_euclidean(a, b), a, b)
        }

        #[target_feature(enable = $features)]
        fn dot(a: &[f32], b: &[f32]) -> f32 {
            let [s] = lane_sums(a, b, |[acc], x, y| [fmadd(x, y, acc)]);
            sum_lanes(s)
        }

        #[target_feature(enable = $features)]
        fn dot_and_norms(a: &[f32], b: &[f32]) -> [f32; 3] {
            let sums = lane_sums(a, b, |[ab, aa, bb], x, y| {
                [fmadd(x, y, ab), fmadd(x, x, aa), fmadd(y, y, bb)]
            });
            sums.map(|s| sum_lanes(s))
        }

        #[target_feature(enable = $features)]
        fn scaled_difference(
            a: &[f32],
            b: &[f32],
            k: f32,
            out_a: &mut [f32],
            out_b: &mut [f32],
        ) {
            scaled_difference_to::<false>(a, b, k, out_a, out_b);
        }

        /// [`scaled_difference`], streaming aligned vectors with `STREAM`. `k == 0` writes
        /// exact zeros even where `a − b` is infinite or NaN (`0·∞` would be NaN): a mask
        /// (`scaled_lanes`, its mask hoisted out of the loop) rather than a branch, which
        /// random labels would make unpredictable in the row loops.
        #[inline]
        #[target_feature(enable = $features)]
        fn scaled_difference_to<const STREAM: bool>(
            a: &[f32],
            b: &[f32],
            k: f32,
            out_a: &mut [f32],
            out_b: &mut [f32],
        ) {
            let k = splat(k);
            map2::<STREAM>(a, b, out_a, out_b, |x, y| scaled_lanes(k, sub(x, y)));
        }

        #[target_feature(enable = $features)]
        fn linear_combination(
            a: &[f32],
            b: &[f32],
            p: [f32; 4],
            out_a: &mut [f32],
            out_b: &mut [f32],
        ) {
            let p = splat4(p);
            map2::<false>(a, b, out_a, out_b, |x, y| {
                (
                    fmadd(p[0], x, mul(p[1], y)),
                    fmadd(p[2], x, mul(p[3], y)),
                )
            });
        }

        /// The contrastive epilogue of a block of rows, compiled for this backend's vectors
        /// (the generic code vectorizes; under these target features it gets their width).
        #[target_feature(enable = $features)]
        pub(super) fn contrastive_epilogue(
            sums: &[f32; EPILOGUE_ROWS],
            labels: &[f32; EPILOGUE_ROWS],
            params: [f32; 4],
            gradient: bool,
            losses: &mut [f32; EPILOGUE_ROWS],
            coefficients: &mut [f32; EPILOGUE_ROWS],
        ) -> crate::kernels::epilogue::Summary {
            crate::kernels::epilogue::contrastive_epilogue(
                sums,
                labels,
                params,
                gradient,
                losses,
                coefficients,
                |losses| sum_f64(losses),
            )
        }

        /// `Σ x` in f64 with the bits of `epilogue::sum_f64`: [`sum_f64_of`] its vectors.
        #[inline]
        #[target_feature(enable = $features)]
        fn sum_f64(x: &[f32; EPILOGUE_ROWS]) -> f64 {
            sum_f64_of(x.as_chunks::<LANES>().0.iter().map(|v| load(v)))
        }

        // -------------------------------------------------------------------------------
        // Rows summed across lanes together.

        /// `row` of each of the `LANES` rows of a group (`ga`, `gb`: `LANES` rows of `dim`):
        /// the lane-wise sums that [`sum_each`] turns into one vector of row sums.
        #[inline]
        #[target_feature(enable = $features)]
        fn group_lanes<const ONE_STEP: bool>(
            ga: &[f32],
            gb: &[f32],
            dim: usize,
            row: &impl Fn(&[f32], &[f32]) -> Vector,
        ) -> [Vector; LANES] {
            if ONE_STEP {
                // Rows by index: the loop unrolls and their sums stay in registers (through
                // the stack, the forward pass at d = 16 ran 1.5x slower in cache).
                core::array::from_fn(|r| {
                    let rows = r * dim..(r + 1) * dim;
                    row(&ga[rows.clone()], &gb[rows])
                })
            } else {
                // Rows that loop stay a loop: unrolled, d = 24 and 40 ran 1.2-1.6x slower.
                let mut lanes = [zero(); LANES];
                let rows = ga.chunks_exact(dim).zip(gb.chunks_exact(dim));
                for (l, (ra, rb)) in lanes.iter_mut().zip(rows) {
                    *l = row(ra, rb);
                }
                lanes
            }
        }

        /// `out[r] = Σ (a_r − b_r)²` of rows longer than the packed kernels take, over
        /// `row`, the lane-wise sums of one row (`ONE_STEP`: one step, no loop): a vector
        /// of rows at a time summed across lanes by a transpose ([`sum_each`]).
        #[inline]
        #[target_feature(enable = $features)]
        fn transposed_rows<const ONE_STEP: bool>(
            a: &[f32],
            b: &[f32],
            dim: usize,
            out: &mut [f32],
            row: impl Fn(&[f32], &[f32]) -> Vector,
        ) {
            let group = LANES * dim;
            let (groups_a, groups_b) = (a.chunks_exact(group), b.chunks_exact(group));
            let (rest_a, rest_b) = (groups_a.remainder(), groups_b.remainder());
            let (groups_out, rest_out) = out.as_chunks_mut::<LANES>();
            for ((ga, gb), o) in groups_a.zip(groups_b).zip(groups_out) {
                store(o, sum_each(group_lanes::<ONE_STEP>(ga, gb, dim, &row)));
            }
            // Leftover rows (fewer than a vector's) go through the same transpose, the
            // missing rows zero: it never adds lanes of different rows, so a row's sum has
            // the same bits wherever it sits in the batch.
            if !rest_out.is_empty() {
                let mut lanes = [zero(); LANES];
                let rows = rest_a.chunks_exact(dim).zip(rest_b.chunks_exact(dim));
                for (l, (ra, rb)) in lanes.iter_mut().zip(rows) {
                    *l = row(ra, rb);
                }
                store_partial(rest_out, sum_each(lanes));
            }
        }

        // -------------------------------------------------------------------------------
        // Forward and gradient in one pass: tiny rows, and long ones.

        /// See `Kernels::contrastive_one_pass`: rows of up to `TINY_ROWS` in whole chunks
        /// of 64 ([`tiny_rows`]), long rows (`avx2::long_rows`), streaming where this
        /// backend streams (`STREAMS`).
        #[allow(clippy::too_many_arguments)]
        #[target_feature(enable = $features)]
        fn contrastive_one_pass(
            a: &[f32],
            b: &[f32],
            dim: usize,
            labels: &[f32],
            params: [f32; 4],
            grad_a: &mut [f32],
            grad_b: &mut [f32],
            stream: bool,
        ) -> OnePass {
            let stream = stream && STREAMS;
            if dim > TINY_ROWS {
                // Its gradients written by `scaled_difference_to`, its full chunks of losses
                // summed by `sum_f64`.
                let write = |ra: &[f32], rb: &[f32], k, oa: &mut [f32], ob: &mut [f32]| {
                    if stream {
                        scaled_difference_to::<true>(ra, rb, k, oa, ob)
                    } else {
                        scaled_difference_to::<false>(ra, rb, k, oa, ob)
                    }
                };
                let sum = |x: &[f32; EPILOGUE_ROWS]| sum_f64(x);
                return super::avx2::long_rows(
                    a, b, dim, labels, params, grad_a, grad_b, stream, sum, write,
                );
            }
            let whole_chunks = labels.len().is_multiple_of(EPILOGUE_ROWS);
            if !whole_chunks || !super::rows_fit(a, b, dim, labels, grad_a, grad_b) {
                return OnePass::Declined;
            }
            // Called directly: taken as a pointer, a `#[target_feature]` function is an
            // unsafe one to Rust 1.89, the MSRV (CI's build on 1.89 failed; newer compilers
            // accept it).
            let sum = match (dim, stream) {
                $(
                    ($d, true) => tiny_rows::<$d, true>(a, b, labels, params, grad_a, grad_b),
                    ($d, false) => tiny_rows::<$d, false>(a, b, labels, params, grad_a, grad_b),
                )+
                _ => return OnePass::Declined,
            };
            match sum {
                Some(sum) => OnePass::Done(sum),
                None => OnePass::NeedsCare,
            }
        }

        /// Whether [`contrastive_one_pass`] takes rows of `dim`: tiny ones (in blocks of
        /// whole chunks), long ones.
        fn one_pass_takes(dim: usize, stream: bool) -> bool {
            (1..=TINY_ROWS).contains(&dim) || super::avx2::takes_long_rows(dim, stream && STREAMS)
        }

        /// Rows of `D ≤ TINY_ROWS` in whole chunks of 64 rows, a vector of rows a step
        /// (`D` vectors of each side, one of labels): their squared distances summed as the
        /// rows kernel sums them ([`row_sums`]), their losses and coefficients computed as
        /// the epilogue computes them ([`contrastive_lanes`]), their gradients written as
        /// the gradient rows kernel writes them ([`scaled_lanes`], streaming aligned
        /// vectors with `STREAM`), and the losses of each 64 rows summed as the block path
        /// sums them ([`sum_f64_of`]); `None` at the first chunk with a row that needs
        /// care. The slices' lengths were checked. Out of cache at d = 2 this ran 1.4-1.8x
        /// as fast as the block path on AVX-512 (rows kernel, epilogue and gradient
        /// kernel, one after the other over a block).
        #[inline]
        #[target_feature(enable = $features)]
        fn tiny_rows<const D: usize, const STREAM: bool>(
            a: &[f32],
            b: &[f32],
            labels: &[f32],
            params: [f32; 4],
            grad_a: &mut [f32],
            grad_b: &mut [f32],
        ) -> Option<f64> {
            let (step, chunk) = (D * LANES, D * EPILOGUE_ROWS);
            let params = splat4(params);
            // The row of each lane of vector `j` of a step, for the coefficients' permutes.
            let row_of = RowOf::new(D);
            let rows_of: [Indices; D] = core::array::from_fn(|j| row_of.lanes_of_vector(j));
            let inputs = a.chunks_exact(chunk).zip(b.chunks_exact(chunk));
            let outputs = grad_a
                .chunks_exact_mut(chunk)
                .zip(grad_b.chunks_exact_mut(chunk));
            let chunks = inputs
                .zip(labels.as_chunks::<EPILOGUE_ROWS>().0)
                .zip(outputs);
            let mut sum = 0.0;
            for (((xa, xb), ys), (oa, ob)) in chunks {
                let mut losses = [zero(); EPILOGUE_ROWS / LANES];
                let mut care: Flags = no_flags();
                let steps = xa.chunks_exact(step).zip(xb.chunks_exact(step));
                let steps = steps.zip(ys.as_chunks::<LANES>().0);
                let outs = oa.chunks_exact_mut(step).zip(ob.chunks_exact_mut(step));
                for ((((xa, xb), y), (oa, ob)), loss) in steps.zip(outs).zip(&mut losses) {
                    let (xa, xb) = (xa.as_chunks::<LANES>().0, xb.as_chunks::<LANES>().0);
                    let difference: [Vector; D] =
                        core::array::from_fn(|j| sub(load(&xa[j]), load(&xb[j])));
                    let squares = difference.map(|d| mul(d, d));
                    let (l, k, flagged) =
                        contrastive_lanes::<true>(row_sums(&squares), load(y), params);
                    *loss = l;
                    care = either(care, flagged);
                    let (oa, ob) = (oa.as_chunks_mut::<LANES>().0, ob.as_chunks_mut::<LANES>().0);
                    for (j, (ya, yb)) in oa.iter_mut().zip(ob).enumerate() {
                        let (g, h) = scaled_lanes(permute(k, rows_of[j]), difference[j]);
                        store_to::<STREAM>(ya, g);
                        store_to::<STREAM>(yb, h);
                    }
                }
                if any(care) {
                    return None;
                }
                sum += sum_f64_of(losses);
            }
            Some(sum)
        }

        /// See `Kernels::contrastive_forward`: rows of up to `TINY_ROWS` in whole chunks of
        /// 64 ([`tiny_forward`]), longer rows in any number (`long_forward`, which sums
        /// them as this backend's rows kernel does, through [`transposed_forward`]); each
        /// block's losses summed by [`over_blocks`].
        #[target_feature(enable = $features)]
        fn contrastive_forward(
            a: &[f32],
            b: &[f32],
            dim: usize,
            labels: &[f32],
            params: [f32; 4],
            block_rows: usize,
            total: f64,
        ) -> OnePass {
            let n = dim.checked_mul(labels.len());
            let fits = n.is_some_and(|n| a.len() == n && b.len() == n);
            if !fits || dim == 0 || block_rows == 0 {
                return OnePass::Declined;
            }
            let total = if dim > TINY_ROWS {
                long_forward(a, b, dim, labels, params, block_rows, total)
            } else {
                let whole = |rows: usize| rows.is_multiple_of(EPILOGUE_ROWS);
                if !whole(labels.len()) || !whole(block_rows) {
                    return OnePass::Declined;
                }
                match dim {
                    $($d => tiny_forward::<$d>(a, b, labels, params, block_rows, total),)+
                    _ => return OnePass::Declined,
                }
            };
            match total {
                Some(total) => OnePass::Done(total),
                None => OnePass::NeedsCare,
            }
        }

        /// `total` plus the sum of `block` over the blocks of `block_rows` rows of `a`, `b`
        /// and `labels` (rows of `dim`; the last block may be shorter), added one after the
        /// other as the block path adds them; `None` as soon as a block is `None`.
        #[inline]
        #[target_feature(enable = $features)]
        fn over_blocks(
            a: &[f32],
            b: &[f32],
            dim: usize,
            labels: &[f32],
            block_rows: usize,
            total: f64,
            mut block: impl FnMut(&[f32], &[f32], &[f32]) -> Option<f64>,
        ) -> Option<f64> {
            // No wrap (`dim · labels.len()` did not overflow, but `dim · block_rows` may).
            let n = dim.saturating_mul(block_rows);
            let blocks = a.chunks(n).zip(b.chunks(n)).zip(labels.chunks(block_rows));
            let mut total = total;
            for ((xa, xb), ys) in blocks {
                total += block(xa, xb, ys)?;
            }
            Some(total)
        }

        /// Whether every label of `ys` lies in `[0, 1]`, given `max`, the lane-wise
        /// unsigned maximum of their bits ([`label_bits_max`]): all of them are if no lane
        /// went above the bits of 1.0 (negative labels, NaN and −0.0 do, as integers), and
        /// otherwise each is looked at ([`invalid_labels`], which takes −0.0). One integer
        /// maximum a vector of rows where comparing each took three or four operations.
        #[inline]
        #[target_feature(enable = $features)]
        fn labels_valid(max: Indices, ys: &[f32]) -> bool {
            if !labels_above_one(max) {
                return true;
            }
            let (whole, rest) = ys.as_chunks::<LANES>();
            let mut invalid = whole.iter().fold(no_flags(), |f, y| either(f, invalid_labels(load(y))));
            if !rest.is_empty() {
                invalid = either(invalid, invalid_labels(load_partial(rest)));
            }
            !any(invalid)
        }

        /// [`tiny_rows`] without the gradient: the losses of rows of `D ≤ TINY_ROWS` in
        /// whole chunks of 64 rows, a vector of rows a step, with the bits of the block
        /// path's forward (the epilogue without gradient: no coefficient, no division, in
        /// [`forward_lanes`]; the labels checked a chunk at a time, [`labels_valid`], where
        /// the backend says so, `TINY_LABELS_BY_CHUNK`, else each vector of them),
        /// each block's sum added to `total` ([`over_blocks`]); `None` at the first chunk
        /// with a row that needs care or a label outside `[0, 1]`.
        #[inline]
        #[target_feature(enable = $features)]
        fn tiny_forward<const D: usize>(
            a: &[f32],
            b: &[f32],
            labels: &[f32],
            params: [f32; 4],
            block_rows: usize,
            total: f64,
        ) -> Option<f64> {
            let params = splat4(params);
            over_blocks(a, b, D, labels, block_rows, total, |a, b, labels| {
                tiny_forward_block::<D>(a, b, labels, params)
            })
        }

        /// [`tiny_forward`] of one block: the sum of its losses.
        #[inline]
        #[target_feature(enable = $features)]
        fn tiny_forward_block<const D: usize>(
            a: &[f32],
            b: &[f32],
            labels: &[f32],
            params: [Vector; 4],
        ) -> Option<f64> {
            let (step, chunk) = (D * LANES, D * EPILOGUE_ROWS);
            let inputs = a.chunks_exact(chunk).zip(b.chunks_exact(chunk));
            let mut sum = 0.0;
            for ((xa, xb), ys) in inputs.zip(labels.as_chunks::<EPILOGUE_ROWS>().0) {
                let mut losses = [zero(); EPILOGUE_ROWS / LANES];
                let mut care: Flags = no_flags();
                let mut labels_max = splat_i32(0);
                let steps = xa.chunks_exact(step).zip(xb.chunks_exact(step));
                let steps = steps.zip(ys.as_chunks::<LANES>().0);
                for (((xa, xb), y), loss) in steps.zip(&mut losses) {
                    let (xa, xb) = (xa.as_chunks::<LANES>().0, xb.as_chunks::<LANES>().0);
                    let squares: [Vector; D] =
                        core::array::from_fn(|j| squared_difference(load(&xa[j]), load(&xb[j])));
                    let y = load(y);
                    let (l, flagged) = forward_lanes(row_sums(&squares), y, params);
                    *loss = l;
                    if TINY_LABELS_BY_CHUNK {
                        care = either(care, flagged);
                        labels_max = label_bits_max(labels_max, y);
                    } else {
                        care = either(care, either(flagged, invalid_labels(y)));
                    }
                }
                if any(care) || (TINY_LABELS_BY_CHUNK && !labels_valid(labels_max, ys)) {
                    return None;
                }
                sum += sum_f64_of(losses);
            }
            Some(sum)
        }

        /// The forward of rows longer than `TINY_ROWS`, in one pass with the bits of the
        /// block path: each `LANES` rows' lane-wise sums by `row` (`ONE_STEP` as in
        /// [`transposed_rows`], with the same `row` as the rows kernel), summed across lanes
        /// together ([`sum_each`]), their losses computed in lanes with the epilogue's bits
        /// ([`forward_lanes`]) and the losses of each 64 rows summed as the block
        /// path sums them (`sum_full` a whole chunk's, in order a shorter one); `None` at
        /// the first chunk with a row that needs care or a label outside `[0, 1]`. Any
        /// number of rows (the slices' lengths were checked). Why: the block path stores
        /// a block's distances, then reads them again in the epilogue, through two calls
        /// and the block's bookkeeping; at d = 16 in cache that was about a third of the
        /// instructions of a row, and the loads from L2 stopped while the epilogue ran.
        ///
        /// `D`, if not 0, is `dim` known at compile time: the rows' offsets are then
        /// constants, with no address arithmetic per row, and their loads need no mask
        /// (at d = 16, about 2 instructions a row fewer and no spilled registers on AVX2).
        #[allow(clippy::too_many_arguments)]
        #[inline]
        #[target_feature(enable = $features)]
        fn transposed_forward<const ONE_STEP: bool, const D: usize>(
            a: &[f32],
            b: &[f32],
            dim: usize,
            labels: &[f32],
            params: [f32; 4],
            (block_rows, total): (usize, f64),
            row: impl Fn(&[f32], &[f32]) -> Vector,
            sum_full: impl Fn(&[Vector; EPILOGUE_ROWS / LANES]) -> f64,
        ) -> Option<f64> {
            let dim = if D == 0 { dim } else { D };
            let params = splat4(params);
            over_blocks(a, b, dim, labels, block_rows, total, |a, b, labels| {
                transposed_forward_block::<ONE_STEP>(a, b, dim, labels, params, &row, &sum_full)
            })
        }

        /// [`transposed_forward`] of one block: the sum of its losses.
        #[inline]
        #[target_feature(enable = $features)]
        fn transposed_forward_block<const ONE_STEP: bool>(
            a: &[f32],
            b: &[f32],
            dim: usize,
            labels: &[f32],
            params: [Vector; 4],
            row: impl Fn(&[f32], &[f32]) -> Vector,
            sum_full: impl Fn(&[Vector; EPILOGUE_ROWS / LANES]) -> f64,
        ) -> Option<f64> {
            let group = LANES * dim;
            // No wrap (`dim · labels.len()` did not overflow, but `dim · 64` may).
            let chunk = dim.saturating_mul(EPILOGUE_ROWS);
            let inputs = a.chunks(chunk).zip(b.chunks(chunk));
            let mut sum = 0.0;
            for ((ca, cb), ys) in inputs.zip(labels.chunks(EPILOGUE_ROWS)) {
                let mut losses = [zero(); EPILOGUE_ROWS / LANES];
                let mut care: Flags = no_flags();
                let mut labels_max = splat_i32(0);
                let (groups_a, groups_b) = (ca.chunks_exact(group), cb.chunks_exact(group));
                let (rest_a, rest_b) = (groups_a.remainder(), groups_b.remainder());
                let (whole_ys, rest_ys) = ys.as_chunks::<LANES>();
                let groups = groups_a.zip(groups_b).zip(whole_ys);
                for (((ga, gb), y), loss) in groups.zip(&mut losses) {
                    let lanes = group_lanes::<ONE_STEP>(ga, gb, dim, &row);
                    let y = load(y);
                    let (l, flagged) = forward_lanes(sum_each(lanes), y, params);
                    *loss = l;
                    care = either(care, flagged);
                    labels_max = label_bits_max(labels_max, y);
                }
                if !rest_ys.is_empty() {
                    // The last rows (fewer than `LANES`), the missing ones all ones (a
                    // normal sum: no flag) with label 0; their losses are left out below.
                    let mut lanes = [splat(1.0); LANES];
                    let rows = rest_a.chunks_exact(dim).zip(rest_b.chunks_exact(dim));
                    for (l, (ra, rb)) in lanes.iter_mut().zip(rows) {
                        *l = row(ra, rb);
                    }
                    let y = load_partial(rest_ys);
                    let (l, flagged) = forward_lanes(sum_each(lanes), y, params);
                    losses[whole_ys.len()] = l;
                    care = either(care, flagged);
                    labels_max = label_bits_max(labels_max, y);
                }
                if any(care) || !labels_valid(labels_max, ys) {
                    return None;
                }
                sum += if ys.len() == EPILOGUE_ROWS {
                    sum_full(&losses)
                } else {
                    // As the block path sums a short chunk's losses: one by one.
                    let mut all = [0.0f32; EPILOGUE_ROWS];
                    for (x, &l) in all.as_chunks_mut::<LANES>().0.iter_mut().zip(&losses) {
                        store(x, l);
                    }
                    all[..ys.len()].iter().map(|&l| f64::from(l)).sum::<f64>()
                };
            }
            Some(sum)
        }
    };
}
pub(super) use loop_shapes;

/// Expands to `KERNELS`, a table of safe wrappers around the `#[target_feature]` kernels
/// of the invoking module (named as the fields of
/// [`Kernels`](crate::kernels::Kernels)). `$features` names what the module's
/// availability check in `x86_64/mod.rs` detects, for the reader.
macro_rules! kernel_table {
    ($features:literal) => {
        mod table {
            // Safe entries of the table: each calls the `#[target_feature]` kernel of the
            // same name in the parent module, which needs $features. Sound because the
            // table is only handed out after those were detected.

            use crate::kernels::Kernels;

            fn squared_euclidean(a: &[f32], b: &[f32]) -> f32 {
                // SAFETY: the table is only handed out after its features were detected
                // (see `x86_64::avx2` and `x86_64::avx512`).
                unsafe { super::squared_euclidean(a, b) }
            }
            fn robust_squared_euclidean(a: &[f32], b: &[f32]) -> f32 {
                // SAFETY: the table is only handed out after its features were detected.
                unsafe { super::robust_squared_euclidean(a, b) }
            }
            fn dot(a: &[f32], b: &[f32]) -> f32 {
                // SAFETY: the table is only handed out after its features were detected.
                unsafe { super::dot(a, b) }
            }
            fn dot_and_norms(a: &[f32], b: &[f32]) -> [f32; 3] {
                // SAFETY: the table is only handed out after its features were detected.
                unsafe { super::dot_and_norms(a, b) }
            }
            fn scaled_difference(
                a: &[f32],
                b: &[f32],
                k: f32,
                out_a: &mut [f32],
                out_b: &mut [f32],
            ) {
                // SAFETY: the table is only handed out after its features were detected.
                unsafe { super::scaled_difference(a, b, k, out_a, out_b) }
            }
            fn linear_combination(
                a: &[f32],
                b: &[f32],
                p: [f32; 4],
                out_a: &mut [f32],
                out_b: &mut [f32],
            ) {
                // SAFETY: the table is only handed out after its features were detected.
                unsafe { super::linear_combination(a, b, p, out_a, out_b) }
            }
            fn squared_euclidean_rows(a: &[f32], b: &[f32], dim: usize, out: &mut [f32]) {
                // SAFETY: the table is only handed out after its features were detected.
                unsafe { super::squared_euclidean_rows(a, b, dim, out) }
            }
            fn scaled_difference_rows(
                a: &[f32],
                b: &[f32],
                dim: usize,
                k: &[f32],
                out_a: &mut [f32],
                out_b: &mut [f32],
                stream: bool,
            ) {
                // SAFETY: the table is only handed out after its features were detected.
                unsafe { super::scaled_difference_rows(a, b, dim, k, out_a, out_b, stream) }
            }

            fn contrastive_epilogue(
                sums: &[f32; crate::kernels::EPILOGUE_ROWS],
                labels: &[f32; crate::kernels::EPILOGUE_ROWS],
                params: [f32; 4],
                gradient: bool,
                losses: &mut [f32; crate::kernels::EPILOGUE_ROWS],
                coefficients: &mut [f32; crate::kernels::EPILOGUE_ROWS],
            ) -> crate::kernels::epilogue::Summary {
                // SAFETY: the table is only handed out after its features were detected.
                unsafe {
                    super::contrastive_epilogue(
                        sums,
                        labels,
                        params,
                        gradient,
                        losses,
                        coefficients,
                    )
                }
            }

            #[allow(clippy::too_many_arguments)]
            fn contrastive_one_pass(
                a: &[f32],
                b: &[f32],
                dim: usize,
                labels: &[f32],
                params: [f32; 4],
                grad_a: &mut [f32],
                grad_b: &mut [f32],
                stream: bool,
            ) -> crate::kernels::OnePass {
                // SAFETY: the table is only handed out after its features were detected.
                unsafe {
                    super::contrastive_one_pass(a, b, dim, labels, params, grad_a, grad_b, stream)
                }
            }

            fn contrastive_forward(
                a: &[f32],
                b: &[f32],
                dim: usize,
                labels: &[f32],
                params: [f32; 4],
                block_rows: usize,
                total: f64,
            ) -> crate::kernels::OnePass {
                // SAFETY: the table is only handed out after its features were detected.
                unsafe { super::contrastive_forward(a, b, dim, labels, params, block_rows, total) }
            }

            #[doc = concat!("Safe entries for kernels that need ", $features, ".")]
            pub(crate) static KERNELS: Kernels = Kernels {
                squared_euclidean,
                robust_squared_euclidean,
                dot,
                dot_and_norms,
                scaled_difference,
                linear_combination,
                squared_euclidean_rows,
                scaled_difference_rows,
                contrastive_epilogue,
                contrastive_one_pass,
                one_pass_takes: super::one_pass_takes,
                fence: super::fence,
                contrastive_forward,
            };
        }
        pub(super) use table::KERNELS;
    };
}
pub(super) use kernel_table;
