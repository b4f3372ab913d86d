//! AVX2+FMA kernels: 8 lanes, four accumulators, masked loads and stores
//! (`vmaskmovps`) for tails.
//!
//! Intrinsics: `loadu`/`storeu`, `maskload`/`maskstore`, `sub`/`mul`/`fmadd`/`add`,
//! `and`/`andnot`, `cmp_ps` (the one-pass epilogue), integer `cmpgt`/`cmpeq`/`mullo`/
//! `srli`, the fixed shuffles `unpack{lo,hi}_{ps,pd}`, `permute_ps`, 128-bit extracts,
//! `set_m128` and `add_ss` (transposed row sums, and one row's sum in the same order),
//! `permutevar8x32`, `shuffle_ps`, `blend_ps` and `permute4x64_pd` (rows shorter than a
//! vector), `sqrt`, `div` and `cvtps_pd` (the one-pass epilogue and the f64 sum of
//! losses). Miri runs all of them.

use crate::kernels::epilogue::contrastive_row;
use crate::kernels::{EPILOGUE_ROWS, OnePass};
use core::arch::x86_64::*;
// The intrinsics of the loop shapes (`shapes.rs`), by the names they have there.
use core::arch::x86_64::{
    _mm256_add_epi32 as add_i32, _mm256_add_ps as add, _mm256_fmadd_ps as fmadd,
    _mm256_mul_ps as mul, _mm256_mullo_epi32 as mullo_i32, _mm256_set1_epi32 as splat_i32,
    _mm256_set1_ps as splat, _mm256_setzero_ps as zero, _mm256_srli_epi32 as shift_right_i32,
    _mm256_sub_ps as sub,
};

super::shapes::kernel_table!("AVX2 and FMA");
super::shapes::loop_shapes!("avx2,fma", tiny: [1, 2, 3, 4]);

const LANES: usize = 8;
/// This backend's vector.
type Vector = __m256;
/// Its vector of `i32`.
type Indices = __m256i;
/// Rows that need care: all bits set in their lanes.
type Flags = __m256i;
/// This backend makes no non-temporal stores (`store_to` ignores `STREAM`).
const STREAMS: bool = false;
/// The one-pass forward of tiny rows checks its labels a chunk at a time (one unsigned
/// maximum a vector of labels): in cache at d = 2 and 3 it ran 1.03-1.05x as fast as with
/// a check of each vector, out of cache no slower.
const TINY_LABELS_BY_CHUNK: bool = true;

// ---------------------------------------------------------------------------------------
// Memory access: every load and store of this backend, bounded by its argument.

/// The 8 elements of `x`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn load(x: &[f32; LANES]) -> __m256 {
    // SAFETY: `x` holds exactly the 8 f32 an unaligned 256-bit load reads.
    unsafe { _mm256_loadu_ps(x.as_ptr()) }
}

/// A lane mask (all bits set) of lanes `0..n`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn first_lanes(n: usize) -> __m256i {
    let n = n.min(LANES) as i32;
    _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane_numbers())
}

/// The first `min(x.len(), 8)` elements of `x` in the low lanes, zeros above.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn load_partial(x: &[f32]) -> __m256 {
    // SAFETY: the mask enables only lanes `i < x.len()`, which lie inside `x`; a masked
    // load neither reads nor faults on disabled lanes.
    unsafe { _mm256_maskload_ps(x.as_ptr(), first_lanes(x.len())) }
}

/// Writes the 8 lanes of `v` to `x`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn store(x: &mut [f32; LANES], v: __m256) {
    // SAFETY: `x` holds exactly the 8 f32 an unaligned 256-bit store writes.
    unsafe { _mm256_storeu_ps(x.as_mut_ptr(), v) }
}

/// Writes the 8 lanes of `v` to `x`: ordinary stores only, `STREAM` or not.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn store_to<const STREAM: bool>(x: &mut [f32; LANES], v: __m256) {
    store(x, v)
}

/// Writes the 4 doubles of `v` to `x`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn store_f64(x: &mut [f64; 4], v: __m256d) {
    // SAFETY: `x` holds exactly the 4 f64 an unaligned 256-bit store writes.
    unsafe { _mm256_storeu_pd(x.as_mut_ptr(), v) }
}

