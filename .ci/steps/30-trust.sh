# Trust tier: property tests at 10,000 cases, Miri over every kernel path it can run
# (two passes, started in the background by 20-background.sh, which says what they run),
# and 60 s of each cargo-fuzz target. Sourced by .ci/run; uses `step` from .ci/lib.sh.

TRUST_FUZZ_TARGETS=(distance_differential loss_differential api_robustness inbatch_differential
    triplet_differential softmax_differential)
TRUST_FUZZ_SECONDS=${TRUST_FUZZ_SECONDS:-60}

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

# Debug profile on purpose: 10-host.sh already built the test dependencies in it, and a
# release build of them (numkong's C among them) costs minutes more than the cases save.
step "property tests across magnitudes, 10,000 cases each" \
    env PROPTEST_CASES=10000 cargo test --test suite properties_magnitudes::

step "Miri: AVX-512 kernels" bg_wait "Miri pass avx512"
step "Miri: portable (SSE2) kernels" bg_wait "Miri pass scalar"
step "cargo-fuzz: build the targets (nightly, ASan)" bg_wait "cargo-fuzz build"

# trust_fuzz_all: every target for TRUST_FUZZ_SECONDS, as many at once as there are cores
# (a libFuzzer process is single-threaded, so each still has a core to itself for its whole
# time); each target's output is printed when it ends, and any failure fails the step. A
# subshell, so that its job control sees only the fuzzers, not the background jobs.
trust_fuzz_all() (
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
)
step "cargo-fuzz: ${TRUST_FUZZ_TARGETS[*]}, ${TRUST_FUZZ_SECONDS} s each, $(nproc) at a time" \
    trust_fuzz_all
