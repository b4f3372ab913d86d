//! The backend names: a leaf module, so that [`Error`](crate::Error) can name a backend
//! without depending on the kernels (which return it). What depends on the kernel tables
//! (`best`, `is_available`, `available`) is implemented in `crate::kernels`.

/// A kernel backend. Every computation of the crate runs on the best available backend
/// unless one is named (for tests and benchmarks, see
/// [`ContrastiveLoss::with_backend`](crate::ContrastiveLoss::with_backend)).
///
/// ```
/// use contrastive::Backend;
/// let best = Backend::best();
/// assert!(best.is_available());
/// assert!(Backend::available().any(|b| b == Backend::Scalar));
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Plain Rust with four accumulators; runs everywhere.
    Scalar,
    /// `wide::f32x8`: SSE2 on x86-64, NEON on aarch64, simd128 on wasm32 when enabled;
    /// on targets without SIMD, the scalar loops (wide's arrays would be no faster).
    Portable,
    /// `core::arch` AVX2 + FMA kernels (x86-64 only, detected at run time under `std`).
    Avx2,
    /// `core::arch` AVX-512F kernels (x86-64 only, detected at run time under `std`); the
    /// distances of batch rows longer than 16 take the AVX2 kernel, measured faster.
    Avx512,
}

impl Backend {
    /// Every backend this crate knows, available here or not.
    pub const ALL: [Backend; 4] = [
        Backend::Scalar,
        Backend::Portable,
        Backend::Avx2,
        Backend::Avx512,
    ];

    /// A short lowercase name (`"scalar"`, `"portable"`, `"avx2"`, `"avx512"`).
    pub fn name(self) -> &'static str {
        match self {
            Backend::Scalar => "scalar",
            Backend::Portable => "portable",
            Backend::Avx2 => "avx2",
            Backend::Avx512 => "avx512",
        }
    }
}
