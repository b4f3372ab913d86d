//! The `Vec`-returning twins (feature `alloc`) give exactly what the slice APIs write, and
//! the same errors.

#![cfg(feature = "alloc")]

use contrastive::{ContrastiveLoss, Error, squared_euclidean_rows, squared_euclidean_rows_vec};

#[test]
fn vec_twins_equal_the_slice_apis() {
    let a = [0.1, 0.2, 0.3, 0.0, 0.0, 0.0];
    let b = [0.3, 0.2, 0.1, 0.0, 0.0, 0.5];
    let labels = [1.0, 0.0];
    let loss = ContrastiveLoss::seed(0.5);

    let (mut ga, mut gb) = ([0.0; 6], [0.0; 6]);
    let l = loss
        .batch_with_grad(&a, &b, 3, &labels, &mut ga, &mut gb)
        .unwrap();
    let r = loss.batch_with_grad_vec(&a, &b, 3, &labels).unwrap();
    assert_eq!(
        (r.loss, r.grad_a.as_slice(), r.grad_b.as_slice()),
        (l, &ga[..], &gb[..])
    );

    let mut per_pair = [0.0; 2];
    loss.batch_per_pair(&a, &b, 3, &labels, &mut per_pair)
        .unwrap();
    assert_eq!(
        loss.batch_per_pair_vec(&a, &b, 3, &labels).unwrap(),
        per_pair
    );

    let (mut ga, mut gb) = ([0.0; 3], [0.0; 3]);
    let l = loss
        .pair_with_grad(&a[..3], &b[..3], 1.0, &mut ga, &mut gb)
        .unwrap();
    let r = loss.pair_with_grad_vec(&a[..3], &b[..3], 1.0).unwrap();
    assert_eq!(
        (r.loss, r.grad_a.as_slice(), r.grad_b.as_slice()),
        (l, &ga[..], &gb[..])
    );

    let mut rows = [0.0; 2];
    squared_euclidean_rows(&a, &b, 3, &mut rows).unwrap();
    assert_eq!(squared_euclidean_rows_vec(&a, &b, 3).unwrap(), rows);
}

#[test]
fn vec_twins_report_the_same_errors() {
    let loss = ContrastiveLoss::new(1.0);
    assert_eq!(
        squared_euclidean_rows_vec(&[1.0], &[1.0], 0),
        Err(Error::ZeroDimension)
    );
    assert_eq!(
        loss.batch_per_pair_vec(&[1.0, 2.0], &[1.0, 2.0], 1, &[1.0]),
        Err(Error::LengthMismatch {
            argument: "labels",
            expected: 2,
            found: 1
        })
    );
    assert_eq!(
        loss.pair_with_grad_vec(&[1.0], &[1.0, 2.0], 1.0),
        Err(Error::LengthMismatch {
            argument: "b",
            expected: 1,
            found: 2
        })
    );
}
