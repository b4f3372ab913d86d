//! Flash-size probe, third call shape: `pair_with_grad` for d = 64 in a loop over the pairs
//! of a small batch, from `main`. `flash-report.sh` compares it with `flash-baseline`.

#![no_std]
#![no_main]

use contrastive::ContrastiveLoss;
use core::hint::black_box;

#[cfg(target_arch = "arm")]
use cortex_m_rt::entry;
#[cfg(target_arch = "riscv32")]
use riscv_rt::entry;

const D: usize = 64;
const PAIRS: usize = 3;

/// Without `report-panics` (as `flash-report.sh` builds it): a panic ends the emulation with
/// status 101 and formats nothing.
#[cfg(not(feature = "report-panics"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    qemu_selftest::exit(101)
}

#[entry]
fn main() -> ! {
    let a: [[f32; D]; PAIRS] = black_box([[0.25; D]; PAIRS]);
    let b: [[f32; D]; PAIRS] = black_box([[0.0; D]; PAIRS]);
    let labels: [f32; PAIRS] = black_box([0.0; PAIRS]);
    let loss = ContrastiveLoss::new(black_box(4.0));
    let (mut grad_a, mut grad_b) = ([[0.0f32; D]; PAIRS], [[0.0f32; D]; PAIRS]);
    let mut ok = true;
    for i in 0..PAIRS {
        let l = loss.pair_with_grad(&a[i], &b[i], labels[i], &mut grad_a[i], &mut grad_b[i]);
        // D = 2, hinge 4 − 2 = 2: loss ½·2² = 2, gradient −0.25 per component (the
        // first and the last checked: `flash-pair-with-grad` checks them all, and this
        // probe's own code should stay small next to what it measures).
        ok &= l == Ok(2.0) && grad_a[i][0] == -0.25 && grad_b[i][D - 1] == 0.25;
    }
    black_box((&grad_a, &grad_b));
    qemu_selftest::exit(black_box(if ok { 0 } else { 1 }))
}
