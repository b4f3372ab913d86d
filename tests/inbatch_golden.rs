//! The golden cases of the general contrastive loss, on every available backend:
//! `inbatch_contrastive` and `inbatch_contrastive_cross` (tests/data/inbatch.json: every
//! pair of a batch from class labels, pytorch-metric-learning's options) and
//! `double_margin` (tests/data/golden.json: the same loss on explicit pairs), and
//! `online_contrastive` (hard-pair mining on explicit pairs, and the same pairs as a
//! cross batch of singleton classes is not the same thing, so explicit only). Each
//! expected value (float64, rounded to f32) is compared within the documented bound at
//! the scale the float64 oracle of tests/common/inbatch_oracle.rs computes; the oracle
//! itself is checked against the file first.

use crate::common;

use common::inbatch_oracle::{self as oracle, Dist, Red};
use common::{
    assert_close, golden_cases, inbatch_cases, inputs, labels, number, numbers, pair_rtol,
};
use contrastive::{Backend, ContrastiveLoss, Distance, Hinge, Reduction};

use serde_json::Value;

/// The crate's loss and the oracle's for a case's parameters.
fn losses(p: &Value) -> (ContrastiveLoss, oracle::Loss) {
    let f = |k: &str, default: f64| p.get(k).map(number).unwrap_or(default);
    let (dist, distance) = match p["distance"].as_str().unwrap_or("euclidean") {
        "euclidean" => (Dist::Euclidean, Distance::Euclidean),
        "sqeuclidean" => (Dist::Squared, Distance::SquaredEuclidean),
        "cosine" => (Dist::Cosine, Distance::Cosine),
        other => panic!("distance {other}"),
    };
    let (red, reduction) = match p["reduction"].as_str().unwrap() {
        "mean" => (Red::Mean, Reduction::Mean),
        "sum" => (Red::Sum, Reduction::Sum),
        "avg_nonzero" => (Red::AvgNonZero, Reduction::AvgNonZero),
        "none" => (Red::None, Reduction::Sum),
        other => panic!("reduction {other}"),
    };
    let power = p["hinge_power"].as_i64().unwrap() as i32;
    let o = oracle::Loss {
        dist,
        normalize: p["normalize"].as_bool().unwrap_or(false),
        m_pos: f("pos_margin", 0.0),
        m_neg: f("neg_margin", 1.0),
        power,
        w_pos: f("pos_weight", 1.0),
        w_neg: f("neg_weight", 1.0),
        red,
    };
    let loss = ContrastiveLoss::new(o.m_neg as f32)
        .with_margins(o.m_pos as f32, o.m_neg as f32)
        .with_weights(o.w_pos as f32, o.w_neg as f32)
        .with_distance(distance)
        .with_reduction(reduction)
        .with_hinge(if power == 2 {
            Hinge::Squared
        } else {
            Hinge::Linear
        })
        .with_normalize(o.normalize);
    (loss, o)
}

/// The bound of these losses: the pair bound with room for the normalisation and the
/// square root (`4·(2d + 16)·u` of the scale).
fn rtol(dim: usize) -> f64 {
    4.0 * pair_rtol(dim)
}

fn rounded(x: f64) -> f64 {
    f64::from(x as f32)
}

/// The oracle agrees with the file (it is the test's yardstick): to 1e-9, or to a few f32
/// units where the file's exact constructions read decimals (0.3, 0.4) as float64.
fn check_oracle(id: &str, out: &oracle::Out, expected: &Value, grads: &[(&str, &[f64])]) {
    let loss = number(&expected["loss"]);
    assert!(
        (out.loss - loss).abs() <= (1e-9 + 4.0 * common::U) * (1.0 + out.loss_scale),
        "{id}: oracle loss {} vs {loss}",
        out.loss
    );
    for (name, got) in grads {
        let want = numbers(&expected[*name]);
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            let tol = (1e-9 + 4.0 * common::U) * (1.0 + w.abs());
            assert!((g - w).abs() <= tol, "{id}: oracle {name}[{k}] {g} vs {w}");
        }
    }
}

fn check_grad(what: &str, got: &[f32], want: &[f64], scale: &[f64], rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (k, ((&g, &w), &s)) in got.iter().zip(want).zip(scale).enumerate() {
        assert_close(&format!("{what}[{k}]"), g, rounded(w), rtol, s + w.abs());
    }
}