/// Writes the low `min(x.len(), 8)` lanes of `v` to `x`, four, two and one at a time:
/// `vmaskmovps` stores cost about 40 times a plain store on Zen 4 (measured), too much
/// for the tail of every short row.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn store_partial(x: &mut [f32], v: __m256) {
    let n = x.len().min(LANES);
    let (four, rest) = x[..n].split_at_mut(n & 4);
    let (two, one) = rest.split_at_mut(n & 2);
    let mut low = _mm256_castps256_ps128(v);
    if let Ok(four) = <&mut [f32; 4]>::try_from(four) {
        // SAFETY: `four` holds the 4 f32 an unaligned 128-bit store writes.
        unsafe { _mm_storeu_ps(four.as_mut_ptr(), low) };
        low = _mm256_extractf128_ps::<1>(v);
    }
    if let Ok(two) = <&mut [f32; 2]>::try_from(two) {
        // SAFETY: `two` holds the 8 bytes `movq` writes, with no alignment required.
        unsafe { _mm_storel_epi64(two.as_mut_ptr().cast(), _mm_castps_si128(low)) };
        low = _mm_movehl_ps(low, low);
    }
    if let Some(one) = one.first_mut() {
        *one = _mm_cvtss_f32(low);
    }
}

// ---------------------------------------------------------------------------------------
// Lane arithmetic.

/// The numbers 0..8, one per lane.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn lane_numbers() -> __m256i {
    _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)
}

/// The sum of the 8 lanes (halves, then quarters, then the last pair).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn sum_lanes(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}

/// Lane `i` is lane `idx[i] mod 8` of `v`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn permute(v: __m256, idx: __m256i) -> __m256 {
    _mm256_permutevar8x32_ps(v, idx)
}

/// `(k·difference, −k·difference)`, lane by lane; exact zeros where `k == 0`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn scaled_lanes(k: __m256, difference: __m256) -> (__m256, __m256) {
    let g = _mm256_and_ps(nonzero(k), _mm256_mul_ps(k, difference));
    (g, _mm256_sub_ps(_mm256_setzero_ps(), g))
}

/// No row flagged.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn no_flags() -> __m256i {
    _mm256_setzero_si256()
}

/// The rows flagged in `x` or `y`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn either(x: __m256i, y: __m256i) -> __m256i {
    _mm256_or_si256(x, y)
}

/// Whether any row is flagged (through memory: Miri runs plain loads and stores).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn any(flags: __m256i) -> bool {
    let mut lanes = [0.0f32; LANES];
    store(&mut lanes, _mm256_castsi256_ps(flags));
    lanes.iter().any(|f| f.to_bits() != 0)
}

/// `Σ x` in f64 of the vectors `x`, in order, with the bits of `epilogue::sum_f64` (eight
/// partial sums, element `i` of every 8 into partial `i`, then the partials in order), the
/// partials in two vectors of 4 doubles: 16 conversions a chunk where that function,
/// compiled for baseline x86-64, needs 32 and as many additions.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn sum_f64_of(x: impl IntoIterator<Item = __m256>) -> f64 {
    let (mut low, mut high) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    for v in x {
        low = _mm256_add_pd(low, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        high = _mm256_add_pd(high, _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v)));
    }
    let mut partial = [[0.0f64; 4]; 2];
    store_f64(&mut partial[0], low);
    store_f64(&mut partial[1], high);
    partial.as_flattened().iter().sum()
}

/// All bits set where the lane of `k` is nonzero (NaN included), clear where it is ±0.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn nonzero(k: __m256) -> __m256 {
    let magnitude = _mm256_and_si256(_mm256_castps_si256(k), _mm256_set1_epi32(i32::MAX));
    let is_zero = _mm256_cmpeq_epi32(magnitude, _mm256_setzero_si256());
    _mm256_castsi256_ps(_mm256_xor_si256(is_zero, _mm256_set1_epi32(-1)))
}

// ---------------------------------------------------------------------------------------
// The rows kernels of the table (see `Kernels` for their contracts; the other kernels are
// the loop shapes of `shapes.rs`).

#[target_feature(enable = "avx2,fma")]
pub(super) fn squared_euclidean_rows(a: &[f32], b: &[f32], dim: usize, out: &mut [f32]) {
    if dim == 0 {
        out.fill(0.0);
        return;
    }
    let rows = (a.len().min(b.len()) / dim).min(out.len());
    let (a, b, out) = (&a[..rows * dim], &b[..rows * dim], &mut out[..rows]);
    match dim {
        1 => grouped_squared_rows::<1>(a, b, out),
        2 => grouped_squared_rows::<2>(a, b, out),
        3 => grouped_squared_rows::<3>(a, b, out),
        4 => grouped_squared_rows::<4>(a, b, out),
        _ => transposed_squared_rows(a, b, dim, out),
    }
}

