//! Roofline kernels: the least work that still touches the same bytes as the kernel under
//! test, written with AVX-512F so that they are limited by loads and stores, not by
//! arithmetic or by the loop. A kernel's throughput divided by its roofline's says how
//! close it runs to what the memory system (L1 for a pair, DRAM for a big batch) allows.
//!
//! These are bench code, not crate code: they exist to give the ratios in the bench
//! summary their denominator.

use core::arch::x86_64::*;

/// Floats in one AVX-512 register.
const LANES: usize = 16;

/// Proof that this CPU runs AVX-512F: the only way to reach the kernels below.
#[derive(Clone, Copy, Debug)]
pub struct Roofline(());

impl Roofline {
    /// `Some` if the CPU has AVX-512F (detected at run time).
    pub fn detect() -> Option<Roofline> {
        is_x86_feature_detected!("avx512f").then_some(Roofline(()))
    }

    /// `Σ (a[i] + b[i])` over the common length: reads `a` and `b` once, 8 accumulators.
    pub fn read(self, a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: a `Roofline` exists only after AVX-512F was detected.
        unsafe { read_sum(a, b) }
    }

    /// `Σ x[i]`: reads `x` once (the labels of a batch).
    pub fn read_one(self, x: &[f32]) -> f32 {
        // SAFETY: as in `read`.
        unsafe { read_sum_one(x) }
    }

    /// `out_a = a + b`, `out_b = a − b` over the common length of all four slices, with
    /// ordinary stores (which, out of cache, also read each output line before writing it,
    /// as any kernel with ordinary stores does).
    pub fn read2_write2(self, a: &[f32], b: &[f32], out_a: &mut [f32], out_b: &mut [f32]) {
        // SAFETY: as in `read`.
        unsafe { sum_and_difference::<false>(a, b, out_a, out_b) }
    }

    /// [`read2_write2`](Self::read2_write2) with non-temporal (streaming) stores, which
    /// skip reading the output lines: the bound for a kernel that would use them.
    ///
    /// # Panics
    /// If `out_a` or `out_b` does not start on a 64-byte boundary.
    pub fn read2_write2_stream(self, a: &[f32], b: &[f32], out_a: &mut [f32], out_b: &mut [f32]) {
        assert!(
            out_a.as_ptr().addr().is_multiple_of(64) && out_b.as_ptr().addr().is_multiple_of(64),
            "streaming stores need 64-byte aligned outputs"
        );
        // SAFETY: as in `read`; the outputs are 64-byte aligned, as `_mm512_stream_ps`
        // requires of every full vector it stores (each starts a multiple of 16 floats in).
        unsafe { sum_and_difference::<true>(a, b, out_a, out_b) }
    }
}

/// The mask of the first `n < 16` lanes.
#[inline(always)]
fn tail_mask(n: usize) -> __mmask16 {
    debug_assert!(n < LANES);
    ((1u32 << n) - 1) as __mmask16
}

#[target_feature(enable = "avx512f")]
fn read_sum(a: &[f32], b: &[f32]) -> f32 {
    const ACCUMULATORS: usize = 8;
    const STEP: usize = ACCUMULATORS * LANES;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm512_setzero_ps(); ACCUMULATORS];
    let mut i = 0;
    while i + STEP <= n {
        for (k, acc) in acc.iter_mut().enumerate() {
            let at = i + k * LANES;
            // SAFETY: at + 16 <= i + STEP <= n, so both loads are inside `a` and `b`.
            let (x, y) = unsafe { (_mm512_loadu_ps(pa.add(at)), _mm512_loadu_ps(pb.add(at))) };
            *acc = _mm512_add_ps(*acc, _mm512_add_ps(x, y));
        }
        i += STEP;
    }
    while i + LANES <= n {
        // SAFETY: i + 16 <= n.
        let (x, y) = unsafe { (_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i))) };
        acc[0] = _mm512_add_ps(acc[0], _mm512_add_ps(x, y));
        i += LANES;
    }
    if i < n {
        let m = tail_mask(n - i);
        // SAFETY: only the first n − i < 16 lanes, all inside the slices, are read; masked
        // lanes are not accessed (and cannot fault).
        let (x, y) = unsafe {
            (
                _mm512_maskz_loadu_ps(m, pa.add(i)),
                _mm512_maskz_loadu_ps(m, pb.add(i)),
            )
        };
        acc[1] = _mm512_add_ps(acc[1], _mm512_add_ps(x, y));
    }
    let [a0, a1, a2, a3, a4, a5, a6, a7] = acc;
    let s = _mm512_add_ps(
        _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
        _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)),
    );
    _mm512_reduce_add_ps(s)
}

