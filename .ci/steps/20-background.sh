# Background jobs of the later tiers, started before the cross tier: the two Miri passes
# and the builds of the fuzz targets and of the benches. They run at the lowest CPU
# priority (`bg_start`, .ci/lib.sh), so they take only the cores that the cross tier's
# emulated test runs leave idle; 30-trust.sh and 40-bench.sh wait for them (`bg_wait`),
# each such wait a step of its own with the job's log.
#
# Miri needs libm's soft floats (libm's sqrt is inline asm, which Miri cannot run) and sees
# only the CPU features that `-C target-feature` enables, so the AVX2 and AVX-512 kernels
# run under Miri only in the pass that enables them (the AVX2 kernels are `#[target_feature]`
# functions, so the AVX-512 pass, whose flags include AVX2+FMA, runs both; a pass of its
# own would only add `wide` compiled for AVX2, which no kernel sweep uses under Miri: the
# portable backend is swept in the pass without features, where `wide` is SSE2, as on a
# CPU without AVX2); RUSTDOCFLAGS carries the same flags
# so that doctests, if any are selected, agree with the library.
#
# Miri is about a thousand times slower than a debug build and runs each test twice:
# it is for code with `unsafe` or intrinsics. A test of plain arithmetic (a bit-pattern
# sweep, index or address arithmetic) runs natively only (`#[cfg_attr(miri, ignore = ...)]`)
# or shrinks under `cfg(miri)`; a test that takes seconds natively takes an hour here.

# The library's unit tests (the x86 kernels' own), and the Miri-sized sweeps of every loop
# shape (each pass sweeps the backends its features add) and the regression cases.
TRUST_MIRI_INTEGRATION=(--test trust_miri_paths --test trust_regressions --test trust_miri_triplet)
# Each Miri pass has its own target dir (their RUSTFLAGS differ: in one dir each would
# rebuild the others' artifacts, and cargo's lock would serialize them); so do the benches
# (cargo's lock on target/ would otherwise hold the cross tier's builds back); the fuzz
# targets build in fuzz/target.
bg_target_dir=${CARGO_TARGET_DIR:-${CI_ROOT:-$PWD}/target}
BENCH_TARGET_DIR=$bg_target_dir/ci-bench
BENCH=(-p contrastive-benches)
BENCH_TARGETS=(--bench distance --bench loss_batch --bench loss_batch_grad)

trust_install_cargo_fuzz() {
    if cargo fuzz --version >/dev/null 2>&1; then
        cargo fuzz --version
    else
        cargo install cargo-fuzz --locked
    fi
}

# trust_miri_pass dir "target features": one Miri pass over the library's unit tests and
# TRUST_MIRI_INTEGRATION, with the features enabled at compile time (and so detected at run
# time) in both RUSTFLAGS and RUSTDOCFLAGS. One build, then the unit tests and the
# integration tests as two processes at once: Miri runs on one thread, and the AVX-512 pass
# is the last background job to end, so one core would otherwise idle behind it.
trust_miri_pass() {
    local flags="" lib_log rc=0 lib_rc=0
    [ -n "$2" ] && flags="-C target-feature=$2"
    miri_test() {
        CARGO_TARGET_DIR="$bg_target_dir/miri-$1" RUSTFLAGS="$flags" RUSTDOCFLAGS="$flags" \
            cargo +nightly miri test --features libm/force-soft-floats "${@:2}"
    }
    miri_test "$1" --lib "${TRUST_MIRI_INTEGRATION[@]}" --no-run || return
    lib_log=$(mktemp)
    miri_test "$1" --lib >"$lib_log" 2>&1 &
    local lib=$!
    miri_test "$1" "${TRUST_MIRI_INTEGRATION[@]}" || rc=$?
    wait "$lib" || lib_rc=$?
    cat "$lib_log"
    rm -f "$lib_log"
    [ "$rc" = 0 ] && [ "$lib_rc" = 0 ]
}

# The benches' lints and build in one compile: clippy-driver as the workspace's compiler
# wrapper lints the bench package (and the crate) while it builds them in the bench profile,
# as `cargo clippy --all-targets -- -D warnings` would lint them, without a second, check-only
# build of every dependency (about 100 s of CPU). The peers' build scripts (numkong's and
# simsimd's C, about two minutes of one core) run once.
bench_cargo() {
    CARGO_TARGET_DIR=$BENCH_TARGET_DIR \
        RUSTC_WORKSPACE_WRAPPER=$(rustup which clippy-driver) \
        CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__" \
        cargo bench "${BENCH[@]}" "$@"
}
# 40-bench.sh runs the benches through `bench_cargo` too: the same environment, so nothing
# is built again.
bench_build() {
    bench_cargo --no-run
}

step "install nightly miri and rust-src" rustup +nightly component add miri rust-src
step "install cargo-fuzz" trust_install_cargo_fuzz

# wide 1.7 does not compile with +avx512f alone (its i32x16 wants the BW/DQ/VL cfgs too).
# Miri cannot run _mm512_permutexvar_ps / _mm512_permutex2var_ps: under cfg(miri) the
# AVX-512 kernels use a lane-by-lane emulation of those two (src/kernels/x86_64/avx512.rs).
bg_start "Miri pass avx512" trust_miri_pass avx512 "+avx512f,+avx512bw,+avx512dq,+avx512vl,+avx2,+fma"
bg_start "Miri pass scalar" trust_miri_pass scalar ""
bg_start "cargo-fuzz build" bash -c 'cd fuzz && cargo +nightly fuzz build'
bg_start "bench build" bench_build