#[target_feature(enable = "avx2,fma")]
fn scaled_difference_rows(
    a: &[f32],
    b: &[f32],
    dim: usize,
    k: &[f32],
    out_a: &mut [f32],
    out_b: &mut [f32],
    _stream: bool,
) {
    if dim == 0 {
        return;
    }
    let len = a.len().min(b.len()).min(out_a.len()).min(out_b.len());
    let rows = (len / dim).min(k.len());
    let n = rows * dim;
    let (a, b, k) = (&a[..n], &b[..n], &k[..rows]);
    let (out_a, out_b) = (&mut out_a[..n], &mut out_b[..n]);
    let done = if dim <= LANES {
        grouped_scaled_rows(a, b, dim, k, out_a, out_b)
    } else if dim.is_multiple_of(LANES) {
        whole_vector_scaled_rows(a, b, dim, k, out_a, out_b)
    } else {
        0
    };
    let rows = a[done..].chunks_exact(dim).zip(b[done..].chunks_exact(dim));
    let outs = out_a[done..]
        .chunks_exact_mut(dim)
        .zip(out_b[done..].chunks_exact_mut(dim));
    for (((ra, rb), (oa, ob)), &k) in rows.zip(outs).zip(&k[done / dim..]) {
        scaled_difference(ra, rb, k, oa, ob);
    }
}

// ---------------------------------------------------------------------------------------
// Rows shorter than a vector: stream the buffer, not one call per row.

/// `out[r] = Σ (a_r − b_r)²` for rows of `D ≤ 4` elements (`a` and `b` hold exactly
/// `out.len()` rows). Eight rows are `D` whole vectors; element `j` of row `r` sits in
/// lane `(r·D + j) mod 8` of vector `⌊(r·D + j) / 8⌋`, so each (vector, element) pair is one
/// permute to lane `r` and a mask of the rows it serves, and the eight sums leave in one
/// store. Leftover rows (fewer than eight) are summed element by element in the same
/// order, so that a row's sum has the same bits wherever it sits in the batch.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn grouped_squared_rows<const D: usize>(a: &[f32], b: &[f32], out: &mut [f32]) {
    let group = LANES * D;
    let (groups_a, groups_b) = (a.chunks_exact(group), b.chunks_exact(group));
    let (rest_a, rest_b) = (groups_a.remainder(), groups_b.remainder());
    let (groups_out, rest_out) = out.as_chunks_mut::<LANES>();
    for ((ga, gb), o) in groups_a.zip(groups_b).zip(groups_out) {
        let (va, vb) = (ga.as_chunks::<LANES>().0, gb.as_chunks::<LANES>().0);
        let squares: [__m256; D] =
            core::array::from_fn(|v| squared_difference(load(&va[v]), load(&vb[v])));
        store(o, row_sums(&squares));
    }
    // The groups add each row's squares to 0 in element order (the masked-out lanes add
    // +0, which changes no sum); so does this, with no fused multiply-add.
    let rows = rest_a.chunks_exact(D).zip(rest_b.chunks_exact(D));
    for (o, (ra, rb)) in rest_out.iter_mut().zip(rows) {
        *o = ra
            .iter()
            .zip(rb)
            .fold(0.0, |sum, (x, y)| sum + (x - y) * (x - y));
    }
}

