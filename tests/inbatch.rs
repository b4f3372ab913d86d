//! The in-batch and cross-batch contrastive losses against the float64 oracle of
//! tests/common/inbatch_oracle.rs: every backend over batch sizes 1 to 70 and odd row
//! lengths 1 to 129 (strided, so that a debug run stays a few seconds), from misaligned
//! starts; near-duplicate rows and rows offset by 1e3; extreme magnitudes; every bad input
//! and every empty case; gradients against float64 central differences (proptest).

use crate::common;

use common::inbatch_cases::{configs, data, rtol};
use common::inbatch_loss::loss_of;
use common::inbatch_oracle::{self as oracle, Dist, Red};
use common::sweep::{batch_shapes, placed};
use common::{Rng, assert_close};
use contrastive::{Backend, ContrastiveLoss, Distance, Error, Hinge, Reduction};
use proptest::prelude::*;

fn check_grad(what: &str, got: &[f32], want: &[f64], scale: &[f64], rtol: f64) {
    for (k, ((&g, &w), &s)) in got.iter().zip(want).zip(scale).enumerate() {
        assert_close(&format!("{what}[{k}]"), g, w, rtol, s + w.abs());
    }
}

#[test]
fn in_batch_matches_the_oracle_on_every_backend() {
    let mut rng = Rng(1);
    for (case, (n, dim)) in batch_shapes().into_iter().enumerate() {
        let at = 1 + case % 3;
        let buf = placed(&data(&mut rng, n * dim), at);
        let x = &buf[at..];
        let classes: Vec<u32> = (0..n).map(|_| rng.below(3) as u32).collect();
        for (c, o) in configs(dim).iter().enumerate() {
            // One configuration per shape for the large ones (the oracle is N²·d).
            if n * n * dim > 20_000 && c != case % 4 {
                continue;
            }
            let out = oracle::evaluate(o, x, x, dim, &oracle::within_pairs(&classes), true);
            if o.red == Red::Mean && n < 2 {
                continue;
            }
            for backend in Backend::available() {
                let loss = loss_of(o).with_backend(backend);
                let what = format!("N={n} d={dim} config {c} {backend:?}");
                let mut scratch = vec![f32::NAN; loss.scratch_len(n, dim)];
                let mut grad = vec![f32::NAN; x.len()];
                let got = loss
                    .in_batch_with_grad(x, dim, &classes, &mut grad, &mut scratch)
                    .unwrap();
                assert_close(&what, got, out.loss, rtol(dim), out.loss_scale);
                check_grad(&what, &grad, &out.gx, &out.gx_scale, rtol(dim));
                let forward = loss.in_batch(x, dim, &classes, &mut scratch).unwrap();
                assert_eq!(
                    forward.to_bits(),
                    got.to_bits(),
                    "{what}: forward vs with_grad"
                );
            }
        }
    }
}

#[test]
fn cross_batch_matches_the_oracle_on_every_backend() {
    let mut rng = Rng(2);
    let shapes = batch_shapes();
    for (case, (n, dim)) in shapes.iter().copied().enumerate() {
        let m = shapes[(case + 5) % shapes.len()].0;
        let (ax, ay) = (case % 4, 1 + case % 5);
        let xb = placed(&data(&mut rng, n * dim), ax);
        let yb = placed(&data(&mut rng, m * dim), ay);
        let (x, y) = (&xb[ax..], &yb[ay..]);
        let xc: Vec<u32> = (0..n).map(|_| rng.below(3) as u32).collect();
        let yc: Vec<u32> = (0..m).map(|_| rng.below(3) as u32).collect();
        for (c, o) in configs(dim).iter().enumerate() {
            if n * m * dim > 20_000 && c != case % 4 {
                continue;
            }
            let out = oracle::evaluate(o, x, y, dim, &oracle::across_pairs(&xc, &yc), false);
            for backend in Backend::available() {
                let loss = loss_of(o).with_backend(backend);
                let what = format!("N={n} M={m} d={dim} config {c} {backend:?}");
                let mut scratch = vec![f32::NAN; loss.scratch_len(n + m, dim)];
                let (mut gx, mut gy) = (vec![f32::NAN; x.len()], vec![f32::NAN; y.len()]);
                let got = loss
                    .cross_batch_with_grad(x, y, dim, &xc, &yc, &mut gx, &mut gy, &mut scratch)
                    .unwrap();
                assert_close(&what, got, out.loss, rtol(dim), out.loss_scale);
                check_grad(&format!("{what} x"), &gx, &out.gx, &out.gx_scale, rtol(dim));
                check_grad(&format!("{what} y"), &gy, &out.gy, &out.gy_scale, rtol(dim));
            }
        }
    }
}

