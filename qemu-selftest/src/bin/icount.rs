//! Instruction-count firmware (`icount.sh`): calls the crate's kernels between two calls of
//! `icount_mark`, whose executions the QEMU plugin `icount/icount-plugin.c` counts
//! instructions between, and prints one `measure <name> <elements>` line per measured call,
//! in the order of the plugin's counts. Built with the `icount-c` cfg (set by `build.rs`
//! when `ICOUNT_C_LIBS` names static libraries), it also measures the C references: CMSIS-DSP
//! on Arm and a plain C loop everywhere, built with gcc from `icount/reference.c`.
//!
//! Inputs are chosen so that every measured call takes the common path: normal magnitudes,
//! a dissimilar pair inside the margin (both the distance and the hinge are computed).

#![no_std]
#![no_main]

use contrastive::ContrastiveLoss;
use core::hint::black_box;
use semihosting::println;

#[cfg(target_arch = "arm")]
use cortex_m_rt::entry;
#[cfg(target_arch = "riscv32")]
use riscv_rt::entry;

/// Without `report-panics`: a panic ends the emulation with status 101.
#[cfg(not(feature = "report-panics"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    qemu_selftest::exit(101)
}

/// The marker whose first instruction the plugin watches. Not inlined and not merged with
/// another function: its address is what `icount.sh` passes to the plugin.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn icount_mark() {
    black_box(());
}

/// The sizes: per-element costs are the slope between the two, fixed costs what is left at
/// `SMALL`.
const SMALL: usize = 16;
const LARGE: usize = 256;
/// Rows of `SMALL` elements in the batch measurements: `LARGE / SMALL` and a quarter of it.
const ROWS: [usize; 2] = [LARGE / SMALL / 4, LARGE / SMALL];
const MARGIN: f32 = 8.0;

/// Counts `f` alone: the inputs it reads must come through `black_box` inside it, so that
/// no work moves out of the region.
#[inline(always)]
fn measure<R>(name: &str, elements: usize, f: impl FnOnce() -> R) {
    icount_mark();
    black_box(f());
    icount_mark();
    println!("measure {name} {elements}");
}

#[cfg(icount_c)]
unsafe extern "C" {
    fn plain_squared_euclidean(a: *const f32, b: *const f32, n: u32) -> f32;
    fn plain_dot(a: *const f32, b: *const f32, n: u32) -> f32;
    fn plain_pair_with_grad(
        a: *const f32,
        b: *const f32,
        n: u32,
        label: f32,
        margin: f32,
        grad_a: *mut f32,
        grad_b: *mut f32,
    ) -> f32;
}

#[cfg(all(icount_c, target_arch = "arm"))]
unsafe extern "C" {
    fn arm_euclidean_distance_f32(a: *const f32, b: *const f32, n: u32) -> f32;
    fn arm_dot_prod_f32(a: *const f32, b: *const f32, n: u32, out: *mut f32);
    fn cmsis_pair_with_grad(
        a: *const f32,
        b: *const f32,
        n: u32,
        label: f32,
        margin: f32,
        grad_a: *mut f32,
        grad_b: *mut f32,
    ) -> f32;
}

#[entry]
fn main() -> ! {
    let mut a = [0.0f32; LARGE];
    let mut b = [0.0f32; LARGE];
    for (i, (x, y)) in a.iter_mut().zip(&mut b).enumerate() {
        *x = (i % 7) as f32 * 0.125;
        *y = 0.5 - (i % 3) as f32 * 0.0625;
    }
    let (mut grad_a, mut grad_b) = ([0.0f32; LARGE], [0.0f32; LARGE]);
    let labels = [0.0f32; LARGE / SMALL];
    let loss = ContrastiveLoss::new(MARGIN);
    println!("icount {}", qemu_selftest::BOARD);
    // What a marker pair costs by itself, subtracted from every count.
    measure("empty", 0, || ());
    for n in [SMALL, LARGE] {
        let (a, b) = (&a[..n], &b[..n]);
        measure("squared_euclidean", n, || {
            contrastive::squared_euclidean(black_box(a), black_box(b))
        });
        measure("dot", n, || contrastive::dot(black_box(a), black_box(b)));
        measure("pair_with_grad", n, || {
            let (ga, gb) = (&mut grad_a[..n], &mut grad_b[..n]);
            black_box(loss).pair_with_grad(black_box(a), black_box(b), 0.0, ga, gb)
        });
    }
    for rows in ROWS {
        let n = rows * SMALL;
        let (a, b, labels) = (&a[..n], &b[..n], &labels[..rows]);
        measure("batch", n, || {
            black_box(loss).batch(black_box(a), black_box(b), SMALL, black_box(labels))
        });
        measure("batch_with_grad", n, || {
            let (ga, gb) = (&mut grad_a[..n], &mut grad_b[..n]);
            black_box(loss).batch_with_grad(black_box(a), black_box(b), SMALL, labels, ga, gb)
        });
    }
    #[cfg(icount_c)]
    reference(&a, &b, &mut grad_a, &mut grad_b);
    println!("icount done");
    qemu_selftest::exit(0)
}

/// The C references, on the same inputs.
#[cfg(icount_c)]
fn reference(a: &[f32], b: &[f32], grad_a: &mut [f32], grad_b: &mut [f32]) {
    for n in [SMALL, LARGE] {
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let (ga, gb) = (grad_a.as_mut_ptr(), grad_b.as_mut_ptr());
        let len = n as u32;
        // SAFETY: every pointer covers `n <= LARGE` elements, and the C functions read
        // `a[..n]`, `b[..n]` and write `grad_a[..n]`, `grad_b[..n]` only.
        unsafe {
            measure("plain:squared_euclidean", n, || {
                plain_squared_euclidean(black_box(pa), black_box(pb), len)
            });
            measure("plain:dot", n, || {
                plain_dot(black_box(pa), black_box(pb), len)
            });
            measure("plain:pair_with_grad", n, || {
                plain_pair_with_grad(black_box(pa), black_box(pb), len, 0.0, MARGIN, ga, gb)
            });
            #[cfg(target_arch = "arm")]
            {
                measure("cmsis:euclidean_distance", n, || {
                    arm_euclidean_distance_f32(black_box(pa), black_box(pb), len)
                });
                let mut out = 0.0f32;
                measure("cmsis:dot", n, || {
                    arm_dot_prod_f32(black_box(pa), black_box(pb), len, &mut out)
                });
                measure("cmsis:pair_with_grad", n, || {
                    cmsis_pair_with_grad(black_box(pa), black_box(pb), len, 0.0, MARGIN, ga, gb)
                });
            }
        }
    }
}