/// The sums of 8 rows of `D ≤ 4` whose squared differences are the `D` vectors `squares`
/// (element `j` of row `r` in lane `(r·D + j) mod 8` of vector `⌊(r·D + j) / 8⌋`): each
/// row's terms added to 0 in element order, so the bits of a plain loop without fused
/// multiply-adds. (See [`grouped_squared_rows`].)
#[inline]
#[target_feature(enable = "avx2,fma")]
fn row_sums<const D: usize>(squares: &[__m256; D]) -> __m256 {
    // Rows of 2, 3 and 4 by fixed shuffles and blends: 4, 17 and 12 instructions where
    // the masked permutes below take 12, 27 and 48.
    if let [x, y] = squares[..] {
        // Rows 0 1 4 5 | 2 3 6 7: each row's first term plus its second.
        let first = _mm256_shuffle_ps::<0b10_00_10_00>(x, y);
        let second = _mm256_shuffle_ps::<0b11_01_11_01>(x, y);
        let sums = _mm256_castps_pd(_mm256_add_ps(first, second));
        return _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(sums));
    }
    if let [v0, v1, v2] = squares[..] {
        // Term j of the 8 rows is element 3r + j: lane (3r + j) mod 8, the same index in
        // each of the three vectors, of vector ⌊(3r + j) / 8⌋, chosen by fixed blends.
        let gather = |index: __m256i| {
            (
                _mm256_permutevar8x32_ps(v0, index),
                _mm256_permutevar8x32_ps(v1, index),
                _mm256_permutevar8x32_ps(v2, index),
            )
        };
        let (x, y, z) = gather(_mm256_setr_epi32(0, 3, 6, 1, 4, 7, 2, 5));
        let t0 = _mm256_blend_ps::<0b1100_0000>(_mm256_blend_ps::<0b0011_1000>(x, y), z);
        let (x, y, z) = gather(_mm256_setr_epi32(1, 4, 7, 2, 5, 0, 3, 6));
        let t1 = _mm256_blend_ps::<0b1110_0000>(_mm256_blend_ps::<0b0001_1000>(x, y), z);
        let (x, y, z) = gather(_mm256_setr_epi32(2, 5, 0, 3, 6, 1, 4, 7));
        let t2 = _mm256_blend_ps::<0b1110_0000>(_mm256_blend_ps::<0b0001_1100>(x, y), z);
        return _mm256_add_ps(_mm256_add_ps(t0, t1), t2);
    }
    if let [v0, v1, v2, v3] = squares[..] {
        // A 4 × 4 transpose in each 128-bit half: term j of rows 0 2 4 6 | 1 3 5 7.
        let (t0, t1) = (_mm256_unpacklo_ps(v0, v1), _mm256_unpackhi_ps(v0, v1));
        let (t2, t3) = (_mm256_unpacklo_ps(v2, v3), _mm256_unpackhi_ps(v2, v3));
        let pd = _mm256_castps_pd;
        let ps = _mm256_castpd_ps;
        let terms = [
            ps(_mm256_unpacklo_pd(pd(t0), pd(t2))),
            ps(_mm256_unpackhi_pd(pd(t0), pd(t2))),
            ps(_mm256_unpacklo_pd(pd(t1), pd(t3))),
            ps(_mm256_unpackhi_pd(pd(t1), pd(t3))),
        ];
        let sums = _mm256_add_ps(
            _mm256_add_ps(_mm256_add_ps(terms[0], terms[1]), terms[2]),
            terms[3],
        );
        let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        return _mm256_permutevar8x32_ps(sums, order);
    }
    let row_start = _mm256_mullo_epi32(lane_numbers(), _mm256_set1_epi32(D as i32));
    let mut sums = _mm256_setzero_ps();
    for (v, &squares) in squares.iter().enumerate() {
        for j in 0..D {
            let element = _mm256_add_epi32(row_start, _mm256_set1_epi32(j as i32));
            let lane = _mm256_and_si256(element, _mm256_set1_epi32(LANES as i32 - 1));
            let vector = _mm256_srli_epi32::<3>(element);
            let here = _mm256_cmpeq_epi32(vector, _mm256_set1_epi32(v as i32));
            let moved = _mm256_permutevar8x32_ps(squares, lane);
            sums = _mm256_add_ps(sums, _mm256_and_ps(moved, _mm256_castsi256_ps(here)));
        }
    }
    sums
}

/// `out[r] = Σ (a_r − b_r)²` for rows of `dim ≥ 5`: each row's lane-wise sums come from one
/// masked step (`dim ≤ 8`), a whole and a masked one (`dim ≤ 16`) or the pair loop, and 8
/// rows at a time are summed across lanes together by a transpose ([`sum_each`]).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn transposed_squared_rows(a: &[f32], b: &[f32], dim: usize, out: &mut [f32]) {
    if dim <= LANES {
        // One masked step per row, its mask in a register: no length dispatch per row.
        let row = |x: &[f32], y: &[f32]| squared_difference(load_partial(x), load_partial(y));
        transposed_rows::<true>(a, b, dim, out, row);
    } else if dim == 2 * LANES {
        // Two whole vectors, added (as below, without the masked load's cost).
        let row = |x: &[f32], y: &[f32]| match (x.as_chunks::<LANES>(), y.as_chunks::<LANES>()) {
            (([x0, x1], _), ([y0, y1], _)) => _mm256_add_ps(
                squared_difference(load(x0), load(y0)),
                squared_difference(load(x1), load(y1)),
            ),
            _ => squared_euclidean_lanes(x, y),
        };
        transposed_rows::<true>(a, b, dim, out, row);
    } else if dim <= 2 * LANES {
        // A whole vector and a masked one, added: the bits of the pair loop's sums (its
        // single vector in one accumulator, its tail in another, the other two zero), with
        // none of its length dispatch per row.
        let row = |x: &[f32], y: &[f32]| match (x.split_first_chunk(), y.split_first_chunk()) {
            (Some((x0, x1)), Some((y0, y1))) => _mm256_add_ps(
                squared_difference(load(x0), load(y0)),
                squared_difference(load_partial(x1), load_partial(y1)),
            ),
            _ => squared_euclidean_lanes(x, y),
        };
        transposed_rows::<true>(a, b, dim, out, row);
    } else {
        transposed_rows::<false>(a, b, dim, out, |x, y| squared_euclidean_lanes(x, y));
    }
}

