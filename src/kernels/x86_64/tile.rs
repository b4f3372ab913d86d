//! AVX2+FMA and AVX-512F tile kernels (see [`crate::kernels::tile`] for what they compute).
//!
//! Micro-blocks: AVX-512 takes 4 rows of `x` against 4 of `y` (16 zmm accumulators,
//! reduced at the end of the block by a transposed sum into one zmm whose lane `4a + b`
//! is pair `(a, b)`); AVX2 takes 2 against 4 (8 ymm accumulators in 16 registers). Per
//! vector step over `d` that is `MR + NR` loads for `MR·NR` subtractions and FMAs, so the
//! FMA pipes, not the loads, set the pace; on Zen 4 the subtractions issue on the separate
//! add pipes. Tails of `d` shorter than a vector are summed in scalar code per pair, edges
//! of the tile (rows beyond the last whole micro-block) one pair at a time.
//!
//! Memory: each micro-kernel checks once that its rows, and its gradient rows, hold the
//! `dim` floats it reads (a broken contract panics before any access); its loads and
//! stores are then pointer accesses at `row·dim + k` with `k + lanes ≤ dim`, whose
//! `unsafe` blocks say so. Shuffles are `unpack{lo,hi}`, `shuffle_f32x4` and 128-bit
//! extracts, which Miri runs (and runs these kernels under, see
//! `tests/trust_miri_paths.rs`).

// Micro-blocks index their accumulators and coefficients by row and column, as the
// arithmetic reads.
#![allow(clippy::needless_range_loop)]

use crate::kernels::threshold::{self, CountBlock, Hists};
use crate::kernels::tile::TileKernels;
use core::arch::x86_64::*;

/// Stores 4 floats.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn store4(x: &mut [f32; 4], v: __m128) {
    // SAFETY: `x` holds exactly the 4 f32 an unaligned 128-bit store writes.
    unsafe { _mm_storeu_ps(x.as_mut_ptr(), v) }
}

/// Stores 16 floats.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn store16(x: &mut [f32; 16], v: __m512) {
    // SAFETY: `x` holds exactly the 16 f32 an unaligned 512-bit store writes.
    unsafe { _mm512_storeu_ps(x.as_mut_ptr(), v) }
}

/// `&mut x[at..at + N]` as an array.
#[inline(always)]
fn chunk_mut<const N: usize>(x: &mut [f32], at: usize) -> &mut [f32; N] {
    match x[at..].first_chunk_mut::<N>() {
        Some(c) => c,
        None => panic_outside(),
    }
}

#[cold]
#[inline(never)]
fn panic_outside() -> ! {
    panic!("tile kernel: a row outside its slice (the caller broke the contract)")
}

/// Within each 128-bit lane: `[p0 + p2, q0 + q2, p1 + p3, q1 + q3]`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn pairs8(p: __m256, q: __m256) -> __m256 {
    _mm256_add_ps(_mm256_unpacklo_ps(p, q), _mm256_unpackhi_ps(p, q))
}

/// Within each 128-bit lane, from two [`pairs8`]: the lane's sums of `p`, `q`, `r`, `t`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn quads8(pq: __m256, rt: __m256) -> __m256 {
    let (pq, rt) = (_mm256_castps_pd(pq), _mm256_castps_pd(rt));
    _mm256_add_ps(
        _mm256_castpd_ps(_mm256_unpacklo_pd(pq, rt)),
        _mm256_castpd_ps(_mm256_unpackhi_pd(pq, rt)),
    )
}

/// [`pairs8`] on 512 bits.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn pairs16(p: __m512, q: __m512) -> __m512 {
    _mm512_add_ps(_mm512_unpacklo_ps(p, q), _mm512_unpackhi_ps(p, q))
}

/// [`quads8`] on 512 bits.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn quads16(pq: __m512, rt: __m512) -> __m512 {
    let (pq, rt) = (_mm512_castps_pd(pq), _mm512_castps_pd(rt));
    _mm512_add_ps(
        _mm512_castpd_ps(_mm512_unpacklo_pd(pq, rt)),
        _mm512_castpd_ps(_mm512_unpackhi_pd(pq, rt)),
    )
}

