//! The golden file's `supcon` and `ntxent_pml` cases and the in-batch file's
//! `clip_infonce` cases, on every backend, against the documented bounds; and the f64
//! oracle of `tests/common/softmax_oracle.rs` against the same cases.

use crate::common;

use common::softmax_oracle::{self as oracle, Grads, check_grad, check_loss, grad_tol, loss_tol};
use common::{number, numbers};
use contrastive::{Backend, InfoNceLoss, NoPositive, NtXentLoss, SupConLoss};
use serde_json::Value;

fn load(file: &str, kind: &str) -> Vec<Value> {
    let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    let all: Value = serde_json::from_str(&text).unwrap();
    all["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["loss"] == kind)
        .cloned()
        .collect()
}

fn f32s(v: &Value) -> Vec<f32> {
    numbers(v).into_iter().map(|x| x as f32).collect()
}

fn classes(v: &Value) -> Vec<u32> {
    numbers(v).into_iter().map(|x| x as u32).collect()
}

#[test]
fn supcon_golden_cases_pass_on_every_backend() {
    let cases = load("golden.json", "supcon");
    assert_eq!(cases.len(), 18);
    for case in &cases {
        let id = case["id"].as_str().unwrap();
        let p = &case["params"];
        let (n, d) = (
            case["shape"]["n"].as_u64().unwrap() as usize,
            case["shape"]["d"].as_u64().unwrap() as usize,
        );
        let z = f32s(&case["inputs"]["z"]);
        let lab = classes(&case["inputs"]["labels"]);
        let (t, bt) = (number(&p["temperature"]), number(&p["base_temperature"]));
        let mode = p["no_pos"].as_str().unwrap();
        let want = number(&case["expected"]["loss"]);
        let want_grad = numbers(&case["expected"]["grad_z"]);
        // The oracle agrees with the golden file to f64 rounding.
        let o = oracle::supcon(&z, d, &lab, t, bt, mode);
        assert!(
            (o.loss - want).abs() <= 1e-9 * want.abs().max(1.0),
            "{id}: oracle {} vs {want}",
            o.loss
        );
        let og: Grads = oracle::chain(&z, &z, d, &o, true);
        for (k, (a, b)) in og.gx.iter().zip(&want_grad).enumerate() {
            let tol = 1e-9 * (b.abs() + og.scale_x[k / d]) + 1e-300;
            assert!((a - b).abs() <= tol, "{id}: oracle grad {a} vs {b}");
        }
        let no_positive = match mode {
            "zero" => NoPositive::Zero,
            "exclude" => NoPositive::Exclude,
            _ => NoPositive::Nan,
        };
        let s = (1.0 / t).max(1.0 / bt);
        for backend in Backend::available() {
            let loss = SupConLoss::new(t as f32)
                .with_base_temperature(bt as f32)
                .with_no_positive(no_positive)
                .with_backend(backend);
            let mut scratch = vec![0.0; loss.scratch_len(n, d)];
            let what = format!("{id} on {}", backend.name());
            let l = loss.forward(&z, d, &lab, &mut scratch).unwrap();
            check_loss(&what, l, want, loss_tol(s, d, want));
            let mut grad = vec![0.0; z.len()];
            let l2 = loss
                .forward_with_grad(&z, d, &lab, &mut grad, &mut scratch)
                .unwrap();
            assert_eq!(
                l.to_bits(),
                l2.to_bits(),
                "{what}: forward and forward_with_grad differ"
            );
            check_grad(&what, &grad, &want_grad, d, |i| {
                grad_tol(s, d, n, og.scale_x[i], og.inv_x[i])
            });
        }
    }
}

#[test]
fn ntxent_golden_cases_pass_on_every_backend() {
    let cases = load("golden.json", "ntxent_pml");
    assert_eq!(cases.len(), 6);
    for case in &cases {
        let id = case["id"].as_str().unwrap();
        let (n, d) = (
            case["shape"]["n"].as_u64().unwrap() as usize,
            case["shape"]["d"].as_u64().unwrap() as usize,
        );
        let z = f32s(&case["inputs"]["z"]);
        let lab = classes(&case["inputs"]["labels"]);
        let t = number(&case["params"]["temperature"]);
        let want = number(&case["expected"]["loss"]);
        let o = oracle::ntxent(&z, d, &lab, t);
        assert!(
            (o.loss - want).abs() <= 1e-9 * want.abs().max(1.0),
            "{id}: oracle {} vs {want}",
            o.loss
        );
        let og = oracle::chain(&z, &z, d, &o, true);
        for backend in Backend::available() {
            let loss = NtXentLoss::new(t as f32).with_backend(backend);
            let mut scratch = vec![0.0; loss.scratch_len(n, d)];
            let what = format!("{id} on {}", backend.name());
            let l = loss.forward(&z, d, &lab, &mut scratch).unwrap();
            check_loss(&what, l, want, loss_tol(1.0 / t, d, want));
            // The golden file has no NT-Xent gradient: the oracle's stands in.
            let mut grad = vec![0.0; z.len()];
            loss.forward_with_grad(&z, d, &lab, &mut grad, &mut scratch)
                .unwrap();
            check_grad(&what, &grad, &og.gx, d, |i| {
                grad_tol(1.0 / t, d, n, og.scale_x[i], og.inv_x[i])
            });
        }
    }
}

#[test]
fn clip_infonce_golden_cases_pass_on_every_backend() {
    let cases = load("inbatch.json", "clip_infonce");
    assert_eq!(cases.len(), 53);
    for case in &cases {
        let id = case["id"].as_str().unwrap();
        let (n, d) = (
            case["shape"]["n"].as_u64().unwrap() as usize,
            case["shape"]["d"].as_u64().unwrap() as usize,
        );
        let x = f32s(&case["inputs"]["x"]);
        let y = f32s(&case["inputs"]["y"]);
        let scale = number(&case["params"]["scale"]);
        let symmetric = case["params"]["symmetric"].as_bool().unwrap();
        let want = number(&case["expected"]["loss"]);
        let want_gx = numbers(&case["expected"]["grad_x"]);
        let want_gy = numbers(&case["expected"]["grad_y"]);
        let o = oracle::infonce(&x, &y, d, scale, symmetric);
        assert!(
            (o.loss - want).abs() <= 1e-9 * want.abs().max(1.0),
            "{id}: oracle {} vs {want}",
            o.loss
        );
        let og = oracle::chain(&x, &y, d, &o, false);
        let scales: Vec<f64> = og.scale_x.iter().chain(&og.scale_y).copied().collect();
        let ours = og.gx.iter().chain(&og.gy);
        for (k, (a, b)) in ours.zip(want_gx.iter().chain(&want_gy)).enumerate() {
            let tol = 1e-9 * (b.abs() + scales[k / d]) + 1e-300;
            assert!((a - b).abs() <= tol, "{id}: oracle grad {a} vs {b}");
        }
        for backend in Backend::available() {
            let mut loss = InfoNceLoss::new(scale as f32).with_backend(backend);
            loss.symmetric = symmetric;
            let mut scratch = vec![0.0; loss.scratch_len(n, d)];
            let what = format!("{id} on {}", backend.name());
            let l = loss.forward(&x, &y, d, &mut scratch).unwrap();
            check_loss(&what, l, want, loss_tol(scale.abs(), d, want));
            let (mut gx, mut gy) = (vec![0.0; x.len()], vec![0.0; x.len()]);
            loss.forward_with_grad(&x, &y, d, &mut gx, &mut gy, &mut scratch)
                .unwrap();
            check_grad(&what, &gx, &want_gx, d, |i| {
                grad_tol(scale.abs(), d, n, og.scale_x[i], og.inv_x[i])
            });
            check_grad(&what, &gy, &want_gy, d, |i| {
                grad_tol(scale.abs(), d, n, og.scale_y[i], og.inv_y[i])
            });
        }
    }
}
