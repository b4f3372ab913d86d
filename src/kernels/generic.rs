//! The loop shapes, written once: four independent accumulators over blocks of
//! `4 * WIDTH` elements, then single blocks, then a scalar tail. Each backend supplies only
//! its lanes (a [`Lanes`] impl); scalar is `f32` itself with `WIDTH == 1`.
//!
//! Why four accumulators: a sum in one register is bound by the add latency (4 cycles on
//! most cores), four independent chains keep the FMA units busy. Why a scalar tail rather
//! than a zero-padded load: a padded copy of a variable-length tail compiles to a `memcpy`
//! call, and a tail of at most `WIDTH - 1` elements is cheap in scalar code.

/// A vector of `WIDTH` f32 lanes. Every method is lane-wise and never panics when called
/// as the kernels below call it (slices of exactly `WIDTH` elements).
pub(crate) trait Lanes: Copy {
    const WIDTH: usize;
    fn splat(x: f32) -> Self;
    /// Loads `chunk[..WIDTH]`; `chunk.len() == WIDTH`.
    fn load(chunk: &[f32]) -> Self;
    /// Stores into `chunk[..WIDTH]`; `chunk.len() == WIDTH`.
    fn store(self, chunk: &mut [f32]);
    fn add(self, other: Self) -> Self;
    fn sub(self, other: Self) -> Self;
    fn mul(self, other: Self) -> Self;
    /// `self * m + a`, fused where the target has FMA.
    fn mul_add(self, m: Self, a: Self) -> Self;
    fn sum(self) -> f32;
    /// `0 − self` (`+0` for either zero; soft-float targets: `−self`, the sign of a zero
    /// flipped).
    #[inline(always)]
    fn zero_minus(self) -> Self {
        Self::splat(0.0).sub(self)
    }
}

/// Targets whose f32 arithmetic is a library call (no FPU): there a subtraction costs
/// dozens of instructions, a sign flip one.
const SOFT_FLOAT: bool = cfg!(any(
    all(target_arch = "arm", not(target_abi = "eabihf")),
    all(
        any(target_arch = "riscv32", target_arch = "riscv64"),
        not(target_feature = "f")
    ),
));

impl Lanes for f32 {
    const WIDTH: usize = 1;
    #[inline(always)]
    fn splat(x: f32) -> Self {
        x
    }
    #[inline(always)]
    fn load(chunk: &[f32]) -> Self {
        chunk[0]
    }
    #[inline(always)]
    fn store(self, chunk: &mut [f32]) {
        chunk[0] = self;
    }
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        self + other
    }
    #[inline(always)]
    fn sub(self, other: Self) -> Self {
        self - other
    }
    #[inline(always)]
    fn mul(self, other: Self) -> Self {
        self * other
    }
    #[inline(always)]
    fn mul_add(self, m: Self, a: Self) -> Self {
        // Two roundings: `f32::mul_add` is a libm call without hardware FMA.
        self * m + a
    }
    #[inline(always)]
    fn sum(self) -> f32 {
        self
    }
    #[inline(always)]
    fn zero_minus(self) -> Self {
        if SOFT_FLOAT {
            // `−x`: the same but for the sign of a zero (`0 − 0 = +0`, `−0 = −0`), one
            // integer instruction where the subtraction is a library call.
            -self
        } else {
            0.0 - self
        }
    }
}

/// A reduction of two equal-length slices into `K` sums, defined once for any lanes.
pub(crate) trait Reduction<const K: usize> {
    /// Whether scalar lanes take blocks of eight elements (two steps per accumulator) before
    /// blocks of four: for a step of one instruction (the dot product's multiply-add), the
    /// loop control of a four-element block is a fifth of the loop.
    const EIGHT: bool = false;
    fn step<V: Lanes>(acc: [V; K], x: V, y: V) -> [V; K];
}

/// A lane-wise map of two slices into two outputs, with `P` per-call parameters.
pub(crate) trait Map2 {
    fn apply<V: Lanes>(p: [V; 4], x: V, y: V) -> (V, V);
}

