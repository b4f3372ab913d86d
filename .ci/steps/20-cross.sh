# Cross targets: no_std builds, proof that no allocator is linked, the test suites on
# emulated aarch64 (NEON), wasm32 (simd128 and without), Cortex-M4F, Cortex-M0 and RV32IMAC,
# codegen checks (SIMD and hardware sqrt present), and the flash report. The jobs of
# 20-background.sh run meanwhile at low priority, on the cores the emulators leave idle.
# Installs everything it needs (Debian's qemu, rustup targets, llvm-tools). Recipes and
# timings: docs/targets.md.

source .ci/codegen.sh

cross_root=${CI_ROOT:-$PWD}
# Where the main crate's artifacts go (the rlibs the codegen checks read).
cross_target_dir=${CARGO_TARGET_DIR:-$cross_root/target}
bare_metal=(thumbv7em-none-eabihf thumbv6m-none-eabi riscv32imac-unknown-none-elf)

# --- Tools -------------------------------------------------------------------------------
step "install qemu (qemu-user, qemu-system-arm, qemu-system-misc)" \
    apt_install qemu-user qemu-system-arm qemu-system-misc
step "install rustup targets" rustup target add "${bare_metal[@]}" x86_64-unknown-none \
    aarch64-unknown-linux-musl wasm32-wasip1
step "install llvm-tools (llvm-objdump, llvm-size, llvm-nm)" rustup component add llvm-tools
if ! command -v gcc >/dev/null; then
    step "install gcc (the instruction-count plugin)" apt_install gcc
fi
# The WASI runner of the wasm32 test suites (.ci/run-wasi.py). Node's WASI was the runner
# before: Node 20 died of SIGSEGV after some suites had passed.
step "install wasmtime (WASI runner, PyPI)" python3 -m pip install --quiet --disable-pip-version-check wasmtime

# --- no_std builds -----------------------------------------------------------------------
# One cargo call for all targets: cargo builds them in parallel. Release, because the
# codegen checks below read these rlibs; wasm32 with simd128, as users would enable it.
# Cortex-M0 and RV32IMAC are not here: their firmware below builds the crate without `std`
# (and icount.sh at opt-level "s" and 3), which is this build and more.
no_std_targets=(thumbv7em-none-eabihf x86_64-unknown-none aarch64-unknown-linux-musl wasm32-wasip1)
step "no_std builds: ${no_std_targets[*]}" \
    env CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS="-C target-feature=+simd128" \
    cargo build --release --no-default-features "${no_std_targets[@]/#/--target=}"

# --- Codegen: the instructions we rely on are there --------------------------------------
# In the release no_std rlibs just built (before the test suites, whose builds of other
# feature sets could replace them).
codegen_dir="$cross_target_dir/codegen"
mkdir -p "$codegen_dir"
rlib() { echo "$cross_target_dir/$1/release/libcontrastive.rlib"; }

codegen_aarch64() {
    local dis="$codegen_dir/aarch64.dis"
    disassemble "$(rlib aarch64-unknown-linux-musl)" "$dis" &&
        codegen_has "$dis" 'contrastive::kernels::portable::' 'fmla[[:space:]]+v[0-9]+\.4s' \
            "NEON fused multiply-add" &&
        codegen_has "$dis" 'contrastive::kernels::portable::' 'fsub[[:space:]]+v[0-9]+\.4s' \
            "NEON subtract" &&
        codegen_has "$dis" 'contrastive::' 'fsqrt[[:space:]]+s[0-9]+' "hardware sqrt"
}
codegen_wasm() {
    local dis="$codegen_dir/wasm32-simd128.dis"
    disassemble "$(rlib wasm32-wasip1)" "$dis" &&
        codegen_has "$dis" 'contrastive::kernels::portable::' 'f32x4\.sub' "simd128 subtract" &&
        codegen_has "$dis" 'contrastive::kernels::portable::' 'f32x4\.mul' "simd128 multiply" &&
        codegen_has "$dis" 'contrastive::kernels::portable::' 'f32x4\.add' "simd128 add" &&
        codegen_has "$dis" 'contrastive::' 'f32\.sqrt' "hardware sqrt"
}
codegen_cortex_m4f() {
    local dis="$codegen_dir/thumbv7em-none-eabihf.dis"
    disassemble "$(rlib thumbv7em-none-eabihf)" "$dis" &&
        codegen_has "$dis" 'contrastive::kernels::scalar::' 'v(mla|fma)\.f32' \
            "VFP multiply-accumulate in the kernels" &&
        codegen_has "$dis" 'contrastive::arch_sqrt::vsqrt_f32' 'vsqrt\.f32' "vsqrt.f32" &&
        codegen_has "$dis" 'contrastive::(numerics|distance|loss)::' 'R_ARM_THM_(CALL|JUMP24).*vsqrt_f32' \
            "distances call the hardware sqrt" &&
        codegen_lacks "$dis" 'contrastive::' 'R_ARM_THM_(CALL|JUMP24).*sqrtf' \
            "libm's software sqrtf"
}
step "codegen aarch64: NEON fmla/fsub on .4s in the kernels, fsqrt" codegen_aarch64
step "codegen wasm32: f32x4 sub/mul/add in the kernels, f32.sqrt" codegen_wasm
step "codegen Cortex-M4F: vmla/vfma.f32 in the kernels, vsqrt.f32 called, no libm sqrtf" \
    codegen_cortex_m4f

