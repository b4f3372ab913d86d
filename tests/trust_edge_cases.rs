//! The edge-case statements of docs/guarantees.md, one test each, on every available
//! backend and through every entry point they concern: NaN, infinities, zero distance,
//! zero vectors, empty inputs and overflow.

use crate::common;

use common::trust_oracle as oracle;
use contrastive::{Backend, ContrastiveLoss, Distance, Error, Reduction, seed};

fn losses(backend: Backend) -> [ContrastiveLoss; 4] {
    let base = [ContrastiveLoss::new(1.0), ContrastiveLoss::tfa(1.0)];
    [
        base[0].with_backend(backend),
        base[1].with_backend(backend),
        base[0]
            .with_distance(Distance::Cosine)
            .with_backend(backend),
        base[1]
            .with_distance(Distance::Cosine)
            .with_backend(backend),
    ]
}

#[test]
fn nan_anywhere_in_a_pair_makes_its_distances_loss_and_gradient_nan() {
    for backend in Backend::available() {
        for n in [1usize, 3, 8, 17, 64] {
            for at in [0, n / 2, n - 1] {
                let b = vec![0.5f32; n];
                let mut a = vec![0.25f32; n];
                a[at] = f32::NAN;
                assert!(backend.squared_euclidean(&a, &b).unwrap().is_nan());
                assert!(backend.euclidean(&a, &b).unwrap().is_nan());
                assert!(backend.dot(&a, &b).unwrap().is_nan());
                assert!(backend.cosine_similarity(&a, &b).unwrap().is_nan());
                for loss in losses(backend) {
                    for y in [0.0, 1.0, 0.5] {
                        let (mut ga, mut gb) = (vec![0.0; n], vec![0.0; n]);
                        let l = loss.pair_with_grad(&a, &b, y, &mut ga, &mut gb).unwrap();
                        let ctx = format!("{backend:?} {loss:?} n = {n} at {at} y = {y}");
                        assert!(l.is_nan(), "{ctx}: loss {l}");
                        assert!(ga.iter().chain(&gb).all(|g| g.is_nan()), "{ctx}: {ga:?}");
                        assert!(loss.pair(&b, &a, y).unwrap().is_nan(), "{ctx}");
                    }
                }
            }
        }
    }
}

#[test]
fn nan_stays_in_its_row_of_a_batch() {
    let dim = 5;
    let a = [[0.25f32; 5], [f32::NAN, 0.0, 0.0, 0.0, 0.0], [1.0; 5]].concat();
    let b = vec![0.5f32; 15];
    let labels = [1.0, 0.0, 0.0];
    for backend in Backend::available() {
        for loss in losses(backend) {
            let mut out = [0.0f32; 3];
            loss.batch_per_pair(&a, &b, dim, &labels, &mut out).unwrap();
            assert!(out[0].is_finite() && out[1].is_nan() && out[2].is_finite());
            let (mut ga, mut gb) = (vec![0.0; 15], vec![0.0; 15]);
            let total = loss
                .batch_with_grad(&a, &b, dim, &labels, &mut ga, &mut gb)
                .unwrap();
            assert!(
                total.is_nan(),
                "{backend:?}: the reduction contains a NaN pair"
            );
            assert!(loss.batch(&a, &b, dim, &labels).unwrap().is_nan());
            for (i, (x, y)) in ga.iter().zip(&gb).enumerate() {
                assert_eq!(
                    x.is_nan(),
                    (5..10).contains(&i),
                    "{backend:?} {loss:?} grad_a[{i}]"
                );
                assert_eq!(
                    y.is_nan(),
                    (5..10).contains(&i),
                    "{backend:?} {loss:?} grad_b[{i}]"
                );
            }
        }
    }
}

#[test]
fn infinite_similar_pair_costs_infinity_with_infinite_gradient_only_where_infinite() {
    for backend in Backend::available() {
        let a = [1.0f32, f32::INFINITY, -2.0];
        let b = [0.0f32; 3];
        assert_eq!(backend.squared_euclidean(&a, &b), Ok(f32::INFINITY));
        assert_eq!(backend.euclidean(&a, &b), Ok(f32::INFINITY));
        let loss = ContrastiveLoss::tfa(1.0).with_backend(backend);
        let (mut ga, mut gb) = ([0.0f32; 3], [0.0f32; 3]);
        let l = loss.pair_with_grad(&a, &b, 1.0, &mut ga, &mut gb).unwrap();
        assert_eq!(l, f32::INFINITY);
        assert_eq!(ga, [2.0, f32::INFINITY, -4.0], "{backend:?}"); // 2·w⁺·δ
        assert_eq!(gb, [-2.0, f32::NEG_INFINITY, 4.0], "{backend:?}");
        let s = seed::contrastive_loss_on(backend, &a, &b, &[1.0], 0.5).unwrap();
        assert_eq!(
            s,
            f32::INFINITY,
            "{backend:?}: the seed selects, it does not multiply"
        );
    }
}

