//! The explicit-pair API's loss from caller-computed distances and its weight per pair:
//! the same loss as from the rows, a derivative that is the finite difference, weights
//! that scale (and a weight of 0 that drops the pair), and their errors.

use crate::common;

use common::{Rng, assert_close, pair_rtol};
use contrastive::{ContrastiveLoss, Distance, Error, Hinge, Mining, Reduction, euclidean};

fn rows(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| 2.0 * rng.unit() - 1.0).collect()
}

fn losses() -> Vec<ContrastiveLoss> {
    vec![
        ContrastiveLoss::tfa(2.0),
        ContrastiveLoss::new(1.5).with_reduction(Reduction::Sum),
        ContrastiveLoss::new(2.5)
            .with_margins(0.5, 2.5)
            .with_hinge(Hinge::Linear)
            .with_reduction(Reduction::AvgNonZero),
        ContrastiveLoss::tfa(2.0)
            .with_mining(Mining::HardPairs)
            .with_reduction(Reduction::Sum),
    ]
}

#[test]
fn distances_give_the_loss_of_the_rows() {
    let mut rng = Rng(11);
    let (n, dim) = (13, 6);
    let (a, b) = (rows(&mut rng, n * dim), rows(&mut rng, n * dim));
    let labels: Vec<f32> = (0..n).map(|i| (i % 3 == 0) as u8 as f32).collect();
    let d: Vec<f32> = (0..n)
        .map(|i| euclidean(&a[i * dim..][..dim], &b[i * dim..][..dim]).unwrap())
        .collect();
    for loss in losses() {
        let from_rows = loss.batch(&a, &b, dim, &labels).unwrap();
        let from_d = loss.from_distances(&d, &labels, None, None).unwrap();
        assert_close(
            &format!("{loss:?}"),
            from_d,
            f64::from(from_rows),
            4.0 * pair_rtol(dim),
            f64::from(from_rows.abs()) + 1.0,
        );
        // Weights of 1 change nothing; of 2, double; a weight of 0 drops the pair.
        let ones = vec![1.0; n];
        let twos = vec![2.0; n];
        assert_eq!(
            loss.from_distances(&d, &labels, Some(&ones), None).unwrap(),
            from_d
        );
        if loss.reduction != Reduction::AvgNonZero {
            let doubled = loss.from_distances(&d, &labels, Some(&twos), None).unwrap();
            assert!(
                (doubled - 2.0 * from_d).abs() <= 1e-6 * from_d.abs(),
                "{loss:?}"
            );
            let weighted = loss
                .batch_weighted(&a, &b, dim, &labels, &twos, None)
                .unwrap();
            assert!(
                (weighted - 2.0 * from_rows).abs() <= 1e-5 * from_rows.abs(),
                "{loss:?}: {weighted} vs {from_rows}"
            );
        }
    }
    // A weight of 0 drops its pair (a sum without mining).
    let loss = ContrastiveLoss::tfa(2.0).with_reduction(Reduction::Sum);
    let mut w = vec![1.0; n];
    w[4] = 0.0;
    let mut d_nan = d.clone();
    d_nan[4] = f32::NAN; // not evaluated
    let dropped = loss
        .from_distances(&d_nan, &labels, Some(&w), None)
        .unwrap();
    let mut kept_d = d.clone();
    kept_d.remove(4);
    let mut kept_labels = labels.clone();
    kept_labels.remove(4);
    assert_eq!(
        dropped,
        loss.from_distances(&kept_d, &kept_labels, None, None)
            .unwrap()
    );
}

#[test]
fn distance_gradients_are_finite_differences() {
    let mut rng = Rng(12);
    let n = 9;
    let d: Vec<f32> = (0..n).map(|_| 0.1 + 2.5 * rng.unit().abs()).collect();
    let labels: Vec<f32> = (0..n).map(|i| (i % 2) as f32).collect();
    let weights: Vec<f32> = (0..n).map(|i| 0.5 + i as f32 * 0.25).collect();
    for loss in losses() {
        if loss.mining != Mining::None {
            continue;
        }
        let mut grad = vec![0.0; n];
        loss.from_distances(&d, &labels, Some(&weights), Some(&mut grad))
            .unwrap();
        for i in 0..n {
            let h = 1e-3f32;
            let at = |v: f32| {
                let mut dd = d.clone();
                dd[i] = v;
                f64::from(
                    loss.from_distances(&dd, &labels, Some(&weights), None)
                        .unwrap(),
                )
            };
            let fd = (at(d[i] + h) - at(d[i] - h)) / (2.0 * f64::from(h));
            assert!(
                (f64::from(grad[i]) - fd).abs() <= 2e-2 * (1.0 + fd.abs()),
                "{loss:?} [{i}]: {} vs {fd}",
                grad[i]
            );
        }
    }
}

#[test]
fn bad_distances_and_weights_are_errors() {
    let loss = ContrastiveLoss::tfa(1.0);
    assert_eq!(
        loss.from_distances(&[0.5, -0.1], &[1.0, 0.0], None, None),
        Err(Error::InvalidDistance {
            index: 1,
            distance: -0.1
        })
    );
    assert_eq!(
        loss.from_distances(&[0.5], &[1.0, 0.0], None, None),
        Err(Error::LengthMismatch {
            argument: "labels",
            expected: 1,
            found: 2
        })
    );
    assert_eq!(
        loss.from_distances(&[0.5], &[1.0], Some(&[-1.0]), None),
        Err(Error::InvalidWeight {
            argument: "weights",
            weight: -1.0
        })
    );
    assert_eq!(
        loss.from_distances(&[0.5], &[1.0], Some(&[1.0, 1.0]), None),
        Err(Error::LengthMismatch {
            argument: "weights",
            expected: 1,
            found: 2
        })
    );
    assert_eq!(
        loss.from_distances(&[0.5], &[1.0], None, Some(&mut [0.0; 2])),
        Err(Error::LengthMismatch {
            argument: "grad",
            expected: 1,
            found: 2
        })
    );
    assert_eq!(
        loss.from_distances(&[], &[], None, None),
        Err(Error::Empty {
            argument: "distances"
        })
    );
    assert_eq!(
        loss.with_reduction(Reduction::Sum)
            .from_distances(&[], &[], None, None),
        Ok(0.0)
    );
    assert_eq!(
        loss.batch_weighted(
            &[0.0; 4],
            &[1.0; 4],
            2,
            &[1.0, 0.0],
            &[1.0, f32::INFINITY],
            None
        ),
        Err(Error::InvalidWeight {
            argument: "weights",
            weight: f32::INFINITY
        })
    );
    let _ = Distance::Euclidean;
}
