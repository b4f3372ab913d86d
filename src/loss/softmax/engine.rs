//! The streaming engine under the softmax losses: cosine similarities of `X` (N×d) against
//! `Y` (M×d) in tiles of `TILE_ROWS × TILE_COLS`, never an N×M matrix.
//!
//! - **Normalisation.** Each row's inverse L2 norm is computed once, in f64 (no overflow
//!   or underflow of `Σx²` for any finite f32 row). Rows of `Y` are normalised as they are
//!   packed into the panel; a tile row of `X·Ŷᵀ` is then multiplied by `1/‖xᵢ‖`. A zero row
//!   has inverse norm 0, so cosine 0 with everything and gradient 0.
//! - **Forward.** Per row (and per column for CLIP) a running maximum and an f64 running
//!   sum of `e^(l − max)`: the online log-sum-exp. The sum is rescaled only when the maximum
//!   grows.
//! - **Gradient.** A second pass recomputes each tile, turns it into `H = ∂L/∂cos` while it
//!   is in cache, and adds `Σⱼ Hᵢⱼ·ŷⱼ` into the caller's gradient rows (and `Σᵢ Hᵢⱼ·x̂ᵢ`
//!   into the column side's), with `rᵢ = Σⱼ Hᵢⱼ·cosᵢⱼ` kept per row; the chain rule through
//!   the normalisation, `∂cos/∂xᵢ = (ŷⱼ − cos·x̂ᵢ)/‖xᵢ‖`, is applied at the end, once per row.

#![forbid(unsafe_code)]

use crate::kernels::dot_tile::{SoftmaxKernels, TILE_COLS, TILE_ROWS, Tile};

/// Where a tile lies: rows `i0..i0 + rows` of `X`, columns `j0..j0 + cols` of `Y`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct At {
    pub i0: usize,
    pub rows: usize,
    pub j0: usize,
    pub cols: usize,
}

/// `X` against `Y`, with their inverse norms.
pub(crate) struct Pair<'a> {
    pub kernels: &'static SoftmaxKernels,
    pub x: &'a [f32],
    pub inv_x: &'a [f32],
    pub y: &'a [f32],
    pub inv_y: &'a [f32],
    pub dim: usize,
    /// Rows of `Ŷ` the panel holds at once, `1..=TILE_COLS` (see [`panel_width`]).
    pub width: usize,
    /// The index of `x`'s first row in the whole batch: a walk over a block of rows (the
    /// parallel calls) hands out tiles at their places in the batch.
    pub row0: usize,
}

/// The panel length of a full-width walk over rows of `dim`: the fastest.
pub(crate) const fn panel_len(dim: usize) -> usize {
    dim.saturating_mul(TILE_COLS)
}

/// How many rows of `Ŷ` a panel of `len` floats holds (at most `TILE_COLS`; the losses
/// require at least one). Below `TILE_COLS` the walk packs that many rows at a time, whole
/// (row-major), and computes each similarity as a plain dot product: slower, but it lets a
/// microcontroller run a batch in a few hundred bytes of scratch.
pub(crate) const fn panel_width(len: usize, dim: usize) -> usize {
    let w = len / dim;
    if w > TILE_COLS { TILE_COLS } else { w }
}

/// `1/‖row‖` of each row, in f64 and rounded once; 0 for a zero row, NaN for a row with a
/// NaN, 0 for a row with an infinity (whose cosines are then NaN).
pub(crate) fn inverse_norms(x: &[f32], dim: usize, out: &mut [f32]) {
    for (row, inv) in x.chunks_exact(dim).zip(out.iter_mut()) {
        // Four independent f64 partial sums: one dependent chain of `dim` additions
        // was a visible part of the forward at large `dim`.
        let (quads, tail) = row.as_chunks::<4>();
        let mut p = [0.0f64; 4];
        for q in quads {
            for (p, &v) in p.iter_mut().zip(q) {
                *p += f64::from(v) * f64::from(v);
            }
        }
        for (p, &v) in p.iter_mut().zip(tail) {
            *p += f64::from(v) * f64::from(v);
        }
        let s = (p[0] + p[1]) + (p[2] + p[3]);
        *inv = if s == 0.0 {
            0.0
        } else {
            (1.0 / libm::sqrt(s)) as f32
        };
    }
}

