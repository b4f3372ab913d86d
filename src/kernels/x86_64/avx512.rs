//! AVX-512F kernels: 16 lanes, four accumulators, and a masked load or store for every
//! tail (so a vector of d ≤ 16, the common small case, is one masked step with no loop).
//!
//! Intrinsics: `loadu`/`storeu`, `maskz_loadu`/`mask_storeu`, `stream` (non-temporal
//! stores), `sub`/`mul`/`fmadd`/`add`, `reduce_add`, `maskz_{mul,div,add}`, `sqrt`,
//! `mask_blend`, `test_epi32_mask`, `cmpeq_epi32_mask` and `cmplt_epu32_mask`, integer
//! `mullo`/`srli`/`add`/`sub`/`and`, the fixed shuffles `unpack{lo,hi}_{ps,pd}` and
//! `shuffle_f32x4` (transposed row sums), `permutexvar`/`permutex2var` (rows shorter than
//! a vector), and `cvtps_pd` (the f64 sum of a block's losses). All of them lower to
//! generic SIMD operations that Miri runs, except the non-temporal store (whose tests Miri
//! skips), the two permutes and the conversion: under Miri the last three are replaced by
//! equivalents it runs (see [`permute`] and [`widen`]). No float comparison intrinsic:
//! Miri does not know it, so comparisons are integer ones on the bits.
//!
//! One table entry is not 512-bit code: the distances of rows longer than a vector are
//! the AVX2 kernel's (see [`squared_euclidean_rows`] for the measurements).
//!
//! No `wide` here: `wide` compiled with AVX-512 needs AVX-512BW, and this backend needs
//! only AVX-512F (with the AVX2 and FMA every AVX-512F CPU has).

use crate::kernels::{EPILOGUE_ROWS, OnePass};
use core::arch::x86_64::*;

super::kernel_table!("AVX-512F, AVX2 and FMA");

const LANES: usize = 16;
/// Elements per step of the four-accumulator loops.
const BLOCK: usize = 4 * LANES;

// ---------------------------------------------------------------------------------------
// Memory access: every load and store of this backend, bounded by its argument.

/// The 16 elements of `x`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn load(x: &[f32; LANES]) -> __m512 {
    // SAFETY: `x` holds exactly the 16 f32 an unaligned 512-bit load reads.
    unsafe { _mm512_loadu_ps(x.as_ptr()) }
}

/// The four vectors of a block.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn load_block(x: &[f32; BLOCK]) -> [__m512; 4] {
    let (v, _) = x.as_chunks::<LANES>();
    [load(&v[0]), load(&v[1]), load(&v[2]), load(&v[3])]
}

/// Lanes `0..n` of a mask (all 16 for `n ≥ 16`).
#[inline]
fn first_lanes(n: usize) -> __mmask16 {
    if n >= LANES {
        u16::MAX
    } else {
        (1u16 << n) - 1
    }
}

/// The first `min(x.len(), 16)` elements of `x` in the low lanes, zeros above.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn load_partial(x: &[f32]) -> __m512 {
    // SAFETY: the mask enables only lanes `i < x.len()`, which lie inside `x`; a masked
    // load neither reads nor faults on disabled lanes.
    unsafe { _mm512_maskz_loadu_ps(first_lanes(x.len()), x.as_ptr()) }
}

/// Writes the 16 lanes of `v` to `x`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn store(x: &mut [f32; LANES], v: __m512) {
    // SAFETY: `x` holds exactly the 16 f32 an unaligned 512-bit store writes.
    unsafe { _mm512_storeu_ps(x.as_mut_ptr(), v) }
}

/// Writes the 16 lanes of `v` to `x`; with `STREAM`, when `x` is 64-byte aligned, with a
/// non-temporal store, which does not read the line first (the caller fences).
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn store_to<const STREAM: bool>(x: &mut [f32; LANES], v: __m512) {
    if STREAM && x.as_ptr().addr().is_multiple_of(64) {
        // SAFETY: `x` holds exactly the 16 f32 the store writes, and starts on the 64-byte
        // boundary `_mm512_stream_ps` requires.
        unsafe { _mm512_stream_ps(x.as_mut_ptr(), v) }
    } else {
        store(x, v)
    }
}

/// How many elements precede the first 64-byte boundary that `x` and `y` reach at the same
/// element (0 to 15), or 0 if they never do.
fn aligned_head(x: &[f32], y: &[f32]) -> usize {
    let (offset_x, offset_y) = (x.as_ptr().addr() % 64, y.as_ptr().addr() % 64);
    if offset_x == offset_y && offset_x % size_of::<f32>() == 0 {
        (64 - offset_x) % 64 / size_of::<f32>()
    } else {
        0
    }
}

/// Writes the low `min(x.len(), 16)` lanes of `v` to `x`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn store_partial(x: &mut [f32], v: __m512) {
    // SAFETY: the mask enables only lanes `i < x.len()`, which lie inside `x`; a masked
    // store neither writes nor faults on disabled lanes.
    unsafe { _mm512_mask_storeu_ps(x.as_mut_ptr(), first_lanes(x.len()), v) }
}

// ---------------------------------------------------------------------------------------
// Permutes and a conversion (the only intrinsics here that Miri cannot run).

