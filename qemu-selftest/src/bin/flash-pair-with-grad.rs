//! Flash-size probe: the smallest firmware that computes `ContrastiveLoss::pair_with_grad`
//! for d = 64. `flash-report.sh` compares it with `flash-baseline`, which is the same
//! program without the call. It also runs on qemu, so the probe is known to work.

#![no_std]
#![no_main]

use contrastive::ContrastiveLoss;
use core::hint::black_box;

#[cfg(target_arch = "arm")]
use cortex_m_rt::entry;
#[cfg(target_arch = "riscv32")]
use riscv_rt::entry;

const D: usize = 64;

/// Without `report-panics` (as `flash-report.sh` builds it): a panic ends the emulation with
/// status 101 and formats nothing.
#[cfg(not(feature = "report-panics"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    qemu_selftest::exit(101)
}

#[entry]
fn main() -> ! {
    // Inputs the optimizer cannot see through.
    let a: [f32; D] = black_box([0.25; D]);
    let b: [f32; D] = black_box([0.0; D]);
    let label = black_box(0.0);
    let (mut grad_a, mut grad_b) = ([0.0f32; D], [0.0f32; D]);
    let loss = ContrastiveLoss::new(black_box(4.0)).pair_with_grad(
        &a,
        &b,
        label,
        &mut grad_a,
        &mut grad_b,
    );
    black_box((&grad_a, &grad_b));
    // D = 2, hinge 4 − 2 = 2: loss ½·2² = 2, gradient −½·2·2/2·0.25 = −0.25 per component.
    let ok = loss == Ok(2.0) && grad_a == [-0.25; D] && grad_b == [0.25; D];
    qemu_selftest::exit(black_box(if ok { 0 } else { 1 }))
}
