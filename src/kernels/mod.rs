//! The only hot loops of the crate, and the one place that decides which of them runs.
//!
//! A backend is a table of kernel primitives ([`Kernels`]). Kernels trust their caller:
//! lengths were validated by the public layer, and a kernel never reads or writes past the
//! shortest slice it is given. Numerical edge cases (underflow, overflow, zero distance)
//! are the public layer's business, not the kernels'.

pub(crate) mod dot_tile;
pub(crate) mod epilogue;
pub(crate) mod exp;
mod generic;
mod lanes_backend;
mod portable;
mod scalar;
pub(crate) mod threshold;
pub(crate) mod tile;
// Soft-float x86-64 targets (`x86_64-unknown-none`) cannot compile vector code at all.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod x86_64;

use crate::Error;
pub(crate) use epilogue::{EPILOGUE_ROWS, needs_care};

/// `(a, b, k, out_a, out_b)`: writes `k·(a − b)` and its negation.
pub(crate) type ScaledDifferenceFn = fn(&[f32], &[f32], f32, &mut [f32], &mut [f32]);
/// `(a, b, [p0, p1, p2, p3], out_a, out_b)`: writes `p0·a + p1·b` and `p2·a + p3·b`.
pub(crate) type LinearCombinationFn = fn(&[f32], &[f32], [f32; 4], &mut [f32], &mut [f32]);
/// `(a, b, dim, k, out_a, out_b, stream)`: per-row scaled differences; `stream` asks for
/// non-temporal stores where the backend has them (outputs beyond the caches).
pub(crate) type ScaledDifferenceRowsFn =
    fn(&[f32], &[f32], usize, &[f32], &mut [f32], &mut [f32], bool);

/// `(sums, labels, [w⁺, w⁻, m, 2c], gradient, losses, coefficients) -> summary`: see
/// [`epilogue::contrastive_epilogue`].
pub(crate) type EpilogueFn = fn(
    &[f32; EPILOGUE_ROWS],
    &[f32; EPILOGUE_ROWS],
    [f32; 4],
    bool,
    &mut [f32; EPILOGUE_ROWS],
    &mut [f32; EPILOGUE_ROWS],
) -> epilogue::Summary;

/// What [`Kernels::contrastive_one_pass`] did with a block.
#[derive(Clone, Copy, Debug, PartialEq)]
// Only the x86-64 backends have one-pass kernels; elsewhere every block is `Declined`.
#[cfg_attr(
    not(all(target_arch = "x86_64", target_feature = "sse2")),
    allow(dead_code)
)]
pub(crate) enum OnePass {
    /// Done: the block's gradients are written; `Σ losses` as the block path sums them.
    Done(f64),
    /// Not for this backend, row length or block; nothing written.
    Declined,
    /// A row needs care ([`needs_care`]): gradients partly written, with non-temporal
    /// stores if `stream`, so the caller fences before it takes the block path.
    NeedsCare,
}

/// `(a, b, dim, labels, [w⁺, w⁻, m, 2c], grad_a, grad_b, stream) -> OnePass`.
pub(crate) type ContrastiveOnePassFn =
    fn(&[f32], &[f32], usize, &[f32], [f32; 4], &mut [f32], &mut [f32], bool) -> OnePass;

/// `(a, b, dim, labels, [w⁺, w⁻, m, 2c], block_rows, total) -> OnePass` (nothing is
/// written).
pub(crate) type ContrastiveForwardFn =
    fn(&[f32], &[f32], usize, &[f32], [f32; 4], usize, f64) -> OnePass;