#[target_feature(enable = "avx512f")]
fn read_sum_one(x: &[f32]) -> f32 {
    const ACCUMULATORS: usize = 8;
    const STEP: usize = ACCUMULATORS * LANES;
    let n = x.len();
    let px = x.as_ptr();
    let mut acc = [_mm512_setzero_ps(); ACCUMULATORS];
    let mut i = 0;
    while i + STEP <= n {
        for (k, acc) in acc.iter_mut().enumerate() {
            // SAFETY: i + 16k + 16 <= i + STEP <= n.
            *acc = _mm512_add_ps(*acc, unsafe { _mm512_loadu_ps(px.add(i + k * LANES)) });
        }
        i += STEP;
    }
    while i + LANES <= n {
        // SAFETY: i + 16 <= n.
        acc[0] = _mm512_add_ps(acc[0], unsafe { _mm512_loadu_ps(px.add(i)) });
        i += LANES;
    }
    if i < n {
        // SAFETY: only the first n − i lanes, inside `x`, are accessed.
        acc[1] = _mm512_add_ps(acc[1], unsafe {
            _mm512_maskz_loadu_ps(tail_mask(n - i), px.add(i))
        });
    }
    let s = acc
        .into_iter()
        .fold(_mm512_setzero_ps(), |s, v| _mm512_add_ps(s, v));
    _mm512_reduce_add_ps(s)
}