/// Sums of adjacent 128-bit lanes: `[p0 + p1, p2 + p3, q0 + q1, q2 + q3]` (lanes of four).
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn halves16(p: __m512, q: __m512) -> __m512 {
    _mm512_add_ps(
        _mm512_shuffle_f32x4::<0x88>(p, q),
        _mm512_shuffle_f32x4::<0xDD>(p, q),
    )
}

/// `Σ (x − y)²` of one pair, for the edges.
#[inline(always)]
fn pair_squared(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0.0f32; 4];
    let mut cx = x.chunks_exact(4);
    let mut cy = y.chunks_exact(4);
    for (a, b) in (&mut cx).zip(&mut cy) {
        for l in 0..4 {
            let d = a[l] - b[l];
            acc[l] += d * d;
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (a, b) in cx.remainder().iter().zip(cy.remainder()) {
        let d = a - b;
        s += d * d;
    }
    s
}

/// `gx += c·(x − y)`, `gy −= c·(x − y)` for one pair, for the edges.
#[inline(always)]
fn pair_accumulate(x: &[f32], y: &[f32], c: f32, gx: &mut [f32], gy: &mut [f32]) {
    for (((&a, &b), gx), gy) in x.iter().zip(y).zip(gx).zip(gy) {
        let g = c * (a - b);
        *gx += g;
        *gy -= g;
    }
}

/// The loops shared by both instruction sets: the whole micro-blocks through `$micro`
/// (squared) or `$micro_acc` (gradient), then the edges pair by pair.
macro_rules! tile_loops {
    ($mr:expr, $nr:expr, $features:literal, $squared:ident, $accumulate:ident, $micro:ident, $micro_acc:ident) => {
        #[target_feature(enable = $features)]
        fn $squared(x: &[f32], y: &[f32], dim: usize, out: &mut [f32], stride: usize) {
            let (rx, ry) = (x.len() / dim, y.len() / dim);
            let full_i = rx - rx % $mr;
            let full_j = ry - ry % $nr;
            for i in (0..full_i).step_by($mr) {
                let xs = &x[i * dim..(i + $mr) * dim];
                for j in (0..full_j).step_by($nr) {
                    let ys = &y[j * dim..(j + $nr) * dim];
                    $micro(xs, ys, dim, &mut out[i * stride + j..], stride);
                }
            }
            for i in 0..rx {
                let first_j = if i < full_i { full_j } else { 0 };
                let xi = &x[i * dim..(i + 1) * dim];
                for j in first_j..ry {
                    out[i * stride + j] = pair_squared(xi, &y[j * dim..(j + 1) * dim]);
                }
            }
        }

        #[target_feature(enable = $features)]
        fn $accumulate(
            x: &[f32],
            y: &[f32],
            dim: usize,
            c: &[f32],
            stride: usize,
            grad_x: &mut [f32],
            grad_y: &mut [f32],
        ) {
            let (rx, ry) = (x.len() / dim, y.len() / dim);
            let full_i = rx - rx % $mr;
            let full_j = ry - ry % $nr;
            for i in (0..full_i).step_by($mr) {
                for j in (0..full_j).step_by($nr) {
                    // Plain loops and no early exit: `array::from_fn` and a
                    // short-circuiting `all` compiled to out-of-line calls and one
                    // branch per coefficient, more work than a small block's FMAs.
                    let mut cs = [[0.0f32; $nr]; $mr];
                    let mut nonzero = false;
                    for a in 0..$mr {
                        let row = &c[(i + a) * stride + j..][..$nr];
                        for b in 0..$nr {
                            cs[a][b] = row[b];
                            nonzero |= row[b] != 0.0;
                        }
                    }
                    if !nonzero {
                        continue;
                    }
                    $micro_acc(
                        &x[i * dim..(i + $mr) * dim],
                        &y[j * dim..(j + $nr) * dim],
                        dim,
                        cs,
                        &mut grad_x[i * dim..(i + $mr) * dim],
                        &mut grad_y[j * dim..(j + $nr) * dim],
                    );
                }
            }
            for i in 0..rx {
                let first_j = if i < full_i { full_j } else { 0 };
                for j in first_j..ry {
                    let cij = c[i * stride + j];
                    if cij != 0.0 {
                        pair_accumulate(
                            &x[i * dim..(i + 1) * dim],
                            &y[j * dim..(j + 1) * dim],
                            cij,
                            &mut grad_x[i * dim..(i + 1) * dim],
                            &mut grad_y[j * dim..(j + 1) * dim],
                        );
                    }
                }
            }
        }
    };
}

// ---------------------------------------------------------------------------------------
// AVX2: 2 × 4.

tile_loops!(
    2,
    4,
    "avx2,fma",
    squared_avx2,
    accumulate_avx2,
    micro_avx2,
    micro_acc_avx2
);

/// Pairs `(a, b)` of rows `xs[a]`, `ys[b]` (rows of `dim`): `out[a·stride + b]`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn micro_avx2(xs: &[f32], ys: &[f32], dim: usize, out: &mut [f32], stride: usize) {
    let full = dim - dim % 8;
    if xs.len() < 2 * dim || ys.len() < 4 * dim {
        panic_outside();
    }
    let (px, py) = (xs.as_ptr(), ys.as_ptr());
    let z = _mm256_setzero_ps();
    let (mut a00, mut a01, mut a02, mut a03) = (z, z, z, z);
    let (mut a10, mut a11, mut a12, mut a13) = (z, z, z, z);
    let mut k = 0;
    while k < full {
        // SAFETY: `k + 8 ≤ full ≤ dim` and the two rows of `xs` and four of `ys` hold `dim`
        // floats each (checked above): every load reads 8 floats inside its row.
        let load = |p: *const f32, row: usize| unsafe { _mm256_loadu_ps(p.add(row * dim + k)) };
        let (x0, x1) = (load(px, 0), load(px, 1));
        let y = load(py, 0);
        let (d0, d1) = (_mm256_sub_ps(x0, y), _mm256_sub_ps(x1, y));
        a00 = _mm256_fmadd_ps(d0, d0, a00);
        a10 = _mm256_fmadd_ps(d1, d1, a10);
        let y = load(py, 1);
        let (d0, d1) = (_mm256_sub_ps(x0, y), _mm256_sub_ps(x1, y));
        a01 = _mm256_fmadd_ps(d0, d0, a01);
        a11 = _mm256_fmadd_ps(d1, d1, a11);
        let y = load(py, 2);
        let (d0, d1) = (_mm256_sub_ps(x0, y), _mm256_sub_ps(x1, y));
        a02 = _mm256_fmadd_ps(d0, d0, a02);
        a12 = _mm256_fmadd_ps(d1, d1, a12);
        let y = load(py, 3);
        let (d0, d1) = (_mm256_sub_ps(x0, y), _mm256_sub_ps(x1, y));
        a03 = _mm256_fmadd_ps(d0, d0, a03);
        a13 = _mm256_fmadd_ps(d1, d1, a13);
        k += 8;
    }
    let acc = [[a00, a01, a02, a03], [a10, a11, a12, a13]];
    // Transposed sum: lane b of row a's vector is pair (a, b).
    for (a, row) in acc.iter().enumerate() {
        let t = quads8(pairs8(row[0], row[1]), pairs8(row[2], row[3]));
        let mut sums = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps::<1>(t));
        if full < dim {
            let mut tail = [0.0f32; 4];
            for (b, tb) in tail.iter_mut().enumerate() {
                for kk in full..dim {
                    let d = xs[a * dim + kk] - ys[b * dim + kk];
                    *tb += d * d;
                }
            }
            // SAFETY: `tail` holds exactly the 4 f32 an unaligned 128-bit load reads.
            sums = _mm_add_ps(sums, unsafe { _mm_loadu_ps(tail.as_ptr()) });
        }
        store4(chunk_mut(out, a * stride), sums);
    }
}