/// `Σ` over positive ordered pairs of the squared distance: the sum of every pair's `s`
/// (a linear hinge at `m₊ = 0`, no negative weight), to check distances through the
/// public API.
fn sum_of_squares() -> ContrastiveLoss {
    ContrastiveLoss::new(0.0)
        .with_weights(1.0, 0.0)
        .with_hinge(Hinge::Linear)
        .with_distance(Distance::SquaredEuclidean)
        .with_reduction(Reduction::Sum)
}

/// Near-duplicate unit rows (ε = 1e-5) and rows offset by 1e3: the Gram form loses every
/// digit here (772 % error in D, a diagonal of 112); the direct form keeps the squared
/// distance bound `(d + 4)·u·Σ terms`, and a row against itself is exactly 0.
#[test]
fn near_duplicates_and_offset_rows_keep_the_distance_bound() {
    let (n, dim) = (24, 33);
    let mut rng = Rng(3);
    let base: Vec<f32> = {
        let v = data(&mut rng, dim);
        let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
        v.iter().map(|a| a / norm).collect()
    };
    let near: Vec<f32> = (0..n)
        .flat_map(|_| {
            base.iter()
                .map(|&b| b + 1e-5 * (2.0 * rng.unit() - 1.0))
                .collect::<Vec<_>>()
        })
        .collect();
    let offset: Vec<f32> = (0..n * dim)
        .map(|_| 1e3 + (2.0 * rng.unit() - 1.0))
        .collect();
    let classes = vec![0u32; n];
    for x in [&near, &offset] {
        let mut want = 0.0f64;
        let mut scale = 0.0f64;
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    let s: f64 = (0..dim)
                        .map(|k| (x[i * dim + k] as f64 - x[j * dim + k] as f64).powi(2))
                        .sum();
                    want += s;
                    scale += s;
                }
            }
        }
        for backend in Backend::available() {
            let loss = sum_of_squares().with_backend(backend);
            let mut scratch = vec![0.0; loss.scratch_len(n, dim)];
            let got = loss.in_batch(x, dim, &classes, &mut scratch).unwrap();
            assert_close(
                &format!("{backend:?}"),
                got,
                want,
                (dim as f64 + 8.0) * common::U,
                scale,
            );
            // A row against itself (cross batch of a batch with itself): exactly 0.
            let linear = ContrastiveLoss::new(0.0)
                .with_weights(1.0, 0.0)
                .with_hinge(Hinge::Linear)
                .with_reduction(Reduction::Sum)
                .with_backend(backend);
            let mut scratch = vec![0.0; linear.scratch_len(2, dim)];
            for i in 0..n {
                let row = &x[i * dim..(i + 1) * dim];
                let got = linear
                    .cross_batch(row, row, dim, &[1], &[1], &mut scratch)
                    .unwrap();
                assert_eq!(got, 0.0, "{backend:?}: row {i} against itself");
            }
        }
    }
}