#[test]
fn dissimilar_pair_beyond_the_margin_costs_exactly_zero_even_at_infinite_distance() {
    for backend in Backend::available() {
        for a in [[f32::INFINITY, 0.0], [3.0, 4.0], [f32::MAX, -f32::MAX]] {
            let b = [0.0f32, 0.0];
            let loss = ContrastiveLoss::new(1.0).with_backend(backend);
            let (mut ga, mut gb) = ([1.0f32; 2], [1.0f32; 2]);
            let l = loss.pair_with_grad(&a, &b, 0.0, &mut ga, &mut gb).unwrap();
            assert_eq!(l.to_bits(), 0.0f32.to_bits(), "{backend:?} {a:?}");
            assert!(
                ga.iter().chain(&gb).all(|&g| g == 0.0),
                "{backend:?} {a:?}: {ga:?}"
            );
        }
    }
}

#[test]
fn zero_distance_gradient_is_the_zero_subgradient_never_nan() {
    for backend in Backend::available() {
        for n in [1usize, 7, 16, 33] {
            let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.3 - 1.0).collect();
            for loss in losses(backend) {
                for y in [0.0, 1.0, 0.5] {
                    let (mut ga, mut gb) = (vec![1.0; n], vec![1.0; n]);
                    let l = loss.pair_with_grad(&a, &a, y, &mut ga, &mut gb).unwrap();
                    let ctx = format!("{backend:?} {loss:?} n = {n} y = {y}");
                    if loss.distance == Distance::Euclidean {
                        // D = 0 exactly: the gradient is the subgradient 0, the dissimilar
                        // term costs w⁻·m², the similar one 0.
                        assert!(ga.iter().chain(&gb).all(|&g| g == 0.0), "{ctx}: {ga:?}");
                        let expected = loss.negative_weight * (1.0 - y) * 1.0;
                        assert_eq!(l, expected, "{ctx}");
                    } else {
                        // The computed cosine of a with itself is 1 up to the cosine bound,
                        // so the gradient is 0 up to the gradient bound, and never NaN.
                        let t =
                            oracle::Terms::new(loss.positive_weight, loss.negative_weight, y, 1.0);
                        let r = oracle::cosine_pair(&a, &a, t);
                        if let Err(e) = r.check_grads(&ctx, &ga, &gb) {
                            panic!("{e}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn zero_vector_has_cosine_zero_and_a_zero_cosine_gradient() {
    for backend in Backend::available() {
        let zero = [0.0f32; 9];
        let b: Vec<f32> = (0..9).map(|i| i as f32 - 4.5).collect();
        assert_eq!(backend.cosine_similarity(&zero, &b), Ok(0.0));
        assert_eq!(backend.cosine_similarity(&b, &zero), Ok(0.0));
        assert_eq!(backend.cosine_similarity(&zero, &zero), Ok(0.0));
        let loss = ContrastiveLoss::new(2.0)
            .with_distance(Distance::Cosine)
            .with_backend(backend);
        for y in [0.0, 1.0, 0.5] {
            let (mut ga, mut gb) = ([1.0f32; 9], [1.0f32; 9]);
            let l = loss.pair_with_grad(&zero, &b, y, &mut ga, &mut gb).unwrap();
            // D = 1: ½·y·1 + ½·(1 − y)·(2 − 1)² = ½.
            assert_eq!(l, 0.5, "{backend:?} y = {y}");
            assert!(
                ga.iter().chain(&gb).all(|&g| g == 0.0),
                "{backend:?}: {ga:?}"
            );
        }
    }
}

#[test]
fn empty_vectors_have_distance_zero_and_dissimilar_pairs_cost_the_margin() {
    for backend in Backend::available() {
        let e: [f32; 0] = [];
        assert_eq!(backend.squared_euclidean(&e, &e), Ok(0.0));
        assert_eq!(backend.euclidean(&e, &e), Ok(0.0));
        assert_eq!(backend.dot(&e, &e), Ok(0.0));
        assert_eq!(backend.cosine_similarity(&e, &e), Ok(0.0));
        let loss = ContrastiveLoss::seed(0.5).with_backend(backend);
        let (mut ga, mut gb) = ([0.0f32; 0], [0.0f32; 0]);
        assert_eq!(loss.pair_with_grad(&e, &e, 0.0, &mut ga, &mut gb), Ok(0.25)); // w⁻·m²
        assert_eq!(loss.pair(&e, &e, 1.0), Ok(0.0));
        // Zero rows: per-pair is Ok and writes nothing, Sum is 0, Mean is an error.
        assert_eq!(loss.batch_per_pair(&e, &e, 4, &[], &mut []), Ok(()));
        assert_eq!(
            loss.batch(&e, &e, 4, &[]),
            Err(Error::Empty { argument: "labels" })
        );
        let sum = loss.with_reduction(Reduction::Sum);
        assert_eq!(sum.batch(&e, &e, 4, &[]), Ok(0.0));
        assert_eq!(
            sum.batch_with_grad(&e, &e, 4, &[], &mut [], &mut []),
            Ok(0.0)
        );
        assert_eq!(backend.squared_euclidean_rows(&e, &e, 4, &mut []), Ok(()));
        assert_eq!(
            seed::contrastive_loss_on(backend, &e, &e, &[1.0], 0.5),
            Err(Error::Empty {
                argument: "input_1"
            })
        );
    }
}

#[test]
fn a_pair_loss_beyond_f32_max_is_infinite_and_so_is_every_reduction_over_it() {
    for backend in Backend::available() {
        // D = 3e19: w⁺·D² = 9e38 > f32::MAX for TF-Addons' w⁺ = 1.
        let a = [3e19f32, 0.0, 0.0, 0.0];
        let b = [0.0f32; 4];
        let loss = ContrastiveLoss::tfa(1.0).with_backend(backend);
        assert_eq!(loss.pair(&a[..2], &b[..2], 1.0), Ok(f32::INFINITY));
        for reduction in [Reduction::Mean, Reduction::Sum] {
            let l = loss.with_reduction(reduction);
            assert_eq!(l.batch(&a, &b, 2, &[1.0, 1.0]), Ok(f32::INFINITY));
            let (mut ga, mut gb) = ([0.0f32; 4], [0.0f32; 4]);
            let total = l.batch_with_grad(&a, &b, 2, &[1.0, 1.0], &mut ga, &mut gb);
            assert_eq!(total, Ok(f32::INFINITY), "{backend:?} {reduction:?}");
            assert!(ga.iter().all(|g| g.is_finite()), "{backend:?}: {ga:?}");
        }
    }
}

#[test]
fn reductions_keep_their_bound_over_a_million_pairs() {
    // One million pairs of dim 1 at D = 0.1 (similar, TF-Addons): each costs 0.01 (as f32),
    // the sum 10⁴ exactly as the f64 sum of the f32 per-pair losses rounds.
    let n = if cfg!(miri) { 1000 } else { 1_000_000 };
    let a = vec![0.1f32; n];
    let b = vec![0.0f32; n];
    let labels = vec![1.0f32; n];
    for backend in Backend::available() {
        let per_pair = ContrastiveLoss::tfa(1.0)
            .with_backend(backend)
            .pair(&[0.1], &[0.0], 1.0)
            .unwrap();
        let exact_sum = f64::from(per_pair) * n as f64;
        let sum = ContrastiveLoss::tfa(1.0)
            .with_reduction(Reduction::Sum)
            .with_backend(backend)
            .batch(&a, &b, 1, &labels)
            .unwrap();
        assert!(
            (f64::from(sum) - exact_sum).abs() <= exact_sum * 2f64.powi(-24),
            "{backend:?}: sum {sum}, exact {exact_sum}"
        );
        let mean = ContrastiveLoss::tfa(1.0)
            .with_backend(backend)
            .batch(&a, &b, 1, &labels)
            .unwrap();
        assert_eq!(mean, per_pair, "{backend:?}");
    }
}

/// A squared distance whose every square flushes to zero in f32 (`δ² < 2⁻¹⁵⁰`) while their
/// sum is a subnormal: the plain sum is 0, the recomputed one is the f64 sum rounded once,
/// on every backend and at every length 1..=130 (every loop shape and tail of each kernel).
#[test]
fn squared_distance_whose_squares_flush_to_zero_is_recomputed() {
    let delta = 2e-23f32; // δ² ≈ 4e-46, below half the smallest subnormal (7e-46)
    let step = f64::from(f32::from_bits(1)); // 2⁻¹⁴⁹
    for backend in Backend::available() {
        for n in 1..=130usize {
            let (a, b) = (vec![delta; n], vec![0.0f32; n]);
            let want = n as f64 * f64::from(delta).powi(2);
            let got = backend.squared_euclidean(&a, &b).unwrap();
            assert!(
                (f64::from(got) - want).abs() <= step,
                "{backend:?} n = {n}: {got:e}, want {want:e}"
            );
            assert_eq!(backend.squared_euclidean(&b, &a).unwrap(), got);
        }
    }
}