/// Lane `i` is lane `idx[i] mod 16` of `v` (`vpermps`).
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn permute(v: __m512, idx: __m512i) -> __m512 {
    #[cfg(not(miri))]
    {
        _mm512_permutexvar_ps(idx, v)
    }
    #[cfg(miri)]
    {
        miri::permute2(v, idx, v)
    }
}

/// Lane `i` is lane `idx[i] mod 32` of the 32 lanes `lo ‖ hi` (`vpermt2ps`).
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn permute2(lo: __m512, idx: __m512i, hi: __m512) -> __m512 {
    #[cfg(not(miri))]
    {
        _mm512_permutex2var_ps(lo, idx, hi)
    }
    #[cfg(miri)]
    {
        miri::permute2(lo, idx, hi)
    }
}

/// The 8 floats of `v` as doubles (exact).
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn widen(v: __m256) -> __m512d {
    #[cfg(not(miri))]
    {
        _mm512_cvtps_pd(v)
    }
    #[cfg(miri)]
    {
        // Two 4-lane conversions (`simd_cast`, which Miri runs) put side by side.
        let low = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
        let high = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v));
        _mm512_insertf64x4::<1>(_mm512_castpd256_pd512(low), high)
    }
}

#[cfg(miri)]
mod miri {
    //! The permutes lane by lane, through arrays: what the instructions compute, in
    //! operations Miri supports, so that Miri checks every memory access of the kernels.
    use core::arch::x86_64::*;

    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) fn permute2(lo: __m512, idx: __m512i, hi: __m512) -> __m512 {
        let (mut lanes, mut index, mut out) = ([0.0f32; 32], [0i32; 16], [0.0f32; 16]);
        // SAFETY: each store writes 16 lanes into 16 elements of a local array.
        unsafe {
            _mm512_storeu_ps(lanes.as_mut_ptr(), lo);
            _mm512_storeu_ps(lanes[16..].as_mut_ptr(), hi);
            _mm512_storeu_si512(index.as_mut_ptr().cast(), idx);
        }
        for (o, &i) in out.iter_mut().zip(&index) {
            *o = lanes[(i & 31) as usize];
        }
        // SAFETY: `out` holds the 16 f32 the load reads.
        unsafe { _mm512_loadu_ps(out.as_ptr()) }
    }
}

// ---------------------------------------------------------------------------------------
// Loop shapes.

/// `K` lane-wise sums of `step` over `a` and `b` (up to the shorter length), not yet
/// summed across lanes: four accumulator sets over blocks of 64, then up to three single
/// vectors (one per accumulator, so the chains stay independent), then one masked tail.
/// Up to 16 elements take one masked step and no loop.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn lane_sums<const K: usize>(
    a: &[f32],
    b: &[f32],
    step: impl Fn([__m512; K], __m512, __m512) -> [__m512; K],
) -> [__m512; K] {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let zero = [_mm512_setzero_ps(); K];
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
        let pairs = (
            _mm512_add_ps(acc[0][k], acc[1][k]),
            _mm512_add_ps(acc[2][k], acc[3][k]),
        );
        *sum = _mm512_add_ps(pairs.0, pairs.1);
    }
    sums
}

/// Writes `f(a[i], b[i])` into `(out_a[i], out_b[i])` up to the shortest length, 16 lanes
/// at a time with a masked tail.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn map2<const STREAM: bool>(
    a: &[f32],
    b: &[f32],
    out_a: &mut [f32],
    out_b: &mut [f32],
    f: impl Fn(__m512, __m512) -> (__m512, __m512),
) {
    let n = a.len().min(b.len()).min(out_a.len()).min(out_b.len());
    let (a, b, out_a, out_b) = (&a[..n], &b[..n], &mut out_a[..n], &mut out_b[..n]);
    // Streaming: first, with one masked step, the elements before both outputs reach a
    // 64-byte boundary (when they reach it together), so that the rest streams.
    let head = if STREAM {
        aligned_head(out_a, out_b).min(n)
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

/// `acc + (x − y)²`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn add_squared_difference(acc: __m512, x: __m512, y: __m512) -> __m512 {
    let d = _mm512_sub_ps(x, y);
    _mm512_fmadd_ps(d, d, acc)
}

/// `(x − y)²`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn squared_difference(x: __m512, y: __m512) -> __m512 {
    let d = _mm512_sub_ps(x, y);
    _mm512_mul_ps(d, d)
}

/// `Σ (a[i] − b[i])²` per lane.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn squared_euclidean_lanes(a: &[f32], b: &[f32]) -> __m512 {
    let [s] = lane_sums(a, b, |[acc], x, y| [add_squared_difference(acc, x, y)]);
    s
}

// ---------------------------------------------------------------------------------------
// The kernels of the table (see `Kernels` for their contracts).

#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn squared_euclidean(a: &[f32], b: &[f32]) -> f32 {
    _mm512_reduce_add_ps(squared_euclidean_lanes(a, b))
}

#[target_feature(enable = "avx512f,avx2,fma")]
fn robust_squared_euclidean(a: &[f32], b: &[f32]) -> f32 {
    crate::numerics::squared_or_rescaled(squared_euclidean(a, b), a, b)
}

#[target_feature(enable = "avx512f,avx2,fma")]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let [s] = lane_sums(a, b, |[acc], x, y| [_mm512_fmadd_ps(x, y, acc)]);
    _mm512_reduce_add_ps(s)
}

