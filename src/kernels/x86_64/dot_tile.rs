//! The softmax family's kernels ([`SoftmaxKernels`]) for AVX2+FMA and AVX-512F: the
//! similarity tile over a packed panel, the gradient's row update and `e^x`, each the
//! steps of the portable versions (`kernels/dot_tile.rs`, `kernels/exp.rs`) in
//! intrinsics. Written once as a macro over the vector width: the two backends differ in
//! their intrinsics' names, the width, and how a NaN lane is selected.
//!
//! Every load and store goes through a helper that takes a fixed-size array, so no kernel
//! can touch memory outside the slices it is given; the tables are handed out only after
//! their features were detected (`x86_64::has_avx2_fma`, `x86_64::has_avx512f`).

use crate::kernels::dot_tile::{SoftmaxKernels, TILE_COLS, TILE_ROWS, Tile};
use crate::kernels::exp::{EXP_HI, EXP_LO, LN2_HI, LN2_LO, LOG2E, P, ROUNDER};

/// The AVX2+FMA softmax table. Only reachable through `kernels::softmax_table`, which checks
/// that the pair table of the same backend (same features) is available.
pub(crate) static AVX2: SoftmaxKernels = SoftmaxKernels {
    exp: avx2::exp_in_place_entry,
    dot_tile: avx2::dot_tile_entry,
    axpy_block: avx2::axpy_block_entry,
};

/// The AVX-512F softmax table (same rule).
pub(crate) static AVX512: SoftmaxKernels = SoftmaxKernels {
    exp: avx512::exp_in_place_entry,
    dot_tile: avx512::dot_tile_entry,
    axpy_block: avx512::axpy_block_entry,
};