/// `K` sums of `R::step` over `a` and `b` (equal lengths), with four accumulator sets.
///
/// The four sets are four named variables, each block's four steps written out: an array
/// of accumulators indexed in an inner loop stays in memory wherever that loop is not
/// unrolled (opt-level "s" and "z": a load, a multiply-add and a store per element on a
/// Cortex-M4F, twice CMSIS-DSP's instruction count).
#[inline(always)]
pub(crate) fn reduce<V: Lanes, R: Reduction<K>, const K: usize>(a: &[f32], b: &[f32]) -> [f32; K] {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let w = V::WIDTH;
    let zero = [V::splat(0.0); K];
    let (mut acc0, mut acc1, mut acc2, mut acc3) = (zero, zero, zero, zero);
    let (mut a, mut b) = (a, b);
    if R::EIGHT && w == 1 {
        let (blocks_a, rest_a) = a.as_chunks::<8>();
        let (blocks_b, rest_b) = b.as_chunks::<8>();
        for (xa, xb) in blocks_a.iter().zip(blocks_b) {
            let at = |i: usize| (V::load(&xa[i..i + 1]), V::load(&xb[i..i + 1]));
            let ((x0, y0), (x1, y1), (x2, y2), (x3, y3)) = (at(0), at(1), at(2), at(3));
            let ((x4, y4), (x5, y5), (x6, y6), (x7, y7)) = (at(4), at(5), at(6), at(7));
            acc0 = R::step(R::step(acc0, x0, y0), x4, y4);
            acc1 = R::step(R::step(acc1, x1, y1), x5, y5);
            acc2 = R::step(R::step(acc2, x2, y2), x6, y6);
            acc3 = R::step(R::step(acc3, x3, y3), x7, y7);
        }
        (a, b) = (rest_a, rest_b);
    }
    let mut blocks_a = a.chunks_exact(4 * w);
    let mut blocks_b = b.chunks_exact(4 * w);
    for (xa, xb) in (&mut blocks_a).zip(&mut blocks_b) {
        acc0 = R::step(acc0, V::load(&xa[..w]), V::load(&xb[..w]));
        acc1 = R::step(acc1, V::load(&xa[w..2 * w]), V::load(&xb[w..2 * w]));
        acc2 = R::step(acc2, V::load(&xa[2 * w..3 * w]), V::load(&xb[2 * w..3 * w]));
        acc3 = R::step(acc3, V::load(&xa[3 * w..]), V::load(&xb[3 * w..]));
    }
    let (mut rest_a, mut rest_b) = (blocks_a.remainder(), blocks_b.remainder());
    if w > 1 {
        let mut singles_a = rest_a.chunks_exact(w);
        let mut singles_b = rest_b.chunks_exact(w);
        for (xa, xb) in (&mut singles_a).zip(&mut singles_b) {
            acc0 = R::step(acc0, V::load(xa), V::load(xb));
        }
        (rest_a, rest_b) = (singles_a.remainder(), singles_b.remainder());
    }
    let mut tail = [0.0f32; K];
    for (&x, &y) in rest_a.iter().zip(rest_b) {
        tail = R::step(tail, x, y);
    }
    let mut out = [0.0f32; K];
    for k in 0..K {
        let pairs = acc0[k].add(acc1[k]).add(acc2[k].add(acc3[k]));
        out[k] = pairs.sum() + tail[k];
    }
    out
}

/// Writes `M::apply(params, a[i], b[i])` into `(out_a[i], out_b[i])`; all four slices have
/// the same length. Vectors, then a scalar tail; scalar lanes go straight to the tail
/// loop, one indexed loop over the four slices: that is nine instructions per element on a
/// Cortex-M4F at opt-level "s" (fourteen through `chunks_exact` of one element), with
/// no unrolling for the flash it would cost.
#[inline(always)]
pub(crate) fn map2<V: Lanes, M: Map2>(
    a: &[f32],
    b: &[f32],
    params: [f32; 4],
    out_a: &mut [f32],
    out_b: &mut [f32],
) {
    let n = a.len().min(b.len()).min(out_a.len()).min(out_b.len());
    let (mut a, mut b, mut out_a, mut out_b) = (&a[..n], &b[..n], &mut out_a[..n], &mut out_b[..n]);
    if V::WIDTH > 1 {
        let p = params.map(V::splat);
        let mut ca = a.chunks_exact(V::WIDTH);
        let mut cb = b.chunks_exact(V::WIDTH);
        let mut oa = out_a.chunks_exact_mut(V::WIDTH);
        let mut ob = out_b.chunks_exact_mut(V::WIDTH);
        for (((xa, xb), ya), yb) in (&mut ca).zip(&mut cb).zip(&mut oa).zip(&mut ob) {
            let (ra, rb) = M::apply(p, V::load(xa), V::load(xb));
            ra.store(ya);
            rb.store(yb);
        }
        (a, b) = (ca.remainder(), cb.remainder());
        (out_a, out_b) = (oa.into_remainder(), ob.into_remainder());
    }
    for (((&x, &y), ya), yb) in a.iter().zip(b).zip(out_a).zip(out_b) {
        let (ra, rb) = M::apply(params, x, y);
        *ya = ra;
        *yb = rb;
    }
}

