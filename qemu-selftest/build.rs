//! Puts the memory map of the board that runs this target in `$OUT_DIR/memory.x`, where
//! cortex-m-rt's and riscv-rt's `link.x` look for it; links the instruction-count
//! firmware's C references when `ICOUNT_C_LIB_DIR` is set.

use std::{env, fs, path::PathBuf};

fn main() {
    // The C references of the instruction-count firmware (`icount.sh` builds them): linked
    // into `src/bin/icount.rs`, which then measures them too.
    println!("cargo::rustc-check-cfg=cfg(icount_c)");
    println!("cargo:rerun-if-env-changed=ICOUNT_C_LIB_DIR");
    if let Some(dir) = env::var_os("ICOUNT_C_LIB_DIR") {
        println!(
            "cargo:rustc-link-arg-bin=icount=-L{}",
            PathBuf::from(dir).display()
        );
        println!("cargo:rustc-link-arg-bin=icount=-licount_ref");
        println!("cargo:rustc-cfg=icount_c");
    }
    let target = env::var("TARGET").unwrap_or_default();
    let map = match target.as_str() {
        "thumbv7em-none-eabihf" => "memory/mps2-an386.x",
        "thumbv6m-none-eabi" => "memory/microbit.x",
        "riscv32imac-unknown-none-elf" => "memory/riscv-virt.x",
        // Any other target: the build fails at link time, not here.
        _ => return,
    };
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    fs::copy(map, out.join("memory.x")).expect("copy the memory map");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed={map}");
    println!("cargo:rerun-if-changed=build.rs");
}
