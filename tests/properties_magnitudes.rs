//! Properties across magnitudes from 1e-38 to 1e38, one scale per vector or mixed scales
//! within a vector, on every available backend (proptest):
//! - the four distances against the float64 oracle of `trust_oracle`, within the
//!   documented bound;
//! - Euclidean and cosine gradients against central finite differences of an f64 loss;
//! - `grad_b == −grad_a` exactly for the Euclidean distance;
//! - the loss is symmetric in `a` and `b` (bit for bit);
//! - an identical similar pair costs 0 with a zero gradient.
//!
//! 256 cases per property by default; CI raises it with `PROPTEST_CASES=10000` (which
//! proptest reads itself) in release mode. Under Miri each property runs 4 cases.

use crate::common;

use common::trust_oracle as oracle;
use contrastive::{Backend, ContrastiveLoss, Distance};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    // The gradient property rejects the kinks (the hinge, the cosine's clamp), often so
    // for pairs drawn close together.
    config.max_global_rejects = config.cases.saturating_mul(4);
    if cfg!(miri) {
        config.cases = config.cases.min(4);
        config.failure_persistence = None;
    }
    config
}

/// `m·10^e` with `m ∈ [1, 10)` and a random sign; `e ∈ [-38, 37]` keeps every value below
/// 1e38, so that no difference of two components overflows f32 (that regime is the
/// fuzzers' and `trust_regressions.rs`'s).
fn at_exponent(e: i32) -> impl Strategy<Value = f32> {
    (1.0f64..10.0, any::<bool>()).prop_map(move |(m, negative)| {
        let x = (m * 10f64.powi(e)) as f32;
        if negative { -x } else { x }
    })
}

/// A component at exponent `e` (±2 decades), sometimes exactly zero.
fn component_near(e: i32) -> impl Strategy<Value = f32> {
    prop_oneof![
        9 => (-2i32..=2).prop_flat_map(move |j| at_exponent((e + j).clamp(-38, 37))),
        1 => Just(0.0f32),
    ]
}

/// A vector of `n` components: all near one decade, or each at its own decade.
fn vector(n: usize) -> impl Strategy<Value = Vec<f32>> {
    prop_oneof![
        (-38i32..=37).prop_flat_map(move |e| prop::collection::vec(component_near(e), n)),
        prop::collection::vec((-38i32..=37).prop_flat_map(at_exponent), n),
    ]
}

/// Two vectors of one length from 1 to 40, at independent scales, or `b` close to `a`.
fn pair() -> impl Strategy<Value = (Vec<f32>, Vec<f32>)> {
    (1usize..=40).prop_flat_map(|n| {
        (vector(n), vector(n), 0u8..4, -38i32..=0).prop_map(|(a, b, mode, e)| {
            if mode == 0 {
                // b = a·(1 + ε): a distance many decades below the components.
                let k = 10f32.powi(e.max(-7));
                let near = a
                    .iter()
                    .zip(&b)
                    .map(|(&x, &y)| x + x * k * y.signum())
                    .collect();
                (a, near)
            } else {
                (a, b)
            }
        })
    })
}

fn label() -> impl Strategy<Value = f32> {
    prop_oneof![Just(0.0f32), Just(1.0f32), 0.0f32..=1.0]
}

fn preset(which: u8, margin: f32) -> ContrastiveLoss {
    match which {
        0 => ContrastiveLoss::new(margin),
        1 => ContrastiveLoss::tfa(margin),
        _ => ContrastiveLoss::seed(margin),
    }
}

fn reference(loss: &ContrastiveLoss, a: &[f32], b: &[f32], y: f32) -> oracle::PairRef {
    let t = oracle::Terms::new(loss.positive_weight, loss.negative_weight, y, loss.margin);
    match loss.distance {
        Distance::Euclidean => oracle::euclidean_pair(a, b, t),
        Distance::Cosine => oracle::cosine_pair(a, b, t),
        other => unimplemented!("no oracle for {other:?}"),
    }
}

/// `p·D² + q·max(0, m − D)²` in f64, for finite differences.
fn loss_of_distance(d: f64, p: f64, q: f64, m: f64) -> f64 {
    p * d * d + q * (m - d).max(0.0).powi(2)
}

/// The cosine distance of two f64 vectors.
fn cosine_distance64(a: &[f64], b: &[f64]) -> f64 {
    let ab: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    1.0 - (ab / na / nb).clamp(-1.0, 1.0)
}

