//! Gradients of the triplet losses and the cosine embedding loss against float64 central
//! differences of the oracle's loss (tests/common/triplet_oracle.rs), on random inputs
//! away from the kinks (a hinge at 0, an argmax or argmin changing hands), where the loss
//! is smooth and the difference quotient converges.

#![allow(clippy::needless_range_loop)]

use crate::common;

use common::triplet_oracle;
use contrastive::{
    BatchAllTripletLoss, BatchHardTripletLoss, CosineEmbeddingLoss, Distance, TripletLoss,
};
use proptest::prelude::*;

const H: f64 = 1e-4;

/// The central difference of `f` at `x` in component `k`, with steps that are exact in f32
/// (`x ± h` as f32, and the true step taken from them).
fn central(x: &[f32], k: usize, f: &dyn Fn(&[f32]) -> f64) -> f64 {
    let mut up = x.to_vec();
    let mut down = x.to_vec();
    up[k] = (f64::from(x[k]) + H) as f32;
    down[k] = (f64::from(x[k]) - H) as f32;
    (f(&up) - f(&down)) / (f64::from(up[k]) - f64::from(down[k]))
}

fn close(what: &str, got: f32, fd: f64, scale: f64) -> Result<(), TestCaseError> {
    let tol = 1e-3 * scale + 1e-4;
    prop_assert!(
        (f64::from(got) - fd).abs() <= tol,
        "{what}: analytic {got:e}, central difference {fd:e}"
    );
    Ok(())
}

fn rows(n: usize, d: usize) -> impl Strategy<Value = Vec<f32>> {
    proptest::collection::vec(-2.0f32..2.0, n * d)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn triplet_gradient_matches_central_differences(
        d in 1usize..12,
        seed in proptest::collection::vec(-2.0f32..2.0, 36),
        margin in 0.0f32..3.0,
        swap in any::<bool>(),
        torch_eps in any::<bool>(),
    ) {
        let (a, p, n) = (&seed[..d], &seed[12..12 + d], &seed[24..24 + d]);
        let eps = if torch_eps { 1e-6 } else { 0.0 };
        let m = f64::from(margin);
        let oracle = |a: &[f32], p: &[f32], n: &[f32]| {
            triplet_oracle::triplet(a, p, n, m, swap, eps, 1.0)
        };
        let r = oracle(a, p, n);
        prop_assume!(r.violation.abs() > 1e-2);
        if swap {
            let dan = triplet_oracle::distance(&wide(a), &wide(n), eps).0;
            let dpn = triplet_oracle::distance(&wide(p), &wide(n), eps).0;
            prop_assume!((dan - dpn).abs() > 1e-2);
        }
        let loss = TripletLoss::new(margin).with_swap(swap).with_eps(eps as f32);
        let mut g = [vec![0.0; d], vec![0.0; d], vec![0.0; d]];
        let [ga, gp, gn] = &mut g;
        loss.triplet_with_grad(a, p, n, ga, gp, gn).unwrap();
        for k in 0..d {
            close("anchor", g[0][k], central(a, k, &|x| oracle(x, p, n).loss), 1.0)?;
            close("positive", g[1][k], central(p, k, &|x| oracle(a, x, n).loss), 1.0)?;
            close("negative", g[2][k], central(n, k, &|x| oracle(a, p, x).loss), 1.0)?;
        }
    }

    #[test]
    fn cosine_embedding_gradient_matches_central_differences(
        d in 1usize..12,
        seed in proptest::collection::vec(-2.0f32..2.0, 24),
        margin in -0.5f32..0.5,
        target in prop_oneof![Just(1.0f32), Just(-1.0f32)],
    ) {
        let (a, b) = (&seed[..d], &seed[12..12 + d]);
        let m = f64::from(margin);
        let r = triplet_oracle::cosine_embedding(a, b, target, m, 1.0);
        let na = wide(a).iter().map(|v| v * v).sum::<f64>().sqrt();
        let nb = wide(b).iter().map(|v| v * v).sum::<f64>().sqrt();
        prop_assume!(na > 0.1 && nb > 0.1);
        prop_assume!(r.cos.abs() < 0.99 && (r.cos - m).abs() > 1e-2);
        let (mut ga, mut gb) = (vec![0.0; d], vec![0.0; d]);
        CosineEmbeddingLoss::new(margin)
            .pair_with_grad(a, b, target, &mut ga, &mut gb)
            .unwrap();
        let scale = 1.0 / na.min(nb);
        for k in 0..d {
            let fa = central(a, k, &|x| triplet_oracle::cosine_embedding(x, b, target, m, 1.0).loss);
            let fb = central(b, k, &|x| triplet_oracle::cosine_embedding(a, x, target, m, 1.0).loss);
            close("a", ga[k], fa, scale)?;
            close("b", gb[k], fb, scale)?;
        }
    }

    #[test]
    fn batch_all_gradient_matches_central_differences(
        x in rows(7, 3),
        classes in proptest::collection::vec(0u32..3, 7),
        margin in 0.0f32..1.0,
        smooth in any::<bool>(),
        normalize in any::<bool>(),
    ) {
        let (n, d) = (7, 3);
        let m = f64::from(margin);
        let f = |x: &[f32]| triplet_oracle::batch_all(x, d, &classes, m, smooth, normalize);
        let r = f(&x);
        prop_assume!(smooth || r.kink_gap > 1e-2);
        if normalize {
            prop_assume!(x.chunks(d).all(|r| wide(r).iter().map(|v| v * v).sum::<f64>() > 0.1));
        }
        let loss = BatchAllTripletLoss::new(margin).with_smooth(smooth).with_normalize(normalize);
        let mut scratch = vec![0.0; loss.scratch_len(n, d)];
        let mut grad = vec![0.0; n * d];
        loss.batch_with_grad(&x, d, &classes, &mut grad, &mut scratch).unwrap();
        for k in 0..n * d {
            close("x", grad[k], central(&x, k, &|x| f(x).loss), 4.0)?;
        }
    }

    #[test]
    fn batch_hard_gradient_matches_central_differences(
        x in rows(7, 3),
        classes in proptest::collection::vec(0u32..3, 7),
        margin in 0.0f32..2.0,
        cosine in any::<bool>(),
    ) {
        let (n, d) = (7, 3);
        let m = f64::from(margin);
        let f = |x: &[f32]| triplet_oracle::batch_hard(x, d, &classes, m, cosine);
        let r = f(&x);
        prop_assume!(r.kink_gap > 1e-2);
        if cosine {
            prop_assume!(x.chunks(d).all(|r| wide(r).iter().map(|v| v * v).sum::<f64>() > 0.1));
        }
        let mut loss = BatchHardTripletLoss::new(margin);
        if cosine {
            loss = loss.with_distance(Distance::Cosine);
        }
        let mut scratch = vec![0.0; loss.scratch_len(n, d)];
        let mut grad = vec![0.0; n * d];
        loss.batch_with_grad(&x, d, &classes, &mut grad, &mut scratch).unwrap();
        for k in 0..n * d {
            close("x", grad[k], central(&x, k, &|x| f(x).loss), 4.0)?;
        }
    }
}

fn wide(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| f64::from(v)).collect()
}
