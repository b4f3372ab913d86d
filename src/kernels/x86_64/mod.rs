//! `core::arch` kernels for x86-64: AVX2+FMA and AVX-512F. Each table is handed out only
//! after its instructions are known to be available, which is what makes the safe
//! wrappers in it sound.

use super::Kernels;

/// The AVX2+FMA table, if this CPU has AVX2 and FMA.
pub(crate) fn avx2() -> Option<&'static Kernels> {
    None
}

/// The AVX-512F table, if this CPU has AVX-512F.
pub(crate) fn avx512() -> Option<&'static Kernels> {
    None
}
