//! The guest side of the no_std selftest: runs [`checks::CHECKS`] and reports over
//! semihosting, in the shape of libtest's output, ending with `N passed, N failed`.
//!
//! The entry points (`tests/selftest.rs` and the flash probes in `src/bin/`) are per-binary
//! because `#[entry]` must be in the binary crate; everything else lives here.

#![no_std]

use semihosting::println;

pub mod checks;

/// Runs every check, prints one line per check and a summary line, and returns the process
/// exit code: 0 if all passed, 1 otherwise.
pub fn run_selftest(board: &str) -> i32 {
    let total = checks::CHECKS.len();
    println!("running {total} no_std checks on {board}");
    let (passed, failed) = checks::run_all(|name, result| match result {
        Ok(()) => println!("test {name} ... ok"),
        Err(failure) => println!("test {name} ... FAILED: {failure}"),
    });
    println!("{passed} passed, {failed} failed");
    if failed == 0 && passed == total {
        0
    } else {
        1
    }
}

/// What the firmware runs on, for the first line of the report.
pub const BOARD: &str = if cfg!(all(target_arch = "arm", target_abi = "eabihf")) {
    "Cortex-M4F (qemu-system-arm mps2-an386)"
} else if cfg!(target_arch = "arm") {
    "Cortex-M0 (qemu-system-arm microbit)"
} else if cfg!(target_arch = "riscv32") {
    "RV32IMAC (qemu-system-riscv32 virt)"
} else {
    "an unknown board"
};

/// Ends the emulation with `code` as QEMU's exit status.
pub fn exit(code: i32) -> ! {
    semihosting::process::exit(code)
}
