//! The no_std selftest on the host, and on every target this test suite runs on: the same
//! checks that `qemu-selftest/` runs on emulated Cortex-M4F, Cortex-M0 and RV32IMAC
//! (`qemu-selftest/src/checks/`, included here by path), and a proof that their embedded
//! golden constants still match `tests/data/golden.json`.

#[path = "../qemu-selftest/src/checks/mod.rs"]
mod checks;

use checks::{CHECKS, Golden, GoldenLoss, golden};
use serde_json::Value;

#[test]
fn every_selftest_check_passes_on_the_host() {
    let mut failures = Vec::new();
    let (passed, failed) = checks::run_all(|name, result| {
        if let Err(f) = result {
            failures.push(format!("{name}: {f}"));
        }
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!((passed, failed), (CHECKS.len(), 0));
}

#[test]
fn selftest_check_names_are_unique() {
    let mut names: Vec<_> = CHECKS.iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), CHECKS.len());
}

fn golden_file() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/golden.json");
    let text = std::fs::read_to_string(path).expect("read tests/data/golden.json");
    serde_json::from_str(&text).expect("parse tests/data/golden.json")
}

/// A JSON number or one of the strings "NaN", "Infinity", "-Infinity", as f32.
fn f32_of(v: &Value) -> f32 {
    match v {
        Value::Number(n) => n.as_f64().expect("a number") as f32,
        Value::String(s) if s == "NaN" => f32::NAN,
        Value::String(s) if s == "Infinity" => f32::INFINITY,
        Value::String(s) if s == "-Infinity" => f32::NEG_INFINITY,
        other => panic!("not a number: {other}"),
    }
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array().expect("an array").iter().map(f32_of).collect()
}

/// Bit-identical, except that every NaN equals every NaN.
fn same_bits(got: &[f32], expected: &[f32]) -> bool {
    got.len() == expected.len()
        && got
            .iter()
            .zip(expected)
            .all(|(g, e)| g.to_bits() == e.to_bits() || (g.is_nan() && e.is_nan()))
}

#[test]
fn embedded_golden_cases_match_the_golden_file() {
    let file = golden_file();
    let cases = file["cases"].as_array().expect("cases");
    for case in golden::ALL {
        let json = cases
            .iter()
            .find(|c| c["id"] == case.id)
            .unwrap_or_else(|| panic!("{} is not in the golden file", case.id));
        check_against_json(case, json);
    }
}

fn check_against_json(case: &Golden, json: &Value) {
    let id = case.id;
    let (inputs, expected) = (&json["inputs"], &json["expected_f32"]);
    let margin = f32_of(&json["params"]["margin"]);
    let (a, b, labels, grad_a, grad_b) = match case.loss {
        GoldenLoss::Seed { margin: m } => {
            assert_eq!(json["loss"], "seed", "{id}");
            assert_eq!(m, margin, "{id}: margin");
            assert!(case.expected_per_pair.is_empty(), "{id}");
            (
                "input_1",
                "input_2",
                "label",
                "grad_input_1",
                "grad_input_2",
            )
        }
        GoldenLoss::Contrastive { loss, dim } => {
            assert_eq!(loss.margin, margin, "{id}: margin");
            assert_eq!(Some(dim as u64), json["shape"]["d"].as_u64(), "{id}: dim");
            let params = &json["params"];
            let half = f32_of(&params["half"]);
            assert_eq!(
                (loss.positive_weight, loss.negative_weight),
                (half, half),
                "{id}: weights"
            );
            if let Some(convention) = params.get("label_convention") {
                assert_eq!(convention, "similar_is_1", "{id}");
            }
            let reduction = params["reduction"].as_str().expect("reduction");
            assert_eq!(
                format!("{:?}", loss.reduction).to_lowercase(),
                reduction,
                "{id}: reduction"
            );
            let kind = json["loss"].as_str().expect("loss kind");
            let distance = format!("{:?}", loss.distance);
            assert!(
                (kind == "hadsell" && distance == "Euclidean")
                    || (kind == "cosine_contrastive" && distance == "Cosine"),
                "{id}: {kind} computed with {distance}"
            );
            assert!(
                same_bits(case.expected_per_pair, &f32s(&expected["per_pair"])),
                "{id}: per_pair"
            );
            ("x1", "x2", "y", "grad_x1", "grad_x2")
        }
    };
    assert!(same_bits(case.a, &f32s(&inputs[a])), "{id}: {a}");
    assert!(same_bits(case.b, &f32s(&inputs[b])), "{id}: {b}");
    assert!(
        same_bits(case.labels, &f32s(&inputs[labels])),
        "{id}: {labels}"
    );
    assert!(
        same_bits(&[case.expected_loss], &[f32_of(&expected["loss"])]),
        "{id}: loss"
    );
    assert!(
        same_bits(case.expected_grad_a, &f32s(&expected[grad_a])),
        "{id}: {grad_a}"
    );
    assert!(
        same_bits(case.expected_grad_b, &f32s(&expected[grad_b])),
        "{id}: {grad_b}"
    );
}

#[test]
fn a_wrong_golden_value_is_caught() {
    // The golden checks must be able to fail: perturb the largest gradient component by
    // 1e-4 relative (ten times the tolerance) and run the same comparison.
    let case = &golden::HADSELL_N3_D5;
    let mut grad = case.expected_grad_a.to_vec();
    grad[0] *= 1.0 + 1e-4;
    let leaked: &'static [f32] = Box::leak(grad.into_boxed_slice());
    let wrong = Golden {
        expected_grad_a: leaked,
        ..copy_of(case)
    };
    let failure = checks::run_golden(&wrong).expect_err("a perturbed gradient must fail");
    assert!(failure.what.contains("grad_a"), "{failure}");
}

fn copy_of(case: &Golden) -> Golden {
    Golden {
        id: case.id,
        loss: case.loss,
        a: case.a,
        b: case.b,
        labels: case.labels,
        expected_loss: case.expected_loss,
        expected_per_pair: case.expected_per_pair,
        expected_grad_a: case.expected_grad_a,
        expected_grad_b: case.expected_grad_b,
    }
}
