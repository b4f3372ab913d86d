//! One test per class of bad input, asserting the exact `Error` variant: never a panic,
//! never a silently wrong number. Every check is on in release builds too.

use contrastive::{Backend, ContrastiveLoss, Distance, Error, seed};

const A: [f32; 4] = [1.0, 2.0, 3.0, 4.0];
const B: [f32; 4] = [0.0, 1.0, 0.0, 1.0];

fn losses() -> impl Iterator<Item = ContrastiveLoss> {
    Backend::available().flat_map(|b| {
        [Distance::Euclidean, Distance::Cosine]
            .map(|d| ContrastiveLoss::new(1.0).with_distance(d).with_backend(b))
    })
}

#[test]
fn mismatched_lengths_name_the_argument() {
    let short = [1.0, 2.0, 3.0];
    let want = Err(Error::LengthMismatch {
        argument: "b",
        expected: 4,
        found: 3,
    });
    assert_eq!(contrastive::squared_euclidean(&A, &short), want);
    assert_eq!(contrastive::euclidean(&A, &short), want);
    assert_eq!(contrastive::dot(&A, &short), want);
    assert_eq!(contrastive::cosine_similarity(&A, &short), want);
    for loss in losses() {
        assert_eq!(loss.pair(&A, &short, 1.0), want);
        assert_eq!(loss.batch(&A, &short, 1, &[1.0; 4]), want);
        let (mut ga, mut gb) = ([0.0; 4], [0.0; 4]);
        assert_eq!(loss.pair_with_grad(&A, &short, 1.0, &mut ga, &mut gb), want);
    }
    let want = Err(Error::LengthMismatch {
        argument: "input_2",
        expected: 4,
        found: 3,
    });
    assert_eq!(seed::contrastive_loss(&A, &short, &[1.0], 0.5), want);
}

#[test]
fn wrong_gradient_buffer_sizes_are_errors() {
    for loss in losses() {
        let (mut small, mut ok) = ([0.0; 3], [0.0; 4]);
        assert_eq!(
            loss.pair_with_grad(&A, &B, 1.0, &mut small, &mut ok),
            Err(Error::LengthMismatch {
                argument: "grad_a",
                expected: 4,
                found: 3
            })
        );
        assert_eq!(
            loss.pair_with_grad(&A, &B, 1.0, &mut ok.clone(), &mut small),
            Err(Error::LengthMismatch {
                argument: "grad_b",
                expected: 4,
                found: 3
            })
        );
        assert_eq!(
            loss.batch_with_grad(&A, &B, 2, &[1.0, 0.0], &mut small, &mut ok),
            Err(Error::LengthMismatch {
                argument: "grad_a",
                expected: 4,
                found: 3
            })
        );
        let mut big = [0.0; 5];
        assert_eq!(
            loss.batch_with_grad(&A, &B, 2, &[1.0, 0.0], &mut ok, &mut big),
            Err(Error::LengthMismatch {
                argument: "grad_b",
                expected: 4,
                found: 5
            })
        );
    }
    let (mut g1, mut g2) = ([0.0; 3], [0.0; 4]);
    assert_eq!(
        seed::contrastive_loss_with_grad(&A, &B, &[1.0], 0.5, &mut g1, &mut g2),
        Err(Error::LengthMismatch {
            argument: "grad_1",
            expected: 4,
            found: 3
        })
    );
}

#[test]
fn wrong_output_and_label_counts_are_errors() {
    for loss in losses() {
        let mut out = [0.0; 3];
        assert_eq!(
            loss.batch_per_pair(&A, &B, 2, &[1.0, 0.0], &mut out),
            Err(Error::LengthMismatch {
                argument: "out",
                expected: 2,
                found: 3
            })
        );
        assert_eq!(
            loss.batch(&A, &B, 2, &[1.0]),
            Err(Error::LengthMismatch {
                argument: "labels",
                expected: 2,
                found: 1
            })
        );
    }
    let mut out = [0.0; 1];
    assert_eq!(
        contrastive::squared_euclidean_rows(&A, &B, 2, &mut out),
        Err(Error::LengthMismatch {
            argument: "out",
            expected: 2,
            found: 1
        })
    );
}

#[test]
fn zero_dim_is_an_error_for_batches() {
    for loss in losses() {
        assert_eq!(loss.batch(&A, &B, 0, &[1.0]), Err(Error::ZeroDimension));
        assert_eq!(
            loss.batch_per_pair(&[], &[], 0, &[], &mut []),
            Err(Error::ZeroDimension)
        );
        assert_eq!(
            loss.batch_with_grad(&A, &B, 0, &[], &mut [0.0; 4], &mut [0.0; 4]),
            Err(Error::ZeroDimension)
        );
    }
    assert_eq!(
        contrastive::squared_euclidean_rows(&A, &B, 0, &mut []),
        Err(Error::ZeroDimension)
    );
}

#[test]
fn lengths_not_a_multiple_of_dim_are_errors() {
    let want = Err(Error::NotMultipleOfDim {
        argument: "a",
        len: 4,
        dim: 3,
    });
    for loss in losses() {
        assert_eq!(loss.batch(&A, &B, 3, &[1.0]), want);
    }
    assert_eq!(
        contrastive::squared_euclidean_rows(&A, &B, 3, &mut [0.0]),
        want.map(|_| ())
    );
}

