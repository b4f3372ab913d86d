# Benches cannot rot: lint and compile them (their own package, benches/Cargo.toml), then run
# each benchmark once as a test (criterion's `--test` mode: one iteration, no timing, no
# report), and the interleaved bench for one round. No timing is asserted anywhere; the
# measured run is `python3 scripts/bench_summary.py --runs 3` on a quiet machine.
BENCH=(-p contrastive-benches)
BENCH_TARGETS=(--bench distance --bench loss_batch --bench loss_batch_grad)
# Clippy in the bench profile: the peers' build scripts (simsimd's and numkong's C, minutes
# of compiling) then run once for clippy and the benches, instead of once per profile.
step "cargo clippy (benches)" cargo clippy "${BENCH[@]}" --all-targets --profile bench -- -D warnings
step "cargo bench --no-run" cargo bench "${BENCH[@]}" --no-run "${BENCH_TARGETS[@]}"
step "benches run once (criterion --test)" cargo bench "${BENCH[@]}" "${BENCH_TARGETS[@]}" -- --test
# The interleaved bench, one round: its rows are what the summary parses.
step "interleaved bench, one round" cargo bench "${BENCH[@]}" --bench interleaved -- 1