/// Components near 1e-30 (squares underflow) and 1e19 (squares overflow): the distances,
/// the loss and the gradient are those of float64.
#[test]
fn extreme_magnitudes_give_the_float64_answer() {
    let dim = 4;
    let mut rng = Rng(4);
    for scale in [1e-30f32, 1e19] {
        let x: Vec<f32> = (0..6 * dim)
            .map(|_| scale * (2.0 * rng.unit() - 1.0))
            .collect();
        let classes = [0, 0, 1, 1, 2, 0];
        let spread = 2.0 * f64::from(scale);
        for o in [
            oracle::Loss {
                dist: Dist::Euclidean,
                normalize: false,
                m_pos: 0.0,
                m_neg: spread,
                power: 1,
                w_pos: 1.0,
                w_neg: 1.0,
                red: Red::Sum,
            },
            oracle::Loss {
                dist: Dist::Euclidean,
                normalize: true,
                m_pos: 0.0,
                m_neg: 1.0,
                power: 1,
                w_pos: 1.0,
                w_neg: 1.0,
                red: Red::AvgNonZero,
            },
            oracle::Loss {
                dist: Dist::Cosine,
                normalize: false,
                m_pos: 0.0,
                m_neg: 1.0,
                power: 2,
                w_pos: 0.5,
                w_neg: 0.5,
                red: Red::Mean,
            },
        ] {
            let out = oracle::evaluate(&o, &x, &x, dim, &oracle::within_pairs(&classes), true);
            for backend in Backend::available() {
                let loss = loss_of(&o).with_backend(backend);
                let what = format!(
                    "{scale:e} {:?} normalize {} {backend:?}",
                    o.dist, o.normalize
                );
                let mut scratch = vec![0.0; loss.scratch_len(6, dim)];
                let mut grad = vec![0.0; x.len()];
                let got = loss
                    .in_batch_with_grad(&x, dim, &classes, &mut grad, &mut scratch)
                    .unwrap();
                assert_close(&what, got, out.loss, rtol(dim), out.loss_scale);
                check_grad(&what, &grad, &out.gx, &out.gx_scale, rtol(dim));
            }
        }
    }
}

#[test]
fn nan_in_gives_nan_out() {
    let dim = 3;
    let mut x = vec![0.5f32; 5 * dim];
    for (k, v) in x.iter_mut().enumerate() {
        *v = (k as f32 * 0.37).sin();
    }
    x[4] = f32::NAN;
    for backend in Backend::available() {
        for loss in [
            ContrastiveLoss::new(1.0),
            ContrastiveLoss::pml(),
            ContrastiveLoss::sentence_transformers(),
        ] {
            let loss = loss.with_backend(backend);
            let mut scratch = vec![0.0; loss.scratch_len(5, dim)];
            let mut grad = vec![0.0; x.len()];
            let l = loss
                .in_batch_with_grad(&x, dim, &[0, 1, 0, 1, 0], &mut grad, &mut scratch)
                .unwrap();
            assert!(l.is_nan(), "{backend:?} {loss:?}");
            assert!(
                grad[dim..2 * dim].iter().all(|g| g.is_nan()),
                "{backend:?} {loss:?}: the NaN row's gradient"
            );
        }
    }
}