#[target_feature(enable = "avx512f,avx2,fma")]
fn dot_and_norms(a: &[f32], b: &[f32]) -> [f32; 3] {
    let sums = lane_sums(a, b, |[ab, aa, bb], x, y| {
        [
            _mm512_fmadd_ps(x, y, ab),
            _mm512_fmadd_ps(x, x, aa),
            _mm512_fmadd_ps(y, y, bb),
        ]
    });
    sums.map(|s| _mm512_reduce_add_ps(s))
}

#[target_feature(enable = "avx512f,avx2,fma")]
fn scaled_difference(a: &[f32], b: &[f32], k: f32, out_a: &mut [f32], out_b: &mut [f32]) {
    scaled_difference_to::<false>(a, b, k, out_a, out_b);
}

/// [`scaled_difference`], streaming aligned vectors with `STREAM`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn scaled_difference_to<const STREAM: bool>(
    a: &[f32],
    b: &[f32],
    k: f32,
    out_a: &mut [f32],
    out_b: &mut [f32],
) {
    // `k == 0` writes exact zeros even where `a − b` is infinite or NaN (`0·∞` would be
    // NaN): a zero-masking multiply rather than a branch, which random labels would make
    // unpredictable in the row loops.
    let keep = if k != 0.0 { u16::MAX } else { 0 };
    let (k, zero) = (_mm512_set1_ps(k), _mm512_setzero_ps());
    map2::<STREAM>(a, b, out_a, out_b, |x, y| {
        let g = _mm512_maskz_mul_ps(keep, k, _mm512_sub_ps(x, y));
        (g, _mm512_sub_ps(zero, g))
    });
}

#[target_feature(enable = "avx512f,avx2,fma")]
fn linear_combination(
    a: &[f32],
    b: &[f32],
    [p0, p1, p2, p3]: [f32; 4],
    out_a: &mut [f32],
    out_b: &mut [f32],
) {
    let p = [p0, p1, p2, p3].map(|p| _mm512_set1_ps(p));
    map2::<false>(a, b, out_a, out_b, |x, y| {
        (
            _mm512_fmadd_ps(p[0], x, _mm512_mul_ps(p[1], y)),
            _mm512_fmadd_ps(p[2], x, _mm512_mul_ps(p[3], y)),
        )
    });
}

#[target_feature(enable = "avx512f,avx2,fma")]
fn squared_euclidean_rows(a: &[f32], b: &[f32], dim: usize, out: &mut [f32]) {
    if dim == 0 {
        out.fill(0.0);
        return;
    }
    let rows = (a.len().min(b.len()) / dim).min(out.len());
    let (a, b, out) = (&a[..rows * dim], &b[..rows * dim], &mut out[..rows]);
    match dim {
        1 => packed_squared_rows::<1>(a, b, out),
        2 => packed_squared_rows::<2>(a, b, out),
        3 => packed_squared_rows::<3>(a, b, out),
        4 => packed_squared_rows::<4>(a, b, out),
        5 => packed_squared_rows::<5>(a, b, out),
        6 => packed_squared_rows::<6>(a, b, out),
        7 => packed_squared_rows::<7>(a, b, out),
        8 => packed_squared_rows::<8>(a, b, out),
        9..=LANES => transposed_squared_rows(a, b, dim, out),
        // Rows longer than a vector take the AVX2 row kernel. Measured alternating in
        // one process: in cache it ran 1.0-1.2x as fast at every d from 17 to 768 (1.2x
        // at d = 17 and 24), out of cache 1.10-1.15x at d = 128 and 768; a plain read
        // loop too: 512-bit adds, even fed by 256-bit loads, streamed about 26.5 GB/s
        // from memory where 256-bit ones streamed 30.
        _ => super::avx2::squared_euclidean_rows(a, b, dim, out),
    }
}

#[target_feature(enable = "avx512f,avx2,fma")]
fn scaled_difference_rows(
    a: &[f32],
    b: &[f32],
    dim: usize,
    k: &[f32],
    out_a: &mut [f32],
    out_b: &mut [f32],
    stream: bool,
) {
    if stream {
        scaled_rows::<true>(a, b, dim, k, out_a, out_b);
    } else {
        scaled_rows::<false>(a, b, dim, k, out_a, out_b);
    }
}