#[test]
fn inbatch_contrastive_cases_pass_on_every_backend() {
    for case in inbatch_cases("inbatch_contrastive") {
        let id = case["id"].as_str().unwrap();
        let (dim, n) = (
            case["shape"]["d"].as_u64().unwrap() as usize,
            case["shape"]["n"].as_u64().unwrap() as usize,
        );
        let x = inputs(&case["inputs"]["x"]);
        let cls = labels(&case["inputs"]["classes"]);
        let (loss, o) = losses(&case["params"]);
        let out = oracle::evaluate(&o, &x, &x, dim, &oracle::within_pairs(&cls), true);
        check_oracle(id, &out, &case["expected"], &[("grad_x", &out.gx)]);
        let want_loss = number(&case["expected"]["loss"]);
        let want_grad = numbers(&case["expected"]["grad_x"]);
        for backend in Backend::available() {
            let loss = loss.with_backend(backend);
            let what = format!("{id} {backend:?}");
            let mut scratch = vec![f32::NAN; loss.scratch_len(n, dim)];
            let got = loss.in_batch(&x, dim, &cls, &mut scratch).unwrap();
            assert_close(&what, got, rounded(want_loss), rtol(dim), out.loss_scale);
            let mut grad = vec![f32::NAN; x.len()];
            let got = loss
                .in_batch_with_grad(&x, dim, &cls, &mut grad, &mut scratch)
                .unwrap();
            assert_close(&what, got, rounded(want_loss), rtol(dim), out.loss_scale);
            check_grad(
                &format!("{what} grad_x"),
                &grad,
                &want_grad,
                &out.gx_scale,
                rtol(dim),
            );
        }
    }
}

#[test]
fn inbatch_contrastive_cross_cases_pass_on_every_backend() {
    for case in inbatch_cases("inbatch_contrastive_cross") {
        let id = case["id"].as_str().unwrap();
        let dim = case["shape"]["d"].as_u64().unwrap() as usize;
        let (x, y) = (inputs(&case["inputs"]["x"]), inputs(&case["inputs"]["y"]));
        let (xc, yc) = (
            labels(&case["inputs"]["x_classes"]),
            labels(&case["inputs"]["y_classes"]),
        );
        let (loss, o) = losses(&case["params"]);
        let out = oracle::evaluate(&o, &x, &y, dim, &oracle::across_pairs(&xc, &yc), false);
        check_oracle(
            id,
            &out,
            &case["expected"],
            &[("grad_x", &out.gx), ("grad_y", &out.gy)],
        );
        let want_loss = number(&case["expected"]["loss"]);
        let (want_gx, want_gy) = (
            numbers(&case["expected"]["grad_x"]),
            numbers(&case["expected"]["grad_y"]),
        );
        for backend in Backend::available() {
            let loss = loss.with_backend(backend);
            let what = format!("{id} {backend:?}");
            let mut scratch = vec![f32::NAN; loss.scratch_len(xc.len() + yc.len(), dim)];
            let got = loss
                .cross_batch(&x, &y, dim, &xc, &yc, &mut scratch)
                .unwrap();
            assert_close(&what, got, rounded(want_loss), rtol(dim), out.loss_scale);
            let (mut gx, mut gy) = (vec![f32::NAN; x.len()], vec![f32::NAN; y.len()]);
            let got = loss
                .cross_batch_with_grad(&x, &y, dim, &xc, &yc, &mut gx, &mut gy, &mut scratch)
                .unwrap();
            assert_close(&what, got, rounded(want_loss), rtol(dim), out.loss_scale);
            check_grad(
                &format!("{what} grad_x"),
                &gx,
                &want_gx,
                &out.gx_scale,
                rtol(dim),
            );
            check_grad(
                &format!("{what} grad_y"),
                &gy,
                &want_gy,
                &out.gy_scale,
                rtol(dim),
            );
        }
    }
}

