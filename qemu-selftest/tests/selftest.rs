//! Firmware that runs the selftest on the emulated board and exits with its status:
//! `cargo test --target thumbv7em-none-eabihf` (or thumbv6m-none-eabi,
//! riscv32imac-unknown-none-elf) from qemu-selftest/.
//!
//! No global allocator is defined anywhere in this binary: if the crate (or a dependency)
//! used `alloc`, this would not link ("no global memory allocator found").

#![no_std]
#![no_main]

#[cfg(target_arch = "arm")]
use cortex_m_rt::entry;
#[cfg(target_arch = "riscv32")]
use riscv_rt::entry;

#[entry]
fn main() -> ! {
    qemu_selftest::exit(qemu_selftest::run_selftest(qemu_selftest::BOARD))
}