/// [`scaled_difference_rows`], streaming aligned vectors with `STREAM`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn scaled_rows<const STREAM: bool>(
    a: &[f32],
    b: &[f32],
    dim: usize,
    k: &[f32],
    out_a: &mut [f32],
    out_b: &mut [f32],
) {
    if dim == 0 {
        return;
    }
    let len = a.len().min(b.len()).min(out_a.len()).min(out_b.len());
    let rows = (len / dim).min(k.len());
    let n = rows * dim;
    let (a, b, k) = (&a[..n], &b[..n], &k[..rows]);
    let (out_a, out_b) = (&mut out_a[..n], &mut out_b[..n]);
    // Rows of one whole vector too: a call per row, with its head and tail checks, kept
    // the gradient at d = 16 at about 22 GB/s in cache (grouped, 30-44).
    if dim <= LANES {
        grouped_scaled_rows::<STREAM>(a, b, dim, k, out_a, out_b);
    } else {
        let rows = a.chunks_exact(dim).zip(b.chunks_exact(dim));
        let outs = out_a.chunks_exact_mut(dim).zip(out_b.chunks_exact_mut(dim));
        for (((ra, rb), (oa, ob)), &k) in rows.zip(outs).zip(k) {
            scaled_difference_to::<STREAM>(ra, rb, k, oa, ob);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Rows shorter than a vector: stream the buffer, not one call per row.

/// `out[r] = Σ (a_r − b_r)²` for rows of `D ≤ 8` elements (`a` and `b` hold exactly
/// `out.len()` rows). A step takes `min(16, 32 / D)` whole rows, whose squared differences
/// fill two vectors (32 lanes) with contiguous loads; the sum of row `r` is then gathered
/// with `D` two-source permutes of lanes `r·D + j`, and all the step's sums leave in one
/// store. Whole steps have constant masks; the last step is the same with shorter ones.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn packed_squared_rows<const D: usize>(a: &[f32], b: &[f32], out: &mut [f32]) {
    let rows_per_step = (2 * LANES / D).min(LANES);
    let step = rows_per_step * D;
    let (steps_a, steps_b) = (a.chunks_exact(step), b.chunks_exact(step));
    let (rest_a, rest_b) = (steps_a.remainder(), steps_b.remainder());
    let mut steps_out = out.chunks_exact_mut(rows_per_step);
    for ((xa, xb), o) in steps_a.zip(steps_b).zip(&mut steps_out) {
        packed_squared_step::<D>(xa, xb, o);
    }
    if !rest_a.is_empty() {
        packed_squared_step::<D>(rest_a, rest_b, steps_out.into_remainder());
    }
}

/// One step of [`packed_squared_rows`]: up to 32 elements of whole rows of `D`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn packed_squared_step<const D: usize>(a: &[f32], b: &[f32], out: &mut [f32]) {
    let (lo_a, hi_a) = a.split_at(a.len().min(LANES));
    let (lo_b, hi_b) = b.split_at(b.len().min(LANES));
    let lo = squared_difference(load_partial(lo_a), load_partial(lo_b));
    let hi = squared_difference(load_partial(hi_a), load_partial(hi_b));
    let row_start = _mm512_mullo_epi32(lane_numbers(), _mm512_set1_epi32(D as i32));
    let mut sums = permute2(lo, row_start, hi);
    for j in 1..D {
        let element = _mm512_add_epi32(row_start, _mm512_set1_epi32(j as i32));
        sums = _mm512_add_ps(sums, permute2(lo, element, hi));
    }
    store_partial(out, sums);
}

/// `out[r] = Σ (a_r − b_r)²` for rows of `9 ≤ dim ≤ 16`: each row's lane-wise sums are one
/// masked step, and 16 rows at a time are summed across lanes together by a transpose
/// ([`sum_each`]), which costs about a quarter of 16 separate horizontal sums.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn transposed_squared_rows(a: &[f32], b: &[f32], dim: usize, out: &mut [f32]) {
    // The mask of `load_partial` is computed once per row from `dim`: no length dispatch.
    let row = |x: &[f32], y: &[f32]| squared_difference(load_partial(x), load_partial(y));
    let group = LANES * dim;
    let (groups_a, groups_b) = (a.chunks_exact(group), b.chunks_exact(group));
    let (rest_a, rest_b) = (groups_a.remainder(), groups_b.remainder());
    let (groups_out, rest_out) = out.as_chunks_mut::<LANES>();
    for ((ga, gb), o) in groups_a.zip(groups_b).zip(groups_out) {
        // Sixteen rows by index: the loop unrolls and their sums stay in registers
        // (through the stack, the forward pass at d = 16 ran 1.5x slower in cache).
        let lanes = core::array::from_fn(|r| {
            let rows = r * dim..(r + 1) * dim;
            row(&ga[rows.clone()], &gb[rows])
        });
        store(o, sum_each(lanes));
    }
    // Leftover rows (fewer than 16) go through the same transpose, the missing rows zero:
    // it never adds lanes of different rows, so a row's sum has the same bits wherever it
    // sits in the batch.
    if !rest_out.is_empty() {
        let mut lanes = [_mm512_setzero_ps(); LANES];
        let rows = rest_a.chunks_exact(dim).zip(rest_b.chunks_exact(dim));
        for (l, (ra, rb)) in lanes.iter_mut().zip(rows) {
            *l = row(ra, rb);
        }
        store_partial(rest_out, sum_each(lanes));
    }
}

/// Lane `r` of the result is the sum of the 16 lanes of `v[r]`: a transpose folded into
/// the additions (unpack pairs of rows, then pairs of pairs, then 128-bit blocks), 45
/// shuffles and adds where 16 horizontal sums take about 128.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn sum_each(v: [__m512; LANES]) -> __m512 {
    // Rows 2i and 2i+1 interleaved: lanes 0 and 2 of each 128-bit block hold partial sums
    // of row 2i, lanes 1 and 3 of row 2i+1.
    let pairs: [__m512; 8] = core::array::from_fn(|i| {
        let (x, y) = (v[2 * i], v[2 * i + 1]);
        _mm512_add_ps(_mm512_unpacklo_ps(x, y), _mm512_unpackhi_ps(x, y))
    });
    // Rows 4i..4i+4 in lanes 0..4 of every 128-bit block.
    let quads: [__m512; 4] = core::array::from_fn(|i| {
        let (x, y) = (
            _mm512_castps_pd(pairs[2 * i]),
            _mm512_castps_pd(pairs[2 * i + 1]),
        );
        // Moved as pairs of f32 (64-bit lanes), added as f32.
        _mm512_add_ps(
            _mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
            _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)),
        )
    });
    // Blocks [0, 2] and [1, 3] of each input added: rows 8i..8i+4 twice, then 8i+4..8i+8.
    let fold = |x: __m512, y: __m512| {
        _mm512_add_ps(
            _mm512_shuffle_f32x4::<0b10_00_10_00>(x, y),
            _mm512_shuffle_f32x4::<0b11_01_11_01>(x, y),
        )
    };
    let octets = [fold(quads[0], quads[1]), fold(quads[2], quads[3])];
    fold(octets[0], octets[1])
}

