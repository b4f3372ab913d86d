//! Flash-size probe, second call shape: `pair_with_grad` for d = 64 behind a wrapper that is
//! not inlined (a firmware's training step), called from `main`. `flash-report.sh`
//! compares it with `flash-baseline`.

#![no_std]
#![no_main]

use contrastive::{ContrastiveLoss, Error};
use core::hint::black_box;

#[cfg(target_arch = "arm")]
use cortex_m_rt::entry;
#[cfg(target_arch = "riscv32")]
use riscv_rt::entry;

const D: usize = 64;
const LOSS: ContrastiveLoss = ContrastiveLoss::new(4.0);

/// Without `report-panics` (as `flash-report.sh` builds it): a panic ends the emulation with
/// status 101 and formats nothing.
#[cfg(not(feature = "report-panics"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    qemu_selftest::exit(101)
}

/// The wrapper: slices in, the loss out, the gradients written.
#[inline(never)]
fn step(
    a: &[f32],
    b: &[f32],
    label: f32,
    grad_a: &mut [f32],
    grad_b: &mut [f32],
) -> Result<f32, Error> {
    LOSS.pair_with_grad(a, b, label, grad_a, grad_b)
}

#[entry]
fn main() -> ! {
    let a: [f32; D] = black_box([0.25; D]);
    let b: [f32; D] = black_box([0.0; D]);
    let (mut grad_a, mut grad_b) = ([0.0f32; D], [0.0f32; D]);
    let loss = step(&a, &b, black_box(0.0), &mut grad_a, &mut grad_b);
    black_box((&grad_a, &grad_b));
    // D = 2, hinge 4 − 2 = 2: loss ½·2² = 2, gradient −½·2·2/2·0.25 = −0.25 per component.
    let ok = loss == Ok(2.0) && grad_a == [-0.25; D] && grad_b == [0.25; D];
    qemu_selftest::exit(black_box(if ok { 0 } else { 1 }))
}