impl Pair<'_> {
    fn n(&self) -> usize {
        self.x.len() / self.dim
    }
    fn m(&self) -> usize {
        self.y.len() / self.dim
    }

    /// Packs `Ŷ` rows `j0..j0 + cols`: column-interleaved at full width (absent columns
    /// are zeros), whole rows one after another below it.
    fn pack(&self, j0: usize, cols: usize, panel: &mut [f32]) {
        let d = self.dim;
        let narrow = self.width < TILE_COLS;
        let panel = &mut panel[..d * self.width];
        if !narrow && cols == TILE_COLS {
            self.pack_full(j0, panel);
            return;
        }
        panel.fill(0.0);
        for j in 0..cols {
            let row = &self.y[(j0 + j) * d..(j0 + j + 1) * d];
            let inv = self.inv_y[j0 + j];
            if narrow {
                for (p, &v) in panel[j * d..(j + 1) * d].iter_mut().zip(row) {
                    *p = v * inv;
                }
            } else {
                for (p, &v) in panel[j..].iter_mut().step_by(TILE_COLS).zip(row) {
                    *p = v * inv;
                }
            }
        }
    }

    /// [`pack`](Self::pack) of a full-width panel (`TILE_COLS` rows from `j0`), eight `k`
    /// of each row at a time: the writes stay within `8·TILE_COLS` floats (in L1) instead
    /// of striding over the whole panel once per row.
    fn pack_full(&self, j0: usize, panel: &mut [f32]) {
        const K: usize = 8;
        let d = self.dim;
        let inv = &self.inv_y[j0..j0 + TILE_COLS];
        let ys = &self.y[j0 * d..(j0 + TILE_COLS) * d];
        let (blocks, _) = panel.as_chunks_mut::<{ K * TILE_COLS }>();
        for (kb, block) in blocks.iter_mut().enumerate() {
            for (j, (row, &inv)) in ys.chunks_exact(d).zip(inv).enumerate() {
                if let Some(v) = row.get(kb * K..kb * K + K) {
                    for (t, &v) in v.iter().enumerate() {
                        block[t * TILE_COLS + j] = v * inv;
                    }
                }
            }
        }
        for k in d - d % K..d {
            for (j, (row, &inv)) in ys.chunks_exact(d).zip(inv).enumerate() {
                panel[k * TILE_COLS + j] = row[k] * inv;
            }
        }
    }

    /// Computes the cosine tile at `(i0, j0)` (the panel holds columns `j0..`).
    fn tile(&self, at: At, panel: &[f32], tile: &mut Tile) {
        let d = self.dim;
        let i0 = at.i0 - self.row0;
        let rows: [&[f32]; TILE_ROWS] = core::array::from_fn(|r| {
            let i = i0 + r.min(at.rows - 1);
            &self.x[i * d..(i + 1) * d]
        });
        if self.width < TILE_COLS {
            // Whole rows of Ŷ: one dot product per entry, in order.
            for (row, out) in rows.iter().zip(tile.iter_mut()).take(at.rows) {
                for (j, o) in out.iter_mut().enumerate().take(at.cols) {
                    let y = &panel[j * d..(j + 1) * d];
                    *o = row.iter().zip(y).map(|(a, b)| a * b).sum();
                }
            }
        } else {
            (self.kernels.dot_tile)(&rows, panel, tile);
        }
        for (r, row) in tile.iter_mut().enumerate().take(at.rows) {
            let inv = self.inv_x[i0 + r];
            for v in row.iter_mut() {
                *v *= inv;
            }
        }
    }

    /// Calls `f` with every tile of cosines whose position `wants` accepts.
    pub(crate) fn walk(
        &self,
        panel: &mut [f32],
        mut wants: impl FnMut(At) -> bool,
        mut f: impl FnMut(At, &Tile),
    ) {
        let (n, m) = (self.n(), self.m());
        let mut tile = [[0.0f32; TILE_COLS]; TILE_ROWS];
        for j0 in (0..m).step_by(self.width) {
            let cols = self.width.min(m - j0);
            let mut packed = false;
            for i0 in (0..n).step_by(TILE_ROWS) {
                let at = At {
                    i0: self.row0 + i0,
                    rows: TILE_ROWS.min(n - i0),
                    j0,
                    cols,
                };
                if !wants(at) {
                    continue;
                }
                if !packed {
                    self.pack(j0, cols, panel);
                    packed = true;
                }
                self.tile(at, panel, &mut tile);
                f(at, &tile);
            }
        }
    }

    /// The gradient pass: `f(at, cos, h)` fills `h` (`∂L/∂cos`, zero outside the tile)
    /// for each wanted tile; `Σⱼ hᵢⱼ·ŷⱼ` and `rᵢ = Σⱼ hᵢⱼ·cosᵢⱼ` are added into `gx`'s rows
    /// (those of this walk's rows: `gx` starts at row [`row0`](Self::row0))
    /// and, with `gy`, `Σᵢ hᵢⱼ·x̂ᵢ` and `Σᵢ hᵢⱼ·cosᵢⱼ` into `gy`'s (the chain rule through
    /// the normalisation is [`GradRows::finish`]).
    pub(crate) fn walk_grad(
        &self,
        panel: &mut [f32],
        gx: &mut GradRows<'_>,
        mut gy: Option<&mut GradRows<'_>>,
        mut wants: impl FnMut(At) -> bool,
        mut f: impl FnMut(At, &Tile, &mut Tile),
    ) {
        let d = self.dim;
        let mut h = [[0.0f32; TILE_COLS]; TILE_ROWS];
        let mut c = [[0.0f32; TILE_COLS]; TILE_ROWS];
        let mut ct = [[0.0f32; TILE_COLS]; TILE_ROWS];
        self.walk(panel, &mut wants, |at, cos| {
            h = [[0.0; TILE_COLS]; TILE_ROWS];
            f(at, cos, &mut h);
            let ys: [&[f32]; TILE_COLS] = core::array::from_fn(|j| {
                let j = at.j0 + j.min(at.cols - 1);
                &self.y[j * d..(j + 1) * d]
            });
            let li0 = at.i0 - self.row0;
            let cols = at.cols.min(TILE_COLS);
            let inv_y = &self.inv_y[at.j0..at.j0 + cols];
            for r in 0..at.rows.min(TILE_ROWS) {
                let i = li0 + r;
                // `f32::max` drops NaN in any order: lanes give the same maximum (and `h`
                // is zero outside the tile).
                let mut m = [0.0f32; LANES];
                for ch in h[r].as_chunks::<LANES>().0 {
                    for (m, v) in m.iter_mut().zip(ch) {
                        *m = m.max(v.abs());
                    }
                }
                let m = m.iter().fold(0.0f32, |a, &b| a.max(b));
                let s = gx.scale(i, m);
                let mut ri = [0.0f32; TILE_COLS];
                for ((((c, &h), &inv), &cos), ri) in c[r][..cols]
                    .iter_mut()
                    .zip(&h[r])
                    .zip(inv_y)
                    .zip(&cos[r])
                    .zip(&mut ri)
                {
                    let v = h * s;
                    *c = v * inv;
                    *ri = v * cos;
                }
                gx.r.add(i, f64::from(sum_of(&ri[..cols])));
            }
            (self.kernels.axpy_block)(
                &mut gx.grad[li0 * d..(li0 + at.rows) * d],
                d,
                &c,
                &ys[..at.cols],
            );
            if let Some(gy) = gy.as_deref_mut() {
                let xs: [&[f32]; TILE_ROWS] = core::array::from_fn(|r| {
                    let i = li0 + r.min(at.rows - 1);
                    &self.x[i * d..(i + 1) * d]
                });
                let rows = at.rows.min(TILE_ROWS);
                // Each column's largest coefficient, then its scale (columns in order, as
                // before), then `v = hᵢⱼ·sⱼ` for the whole tile at once: loops along the
                // columns, which vectorise, instead of one short chain per column. `h` is
                // zero outside the tile. The sums over rows keep their order.
                let mut mc = [0.0f32; TILE_COLS];
                for hr in &h[..rows] {
                    for (m, v) in mc.iter_mut().zip(hr) {
                        *m = m.max(v.abs());
                    }
                }
                let mut sc = [0.0f32; TILE_COLS];
                for (j, (s, &m)) in sc.iter_mut().zip(&mc).take(cols).enumerate() {
                    *s = gy.scale(at.j0 + j, m);
                }
                let mut rj = [0.0f32; TILE_COLS];
                for (r, (hr, cr)) in h.iter().zip(cos).take(rows).enumerate() {
                    let inv = self.inv_x[li0 + r];
                    for (j, ((&h, &cos), &s)) in hr.iter().zip(cr).zip(&sc).enumerate() {
                        let v = h * s;
                        c[r][j] = v * inv;
                        rj[j] += v * cos;
                    }
                }
                for (j, &rj) in rj.iter().enumerate().take(cols) {
                    gy.r.add(at.j0 + j, f64::from(rj));
                }
                // Columns in groups of TILE_ROWS, each a block of rows of `gy`.
                for g0 in (0..at.cols).step_by(TILE_ROWS) {
                    let g = TILE_ROWS.min(at.cols - g0);
                    let jj = at.j0 + g0;
                    for q in 0..g {
                        for r in 0..rows {
                            ct[q][r] = c[r][g0 + q];
                        }
                    }
                    (self.kernels.axpy_block)(
                        &mut gy.grad[jj * d..(jj + g) * d],
                        d,
                        &ct,
                        &xs[..at.rows],
                    );
                }
            }
        });
    }
}