/// Out rows of `dim ≤ 16`: 16 rows at a time are `dim` whole vectors, and the coefficient
/// of each lane (`k` of its row) comes from one permute of the 16 coefficients. Rows with
/// `k == 0` are written as exact zeros by a zero-masking multiply.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn grouped_scaled_rows<const STREAM: bool>(
    a: &[f32],
    b: &[f32],
    dim: usize,
    k: &[f32],
    out_a: &mut [f32],
    out_b: &mut [f32],
) {
    let group = LANES * dim;
    let row_of = RowOf::new(dim);
    // `k` of each lane's row for vector `j` of a group.
    let scaled = |k: __m512, j: usize, x: __m512, y: __m512| {
        scaled_lanes(permute(k, row_of.lanes_of_vector(j)), _mm512_sub_ps(x, y))
    };
    // Whole groups: whole vectors, no masks.
    let whole = k.len() / LANES * group;
    let (a, rest_a) = a.split_at(whole);
    let (b, rest_b) = b.split_at(whole);
    let (out_a, rest_oa) = out_a.split_at_mut(whole);
    let (out_b, rest_ob) = out_b.split_at_mut(whole);
    let (k, rest_k) = k.as_chunks::<LANES>();
    let inputs = a.chunks_exact(group).zip(b.chunks_exact(group));
    let outputs = out_a
        .chunks_exact_mut(group)
        .zip(out_b.chunks_exact_mut(group));
    for (((ga, gb), (oa, ob)), k) in inputs.zip(outputs).zip(k) {
        let k = load(k);
        let vectors = ga
            .as_chunks::<LANES>()
            .0
            .iter()
            .zip(gb.as_chunks::<LANES>().0);
        let outs = oa.as_chunks_mut::<LANES>().0.iter_mut();
        let outs = outs.zip(ob.as_chunks_mut::<LANES>().0);
        for (j, ((xa, xb), (ya, yb))) in vectors.zip(outs).enumerate() {
            let (g, h) = scaled(k, j, load(xa), load(xb));
            store_to::<STREAM>(ya, g);
            store_to::<STREAM>(yb, h);
        }
    }
    // The last rows (fewer than 16): the same with masks.
    let k = load_partial(rest_k);
    let vectors = rest_a.chunks(LANES).zip(rest_b.chunks(LANES));
    let outs = rest_oa.chunks_mut(LANES).zip(rest_ob.chunks_mut(LANES));
    for (j, ((xa, xb), (ya, yb))) in vectors.zip(outs).enumerate() {
        let (g, h) = scaled(k, j, load_partial(xa), load_partial(xb));
        store_partial(ya, g);
        store_partial(yb, h);
    }
}

/// `(k·difference, −k·difference)`, lane by lane; exact zeros where `k == 0`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn scaled_lanes(k: __m512, difference: __m512) -> (__m512, __m512) {
    let nonzero = _mm512_test_epi32_mask(_mm512_castps_si512(k), _mm512_set1_epi32(i32::MAX));
    let g = _mm512_maskz_mul_ps(nonzero, k, difference);
    (g, _mm512_sub_ps(_mm512_setzero_ps(), g))
}

/// The numbers 0..16, one per lane.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn lane_numbers() -> __m512i {
    _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
}

/// The row of each lane within a group of 16 rows of `dim ≤ 16`, without a division:
/// `⌊x / dim⌋ = (x · ⌈2¹⁶ / dim⌉) >> 16` is exact for `x < 256` (the error term
/// `x / 2¹⁶ < 1 / dim`).
struct RowOf {
    magic: __m512i,
}

impl RowOf {
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn new(dim: usize) -> RowOf {
        let magic = (1usize << 16).div_ceil(dim.max(1)) as i32;
        RowOf {
            magic: _mm512_set1_epi32(magic),
        }
    }

    /// The rows of lanes `16·j .. 16·j + 16`.
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn lanes_of_vector(&self, j: usize) -> __m512i {
        let x = _mm512_add_epi32(lane_numbers(), _mm512_set1_epi32((LANES * j) as i32));
        _mm512_srli_epi32::<16>(_mm512_mullo_epi32(x, self.magic))
    }
}

/// `Σ x` in f64: each 16 floats widened to two vectors of 8 doubles, summed in two
/// accumulators, then across lanes: 8 conversions a block where the generic
/// `epilogue::sum_f64`, compiled for baseline x86-64, needs 32.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn sum_f64(x: &[f32; EPILOGUE_ROWS]) -> f64 {
    sum_f64_of(x.as_chunks::<LANES>().0.iter().map(|v| load(v)))
}