/// `Σ (a[i] − b[i])²`.
pub(crate) struct SquaredEuclidean;
impl Reduction<1> for SquaredEuclidean {
    #[inline(always)]
    fn step<V: Lanes>([acc]: [V; 1], x: V, y: V) -> [V; 1] {
        let d = x.sub(y);
        [d.mul_add(d, acc)]
    }
}

/// `Σ a[i]·b[i]`.
pub(crate) struct Dot;
impl Reduction<1> for Dot {
    // Not without an FPU: there the library calls dominate and the longer block spills
    // (RV32IMAC: 110.8 instructions per element against 108.9).
    const EIGHT: bool = !SOFT_FLOAT;
    #[inline(always)]
    fn step<V: Lanes>([acc]: [V; 1], x: V, y: V) -> [V; 1] {
        [x.mul_add(y, acc)]
    }
}

/// `[Σ a·b, Σ a·a, Σ b·b]` in one pass.
pub(crate) struct DotAndNorms;
impl Reduction<3> for DotAndNorms {
    #[inline(always)]
    fn step<V: Lanes>([ab, aa, bb]: [V; 3], x: V, y: V) -> [V; 3] {
        [x.mul_add(y, ab), x.mul_add(x, aa), y.mul_add(y, bb)]
    }
}

/// `out_a = k·(a − b)`, `out_b = −out_a`, with `k = params[0]`.
pub(crate) struct ScaledDifference;
impl Map2 for ScaledDifference {
    #[inline(always)]
    fn apply<V: Lanes>(p: [V; 4], x: V, y: V) -> (V, V) {
        let g = p[0].mul(x.sub(y));
        (g, g.zero_minus())
    }
}

/// `out_a = p0·a + p1·b`, `out_b = p2·a + p3·b`.
pub(crate) struct LinearCombination;
impl Map2 for LinearCombination {
    #[inline(always)]
    fn apply<V: Lanes>(p: [V; 4], x: V, y: V) -> (V, V) {
        (p[0].mul_add(x, p[1].mul(y)), p[2].mul_add(x, p[3].mul(y)))
    }
}

/// Squared distances of consecutive rows of `dim` elements: `out[r] = Σ (a_r − b_r)²`.
#[inline(always)]
pub(crate) fn squared_euclidean_rows<V: Lanes>(a: &[f32], b: &[f32], dim: usize, out: &mut [f32]) {
    match dim {
        0 => out.fill(0.0),
        1 => tiny_squared_rows::<1>(a, b, out),
        2 => tiny_squared_rows::<2>(a, b, out),
        3 => tiny_squared_rows::<3>(a, b, out),
        4 => tiny_squared_rows::<4>(a, b, out),
        _ => {
            for ((ra, rb), o) in a.chunks_exact(dim).zip(b.chunks_exact(dim)).zip(out) {
                *o = reduce::<V, SquaredEuclidean, 1>(ra, rb)[0];
            }
        }
    }
}

/// Rows of a fixed tiny `D` (the seed document's 1-, 2- and 3-dimensional embeddings): the
/// row loop is the only loop and its body `D` straight-line multiply-adds, where the
/// generic blocked loop of [`reduce`] would be set up and torn down for every row (about
/// ten times slower at `D = 2`, measured). The compiler vectorizes across rows where the
/// target allows.
#[inline(always)]
fn tiny_squared_rows<const D: usize>(a: &[f32], b: &[f32], out: &mut [f32]) {
    let (rows_a, _) = a.as_chunks::<D>();
    let (rows_b, _) = b.as_chunks::<D>();
    for ((x, y), o) in rows_a.iter().zip(rows_b).zip(out) {
        let mut s = 0.0f32;
        for j in 0..D {
            let d = x[j] - y[j];
            s += d * d;
        }
        *o = s;
    }
}

