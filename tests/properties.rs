//! Properties over random inputs (proptest; raise the case count with PROPTEST_CASES):
//! gradients agree with central finite differences of a float64 loss; `grad_b = −grad_a`
//! for the Euclidean distance; swapping `a` and `b` leaves the loss unchanged.

use contrastive::{Backend, ContrastiveLoss, Distance};
use proptest::prelude::*;

/// The loss of one pair in f64, for finite differences: `p·D² + q·max(0, m − D)²`.
fn loss64(a: &[f64], b: &[f64], p: f64, q: f64, m: f64, cosine: bool) -> f64 {
    let d = if cosine {
        let ab: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
        let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
        1.0 - (ab / (na * nb)).clamp(-1.0, 1.0)
    } else {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f64>()
            .sqrt()
    };
    p * d * d + q * (m - d).max(0.0).powi(2)
}

fn pair_strategy() -> impl Strategy<Value = (Vec<f32>, Vec<f32>)> {
    (1usize..48).prop_flat_map(|n| {
        (
            prop::collection::vec(-4.0f32..4.0, n),
            prop::collection::vec(-4.0f32..4.0, n),
        )
    })
}

fn label_strategy() -> impl Strategy<Value = f32> {
    prop_oneof![Just(0.0f32), Just(1.0f32), 0.0f32..=1.0]
}

proptest! {
    #[test]
    fn gradients_agree_with_central_differences(
        (a, b) in pair_strategy(),
        label in label_strategy(),
        margin in 0.0f32..8.0,
        cosine in any::<bool>(),
    ) {
        let (a64, b64): (Vec<f64>, Vec<f64>) = (a.iter().map(|&x| x.into()).collect(), b.iter().map(|&x| x.into()).collect());
        let distance = if cosine {
            let ab: f64 = a64.iter().zip(&b64).map(|(x, y)| x * y).sum();
            let na = a64.iter().map(|x| x * x).sum::<f64>().sqrt();
            let nb = b64.iter().map(|x| x * x).sum::<f64>().sqrt();
            prop_assume!(na > 1e-3 && nb > 1e-3);
            let cos = ab / (na * nb);
            prop_assume!(cos.abs() < 1.0 - 1e-4); // the clamp is a kink
            1.0 - cos
        } else {
            a64.iter().zip(&b64).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt()
        };
        // D = 0 is a kink of the dissimilar term (its subgradient is tested elsewhere).
        prop_assume!(distance > 1e-3);
        let (wp, wn) = (0.5, 1.0);
        let (p, q) = (wp * f64::from(label), wn * (1.0 - f64::from(label)));
        let m = f64::from(margin);
        let mut loss = ContrastiveLoss::seed(margin);
        if cosine {
            loss = loss.with_distance(Distance::Cosine);
        }
        for backend in Backend::available() {
            let (mut ga, mut gb) = (vec![0.0; a.len()], vec![0.0; a.len()]);
            loss.with_backend(backend).pair_with_grad(&a, &b, label, &mut ga, &mut gb).unwrap();
            let scale = ga.iter().chain(&gb).fold(1.0f64, |s, &g| s.max(f64::from(g).abs()));
            for (side, grad) in [(0, &ga), (1, &gb)] {
                for i in 0..a.len() {
                    let (mut plus_a, mut plus_b) = (a64.clone(), b64.clone());
                    let (mut minus_a, mut minus_b) = (a64.clone(), b64.clone());
                    let x = if side == 0 { a64[i] } else { b64[i] };
                    let h = 1e-6 * x.abs().max(1.0);
                    if side == 0 { plus_a[i] += h; minus_a[i] -= h; } else { plus_b[i] += h; minus_b[i] -= h; }
                    let fd = (loss64(&plus_a, &plus_b, p, q, m, cosine) - loss64(&minus_a, &minus_b, p, q, m, cosine)) / (2.0 * h);
                    let got = f64::from(grad[i]);
                    prop_assert!(
                        (got - fd).abs() <= 1e-4 * scale,
                        "{backend:?} side {side} [{i}]: got {got}, finite difference {fd}"
                    );
                }
            }
        }
    }

    #[test]
    fn grad_b_is_minus_grad_a((a, b) in pair_strategy(), label in label_strategy(), margin in 0.0f32..8.0) {
        for backend in Backend::available() {
            let loss = ContrastiveLoss::new(margin).with_backend(backend);
            let (mut ga, mut gb) = (vec![0.0; a.len()], vec![0.0; a.len()]);
            loss.pair_with_grad(&a, &b, label, &mut ga, &mut gb).unwrap();
            for i in 0..a.len() {
                prop_assert_eq!(gb[i], -ga[i]);
            }
        }
    }

    #[test]
    fn swapping_a_and_b_leaves_the_loss_unchanged(
        (a, b) in pair_strategy(),
        label in label_strategy(),
        margin in 0.0f32..8.0,
        cosine in any::<bool>(),
    ) {
        for backend in Backend::available() {
            let mut loss = ContrastiveLoss::tfa(margin).with_backend(backend);
            if cosine {
                loss = loss.with_distance(Distance::Cosine);
            }
            let forward = loss.pair(&a, &b, label).unwrap();
            let swapped = loss.pair(&b, &a, label).unwrap();
            prop_assert_eq!(forward.to_bits(), swapped.to_bits());
            let dim = a.len();
            let batch = loss.batch(&[a.clone(), b.clone()].concat(), &[b.clone(), a.clone()].concat(), dim, &[label, label]).unwrap();
            // The batch runs other kernels (rows, epilogue) than the pair: equal within the
            // documented per-pair bound, (2n + 16)·u of the loss scale.
            let d = if cosine { 2.0 } else { contrastive::euclidean(&a, &b).unwrap() };
            let scale = forward.abs() + (margin + d) * (margin + d);
            let tol = (2.0 * dim as f32 + 16.0) * f32::EPSILON / 2.0 * scale;
            prop_assert!((batch - forward).abs() <= tol, "batch {batch} vs pair {forward}");
        }
    }
}