/// [`sum_f64`] of the vectors `x`, in order.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn sum_f64_of(x: impl IntoIterator<Item = __m512>) -> f64 {
    let (mut low, mut high) = (_mm512_setzero_pd(), _mm512_setzero_pd());
    for v in x {
        let upper = _mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v));
        low = _mm512_add_pd(low, widen(_mm512_castps512_ps256(v)));
        high = _mm512_add_pd(high, widen(_mm256_castpd_ps(upper)));
    }
    _mm512_reduce_add_pd(_mm512_add_pd(low, high))
}

/// The contrastive epilogue of a block of rows, compiled for this backend's vectors (the
/// generic code vectorizes; under these target features it gets their width).
#[target_feature(enable = "avx512f,avx2,fma")]
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

// ---------------------------------------------------------------------------------------
// Forward and gradient in one pass: tiny rows, and long ones.

/// See `Kernels::contrastive_one_pass`: rows of up to 8 in whole chunks of 64
/// ([`tiny_rows`]), long rows as the AVX2 backend does them (`avx2::long_rows`), with
/// this backend's stores.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx2,fma")]
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
    if dim > super::avx2::LONG_ROWS {
        return if stream {
            long_rows::<true>(a, b, dim, labels, params, grad_a, grad_b)
        } else {
            long_rows::<false>(a, b, dim, labels, params, grad_a, grad_b)
        };
    }
    let whole_chunks = labels.len().is_multiple_of(EPILOGUE_ROWS);
    if !whole_chunks || !super::rows_fit(a, b, dim, labels, grad_a, grad_b) {
        return OnePass::Declined;
    }
    // Called directly: taken as a pointer, a `#[target_feature]` function is an unsafe one
    // to Rust 1.89, the MSRV (CI's build on 1.89 failed; newer compilers accept it).
    macro_rules! rows {
        ($d:literal) => {
            tiny_rows_of::<$d>(a, b, labels, params, grad_a, grad_b, stream)
        };
    }
    let sum = match dim {
        1 => rows!(1),
        2 => rows!(2),
        3 => rows!(3),
        4 => rows!(4),
        5 => rows!(5),
        6 => rows!(6),
        7 => rows!(7),
        8 => rows!(8),
        _ => return OnePass::Declined,
    };
    match sum {
        Some(sum) => OnePass::Done(sum),
        None => OnePass::NeedsCare,
    }
}

/// Whether [`contrastive_one_pass`] takes rows of `dim`: tiny ones (in blocks of whole
/// chunks), long ones.
fn one_pass_takes(dim: usize, stream: bool) -> bool {
    dim <= TINY_ROWS || super::avx2::takes_long_rows(dim, stream)
}

/// The longest rows [`tiny_rows`] takes: those [`packed_squared_rows`] sums.
const TINY_ROWS: usize = 8;

/// `avx2::long_rows`, its gradients written by [`scaled_difference_to`] and its full
/// chunks of losses summed by [`sum_f64`].
#[allow(clippy::too_many_arguments)]
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn long_rows<const STREAM: bool>(
    a: &[f32],
    b: &[f32],
    dim: usize,
    labels: &[f32],
    params: [f32; 4],
    grad_a: &mut [f32],
    grad_b: &mut [f32],
) -> OnePass {
    let sum = |x: &[f32; EPILOGUE_ROWS]| sum_f64(x);
    let write = |ra: &[f32], rb: &[f32], k, oa: &mut [f32], ob: &mut [f32]| {
        scaled_difference_to::<STREAM>(ra, rb, k, oa, ob)
    };
    super::avx2::long_rows(
        a, b, dim, labels, params, grad_a, grad_b, STREAM, sum, write,
    )
}

/// [`tiny_rows`] for rows of `D`, with or without streaming stores.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx2,fma")]
fn tiny_rows_of<const D: usize>(
    a: &[f32],
    b: &[f32],
    labels: &[f32],
    params: [f32; 4],
    grad_a: &mut [f32],
    grad_b: &mut [f32],
    stream: bool,
) -> Option<f64> {
    if stream {
        tiny_rows::<D, true>(a, b, labels, params, grad_a, grad_b)
    } else {
        tiny_rows::<D, false>(a, b, labels, params, grad_a, grad_b)
    }
}