#[test]
fn double_margin_cases_pass_on_every_backend() {
    let cases: Vec<Value> = golden_cases()
        .into_iter()
        .filter(|c| c["loss"] == "double_margin")
        .collect();
    assert!(!cases.is_empty());
    for case in cases {
        let id = case["id"].as_str().unwrap();
        let p = &case["params"];
        let dim = case["shape"]["d"].as_u64().unwrap() as usize;
        let (x1, x2, y) = (
            inputs(&case["inputs"]["x1"]),
            inputs(&case["inputs"]["x2"]),
            numbers(&case["inputs"]["y"]),
        );
        let labels: Vec<f32> = y.iter().map(|&v| v as f32).collect();
        // The golden file names the distance by its power: 1 is D, 2 is D².
        let mut params = p.clone();
        params["distance"] = Value::from(if p["dist_power"] == 2 {
            "sqeuclidean"
        } else {
            "euclidean"
        });
        let (loss, o) = losses(&params);
        let pairs: Vec<(usize, usize, f64)> =
            y.iter().enumerate().map(|(i, &l)| (i, i, l)).collect();
        let out = oracle::evaluate(&o, &x1, &x2, dim, &pairs, false);
        let expected = &case["expected"];
        if o.red == Red::None {
            for (k, (&g, w)) in out
                .per_pair
                .iter()
                .zip(numbers(&expected["loss"]))
                .enumerate()
            {
                assert!(
                    (g - w).abs() <= 1e-9 * (1.0 + w.abs()),
                    "{id}: oracle pair {k}"
                );
            }
        } else {
            check_oracle(id, &out, expected, &[]);
        }
        let (want_g1, want_g2) = (numbers(&expected["grad_x1"]), numbers(&expected["grad_x2"]));
        for backend in Backend::available() {
            let loss = loss.with_backend(backend);
            let what = format!("{id} {backend:?}");
            if o.red == Red::None {
                let mut per = vec![f32::NAN; labels.len()];
                loss.batch_per_pair(&x1, &x2, dim, &labels, &mut per)
                    .unwrap();
                for (k, &g) in per.iter().enumerate() {
                    let w = out.per_pair[k];
                    assert_close(
                        &format!("{what} pair {k}"),
                        g,
                        rounded(w),
                        rtol(dim),
                        out.per_pair_scale[k],
                    );
                }
            } else {
                let got = loss.batch(&x1, &x2, dim, &labels).unwrap();
                assert_close(
                    &what,
                    got,
                    rounded(number(&expected["loss"])),
                    rtol(dim),
                    out.loss_scale,
                );
            }
            let (mut g1, mut g2) = (vec![f32::NAN; x1.len()], vec![f32::NAN; x2.len()]);
            loss.batch_with_grad(&x1, &x2, dim, &labels, &mut g1, &mut g2)
                .unwrap();
            check_grad(
                &format!("{what} grad_x1"),
                &g1,
                &want_g1,
                &out.gx_scale,
                rtol(dim),
            );
            check_grad(
                &format!("{what} grad_x2"),
                &g2,
                &want_g2,
                &out.gy_scale,
                rtol(dim),
            );
        }
    }
}

#[test]
fn online_contrastive_cases_pass_on_every_backend() {
    for case in inbatch_cases("online_contrastive") {
        let id = case["id"].as_str().unwrap();
        let p = &case["params"];
        let dim = case["shape"]["d"].as_u64().unwrap() as usize;
        let (x1, x2) = (inputs(&case["inputs"]["x1"]), inputs(&case["inputs"]["x2"]));
        let y = numbers(&case["inputs"]["y"]);
        let labels: Vec<f32> = y.iter().map(|&v| v as f32).collect();
        let cosine = p["distance"] == "cosine";
        let margin = number(&p["margin"]);
        let out = oracle::online(&x1, &x2, dim, &y, margin, cosine);
        check_oracle(
            id,
            &out,
            &case["expected"],
            &[("grad_x1", &out.gx), ("grad_x2", &out.gy)],
        );
        let loss = ContrastiveLoss::sentence_transformers_online()
            .with_margins(0.0, margin as f32)
            .with_distance(if cosine {
                Distance::Cosine
            } else {
                Distance::Euclidean
            });
        let want = number(&case["expected"]["loss"]);
        for backend in Backend::available() {
            let loss = loss.with_backend(backend);
            let what = format!("{id} {backend:?}");
            let got = loss.batch(&x1, &x2, dim, &labels).unwrap();
            assert_close(&what, got, rounded(want), rtol(dim), out.loss_scale);
            let (mut g1, mut g2) = (vec![f32::NAN; x1.len()], vec![f32::NAN; x2.len()]);
            let got = loss
                .batch_with_grad(&x1, &x2, dim, &labels, &mut g1, &mut g2)
                .unwrap();
            assert_close(&what, got, rounded(want), rtol(dim), out.loss_scale);
            check_grad(
                &format!("{what} grad_x1"),
                &g1,
                &out.gx,
                &out.gx_scale,
                rtol(dim),
            );
            check_grad(
                &format!("{what} grad_x2"),
                &g2,
                &out.gy,
                &out.gy_scale,
                rtol(dim),
            );
        }
    }
}