#[test]
fn every_bad_input_is_its_error() {
    let loss = ContrastiveLoss::pml();
    let x = [0.0f32; 6];
    let mut scratch = vec![0.0; loss.scratch_len(3, 2)];
    let mut grad = [0.0f32; 6];
    assert_eq!(
        loss.in_batch(&x, 0, &[0, 0, 0], &mut scratch),
        Err(Error::ZeroDimension)
    );
    assert_eq!(
        loss.in_batch(&x, 4, &[0], &mut scratch),
        Err(Error::NotMultipleOfDim {
            argument: "x",
            len: 6,
            dim: 4
        })
    );
    assert_eq!(
        loss.in_batch(&x, 2, &[0, 0], &mut scratch),
        Err(Error::LengthMismatch {
            argument: "classes",
            expected: 3,
            found: 2
        })
    );
    assert_eq!(
        loss.in_batch_with_grad(&x, 2, &[0, 0, 0], &mut grad[..4], &mut scratch),
        Err(Error::LengthMismatch {
            argument: "grad",
            expected: 6,
            found: 4
        })
    );
    let needed = loss.min_scratch_len(3, 2);
    assert_eq!(
        loss.in_batch(&x, 2, &[0, 0, 0], &mut scratch[..needed - 1]),
        Err(Error::ScratchTooShort {
            needed,
            found: needed - 1
        })
    );
    for bad in [-1.0, f32::NAN, f32::INFINITY] {
        assert!(
            matches!(
                loss.with_margins(bad, 1.0)
                    .in_batch(&x, 2, &[0, 0, 0], &mut scratch),
                Err(Error::InvalidMargin { .. })
            ),
            "pos margin {bad}"
        );
        assert!(
            matches!(
                loss.with_margins(0.0, bad)
                    .in_batch(&x, 2, &[0, 0, 0], &mut scratch),
                Err(Error::InvalidMargin { .. })
            ),
            "neg margin {bad}"
        );
        assert!(matches!(
            loss.with_weights(bad, 1.0)
                .in_batch(&x, 2, &[0, 0, 0], &mut scratch),
            Err(Error::InvalidWeight {
                argument: "positive_weight",
                ..
            })
        ));
        assert!(matches!(
            loss.with_weights(1.0, bad)
                .in_batch(&x, 2, &[0, 0, 0], &mut scratch),
            Err(Error::InvalidWeight {
                argument: "negative_weight",
                ..
            })
        ));
    }
    // Cross batch: each argument named.
    let y = [0.0f32; 4];
    let mut scratch = vec![0.0; loss.scratch_len(5, 2)];
    let (mut gx, mut gy) = ([0.0f32; 6], [0.0f32; 4]);
    assert_eq!(
        loss.cross_batch(&x, &y[..3], 2, &[0; 3], &[0; 2], &mut scratch),
        Err(Error::NotMultipleOfDim {
            argument: "y",
            len: 3,
            dim: 2
        })
    );
    assert_eq!(
        loss.cross_batch(&x, &y, 2, &[0; 2], &[0; 2], &mut scratch),
        Err(Error::LengthMismatch {
            argument: "x_classes",
            expected: 3,
            found: 2
        })
    );
    assert_eq!(
        loss.cross_batch(&x, &y, 2, &[0; 3], &[0; 3], &mut scratch),
        Err(Error::LengthMismatch {
            argument: "y_classes",
            expected: 2,
            found: 3
        })
    );
    assert_eq!(
        loss.cross_batch_with_grad(
            &x,
            &y,
            2,
            &[0; 3],
            &[0; 2],
            &mut gx[..5],
            &mut gy,
            &mut scratch
        ),
        Err(Error::LengthMismatch {
            argument: "grad_x",
            expected: 6,
            found: 5
        })
    );
    assert_eq!(
        loss.cross_batch_with_grad(
            &x,
            &y,
            2,
            &[0; 3],
            &[0; 2],
            &mut gx,
            &mut gy[..2],
            &mut scratch
        ),
        Err(Error::LengthMismatch {
            argument: "grad_y",
            expected: 4,
            found: 2
        })
    );
    // AvgNonZero on explicit pairs needs hard labels.
    assert_eq!(
        loss.batch(&x, &x, 2, &[1.0, 0.5, 0.0]),
        Err(Error::InvalidLabel {
            index: 1,
            label: 0.5
        })
    );
}

