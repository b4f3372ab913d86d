//! The in-batch engine: walks the pair space of a batch in tiles of exact squared
//! distances, hands each tile to a loss, and adds the loss's gradient in the same tiles.
//!
//! Memory is `O(tile)`, never `O(N²)`: a tile of `side × side` squared distances and one of
//! coefficients, in caller-provided scratch ([`scratch_len`]). A symmetric batch (`y = x`)
//! visits tiles on and above the diagonal only, so each unordered pair once.
//!
//! Accuracy: the kernels sum plain f32 differences; an entry that is zero, subnormal,
//! infinite or NaN is recomputed from its two rows with a power-of-two scale
//! ([`squared_or_rescaled`]), so components from 1e-30 to 1e19 give the right distance. A
//! row against itself is exactly 0. Gradients are `Σⱼ cᵢⱼ·(xᵢ − yⱼ)` in direct form; a tile
//! with a non-finite distance or coefficient takes a scalar path that skips zero
//! coefficients (select, not multiply: `0·∞` would be NaN).

#![forbid(unsafe_code)]

use crate::kernels::tile::TileKernels;
use crate::numerics::{Separation, all_positive_normal, is_positive_normal, squared_or_rescaled};
use core::ops::Range;

/// The largest tile side: 64 × 64 distances and coefficients are 32 KiB.
pub(crate) const MAX_SIDE: usize = 64;
/// The smallest tile side (one micro-block of every backend).
pub(crate) const MIN_SIDE: usize = 4;
/// The least scratch any walk takes: `2·MIN_SIDE²` floats.
pub(crate) const MIN_SCRATCH: usize = 2 * MIN_SIDE * MIN_SIDE;

/// The scratch (in floats) that gives a batch of `rows` rows (the larger side of a cross
/// batch) the largest useful tile: `2·side²` with `side = min(64, rows rounded up to 4)`.
/// Never less than [`MIN_SCRATCH`].
pub(crate) const fn scratch_len(rows: usize) -> usize {
    let side = side_for(rows);
    2 * side * side
}

/// The tile side for a batch of `rows` rows given unlimited scratch.
const fn side_for(rows: usize) -> usize {
    let rounded = rows.div_ceil(MIN_SIDE) * MIN_SIDE;
    if rounded < MIN_SIDE {
        MIN_SIDE
    } else if rounded > MAX_SIDE {
        MAX_SIDE
    } else {
        rounded
    }
}

/// The tile side a scratch of `len` floats allows (a multiple of 4, at most 64), or 0 if
/// `len < MIN_SCRATCH`.
pub(crate) fn side_of_scratch(len: usize) -> usize {
    let mut side = MAX_SIDE;
    while side >= MIN_SIDE {
        if 2 * side * side <= len {
            return side;
        }
        side -= MIN_SIDE;
    }
    0
}

/// Where a tile's gradient goes.
enum Grads<'g> {
    None,
    /// `grad_x` (rows of `x`) and `grad_y` (rows of `y`).
    Cross(&'g mut [f32], &'g mut [f32]),
    /// One buffer for the rows of `x` (symmetric walk).
    Symmetric(&'g mut [f32]),
}

/// One tile of the pair space, handed to the loss: rows `rows` of `x` against rows `cols`
/// of `y` (of `x` itself in a symmetric walk). Indices are global row numbers.
pub(crate) struct Tile<'t> {
    /// Rows of `x` in this tile.
    pub rows: Range<usize>,
    /// Rows of `y` in this tile.
    pub cols: Range<usize>,
    /// A symmetric walk's tile on the diagonal (`rows == cols`): only pairs `j > i` are
    /// pairs of this tile ([`Tile::pair_columns`]); entries with `j ≤ i` are ignored.
    pub diagonal: bool,
    stride: usize,
    squared: &'t [f32],
    coefficients: &'t mut [f32],
    /// The tile's rows of `x` and of `y` (packed and scaled in a scaled walk).
    x: &'t [f32],
    y: &'t [f32],
    dim: usize,
    grads: Grads<'t>,
}

impl Tile<'_> {
    /// The columns `j` that form pairs with row `i` in this tile: every column, or on a
    /// symmetric walk's diagonal tile those with `j > i` (each unordered pair once).
    #[inline]
    pub(crate) fn pair_columns(&self, i: usize) -> Range<usize> {
        if self.diagonal {
            (i + 1).max(self.cols.start)..self.cols.end
        } else {
            self.cols.clone()
        }
    }

    /// The exact squared distances of row `i` to the tile's columns (`cols.len()` values,
    /// index `j − cols.start`).
    #[inline]
    pub(crate) fn squared_row(&self, i: usize) -> &[f32] {
        let at = (i - self.rows.start) * self.stride;
        &self.squared[at..at + self.cols.len()]
    }

    /// The squared distance of pair `(i, j)`.
    #[inline]
    pub(crate) fn squared(&self, i: usize, j: usize) -> f32 {
        self.squared_row(i)[j - self.cols.start]
    }

    /// The distance `D = √s` of pair `(i, j)`, right where `s` is not: when the squares
    /// underflowed (components near 1e-30: `s` rounds to 0 or a subnormal, `D` does not)
    /// or overflowed (near 1e19), `D` comes from a rescaled difference of the two rows.
    /// Exactly 0 for identical rows.
    #[inline]
    pub(crate) fn distance(&self, i: usize, j: usize) -> f32 {
        let s = self.squared(i, j);
        if is_positive_normal(s) {
            crate::numerics::sqrt(s)
        } else {
            self.distance_rescaled(i, j, s)
        }
    }

    #[cold]
    #[inline(never)]
    fn distance_rescaled(&self, i: usize, j: usize, s: f32) -> f32 {
        if self.diagonal && i == j {
            return s;
        }
        let (a, b) = (i - self.rows.start, j - self.cols.start);
        let d = self.dim;
        distance_of(s, &self.x[a * d..(a + 1) * d], &self.y[b * d..(b + 1) * d])
    }

    /// Row `i`'s squared distances and its gradient coefficients (both indexed by
    /// `j − cols.start`). Coefficients start at 0; with a gradient, pair `(i, j)` then adds
    /// `c·(x_i − y_j)` to `grad_x[i]` and subtracts it from `grad_y[j]` (symmetric walk:
    /// from `grad[j]`).
    #[inline]
    pub(crate) fn row(&mut self, i: usize) -> (&[f32], &mut [f32]) {
        let at = (i - self.rows.start) * self.stride;
        let n = self.cols.len();
        (
            &self.squared[at..at + n],
            &mut self.coefficients[at..at + n],
        )
    }

    /// Whether this walk accumulates a gradient (coefficients are ignored otherwise).
    #[inline]
    pub(crate) fn has_gradient(&self) -> bool {
        !matches!(self.grads, Grads::None)
    }

    /// Adds `g·(x_i − y_j)/‖x_i − y_j‖` to `grad_x[i]` and subtracts it from `grad_y[j]`
    /// right away, computed on a rescaled difference: for a pair whose coefficient
    /// `g/D` would overflow or lose its digits (subnormal or underflowed distances). Adds
    /// nothing at distance 0, for `g == 0`, or without a gradient; NaN rows give NaN.
    #[cold]
    pub(crate) fn add_direction(&mut self, i: usize, j: usize, g: f32) {
        if g == 0.0 {
            return;
        }
        let d = self.dim;
        let (a, b) = (i - self.rows.start, j - self.cols.start);
        let (xi, yj) = (&self.x[a * d..(a + 1) * d], &self.y[b * d..(b + 1) * d]);
        let (gi, gj) = match &mut self.grads {
            Grads::None => return,
            Grads::Cross(gx, gy) => (&mut gx[i * d..(i + 1) * d], &mut gy[j * d..(j + 1) * d]),
            Grads::Symmetric(grad) => {
                let (lo, hi) = grad.split_at_mut(i.max(j) * d);
                let (a, b) = (&mut lo[i.min(j) * d..(i.min(j) + 1) * d], &mut hi[..d]);
                if i < j { (a, b) } else { (b, a) }
            }
        };
        add_direction(xi, yj, g, gi, gj);
    }
}

