# Benches cannot rot: lint and compile them (their own package, benches/Cargo.toml), then run
# each benchmark once as a test (criterion's test mode: one iteration, no timing, no
# report), and the interleaved bench for one round. No timing is asserted anywhere; the
# measured run is `python3 scripts/bench_summary.py --runs 3` on a quiet machine.
#
# All in the dev profile: a bench compiles from the same code in either profile, and a run
# that only checks that each benchmark runs needs no optimizer. The peers' C (simsimd,
# numkong) and gemm then build without optimization, once for clippy and the runs, and the
# crate itself is the build 10-host.sh made. (`cargo test --benches` runs criterion
# benches in its test mode; `cargo bench` and the bench profile are for measuring.)
BENCH=(-p contrastive-benches)
BENCH_TARGETS=(--bench distance --bench loss_batch --bench loss_batch_grad)
step "cargo clippy (benches)" cargo clippy "${BENCH[@]}" --all-targets -- -D warnings
step "benches run once (criterion test mode)" cargo test "${BENCH[@]}" "${BENCH_TARGETS[@]}"
# The interleaved bench, one round: its rows are what the summary parses.
step "interleaved bench, one round" cargo test "${BENCH[@]}" --bench interleaved -- 1