/// Fewer than two rows (no pair): `Mean` is an error, `Sum` and `AvgNonZero` are 0 with
/// a zero gradient. No positive or no negative pair: that side is 0.
#[test]
fn every_empty_case_gives_its_documented_answer() {
    let dim = 2;
    for n in [0usize, 1] {
        let x = vec![0.5f32; n * dim];
        let classes = vec![7u32; n];
        for reduction in [Reduction::Sum, Reduction::AvgNonZero, Reduction::Mean] {
            let loss = ContrastiveLoss::pml().with_reduction(reduction);
            let mut scratch = vec![0.0; loss.scratch_len(n, dim)];
            let mut grad = vec![f32::NAN; x.len()];
            let got = loss.in_batch_with_grad(&x, dim, &classes, &mut grad, &mut scratch);
            if reduction == Reduction::Mean {
                assert_eq!(got, Err(Error::Empty { argument: "x" }));
            } else {
                assert_eq!(got, Ok(0.0));
                assert!(grad.iter().all(|&g| g == 0.0));
            }
            let got = loss.cross_batch(
                &x,
                &[0.5, 0.5],
                dim,
                &classes,
                &[7],
                &mut vec![0.0; loss.scratch_len(n + 1, dim)],
            );
            if n == 0 && reduction == Reduction::Mean {
                assert_eq!(got, Err(Error::Empty { argument: "x" }));
            } else if n == 0 {
                assert_eq!(got, Ok(0.0));
            }
        }
    }
    // No positive pair (every class distinct): only the negative mean; no negative pair
    // (one class): only the positive mean. Each checked against the oracle.
    let mut rng = Rng(5);
    let x = data(&mut rng, 5 * 3);
    for classes in [[0u32, 1, 2, 3, 4], [9, 9, 9, 9, 9]] {
        let o = oracle::Loss {
            dist: Dist::Euclidean,
            normalize: true,
            m_pos: 0.0,
            m_neg: 1.5,
            power: 1,
            w_pos: 1.0,
            w_neg: 1.0,
            red: Red::AvgNonZero,
        };
        let out = oracle::evaluate(&o, &x, &x, 3, &oracle::within_pairs(&classes), true);
        let loss = loss_of(&o);
        let got = loss
            .in_batch(&x, 3, &classes, &mut vec![0.0; loss.scratch_len(5, 3)])
            .unwrap();
        assert_close(
            &format!("{classes:?}"),
            got,
            out.loss,
            rtol(3),
            out.loss_scale,
        );
        assert!(out.n_pos_nonzero == 0 || out.n_neg_nonzero == 0);
    }
    // Nothing active (all negatives beyond the margin): AvgNonZero gives 0, not NaN.
    let far = [0.0f32, 0.0, 10.0, 0.0, 0.0, 10.0];
    let loss = ContrastiveLoss::new(1.0)
        .with_hinge(Hinge::Linear)
        .with_reduction(Reduction::AvgNonZero);
    let mut grad = [f32::NAN; 6];
    assert_eq!(
        loss.in_batch_with_grad(
            &far,
            2,
            &[0, 1, 2],
            &mut grad,
            &mut vec![0.0; loss.scratch_len(3, 2)]
        ),
        Ok(0.0)
    );
    assert_eq!(grad, [0.0; 6]);
}

