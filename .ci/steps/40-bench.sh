# Benches cannot rot: compile them, then run each benchmark once as a test (criterion's
# `--test` mode: one iteration, no timing, no report), and the interleaved bench for one
# round. No timing is asserted anywhere; the measured run is
# `python3 scripts/bench_summary.py --runs 3` on a quiet machine.
# Named benches only: `cargo bench` without `--bench` would also run the lib's unit tests.
BENCH_TARGETS=(--bench distance --bench loss_batch --bench loss_batch_grad)
step "cargo bench --no-run" cargo bench --no-run "${BENCH_TARGETS[@]}"
step "benches run once (criterion --test)" cargo bench "${BENCH_TARGETS[@]}" -- --test
# The interleaved bench, one round: its rows are what the summary parses.
step "interleaved bench, one round" cargo bench --bench interleaved -- 1
