# Benches cannot rot: lint and compile them (their own package, benches/Cargo.toml; built and
# linted in the background since 20-background.sh, in their own target dir), then run each benchmark
# once as a test (criterion's `--test` mode: one iteration, no timing, no report), and the
# interleaved bench for one round. No timing is asserted anywhere; the measured run is
# `python3 scripts/bench_summary.py --runs 3` on a quiet machine.
step "benches: built and linted (clippy -D warnings, bench profile)" bg_wait "bench build"
step "benches run once (criterion --test)" bench_cargo "${BENCH_TARGETS[@]}" -- --test
# The interleaved bench, one round: its rows are what the summary parses.
step "interleaved bench, one round" bench_cargo --bench interleaved -- 1
# The AVX2 and AVX-512 batch ratios against their own rooflines, one round.
step "x86 batch bench, one round" bench_cargo --bench x86_batches -- 1