macro_rules! softmax_backend {
    (
        features: $features:literal,
        vector: $v:ty,
        lanes: $lanes:literal,
        loadu: $loadu:ident,
        storeu: $storeu:ident,
        set1: $set1:ident,
        setzero: $setzero:ident,
        fmadd: $fmadd:ident,
        mul: $mul:ident,
        add: $add:ident,
        sub: $sub:ident,
        exp_lanes: $exp_lanes:ident,
        block_vectors: $bv:literal,
    ) => {
        use super::*;
        use core::arch::x86_64::*;

        const LANES: usize = $lanes;
        /// Vectors per tile row handled in one sweep over `d` (registers: `TILE_ROWS`
        /// times this many accumulators, plus the panel's vectors).
        const SWEEP: usize = 2;
        const SWEEP_COLS: usize = SWEEP * LANES;

        #[inline]
        #[target_feature(enable = $features)]
        fn load(x: &[f32; LANES]) -> $v {
            // SAFETY: `x` holds exactly the LANES f32 an unaligned load reads.
            unsafe { $loadu(x.as_ptr()) }
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn store(x: &mut [f32; LANES], v: $v) {
            // SAFETY: `x` holds exactly the LANES f32 an unaligned store writes.
            unsafe { $storeu(x.as_mut_ptr(), v) }
        }

        /// The tile, `SWEEP` vectors of columns per sweep over `d`. The six rows and the
        /// panel are walked by one zipped iterator, so the inner loop carries no bounds
        /// checks: per `k`, `SWEEP` loads of the panel, six broadcasts, `6·SWEEP` FMAs.
        #[target_feature(enable = $features)]
        fn dot_tile(rows: &[&[f32]; TILE_ROWS], panel: &[f32], out: &mut Tile) {
            let (panel, _) = panel.as_chunks::<TILE_COLS>();
            let [r0, r1, r2, r3, r4, r5] = *rows;
            for sweep in 0..TILE_COLS / SWEEP_COLS {
                let mut acc = [[$setzero(); SWEEP]; TILE_ROWS];
                let steps = panel.iter().zip(r0).zip(r1).zip(r2).zip(r3).zip(r4).zip(r5);
                for ((((((p, &x0), &x1), &x2), &x3), &x4), &x5) in steps {
                    let (pv, _) = p.as_chunks::<LANES>();
                    let p: [$v; SWEEP] = core::array::from_fn(|v| load(&pv[sweep * SWEEP + v]));
                    let x = [x0, x1, x2, x3, x4, x5];
                    for r in 0..TILE_ROWS {
                        let x = $set1(x[r]);
                        for v in 0..SWEEP {
                            acc[r][v] = $fmadd(x, p[v], acc[r][v]);
                        }
                    }
                }
                for r in 0..TILE_ROWS {
                    let (o, _) = out[r][sweep * SWEEP_COLS..(sweep + 1) * SWEEP_COLS]
                        .as_chunks_mut::<LANES>();
                    for v in 0..SWEEP {
                        store(&mut o[v], acc[r][v]);
                    }
                }
            }
        }

        /// `out += Σₛ c[s]·inputs[s]`, four vectors of `out` at a time.
        #[target_feature(enable = $features)]
        fn axpy_rows(out: &mut [f32], coefficients: &[f32], inputs: &[&[f32]]) {
            const BLOCK: usize = 4 * LANES;
            let n = out.len();
            let count = coefficients.len().min(inputs.len());
            let inputs: &[&[f32]] = &inputs[..count];
            let mut at = 0;
            while at + BLOCK <= n {
                let (ov, _) = out[at..at + BLOCK].as_chunks_mut::<LANES>();
                let mut acc: [$v; 4] = core::array::from_fn(|q| load(&ov[q]));
                for (&c, input) in coefficients.iter().zip(inputs) {
                    if let Some(i) = input.get(at..at + BLOCK) {
                        let (iv, _) = i.as_chunks::<LANES>();
                        let c = $set1(c);
                        for q in 0..4 {
                            acc[q] = $fmadd(c, load(&iv[q]), acc[q]);
                        }
                    }
                }
                for q in 0..4 {
                    store(&mut ov[q], acc[q]);
                }
                at += BLOCK;
            }
            while at + LANES <= n {
                let (o, _) = out[at..at + LANES].as_chunks_mut::<LANES>();
                let o = &mut o[0];
                let mut acc = load(o);
                for (&c, input) in coefficients.iter().zip(inputs) {
                    if let Some(i) = input
                        .get(at..at + LANES)
                        .and_then(|s| <&[f32; LANES]>::try_from(s).ok())
                    {
                        acc = $fmadd($set1(c), load(i), acc);
                    }
                }
                store(o, acc);
                at += LANES;
            }
            for (&c, input) in coefficients.iter().zip(inputs) {
                for (o, &v) in out[at..].iter_mut().zip(input.get(at..).unwrap_or(&[])) {
                    *o += c * v;
                }
            }
        }

        /// `out[r] += Σₛ c[r][s]·inputs[s]` for `R` rows of `out` at once, `V` vectors of
        /// each row per step: `R·V` accumulators, and each input vector loaded once for
        /// all `R` rows.
        #[inline]
        #[target_feature(enable = $features)]
        fn axpy_rows_of<const R: usize, const V: usize>(
            out: &mut [f32],
            dim: usize,
            c: &Tile,
            inputs: &[&[f32]],
            start: usize,
        ) -> usize {
            let step = V * LANES;
            let mut at = start;
            while at + step <= dim {
                let mut acc = [[$setzero(); V]; R];
                for r in 0..R {
                    let (o, _) = out[r * dim + at..r * dim + at + step].as_chunks::<LANES>();
                    for v in 0..V {
                        acc[r][v] = load(&o[v]);
                    }
                }
                for (s, input) in inputs.iter().enumerate() {
                    let Some(i) = input.get(at..at + step) else {
                        continue;
                    };
                    let (iv, _) = i.as_chunks::<LANES>();
                    let p: [$v; V] = core::array::from_fn(|v| load(&iv[v]));
                    for r in 0..R {
                        let k = $set1(c[r][s]);
                        for v in 0..V {
                            acc[r][v] = $fmadd(k, p[v], acc[r][v]);
                        }
                    }
                }
                for r in 0..R {
                    let (o, _) = out[r * dim + at..r * dim + at + step].as_chunks_mut::<LANES>();
                    for v in 0..V {
                        store(&mut o[v], acc[r][v]);
                    }
                }
                at += step;
            }
            at
        }

        /// A block of rows: all `TILE_ROWS` at once, or one at a time for a short block.
        #[target_feature(enable = $features)]
        fn axpy_block(out: &mut [f32], dim: usize, c: &Tile, inputs: &[&[f32]]) {
            let rows = (out.len() / dim.max(1)).min(TILE_ROWS);
            let inputs = &inputs[..inputs.len().min(TILE_COLS)];
            if dim == 0 || rows == 0 {
                return;
            }
            let done = if rows == TILE_ROWS {
                let at = axpy_rows_of::<TILE_ROWS, $bv>(out, dim, c, inputs, 0);
                axpy_rows_of::<TILE_ROWS, 1>(out, dim, c, inputs, at)
            } else {
                0
            };
            for r in 0..rows {
                let row = &mut out[r * dim..(r + 1) * dim];
                let coefficients = &c[r][..inputs.len()];
                if done == 0 {
                    axpy_rows(row, coefficients, inputs);
                } else {
                    // The scalar tail of each row.
                    for (&k, input) in coefficients.iter().zip(inputs) {
                        for (o, &v) in row[done..]
                            .iter_mut()
                            .zip(input.get(done..dim).unwrap_or(&[]))
                        {
                            *o += k * v;
                        }
                    }
                }
            }
        }

        /// `e^x` in place: whole vectors, then the tail through a zero-padded copy.
        #[target_feature(enable = $features)]
        fn exp_in_place(x: &mut [f32]) {
            let (chunks, tail) = x.as_chunks_mut::<LANES>();
            for c in chunks {
                let v = $exp_lanes(load(c));
                store(c, v);
            }
            if !tail.is_empty() {
                let mut buf = [0.0f32; LANES];
                buf[..tail.len()].copy_from_slice(tail);
                let v = $exp_lanes(load(&buf));
                store(&mut buf, v);
                let n = tail.len();
                tail.copy_from_slice(&buf[..n]);
            }
        }

        /// The polynomial and the two power-of-two factors, shared by both widths up to
        /// the integer steps, which the caller's `$exp_lanes` does.
        #[inline]
        #[target_feature(enable = $features)]
        fn reduce(xc: $v) -> ($v, $v) {
            let rounder = $set1(ROUNDER);
            let n = $sub($fmadd(xc, $set1(LOG2E), rounder), rounder);
            let r = $fmadd(n, $set1(-LN2_HI), xc);
            let r = $fmadd(n, $set1(-LN2_LO), r);
            let mut p = $set1(P[0]);
            for &c in &P[1..] {
                p = $fmadd(p, r, $set1(c));
            }
            let e = $add($fmadd($mul(r, r), p, r), $set1(1.0));
            (n, e)
        }

        pub(super) fn exp_in_place_entry(x: &mut [f32]) {
            // SAFETY: this table is handed out only after its features were detected.
            unsafe { exp_in_place(x) }
        }

        pub(super) fn dot_tile_entry(rows: &[&[f32]; TILE_ROWS], panel: &[f32], out: &mut Tile) {
            // SAFETY: this table is handed out only after its features were detected.
            unsafe { dot_tile(rows, panel, out) }
        }

        pub(super) fn axpy_block_entry(out: &mut [f32], dim: usize, c: &Tile, inputs: &[&[f32]]) {
            // SAFETY: this table is handed out only after its features were detected.
            unsafe { axpy_block(out, dim, c, inputs) }
        }
    };
}

mod avx2 {
    softmax_backend! {
        features: "avx2,fma",
        vector: __m256,
        lanes: 8,
        loadu: _mm256_loadu_ps,
        storeu: _mm256_storeu_ps,
        set1: _mm256_set1_ps,
        setzero: _mm256_setzero_ps,
        fmadd: _mm256_fmadd_ps,
        mul: _mm256_mul_ps,
        add: _mm256_add_ps,
        sub: _mm256_sub_ps,
        exp_lanes: exp_lanes,
        block_vectors: 2,
    }

    /// `e^x` of 8 lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn exp_lanes(x: __m256) -> __m256 {
        let xc = _mm256_min_ps(
            _mm256_max_ps(x, _mm256_set1_ps(EXP_LO)),
            _mm256_set1_ps(EXP_HI),
        );
        let (n, e) = reduce(xc);
        let n = _mm256_cvtps_epi32(n);
        let half = _mm256_srai_epi32::<1>(n);
        let bias = _mm256_set1_epi32(127);
        let hi = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
            _mm256_sub_epi32(n, half),
            bias,
        )));
        let lo = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(half, bias)));
        let y = _mm256_mul_ps(_mm256_mul_ps(e, hi), lo);
        let nan = _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x);
        _mm256_blendv_ps(y, x, nan)
    }
}