/// The one-pass forward of rows of more than 4 (see `contrastive_forward`): each row's
/// lane-wise sums as [`transposed_squared_rows`] takes them (the same `row` for the same
/// `dim`), through `transposed_forward`; `sum_full` sums a whole chunk of 64 losses (the
/// table's epilogue's sum: this backend's, or AVX-512's, whose rows kernel is this one's
/// for rows longer than its vector).
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) fn long_forward_with(
    a: &[f32],
    b: &[f32],
    dim: usize,
    labels: &[f32],
    params: [f32; 4],
    blocks: (usize, f64),
    sum_full: impl Fn(&[__m256; EPILOGUE_ROWS / LANES]) -> f64,
) -> Option<f64> {
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
    } else if dim == 2 * LANES {
        let row = |x: &[f32], y: &[f32]| match (x.as_chunks::<LANES>(), y.as_chunks::<LANES>()) {
            (([x0, x1], _), ([y0, y1], _)) => _mm256_add_ps(
                squared_difference(load(x0), load(y0)),
                squared_difference(load(x1), load(y1)),
            ),
            _ => squared_euclidean_lanes(x, y),
        };
        transposed_forward::<true, { 2 * LANES }>(a, b, dim, labels, params, blocks, row, sum_full)
    } else if dim <= 2 * LANES {
        let row = |x: &[f32], y: &[f32]| match (x.split_first_chunk(), y.split_first_chunk()) {
            (Some((x0, x1)), Some((y0, y1))) => _mm256_add_ps(
                squared_difference(load(x0), load(y0)),
                squared_difference(load_partial(x1), load_partial(y1)),
            ),
            _ => squared_euclidean_lanes(x, y),
        };
        transposed_forward::<true, 0>(a, b, dim, labels, params, blocks, row, sum_full)
    } else {
        let row = |x: &[f32], y: &[f32]| squared_euclidean_lanes(x, y);
        transposed_forward::<false, 0>(a, b, dim, labels, params, blocks, row, sum_full)
    }
}

/// [`long_forward_with`] as the AVX-512 table's forward of rows longer than its vector
/// (its rows kernel for them is this backend's), compiled here, for AVX2 and FMA:
/// inlined into the AVX-512 kernel (compiled with AVX-512F), the same loops ran 1.05-1.2x
/// as long in cache at d = 32, 128 and 768 (best of 9, builds alternating). `sum_full`
/// (AVX-512's sum of a whole chunk, so that the bits are that table's block path's) stays
/// a call, once a chunk of 64 rows.
#[inline(never)]
#[target_feature(enable = "avx2,fma")]
pub(super) fn long_forward_for_avx512(
    a: &[f32],
    b: &[f32],
    dim: usize,
    labels: &[f32],
    params: [f32; 4],
    blocks: (usize, f64),
    sum_full: impl Fn(&[__m256; EPILOGUE_ROWS / LANES]) -> f64,
) -> Option<f64> {
    long_forward_with(a, b, dim, labels, params, blocks, sum_full)
}

/// [`long_forward_with`] this backend's sum of a chunk of losses.
// Not inlined: inlined into `contrastive_forward`, it slowed the tiny rows' loop there
// (AVX2 at d = 2 in cache: 0.26 to 0.22 of the read roofline); it runs once a block.
#[inline(never)]
#[target_feature(enable = "avx2,fma")]
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
    long_forward_with(a, b, dim, labels, params, blocks, |l| sum_f64_of(*l))
}

/// Lane `r` of the result is the sum of the 8 lanes of `v[r]`: a transpose folded into the
/// additions (unpack pairs of rows, then pairs of pairs, then 128-bit halves).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn sum_each(v: [__m256; LANES]) -> __m256 {
    // Lanes 0 and 2 of each half hold partial sums of row 2i, lanes 1 and 3 of row 2i+1.
    let pairs: [__m256; 4] = core::array::from_fn(|i| {
        let (x, y) = (v[2 * i], v[2 * i + 1]);
        _mm256_add_ps(_mm256_unpacklo_ps(x, y), _mm256_unpackhi_ps(x, y))
    });
    // Rows 4i..4i+4 in lanes 0..4 of both halves.
    let quads: [__m256; 2] = core::array::from_fn(|i| {
        let (x, y) = (
            _mm256_castps_pd(pairs[2 * i]),
            _mm256_castps_pd(pairs[2 * i + 1]),
        );
        // Moved as pairs of f32 (64-bit lanes), added as f32.
        _mm256_add_ps(
            _mm256_castpd_ps(_mm256_unpacklo_pd(x, y)),
            _mm256_castpd_ps(_mm256_unpackhi_pd(x, y)),
        )
    });
    let [x, y] = quads;
    let low = _mm256_set_m128(_mm256_castps256_ps128(y), _mm256_castps256_ps128(x));
    let high = _mm256_set_m128(_mm256_extractf128_ps::<1>(y), _mm256_extractf128_ps::<1>(x));
    _mm256_add_ps(low, high)
}