/// `out_a = a + b`, `out_b = a − b`, four vectors per side and iteration.
///
/// # Safety
/// AVX-512F must be available; with `STREAM`, `out_a` and `out_b` must be 64-byte aligned.
#[target_feature(enable = "avx512f")]
unsafe fn sum_and_difference<const STREAM: bool>(
    a: &[f32],
    b: &[f32],
    out_a: &mut [f32],
    out_b: &mut [f32],
) {
    const UNROLL: usize = 4;
    const STEP: usize = UNROLL * LANES;
    let n = a.len().min(b.len()).min(out_a.len()).min(out_b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (qa, qb) = (out_a.as_mut_ptr(), out_b.as_mut_ptr());
    let mut i = 0;
    while i + STEP <= n {
        for k in 0..UNROLL {
            let at = i + k * LANES;
            // SAFETY: at + 16 <= n for all four slices; with STREAM, `at` is a multiple
            // of 16 floats from a 64-byte aligned start, so the stores are aligned.
            unsafe {
                let (x, y) = (_mm512_loadu_ps(pa.add(at)), _mm512_loadu_ps(pb.add(at)));
                let (s, d) = (_mm512_add_ps(x, y), _mm512_sub_ps(x, y));
                if STREAM {
                    _mm512_stream_ps(qa.add(at), s);
                    _mm512_stream_ps(qb.add(at), d);
                } else {
                    _mm512_storeu_ps(qa.add(at), s);
                    _mm512_storeu_ps(qb.add(at), d);
                }
            }
        }
        i += STEP;
    }
    while i < n {
        let m = if n - i >= LANES {
            0xFFFF
        } else {
            tail_mask(n - i)
        };
        // SAFETY: only the first min(16, n − i) lanes, inside all four slices, are
        // accessed.
        unsafe {
            let (x, y) = (
                _mm512_maskz_loadu_ps(m, pa.add(i)),
                _mm512_maskz_loadu_ps(m, pb.add(i)),
            );
            _mm512_mask_storeu_ps(qa.add(i), m, _mm512_add_ps(x, y));
            _mm512_mask_storeu_ps(qb.add(i), m, _mm512_sub_ps(x, y));
        }
        i += LANES;
    }
    if STREAM {
        // Streaming stores are weakly ordered: fence them before the caller reads the
        // outputs (criterion does not, but a roofline should not cheat on the protocol).
        _mm_sfence();
    }
}

/// The same rooflines with 256-bit AVX2 vectors: the bound for the AVX2 backend, measured
/// on the same CPU as the AVX-512 one (on a CPU with both, AVX2 loads may stream from
/// memory at another rate than 512-bit ones).
#[derive(Clone, Copy, Debug)]
pub struct RooflineAvx2(());

/// Floats in one AVX2 register.
const LANES_AVX2: usize = 8;

impl RooflineAvx2 {
    /// `Some` if the CPU has AVX2 (detected at run time).
    pub fn detect() -> Option<RooflineAvx2> {
        is_x86_feature_detected!("avx2").then_some(RooflineAvx2(()))
    }

    /// `Σ (a[i] + b[i])` over the common length, 8 accumulators.
    pub fn read(self, a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: a `RooflineAvx2` exists only after AVX2 was detected.
        unsafe { read_sum_avx2(a, b) }
    }

    /// `Σ x[i]`: the labels of a batch.
    pub fn read_one(self, x: &[f32]) -> f32 {
        // SAFETY: as in `read`.
        unsafe { read_sum_avx2(x, &[]) }
    }

    /// `out_a = a + b`, `out_b = a − b` over the common length, ordinary stores.
    pub fn read2_write2(self, a: &[f32], b: &[f32], out_a: &mut [f32], out_b: &mut [f32]) {
        // SAFETY: as in `read`.
        unsafe { sum_and_difference_avx2(a, b, out_a, out_b) }
    }
}

/// `Σ a[i] + Σ b[i]` (each over its own length), 8 accumulators of 8 lanes; the tail of
/// fewer than 8 elements in scalar code.
#[target_feature(enable = "avx2")]
fn read_sum_avx2(a: &[f32], b: &[f32]) -> f32 {
    const ACCUMULATORS: usize = 8;
    const STEP: usize = ACCUMULATORS * LANES_AVX2;
    let mut total = 0.0;
    for x in [a, b] {
        let (n, px) = (x.len(), x.as_ptr());
        let mut acc = [_mm256_setzero_ps(); ACCUMULATORS];
        let mut i = 0;
        while i + STEP <= n {
            for (k, acc) in acc.iter_mut().enumerate() {
                // SAFETY: i + 8k + 8 <= i + STEP <= n.
                *acc = _mm256_add_ps(*acc, unsafe { _mm256_loadu_ps(px.add(i + k * LANES_AVX2)) });
            }
            i += STEP;
        }
        while i + LANES_AVX2 <= n {
            // SAFETY: i + 8 <= n.
            acc[0] = _mm256_add_ps(acc[0], unsafe { _mm256_loadu_ps(px.add(i)) });
            i += LANES_AVX2;
        }
        let s = acc
            .into_iter()
            .fold(_mm256_setzero_ps(), |s, v| _mm256_add_ps(s, v));
        let mut lanes = [0.0f32; LANES_AVX2];
        // SAFETY: `lanes` holds the 8 floats the store writes.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), s) };
        total += lanes.iter().sum::<f32>() + x[i..].iter().sum::<f32>();
    }
    total
}

/// `out_a = a + b`, `out_b = a − b`, four 256-bit vectors per side and iteration; the tail
/// of fewer than 32 elements in scalar code.
#[target_feature(enable = "avx2")]
fn sum_and_difference_avx2(a: &[f32], b: &[f32], out_a: &mut [f32], out_b: &mut [f32]) {
    const UNROLL: usize = 4;
    const STEP: usize = UNROLL * LANES_AVX2;
    let n = a.len().min(b.len()).min(out_a.len()).min(out_b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (qa, qb) = (out_a.as_mut_ptr(), out_b.as_mut_ptr());
    let mut i = 0;
    while i + STEP <= n {
        for k in 0..UNROLL {
            let at = i + k * LANES_AVX2;
            // SAFETY: at + 8 <= n for all four slices.
            unsafe {
                let (x, y) = (_mm256_loadu_ps(pa.add(at)), _mm256_loadu_ps(pb.add(at)));
                _mm256_storeu_ps(qa.add(at), _mm256_add_ps(x, y));
                _mm256_storeu_ps(qb.add(at), _mm256_sub_ps(x, y));
            }
        }
        i += STEP;
    }
    for j in i..n {
        out_a[j] = a[j] + b[j];
        out_b[j] = a[j] - b[j];
    }
}

/// The epilogue's bound for rows shorter than a vector: per row, one square root and, with
/// `divide`, one division, at the width of the backend (`x` is one float per row, as a
/// batch's labels are; 4 independent chains, so that the throughput of the divider, not
/// its latency, is what is measured). What a loss that takes `√s` of every row, and
/// `h/√s` for its gradient, cannot beat however its rows are read.
macro_rules! epilogue_bound {
    ($name:ident, $features:literal, $lanes:expr, $ty:ty, $setzero:ident, $set1:ident, $loadu:ident,
     $add:ident, $sqrt:ident, $div:ident, $storeu:ident) => {
        #[target_feature(enable = $features)]
        fn $name(x: &[f32], divide: bool) -> f32 {
            const LANES: usize = $lanes;
            let one = $set1(1.0);
            let mut acc: [$ty; 4] = [$setzero(); 4];
            let (chunks, _) = x.as_chunks::<{ 4 * $lanes }>();
            for chunk in chunks {
                for (k, acc) in acc.iter_mut().enumerate() {
                    // SAFETY: `chunk` holds 4 vectors; this reads vector `k` of them.
                    let v = unsafe { $loadu(chunk[k * LANES..].as_ptr()) };
                    let d = $sqrt($add(v, one));
                    *acc = $add(*acc, if divide { $div(v, d) } else { d });
                }
            }
            let s = $add($add(acc[0], acc[1]), $add(acc[2], acc[3]));
            let mut lanes = [0.0f32; LANES];
            // SAFETY: `lanes` holds the vector's floats.
            unsafe { $storeu(lanes.as_mut_ptr(), s) };
            lanes.iter().sum()
        }
    };
}

epilogue_bound!(
    epilogue_avx2,
    "avx2",
    8,
    __m256,
    _mm256_setzero_ps,
    _mm256_set1_ps,
    _mm256_loadu_ps,
    _mm256_add_ps,
    _mm256_sqrt_ps,
    _mm256_div_ps,
    _mm256_storeu_ps
);
epilogue_bound!(
    epilogue_avx512,
    "avx512f",
    16,
    __m512,
    _mm512_setzero_ps,
    _mm512_set1_ps,
    _mm512_loadu_ps,
    _mm512_add_ps,
    _mm512_sqrt_ps,
    _mm512_div_ps,
    _mm512_storeu_ps
);

impl RooflineAvx2 {
    /// [`epilogue_bound!`] with 8 lanes: a square root (and a division) per float of `x`.
    pub fn epilogue(self, x: &[f32], divide: bool) -> f32 {
        // SAFETY: a `RooflineAvx2` exists only after AVX2 was detected.
        unsafe { epilogue_avx2(x, divide) }
    }
}

impl Roofline {
    /// [`epilogue_bound!`] with 16 lanes: a square root (and a division) per float of `x`.
    pub fn epilogue(self, x: &[f32], divide: bool) -> f32 {
        // SAFETY: a `Roofline` exists only after AVX-512F was detected.
        unsafe { epilogue_avx512(x, divide) }
    }
}
