//! The hardware square root of the `no_std` build, where the target has one.
//!
//! With `std`, `f32::sqrt` already compiles to the hardware instruction everywhere. Without
//! it, `libm::sqrtf` is the fallback, and libm takes a hardware path only on x86 (SSE2
//! `sqrtss`) and aarch64 (`fsqrt`): on ARM and wasm it is an integer software routine of
//! a few hundred bytes and cycles. This module closes those gaps:
//!
//! | target | instruction | how |
//! |---|---|---|
//! | ARM hard-float, bare metal (`thumbv7em-none-eabihf`, `thumbv8m.main-none-eabihf`) | `vsqrt.f32` | a two-instruction naked function |
//! | aarch64 | `fsqrt` | inline `asm!` |
//! | wasm32 with `simd128` | `f32.sqrt` | `f32x4_sqrt` on a splat; LLVM narrows it to the scalar instruction |
//! | everything else (Cortex-M0, RV32IMAC, wasm32 without `simd128`, x86-64) | libm | `libm::sqrtf` |
//!
//! Every path is IEEE 754's correctly rounded square root, so results do not depend on which
//! one runs. The codegen checks of `.ci/steps/20-cross.sh` fail if an instruction above
//! disappears from its build.

/// `√x`, correctly rounded, with the hardware instruction where this target has one.
#[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
#[inline(always)]
pub(crate) fn sqrt(x: f32) -> f32 {
    vsqrt_f32(x)
}

/// `vsqrt.f32 s0, s0; bx lr`.
///
/// Not inline `asm!`: rustc gives the `sreg` register class only to targets with `vfp2`
/// (double precision), and the Cortex-M4F's FPv4-SP has single precision only, so there is
/// no way to name an `s` register in `asm!` on `thumbv7em-none-eabihf`. A naked function
/// needs no register class: the hard-float C ABI (AAPCS-VFP) passes the argument and the
/// result in `s0`. The call costs two cycles; `libm::sqrtf` costs a few hundred.
// SAFETY: `target_abi = "eabihf"` means the C ABI is AAPCS-VFP, which passes the f32
// argument and the f32 result in `s0`, and every eabihf target has a VFP unit with
// `vsqrt.f32`. The body writes only `s0` (a caller-saved register), touches no memory and
// no stack, and returns with `bx lr`, which is valid in both ARM and Thumb state. The
// `.fpu` directive only tells the assembler that the instruction exists (module-level
// assembly does not see the target's FPU features); it names the FPU of the
// `thumbv7em-none-eabihf` target, the smallest one with a single-precision `vsqrt.f32`.
#[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
#[unsafe(naked)]
extern "C" fn vsqrt_f32(x: f32) -> f32 {
    core::arch::naked_asm!(".fpu fpv4-sp-d16", "vsqrt.f32 s0, s0", "bx lr")
}

/// `√x`, correctly rounded: one `fsqrt`.
#[cfg(all(target_arch = "aarch64", not(miri)))]
#[inline(always)]
pub(crate) fn sqrt(x: f32) -> f32 {
    let root: f32;
    // SAFETY: `fsqrt` is part of the base AArch64 ISA (FP is mandatory for every aarch64
    // Rust target); it reads and writes only the two named registers, touches no memory
    // and no stack, and leaves the flags alone, as the options say.
    unsafe {
        core::arch::asm!(
            "fsqrt {root:s}, {x:s}",
            x = in(vreg) x,
            root = lateout(vreg) root,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    root
}

/// `√x`, correctly rounded: `f32.sqrt` (LLVM narrows the one-lane vector square root).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
pub(crate) fn sqrt(x: f32) -> f32 {
    use core::arch::wasm32::{f32x4_extract_lane, f32x4_splat, f32x4_sqrt};
    f32x4_extract_lane::<0>(f32x4_sqrt(f32x4_splat(x)))
}

/// `√x`, correctly rounded, in software (or SSE2 on x86, inside libm).
#[cfg(not(any(
    all(target_arch = "arm", target_abi = "eabihf", target_os = "none"),
    all(target_arch = "aarch64", not(miri)),
    all(target_arch = "wasm32", target_feature = "simd128"),
)))]
#[inline(always)]
pub(crate) fn sqrt(x: f32) -> f32 {
    libm::sqrtf(x)
}

#[cfg(test)]
mod tests {
    use super::sqrt;

    #[test]
    fn sqrt_is_correctly_rounded_on_special_and_sample_values() {
        assert_eq!(sqrt(0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(sqrt(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(sqrt(f32::INFINITY), f32::INFINITY);
        assert!(sqrt(-1.0).is_nan());
        assert!(sqrt(f32::NAN).is_nan());
        assert_eq!(sqrt(4.0), 2.0);
        assert_eq!(sqrt(2.0), core::f32::consts::SQRT_2);
        // The smallest subnormal, 2⁻¹⁴⁹: its root 2^-74.5 rounds to 0x1.6a09e6p-75.
        assert_eq!(sqrt(f32::from_bits(1)), f32::from_bits(0x1a35_04f3));
        assert_eq!(sqrt(f32::MAX), f64::from(f32::MAX).sqrt() as f32);
        // Under Miri (this path has no `unsafe` on x86-64), every 100th of those samples.
        let stride = if cfg!(miri) { 99_998_300 } else { 999_983 };
        for bits in (0x0080_0000u32..0x7f80_0000).step_by(stride) {
            let x = f32::from_bits(bits);
            let exact = f64::from(x).sqrt();
            // Correct rounding: the f32 result is the f64 root rounded to nearest (the f64
            // root of an f32 is itself exact enough that double rounding cannot occur).
            assert_eq!(sqrt(x), exact as f32, "sqrt({x:e})");
        }
    }
}