/// Out rows of `dim ≤ 8`, eight whole rows at a time: they are `dim` whole vectors, and
/// the coefficient of each lane (`k` of its row) comes from one permute of the eight
/// coefficients; rows with `k == 0` are masked to exact zeros. Returns how many elements
/// it wrote (whole groups only).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn grouped_scaled_rows(
    a: &[f32],
    b: &[f32],
    dim: usize,
    k: &[f32],
    out_a: &mut [f32],
    out_b: &mut [f32],
) -> usize {
    let group = LANES * dim;
    let row_of = RowOf::new(dim);
    let inputs = a.chunks_exact(group).zip(b.chunks_exact(group));
    let outputs = out_a
        .chunks_exact_mut(group)
        .zip(out_b.chunks_exact_mut(group));
    let mut done = 0;
    for (((ga, gb), (oa, ob)), k) in inputs.zip(outputs).zip(k.as_chunks::<LANES>().0) {
        let k = load(k);
        let vectors = ga
            .as_chunks::<LANES>()
            .0
            .iter()
            .zip(gb.as_chunks::<LANES>().0);
        let outs = oa.as_chunks_mut::<LANES>().0.iter_mut();
        let outs = outs.zip(ob.as_chunks_mut::<LANES>().0);
        for (j, ((xa, xb), (ya, yb))) in vectors.zip(outs).enumerate() {
            let k = permute(k, row_of.lanes_of_vector(j));
            let (g, h) = scaled_lanes(k, sub(load(xa), load(xb)));
            store(ya, g);
            store(yb, h);
        }
        done += group;
    }
    done
}

/// Out rows of a multiple of 8 elements, each a few whole vectors with its `k` broadcast:
/// what [`scaled_difference`] writes, without its length dispatch per row (at d = 16 a
/// call per row cost more than the row's arithmetic). Returns how many elements it wrote
/// (all of them).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn whole_vector_scaled_rows(
    a: &[f32],
    b: &[f32],
    dim: usize,
    k: &[f32],
    out_a: &mut [f32],
    out_b: &mut [f32],
) -> usize {
    let zero = _mm256_setzero_ps();
    let rows = a.chunks_exact(dim).zip(b.chunks_exact(dim));
    let outs = out_a.chunks_exact_mut(dim).zip(out_b.chunks_exact_mut(dim));
    for (((ra, rb), (oa, ob)), &k) in rows.zip(outs).zip(k) {
        let keep = _mm256_castsi256_ps(_mm256_set1_epi32(if k != 0.0 { -1 } else { 0 }));
        let k = _mm256_set1_ps(k);
        let vectors = ra
            .as_chunks::<LANES>()
            .0
            .iter()
            .zip(rb.as_chunks::<LANES>().0);
        let outs = oa.as_chunks_mut::<LANES>().0.iter_mut();
        for ((xa, xb), (ya, yb)) in vectors.zip(outs.zip(ob.as_chunks_mut::<LANES>().0)) {
            let g = _mm256_and_ps(keep, _mm256_mul_ps(k, _mm256_sub_ps(load(xa), load(xb))));
            store(ya, g);
            store(yb, _mm256_sub_ps(zero, g));
        }
    }
    a.len() / dim * dim
}

// ---------------------------------------------------------------------------------------
// Rows longer than two vectors: forward and gradient in one pass.

/// Whether rows of `dim` take [`long_rows`] (on this backend and on AVX-512, whose rows
/// kernel is this backend's for them): rows of 48 or more, and rows of 24 or more
/// when the gradients go beyond the caches with non-temporal stores (`non_temporal`:
/// AVX-512's, when its gradients stream). Measured on AVX-512 against the block path,
/// alternating in one process: in cache (256 KiB a side) 0.70x at d = 24, 0.85x at 32,
/// 1.06x at 48, 1.27-1.39x at 64 to 768; out of cache (64 MiB a side, streaming) 1.2-1.3x
/// from d = 24 to 768, 0.94x at 17 (the per-row work of rows this short costs more than
/// the block path's vectorized epilogue). This backend has no non-temporal stores, and
/// its rows of 24 to 47 beyond the caches were not measured: they keep the block path.
pub(super) fn takes_long_rows(dim: usize, non_temporal: bool) -> bool {
    dim >= 48 || (non_temporal && dim >= 24)
}

/// The squared distance of a row of more than 8 elements, with the bits
/// [`transposed_squared_rows`] gives it: its lane sums, then across lanes in the order of
/// [`sum_each`] (lanes 0 + 2 and 1 + 3 of each half, then those two, then the halves).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn row_squared_euclidean(a: &[f32], b: &[f32]) -> f32 {
    let v = squared_euclidean_lanes(a, b);
    let v = _mm256_add_ps(v, _mm256_permute_ps::<0b01_00_11_10>(v));
    let v = _mm256_add_ps(v, _mm256_permute_ps::<0b10_11_00_01>(v));
    _mm_cvtss_f32(_mm_add_ss(
        _mm256_castps256_ps128(v),
        _mm256_extractf128_ps::<1>(v),
    ))
}

