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
// The intrinsics of the loop shapes (`shapes.rs`), by the names they have there.
use core::arch::x86_64::{
    _mm512_add_epi32 as add_i32, _mm512_add_ps as add, _mm512_fmadd_ps as fmadd,
    _mm512_mul_ps as mul, _mm512_mullo_epi32 as mullo_i32, _mm512_set1_epi32 as splat_i32,
    _mm512_set1_ps as splat, _mm512_setzero_ps as zero, _mm512_srli_epi32 as shift_right_i32,
    _mm512_sub_ps as sub,
};

super::shapes::kernel_table!("AVX-512F, AVX2 and FMA");
super::shapes::loop_shapes!("avx512f,avx2,fma", tiny: [1, 2, 3, 4, 5, 6, 7, 8]);

const LANES: usize = 16;
/// This backend's vector.
type Vector = __m512;
/// Its vector of `i32`.
type Indices = __m512i;
/// Rows that need care: a mask register.
type Flags = __mmask16;
/// This backend streams aligned vectors when asked (`store_to`).
const STREAMS: bool = true;
/// The one-pass forward of tiny rows checks each vector of labels (`invalid_labels`), not a
/// chunk at a time: that ran 1.15x as fast in cache at d = 2 and 3 but 1.1-1.2x as long
/// out of cache at d = 2 (best of 9 passes over 64 MiB a side, builds alternating; the
/// cause was not found: the labels' loads were not late).
const TINY_LABELS_BY_CHUNK: bool = false;

// ---------------------------------------------------------------------------------------
// Memory access: every load and store of this backend, bounded by its argument.

/// The 16 elements of `x`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn load(x: &[f32; LANES]) -> __m512 {
    // SAFETY: `x` holds exactly the 16 f32 an unaligned 512-bit load reads.
    unsafe { _mm512_loadu_ps(x.as_ptr()) }
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
// Lane arithmetic.

/// The sum of the 16 lanes.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn sum_lanes(v: __m512) -> f32 {
    _mm512_reduce_add_ps(v)
}

/// No row flagged.
#[inline]
fn no_flags() -> __mmask16 {
    0
}

/// The rows flagged in `x` or `y`.
#[inline]
fn either(x: __mmask16, y: __mmask16) -> __mmask16 {
    x | y
}

/// Whether any row is flagged.
#[inline]
fn any(flags: __mmask16) -> bool {
    flags != 0
}

// ---------------------------------------------------------------------------------------
// The rows kernels of the table (see `Kernels` for their contracts; the other kernels are
// the loop shapes of `shapes.rs`).

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
    transposed_rows::<true>(a, b, dim, out, row);
}

/// The one-pass forward of rows of more than 8 (see `contrastive_forward`), summed as
/// [`squared_euclidean_rows`] sums them: rows of up to 16 here (one masked step a row,
/// through `transposed_forward`), longer ones by the AVX2 kernel whose rows kernel that is,
/// each whole chunk's losses summed as this table's epilogue sums them.
// Not inlined: inlined into `contrastive_forward`, it slowed the tiny rows' loop there
// (AVX2 at d = 2 in cache: 0.26 to 0.22 of the read roofline); it runs once a block.
#[inline(never)]
#[target_feature(enable = "avx512f,avx2,fma")]
fn long_forward(
    a: &[f32],
    b: &[f32],
    dim: usize,
    labels: &[f32],
    params: [f32; 4],
    block_rows: usize,
    total: f64,
) -> Option<f64> {
    let blocks = (block_rows, total);
    let sum_full = |losses: &[__m512; EPILOGUE_ROWS / LANES]| sum_f64_of(*losses);
    if dim == LANES {
        // A whole vector: a masked load of all its lanes, unmasked.
        let row = |x: &[f32], y: &[f32]| match (x.first_chunk(), y.first_chunk()) {
            (Some(x), Some(y)) => squared_difference(load(x), load(y)),
            _ => squared_difference(load_partial(x), load_partial(y)),
        };
        transposed_forward::<true, LANES>(a, b, dim, labels, params, blocks, row, sum_full)
    } else if dim < LANES {
        let row = |x: &[f32], y: &[f32]| squared_difference(load_partial(x), load_partial(y));
        transposed_forward::<true, 0>(a, b, dim, labels, params, blocks, row, sum_full)
    } else {
        let sum_full = |losses: &[__m256; EPILOGUE_ROWS / 8]| {
            let mut all = [0.0f32; EPILOGUE_ROWS];
            let halves = all.as_chunks_mut::<8>().0.iter_mut().zip(losses);
            for (x, &v) in halves {
                store_half(x, v);
            }
            sum_f64(&all)
        };
        super::avx2::long_forward_for_avx512(a, b, dim, labels, params, blocks, sum_full)
    }
}