/// Per-row scaled differences: row `r` of `out_a` is `k[r]·(a_r − b_r)`, `out_b = −out_a`.
#[inline(always)]
pub(crate) fn scaled_difference_rows<V: Lanes>(
    a: &[f32],
    b: &[f32],
    dim: usize,
    k: &[f32],
    out_a: &mut [f32],
    out_b: &mut [f32],
) {
    match dim {
        0 => return,
        1 => return tiny_scaled_rows::<1>(a, b, k, out_a, out_b),
        2 => return tiny_scaled_rows::<2>(a, b, k, out_a, out_b),
        3 => return tiny_scaled_rows::<3>(a, b, k, out_a, out_b),
        4 => return tiny_scaled_rows::<4>(a, b, k, out_a, out_b),
        _ => {}
    }
    let rows = a
        .chunks_exact(dim)
        .zip(b.chunks_exact(dim))
        .zip(out_a.chunks_exact_mut(dim).zip(out_b.chunks_exact_mut(dim)));
    for (((ra, rb), (oa, ob)), &k) in rows.zip(k) {
        scaled_difference::<V>(ra, rb, k, oa, ob);
    }
}

/// [`scaled_difference_rows`] for rows of a fixed tiny `D`, one straight-line row at a
/// time; `k == 0` selects exact zeros per element rather than branching per row (a
/// `memset` call and a mispredicted branch cost more than a row of 2 or 3).
#[inline(always)]
fn tiny_scaled_rows<const D: usize>(
    a: &[f32],
    b: &[f32],
    k: &[f32],
    out_a: &mut [f32],
    out_b: &mut [f32],
) {
    let (rows_a, _) = a.as_chunks::<D>();
    let (rows_b, _) = b.as_chunks::<D>();
    let (rows_oa, _) = out_a.as_chunks_mut::<D>();
    let (rows_ob, _) = out_b.as_chunks_mut::<D>();
    let rows = rows_a
        .iter()
        .zip(rows_b)
        .zip(rows_oa.iter_mut().zip(rows_ob));
    for (((x, y), (oa, ob)), &k) in rows.zip(k) {
        for j in 0..D {
            let g = if k != 0.0 { k * (x[j] - y[j]) } else { 0.0 };
            oa[j] = g;
            ob[j] = g.zero_minus();
        }
    }
}

/// `out_a = k·(a − b)`, `out_b = −out_a`; `k == 0` writes exact zeros, so an inactive pair
/// with an infinite difference gets a zero gradient rather than `0 · ∞ = NaN`.
#[inline(always)]
pub(crate) fn scaled_difference<V: Lanes>(
    a: &[f32],
    b: &[f32],
    k: f32,
    out_a: &mut [f32],
    out_b: &mut [f32],
) {
    if k == 0.0 {
        out_a.fill(0.0);
        out_b.fill(0.0);
    } else if SOFT_FLOAT && cfg!(target_arch = "arm") && V::WIDTH == 1 {
        // ARM without an FPU: `out_a` first, then `out_b` as its sign flip in a second,
        // integer loop. One loop over all four slices keeps five pointers and `k` live
        // across the library calls, which spill on a Cortex-M0's eight low registers
        // (564.8 instructions per element of `pair_with_grad` against 561.8; on RV32IMAC,
        // with registers to spare, the one loop is the shorter).
        let n = a.len().min(b.len()).min(out_a.len()).min(out_b.len());
        for ((&x, &y), g) in a[..n].iter().zip(&b[..n]).zip(&mut out_a[..n]) {
            *g = k * (x - y);
        }
        for (g, h) in out_a[..n].iter().zip(&mut out_b[..n]) {
            *h = g.zero_minus();
        }
    } else {
        map2::<V, ScaledDifference>(a, b, [k, 0.0, 0.0, 0.0], out_a, out_b);
    }
}