/// Adds `g·(x − y)/‖x − y‖` to `grad_x` and subtracts it from `grad_y`, computed on a
/// rescaled difference, so that it is right however small or large the rows' components
/// (where a coefficient `g/D` would overflow or `D` was lost to underflow). Adds nothing
/// at distance 0 (the subgradient 0) or for `g == 0`; NaN rows give NaN; an infinite
/// component gives the limit (±`g` there, 0 elsewhere... as far as f32 can say).
#[cold]
#[inline(never)]
pub(crate) fn add_direction(x: &[f32], y: &[f32], g: f32, grad_x: &mut [f32], grad_y: &mut [f32]) {
    if g == 0.0 {
        return;
    }
    let sep = Separation::rescaled(x, y);
    let pairs = x
        .iter()
        .zip(y)
        .zip(grad_x.iter_mut().zip(grad_y.iter_mut()));
    match sep.rescaled {
        Some(r) => {
            // δ/D = u/√t with u = δ·down, whose largest component is in [1, 2).
            let k = g / crate::numerics::sqrt(r.t);
            for ((&a, &b), (gx, gy)) in pairs {
                let v = k * r.unit(a, b);
                *gx += v;
                *gy -= v;
            }
        }
        None if sep.distance == 0.0 => {}
        None => {
            // NaN, or an infinite component.
            let k = g / sep.distance;
            for ((&a, &b), (gx, gy)) in pairs {
                let v = k * (a - b);
                *gx += v;
                *gy -= v;
            }
        }
    }
}

/// `grad_x[i] += Σⱼ c[i·stride + j]·(x_i − y_j)` and `grad_y[j] −= Σᵢ ...` over a block of
/// rows of `x` and `y` (disjoint gradient buffers), in direct form; pairs with `c == 0`
/// add nothing. Through the kernel where every coefficient is finite and every
/// difference with a nonzero coefficient is too; otherwise in scalar code that skips zero
/// coefficients. `squared` (same layout as `c`, or `None` if not at hand) lets it know
/// the kernel is safe without a scan of the rows.
#[allow(clippy::too_many_arguments)]
pub(crate) fn accumulate_block(
    k: &TileKernels,
    x: &[f32],
    y: &[f32],
    dim: usize,
    c: &[f32],
    stride: usize,
    grad_x: &mut [f32],
    grad_y: &mut [f32],
) {
    if dim == 0 {
        return;
    }
    let (rx, ry) = (x.len() / dim, y.len() / dim);
    let finite_rows = |r: &[f32]| r.iter().all(|v| v.is_finite());
    let careful = (0..rx).any(|i| !c[i * stride..i * stride + ry].iter().all(|v| v.is_finite()))
        || !finite_rows(x)
        || !finite_rows(y);
    if careful {
        careful_accumulate(x, y, dim, c, stride, grad_x, grad_y);
    } else {
        (k.accumulate)(x, y, dim, c, stride, grad_x, grad_y);
    }
}

/// Every pair `(i, j)` of rows of `x` (N×dim) and `y` (M×dim), in tiles: for each tile the
/// kernel's squared distances (rescaled where needed) are handed to `f`; with `grads`
/// (`grad_x` N×dim, `grad_y` M×dim, added to, not overwritten), the coefficients `f` wrote
/// are then accumulated into them.
///
/// Preconditions (checked by the public layer): `dim > 0`, `x` and `y` whole rows,
/// `scratch.len() ≥ MIN_SCRATCH` (its length picks the tile side, [`side_of_scratch`]),
/// gradient buffers as long as their inputs. A walk whose preconditions fail does nothing.
pub(crate) fn cross(
    k: &TileKernels,
    x: &[f32],
    y: &[f32],
    dim: usize,
    scratch: &mut [f32],
    grads: Option<(&mut [f32], &mut [f32])>,
    f: impl FnMut(&mut Tile),
) {
    let side = side_of_scratch(scratch.len());
    walk(
        k,
        (x, y, dim),
        None,
        (false, 0),
        scratch,
        side,
        grads.map(|(a, b)| Grads::Cross(a, b)),
        f,
    );
}