mod avx512 {
    softmax_backend! {
        features: "avx512f,avx2,fma",
        vector: __m512,
        lanes: 16,
        loadu: _mm512_loadu_ps,
        storeu: _mm512_storeu_ps,
        set1: _mm512_set1_ps,
        setzero: _mm512_setzero_ps,
        fmadd: _mm512_fmadd_ps,
        mul: _mm512_mul_ps,
        add: _mm512_add_ps,
        sub: _mm512_sub_ps,
        exp_lanes: exp_lanes,
        block_vectors: 4,
    }

    /// `e^x` of 16 lanes.
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn exp_lanes(x: __m512) -> __m512 {
        let xc = clamp(x);
        let (n, e) = reduce(xc);
        // `n` is an exact integer below 2²²: its bits after adding 1.5·2²³ are those of
        // the integer plus the rounder's (no conversion instruction needed).
        let n = _mm512_sub_epi32(
            _mm512_castps_si512(_mm512_add_ps(n, _mm512_set1_ps(ROUNDER))),
            _mm512_set1_epi32(ROUNDER.to_bits() as i32),
        );
        let half = _mm512_srai_epi32::<1>(n);
        let bias = _mm512_set1_epi32(127);
        let hi = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(
            _mm512_sub_epi32(n, half),
            bias,
        )));
        let lo = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(half, bias)));
        let y = _mm512_mul_ps(_mm512_mul_ps(e, hi), lo);
        nan_through(x, y)
    }

    /// `x` clamped to `[EXP_LO, EXP_HI]` (NaN lanes are fixed by `nan_through`).
    #[cfg(not(miri))]
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn clamp(x: __m512) -> __m512 {
        _mm512_min_ps(
            _mm512_max_ps(x, _mm512_set1_ps(EXP_LO)),
            _mm512_set1_ps(EXP_HI),
        )
    }

    /// `x` where it is NaN, `y` elsewhere.
    #[cfg(not(miri))]
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn nan_through(x: __m512, y: __m512) -> __m512 {
        _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x), y, x)
    }

    // Miri cannot run the AVX-512 `max`, `min` and compare intrinsics: lane by lane there,
    // so that it still checks every memory access of the kernels around them.
    #[cfg(miri)]
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn clamp(x: __m512) -> __m512 {
        let mut a = [0.0f32; LANES];
        store(&mut a, x);
        for v in &mut a {
            *v = v.clamp(EXP_LO, EXP_HI);
        }
        load(&a)
    }

    #[cfg(miri)]
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn nan_through(x: __m512, y: __m512) -> __m512 {
        let (mut a, mut b) = ([0.0f32; LANES], [0.0f32; LANES]);
        store(&mut a, x);
        store(&mut b, y);
        for (b, a) in b.iter_mut().zip(a) {
            if a.is_nan() {
                *b = a;
            }
        }
        load(&b)
    }
}