/// The gradient of a 2 × 4 micro-block with coefficients `cs`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn micro_acc_avx2(
    x: &[f32],
    y: &[f32],
    dim: usize,
    cs: [[f32; 4]; 2],
    gx: &mut [f32],
    gy: &mut [f32],
) {
    let full = dim - dim % 8;
    if x.len() < 2 * dim || y.len() < 4 * dim || gx.len() < 2 * dim || gy.len() < 4 * dim {
        panic_outside();
    }
    // Broadcast in place (an `array::map` here is an out-of-line call per micro-block).
    let mut cv = [[_mm256_setzero_ps(); 4]; 2];
    for a in 0..2 {
        for b in 0..4 {
            cv[a][b] = _mm256_set1_ps(cs[a][b]);
        }
    }
    let (px, py, pgx, pgy) = (x.as_ptr(), y.as_ptr(), gx.as_mut_ptr(), gy.as_mut_ptr());
    let mut k = 0;
    while k < full {
        let at = |row: usize| row * dim + k;
        // SAFETY: `k + 8 ≤ full ≤ dim`, and the rows of `x`, `y`, `gx` and `gy` hold `dim`
        // floats each (checked above): every access is 8 floats inside its row.
        let (x0, x1) = unsafe {
            (
                _mm256_loadu_ps(px.add(at(0))),
                _mm256_loadu_ps(px.add(at(1))),
            )
        };
        let (mut ax0, mut ax1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        for b in 0..4 {
            // SAFETY: as above.
            let yv = unsafe { _mm256_loadu_ps(py.add(at(b))) };
            let d0 = _mm256_sub_ps(x0, yv);
            let d1 = _mm256_sub_ps(x1, yv);
            ax0 = _mm256_fmadd_ps(cv[0][b], d0, ax0);
            ax1 = _mm256_fmadd_ps(cv[1][b], d1, ax1);
            let ay = _mm256_fmadd_ps(cv[1][b], d1, _mm256_mul_ps(cv[0][b], d0));
            // SAFETY: as above; `gy` is not aliased (a `&mut` slice).
            unsafe {
                let g = pgy.add(at(b));
                _mm256_storeu_ps(g, _mm256_sub_ps(_mm256_loadu_ps(g), ay));
            }
        }
        // SAFETY: as above; `gx` is not aliased.
        unsafe {
            let g = pgx.add(at(0));
            _mm256_storeu_ps(g, _mm256_add_ps(_mm256_loadu_ps(g), ax0));
            let g = pgx.add(at(1));
            _mm256_storeu_ps(g, _mm256_add_ps(_mm256_loadu_ps(g), ax1));
        }
        k += 8;
    }
    for kk in full..dim {
        for a in 0..2 {
            for b in 0..4 {
                let g = cs[a][b] * (x[a * dim + kk] - y[b * dim + kk]);
                gx[a * dim + kk] += g;
                gy[b * dim + kk] -= g;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// AVX-512: 4 × 4.

tile_loops!(
    4,
    4,
    "avx512f,avx2,fma",
    squared_avx512,
    accumulate_avx512,
    micro_avx512,
    micro_acc_avx512
);

/// Pairs `(a, b)` of rows `xs[a]`, `ys[b]`: `out[a·stride + b]`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn micro_avx512(xs: &[f32], ys: &[f32], dim: usize, out: &mut [f32], stride: usize) {
    let full = dim - dim % 16;
    if xs.len() < 4 * dim || ys.len() < 4 * dim {
        panic_outside();
    }
    let (px, py) = (xs.as_ptr(), ys.as_ptr());
    let z = _mm512_setzero_ps();
    let (mut a00, mut a01, mut a02, mut a03) = (z, z, z, z);
    let (mut a10, mut a11, mut a12, mut a13) = (z, z, z, z);
    let (mut a20, mut a21, mut a22, mut a23) = (z, z, z, z);
    let (mut a30, mut a31, mut a32, mut a33) = (z, z, z, z);
    let mut k = 0;
    while k < full {
        // SAFETY: `k + 16 ≤ full ≤ dim` and each of the four rows of `xs` and `ys` holds
        // `dim` floats (checked above): every load reads 16 floats inside its row.
        let load = |p: *const f32, row: usize| unsafe { _mm512_loadu_ps(p.add(row * dim + k)) };
        let (x0, x1, x2, x3) = (load(px, 0), load(px, 1), load(px, 2), load(px, 3));
        // Column `b`: row `b` of `ys` against the four rows of `xs`, into the column's
        // four accumulators (a macro, so that each step is the straight-line code it was).
        macro_rules! column {
            ($b:expr, $a0:ident, $a1:ident, $a2:ident, $a3:ident) => {
                let y = load(py, $b);
                let (d0, d1, d2, d3) = (
                    _mm512_sub_ps(x0, y),
                    _mm512_sub_ps(x1, y),
                    _mm512_sub_ps(x2, y),
                    _mm512_sub_ps(x3, y),
                );
                $a0 = _mm512_fmadd_ps(d0, d0, $a0);
                $a1 = _mm512_fmadd_ps(d1, d1, $a1);
                $a2 = _mm512_fmadd_ps(d2, d2, $a2);
                $a3 = _mm512_fmadd_ps(d3, d3, $a3);
            };
        }
        column!(0, a00, a10, a20, a30);
        column!(1, a01, a11, a21, a31);
        column!(2, a02, a12, a22, a32);
        column!(3, a03, a13, a23, a33);
        k += 16;
    }
    let acc = [
        [a00, a01, a02, a03],
        [a10, a11, a12, a13],
        [a20, a21, a22, a23],
        [a30, a31, a32, a33],
    ];
    // Transposed sum of the 16 accumulators into one vector, lane 4a + b = pair (a, b):
    // within each 128-bit lane, pairs then quads of accumulators, then across lanes.
    let t: [__m512; 4] = core::array::from_fn(|a| {
        quads16(pairs16(acc[a][0], acc[a][1]), pairs16(acc[a][2], acc[a][3]))
    });
    // t[a] lane group g holds row a's partial sums over the elements of lane group g.
    let sums = halves16(halves16(t[0], t[1]), halves16(t[2], t[3]));
    let mut all = [0.0f32; 16];
    store16(&mut all, sums);
    if full < dim {
        for a in 0..4 {
            for b in 0..4 {
                let mut s = 0.0f32;
                for kk in full..dim {
                    let d = xs[a * dim + kk] - ys[b * dim + kk];
                    s += d * d;
                }
                all[4 * a + b] += s;
            }
        }
    }
    for a in 0..4 {
        out[a * stride..a * stride + 4].copy_from_slice(&all[4 * a..4 * a + 4]);
    }
}

/// The gradient of a 4 × 4 micro-block with coefficients `cs`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn micro_acc_avx512(
    x: &[f32],
    y: &[f32],
    dim: usize,
    cs: [[f32; 4]; 4],
    gx: &mut [f32],
    gy: &mut [f32],
) {
    let full = dim - dim % 16;
    if x.len() < 4 * dim || y.len() < 4 * dim || gx.len() < 4 * dim || gy.len() < 4 * dim {
        panic_outside();
    }
    // Broadcast in place (an `array::map` here is an out-of-line call per micro-block).
    let mut cv = [[_mm512_setzero_ps(); 4]; 4];
    for a in 0..4 {
        for b in 0..4 {
            cv[a][b] = _mm512_set1_ps(cs[a][b]);
        }
    }
    let (px, py, pgx, pgy) = (x.as_ptr(), y.as_ptr(), gx.as_mut_ptr(), gy.as_mut_ptr());
    let mut k = 0;
    while k < full {
        let at = |row: usize| row * dim + k;
        let xv: [__m512; 4] = core::array::from_fn(|a| {
            // SAFETY: `k + 16 ≤ full ≤ dim`, and the four rows of `x`, `y`, `gx` and `gy`
            // hold `dim` floats each (checked above): every access is 16 floats inside its
            // row.
            unsafe { _mm512_loadu_ps(px.add(at(a))) }
        });
        let mut ax = [_mm512_setzero_ps(); 4];
        for b in 0..4 {
            // SAFETY: as above.
            let yv = unsafe { _mm512_loadu_ps(py.add(at(b))) };
            let d0 = _mm512_sub_ps(xv[0], yv);
            let d1 = _mm512_sub_ps(xv[1], yv);
            let d2 = _mm512_sub_ps(xv[2], yv);
            let d3 = _mm512_sub_ps(xv[3], yv);
            ax[0] = _mm512_fmadd_ps(cv[0][b], d0, ax[0]);
            ax[1] = _mm512_fmadd_ps(cv[1][b], d1, ax[1]);
            ax[2] = _mm512_fmadd_ps(cv[2][b], d2, ax[2]);
            ax[3] = _mm512_fmadd_ps(cv[3][b], d3, ax[3]);
            // One chain (a product and three FMAs): one operation fewer than two
            // chains joined by an add, on ports the subtractions and FMAs share.
            let ay = _mm512_fmadd_ps(
                cv[3][b],
                d3,
                _mm512_fmadd_ps(
                    cv[2][b],
                    d2,
                    _mm512_fmadd_ps(cv[1][b], d1, _mm512_mul_ps(cv[0][b], d0)),
                ),
            );
            // SAFETY: as above; `gy` is not aliased (a `&mut` slice).
            unsafe {
                let g = pgy.add(at(b));
                _mm512_storeu_ps(g, _mm512_sub_ps(_mm512_loadu_ps(g), ay));
            }
        }
        for (a, ax) in ax.into_iter().enumerate() {
            // SAFETY: as above; `gx` is not aliased.
            unsafe {
                let g = pgx.add(at(a));
                _mm512_storeu_ps(g, _mm512_add_ps(_mm512_loadu_ps(g), ax));
            }
        }
        k += 16;
    }
    for kk in full..dim {
        for a in 0..4 {
            for b in 0..4 {
                let g = cs[a][b] * (x[a * dim + kk] - y[b * dim + kk]);
                gx[a * dim + kk] += g;
                gy[b * dim + kk] -= g;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The tables: safe entries, handed out only after their features were detected.

/// The AVX2+FMA tile kernels, if this CPU has AVX2 and FMA.
pub(crate) fn avx2() -> Option<&'static TileKernels> {
    fn squared(x: &[f32], y: &[f32], dim: usize, out: &mut [f32], stride: usize) {
        // SAFETY: this table is only handed out after AVX2 and FMA were detected.
        unsafe { squared_avx2(x, y, dim, out, stride) }
    }
    fn accumulate(
        x: &[f32],
        y: &[f32],
        dim: usize,
        c: &[f32],
        stride: usize,
        gx: &mut [f32],
        gy: &mut [f32],
    ) {
        // SAFETY: this table is only handed out after AVX2 and FMA were detected.
        unsafe { accumulate_avx2(x, y, dim, c, stride, gx, gy) }
    }
    fn count(b: &CountBlock, ks: &mut [f32], hist: &mut Hists, state: &mut [f32]) {
        // SAFETY: this table is only handed out after AVX2 and FMA were detected.
        unsafe { count_avx2(b, ks, hist, state) }
    }
    static AVX2: TileKernels = TileKernels {
        squared,
        accumulate,
        count,
    };
    super::avx2().map(|_| &AVX2)
}

/// The batch-all counting step ([`threshold::count`]) compiled for AVX2 (its compares 8
/// wide).
#[target_feature(enable = "avx2,fma")]
fn count_avx2(b: &CountBlock, ks: &mut [f32], hist: &mut Hists, state: &mut [f32]) {
    threshold::count(b, ks, hist, state)
}

/// The batch-all counting step ([`threshold::count`]) compiled for AVX-512F (its compares
/// 16 wide).
#[target_feature(enable = "avx512f,avx2,fma")]
fn count_avx512(b: &CountBlock, ks: &mut [f32], hist: &mut Hists, state: &mut [f32]) {
    threshold::count(b, ks, hist, state)
}

/// The AVX-512F tile kernels, if this CPU has AVX-512F (with AVX2 and FMA).
pub(crate) fn avx512() -> Option<&'static TileKernels> {
    fn squared(x: &[f32], y: &[f32], dim: usize, out: &mut [f32], stride: usize) {
        // SAFETY: this table is only handed out after AVX-512F, AVX2 and FMA were detected.
        unsafe { squared_avx512(x, y, dim, out, stride) }
    }
    fn accumulate(
        x: &[f32],
        y: &[f32],
        dim: usize,
        c: &[f32],
        stride: usize,
        gx: &mut [f32],
        gy: &mut [f32],
    ) {
        // SAFETY: this table is only handed out after AVX-512F, AVX2 and FMA were detected.
        unsafe { accumulate_avx512(x, y, dim, c, stride, gx, gy) }
    }
    fn count(b: &CountBlock, ks: &mut [f32], hist: &mut Hists, state: &mut [f32]) {
        // SAFETY: this table is only handed out after AVX-512F, AVX2 and FMA were detected.
        unsafe { count_avx512(b, ks, hist, state) }
    }
    static AVX512: TileKernels = TileKernels {
        squared,
        accumulate,
        count,
    };
    super::avx512().map(|_| &AVX512)
}