/// The primitives every backend provides. Slices passed together have equal lengths.
pub(crate) struct Kernels {
    /// `Σ (a[i] − b[i])²`.
    pub squared_euclidean: fn(&[f32], &[f32]) -> f32,
    /// The same sum, recomputed with a power-of-two scale where the f32 sum is zero,
    /// subnormal or infinite ([`numerics::squared_or_rescaled`](crate::numerics::squared_or_rescaled)):
    /// the public `squared_euclidean`. The check runs inside the kernel, where `a` and `b`
    /// are still in registers for the rare path, so that a caller keeps nothing alive
    /// across the call (register saves that were a seventh of a d = 16 pair's time).
    pub robust_squared_euclidean: fn(&[f32], &[f32]) -> f32,
    /// `Σ a[i]·b[i]`.
    pub dot: fn(&[f32], &[f32]) -> f32,
    /// `[Σ a·b, Σ a·a, Σ b·b]` in one pass.
    pub dot_and_norms: fn(&[f32], &[f32]) -> [f32; 3],
    /// `out_a = k·(a − b)`, `out_b = −out_a`; `k == 0` writes exact zeros.
    pub scaled_difference: ScaledDifferenceFn,
    /// `out_a = p0·a + p1·b`, `out_b = p2·a + p3·b`.
    pub linear_combination: LinearCombinationFn,
    /// `out[r] = Σ (a_r − b_r)²` over rows of `dim` (`dim > 0`, `out.len()` rows).
    pub squared_euclidean_rows: fn(&[f32], &[f32], usize, &mut [f32]),
    /// Row `r` of `out_a` is `k[r]·(a_r − b_r)`, `out_b = −out_a`; rows with `k[r] == 0`
    /// are exact zeros. With `stream`, the AVX-512 backend writes every 64-byte aligned
    /// vector with a non-temporal store; the others ignore it. The values written are the
    /// same either way; the caller calls `fence` before its outputs reach anyone.
    pub scaled_difference_rows: ScaledDifferenceRowsFn,
    /// Losses and gradient coefficients of a block of rows from their squared distances.
    pub contrastive_epilogue: EpilogueFn,
    /// Forward and gradient of a block of rows in one pass, where the backend has such a
    /// kernel: each row is read from memory once, its loss and coefficient computed with
    /// the same operations in the same order as the epilogue's (so the same bits), and its
    /// gradients written while it is in registers or L1. Losses are summed as the block
    /// path sums them: per [`EPILOGUE_ROWS`] rows, a full chunk with the backend's f64 sum,
    /// a shorter one in order. Labels must be valid. AVX-512 has it for rows of up to 8
    /// (in whole chunks, 16 rows a step) and for long rows (48 or more, or 24 or more with
    /// `stream`); AVX2 for rows of up to 4 (in whole chunks, 8 rows a step) and of 48 or
    /// more; the others decline. A block with a row that
    /// needs care does the work twice (up to that row or chunk, then the block path). Why:
    /// the block path's passes over a block (rows kernel, epilogue, gradient kernel) take
    /// turns at loading and storing; out of cache its forward with gradient ran at 0.8 of
    /// the read-two-write-two roofline at d = 2 and at 0.6-0.7 of the streaming one at
    /// d = 128 and 768.
    pub contrastive_one_pass: ContrastiveOnePassFn,
    /// Whether [`contrastive_one_pass`](Self::contrastive_one_pass) takes rows of `dim`
    /// (with `stream`): asked once per batch, so that a backend without the kernel for
    /// them costs no call per block (1-2% of the gradient at d = 16 in cache).
    pub one_pass_takes: fn(usize, bool) -> bool,
    /// The forward alone of a run of blocks of rows in one pass, where the backend has
    /// such a kernel: `(a, b, dim, labels, [w⁺, w⁻, m, 2c], block_rows, total)` gives
    /// `Done(total + Σ blocks)`, each block's `Σ losses` (blocks of `block_rows` rows, the
    /// last one shorter) with the bits of the block path (rows kernel, then the epilogue
    /// without gradient), added to `total` one block after the other, as the block path
    /// adds them; or `NeedsCare` where a row needs care or a label is not in `[0, 1]`
    /// (the caller then takes the block path, which says which), or `Declined`. The AVX2
    /// and AVX-512 backends have it for rows of up to 4 and 8 in whole chunks of
    /// [`EPILOGUE_ROWS`] (blocks too), and for longer rows in any number; the others
    /// decline. Why: the block path's rows kernel streams a block in and the epilogue
    /// then works from L1, with no load from memory under way (at d = 2 and 3 the AVX2
    /// forward ran at 0.6-0.8 of the read roofline out of cache), and its distances make
    /// a round trip through memory; a run of blocks a call, because each call and block
    /// cost about 200 instructions of bookkeeping (3-4 a row at d = 16).
    pub contrastive_forward: ContrastiveForwardFn,
    /// Orders the non-temporal stores of earlier `stream` calls before every later store
    /// (`sfence`; nothing where the backend has no such stores). Once per batch, not per
    /// block: at d = 2 a fence per 512-byte block halved the gradient's speed.
    pub fence: fn(),
}