/// Today's presets give the same results on explicit pairs as before (they keep their
/// path), and the general path with the same arithmetic meaning agrees within the bound.
#[test]
fn presets_are_unchanged_and_the_general_form_agrees() {
    let mut rng = Rng(6);
    let (n, dim) = (9, 7);
    let (a, b) = (data(&mut rng, n * dim), data(&mut rng, n * dim));
    let labels: Vec<f32> = (0..n).map(|i| (i % 2) as f32).collect();
    for loss in [
        ContrastiveLoss::new(1.5),
        ContrastiveLoss::tfa(1.0),
        ContrastiveLoss::seed(0.5),
        ContrastiveLoss::sentence_transformers(),
    ] {
        let classic = loss.batch(&a, &b, dim, &labels).unwrap();
        // A positive margin of the smallest subnormal takes the general path with the
        // same values to within one rounding per term.
        let general = loss
            .with_margins(f32::from_bits(1), loss.margin)
            .batch(&a, &b, dim, &labels)
            .unwrap();
        assert!(
            (classic - general).abs() <= 1e-5 * classic.abs(),
            "{loss:?}: {classic} vs {general}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The gradient of the in-batch loss is the float64 central difference of the
    /// oracle's loss, wherever no pair sits within 1e-3 of a kink.
    #[test]
    fn in_batch_gradients_are_central_differences(
        seed in any::<u64>(),
        n in 2usize..7,
        dim in 1usize..6,
        config in 0usize..4,
        cross in any::<bool>(),
    ) {
        let mut rng = Rng(seed);
        let x = data(&mut rng, n * dim);
        let y = data(&mut rng, (n + 1) * dim);
        let xc: Vec<u32> = (0..n).map(|_| rng.below(2) as u32).collect();
        let yc: Vec<u32> = (0..n + 1).map(|_| rng.below(2) as u32).collect();
        let mut o = configs(dim)[config];
        if o.red == Red::AvgNonZero {
            // The counts are piecewise constant: use a sum so that the difference is
            // the derivative (AvgNonZero's gradient is the sum's times 1/count).
            o.red = Red::Sum;
        }
        let pairs = if cross { oracle::across_pairs(&xc, &yc) } else { oracle::within_pairs(&xc) };
        let yy: &[f32] = if cross { &y } else { &x };
        let out = oracle::evaluate(&o, &x, yy, dim, &pairs, !cross);
        prop_assume!(out.kink_gap > 1e-3);
        let loss = loss_of(&o);
        let mut scratch = vec![0.0; loss.scratch_len(2 * n + 1, dim)];
        let mut gx = vec![0.0f32; x.len()];
        let mut gy = vec![0.0f32; y.len()];
        if cross {
            loss.cross_batch_with_grad(&x, &y, dim, &xc, &yc, &mut gx, &mut gy, &mut scratch).unwrap();
        } else {
            loss.in_batch_with_grad(&x, dim, &xc, &mut gx, &mut scratch).unwrap();
        }
        // Central differences of the f64 loss with respect to each input component.
        let h = 1e-4;
        let f64_loss = |xs: &[f64], ys: &[f64]| -> f64 {
            evaluate_f64(&o, xs, if cross { ys } else { xs }, dim, &pairs)
        };
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let y64: Vec<f64> = y.iter().map(|&v| v as f64).collect();
        for k in 0..x.len() {
            let (mut up, mut down) = (x64.clone(), x64.clone());
            up[k] += h;
            down[k] -= h;
            let fd = (f64_loss(&up, &y64) - f64_loss(&down, &y64)) / (2.0 * h);
            prop_assert!((gx[k] as f64 - fd).abs() <= 1e-3 * (1.0 + fd.abs()), "x[{}]: {} vs {}", k, gx[k], fd);
        }
        if cross {
            for k in 0..y.len() {
                let (mut up, mut down) = (y64.clone(), y64.clone());
                up[k] += h;
                down[k] -= h;
                let fd = (f64_loss(&x64, &up) - f64_loss(&x64, &down)) / (2.0 * h);
                prop_assert!((gy[k] as f64 - fd).abs() <= 1e-3 * (1.0 + fd.abs()), "y[{}]: {} vs {}", k, gy[k], fd);
            }
        }
    }
}

/// The oracle's loss on float64 rows (for finite differences finer than f32).
fn evaluate_f64(
    o: &oracle::Loss,
    x: &[f64],
    y: &[f64],
    dim: usize,
    pairs: &[(usize, usize, f64)],
) -> f64 {
    let norm = |r: &[f64]| r.iter().map(|v| v * v).sum::<f64>().sqrt();
    let unit = |r: &[f64]| -> Vec<f64> {
        let n = norm(r);
        r.iter()
            .map(|v| if n == 0.0 { 0.0 } else { v / n })
            .collect()
    };
    let mut total = 0.0;
    for &(i, j, label) in pairs {
        let (a, b) = (&x[i * dim..(i + 1) * dim], &y[j * dim..(j + 1) * dim]);
        let normalize = o.normalize || o.dist == Dist::Cosine;
        let (a, b) = if normalize {
            (unit(a), unit(b))
        } else {
            (a.to_vec(), b.to_vec())
        };
        let s: f64 = a.iter().zip(&b).map(|(p, q)| (p - q) * (p - q)).sum();
        let d = match o.dist {
            Dist::Euclidean => s.sqrt(),
            Dist::Squared => s,
            Dist::Cosine => 1.0 - a.iter().zip(&b).map(|(p, q)| p * q).sum::<f64>(),
        };
        let hinge = |w: f64, t: f64| {
            if w == 0.0 || t <= 0.0 {
                0.0
            } else if o.power == 2 {
                w * t * t
            } else {
                w * t
            }
        };
        total += label * hinge(o.w_pos, d - o.m_pos) + (1.0 - label) * hinge(o.w_neg, o.m_neg - d);
    }
    match o.red {
        Red::Mean => total / pairs.len() as f64,
        _ => total,
    }
}

/// Hard-pair mining in a batch is sentence-transformers' `OnlineContrastiveLoss` over the
/// batch's ordered pairs as explicit pairs: the same thresholds, selections, loss and
/// gradient (the explicit pairs' gradients gathered back to the rows).
#[test]
fn in_batch_mining_is_online_contrastive_over_the_ordered_pairs() {
    let mut rng = Rng(7);
    let mut checked = 0;
    for (n, dim, cosine, margin) in [(9, 5, true, 0.5), (12, 3, false, 1.5), (7, 17, true, 0.8)] {
        let x = data(&mut rng, n * dim);
        let classes: Vec<u32> = (0..n).map(|_| rng.below(3) as u32).collect();
        let (mut x1, mut x2, mut y) = (Vec::new(), Vec::new(), Vec::new());
        let mut pairs = Vec::new();
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    x1.extend_from_slice(&x[i * dim..(i + 1) * dim]);
                    x2.extend_from_slice(&x[j * dim..(j + 1) * dim]);
                    y.push(f64::from(u8::from(classes[i] == classes[j])));
                    pairs.push((i, j));
                }
            }
        }
        let out = oracle::online(&x1, &x2, dim, &y, margin, cosine);
        if out.kink_gap < 1e-4 {
            continue;
        }
        checked += 1;
        let (mut want, mut scale) = (vec![0.0f64; n * dim], vec![0.0f64; n * dim]);
        for (p, &(i, j)) in pairs.iter().enumerate() {
            for k in 0..dim {
                want[i * dim + k] += out.gx[p * dim + k];
                want[j * dim + k] += out.gy[p * dim + k];
                scale[i * dim + k] += out.gx_scale[p * dim + k];
                scale[j * dim + k] += out.gy_scale[p * dim + k];
            }
        }
        let distance = if cosine {
            Distance::Cosine
        } else {
            Distance::Euclidean
        };
        for backend in Backend::available() {
            let loss = ContrastiveLoss::sentence_transformers_online()
                .with_margins(0.0, margin as f32)
                .with_distance(distance)
                .with_backend(backend);
            let what = format!("N={n} d={dim} cosine {cosine} {backend:?}");
            let mut scratch = vec![0.0; loss.scratch_len(n, dim)];
            let mut grad = vec![f32::NAN; x.len()];
            let got = loss
                .in_batch_with_grad(&x, dim, &classes, &mut grad, &mut scratch)
                .unwrap();
            assert_close(&what, got, out.loss, rtol(dim), out.loss_scale);
            check_grad(&what, &grad, &want, &scale, rtol(dim));
        }
    }
    assert!(checked >= 2, "only {checked} batches away from a kink");
}

