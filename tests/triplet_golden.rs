//! The golden cases of the triplet family on every available backend: kinds `triplet`
//! and `cosine_embedding` of tests/data/golden.json (torch semantics), and
//! `triplet_batch_all` (PML) and `triplet_batch_hard` (sentence-transformers) of
//! tests/data/inbatch.json. Expected values are float64; each is compared within the
//! documented bound at the scale the f64 oracle in tests/common/triplet_oracle.rs computes
//! for the same inputs (and the oracle itself is checked against the file first).

// Index loops read as the formulas they check.
#![allow(clippy::needless_range_loop)]

use crate::common;

use common::triplet_loss::InBatchTriplet;
use common::triplet_oracle::{self, InBatchRef};
use common::{U, assert_close, golden_cases, inbatch_cases, inputs, labels, number, numbers};
use contrastive::{
    Backend, BatchAllTripletLoss, BatchHardTripletLoss, CosineEmbeddingLoss, Distance, TripletLoss,
};
use serde_json::Value;

fn cases(kind: &str) -> Vec<Value> {
    let v: Vec<Value> = golden_cases()
        .into_iter()
        .filter(|c| c["loss"] == kind)
        .collect();
    assert!(!v.is_empty(), "no {kind} cases");
    v
}

fn rtol(d: usize) -> f64 {
    (2.0 * d as f64 + 16.0) * U
}

#[test]
fn triplet_cases_pass_on_every_backend() {
    let all = cases("triplet");
    assert_eq!(all.len(), 25);
    for case in &all {
        let id = case["id"].as_str().unwrap();
        let p = &case["params"];
        let (n, d) = (
            case["shape"]["n"].as_u64().unwrap() as usize,
            case["shape"]["d"].as_u64().unwrap() as usize,
        );
        let margin = number(&p["margin"]);
        let swap = p["swap"].as_bool().unwrap();
        let eps = number(&p["eps"]);
        assert_eq!(p["reduction"], "mean");
        assert_eq!(p["policy"] == "exact", eps == 0.0, "{id}");
        let a = inputs(&case["inputs"]["anchor"]);
        let pos = inputs(&case["inputs"]["positive"]);
        let neg = inputs(&case["inputs"]["negative"]);
        let e = &case["expected"];
        let c = 1.0 / n as f64;
        let refs: Vec<_> = (0..n)
            .map(|i| {
                let r = |x: &[f32]| x[i * d..(i + 1) * d].to_vec();
                triplet_oracle::triplet(&r(&a), &r(&pos), &r(&neg), margin, swap, eps, c)
            })
            .collect();
        // The oracle agrees with the file.
        let want_per = numbers(&e["per_triplet"]);
        for (r, w) in refs.iter().zip(&want_per) {
            assert!(
                (r.loss - w).abs() <= 1e-12 * (1.0 + w.abs()),
                "{id}: oracle"
            );
        }
        let loss = TripletLoss::new(margin as f32)
            .with_swap(swap)
            .with_eps(eps as f32);
        for backend in Backend::available() {
            let l = loss.with_backend(backend);
            let what = format!("{id} on {backend:?}");
            let mut per = vec![0.0; n];
            l.batch_per_triplet(&a, &pos, &neg, d, &mut per).unwrap();
            for i in 0..n {
                assert_close(&what, per[i], want_per[i], rtol(d), refs[i].scale);
            }
            let mean_scale = refs.iter().map(|r| r.scale).sum::<f64>() * c;
            let want = number(&e["loss"]);
            assert_close(
                &what,
                l.batch(&a, &pos, &neg, d).unwrap(),
                want,
                rtol(d),
                mean_scale,
            );
            let mut g = [vec![0.0; n * d], vec![0.0; n * d], vec![0.0; n * d]];
            let [ga, gp, gn] = &mut g;
            let got = l.batch_with_grad(&a, &pos, &neg, d, ga, gp, gn).unwrap();
            assert_close(&what, got, want, rtol(d), mean_scale);
            for (which, key) in ["grad_anchor", "grad_positive", "grad_negative"]
                .iter()
                .enumerate()
            {
                let want = numbers(&e[*key]);
                for k in 0..n * d {
                    let (i, j) = (k / d, k % d);
                    assert_close(
                        &format!("{what}: {key}[{k}]"),
                        g[which][k],
                        want[k],
                        rtol(d),
                        refs[i].grad_scale[which][j],
                    );
                }
            }
        }
    }
}