/// Writes the 8 lanes of `v` to `x`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn store_half(x: &mut [f32; 8], v: __m256) {
    // SAFETY: `x` holds exactly the 8 f32 an unaligned 256-bit store writes.
    unsafe { _mm256_storeu_ps(x.as_mut_ptr(), v) }
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

/// `Σ x` in f64 of the vectors `x`, in order: each 16 floats widened to two vectors of 8
/// doubles, summed in two accumulators, then across lanes: 8 conversions a block where the
/// generic `epilogue::sum_f64`, compiled for baseline x86-64, needs 32.
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

// ---------------------------------------------------------------------------------------
// Forward and gradient in one pass: what the loop shapes of tiny rows need.

/// The sums of 16 rows of `D ≤ 8` whose squared differences are the `D` vectors `squares`
/// (element `j` of row `r` in lane `(r·D + j) mod 16` of vector `⌊(r·D + j) / 16⌋`), as
/// [`packed_squared_rows`] sums them: each row's terms added in element order.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn row_sums<const D: usize>(squares: &[__m512; D]) -> __m512 {
    let mut s = row_terms(squares, 0);
    for j in 1..D {
        s = _mm512_add_ps(s, row_terms(squares, j));
    }
    s
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

/// The epilogue's loss without gradient of 16 rows (see `contrastive_lanes::<false>`), for
/// the one-pass forward, and the rows that need care (`s` not normal). Fewer operations:
/// `p·s` and `q·h·h` are not masked where `p` or `q` is zero, and `h > 0` is one signed
/// integer compare on its bits (true for positive NaN too). The same bits wherever the row
/// needs no care: `s` is then normal, so `d`, `h` and the products are not NaN, a zero
/// weight makes a product ±0 where the epilogue selects +0, and `±0 + x` is the same as
/// `+0 + x` unless `x` is ±0 too, where the loss may be −0.0 here and +0.0 there, which
/// adds the same to the f64 sums (which start at +0.0). Rows that need care have loss 0.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn forward_lanes(s: __m512, y: __m512, params: [__m512; 4]) -> (__m512, __mmask16) {
    let [positive, negative, margin, _] = params;
    let p = _mm512_mul_ps(positive, y);
    let q = _mm512_mul_ps(negative, _mm512_sub_ps(_mm512_set1_ps(1.0), y));
    let d = _mm512_sqrt_ps(s);
    let h = _mm512_sub_ps(margin, d);
    let active = _mm512_cmpgt_epi32_mask(_mm512_castps_si512(h), _mm512_setzero_si512());
    let similar = _mm512_mul_ps(p, s);
    let dissimilar = _mm512_maskz_mul_ps(active, _mm512_mul_ps(q, h), h);
    // `MIN_POSITIVE <= s <= MAX`, on the bits (as in `contrastive_lanes`).
    let low = f32::MIN_POSITIVE.to_bits();
    let offset = _mm512_sub_epi32(_mm512_castps_si512(s), _mm512_set1_epi32(low as i32));
    let span = _mm512_set1_epi32((f32::INFINITY.to_bits() - low) as i32);
    let normal = _mm512_cmplt_epu32_mask(offset, span);
    (_mm512_maskz_add_ps(normal, similar, dissimilar), !normal)
}

/// The lane-wise unsigned maximum of `max` and the bits of `y`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn label_bits_max(max: __m512i, y: __m512) -> __m512i {
    _mm512_max_epu32(max, _mm512_castps_si512(y))
}

/// Whether a lane of `max` is above the bits of 1.0.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn labels_above_one(max: __m512i) -> bool {
    let one = _mm512_set1_epi32(1.0f32.to_bits() as i32);
    _mm512_cmpgt_epu32_mask(max, one) != 0
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