/// The least scratch (4 × 4 tiles) gives what the full scratch gives, within the bound:
/// the microcontroller case of 32 rows of 16 floats in 128 bytes (512 with normalisation).
#[test]
fn least_scratch_gives_the_same_answer() {
    let mut rng = Rng(8);
    let (n, dim) = (32, 16);
    let x = data(&mut rng, n * dim);
    let classes: Vec<u32> = (0..n).map(|_| rng.below(4) as u32).collect();
    for loss in [
        ContrastiveLoss::new(2.0),
        ContrastiveLoss::pml(),
        ContrastiveLoss::sentence_transformers(),
    ] {
        assert!(loss.min_scratch_len(n, dim) * 4 <= 1024, "{loss:?}");
        for backend in Backend::available() {
            let loss = loss.with_backend(backend);
            let (mut g_full, mut g_least) = (vec![0.0; x.len()], vec![0.0; x.len()]);
            let full = loss
                .in_batch_with_grad(
                    &x,
                    dim,
                    &classes,
                    &mut g_full,
                    &mut vec![0.0; loss.scratch_len(n, dim)],
                )
                .unwrap();
            let least = loss
                .in_batch_with_grad(
                    &x,
                    dim,
                    &classes,
                    &mut g_least,
                    &mut vec![0.0; loss.min_scratch_len(n, dim)],
                )
                .unwrap();
            assert!(
                (full - least).abs() <= 1e-5 * full.abs(),
                "{loss:?}: {full} vs {least}"
            );
            for (a, b) in g_full.iter().zip(&g_least) {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + a.abs()),
                    "{loss:?}: {a} vs {b}"
                );
            }
        }
    }
}
