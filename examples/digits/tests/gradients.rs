//! The layers' and the loss's gradients against central finite differences of independent
//! float64 oracles (tests/common/net_oracle.rs).

mod common;

use common::net_oracle;
use contrastive::{ContrastiveLoss, Distance, Error};
use digits::net::{self, Rng, Shape};

/// `|analytic − numeric| ≤ tol · max(1, max |numeric|)` componentwise.
fn assert_close(analytic: &[f32], numeric: &[f64], tol: f64, what: &str) {
    assert_eq!(analytic.len(), numeric.len());
    let scale = numeric.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    let mut nonzero = 0;
    for (k, (&a, &n)) in analytic.iter().zip(numeric).enumerate() {
        assert!(
            (f64::from(a) - n).abs() <= tol * scale,
            "{what}[{k}]: analytic {a}, finite differences {n} (scale {scale})"
        );
        nonzero += usize::from(n != 0.0);
    }
    // A test that compares zeros with zeros proves nothing.
    assert!(
        nonzero > analytic.len() / 4,
        "{what}: only {nonzero} non-zero components"
    );
}

fn random(rng: &mut Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| scale * rng.symmetric()).collect()
}

fn widen(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

/// For `L = Σ c ⊙ network(x)`, `net::backward` with `d_out = c` against finite differences
/// of the f64 oracle network, with respect to every parameter.
fn check_network(shape: Shape, rows: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut params = vec![0.0f32; shape.param_len()];
    net::init(&shape, &mut params, &mut rng);
    // Non-zero biases, so that their gradients and the ReLU's mask are exercised.
    let (_, b1, _, b2) = shape.split_mut(&mut params);
    b1.iter_mut().for_each(|b| *b = 0.3 * rng.symmetric());
    b2.iter_mut().for_each(|b| *b = 0.3 * rng.symmetric());
    let x = random(&mut rng, rows * shape.input, 1.0);
    let c = random(&mut rng, rows * shape.output, 1.0);

    let mut hidden = vec![0.0f32; rows * shape.hidden];
    let mut out = vec![0.0f32; rows * shape.output];
    net::forward(&shape, &params, &x, &mut hidden, &mut out);
    let oracle_out = net_oracle::forward(
        shape.input,
        shape.hidden,
        shape.output,
        &widen(&params),
        &widen(&x),
    );
    for (a, o) in out.iter().zip(&oracle_out) {
        assert!(
            (f64::from(*a) - o).abs() <= 1e-5 * (1.0 + o.abs()),
            "forward {a} vs {o}"
        );
    }
    let mut grads = vec![f32::NAN; params.len()];
    let mut d_hidden = vec![0.0f32; rows * shape.hidden];
    net::backward(&shape, &params, &x, &hidden, &c, &mut grads, &mut d_hidden);

    let (xw, cw) = (widen(&x), widen(&c));
    let numeric = net_oracle::finite_differences(&widen(&params), 1e-6, |p| {
        let e = net_oracle::forward(shape.input, shape.hidden, shape.output, p, &xw);
        e.iter().zip(&cw).map(|(a, b)| a * b).sum()
    });
    assert_close(&grads, &numeric, 1e-4, "parameter gradient");
}

#[test]
fn network_gradient_matches_finite_differences() {
    check_network(
        Shape {
            input: 7,
            hidden: 5,
            output: 3,
        },
        4,
        1,
    );
    check_network(
        Shape {
            input: 64,
            hidden: 10,
            output: 16,
        },
        3,
        2,
    );
}

#[test]
fn linear_embedding_gradient_matches_finite_differences() {
    check_network(
        Shape {
            input: 9,
            hidden: 0,
            output: 4,
        },
        5,
        3,
    );
    check_network(
        Shape {
            input: 64,
            hidden: 0,
            output: 16,
        },
        2,
        4,
    );
}

/// The in-batch contrastive loss the example trains with, and its gradient with respect to
/// the embeddings, against the f64 all-pairs oracle and its finite differences: the mean
/// over ordered pairs the crate computes is the mean over unordered pairs the oracle sums.
fn check_in_batch(loss: ContrastiveLoss, dim: usize, classes: &[u8], seed: u64) {
    let mut rng = Rng::new(seed);
    let n = classes.len();
    let emb = random(&mut rng, n * dim, 0.5);
    let classes32: Vec<u32> = classes.iter().map(|&c| u32::from(c)).collect();
    let mut scratch = vec![0.0f32; loss.scratch_len(n, dim)];
    let mut grad = vec![f32::NAN; n * dim];
    let value = loss
        .in_batch_with_grad(&emb, dim, &classes32, &mut grad, &mut scratch)
        .unwrap();

    let cosine = loss.distance == Distance::Cosine;
    let oracle = |e: &[f64]| {
        net_oracle::contrastive_all_pairs(
            e,
            dim,
            classes,
            f64::from(loss.margin),
            f64::from(loss.positive_weight),
            f64::from(loss.negative_weight),
            cosine,
        )
    };
    let exact = oracle(&widen(&emb));
    assert!(
        (f64::from(value) - exact).abs() <= 1e-5 * exact.max(1e-3),
        "{value} vs {exact}"
    );
    let numeric = net_oracle::finite_differences(&widen(&emb), 1e-6, oracle);
    assert_close(&grad, &numeric, 1e-4, "embedding gradient");
}

#[test]
fn in_batch_contrastive_gradient_matches_finite_differences() {
    let classes = [0, 1, 0, 2, 1, 1, 2, 0];
    check_in_batch(ContrastiveLoss::new(1.0), 5, &classes, 5);
    check_in_batch(ContrastiveLoss::tfa(0.8), 16, &classes, 6);
    check_in_batch(
        ContrastiveLoss::new(0.5).with_distance(Distance::Cosine),
        16,
        &classes,
        7,
    );
}

#[test]
fn in_batch_rejects_bad_sizes() {
    let loss = ContrastiveLoss::new(1.0);
    let emb = [0.0f32; 6];
    let mut scratch = vec![0.0f32; loss.scratch_len(3, 2)];
    let mut grad = [0.0f32; 6];
    assert!(
        loss.in_batch_with_grad(&emb, 2, &[0, 1, 0], &mut grad, &mut scratch)
            .is_ok()
    );
    assert!(matches!(
        loss.in_batch_with_grad(&emb, 2, &[0, 1], &mut grad, &mut scratch),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        loss.in_batch_with_grad(&emb, 2, &[0, 1, 0], &mut grad[..4], &mut scratch),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(
        loss.in_batch_with_grad(&emb, 2, &[0, 1, 0], &mut grad, &mut [])
            .is_err()
    );
    assert!(matches!(
        ContrastiveLoss::new(-1.0).in_batch_with_grad(&emb, 2, &[0, 1, 0], &mut grad, &mut scratch),
        Err(Error::InvalidMargin { .. })
    ));
}

#[test]
fn sgd_step_follows_its_formula() {
    let sgd = net::Sgd {
        learning_rate: 0.1,
        momentum: 0.5,
        weight_decay: 0.01,
    };
    let (mut p, g, mut v) = ([1.0f32, -2.0], [0.5f32, 0.25], [0.2f32, 0.0]);
    sgd.step(&mut p, &g, &mut v);
    let v0 = 0.5 * 0.2 + 0.5;
    assert!((v[0] - v0).abs() < 1e-7 && (v[1] - 0.25).abs() < 1e-7);
    assert!((p[0] - (1.0 - 0.1 * (v0 + 0.01 * 1.0))).abs() < 1e-6);
    assert!((p[1] - (-2.0 - 0.1 * (0.25 + 0.01 * -2.0))).abs() < 1e-6);
}