/// Rows of `D ≤ 8` in whole chunks of 64 rows, 16 rows a step (`D` vectors of each side,
/// one of labels): their squared distances summed as [`packed_squared_rows`] sums them,
/// their losses and coefficients computed as the epilogue computes them
/// ([`contrastive_lanes`]), their gradients written as [`grouped_scaled_rows`] writes them
/// (streaming aligned vectors with `STREAM`), and the losses of each 64 rows summed as
/// [`sum_f64`] sums them; `None` at the first chunk with a row that needs care. The slices'
/// lengths were checked. Out of cache at d = 2 this ran 1.4-1.8x as fast as the block path
/// (rows kernel, epilogue and gradient kernel, one after the other over a block).
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn tiny_rows<const D: usize, const STREAM: bool>(
    a: &[f32],
    b: &[f32],
    labels: &[f32],
    params: [f32; 4],
    grad_a: &mut [f32],
    grad_b: &mut [f32],
) -> Option<f64> {
    let (step, chunk) = (D * LANES, D * EPILOGUE_ROWS);
    let params = params.map(|p| _mm512_set1_ps(p));
    let row_of = RowOf::new(D);
    let inputs = a.chunks_exact(chunk).zip(b.chunks_exact(chunk));
    let outputs = grad_a
        .chunks_exact_mut(chunk)
        .zip(grad_b.chunks_exact_mut(chunk));
    let chunks = inputs
        .zip(labels.as_chunks::<EPILOGUE_ROWS>().0)
        .zip(outputs);
    let mut sum = 0.0;
    for (((xa, xb), ys), (oa, ob)) in chunks {
        let mut losses = [_mm512_setzero_ps(); EPILOGUE_ROWS / LANES];
        let mut care = 0;
        let steps = xa.chunks_exact(step).zip(xb.chunks_exact(step));
        let steps = steps.zip(ys.as_chunks::<LANES>().0);
        let outs = oa.chunks_exact_mut(step).zip(ob.chunks_exact_mut(step));
        for ((((xa, xb), y), (oa, ob)), loss) in steps.zip(outs).zip(&mut losses) {
            let (xa, xb) = (xa.as_chunks::<LANES>().0, xb.as_chunks::<LANES>().0);
            let difference: [__m512; D] =
                core::array::from_fn(|j| _mm512_sub_ps(load(&xa[j]), load(&xb[j])));
            let squares = difference.map(|d| _mm512_mul_ps(d, d));
            let mut s = row_terms(&squares, 0);
            for j in 1..D {
                s = _mm512_add_ps(s, row_terms(&squares, j));
            }
            let (l, k, flagged) = contrastive_lanes::<true>(s, load(y), params);
            *loss = l;
            care |= flagged;
            let (oa, ob) = (oa.as_chunks_mut::<LANES>().0, ob.as_chunks_mut::<LANES>().0);
            for (j, (ya, yb)) in oa.iter_mut().zip(ob).enumerate() {
                let (g, h) = scaled_lanes(permute(k, row_of.lanes_of_vector(j)), difference[j]);
                store_to::<STREAM>(ya, g);
                store_to::<STREAM>(yb, h);
            }
        }
        if care != 0 {
            return None;
        }
        sum += sum_f64_of(losses);
    }
    Some(sum)
}

/// Lane `r` is lane `r·D + j` of the `16·D` lanes of `v` (term `j` of row `r`, for 16 rows
/// of `D`): one two-source permute per pair of vectors, blended.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn row_terms<const D: usize>(v: &[__m512; D], j: usize) -> __m512 {
    // The two-source permute takes its index modulo 32: the same index serves every pair.
    let index = _mm512_add_epi32(
        _mm512_mullo_epi32(lane_numbers(), _mm512_set1_epi32(D as i32)),
        _mm512_set1_epi32(j as i32),
    );
    let mut out = permute2(v[0], index, v[1.min(D - 1)]);
    for pair in 1..D.div_ceil(2) {
        let rows = (0..LANES).filter(|r| (r * D + j) / (2 * LANES) == pair);
        let mask = rows.fold(0u16, |m, r| m | 1 << r);
        let lanes = permute2(v[2 * pair], index, v[(2 * pair + 1).min(D - 1)]);
        out = _mm512_mask_blend_ps(mask, out, lanes);
    }
    out
}

/// The epilogue's loss and coefficient of 16 rows (see
/// `epilogue::contrastive_epilogue`), from their squared distances `s` and labels `y`,
/// with the same operations in the same order (so the same bits), and the rows that need
/// care (`epilogue::needs_care`; their loss is 0). The comparisons are integer ones on the
/// bits, which Miri runs (it does not know the float-compare intrinsic). Without
/// `GRADIENT`, the coefficient is 0, as the epilogue's. Why a copy of the
/// epilogue's arithmetic in intrinsics: the generic epilogue run on the 16 rows through
/// arrays made the one-pass kernel 0.74-0.9x as fast in cache at d = 1 to 3.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn contrastive_lanes<const GRADIENT: bool>(
    s: __m512,
    y: __m512,
    params: [__m512; 4],
) -> (__m512, __m512, __mmask16) {
    let [positive, negative, margin, two_c] = params;
    let bits = _mm512_castps_si512;
    let magnitude = _mm512_set1_epi32(i32::MAX);
    // `x != 0.0` (true for NaN), `x > 0.0`, `MIN_POSITIVE <= x <= MAX`, `|x| <= MAX`.
    let nonzero = |x: __m512| _mm512_test_epi32_mask(bits(x), magnitude);
    let below = |x: __m512i, low: f32, span: u32| {
        let offset = _mm512_sub_epi32(x, _mm512_set1_epi32(low.to_bits() as i32));
        _mm512_cmplt_epu32_mask(offset, _mm512_set1_epi32(span as i32))
    };
    let infinity = f32::INFINITY.to_bits();
    let positive_lanes = |x: __m512| below(bits(x), f32::from_bits(1), infinity);
    let normal = |x: __m512| {
        below(
            bits(x),
            f32::MIN_POSITIVE,
            infinity - f32::MIN_POSITIVE.to_bits(),
        )
    };
    let finite = |x: __m512| below(_mm512_and_si512(bits(x), magnitude), 0.0, infinity);

    let p = _mm512_mul_ps(positive, y);
    let q = _mm512_mul_ps(negative, _mm512_sub_ps(_mm512_set1_ps(1.0), y));
    let d = _mm512_sqrt_ps(s);
    let h = _mm512_sub_ps(margin, d);
    let (similar_rows, active) = (nonzero(p), nonzero(q) & positive_lanes(h));
    let similar = _mm512_maskz_mul_ps(similar_rows, p, s);
    let dissimilar = _mm512_maskz_mul_ps(active, _mm512_mul_ps(q, h), h);
    if !GRADIENT {
        // The epilogue's coefficient without gradient is 0, which is finite.
        let care = !normal(s);
        let loss = _mm512_maskz_add_ps(!care, similar, dissimilar);
        return (loss, _mm512_setzero_ps(), care);
    }
    let k_similar = _mm512_maskz_mul_ps(similar_rows, two_c, p);
    let k_dissimilar = _mm512_maskz_div_ps(active, _mm512_mul_ps(_mm512_mul_ps(two_c, q), h), d);
    let k = _mm512_sub_ps(k_similar, k_dissimilar);
    let care = !(normal(s) & finite(k));
    (_mm512_maskz_add_ps(!care, similar, dissimilar), k, care)
}