/// Gradient rows under accumulation, each at its own power-of-two scale.
///
/// `∂L/∂cos` of a saturated row can be far below 1 (1e-25 is ordinary), and the rows of
/// the other side far above it in norm (1e18), so `hᵢⱼ/‖yⱼ‖` would be an f32 subnormal
/// with few bits left even though `hᵢⱼ·yⱼ/‖yⱼ‖` is not. Each row's coefficients are
/// therefore multiplied by `2^eᵢ`, with `eᵢ` set from the first nonzero coefficient the
/// row meets (to bring it to `[1, 2)`) and lowered, with the row's sums rescaled, when a
/// later one is larger by more than `2^SLACK`. [`finish`](Self::finish) removes the
/// scale in f64, with the chain rule through the normalisation, once per row.
pub(crate) struct GradRows<'a> {
    grad: &'a mut [f32],
    dim: usize,
    /// `rᵢ = Σⱼ hᵢⱼ·cosᵢⱼ` at the row's scale.
    r: Acc64<'a>,
    /// `eᵢ` as an f32 integer; NaN until the row meets a nonzero coefficient.
    shift: &'a mut [f32],
}

/// How far a later coefficient may exceed the one a row's scale was set from.
const SLACK: i32 = 16;

impl<'a> GradRows<'a> {
    /// Zeroes `grad` (whole rows of `dim`) and takes its state, `3·n` slots for `n` rows,
    /// off the front of `scratch`.
    pub(crate) fn new(grad: &'a mut [f32], dim: usize, scratch: &mut &'a mut [f32]) -> Self {
        let n = grad.len() / dim;
        grad.fill(0.0);
        let mut r = Acc64::new(take(scratch, Acc64::slots(n)), 0);
        r.fill(0.0);
        let shift = take(scratch, n);
        shift.fill(f32::NAN);
        GradRows {
            grad,
            dim,
            r,
            shift,
        }
    }

