# MSRV: the crate builds on the oldest supported compiler (1.89, what `wide` 1.7 needs; see
# `rust-version` in Cargo.toml), with and without `std`. The tests themselves run on
# stable in the first tier; their dev-dependencies (criterion, proptest) have MSRVs of
# their own that are not ours to promise.
step "install Rust 1.89" rustup toolchain install 1.89 --profile minimal --no-self-update
step "no_std build on 1.89" cargo +1.89 build --no-default-features
step "std build on 1.89" cargo +1.89 build