/// See `Kernels::contrastive_forward`: rows of up to 8 in whole chunks of 64
/// ([`tiny_forward`]).
#[target_feature(enable = "avx512f,avx2,fma")]
fn contrastive_forward(
    a: &[f32],
    b: &[f32],
    dim: usize,
    labels: &[f32],
    params: [f32; 4],
) -> OnePass {
    let n = dim.checked_mul(labels.len());
    let fits = n.is_some_and(|n| a.len() == n && b.len() == n);
    if !(1..=TINY_ROWS).contains(&dim) || !labels.len().is_multiple_of(EPILOGUE_ROWS) || !fits {
        return OnePass::Declined;
    }
    macro_rules! rows {
        ($d:literal) => {
            tiny_forward::<$d>(a, b, labels, params)
        };
    }
    let sum = match dim {
        1 => rows!(1),
        2 => rows!(2),
        3 => rows!(3),
        4 => rows!(4),
        5 => rows!(5),
        6 => rows!(6),
        7 => rows!(7),
        _ => rows!(8),
    };
    match sum {
        Some(sum) => OnePass::Done(sum),
        None => OnePass::NeedsCare,
    }
}

/// [`tiny_rows`] without the gradient: the losses of rows of `D ≤ 8` in whole chunks of
/// 64 rows, 16 rows a step, with the bits of the block path's forward (the epilogue
/// without gradient: no coefficient, no division); `None` at the first chunk with a row
/// that needs care or a label outside `[0, 1]`. The loop of the AVX2 backend's
/// `tiny_forward`, at this backend's width.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn tiny_forward<const D: usize>(
    a: &[f32],
    b: &[f32],
    labels: &[f32],
    params: [f32; 4],
) -> Option<f64> {
    let (step, chunk) = (D * LANES, D * EPILOGUE_ROWS);
    let params = params.map(|p| _mm512_set1_ps(p));
    let inputs = a.chunks_exact(chunk).zip(b.chunks_exact(chunk));
    let mut sum = 0.0;
    for ((xa, xb), ys) in inputs.zip(labels.as_chunks::<EPILOGUE_ROWS>().0) {
        let mut losses = [_mm512_setzero_ps(); EPILOGUE_ROWS / LANES];
        let mut care = 0;
        let steps = xa.chunks_exact(step).zip(xb.chunks_exact(step));
        let steps = steps.zip(ys.as_chunks::<LANES>().0);
        for (((xa, xb), y), loss) in steps.zip(&mut losses) {
            let (xa, xb) = (xa.as_chunks::<LANES>().0, xb.as_chunks::<LANES>().0);
            let squares: [__m512; D] =
                core::array::from_fn(|j| squared_difference(load(&xa[j]), load(&xb[j])));
            let mut s = row_terms(&squares, 0);
            for j in 1..D {
                s = _mm512_add_ps(s, row_terms(&squares, j));
            }
            let y = load(y);
            let (l, _, flagged) = contrastive_lanes::<false>(s, y, params);
            *loss = l;
            care |= flagged | invalid_labels(y);
        }
        if care != 0 {
            return None;
        }
        sum += sum_f64_of(losses);
    }
    Some(sum)
}

/// The lanes of `y` outside `[0, 1]` (NaN included): as integers, the valid labels are
/// `bits ≤ bits(1.0)` (unsigned) and `−0.0`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn invalid_labels(y: __m512) -> __mmask16 {
    let y = _mm512_castps_si512(y);
    let in_range = _mm512_cmplt_epu32_mask(y, _mm512_set1_epi32(1.0f32.to_bits() as i32 + 1));
    let negative_zero = _mm512_cmpeq_epi32_mask(y, _mm512_set1_epi32(i32::MIN));
    !(in_range | negative_zero)
}

/// Orders earlier non-temporal stores before later stores: they are weakly ordered, and a
/// release store (a plain `mov` on x86) would not wait for them.
fn fence() {
    // SAFETY: SSE, which `sfence` needs, is part of every x86-64 CPU.
    unsafe { _mm_sfence() }
}
