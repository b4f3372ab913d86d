# Fast tier: formatting, lints, the host test suite, and the embedded no_std build.
step "install rustup components" rustup component add rustfmt clippy
step "install embedded target" rustup target add thumbv7em-none-eabihf
step "cargo fmt --check" cargo fmt --all --check
step "cargo clippy" cargo clippy --all-targets -- -D warnings
step "cargo doc (warnings are errors)" env RUSTDOCFLAGS="-D warnings" cargo doc --no-deps
step "cargo test" cargo test
step "cargo test --no-default-features" cargo test --no-default-features
# The rayon feature (host only): its lints, its tests against the serial calls, and the
# unit tests of its row blocks (`--lib`).
step "cargo clippy --features rayon" cargo clippy --lib --tests --features rayon -- -D warnings
step "cargo test --features rayon" cargo test --features rayon --test rayon --test rayon_softmax --lib
step "no_std + alloc build for Cortex-M4F" cargo build --no-default-features --features alloc --target thumbv7em-none-eabihf
step "no_std build for Cortex-M4F" cargo build --no-default-features --target thumbv7em-none-eabihf
# The training example (examples/digits, its own package): data loader, gradients against
# finite differences, a short training run whose loss falls. Without its `plots` feature:
# the tests do not draw, and plotters stays out of the build.
step "cargo test -p digits" cargo test -p digits --no-default-features