#[test]
fn cosine_embedding_cases_pass_on_every_backend() {
    let all = cases("cosine_embedding");
    for case in &all {
        let id = case["id"].as_str().unwrap();
        let (n, d) = (
            case["shape"]["n"].as_u64().unwrap() as usize,
            case["shape"]["d"].as_u64().unwrap() as usize,
        );
        let margin = number(&case["params"]["margin"]);
        let x1 = inputs(&case["inputs"]["x1"]);
        let x2 = inputs(&case["inputs"]["x2"]);
        let t = inputs(&case["inputs"]["target"]);
        let e = &case["expected"];
        let c = 1.0 / n as f64;
        // torch's eps (1e-12 on the squared norms) moves the file's values by less than
        // 1e-11 here: inside the bound, which is of order 1e-6.
        for backend in Backend::available() {
            let l = CosineEmbeddingLoss::new(margin as f32).with_backend(backend);
            let what = format!("{id} on {backend:?}");
            let mut per = vec![0.0; n];
            l.batch_per_pair(&x1, &x2, d, &t, &mut per).unwrap();
            let want_per = numbers(&e["per_pair"]);
            for i in 0..n {
                assert_close(&what, per[i], want_per[i], rtol(d), 1.0 + margin.abs());
            }
            let (mut ga, mut gb) = (vec![0.0; n * d], vec![0.0; n * d]);
            let got = l
                .batch_with_grad(&x1, &x2, d, &t, &mut ga, &mut gb)
                .unwrap();
            assert_close(&what, got, number(&e["loss"]), rtol(d), 1.0 + margin.abs());
            assert_eq!(got, l.batch(&x1, &x2, d, &t).unwrap());
            let (wa, wb) = (numbers(&e["grad_x1"]), numbers(&e["grad_x2"]));
            for i in 0..n {
                let r = |x: &[f32]| x[i * d..(i + 1) * d].to_vec();
                let o = triplet_oracle::cosine_embedding(&r(&x1), &r(&x2), t[i], margin, c);
                for j in 0..d {
                    let k = i * d + j;
                    assert_close(
                        &format!("{what}: grad_x1[{k}]"),
                        ga[k],
                        wa[k],
                        rtol(d),
                        o.grad_scale,
                    );
                    assert_close(
                        &format!("{what}: grad_x2[{k}]"),
                        gb[k],
                        wb[k],
                        rtol(d),
                        o.grad_scale,
                    );
                }
            }
        }
    }
}

/// The in-batch bound: distances and unit directions as for pairs, plus the f32
/// accumulation of up to `2N` contributions per gradient component.
fn inbatch_rtol(n: usize, d: usize) -> f64 {
    (2.0 * d as f64 + 2.0 * n as f64 + 32.0) * U
}

fn check_inbatch(
    what: &str,
    got: f32,
    grad: &[f32],
    want: &Value,
    oracle: &InBatchRef,
    n: usize,
    d: usize,
) {
    let rtol = inbatch_rtol(n, d);
    // The oracle agrees with the file (it is checked here, not trusted).
    let want_loss = number(&want["loss"]);
    assert!(
        (oracle.loss - want_loss).abs() <= 1e-9 * (1.0 + want_loss.abs()),
        "{what}: oracle loss {} vs file {want_loss}",
        oracle.loss
    );
    assert_close(&format!("{what}: loss"), got, want_loss, rtol, oracle.scale);
    let want_grad = numbers(&want["grad_x"]);
    for k in 0..n * d {
        assert!(
            (oracle.grad[k] - want_grad[k]).abs() <= 1e-9 * (1.0 + want_grad[k].abs()),
            "{what}: oracle grad[{k}]"
        );
        assert_close(
            &format!("{what}: grad[{k}]"),
            grad[k],
            want_grad[k],
            rtol,
            oracle.grad_scale[k],
        );
    }
}

/// An in-batch case's id, rows (`n` of `d`, as its shape says) and class labels.
fn batch_case(case: &Value) -> (&str, Vec<f32>, usize, Vec<u32>) {
    let id = case["id"].as_str().unwrap();
    let shape = |k: &str| case["shape"][k].as_u64().unwrap() as usize;
    let (n, d) = (shape("n"), shape("d"));
    let x = inputs(&case["inputs"]["x"]);
    let classes = labels(&case["inputs"]["classes"]);
    assert_eq!((x.len(), classes.len()), (n * d, n), "{id}: shape");
    (id, x, d, classes)
}

/// `batch_with_grad` of a case on every backend against its expected values, and `batch`
/// giving the same loss.
fn check_case_every_backend(
    id: &str,
    loss: impl Into<InBatchTriplet>,
    batch: (&[f32], usize, &[u32]),
    expected: &Value,
    oracle: &InBatchRef,
) {
    let loss = loss.into();
    let (n, d) = (batch.2.len(), batch.1);
    let mut scratch = vec![0.0; loss.scratch_len(n, d)];
    for backend in Backend::available() {
        let what = format!("{id} on {backend:?}");
        let mut grad = vec![f32::NAN; n * d];
        let got = loss
            .run(backend, batch, Some(&mut grad), &mut scratch)
            .unwrap();
        let alone = loss.run(backend, batch, None, &mut scratch).unwrap();
        assert_eq!(got, alone, "{what}");
        check_inbatch(&what, got, &grad, expected, oracle, n, d);
    }
}

#[test]
fn batch_all_cases_pass_on_every_backend() {
    for case in &inbatch_cases("triplet_batch_all") {
        let (id, x, d, classes) = batch_case(case);
        let p = &case["params"];
        assert_eq!(p["distance"], "euclidean", "{id}");
        let margin = number(&p["margin"]) as f32;
        let smooth = p["smooth"].as_bool().unwrap();
        let normalize = p["normalize"].as_bool().unwrap();
        let oracle =
            triplet_oracle::batch_all(&x, d, &classes, f64::from(margin), smooth, normalize);
        let loss = BatchAllTripletLoss::new(margin)
            .with_smooth(smooth)
            .with_normalize(normalize);
        check_case_every_backend(id, loss, (&x, d, &classes), &case["expected"], &oracle);
    }
}

#[test]
fn batch_hard_cases_pass_on_every_backend() {
    for case in &inbatch_cases("triplet_batch_hard") {
        let (id, x, d, classes) = batch_case(case);
        let p = &case["params"];
        let margin = number(&p["margin"]) as f32;
        let cosine = p["distance"] == "cosine";
        let oracle = triplet_oracle::batch_hard(&x, d, &classes, f64::from(margin), cosine);
        let mut loss = BatchHardTripletLoss::new(margin);
        if cosine {
            loss = loss.with_distance(Distance::Cosine);
        }
        check_case_every_backend(id, loss, (&x, d, &classes), &case["expected"], &oracle);
    }
}
