//! Flash-size probe baseline: `flash-pair-with-grad` without the call to the crate, so that
//! the difference between the two is what `pair_with_grad` costs in flash.

#![no_std]
#![no_main]

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
    let a: [f32; D] = black_box([0.25; D]);
    let b: [f32; D] = black_box([0.0; D]);
    let label = black_box(0.0);
    let (mut grad_a, mut grad_b) = ([0.0f32; D], [0.0f32; D]);
    // Stands in for the call: touches the same buffers.
    let loss: Result<f32, contrastive::Error> = black_box(Ok(black_box(4.0) + a[0] + b[0] + label));
    grad_a[0] = black_box(-0.25);
    grad_b[0] = black_box(0.25);
    black_box((&grad_a, &grad_b));
    let ok = loss == Ok(2.0) && grad_a == [-0.25; D] && grad_b == [0.25; D];
    qemu_selftest::exit(black_box(if ok { 0 } else { 1 }))
}
