//! Tiles of squared Euclidean distances between the rows of two blocks, and the gradient
//! accumulation over a tile of coefficients: the kernels under every in-batch loss.
//!
//! Both are direct differences, `Σ (xᵢ − yⱼ)²` and `Σⱼ cᵢⱼ·(xᵢ − yⱼ)`, never the Gram form
//! `‖x‖² + ‖y‖² − 2x·y` (which loses every digit for near-duplicate rows and never gives an
//! exact zero for a row against itself).
//!
//! The register blocking: rows are contiguous along `d`, which is the direction of the
//! reduction, so a micro-block of `MR` rows of `x` against `NR` rows of `y` keeps `MR·NR`
//! vector accumulators and, per vector step over `d`, loads `MR + NR` vectors for `MR·NR`
//! subtractions and fused multiply-adds. No packing is needed for that (the rows are the
//! panels), and the `MR` rows of `x` stay in L1 while the `NR`-row panels of `y` pass.
//! The sums of the accumulators are formed once per micro-block (a transposed reduction
//! on x86). Which `MR × NR` is the backend's business: each entry below takes a whole
//! tile and its edges.

#![forbid(unsafe_code)]

use super::generic::{Lanes, SquaredEuclidean, reduce};

/// `(x, y, dim, out, stride)`: `out[i·stride + j] = Σₖ (x_i[k] − y_j[k])²`, plain f32 (no
/// rescaling), for every row `i` of `x` and `j` of `y` (rows of `dim > 0`; partial rows
/// at the ends are ignored). `out` must hold `(rows(x) − 1)·stride + rows(y)` values; the
/// kernel writes nothing else. A row against an identical row gives exactly 0.
pub(crate) type SquaredTileFn = fn(&[f32], &[f32], usize, &mut [f32], usize);

/// `(x, y, dim, c, stride, grad_x, grad_y)`: for every row `i` of `x` and `j` of `y` with
/// `c[i·stride + j] ≠ 0`, adds `c·(x_i − y_j)` to row `i` of `grad_x` and subtracts it from
/// row `j` of `grad_y`. Micro-blocks whose coefficients are all zero are skipped; within a
/// block a zero coefficient multiplies (so the caller keeps pairs with a non-finite
/// difference out of it). `grad_x` holds the rows of `x`, `grad_y` those of `y`.
pub(crate) type AccumulateTileFn = fn(&[f32], &[f32], usize, &[f32], usize, &mut [f32], &mut [f32]);

/// The tile kernels of one backend.
pub(crate) struct TileKernels {
    /// See [`SquaredTileFn`].
    pub squared: SquaredTileFn,
    /// See [`AccumulateTileFn`].
    pub accumulate: AccumulateTileFn,
    /// See [`super::threshold::CountFn`].
    pub count: super::threshold::CountFn,
}

/// Rows of `x` per micro-block of the generic kernels.
const MR: usize = 2;
/// Rows of `y` per micro-block of the generic kernels: `MR·NR = 8` accumulators, which fit
/// the 16 registers of SSE2 and NEON (two each for `wide::f32x8` on SSE2) and leave room
/// for the loads.
const NR: usize = 4;

/// [`SquaredTileFn`] over any lanes.
#[inline(always)]
pub(crate) fn squared_tile<V: Lanes>(
    x: &[f32],
    y: &[f32],
    dim: usize,
    out: &mut [f32],
    stride: usize,
) {
    let (rx, ry) = (x.len() / dim, y.len() / dim);
    let full_i = rx - rx % MR;
    let full_j = ry - ry % NR;
    for i in (0..full_i).step_by(MR) {
        let xs: [&[f32]; MR] = core::array::from_fn(|a| &x[(i + a) * dim..(i + a + 1) * dim]);
        for j in (0..full_j).step_by(NR) {
            let ys: [&[f32]; NR] = core::array::from_fn(|b| &y[(j + b) * dim..(j + b + 1) * dim]);
            let sums = micro_squared::<V>(xs, ys, dim);
            for a in 0..MR {
                out[(i + a) * stride + j..][..NR].copy_from_slice(&sums[a]);
            }
        }
    }
    // Edges: one pair at a time.
    for i in 0..rx {
        let first_j = if i < full_i { full_j } else { 0 };
        let xi = &x[i * dim..(i + 1) * dim];
        for j in first_j..ry {
            out[i * stride + j] =
                reduce::<V, SquaredEuclidean, 1>(xi, &y[j * dim..(j + 1) * dim])[0];
        }
    }
}

/// One `MR × NR` micro-block of squared distances.
#[inline(always)]
fn micro_squared<V: Lanes>(xs: [&[f32]; MR], ys: [&[f32]; NR], dim: usize) -> [[f32; NR]; MR] {
    let mut acc = [[V::splat(0.0); NR]; MR];
    let w = V::WIDTH;
    let full = dim - dim % w;
    let mut k = 0;
    while k < full {
        let xv: [V; MR] = core::array::from_fn(|a| V::load(&xs[a][k..k + w]));
        for b in 0..NR {
            let yv = V::load(&ys[b][k..k + w]);
            for a in 0..MR {
                let d = xv[a].sub(yv);
                acc[a][b] = d.mul_add(d, acc[a][b]);
            }
        }
        k += w;
    }
    let mut out = [[0.0f32; NR]; MR];
    for a in 0..MR {
        for b in 0..NR {
            let mut tail = 0.0f32;
            for kk in full..dim {
                let d = xs[a][kk] - ys[b][kk];
                tail += d * d;
            }
            out[a][b] = acc[a][b].sum() + tail;
        }
    }
    out
}