    /// The factor `2^eᵢ` for row `i`, whose coefficients in this tile reach `m`.
    fn scale(&mut self, i: usize, m: f32) -> f32 {
        let cur = self.shift[i];
        if !(m > 0.0 && m.is_finite()) {
            // Nothing to set a scale from (zeros, or a NaN or ∞ that propagates anyway).
            return if cur.is_nan() {
                1.0
            } else {
                pow2_f32(cur as i32)
            };
        }
        let e = (-exponent(m)).clamp(-126, 127);
        if cur.is_nan() {
            self.shift[i] = e as f32;
            return pow2_f32(e);
        }
        let cur = cur as i32;
        if e >= cur - SLACK {
            return pow2_f32(cur);
        }
        // A coefficient far larger than the row's first: lower the scale, exactly (the
        // parts that underflow are below 2⁻¹²⁶ of the new coefficient).
        let f = pow2_f64(e - cur);
        let dim = self.dim;
        for g in &mut self.grad[i * dim..(i + 1) * dim] {
            *g = (f64::from(*g) * f) as f32;
        }
        self.r.set(i, self.r.get(i) * f);
        self.shift[i] = e as f32;
        pow2_f32(e)
    }

    /// The chain rule through the normalisation, per row, with the row's scale removed:
    /// `gᵢ ← (gᵢ − rᵢ·x̂ᵢ)/‖xᵢ‖`, where `gᵢ = Σⱼ hᵢⱼ·ŷⱼ` and `rᵢ = Σⱼ hᵢⱼ·cosᵢⱼ`, in f64
    /// and rounded once. `x` is the side the rows belong to, `inv` its inverse norms.
    pub(crate) fn finish(self, x: &[f32], inv: &[f32]) {
        let dim = self.dim;
        for (i, (row, g)) in x
            .chunks_exact(dim)
            .zip(self.grad.chunks_exact_mut(dim))
            .enumerate()
        {
            let unscale = unscale(self.shift[i]);
            let inv = f64::from(inv[i]);
            let k = self.r.get(i);
            for (g, &v) in g.iter_mut().zip(row) {
                *g = ((f64::from(*g) - k * (inv * f64::from(v))) * inv * unscale) as f32;
            }
        }
    }
}

