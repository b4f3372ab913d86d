//! Kernels of the softmax losses: a similarity tile `X·Ŷᵀ` over a packed panel, the
//! gradient's update of a block of rows `outᵣ += Σ cᵣₛ·inₛ`, and a vectorised `e^x`. One table per backend,
//! chosen through the same [`Backend`] as the pair kernels.
//!
//! The tile is the GEMM recipe: `TILE_COLS` rows of `Ŷ` are packed by the caller
//! column-interleaved (`panel[k·TILE_COLS + j] = ŷⱼ[k]`), and each of `TILE_ROWS` rows of
//! `X` is broadcast one element at a time against vectors of the panel, so every load of
//! the panel feeds `TILE_ROWS` FMAs. Each entry is an ordinary dot product of length `d`
//! (Gram form): the dot product's error bound, `d·u·Σ|xₖ·ŷₖ|`.

#![forbid(unsafe_code)]

use super::exp;
use crate::{Backend, Error};

/// Rows of `X` per tile.
pub(crate) const TILE_ROWS: usize = 6;
/// Rows of `Ŷ` per tile (columns of the tile): the width of a packed panel.
pub(crate) const TILE_COLS: usize = 32;
/// A tile of similarities.
pub(crate) type Tile = [[f32; TILE_COLS]; TILE_ROWS];

/// `(rows, panel, out)`: `out[r][j] = Σₖ rows[r][k] · panel[k·TILE_COLS + j]`; each row has
/// `d` elements and `panel` at least `d·TILE_COLS`.
pub(crate) type DotTileFn = fn(&[&[f32]; TILE_ROWS], &[f32], &mut Tile);

/// `(out, dim, coefficients, inputs)`: for each of the `out.len()/dim ≤ TILE_ROWS` rows of
/// `out`, `out[r] += Σₛ coefficients[r][s]·inputs[s]` (`s < inputs.len() ≤ TILE_COLS`);
/// every input has at least `dim` elements. The gradient's update of a block of rows: each
/// input is loaded once for all rows.
pub(crate) type AxpyBlockFn = fn(&mut [f32], usize, &Tile, &[&[f32]]);

/// The softmax family's primitives of one backend.
pub(crate) struct SoftmaxKernels {
    /// `e^x` of every element, in place (see [`exp`] for the method and bound).
    pub exp: fn(&mut [f32]),
    /// The similarity tile.
    pub dot_tile: DotTileFn,
    /// The gradient's update of a block of rows.
    pub axpy_block: AxpyBlockFn,
}

/// The scalar table: plain loops (which the compiler may vectorise for the baseline ISA).
pub(crate) static SCALAR: SoftmaxKernels = SoftmaxKernels {
    exp: exp::exp_in_place_scalar,
    dot_tile: dot_tile_scalar,
    axpy_block: axpy_block_scalar,
};

/// The `wide` table.
pub(crate) static PORTABLE: SoftmaxKernels = SoftmaxKernels {
    exp: exp::exp_in_place_wide,
    dot_tile: dot_tile_wide,
    axpy_block: axpy_block_wide,
};

fn dot_tile_scalar(rows: &[&[f32]; TILE_ROWS], panel: &[f32], out: &mut Tile) {
    for (row, acc) in rows.iter().zip(out.iter_mut()) {
        *acc = [0.0; TILE_COLS];
        for (&xk, p) in row.iter().zip(panel.chunks_exact(TILE_COLS)) {
            for (a, &pj) in acc.iter_mut().zip(p) {
                *a += xk * pj;
            }
        }
    }
}

fn axpy_rows_scalar(out: &mut [f32], coefficients: &[f32], inputs: &[&[f32]]) {
    for (&c, input) in coefficients.iter().zip(inputs) {
        for (o, &v) in out.iter_mut().zip(input.iter()) {
            *o += c * v;
        }
    }
}