/// Every unordered pair `{i, j}`, `i ≠ j`, of rows of `x` (N×dim), in tiles on and above
/// the diagonal ([`Tile::diagonal`], [`Tile::pair_columns`]); with `grad` (N×dim, added
/// to), pair `(i, j)`'s coefficient `c` adds `c·(x_i − x_j)` to `grad[i]` and subtracts it
/// from `grad[j]`. Preconditions as for [`cross`].
pub(crate) fn symmetric(
    k: &TileKernels,
    x: &[f32],
    dim: usize,
    scratch: &mut [f32],
    grad: Option<&mut [f32]>,
    f: impl FnMut(&mut Tile),
) {
    symmetric_from(k, x, dim, 0, scratch, grad, f);
}

/// [`symmetric`] over the column blocks from row `first_col` on (a multiple of the tile
/// side that `scratch` gives): the tiles of the full walk whose columns start there, in
/// the same order, with the same tiles. `x` may end early: the walk then stops at its
/// last row. With `first_col = 0` it is [`symmetric`]; the parallel walk splits the
/// column blocks into ranges with it.
pub(crate) fn symmetric_from(
    k: &TileKernels,
    x: &[f32],
    dim: usize,
    first_col: usize,
    scratch: &mut [f32],
    grad: Option<&mut [f32]>,
    f: impl FnMut(&mut Tile),
) {
    let side = side_of_scratch(scratch.len());
    walk(
        k,
        (x, x, dim),
        None,
        (true, first_col),
        scratch,
        side,
        grad.map(Grads::Symmetric),
        f,
    );
}

/// The scratch of a scaled walk ([`cross_scaled`], [`symmetric_scaled`]) for batches of up
/// to `rows` rows (the larger side) of `dim`: the tiles and two packed blocks of rows.
pub(crate) const fn scaled_scratch_len(rows: usize, dim: usize) -> usize {
    let side = side_for(rows);
    2 * side * side + 2 * side * dim
}

/// The tile side a scaled walk gets from a scratch of `len` floats (0 if too short).
pub(crate) fn side_of_scaled_scratch(len: usize, dim: usize) -> usize {
    let mut side = MAX_SIDE;
    while side >= MIN_SIDE {
        if 2 * side * side + 2 * side * dim <= len {
            return side;
        }
        side -= MIN_SIDE;
    }
    0
}

/// [`cross`] on the rows `(x_i·x_scale[i][0])·x_scale[i][1]` and likewise for `y` (for
/// example `[1/‖x_i‖, 1]`, or zeros for a zero row: L2-normalised embeddings; two factors
/// so that a row whose `1/‖x‖` would overflow is scaled by a power of two first): each block of rows is packed, scaled,
/// into scratch ([`scaled_scratch_len`]) before its tiles run. Distances, directions and
/// gradients are those of the scaled rows (the caller chains the gradient through the
/// scaling).
#[allow(clippy::too_many_arguments)]
pub(crate) fn cross_scaled(
    k: &TileKernels,
    (x, x_scale): (&[f32], &[[f32; 2]]),
    (y, y_scale): (&[f32], &[[f32; 2]]),
    dim: usize,
    scratch: &mut [f32],
    grads: Option<(&mut [f32], &mut [f32])>,
    f: impl FnMut(&mut Tile),
) {
    if dim == 0 {
        return;
    }
    let side = side_of_scaled_scratch(scratch.len(), dim);
    let scales = Some((x_scale, y_scale));
    let grads = grads.map(|(a, b)| Grads::Cross(a, b));
    walk(k, (x, y, dim), scales, (false, 0), scratch, side, grads, f);
}

/// [`symmetric`] on the rows `(x_i·scale[i][0])·scale[i][1]`, packed as in
/// [`cross_scaled`].
pub(crate) fn symmetric_scaled(
    k: &TileKernels,
    (x, scale): (&[f32], &[[f32; 2]]),
    dim: usize,
    scratch: &mut [f32],
    grad: Option<&mut [f32]>,
    f: impl FnMut(&mut Tile),
) {
    symmetric_scaled_from(k, (x, scale), dim, 0, scratch, grad, f);
}

/// [`symmetric_scaled`] from column row `first_col` on, as [`symmetric_from`].
pub(crate) fn symmetric_scaled_from(
    k: &TileKernels,
    (x, scale): (&[f32], &[[f32; 2]]),
    dim: usize,
    first_col: usize,
    scratch: &mut [f32],
    grad: Option<&mut [f32]>,
    f: impl FnMut(&mut Tile),
) {
    if dim == 0 {
        return;
    }
    let side = side_of_scaled_scratch(scratch.len(), dim);
    let scales = Some((scale, scale));
    walk(
        k,
        (x, x, dim),
        scales,
        (true, first_col),
        scratch,
        side,
        grad.map(Grads::Symmetric),
        f,
    );
}

/// The two factors a scaled walk multiplies a row by, in order.
pub(crate) type RowScale = [f32; 2];

/// Copies rows `rows` of `x`, each times its two factors, into `out`.
fn pack(x: &[f32], scale: &[[f32; 2]], dim: usize, rows: Range<usize>, out: &mut [f32]) {
    let src = x[rows.start * dim..rows.end * dim].chunks_exact(dim);
    for ((row, &[s0, s1]), dst) in src.zip(&scale[rows]).zip(out.chunks_exact_mut(dim)) {
        for (d, &v) in dst.iter_mut().zip(row) {
            *d = (v * s0) * s1;
        }
    }
}

