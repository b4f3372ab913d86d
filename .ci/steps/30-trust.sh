# Trust tier: property tests at 10,000 cases, Miri over every kernel path it can
# run, and 60 s of each cargo-fuzz target. Sourced by .ci/run; uses `step` from .ci/lib.sh.
#
# Miri needs libm's soft floats (libm's sqrt is inline asm, which Miri cannot run) and sees
# only the CPU features that `-C target-feature` enables, so the AVX2 and AVX-512 kernels
# run under Miri only in the passes that enable them; RUSTDOCFLAGS carries the same flags
# so that doctests, if any are selected, agree with the library.
#
# Miri is about a thousand times slower than a debug build and runs each test three times:
# it is for code with `unsafe` or intrinsics. A test of plain arithmetic (a bit-pattern
# sweep, index or address arithmetic) runs natively only (`#[cfg_attr(miri, ignore = ...)]`)
# or shrinks under `cfg(miri)`; a test that takes seconds natively takes an hour here.

# The library's unit tests (the x86 kernels' own), the Miri-sized sweep of every loop shape
# (each pass sweeps the backends its features add), and the regression cases.
TRUST_MIRI_TESTS=(--lib --test trust_miri_paths --test trust_regressions --test trust_miri_triplet)
TRUST_FUZZ_TARGETS=(distance_differential loss_differential api_robustness inbatch_differential
    triplet_differential softmax_differential)
TRUST_FUZZ_SECONDS=${TRUST_FUZZ_SECONDS:-60}

trust_install_cargo_fuzz() {
    if cargo fuzz --version >/dev/null 2>&1; then
        cargo fuzz --version
    else
        cargo install cargo-fuzz --locked
    fi
}

# trust_miri "target features": the focused Miri run, with the features enabled at compile
# time (and so detected at run time) in both RUSTFLAGS and RUSTDOCFLAGS.
trust_miri() {
    local flags=""
    [ -n "$1" ] && flags="-C target-feature=$1"
    RUSTFLAGS="$flags" RUSTDOCFLAGS="$flags" \
        cargo +nightly miri test --features libm/force-soft-floats "${TRUST_MIRI_TESTS[@]}"
}

# The three Miri passes and the fuzz targets' build run at once, in the background, while
# the property tests run: Miri interprets on one thread, and the passes differ in length,
# so the build fills the cores that the shorter passes leave idle. Each Miri pass has its
# own target dir (their RUSTFLAGS differ: in one dir each would rebuild the others'
# artifacts, and cargo's lock would serialize them; the fuzz build has fuzz/target) and
# each job its own log, printed by the step that waits for it.
declare -A TRUST_JOB_PID TRUST_JOB_LOG
trust_miri_dir=${CARGO_TARGET_DIR:-${CI_ROOT:-$PWD}/target}
# trust_start name command...: runs the command in the background, timed, into a log.
trust_start() {
    local name=$1 log
    shift
    log=$(mktemp)
    (
        start=$(date +%s)
        rc=0
        "$@" || rc=$?
        printf '%s: %s s, exit status %s\n' "$name" "$(($(date +%s) - start))" "$rc"
        exit "$rc"
    ) >"$log" 2>&1 &
    TRUST_JOB_PID[$name]=$!
    TRUST_JOB_LOG[$name]=$log
}
trust_miri_pass() {
    CARGO_TARGET_DIR="$trust_miri_dir/miri-$1" trust_miri "$2"
}
trust_miri_start() {
    trust_start "Miri pass $1" trust_miri_pass "$1" "$2"
}
# trust_wait name: waits for that job, prints its log, and fails if it failed.
trust_wait() {
    local name=$1 rc=0
    wait "${TRUST_JOB_PID[$name]}" || rc=$?
    grep -v '^ *\(Compiling\|Checking\) ' "${TRUST_JOB_LOG[$name]}"
    rm -f "${TRUST_JOB_LOG[$name]}"
    return "$rc"
}
trust_miri_wait() {
    trust_wait "Miri pass $1"
}