fn axpy_block_scalar(out: &mut [f32], dim: usize, coefficients: &Tile, inputs: &[&[f32]]) {
    for (row, c) in out.chunks_exact_mut(dim).zip(coefficients) {
        axpy_rows_scalar(row, &c[..inputs.len().min(TILE_COLS)], inputs);
    }
}

fn axpy_block_wide(out: &mut [f32], dim: usize, coefficients: &Tile, inputs: &[&[f32]]) {
    for (row, c) in out.chunks_exact_mut(dim).zip(coefficients) {
        axpy_rows_wide(row, &c[..inputs.len().min(TILE_COLS)], inputs);
    }
}

fn dot_tile_wide(rows: &[&[f32]; TILE_ROWS], panel: &[f32], out: &mut Tile) {
    use wide::f32x8;
    const V: usize = TILE_COLS / 8;
    // Two rows at a time: 2 × 4 accumulators of two SSE registers each, with the panel's
    // four vectors, fill the 16 XMM registers without spilling.
    for (pair, acc_out) in rows.chunks(2).zip(out.chunks_mut(2)) {
        let mut acc = [[f32x8::splat(0.0); V]; 2];
        for (k, p) in panel
            .chunks_exact(TILE_COLS)
            .take(pair[0].len())
            .enumerate()
        {
            let (pv, _) = p.as_chunks::<8>();
            let pv: [f32x8; V] = core::array::from_fn(|v| f32x8::new(pv[v]));
            for (r, row) in pair.iter().enumerate() {
                let xk = f32x8::splat(row.get(k).copied().unwrap_or(0.0));
                for v in 0..V {
                    acc[r][v] = xk.mul_add(pv[v], acc[r][v]);
                }
            }
        }
        for (r, o) in acc_out.iter_mut().enumerate() {
            for v in 0..V {
                o[v * 8..v * 8 + 8].copy_from_slice(&acc[r][v].to_array());
            }
        }
    }
}

fn axpy_rows_wide(out: &mut [f32], coefficients: &[f32], inputs: &[&[f32]]) {
    use wide::f32x8;
    let n = out.len();
    let (chunks, _) = out.as_chunks_mut::<8>();
    for (ci, chunk) in chunks.iter_mut().enumerate() {
        let mut acc = f32x8::new(*chunk);
        let at = ci * 8;
        for (&c, input) in coefficients.iter().zip(inputs) {
            if let Some(v) = input
                .get(at..at + 8)
                .and_then(|s| <[f32; 8]>::try_from(s).ok())
            {
                acc = f32x8::splat(c).mul_add(f32x8::new(v), acc);
            }
        }
        *chunk = acc.to_array();
    }
    let start = n - n % 8;
    for (&c, input) in coefficients.iter().zip(inputs) {
        for (o, &v) in out[start..]
            .iter_mut()
            .zip(input.get(start..).unwrap_or(&[]))
        {
            *o += c * v;
        }
    }
}

impl Backend {
    /// `e^x` of every element of `x`, in place, with this backend's vectorised kernel
    /// (the one the softmax losses use; no libm call).
    ///
    /// Error bound: 1.5 ULP on every backend, subnormal results included (a sweep of all
    /// 2³² inputs against f64 measured at most 0.990 ULP on the scalar and portable
    /// backends and 1.010 ULP on AVX2 and AVX-512); inputs below −104 give 0, above
    /// 88.72284 `+∞`, NaN gives NaN.
    ///
    /// ```
    /// use contrastive::Backend;
    /// let mut v = [0.0, 1.0, -1.0, f32::NEG_INFINITY];
    /// Backend::best().exp_in_place(&mut v)?;
    /// assert_eq!(v[0], 1.0);
    /// assert!((v[1] - core::f32::consts::E).abs() <= 2.0 * f32::EPSILON * v[1]);
    /// assert_eq!(v[3], 0.0);
    /// # Ok::<(), contrastive::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::BackendUnavailable`] if this backend cannot run here.
    pub fn exp_in_place(self, x: &mut [f32]) -> Result<(), Error> {
        (super::softmax_table(self)?.exp)(x);
        Ok(())
    }
}