/// [`AccumulateTileFn`] over any lanes.
#[inline(always)]
pub(crate) fn accumulate_tile<V: Lanes>(
    x: &[f32],
    y: &[f32],
    dim: usize,
    c: &[f32],
    stride: usize,
    grad_x: &mut [f32],
    grad_y: &mut [f32],
) {
    let (rx, ry) = (x.len() / dim, y.len() / dim);
    let full_i = rx - rx % MR;
    let full_j = ry - ry % NR;
    for i in (0..full_i).step_by(MR) {
        for j in (0..full_j).step_by(NR) {
            let cs: [[f32; NR]; MR] =
                core::array::from_fn(|a| core::array::from_fn(|b| c[(i + a) * stride + j + b]));
            if cs.iter().flatten().all(|&v| v == 0.0) {
                continue;
            }
            let (gx, gy) = (
                &mut grad_x[i * dim..(i + MR) * dim],
                &mut grad_y[j * dim..(j + NR) * dim],
            );
            micro_accumulate::<V>(
                &x[i * dim..(i + MR) * dim],
                &y[j * dim..(j + NR) * dim],
                dim,
                cs,
                gx,
                gy,
            );
        }
    }
    for i in 0..rx {
        let first_j = if i < full_i { full_j } else { 0 };
        for j in first_j..ry {
            let cij = c[i * stride + j];
            if cij != 0.0 {
                let (xi, yj) = (&x[i * dim..(i + 1) * dim], &y[j * dim..(j + 1) * dim]);
                let (gx, gy) = (
                    &mut grad_x[i * dim..(i + 1) * dim],
                    &mut grad_y[j * dim..(j + 1) * dim],
                );
                pair_accumulate::<V>(xi, yj, cij, gx, gy);
            }
        }
    }
}

/// `gx += c·(x − y)`, `gy −= c·(x − y)` for one pair.
#[inline(always)]
fn pair_accumulate<V: Lanes>(x: &[f32], y: &[f32], c: f32, gx: &mut [f32], gy: &mut [f32]) {
    let w = V::WIDTH;
    let n = x.len();
    let full = n - n % w;
    let cv = V::splat(c);
    let mut k = 0;
    while k < full {
        let g = cv.mul(V::load(&x[k..k + w]).sub(V::load(&y[k..k + w])));
        V::load(&gx[k..k + w]).add(g).store(&mut gx[k..k + w]);
        V::load(&gy[k..k + w]).sub(g).store(&mut gy[k..k + w]);
        k += w;
    }
    for kk in full..n {
        let g = c * (x[kk] - y[kk]);
        gx[kk] += g;
        gy[kk] -= g;
    }
}

/// One `MR × NR` micro-block of the gradient: per vector step over `d`, the `MR` rows of
/// `x` and `NR` of `y` are loaded once, every pair's difference formed once and added,
/// scaled, to both sides' accumulators.
#[inline(always)]
fn micro_accumulate<V: Lanes>(
    x: &[f32],
    y: &[f32],
    dim: usize,
    cs: [[f32; NR]; MR],
    gx: &mut [f32],
    gy: &mut [f32],
) {
    let w = V::WIDTH;
    let full = dim - dim % w;
    let cv: [[V; NR]; MR] = cs.map(|row| row.map(V::splat));
    let mut k = 0;
    while k < full {
        let xv: [V; MR] = core::array::from_fn(|a| V::load(&x[a * dim + k..a * dim + k + w]));
        let mut ax = [V::splat(0.0); MR];
        for b in 0..NR {
            let yv = V::load(&y[b * dim + k..b * dim + k + w]);
            let mut ay = V::splat(0.0);
            for a in 0..MR {
                let d = xv[a].sub(yv);
                ax[a] = cv[a][b].mul_add(d, ax[a]);
                ay = cv[a][b].mul_add(d, ay);
            }
            let at = &mut gy[b * dim + k..b * dim + k + w];
            V::load(at).sub(ay).store(at);
        }
        for a in 0..MR {
            let at = &mut gx[a * dim + k..a * dim + k + w];
            V::load(at).add(ax[a]).store(at);
        }
        k += w;
    }
    for kk in full..dim {
        for a in 0..MR {
            for b in 0..NR {
                let g = cs[a][b] * (x[a * dim + kk] - y[b * dim + kk]);
                gx[a * dim + kk] += g;
                gy[b * dim + kk] -= g;
            }
        }
    }
}

/// Expands to a `static $name: TileKernels` running the generic tile loops over `$lanes`.
macro_rules! lanes_tile_kernels {
    ($name:ident, $lanes:ty) => {
        pub(crate) static $name: TileKernels = {
            fn squared(x: &[f32], y: &[f32], dim: usize, out: &mut [f32], stride: usize) {
                squared_tile::<$lanes>(x, y, dim, out, stride)
            }
            fn accumulate(
                x: &[f32],
                y: &[f32],
                dim: usize,
                c: &[f32],
                stride: usize,
                grad_x: &mut [f32],
                grad_y: &mut [f32],
            ) {
                accumulate_tile::<$lanes>(x, y, dim, c, stride, grad_x, grad_y)
            }
            TileKernels {
                squared,
                accumulate,
                count: super::threshold::count,
            }
        };
    };
}

lanes_tile_kernels!(SCALAR, f32);
lanes_tile_kernels!(PORTABLE, wide::f32x8);