# trust_fuzz target: fuzzes for TRUST_FUZZ_SECONDS into a scratch corpus seeded from the
# committed one (so the run never grows fuzz/corpus/), fails on any crash or mismatch, and
# prints libFuzzer's closing stats (executions per target).
trust_fuzz() {
    local target=$1 scratch log rc=0
    scratch=$(mktemp -d)
    mkdir "$scratch/corpus"
    log="$scratch/fuzz.log"
    (cd fuzz && cargo +nightly fuzz run "$target" "$scratch/corpus" "corpus/$target" -- \
        -max_total_time="$TRUST_FUZZ_SECONDS" -print_final_stats=1) >"$log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        # The target's own message (the mismatch and its inputs) first: libFuzzer's
        # backtrace and stats after it would push it out of a plain tail.
        grep -m1 -A12 'panicked at' "$log" || true
        tail -n 25 "$log"
        printf 'fuzz target %s failed (rc %s); a crashing input is saved in fuzz/artifacts/%s/\n' \
            "$target" "$rc" "$target"
        rm -rf "$scratch"
        return 1
    fi
    grep -E '^(Done [0-9]+ runs|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)' "$log" |
        sed "s/^/$target: /"
    rm -rf "$scratch"
}

step "install nightly miri and rust-src" rustup +nightly component add miri rust-src
step "install cargo-fuzz" trust_install_cargo_fuzz

# wide 1.7 does not compile with +avx512f alone (its i32x16 wants the BW/DQ/VL cfgs too).
# Miri cannot run _mm512_permutexvar_ps / _mm512_permutex2var_ps: under cfg(miri) the
# AVX-512 kernels use a lane-by-lane emulation of those two (src/kernels/x86_64/avx512.rs).
trust_miri_start avx512 "+avx512f,+avx512bw,+avx512dq,+avx512vl,+avx2,+fma"
trust_miri_start avx2 "+avx2,+fma"
trust_miri_start scalar ""
trust_start "cargo-fuzz build" bash -c 'cd fuzz && cargo +nightly fuzz build'

# Debug profile on purpose: 10-host.sh already built the test dependencies in it, and a
# release build of them (numkong's C among them) costs minutes more than the cases save.
step "property tests across magnitudes, 10,000 cases each" \
    env PROPTEST_CASES=10000 cargo test --test properties_magnitudes

step "Miri: AVX-512 kernels" trust_miri_wait avx512
step "Miri: AVX2+FMA kernels" trust_miri_wait avx2
step "Miri: portable (SSE2) kernels" trust_miri_wait scalar
step "cargo-fuzz: build the targets (nightly, ASan)" trust_wait "cargo-fuzz build"

# trust_fuzz_all: every target for TRUST_FUZZ_SECONDS, as many at once as there are cores
# (a libFuzzer process is single-threaded, so each still has a core to itself for its whole
# time); each target's output is printed when it ends, and any failure fails the step.
trust_fuzz_all() {
    local jobs failed=0 target pid
    jobs=$(nproc)
    declare -A pids logs
    for target in "${TRUST_FUZZ_TARGETS[@]}"; do
        while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
            wait -n || true
        done
        logs[$target]=$(mktemp)
        trust_fuzz "$target" >"${logs[$target]}" 2>&1 &
        pids[$target]=$!
    done
    for target in "${TRUST_FUZZ_TARGETS[@]}"; do
        pid=${pids[$target]}
        if wait "$pid"; then
            cat "${logs[$target]}"
        else
            cat "${logs[$target]}"
            printf 'FAILED: cargo-fuzz %s\n' "$target"
            failed=1
        fi
        rm -f "${logs[$target]}"
    done
    return "$failed"
}
step "cargo-fuzz: ${TRUST_FUZZ_TARGETS[*]}, ${TRUST_FUZZ_SECONDS} s each, $(nproc) at a time" \
    trust_fuzz_all