/// `∂L/∂x[i]` by a central difference with step `h`, measured as the step actually taken
/// in f64 (`x[i] ± h` rounds when `x[i]` is far larger than `h`).
fn central_difference(x: &[f64], i: usize, h: f64, loss: impl Fn(&[f64]) -> f64) -> f64 {
    let (mut plus, mut minus) = (x.to_vec(), x.to_vec());
    plus[i] += h;
    minus[i] -= h;
    (loss(&plus) - loss(&minus)) / (plus[i] - minus[i])
}

fn wide(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| f64::from(v)).collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn distances_match_the_f64_oracle_at_every_magnitude((a, b) in pair()) {
        for backend in Backend::available() {
            let got = [
                backend.squared_euclidean(&a, &b).unwrap(),
                backend.euclidean(&a, &b).unwrap(),
                backend.dot(&a, &b).unwrap(),
                backend.cosine_similarity(&a, &b).unwrap(),
            ];
            if let Err(e) = oracle::check_distances(&a, &b, got) {
                prop_assert!(false, "{backend:?}: {e}");
            }
            let n = a.len();
            let mut rows = [0.0f32; 2];
            let (aa, bb) = ([a.as_slice(), b.as_slice()].concat(), [b.as_slice(), a.as_slice()].concat());
            backend.squared_euclidean_rows(&aa, &bb, n, &mut rows).unwrap();
            let s = oracle::squared_euclidean(&a, &b);
            for (r, &got) in rows.iter().enumerate() {
                if let Err(e) = oracle::check(format_args!("rows[{r}]"), got, s, oracle::squared_euclidean_bound(n, s)) {
                    prop_assert!(false, "{backend:?}: {e}");
                }
            }
        }
    }

    #[test]
    fn gradients_match_central_differences_at_every_magnitude(
        (a, b) in pair(),
        y in label(),
        which in 0u8..3,
        margin_ratio in prop_oneof![Just(0.0f64), 0.1f64..3.0],
        cosine in any::<bool>(),
    ) {
        let (a64, b64) = (wide(&a), wide(&b));
        let distance = if cosine {
            let (cos, na, nb) = oracle::cosine(&a, &b);
            prop_assume!(na > 0.0 && nb > 0.0);
            prop_assume!(cos.abs() < 1.0 - 1e-3); // the clamp is a kink
            1.0 - cos
        } else {
            oracle::squared_euclidean(&a, &b).sqrt()
        };
        prop_assume!(distance > 0.0);
        // The margin at the distance's own scale, so that the hinge is active or not.
        let margin = (margin_ratio * distance) as f32;
        prop_assume!(margin.is_finite());
        let m = f64::from(margin);
        prop_assume!(m == 0.0 || (distance - m).abs() > 1e-3 * distance.max(m)); // the hinge's kink
        let mut loss = preset(which, margin);
        if cosine {
            loss = loss.with_distance(Distance::Cosine);
        }
        let reference = reference(&loss, &a, &b, y);
        let (p, q) = (
            f64::from(loss.positive_weight) * f64::from(y),
            f64::from(loss.negative_weight) * (1.0 - f64::from(y)),
        );
        let norm = |x: &[f64]| x.iter().map(|v| v * v).sum::<f64>().sqrt();
        // The Euclidean loss depends on δ = a − b only: differentiate in δ (∂/∂a = ∂/∂δ,
        // ∂/∂b = −∂/∂δ), so that a step far below the components is not lost in `a ± h`.
        let delta: Vec<f64> = a64.iter().zip(&b64).map(|(x, y)| x - y).collect();
        let euclidean = |d: &[f64]| loss_of_distance(norm(d), p, q, m);
        for backend in Backend::available() {
            let (mut ga, mut gb) = (vec![0.0f32; a.len()], vec![0.0f32; a.len()]);
            loss.with_backend(backend).pair_with_grad(&a, &b, y, &mut ga, &mut gb).unwrap();
            for (side, grad, scale) in [(0, &ga, reference.grad_scale_a), (1, &gb, reference.grad_scale_b)] {
                let tol = 1e-6 * scale + oracle::pair_factor(a.len()) * scale + oracle::SUBNORMAL_SLACK;
                for (i, &g) in grad.iter().enumerate() {
                    let fd = if cosine {
                        // A step relative to the norm of the vector it perturbs.
                        if side == 0 {
                            central_difference(&a64, i, 1e-5 * norm(&a64), |x| {
                                loss_of_distance(cosine_distance64(x, &b64), p, q, m)
                            })
                        } else {
                            central_difference(&b64, i, 1e-5 * norm(&b64), |x| {
                                loss_of_distance(cosine_distance64(&a64, x), p, q, m)
                            })
                        }
                    } else {
                        let d_delta = central_difference(&delta, i, 1e-5 * distance, euclidean);
                        if side == 0 { d_delta } else { -d_delta }
                    };
                    // `agrees` also lets a gradient beyond f32::MAX be ±∞.
                    let got = f64::from(g);
                    prop_assert!(
                        oracle::agrees(g, fd, tol),
                        "{backend:?} side {side} [{i}]: got {got:e}, finite difference {fd:e}, tolerance {tol:e}"
                    );
                }
            }
        }
    }

    #[test]
    fn grad_b_is_exactly_minus_grad_a_at_every_magnitude(
        (a, b) in pair(),
        y in label(),
        which in 0u8..3,
        margin in prop_oneof![Just(0.0f32), Just(1.0f32), (-38i32..=37).prop_flat_map(at_exponent).prop_map(f32::abs)],
    ) {
        for backend in Backend::available() {
            let loss = preset(which, margin).with_backend(backend);
            let (mut ga, mut gb) = (vec![0.0f32; a.len()], vec![0.0f32; a.len()]);
            loss.pair_with_grad(&a, &b, y, &mut ga, &mut gb).unwrap();
            for (i, (x, z)) in ga.iter().zip(&gb).enumerate() {
                prop_assert!(
                    *z == -*x || (x.is_nan() && z.is_nan()),
                    "{backend:?} [{i}]: grad_a {x:e}, grad_b {z:e}"
                );
            }
        }
    }

    #[test]
    fn loss_is_symmetric_in_a_and_b_at_every_magnitude(
        (a, b) in pair(),
        y in label(),
        which in 0u8..3,
        margin in prop_oneof![Just(0.0f32), Just(1.0f32), (-38i32..=37).prop_flat_map(at_exponent).prop_map(f32::abs)],
        cosine in any::<bool>(),
    ) {
        for backend in Backend::available() {
            let mut loss = preset(which, margin).with_backend(backend);
            if cosine {
                loss = loss.with_distance(Distance::Cosine);
            }
            let forward = loss.pair(&a, &b, y).unwrap();
            let swapped = loss.pair(&b, &a, y).unwrap();
            prop_assert!(
                forward.to_bits() == swapped.to_bits() || (forward.is_nan() && swapped.is_nan()),
                "{backend:?}: L(a, b) = {forward:e}, L(b, a) = {swapped:e}"
            );
        }
    }

    #[test]
    fn identical_similar_pair_costs_zero_at_every_magnitude(
        a in (1usize..=40).prop_flat_map(vector),
        which in 0u8..3,
        margin in prop_oneof![Just(0.0f32), Just(1.0f32), (-38i32..=37).prop_flat_map(at_exponent).prop_map(f32::abs)],
    ) {
        let n = a.len();
        for backend in Backend::available() {
            let loss = preset(which, margin).with_backend(backend);
            let (mut ga, mut gb) = (vec![1.0f32; n], vec![1.0f32; n]);
            let l = loss.pair_with_grad(&a, &a, 1.0, &mut ga, &mut gb).unwrap();
            prop_assert_eq!(l, 0.0, "{:?}: Euclidean loss", backend);
            prop_assert!(ga.iter().chain(&gb).all(|&g| g == 0.0), "{backend:?}: gradient {ga:?}");
            // Cosine: cos(a, a) is 1 up to the cosine bound, so D is 0 up to that bound
            // (except for a zero vector, whose cosine is 0 by definition).
            if a.iter().all(|&x| x == 0.0) {
                continue;
            }
            let cosine = loss.with_distance(Distance::Cosine);
            let l = f64::from(cosine.pair(&a, &a, 1.0).unwrap());
            let d = oracle::cosine_bound(n);
            prop_assert!(
                l <= f64::from(cosine.positive_weight) * d * d,
                "{backend:?}: cosine loss {l:e}"
            );
        }
    }
}