/// The state slots of [`GradRows::new`] for `n` rows.
#[cfg(feature = "rayon")]
pub(crate) const fn grad_state_len(n: usize) -> usize {
    Acc64::slots(n) + n
}

/// Rows `row0..row0 + out.len()/dim` of one side's gradient, from the partial sums of
/// several walks over it (each a whole side's gradient rows and the `3·n` state slots
/// [`GradRows::new`] took for them): per row, each partial's sums with its own scale
/// removed, added in f64 in the order given, then the chain rule through the
/// normalisation as in [`GradRows::finish`], rounded once. `x` and `inv` are those rows'.
#[cfg(feature = "rayon")]
pub(crate) fn finish_partials(
    parts: &[(&[f32], &[f32])],
    x: &[f32],
    inv: &[f32],
    dim: usize,
    row0: usize,
    out: &mut [f32],
) {
    let slot = |state: &[f32], i: usize| {
        let hi = u64::from(state[2 * i].to_bits());
        let lo = u64::from(state[2 * i + 1].to_bits());
        f64::from_bits(hi << 32 | lo)
    };
    for (t, (row, g)) in x
        .chunks_exact(dim)
        .zip(out.chunks_exact_mut(dim))
        .enumerate()
    {
        let i = row0 + t;
        let mut k = 0.0f64;
        for &(_, state) in parts {
            k += slot(state, i) * unscale(state[2 * (state.len() / 3) + i]);
        }
        let inv = f64::from(inv[t]);
        for (c, (g, &v)) in g.iter_mut().zip(row).enumerate() {
            let mut s = 0.0f64;
            for &(grad, state) in parts {
                s += f64::from(grad[i * dim + c]) * unscale(state[2 * (state.len() / 3) + i]);
            }
            *g = ((s - k * (inv * f64::from(v))) * inv) as f32;
        }
    }
}

/// `2^−e` for a row's scale `e` (stored as an f32 integer), 1 for a row without one (NaN).
#[inline]
fn unscale(shift: f32) -> f64 {
    if shift.is_nan() {
        1.0
    } else {
        pow2_f64(-(shift as i32))
    }
}

/// The binary exponent of a positive finite `m` (`m = 1.f·2^e`; −127 for subnormals).
#[inline]
fn exponent(m: f32) -> i32 {
    ((m.to_bits() >> 23) & 0xff) as i32 - 127
}

/// `2^e` for `e` in `-126..=127`.
#[inline]
fn pow2_f32(e: i32) -> f32 {
    f32::from_bits(((e + 127) as u32) << 23)
}

/// `2^e` for `e` in `-1022..=1023`.
#[inline]
fn pow2_f64(e: i32) -> f64 {
    f64::from_bits(((e + 1023) as u64) << 52)
}

/// f64 accumulators stored in pairs of f32 slots of the caller's scratch; accumulator
/// `i` of the batch is slot pair `i − base` (a block of rows keeps only its own).
pub(crate) struct Acc64<'a>(pub &'a mut [f32], pub usize);

impl<'a> Acc64<'a> {
    /// The accumulators of rows `base..` in `slots`, as they are.
    pub(crate) fn new(slots: &'a mut [f32], base: usize) -> Self {
        Acc64(slots, base)
    }
    /// The slots `n` accumulators need.
    pub(crate) const fn slots(n: usize) -> usize {
        2 * n
    }
    #[inline]
    pub(crate) fn get(&self, i: usize) -> f64 {
        let i = i - self.1;
        let hi = u64::from(self.0[2 * i].to_bits());
        let lo = u64::from(self.0[2 * i + 1].to_bits());
        f64::from_bits(hi << 32 | lo)
    }
    #[inline]
    pub(crate) fn set(&mut self, i: usize, v: f64) {
        let i = i - self.1;
        let b = v.to_bits();
        self.0[2 * i] = f32::from_bits((b >> 32) as u32);
        self.0[2 * i + 1] = f32::from_bits(b as u32);
    }
    #[inline]
    pub(crate) fn add(&mut self, i: usize, v: f64) {
        let s = self.get(i) + v;
        self.set(i, s);
    }
    /// Adds `v[q]` to accumulator `i0 + q` for each `q` (one pass, no bounds check per
    /// element).
    #[inline]
    pub(crate) fn add_each(&mut self, i0: usize, v: &[f32]) {
        let i0 = i0 - self.1;
        let slots = &mut self.0[2 * i0..2 * (i0 + v.len())];
        let (pairs, _) = slots.as_chunks_mut::<2>();
        for (p, &v) in pairs.iter_mut().zip(v) {
            let s = f64::from_bits(u64::from(p[0].to_bits()) << 32 | u64::from(p[1].to_bits()))
                + f64::from(v);
            let b = s.to_bits();
            *p = [f32::from_bits((b >> 32) as u32), f32::from_bits(b as u32)];
        }
    }
    pub(crate) fn fill(&mut self, v: f64) {
        for i in 0..self.0.len() / 2 {
            self.set(self.1 + i, v);
        }
    }
}