/// The one-pass forward and gradient of long rows ([`takes_long_rows`]; see
/// `Kernels::contrastive_one_pass`), declined otherwise: per row, its squared distance
/// ([`row_squared_euclidean`]), its loss and coefficient (`epilogue::contrastive_row`),
/// then `write` of its gradients (`k·(a − b)` and the negation, as the backend's
/// `scaled_difference`), the row still in L1. `sum_f64` is the backend's sum of a full
/// chunk of losses. The block path's passes over a block take turns at loading and
/// storing; row by row, they overlap.
#[allow(clippy::too_many_arguments)]
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) fn long_rows(
    a: &[f32],
    b: &[f32],
    dim: usize,
    labels: &[f32],
    params: [f32; 4],
    grad_a: &mut [f32],
    grad_b: &mut [f32],
    non_temporal: bool,
    sum_f64: impl Fn(&[f32; EPILOGUE_ROWS]) -> f64,
    mut write: impl FnMut(&[f32], &[f32], f32, &mut [f32], &mut [f32]),
) -> OnePass {
    if !takes_long_rows(dim, non_temporal) || !super::rows_fit(a, b, dim, labels, grad_a, grad_b) {
        return OnePass::Declined;
    }
    // No wrap (`dim · labels.len()` did not overflow, but `dim · 64` may).
    let chunk = dim.saturating_mul(EPILOGUE_ROWS);
    let inputs = a.chunks(chunk).zip(b.chunks(chunk));
    let outputs = grad_a.chunks_mut(chunk).zip(grad_b.chunks_mut(chunk));
    let mut sum = 0.0;
    for (((ca, cb), ys), (ga, gb)) in inputs.zip(labels.chunks(EPILOGUE_ROWS)).zip(outputs) {
        let mut losses = [0.0f32; EPILOGUE_ROWS];
        let rows = ca.chunks_exact(dim).zip(cb.chunks_exact(dim));
        let outs = ga.chunks_exact_mut(dim).zip(gb.chunks_exact_mut(dim));
        for ((((ra, rb), (oa, ob)), &y), loss) in rows.zip(outs).zip(ys).zip(&mut losses) {
            let s = row_squared_euclidean(ra, rb);
            let (l, k, care) = contrastive_row::<true>(s, y, params);
            if care {
                return OnePass::NeedsCare;
            }
            *loss = l;
            write(ra, rb, k, oa, ob);
        }
        // As the block path's epilogue sums a full chunk, and a shorter one.
        let losses = &losses[..ys.len()];
        sum += match <&[f32; EPILOGUE_ROWS]>::try_from(losses) {
            Ok(full) => sum_f64(full),
            Err(_) => losses.iter().map(|&l| f64::from(l)).sum::<f64>(),
        };
    }
    OnePass::Done(sum)
}

/// The epilogue's loss without gradient of 8 rows (see `contrastive_lanes::<false>`), for
/// the one-pass forward, and the rows that need care (`s` not normal, all bits set).
/// Fewer operations: `p·s` and `q·h·h` are not masked where `p` or `q` is zero. The same
/// bits wherever the row needs no care: `s` is then normal, so `d`, `h` and the products
/// are not NaN, a zero weight makes a product ±0 where the epilogue selects +0, and
/// `±0 + x` is the same as `+0 + x` unless `x` is ±0 too, where the loss may be −0.0 here
/// and +0.0 there, which adds the same to the f64 sums (which start at +0.0). Rows that
/// need care have loss 0.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn forward_lanes(s: __m256, y: __m256, params: [__m256; 4]) -> (__m256, __m256i) {
    let [positive, negative, margin, _] = params;
    let p = _mm256_mul_ps(positive, y);
    let q = _mm256_mul_ps(negative, _mm256_sub_ps(_mm256_set1_ps(1.0), y));
    let d = _mm256_sqrt_ps(s);
    let h = _mm256_sub_ps(margin, d);
    let active = _mm256_cmp_ps::<_CMP_GT_OQ>(h, _mm256_setzero_ps());
    let similar = _mm256_mul_ps(p, s);
    let dissimilar = _mm256_and_ps(active, _mm256_mul_ps(_mm256_mul_ps(q, h), h));
    // Not `MIN_POSITIVE ≤ s ≤ MAX` (unordered: true for NaN).
    let care = _mm256_or_ps(
        _mm256_cmp_ps::<_CMP_NGE_UQ>(s, _mm256_set1_ps(f32::MIN_POSITIVE)),
        _mm256_cmp_ps::<_CMP_NLE_UQ>(s, _mm256_set1_ps(f32::MAX)),
    );
    let loss = _mm256_andnot_ps(care, _mm256_add_ps(similar, dissimilar));
    (loss, _mm256_castps_si256(care))
}