/// The walk behind [`cross`], [`symmetric`] and their scaled forms: column blocks outer
/// (a block of `y` stays in cache while the blocks of `x` pass), row blocks inner, and in
/// a symmetric walk only the blocks on and above the diagonal.
#[allow(clippy::too_many_arguments)]
fn walk<F: FnMut(&mut Tile)>(
    k: &TileKernels,
    (x, y, dim): (&[f32], &[f32], usize),
    scales: Option<(&[RowScale], &[RowScale])>,
    (symmetric, first_col): (bool, usize),
    scratch: &mut [f32],
    side: usize,
    grads: Option<Grads>,
    mut f: F,
) {
    if dim == 0 || side == 0 {
        return;
    }
    let (n, m) = (x.len() / dim, y.len() / dim);
    if let Some((sx, sy)) = scales
        && (sx.len() != n || sy.len() != m)
    {
        return;
    }
    let mut grads = match grads {
        None => Grads::None,
        Some(Grads::Cross(gx, gy)) if gx.len() == x.len() && gy.len() == y.len() => {
            Grads::Cross(gx, gy)
        }
        Some(Grads::Symmetric(g)) if g.len() == x.len() => Grads::Symmetric(g),
        Some(_) => return,
    };
    let (tiles, packs) = scratch.split_at_mut(2 * side * side);
    let (squared, coefficients) = tiles.split_at_mut(side * side);
    let (x_pack, y_pack) = if scales.is_some() {
        packs[..2 * side * dim].split_at_mut(side * dim)
    } else {
        (&mut [][..], &mut [][..])
    };
    for j0 in (first_col..m).step_by(side) {
        let cols = j0..(j0 + side).min(m);
        let ys: &[f32] = match scales {
            Some((_, sy)) => {
                pack(y, sy, dim, cols.clone(), y_pack);
                &y_pack[..cols.len() * dim]
            }
            None => &y[cols.start * dim..cols.end * dim],
        };
        let last_row = if symmetric { j0 + 1 } else { n };
        for i0 in (0..last_row).step_by(side) {
            let rows = i0..(i0 + side).min(n);
            let xs: &[f32] = match scales {
                Some((sx, _)) => {
                    pack(x, sx, dim, rows.clone(), x_pack);
                    &x_pack[..rows.len() * dim]
                }
                None => &x[rows.start * dim..rows.end * dim],
            };
            tile(
                k,
                (xs, ys, dim),
                (rows, cols.clone(), symmetric && i0 == j0),
                side,
                squared,
                coefficients,
                &mut grads,
                &mut f,
            );
        }
    }
}

/// Squared distances of every row of `anchors` (A×dim) to every row of `y` (M×dim):
/// `out[a·M + j]`, exact (rescaled where the plain sum under- or overflowed; a row against
/// an identical row is exactly 0). `out.len()` must be `A·M`; no scratch. For per-anchor
/// rows of an in-batch loss: pass a block of anchors (`x[a0·dim..a1·dim]`) and the whole
/// batch as `y`.
pub(crate) fn squared_rows(
    k: &TileKernels,
    anchors: &[f32],
    y: &[f32],
    dim: usize,
    out: &mut [f32],
) {
    if dim == 0 {
        return;
    }
    let (a, m) = (anchors.len() / dim, y.len() / dim);
    if out.len() != a * m || a == 0 || m == 0 {
        return;
    }
    // Column blocks, so that a block of `y` stays in cache while the anchors pass.
    for j0 in (0..m).step_by(4 * MAX_SIDE) {
        let j1 = (j0 + 4 * MAX_SIDE).min(m);
        for i0 in (0..a).step_by(MAX_SIDE) {
            let i1 = (i0 + MAX_SIDE).min(a);
            let block = &mut out[i0 * m + j0..];
            (k.squared)(
                &anchors[i0 * dim..i1 * dim],
                &y[j0 * dim..j1 * dim],
                dim,
                block,
                m,
            );
            for i in i0..i1 {
                let xi = &anchors[i * dim..(i + 1) * dim];
                for j in j0..j1 {
                    let s = &mut out[i * m + j];
                    if !is_positive_normal(*s) {
                        *s = squared_or_rescaled(*s, xi, &y[j * dim..(j + 1) * dim]);
                    }
                }
            }
        }
    }
}

/// `D = √s` for the exact `s` of rows `x` and `y` (from [`cross`], [`symmetric`] or
/// [`squared_rows`]), recomputed from the rows where `s` under- or overflowed.
#[inline]
pub(crate) fn distance_of(s: f32, x: &[f32], y: &[f32]) -> f32 {
    if is_positive_normal(s) {
        crate::numerics::sqrt(s)
    } else {
        Separation::from_sum(s, x, y).distance
    }
}

/// Like [`squared_rows`], but distances `D` (right where `s` under- or overflows f32:
/// components near 1e-30 or 1e19).
pub(crate) fn distance_rows(
    k: &TileKernels,
    anchors: &[f32],
    y: &[f32],
    dim: usize,
    out: &mut [f32],
) {
    if dim == 0 {
        return;
    }
    let m = y.len() / dim;
    squared_rows(k, anchors, y, dim, out);
    for (i, row) in out.chunks_exact_mut(m.max(1)).enumerate() {
        // Every root in one vector pass (as selects); the few entries that are not
        // positive normals (a row against itself) are left for the careful loop.
        for v in row.iter_mut() {
            let r = crate::numerics::sqrt(*v);
            *v = if is_positive_normal(*v) { r } else { *v };
        }
        if all_positive_normal(row) {
            continue;
        }
        let xi = &anchors[i * dim..(i + 1) * dim];
        for (j, v) in row.iter_mut().enumerate() {
            if is_positive_normal(*v) {
                continue; // a root already
            }
            *v = distance_of(*v, xi, &y[j * dim..(j + 1) * dim]);
        }
    }
}