/// The robust constructors of `numerics` start from the table's plain sums.
impl crate::numerics::PlainSums for Kernels {
    #[inline(always)]
    fn squared_euclidean(&self, a: &[f32], b: &[f32]) -> f32 {
        (self.squared_euclidean)(a, b)
    }
    #[inline(always)]
    fn dot_and_norms(&self, a: &[f32], b: &[f32]) -> [f32; 3] {
        (self.dot_and_norms)(a, b)
    }
}

pub use crate::backend::Backend;

/// What depends on the kernel tables: which backend is best and which can run here.
impl Backend {
    /// The backend that runs when none is named: the fastest one available, chosen once.
    ///
    /// On x86-64 with `std` this is detected at run time (AVX-512F, then AVX2+FMA, then
    /// SSE2); elsewhere it is fixed at compile time by `cfg(target_feature)`.
    #[inline]
    pub fn best() -> Backend {
        dispatch::best()
    }

    /// Whether this backend can run on this CPU and target.
    pub fn is_available(self) -> bool {
        table(self).is_ok()
    }

    /// The backends that can run here, slowest first.
    pub fn available() -> impl Iterator<Item = Backend> {
        Self::ALL
            .into_iter()
            .filter(|&b| b.is_available() && miri_pass_sweeps(b))
    }
}

/// Whether the library's own unit tests sweep `backend`. Under Miri, CI runs them twice,
/// without x86 target features and with the AVX-512 ones (and AVX2+FMA) added by
/// `-C target-feature` (.ci/steps/20-background.sh): each pass sweeps only the backends its
/// flags add (AVX-512 and AVX2 with `+avx512f`, whose kernels are `#[target_feature]`
/// functions; AVX2 with `+avx2` alone; else portable, whose `wide` vectors are SSE2
/// intrinsics), so that the passes cover every backend with `unsafe` or intrinsics once,
/// instead of the scalar and portable ones in every pass (they were most of Miri's time).
/// The scalar backend is plain safe arithmetic and runs natively only. The integration
/// tests under Miri choose their backends the same way (tests/trust_miri_paths.rs).
/// Outside the unit tests under Miri: every backend.
#[cfg(all(test, miri))]
fn miri_pass_sweeps(backend: Backend) -> bool {
    if cfg!(target_feature = "avx512f") {
        matches!(backend, Backend::Avx512 | Backend::Avx2)
    } else if cfg!(target_feature = "avx2") {
        backend == Backend::Avx2
    } else {
        backend == Backend::Portable
    }
}

#[cfg(not(all(test, miri)))]
#[inline(always)]
fn miri_pass_sweeps(_: Backend) -> bool {
    true
}

/// Targets where `wide` maps to real SIMD instructions; elsewhere its arrays are no
/// faster than the scalar loops and cost flash.
const PORTABLE_IS_SIMD: bool = cfg!(any(
    target_feature = "sse2",
    target_feature = "neon",
    target_feature = "simd128"
));

/// The kernel table of `backend`, or `Err` if it cannot run here.
#[inline]
pub(crate) fn table(backend: Backend) -> Result<&'static Kernels, Error> {
    let found = match backend {
        Backend::Scalar => Some(&scalar::KERNELS),
        // Where `wide` has no SIMD its 8-lane arrays compute what the scalar loops compute,
        // unrolled: the portable name then runs the scalar table, so that firmware links one
        // table, not two (7.5 KiB of flash on Cortex-M4F; docs/targets.md).
        Backend::Portable if PORTABLE_IS_SIMD => Some(&portable::KERNELS),
        Backend::Portable => Some(&scalar::KERNELS),
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        Backend::Avx2 => x86_64::avx2(),
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        Backend::Avx512 => x86_64::avx512(),
        #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
        Backend::Avx2 | Backend::Avx512 => None,
    };
    found.ok_or(Error::BackendUnavailable { backend })
}