/// The maximum of `a` and `b`, NaN if either is (`f32::max` would drop a NaN).
#[inline]
pub(crate) fn nan_max(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else if a > b {
        a
    } else {
        b
    }
}

/// Independent partial results the tile epilogue keeps per reduction: eight lanes, so that
/// a maximum or a sum over a tile row is a few vector operations, not a chain of 32
/// dependent scalar ones.
const LANES: usize = 8;

/// The maximum of `l`, NaN if it holds one; `-∞` if empty.
#[inline]
pub(crate) fn max_of(l: &[f32]) -> f32 {
    // Plain compares in `LANES` independent lanes (they vectorise), with NaN tracked
    // apart so that it is not dropped.
    let (chunks, tail) = l.as_chunks::<LANES>();
    let mut m = [f32::NEG_INFINITY; LANES];
    for c in chunks {
        for q in 0..LANES {
            m[q] = sticky_max(m[q], c[q]);
        }
    }
    for (q, &v) in tail.iter().enumerate() {
        m[q] = sticky_max(m[q], v);
    }
    m.iter().fold(f32::NEG_INFINITY, |a, &b| sticky_max(a, b))
}

/// `max(m, v)` where a NaN `v` is taken and a NaN `m` kept (`v > NaN` is false): a running
/// maximum that ends NaN if it met one, in two compares and a select (it vectorises).
#[inline(always)]
fn sticky_max(m: f32, v: f32) -> f32 {
    if v > m || v.is_nan() { v } else { m }
}

/// `Σ l` in `LANES` partial sums (a pairwise-like order: at least as accurate as the
/// sequential sum, whose `n·u` bound it keeps).
#[inline]
pub(crate) fn sum_of(l: &[f32]) -> f32 {
    let (chunks, tail) = l.as_chunks::<LANES>();
    let mut s = [0.0f32; LANES];
    for c in chunks {
        for q in 0..LANES {
            s[q] += c[q];
        }
    }
    for (q, &v) in tail.iter().enumerate() {
        s[q] += v;
    }
    ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]))
}

/// Running log-sum-exp states: a maximum (f32) and an f64 sum of `e^(l − max)`. State
/// `i` of the batch is entry `i − base` (a block of rows keeps only its own).
pub(crate) struct Lse<'a> {
    pub max: &'a mut [f32],
    pub sum: Acc64<'a>,
    pub base: usize,
}

impl<'a> Lse<'a> {
    /// Splits `n` states off the front of `scratch`.
    pub(crate) fn take(scratch: &mut &'a mut [f32], n: usize) -> Lse<'a> {
        let max = take(scratch, n);
        let sum = take(scratch, Acc64::slots(n));
        Lse::new(max, sum, 0)
    }

    /// Empty states of rows `base..base + max.len()` in `max` and `sum` (two slots each).
    pub(crate) fn new(max: &'a mut [f32], sum: &'a mut [f32], base: usize) -> Lse<'a> {
        let mut lse = Lse {
            max,
            sum: Acc64::new(sum, base),
            base,
        };
        lse.max.fill(f32::NEG_INFINITY);
        lse.sum.fill(0.0);
        lse
    }