/// One tile: distances, the loss's closure, then the gradient.
#[allow(clippy::too_many_arguments)]
fn tile<F: FnMut(&mut Tile)>(
    k: &TileKernels,
    (xs, ys, dim): (&[f32], &[f32], usize),
    (rows, cols, diagonal): (Range<usize>, Range<usize>, bool),
    stride: usize,
    squared: &mut [f32],
    coefficients: &mut [f32],
    grads: &mut Grads,
    f: &mut F,
) {
    (k.squared)(xs, ys, dim, squared, stride);
    for a in 0..rows.len() {
        let row = &mut squared[a * stride..][..cols.len()];
        // The common row, checked in one vectorised pass.
        if all_positive_normal(row) {
            continue;
        }
        let xi = &xs[a * dim..(a + 1) * dim];
        for (b, s) in row.iter_mut().enumerate() {
            if !(is_positive_normal(*s) || diagonal && a == b) {
                *s = squared_or_rescaled(*s, xi, &ys[b * dim..(b + 1) * dim]);
            }
        }
    }
    let gradient = !matches!(grads, Grads::None);
    if gradient {
        for i in 0..rows.len() {
            coefficients[i * stride..i * stride + cols.len()].fill(0.0);
        }
    }
    let grads_here = match grads {
        Grads::None => Grads::None,
        Grads::Cross(gx, gy) => Grads::Cross(gx, gy),
        Grads::Symmetric(g) => Grads::Symmetric(g),
    };
    let mut t = Tile {
        rows: rows.clone(),
        cols: cols.clone(),
        diagonal,
        stride,
        squared,
        coefficients,
        x: xs,
        y: ys,
        dim,
        grads: grads_here,
    };
    f(&mut t);
    let Tile {
        squared,
        coefficients,
        grads: grads_here,
        ..
    } = t;
    if !gradient {
        return;
    }
    if diagonal {
        // Only pairs j > i count: clear the rest, so that the kernels skip them.
        for i in 0..rows.len() {
            coefficients[i * stride..i * stride + i + 1].fill(0.0);
        }
    }
    let careful = (0..rows.len()).any(|i| {
        let at = i * stride;
        let (s, c) = (
            &squared[at..at + cols.len()],
            &coefficients[at..at + cols.len()],
        );
        // Without an early exit, so that it runs as vector compares.
        s.iter().zip(c).fold(false, |acc, (&s, &c)| {
            acc | (!(s.is_finite() && c.is_finite()) & (c != 0.0 || !s.is_finite()))
        })
    });
    match grads_here {
        Grads::None => {}
        Grads::Cross(gx, gy) => {
            let gx = &mut gx[rows.start * dim..rows.end * dim];
            let gy = &mut gy[cols.start * dim..cols.end * dim];
            if careful {
                careful_accumulate(xs, ys, dim, coefficients, stride, gx, gy);
            } else {
                (k.accumulate)(xs, ys, dim, coefficients, stride, gx, gy);
            }
        }
        Grads::Symmetric(g) => {
            if diagonal {
                let g = &mut g[rows.start * dim..rows.end * dim];
                diagonal_accumulate(k, xs, dim, coefficients, stride, g, careful);
            } else {
                // rows.end ≤ cols.start: the two blocks of rows are disjoint.
                let (lo, hi) = g.split_at_mut(cols.start * dim);
                let gx = &mut lo[rows.start * dim..rows.end * dim];
                let gy = &mut hi[..cols.len() * dim];
                if careful {
                    careful_accumulate(xs, ys, dim, coefficients, stride, gx, gy);
                } else {
                    (k.accumulate)(xs, ys, dim, coefficients, stride, gx, gy);
                }
            }
        }
    }
}

/// The gradient of a diagonal tile (pairs `j > i` of the rows `x`, gradient rows `g`),
/// split into disjoint blocks so that the cross kernel never sees a row on both sides.
fn diagonal_accumulate(
    k: &TileKernels,
    x: &[f32],
    dim: usize,
    c: &[f32],
    stride: usize,
    g: &mut [f32],
    careful: bool,
) {
    let n = x.len() / dim;
    if n <= MIN_SIDE {
        for i in 0..n {
            let (lo, hi) = g.split_at_mut((i + 1) * dim);
            let gi = &mut lo[i * dim..];
            let xi = &x[i * dim..(i + 1) * dim];
            for j in i + 1..n {
                let cij = &c[i * stride + j..];
                let (xj, gj) = (
                    &x[j * dim..(j + 1) * dim],
                    &mut hi[(j - i - 1) * dim..(j - i) * dim],
                );
                if careful {
                    careful_accumulate(xi, xj, dim, cij, stride, gi, gj);
                } else {
                    (k.accumulate)(xi, xj, dim, cij, stride, gi, gj);
                }
            }
        }
        return;
    }
    let h = (n / 2).div_ceil(MIN_SIDE) * MIN_SIDE;
    let (g_lo, g_hi) = g.split_at_mut(h * dim);
    let (x_lo, x_hi) = x.split_at(h * dim);
    diagonal_accumulate(k, x_lo, dim, c, stride, g_lo, careful);
    let c_cross = &c[h..];
    if careful {
        careful_accumulate(x_lo, x_hi, dim, c_cross, stride, g_lo, g_hi);
    } else {
        (k.accumulate)(x_lo, x_hi, dim, c_cross, stride, g_lo, g_hi);
    }
    diagonal_accumulate(k, x_hi, dim, &c[h * stride + h..], stride, g_hi, careful);
}