# --- Emulated microcontrollers: the selftest through semihosting --------------------------
# The checks live in qemu-selftest/src/checks/ (test code, not part of the library).
# qemu-selftest/ is its own workspace with its own target dir and .cargo/config.toml (the
# qemu runners), so cargo runs from inside it.
selftest_cargo() {
    (cd "$cross_root/qemu-selftest" && env -u CARGO_TARGET_DIR cargo "$@")
}
# The same checks run on the host in 10-host.sh's `cargo test` (tests/selftest.rs), and in
# the aarch64 and wasm32 test suites below.
# A #![no_std] firmware with no #[global_allocator] for each board: it would not link if
# the crate used `alloc` ("no global memory allocator found but one is required").
# One target per call: cargo would unify the critical-section features of cortex-m and
# riscv across targets.
for t in "${bare_metal[@]}"; do
    step "no allocator linked: bare-metal firmware links for $t" \
        selftest_cargo test --no-run --target "$t"
done
step "selftest on Cortex-M4F (qemu-system-arm mps2-an386)" \
    selftest_cargo test --target thumbv7em-none-eabihf
# On-device training (src/bin/digits.rs): fails unless the loss goes down. The dev profile
# (opt-level "s" here) reuses the selftest's build of the crate just above.
step "on-device training of a digit embedding on Cortex-M4F (qemu-system-arm mps2-an386)" \
    selftest_cargo run --features digits --bin digits --target thumbv7em-none-eabihf
step "selftest on Cortex-M0 (qemu-system-arm microbit)" \
    selftest_cargo test --target thumbv6m-none-eabi
step "selftest on RV32IMAC (qemu-system-riscv32 virt)" \
    selftest_cargo test --target riscv32imac-unknown-none-elf

# --- Full test suites under emulation ----------------------------------------------------
# Runners: .cargo/config.toml (qemu-aarch64 with rust-lld; wasmtime's WASI via .ci/run-wasi.py).
# Release: the optimized SIMD code is what users run, and it runs 5-10x faster under
# emulation than a debug build (the host tier covers debug builds).
step "test suite on aarch64-unknown-linux-musl under qemu-aarch64 (NEON)" \
    cargo test --release --target aarch64-unknown-linux-musl
step "test suite on wasm32-wasip1 +simd128 under wasmtime (WASI)" \
    env CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS="-C target-feature=+simd128" \
    cargo test --release --target wasm32-wasip1
# Without simd128 in its own target dir, so the two wasm builds do not evict each other.
step "test suite on wasm32-wasip1 without simd128 under wasmtime (WASI)" \
    env CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS= \
    cargo test --release --target wasm32-wasip1 \
    --target-dir "$cross_target_dir/wasm-no-simd128"

# --- Flash -------------------------------------------------------------------------------
# What pair_with_grad (d = 64) costs in a Cortex-M4F firmware (lto = true), called from
# main, behind a wrapper and in a loop; fails if any shape is over 2,240 bytes (2,020 from
# main, 2,048 behind a wrapper, 2,132 in a loop, whose own code is counted too; about 5%
# above the largest: docs/targets.md).
step "flash report (Cortex-M4F, opt-level s): pair_with_grad within 2,240 bytes in every call shape" \
    env -u CARGO_TARGET_DIR FLASH_BUDGET=2240 qemu-selftest/flash-report.sh

# --- Instruction counts -------------------------------------------------------------------
# Executed instructions per element on Cortex-M4F, Cortex-M0 and RV32IMAC at opt-level "s"
# and 3, counted by a QEMU plugin (gcc builds it); the comparison with CMSIS-DSP and plain
# C (ICOUNT_REFERENCE=1, needs the cross gcc toolchains) is run by hand: docs/targets.md.
step "instruction counts (Cortex-M4F, M0, RV32IMAC; opt-level s and 3)" \
    env -u CARGO_TARGET_DIR qemu-selftest/icount.sh
