//! The integration tests, one module per file of `tests/`, built as one binary: one compile
//! of the shared oracles in `common/` and one link per target instead of one per file
//! (which under emulation and on wasm is also one start-up instead of thirty). Run one
//! file's tests with a filter on its module: `cargo test --test suite golden::`.
//!
//! Five files stay test targets of their own (Cargo.toml): the three that Miri runs,
//! each built alone under it, and the two of the `rayon` feature.

mod common;

#[path = "distances_and_weights.rs"]
mod distances_and_weights;

#[path = "errors.rs"]
mod errors;

#[path = "forward_one_pass.rs"]
mod forward_one_pass;

#[path = "golden.rs"]
mod golden;

#[path = "inbatch.rs"]
mod inbatch;

#[path = "inbatch_golden.rs"]
mod inbatch_golden;

#[path = "kernels_agree.rs"]
mod kernels_agree;

#[path = "oracle.rs"]
mod oracle;

#[path = "page_boundary.rs"]
mod page_boundary;

#[path = "properties.rs"]
mod properties;

#[path = "properties_magnitudes.rs"]
mod properties_magnitudes;

#[path = "selftest.rs"]
mod selftest;

#[path = "softmax_backends.rs"]
mod softmax_backends;

#[path = "softmax_exp.rs"]
mod softmax_exp;

#[path = "softmax_golden.rs"]
mod softmax_golden;

#[path = "softmax_gradients.rs"]
mod softmax_gradients;

#[path = "triplet_batch_all_symmetric.rs"]
mod triplet_batch_all_symmetric;

#[path = "triplet_errors.rs"]
mod triplet_errors;

#[path = "triplet_golden.rs"]
mod triplet_golden;

#[path = "triplet_paths.rs"]
mod triplet_paths;

#[path = "triplet_properties.rs"]
mod triplet_properties;

#[path = "triplet_sweeps.rs"]
mod triplet_sweeps;

#[path = "triplet_vec.rs"]
mod triplet_vec;

#[path = "trust_edge_cases.rs"]
mod trust_edge_cases;

#[path = "unsupported_options.rs"]
mod unsupported_options;

#[path = "vec_helpers.rs"]
mod vec_helpers;

/// A file of `tests/` that is neither a module here nor a test target of its own in
/// Cargo.toml (`autotests = false`) would never be built: this fails instead.
#[cfg(not(target_family = "wasm"))]
#[test]
fn every_file_of_tests_is_built() {
    let suite = include_str!("suite.rs");
    let manifest = include_str!("../Cargo.toml");
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("read tests/") {
        let name = entry.expect("a directory entry").file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".rs")) else {
            continue;
        };
        if stem == "suite" {
            continue;
        }
        seen += 1;
        let module = format!("mod {stem};");
        let target = format!("[[test]]\nname = \"{stem}\"");
        assert!(
            suite.lines().any(|l| l == module) || manifest.contains(&target),
            "tests/{stem}.rs is built by nothing: add `#[path = \"{stem}.rs\"] mod {stem};` to tests/suite.rs"
        );
    }
    assert!(seen > 20, "only {seen} files found in {dir}");
}