/// The gradient of a tile with a non-finite distance or coefficient, in scalar code: pairs
/// whose coefficient is 0 add nothing at all (even where `x_i − y_j` is infinite or NaN).
#[cold]
#[inline(never)]
fn careful_accumulate(
    x: &[f32],
    y: &[f32],
    dim: usize,
    c: &[f32],
    stride: usize,
    gx: &mut [f32],
    gy: &mut [f32],
) {
    let (rx, ry) = (x.len() / dim, y.len() / dim);
    for i in 0..rx {
        for j in 0..ry {
            let cij = c[i * stride + j];
            if cij == 0.0 {
                continue;
            }
            let (xi, yj) = (&x[i * dim..(i + 1) * dim], &y[j * dim..(j + 1) * dim]);
            for (kk, (&a, &b)) in xi.iter().zip(yj).enumerate() {
                let v = cij * (a - b);
                gx[i * dim + kk] += v;
                gy[j * dim + kk] -= v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Every backend's tile kernels and the walks against float64 loops. Sizes shrink
    //! under Miri, which runs the x86 kernels' intrinsics.
    use super::*;
    use crate::Backend;
    use crate::kernels::select_tile;
    use std::{format, vec, vec::Vec};

    const U: f64 = 1.0 / 16_777_216.0;

    fn data(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                ((i as u32)
                    .wrapping_mul(2_654_435_761)
                    .wrapping_add(seed.wrapping_mul(97))
                    >> 8) as f32
                    / 16_777_216.0
                    - 0.5
            })
            .collect()
    }

    /// Every backend; under Miri only those whose intrinsics the pass's target features
    /// add (`Backend::available` filters them), as the other pass sweeps the rest and the
    /// scalar tiles (no `unsafe`) run natively.
    fn backends() -> Vec<(Backend, &'static TileKernels)> {
        Backend::available()
            .map(|b| (b, select_tile(Some(b)).unwrap()))
            .collect()
    }

    /// `(Σ (x − y)², Σ terms)` in f64.
    fn oracle(x: &[f32], y: &[f32]) -> (f64, f64) {
        let s: f64 = x
            .iter()
            .zip(y)
            .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
            .sum();
        (s, s)
    }

    /// `what` names the entry; it is only formatted on a failure (under Miri, formatting
    /// a message per entry was most of this test's time).
    fn check_squared(what: impl Fn() -> std::string::String, got: f32, x: &[f32], y: &[f32]) {
        let (want, scale) = oracle(x, y);
        let bound = (x.len() as f64 + 4.0) * U * scale + f64::from(f32::MIN_POSITIVE);
        assert!(
            (got as f64 - want).abs() <= bound,
            "{}: got {got:e}, want {want:e}",
            what()
        );
    }

    fn sizes() -> (&'static [usize], &'static [usize]) {
        if cfg!(miri) {
            (&[1, 5, 9], &[1, 3, 17])
        } else {
            (
                &[1, 2, 3, 4, 5, 7, 8, 9, 13, 17],
                &[1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 47, 130],
            )
        }
    }

    #[test]
    fn squared_tiles_match_f64_and_write_only_their_entries() {
        let (rows, dims) = sizes();
        for (backend, k) in backends() {
            for &dim in dims {
                for &n in rows {
                    for &m in rows {
                        let offset = (n + m + dim) % 7;
                        let xb = data(n * dim + offset, 1);
                        let yb = data(m * dim + 3, 2);
                        let (x, y) = (&xb[offset..], &yb[3..]);
                        let stride = m + 2;
                        let mut out = vec![f32::NAN; n * stride];
                        (k.squared)(x, y, dim, &mut out, stride);
                        for i in 0..n {
                            for j in 0..stride {
                                let what =
                                    || format!("{backend:?} n={n} m={m} dim={dim} ({i},{j})");
                                let got = out[i * stride + j];
                                if j < m {
                                    let (xi, yj) = (&x[i * dim..][..dim], &y[j * dim..][..dim]);
                                    check_squared(what, got, xi, yj);
                                } else {
                                    assert!(got.is_nan(), "{}: written outside", what());
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn accumulated_gradients_match_f64() {
        let (rows, dims) = sizes();
        for (backend, k) in backends() {
            for &dim in dims {
                for &n in rows {
                    for &m in rows.iter().filter(|&&m| m % 2 == 1 || m == 8) {
                        let (x, y) = (data(n * dim, 3), data(m * dim, 4));
                        let stride = m + 1;
                        // Coefficients with zeros, whole zero micro-blocks included.
                        let c: Vec<f32> = (0..n * stride)
                            .map(|t| {
                                if t % 5 == 0 || t < 8 {
                                    0.0
                                } else {
                                    (t % 7) as f32 - 3.5
                                }
                            })
                            .collect();
                        let (mut gx, mut gy) = (data(n * dim, 5), data(m * dim, 6));
                        let (gx0, gy0) = (gx.clone(), gy.clone());
                        (k.accumulate)(&x, &y, dim, &c, stride, &mut gx, &mut gy);
                        let mut wx: Vec<f64> = gx0.iter().map(|&v| v as f64).collect();
                        let mut wy: Vec<f64> = gy0.iter().map(|&v| v as f64).collect();
                        let mut sx = vec![0.0f64; n * dim];
                        let mut sy = vec![0.0f64; m * dim];
                        for i in 0..n {
                            for j in 0..m {
                                let cij = c[i * stride + j] as f64;
                                for t in 0..dim {
                                    let v = cij * (x[i * dim + t] as f64 - y[j * dim + t] as f64);
                                    wx[i * dim + t] += v;
                                    wy[j * dim + t] -= v;
                                    sx[i * dim + t] += v.abs();
                                    sy[j * dim + t] += v.abs();
                                }
                            }
                        }
                        let bound = |s: f64, g0: f32| {
                            (m.max(n) as f64 + 4.0) * 2.0 * U * (s + g0.abs() as f64)
                        };
                        for t in 0..n * dim {
                            assert!(
                                (gx[t] as f64 - wx[t]).abs() <= bound(sx[t], gx0[t]),
                                "{backend:?} n={n} m={m} dim={dim} gx[{t}]"
                            );
                        }
                        for t in 0..m * dim {
                            assert!(
                                (gy[t] as f64 - wy[t]).abs() <= bound(sy[t], gy0[t]),
                                "{backend:?} n={n} m={m} dim={dim} gy[{t}]"
                            );
                        }
                    }
                }
            }
        }
    }

    /// The cross walk visits every (i, j) once with its exact distance; the symmetric one
    /// every unordered pair once, and its diagonal entries are exactly 0. Scratch of every
    /// size from the least to more than a tile's worth.
    #[test]
    fn walks_visit_each_pair_once() {
        let (n, m, dim) = if cfg!(miri) { (9, 6, 3) } else { (70, 37, 5) };
        let scratches: &[usize] = if cfg!(miri) {
            &[MIN_SCRATCH]
        } else {
            &[
                MIN_SCRATCH,
                100,
                2 * 12 * 12,
                scratch_len(70),
                scratch_len(1000) + 7,
            ]
        };
        let (x, y) = (data(n * dim, 7), data(m * dim, 8));
        for (backend, k) in backends() {
            for &len in scratches {
                let mut scratch = vec![0.0; len];
                let mut seen = vec![0u32; n * m];
                cross(k, &x, &y, dim, &mut scratch, None, |t| {
                    for i in t.rows.clone() {
                        assert_eq!(t.pair_columns(i), t.cols);
                        for j in t.pair_columns(i) {
                            seen[i * m + j] += 1;
                            check_squared(
                                || format!("{backend:?} cross {len} ({i},{j})"),
                                t.squared(i, j),
                                &x[i * dim..][..dim],
                                &y[j * dim..][..dim],
                            );
                        }
                    }
                });
                assert!(seen.iter().all(|&s| s == 1), "{backend:?} cross {len}");
                let mut seen = vec![0u32; n * n];
                symmetric(k, &x, dim, &mut scratch, None, |t| {
                    for i in t.rows.clone() {
                        if t.diagonal {
                            assert_eq!(t.squared(i, i), 0.0);
                        }
                        for j in t.pair_columns(i) {
                            seen[i.min(j) * n + i.max(j)] += 1;
                            check_squared(
                                || format!("{backend:?} symmetric {len} ({i},{j})"),
                                t.squared(i, j),
                                &x[i * dim..][..dim],
                                &x[j * dim..][..dim],
                            );
                        }
                    }
                });
                for i in 0..n {
                    for j in 0..n {
                        let want = u32::from(i < j);
                        assert_eq!(
                            seen[i * n + j],
                            want,
                            "{backend:?} symmetric {len} ({i},{j})"
                        );
                    }
                }
            }
        }
    }

    /// A coefficient that depends on the pair and its distance, so that a mixed-up index
    /// shows.
    fn coefficient(i: usize, j: usize, s: f32) -> f32 {
        if (i + 2 * j).is_multiple_of(3) {
            0.0
        } else {
            ((i * 7 + j * 3) % 11) as f32 * 0.25 - 1.0 + s * 0.01
        }
    }

    #[test]
    fn walk_gradients_match_f64() {
        let (n, m, dim) = if cfg!(miri) { (9, 6, 3) } else { (70, 37, 19) };
        let (x, y) = (data(n * dim, 9), data(m * dim, 10));
        for (backend, k) in backends() {
            for len in [MIN_SCRATCH, scratch_len(n)] {
                let mut scratch = vec![0.0; len];
                // Cross.
                let (mut gx, mut gy) = (vec![0.0; n * dim], vec![0.0; m * dim]);
                cross(
                    k,
                    &x,
                    &y,
                    dim,
                    &mut scratch,
                    Some((&mut gx, &mut gy)),
                    |t| {
                        for i in t.rows.clone() {
                            let c0 = t.cols.start;
                            let (s, c) = t.row(i);
                            for (jj, (s, c)) in s.iter().zip(c).enumerate() {
                                *c = coefficient(i, c0 + jj, *s);
                            }
                        }
                    },
                );
                let (mut wx, mut wy) = (vec![0.0f64; n * dim], vec![0.0f64; m * dim]);
                let (mut sx, mut sy) = (vec![0.0f64; n * dim], vec![0.0f64; m * dim]);
                for i in 0..n {
                    for j in 0..m {
                        let (xi, yj) = (&x[i * dim..][..dim], &y[j * dim..][..dim]);
                        let s = oracle(xi, yj).0 as f32;
                        let c = coefficient(i, j, s) as f64;
                        for t in 0..dim {
                            let v = c * (xi[t] as f64 - yj[t] as f64);
                            wx[i * dim + t] += v;
                            wy[j * dim + t] -= v;
                            sx[i * dim + t] += v.abs();
                            sy[j * dim + t] += v.abs();
                        }
                    }
                }
                let bound = |s: f64| (n.max(m) as f64 + 8.0) * 4.0 * U * s + 1e-6 * s;
                for t in 0..n * dim {
                    assert!(
                        (gx[t] as f64 - wx[t]).abs() <= bound(sx[t]),
                        "{backend:?} {len} gx[{t}]"
                    );
                }
                for t in 0..m * dim {
                    assert!(
                        (gy[t] as f64 - wy[t]).abs() <= bound(sy[t]),
                        "{backend:?} {len} gy[{t}]"
                    );
                }
                // Symmetric: pair (i, j), i < j.
                let mut g = vec![0.0; n * dim];
                symmetric(k, &x, dim, &mut scratch, Some(&mut g), |t| {
                    for i in t.rows.clone() {
                        let c0 = t.cols.start;
                        let pairs = t.pair_columns(i);
                        let diagonal = t.diagonal;
                        let (s, c) = t.row(i);
                        for j in pairs {
                            c[j - c0] = coefficient(i, j, s[j - c0]);
                        }
                        // Entries that are not pairs are ignored, whatever they hold.
                        if diagonal {
                            c[..=(i - c0)].fill(1e30);
                        }
                    }
                });
                let mut w = vec![0.0f64; n * dim];
                let mut sw = vec![0.0f64; n * dim];
                for i in 0..n {
                    for j in i + 1..n {
                        let (xi, xj) = (&x[i * dim..][..dim], &x[j * dim..][..dim]);
                        let c = coefficient(i, j, oracle(xi, xj).0 as f32) as f64;
                        for t in 0..dim {
                            let v = c * (xi[t] as f64 - xj[t] as f64);
                            w[i * dim + t] += v;
                            w[j * dim + t] -= v;
                            sw[i * dim + t] += v.abs();
                            sw[j * dim + t] += v.abs();
                        }
                    }
                }
                for t in 0..n * dim {
                    assert!(
                        (g[t] as f64 - w[t]).abs() <= bound(sw[t]),
                        "{backend:?} {len} g[{t}]"
                    );
                }
            }
        }
    }

    /// Rows at 1e-30 and 1e19 (whose plain sums underflow and overflow), an exact
    /// duplicate, and an infinite row whose zero coefficients add nothing.
    #[test]
    fn extreme_rows_keep_their_distances() {
        let dim = 3;
        let x = [
            1e-30, 0.0, 2e-30, 1e19, -1e19, 0.0, 0.5, 0.25, 0.0, 0.5, 0.25, 0.0,
        ];
        let y = [
            0.0,
            1e-30,
            0.0,
            -1e19,
            1e19,
            1e19,
            0.5,
            0.25,
            0.0,
            f32::INFINITY,
            0.0,
            0.0,
        ];
        for (backend, k) in backends() {
            let mut scratch = vec![0.0; MIN_SCRATCH];
            let mut got = [0.0f32; 16];
            let mut dist = [0.0f32; 16];
            let (mut gx, mut gy) = ([0.0f32; 12], [0.0f32; 12]);
            cross(
                k,
                &x,
                &y,
                dim,
                &mut scratch,
                Some((&mut gx, &mut gy)),
                |t| {
                    for i in t.rows.clone() {
                        for j in t.cols.clone() {
                            got[i * 4 + j] = t.squared(i, j);
                            dist[i * 4 + j] = t.distance(i, j);
                        }
                    }
                },
            );
            for i in 0..4 {
                for j in 0..4 {
                    let (xi, yj) = (&x[i * dim..][..dim], &y[j * dim..][..dim]);
                    let want = oracle(xi, yj).0;
                    let g = got[i * 4 + j] as f64;
                    if want.is_infinite() || want > f32::MAX as f64 {
                        assert_eq!(g, f64::INFINITY, "{backend:?} ({i},{j})");
                    } else {
                        let tiny = f64::from(f32::from_bits(1));
                        assert!(
                            (g - want).abs() <= 8.0 * U * want + tiny,
                            "{backend:?} ({i},{j}): {g:e} vs {want:e}"
                        );
                    }
                    let (d, want_d) = (dist[i * 4 + j] as f64, want.sqrt());
                    assert!(
                        d == want_d || (d - want_d).abs() <= 8.0 * U * want_d,
                        "{backend:?} ({i},{j}): D {d:e} vs {want_d:e}"
                    );
                    let mut rows = [0.0f32; 1];
                    distance_rows(k, xi, yj, dim, &mut rows);
                    assert_eq!(
                        rows[0],
                        dist[i * 4 + j],
                        "{backend:?} ({i},{j}): distance_rows"
                    );
                }
            }
            assert_eq!(got[2 * 4 + 2], 0.0, "{backend:?}: duplicate rows");
            assert!(
                gx.iter().chain(&gy).all(|&v| v == 0.0),
                "{backend:?}: zero coefficients"
            );
        }
    }

    /// A scaled walk is the plain walk on scaled copies of the rows, bit for bit, for
    /// scratch too short for more than the least tile and long enough for the largest.
    #[test]
    fn scaled_walks_are_walks_on_scaled_rows() {
        let (n, m, dim) = if cfg!(miri) { (6, 5, 3) } else { (37, 70, 9) };
        let (x, y) = (data(n * dim, 11), data(m * dim, 12));
        let sx: Vec<[f32; 2]> = (0..n)
            .map(|i| [[0.5, 3.0], [2.0, 1.0], [0.0, 0.0], [1.25, 0.125]][i % 4])
            .collect();
        let sy: Vec<[f32; 2]> = (0..m)
            .map(|j| [[3.0, 1.0], [0.75, 4.0], [1.0, 1.0]][j % 3])
            .collect();
        let scaled = |v: &[f32], s: &[[f32; 2]]| -> Vec<f32> {
            v.chunks(dim)
                .zip(s)
                .flat_map(|(r, &[s0, s1])| r.iter().map(move |&a| (a * s0) * s1))
                .collect()
        };
        let (xs, ys) = (scaled(&x, &sx), scaled(&y, &sy));
        for (backend, k) in backends() {
            for len in [
                scaled_scratch_len(4, dim),
                scaled_scratch_len(n.max(m), dim),
            ] {
                let record = |t: &mut Tile, out: &mut Vec<(usize, usize, u32)>| {
                    for i in t.rows.clone() {
                        let c0 = t.cols.start;
                        for j in t.pair_columns(i) {
                            out.push((i, j, t.squared(i, j).to_bits()));
                            let v = coefficient(i, j, t.squared(i, j));
                            t.row(i).1[j - c0] = v;
                        }
                    }
                };
                let mut scratch = vec![0.0; len];
                let (mut want, mut got) = (Vec::new(), Vec::new());
                let (mut gx, mut gy) = (vec![0.0; n * dim], vec![0.0; m * dim]);
                let plain_scratch = &mut vec![0.0; side_of_scaled_scratch(len, dim).pow(2) * 2];
                cross(
                    k,
                    &xs,
                    &ys,
                    dim,
                    plain_scratch,
                    Some((&mut gx, &mut gy)),
                    |t| record(t, &mut want),
                );
                let (mut hx, mut hy) = (vec![0.0; n * dim], vec![0.0; m * dim]);
                let grads = Some((&mut hx[..], &mut hy[..]));
                cross_scaled(k, (&x, &sx), (&y, &sy), dim, &mut scratch, grads, |t| {
                    record(t, &mut got)
                });
                assert_eq!(got, want, "{backend:?} cross {len}");
                assert_eq!((hx, hy), (gx, gy), "{backend:?} cross {len}");
                let (mut want, mut got) = (Vec::new(), Vec::new());
                let mut g = vec![0.0; n * dim];
                symmetric(k, &xs, dim, plain_scratch, Some(&mut g), |t| {
                    record(t, &mut want)
                });
                let mut h = vec![0.0; n * dim];
                symmetric_scaled(k, (&x, &sx), dim, &mut scratch, Some(&mut h), |t| {
                    record(t, &mut got)
                });
                assert_eq!(got, want, "{backend:?} symmetric {len}");
                assert_eq!(h, g, "{backend:?} symmetric {len}");
            }
        }
    }

    /// `add_direction` on a pair whose distance underflows f32's squares: the unit
    /// direction, not 0 or ∞.
    #[test]
    fn directions_of_tiny_pairs_are_units() {
        let dim = 2;
        let x = [3e-30, 0.0, 0.0, 0.0];
        for (backend, k) in backends() {
            let mut scratch = vec![0.0; MIN_SCRATCH];
            let mut g = [0.0f32; 4];
            symmetric(k, &x, dim, &mut scratch, Some(&mut g), |t| {
                let s = t.squared(0, 1);
                assert!((s as f64 - 9e-60).abs() < 1e-6 * 9e-60 || s == 0.0);
                t.add_direction(0, 1, 2.0);
            });
            assert_eq!(g, [2.0, 0.0, -2.0, 0.0], "{backend:?}");
        }
    }
}