/// The table of the named backend, or of the best one.
#[inline]
pub(crate) fn select(backend: Option<Backend>) -> Result<&'static Kernels, Error> {
    match backend {
        Some(b) => table(b),
        None => Ok(dispatch::best_table()),
    }
}

/// The tile kernels ([`tile::TileKernels`]) of the named backend, or of the best one: the
/// same choice as [`select`], so that a loss runs its pair and tile kernels on one backend.
#[inline]
pub(crate) fn select_tile(backend: Option<Backend>) -> Result<&'static tile::TileKernels, Error> {
    let backend = backend.unwrap_or_else(dispatch::best);
    let found = match backend {
        Backend::Scalar => Some(&tile::SCALAR),
        Backend::Portable if PORTABLE_IS_SIMD => Some(&tile::PORTABLE),
        Backend::Portable => Some(&tile::SCALAR),
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        Backend::Avx2 => x86_64::tile::avx2(),
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        Backend::Avx512 => x86_64::tile::avx512(),
        #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
        Backend::Avx2 | Backend::Avx512 => None,
    };
    found.ok_or(Error::BackendUnavailable { backend })
}

/// The softmax table of `backend` ([`dot_tile::SoftmaxKernels`]), or `Err` if it cannot
/// run here.
pub(crate) fn softmax_table(backend: Backend) -> Result<&'static dot_tile::SoftmaxKernels, Error> {
    // The pair table's availability is the backend's availability.
    table(backend)?;
    Ok(match backend {
        Backend::Scalar => &dot_tile::SCALAR,
        Backend::Portable if PORTABLE_IS_SIMD => &dot_tile::PORTABLE,
        Backend::Portable => &dot_tile::SCALAR,
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        Backend::Avx2 => &x86_64::dot_tile::AVX2,
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        Backend::Avx512 => &x86_64::dot_tile::AVX512,
        #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
        Backend::Avx2 | Backend::Avx512 => return Err(Error::BackendUnavailable { backend }),
    })
}

/// The softmax table of the named backend, or of the best one: the same choice as
/// [`select`].
pub(crate) fn select_softmax(
    backend: Option<Backend>,
) -> Result<&'static dot_tile::SoftmaxKernels, Error> {
    softmax_table(backend.unwrap_or_else(dispatch::best))
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod dispatch {
    //! Run-time choice, made once and cached (memchr's pattern). The cache holds the chosen
    //! table itself, in a `OnceLock`, so that a call pays one atomic load and no detection,
    //! and no `unsafe` is needed: the table got there through `table`, which checked it.
    use super::{Backend, Kernels, table};
    use std::sync::OnceLock;

    static BEST: OnceLock<(Backend, &'static Kernels)> = OnceLock::new();

    #[cold]
    fn detect() -> (Backend, &'static Kernels) {
        [Backend::Avx512, Backend::Avx2]
            .into_iter()
            .find_map(|b| table(b).ok().map(|k| (b, k)))
            .unwrap_or((Backend::Portable, &super::portable::KERNELS))
    }

    #[inline]
    pub(super) fn best() -> Backend {
        BEST.get_or_init(detect).0
    }

    #[inline]
    pub(super) fn best_table() -> &'static Kernels {
        // The first call detects, out of line: the hot path is one load and a branch.
        match BEST.get() {
            Some(&(_, kernels)) => kernels,
            None => first_table(),
        }
    }

    #[cold]
    #[inline(never)]
    fn first_table() -> &'static Kernels {
        BEST.get_or_init(detect).1
    }
}

#[cfg(not(all(feature = "std", target_arch = "x86_64")))]
mod dispatch {
    //! Compile-time choice: what `cfg(target_feature)` says this build may use.
    use super::{Backend, Kernels};

    #[inline]
    pub(super) fn best() -> Backend {
        // AVX-512F, then AVX2+FMA, as far as the build's target features allow.
        if let Some(b) = [Backend::Avx512, Backend::Avx2]
            .into_iter()
            .find(|b| b.is_available())
        {
            return b;
        }
        if super::PORTABLE_IS_SIMD {
            Backend::Portable
        } else {
            Backend::Scalar
        }
    }

    #[inline]
    pub(super) fn best_table() -> &'static Kernels {
        match super::table(best()) {
            Ok(k) => k,
            Err(_) => &super::scalar::KERNELS,
        }
    }
}