#[test]
fn invalid_margins_are_errors() {
    for margin in [
        -1.0,
        -f32::MIN_POSITIVE,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
    ] {
        let loss = ContrastiveLoss::new(margin);
        match loss.pair(&A, &B, 1.0) {
            Err(Error::InvalidMargin { margin: m }) => assert!(m.is_nan() == margin.is_nan()),
            other => panic!("margin {margin}: {other:?}"),
        }
        assert!(matches!(
            loss.batch(&A, &B, 2, &[1.0, 0.0]),
            Err(Error::InvalidMargin { .. })
        ));
        assert!(matches!(
            seed::contrastive_loss(&A, &B, &[1.0], margin),
            Err(Error::InvalidMargin { .. })
        ));
    }
    // Zero is a valid margin: the dissimilar term is then always inactive.
    assert_eq!(ContrastiveLoss::new(0.0).pair(&A, &B, 0.0), Ok(0.0));
}

#[test]
fn invalid_weights_are_errors() {
    for w in [-0.5, f32::NAN, f32::INFINITY] {
        let loss = ContrastiveLoss::new(1.0).with_weights(w, 1.0);
        assert!(matches!(
            loss.pair(&A, &B, 1.0),
            Err(Error::InvalidWeight {
                argument: "positive_weight",
                ..
            })
        ));
        let loss = ContrastiveLoss::new(1.0).with_weights(1.0, w);
        assert!(matches!(
            loss.pair(&A, &B, 1.0),
            Err(Error::InvalidWeight {
                argument: "negative_weight",
                ..
            })
        ));
    }
}

#[test]
fn labels_outside_unit_interval_or_nan_are_errors() {
    for loss in losses() {
        for bad in [-0.1, 1.1, f32::NAN, f32::INFINITY] {
            match loss.pair(&A, &B, bad) {
                Err(Error::InvalidLabel { index: 0, label }) => {
                    assert!(label.is_nan() == bad.is_nan())
                }
                other => panic!("label {bad}: {other:?}"),
            }
            assert!(matches!(
                loss.batch(&A, &B, 2, &[1.0, bad]),
                Err(Error::InvalidLabel { index: 1, .. })
            ));
        }
    }
    assert!(matches!(
        seed::contrastive_loss(&A, &B, &[0.0, 2.0], 0.5),
        Err(Error::InvalidLabel { index: 1, .. })
    ));
}

/// `batch` checks its labels block by block: the error names the first bad label of the
/// whole batch, in any block, and in a partial last block, for every entry point.
#[test]
fn a_bad_label_in_a_later_block_is_named_by_its_index() {
    let rows = 1000;
    let (a, b) = (vec![0.5f32; rows * 2], vec![0.0f32; rows * 2]);
    for loss in losses() {
        for index in [0, 63, 64, 500, 999] {
            let mut labels = vec![1.0f32; rows];
            labels[index] = -1.0;
            labels[rows - 1] = f32::NAN; // a later bad label must not be the one named
            if index == rows - 1 {
                labels[index] = -1.0;
            }
            let named = |r: Result<f32, Error>| match r {
                Err(Error::InvalidLabel { index: i, label }) => i == index && label == -1.0,
                _ => false,
            };
            assert!(named(loss.batch(&a, &b, 2, &labels)), "{loss:?} at {index}");
            let mut out = vec![7.0f32; rows];
            let per_pair = loss.batch_per_pair(&a, &b, 2, &labels, &mut out);
            assert!(named(per_pair.map(|()| 0.0)), "{loss:?} at {index}");
            assert!(
                out.iter().all(|&x| x == 7.0),
                "outputs untouched on an error"
            );
            let (mut ga, mut gb) = (vec![7.0f32; rows * 2], vec![7.0f32; rows * 2]);
            let r = loss.batch_with_grad(&a, &b, 2, &labels, &mut ga, &mut gb);
            assert!(named(r), "{loss:?} at {index}");
            assert!(ga.iter().chain(&gb).all(|&x| x == 7.0), "outputs untouched");
        }
    }
}

#[test]
fn a_mean_over_nothing_is_an_error() {
    for loss in losses() {
        assert_eq!(
            loss.batch(&[], &[], 4, &[]),
            Err(Error::Empty { argument: "labels" })
        );
        assert_eq!(
            loss.batch_with_grad(&[], &[], 4, &[], &mut [], &mut []),
            Err(Error::Empty { argument: "labels" })
        );
    }
    // The seed divides by len(input_1).
    assert_eq!(
        seed::contrastive_loss(&[], &[], &[1.0], 0.5),
        Err(Error::Empty {
            argument: "input_1"
        })
    );
}

#[test]
fn unavailable_backends_are_errors() {
    for backend in Backend::ALL {
        let r = backend.squared_euclidean(&A, &B);
        if backend.is_available() {
            assert!(r.is_ok());
        } else {
            assert_eq!(r, Err(Error::BackendUnavailable { backend }));
            let loss = ContrastiveLoss::new(1.0).with_backend(backend);
            assert_eq!(
                loss.pair(&A, &B, 1.0),
                Err(Error::BackendUnavailable { backend })
            );
        }
    }
}

#[test]
fn errors_say_which_argument_and_sizes() {
    let e = Error::LengthMismatch {
        argument: "grad_a",
        expected: 4,
        found: 3,
    };
    assert_eq!(e.to_string(), "`grad_a` has length 3, expected 4");
    let e = Error::NotMultipleOfDim {
        argument: "a",
        len: 10,
        dim: 3,
    };
    assert_eq!(
        e.to_string(),
        "`a` has length 10, which is not a multiple of dim = 3"
    );
    let e = Error::InvalidLabel {
        index: 2,
        label: 1.5,
    };
    assert_eq!(e.to_string(), "label 1.5 at index 2 is outside [0, 1]");
    let boxed: Box<dyn std::error::Error> = Box::new(Error::ZeroDimension);
    assert!(boxed.to_string().contains("dim"));
}