    /// The states as they are, over `max` and `sum`, of rows `base..`.
    #[cfg(feature = "rayon")]
    pub(crate) fn view(max: &'a mut [f32], sum: &'a mut [f32], base: usize) -> Lse<'a> {
        Lse {
            max,
            sum: Acc64::new(sum, base),
            base,
        }
    }

    /// Folds the states of `other` (over the same rows) into these: the log-sum-exp of
    /// both sets of logits. The f64 sums are rescaled to the larger maximum, so the result
    /// is the one-pass value up to f64 rounding; NaN stays NaN.
    #[cfg(feature = "rayon")]
    pub(crate) fn merge(&mut self, other: &Lse<'_>) {
        for t in 0..self.max.len() {
            let i = self.base + t;
            let (a, b) = (self.max[t], other.max[i - other.base]);
            let (sa, sb) = (self.sum.get(i), other.sum.get(i));
            let m = nan_max(a, b);
            if m == f32::NEG_INFINITY {
                continue;
            }
            let part = |mx: f32, s: f64| {
                if mx == f32::NEG_INFINITY || s == 0.0 {
                    0.0
                } else {
                    s * libm::exp(f64::from(mx) - f64::from(m))
                }
            };
            let s = if m.is_nan() {
                f64::NAN
            } else {
                part(a, sa) + part(b, sb)
            };
            self.max[t] = m;
            self.sum.set(i, s);
        }
    }

    /// Folds the logits `l` (masked ones are `-∞`) into state `i`; `buf` is as long as `l`.
    #[inline]
    pub(crate) fn update(&mut self, k: &SoftmaxKernels, i: usize, l: &[f32], buf: &mut [f32]) {
        let tm = max_of(l);
        let old = self.max[i - self.base];
        let new = nan_max(old, tm);
        if new == f32::NEG_INFINITY {
            return;
        }
        let mut s = self.sum.get(i);
        if new != old && s != 0.0 {
            // Only when the maximum grows: rare after a row's first tiles.
            s *= libm::exp(f64::from(old) - f64::from(new));
        }
        for (b, &v) in buf.iter_mut().zip(l) {
            *b = v - new;
        }
        (k.exp)(buf);
        let t = sum_of(buf);
        self.max[i - self.base] = new;
        self.sum.set(i, s + f64::from(t));
    }

    /// Folds the rows of a tile (`l[r]`, rows `..rows`, columns `..cols`, masked ones
    /// `-∞`) into states `i0..i0 + rows`: [`update`](Self::update) for each row, with one
    /// exponent call for the whole tile.
    pub(crate) fn update_rows(
        &mut self,
        k: &SoftmaxKernels,
        i0: usize,
        l: &Tile,
        rows: usize,
        cols: usize,
    ) {
        // Known to be within the tile: no bounds checks in the loops below.
        let (rows, cols) = (rows.min(TILE_ROWS), cols.min(TILE_COLS));
        let mut buf = [[f32::NEG_INFINITY; TILE_COLS]; TILE_ROWS];
        let mut old = [f32::NEG_INFINITY; TILE_ROWS];
        for r in 0..rows {
            let i = i0 + r;
            let new = nan_max(self.max[i - self.base], max_of(&l[r][..cols]));
            old[r] = self.max[i - self.base];
            if new == f32::NEG_INFINITY {
                continue;
            }
            for (b, &v) in buf[r][..cols].iter_mut().zip(&l[r][..cols]) {
                *b = v - new;
            }
            self.max[i - self.base] = new;
        }
        (k.exp)(buf[..rows].as_flattened_mut());
        for r in 0..rows {
            let i = i0 + r;
            let new = self.max[i - self.base];
            if new == f32::NEG_INFINITY {
                continue;
            }
            let mut s = self.sum.get(i);
            if new != old[r] && s != 0.0 {
                // Only when the maximum grows: rare after a row's first tiles.
                s *= libm::exp(f64::from(old[r]) - f64::from(new));
            }
            self.sum.set(i, s + f64::from(sum_of(&buf[r][..cols])));
        }
    }

    /// Folds the columns of a tile (`l[r][j]`, rows `..rows`, columns `..cols`, masked
    /// ones `-∞`) into states `j0..j0 + cols`, vectorised along the columns: one exponent
    /// call per tile row.
    pub(crate) fn update_columns(
        &mut self,
        k: &SoftmaxKernels,
        j0: usize,
        l: &Tile,
        rows: usize,
        cols: usize,
    ) {
        // Known to be within the tile: no bounds checks in the loops below.
        let (rows, cols) = (rows.min(TILE_ROWS), cols.min(TILE_COLS));
        let mut new = [f32::NEG_INFINITY; TILE_COLS];
        // Compares and selects (they vectorise) that keep a NaN.
        for lr in &l[..rows] {
            for (m, &v) in new[..cols].iter_mut().zip(&lr[..cols]) {
                *m = sticky_max(*m, v);
            }
        }
        // The new maxima, branch-free (it vectorises); the rescaling below only if one grew.
        let mut old = [f32::NEG_INFINITY; TILE_COLS];
        let lj0 = j0 - self.base;
        old[..cols].copy_from_slice(&self.max[lj0..lj0 + cols]);
        let mut grew = false;
        for (m, &o) in new[..cols].iter_mut().zip(&old) {
            // `nan_max(o, m)`: NaN if either is.
            let v = sticky_max(o, *m);
            grew |= v != o && o != f32::NEG_INFINITY;
            *m = v;
        }
        self.max[lj0..lj0 + cols].copy_from_slice(&new[..cols]);
        let mut scale = [1.0f64; TILE_COLS];
        if grew {
            for j in 0..cols {
                let (o, m) = (old[j], new[j]);
                if m != o && o != f32::NEG_INFINITY {
                    // Only when a column's maximum grows: rare after its first tiles.
                    scale[j] = libm::exp(f64::from(o) - f64::from(m));
                }
            }
        }
        let mut acc = [0.0f32; TILE_COLS];
        // The whole tile's exponentials in one call: independent vectors, which pipeline,
        // rather than one short dependent chain per tile row.
        let mut buf = [[f32::NEG_INFINITY; TILE_COLS]; TILE_ROWS];
        // An all-masked column so far stays empty: its entries are all `-∞`, shifted by 0
        // (−∞ − −∞ would be NaN). A branch-free shift, so that the loop vectorises.
        let mut shift = [0.0f32; TILE_COLS];
        for (s, &m) in shift.iter_mut().zip(&new) {
            *s = if m == f32::NEG_INFINITY { 0.0 } else { m };
        }
        for (b, lr) in buf.iter_mut().zip(l).take(rows) {
            for ((b, &v), &s) in b[..cols].iter_mut().zip(&lr[..cols]).zip(&shift) {
                *b = v - s;
            }
        }
        (k.exp)(buf[..rows].as_flattened_mut());
        for b in &buf[..rows] {
            for j in 0..cols {
                acc[j] += b[j];
            }
        }
        if !grew {
            // Every scale is 1.
            self.sum.add_each(j0, &acc[..cols]);
            return;
        }
        for j in 0..cols {
            let s = self.sum.get(j0 + j);
            // `0·scale` stays 0 for an empty column; NaN propagates.
            let s = if s == 0.0 { 0.0 } else { s * scale[j] };
            self.sum.set(j0 + j, s + f64::from(acc[j]));
        }
    }

    /// `log Σ e^l` of state `i` (`-∞` for an empty state, NaN after a NaN).
    pub(crate) fn value(&self, i: usize) -> f64 {
        let m = self.max[i - self.base];
        if m == f32::NEG_INFINITY {
            return f64::NEG_INFINITY;
        }
        f64::from(m) + libm::log(self.sum.get(i))
    }

    /// Writes each state's log-sum-exp as a pair of f32 (`hi + lo`, so that `l − hi − lo`
    /// keeps the f64 value's accuracy) into `hi` and `lo`.
    pub(crate) fn split_into(&self, hi: &mut [f32], lo: &mut [f32]) {
        for i in 0..hi.len() {
            let v = self.value(self.base + i);
            let h = v as f32;
            hi[i] = h;
            lo[i] = if h.is_finite() {
                (v - f64::from(h)) as f32
            } else {
                0.0
            };
        }
    }
}

/// Splits `n` elements off the front of `scratch`.
pub(crate) fn take<'a>(scratch: &mut &'a mut [f32], n: usize) -> &'a mut [f32] {
    let s = core::mem::take(scratch);
    let (head, tail) = s.split_at_mut(n);
    *scratch = tail;
    head
}

/// `e^(l − hi − lo)` of a tile row into `out` (`out.len()` elements).
#[inline]
pub(crate) fn softmax_row(k: &SoftmaxKernels, l: &[f32], hi: f32, lo: f32, out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(l) {
        *o = (v - hi) - lo;
    }
    (k.exp)(out);
}

/// `e^(lⱼ − hiⱼ − loⱼ)` of a tile row against per-column states.
#[inline]
pub(crate) fn softmax_cols(k: &SoftmaxKernels, l: &[f32], hi: &[f32], lo: &[f32], out: &mut [f32]) {
    for (((o, &v), &h), &w) in out.iter_mut().zip(l).zip(hi).zip(lo) {
        *o = (v - h) - w;
    }
    (k.exp)(out);
}