/// The lane-wise unsigned maximum of `max` and the bits of `y`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn label_bits_max(max: __m256i, y: __m256) -> __m256i {
    _mm256_max_epu32(max, _mm256_castps_si256(y))
}

/// Whether a lane of `max` is above the bits of 1.0.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn labels_above_one(max: __m256i) -> bool {
    let one = _mm256_set1_epi32(1.0f32.to_bits() as i32);
    let at_most_one = _mm256_cmpeq_epi32(_mm256_max_epu32(max, one), one);
    _mm256_movemask_ps(_mm256_castsi256_ps(at_most_one)) != 0xff
}

/// All bits set in the lanes of `y` outside `[0, 1]` (NaN included).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn invalid_labels(y: __m256) -> __m256i {
    // `0 ≤ y ≤ 1` (−0.0 included), ordered: false for NaN.
    let valid = _mm256_and_ps(
        _mm256_cmp_ps::<_CMP_GE_OQ>(y, _mm256_setzero_ps()),
        _mm256_cmp_ps::<_CMP_LE_OQ>(y, _mm256_set1_ps(1.0)),
    );
    _mm256_xor_si256(_mm256_castps_si256(valid), _mm256_set1_epi32(-1))
}

/// The epilogue's loss and coefficient of 8 rows (see `epilogue::contrastive_epilogue`),
/// from their squared distances `s` and labels `y`, with the same operations in the same
/// order (so the same bits), and the rows that need care (`epilogue::needs_care`, all bits
/// set; their loss is 0). Without `GRADIENT`, the coefficient is 0, as the epilogue's.
/// Float compares (`vcmpps`, one instruction each where integer compares on the bits
/// took two or three), which Miri runs for 256-bit vectors.
/// The AVX-512 backend's `contrastive_lanes` with masks in vectors.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn contrastive_lanes<const GRADIENT: bool>(
    s: __m256,
    y: __m256,
    params: [__m256; 4],
) -> (__m256, __m256, __m256i) {
    let [positive, negative, margin, two_c] = params;
    // Ordered compares are false for NaN; `x != 0` is the unordered one, true for NaN.
    let nonzero = |x: __m256| _mm256_cmp_ps::<_CMP_NEQ_UQ>(x, _mm256_setzero_ps());
    let positive_lanes = |x: __m256| _mm256_cmp_ps::<_CMP_GT_OQ>(x, _mm256_setzero_ps());
    // `MIN_POSITIVE ≤ x ≤ MAX`, and `|x| ≤ MAX`.
    let normal = |x: __m256| {
        _mm256_and_ps(
            _mm256_cmp_ps::<_CMP_GE_OQ>(x, _mm256_set1_ps(f32::MIN_POSITIVE)),
            _mm256_cmp_ps::<_CMP_LE_OQ>(x, _mm256_set1_ps(f32::MAX)),
        )
    };
    let finite = |x: __m256| {
        let magnitude = _mm256_andnot_ps(_mm256_set1_ps(-0.0), x);
        _mm256_cmp_ps::<_CMP_LE_OQ>(magnitude, _mm256_set1_ps(f32::MAX))
    };
    let select = |mask: __m256, x: __m256| _mm256_and_ps(mask, x);

    let p = _mm256_mul_ps(positive, y);
    let q = _mm256_mul_ps(negative, _mm256_sub_ps(_mm256_set1_ps(1.0), y));
    let d = _mm256_sqrt_ps(s);
    let h = _mm256_sub_ps(margin, d);
    let similar_rows = nonzero(p);
    let active = _mm256_and_ps(nonzero(q), positive_lanes(h));
    let similar = select(similar_rows, _mm256_mul_ps(p, s));
    let dissimilar = select(active, _mm256_mul_ps(_mm256_mul_ps(q, h), h));
    if !GRADIENT {
        // The epilogue's coefficient without gradient is 0, which is finite.
        let fine = normal(s);
        let loss = _mm256_and_ps(fine, _mm256_add_ps(similar, dissimilar));
        let care = _mm256_xor_si256(_mm256_castps_si256(fine), _mm256_set1_epi32(-1));
        return (loss, _mm256_setzero_ps(), care);
    }
    let k_similar = select(similar_rows, _mm256_mul_ps(two_c, p));
    let k_dissimilar = select(
        active,
        _mm256_div_ps(_mm256_mul_ps(_mm256_mul_ps(two_c, q), h), d),
    );
    let k = _mm256_sub_ps(k_similar, k_dissimilar);
    let fine = _mm256_and_ps(normal(s), finite(k));
    let loss = _mm256_and_ps(fine, _mm256_add_ps(similar, dissimilar));
    let care = _mm256_xor_si256(_mm256_castps_si256(fine), _mm256_set1_epi32(-1));
    (loss, k, care)
}

/// Nothing to order: this backend makes no non-temporal stores.
fn fence() {}
