//! Every bad input of the triplet losses and the cosine embedding loss is its `Error`,
//! and an error leaves the caller's outputs untouched.

use contrastive::{
    BatchAllTripletLoss, BatchHardTripletLoss, CosineEmbeddingLoss, Error, Reduction, TripletLoss,
};

fn len(argument: &'static str, expected: usize, found: usize) -> Error {
    Error::LengthMismatch {
        argument,
        expected,
        found,
    }
}

#[test]
fn triplet_bad_inputs_are_errors() {
    let l = TripletLoss::new(1.0);
    let (a, p, n) = ([0.0; 4], [1.0; 4], [2.0; 4]);
    let mut g = [[7.0f32; 4]; 3];
    let [ga, gp, gn] = &mut g;
    assert_eq!(l.triplet(&a, &p[..3], &n), Err(len("positive", 4, 3)));
    assert_eq!(l.triplet(&a, &p, &n[..1]), Err(len("negative", 4, 1)));
    assert_eq!(
        l.triplet_with_grad(&a, &p, &n, &mut ga[..3], gp, gn),
        Err(len("grad_anchor", 4, 3))
    );
    assert_eq!(
        l.triplet_with_grad(&a, &p, &n, ga, &mut gp[..2], gn),
        Err(len("grad_positive", 4, 2))
    );
    assert_eq!(
        l.triplet_with_grad(&a, &p, &n, ga, gp, &mut gn[..0]),
        Err(len("grad_negative", 4, 0))
    );
    for margin in [-1.0, f32::NAN, f32::INFINITY] {
        assert!(matches!(
            TripletLoss::new(margin).triplet(&a, &p, &n),
            Err(Error::InvalidMargin { .. })
        ));
    }
    for eps in [-1e-6, f32::NAN, f32::INFINITY] {
        assert!(matches!(
            l.with_eps(eps).triplet(&a, &p, &n),
            Err(Error::InvalidParameter {
                argument: "eps",
                ..
            })
        ));
    }
    // Batches.
    assert_eq!(l.batch(&a, &p, &n, 0), Err(Error::ZeroDimension));
    assert_eq!(
        l.batch(&a, &p, &n, 3),
        Err(Error::NotMultipleOfDim {
            argument: "anchor",
            len: 4,
            dim: 3
        })
    );
    assert_eq!(l.batch(&a, &p[..2], &n, 2), Err(len("positive", 4, 2)));
    assert_eq!(l.batch(&a, &p, &n[..2], 2), Err(len("negative", 4, 2)));
    assert_eq!(
        l.batch(&[], &[], &[], 2),
        Err(Error::Empty { argument: "anchor" })
    );
    assert_eq!(
        l.with_reduction(Reduction::Sum).batch(&[], &[], &[], 2),
        Ok(0.0)
    );
    assert_eq!(
        l.batch_per_triplet(&a, &p, &n, 2, &mut [0.0; 3]),
        Err(len("out", 2, 3))
    );
    assert_eq!(
        l.batch_with_grad(&a, &p, &n, 2, &mut ga[..2], gp, gn),
        Err(len("grad_anchor", 4, 2))
    );
    assert_eq!(
        l.batch_with_grad(&a, &p, &n, 2, ga, gp, &mut gn[..3]),
        Err(len("grad_negative", 4, 3))
    );
    assert_eq!(g, [[7.0; 4]; 3], "an error writes nothing");
}

#[test]
fn cosine_embedding_bad_inputs_are_errors() {
    let l = CosineEmbeddingLoss::new(0.1);
    let (a, b) = ([1.0; 4], [2.0; 4]);
    let (mut ga, mut gb) = ([7.0f32; 4], [7.0f32; 4]);
    assert_eq!(l.pair(&a, &b[..3], 1.0), Err(len("b", 4, 3)));
    // A NaN target (its `Error` holds the NaN, so `matches!` rather than `==`).
    assert!(matches!(
        l.pair(&a, &b, f32::NAN),
        Err(Error::InvalidLabel { index: 0, label }) if label.is_nan()
    ));
    for margin in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        assert!(matches!(
            CosineEmbeddingLoss::new(margin).pair(&a, &b, 1.0),
            Err(Error::InvalidMargin { .. })
        ));
    }
    assert_eq!(
        l.pair_with_grad(&a, &b, 1.0, &mut ga[..1], &mut gb),
        Err(len("grad_a", 4, 1))
    );
    assert_eq!(
        l.pair_with_grad(&a, &b, 1.0, &mut ga, &mut gb[..2]),
        Err(len("grad_b", 4, 2))
    );
    assert_eq!(l.batch(&a, &b, 0, &[1.0]), Err(Error::ZeroDimension));
    assert_eq!(l.batch(&a, &b, 2, &[1.0]), Err(len("targets", 2, 1)));
    assert!(matches!(
        l.batch_with_grad(&a, &b, 2, &[1.0, f32::NAN], &mut ga, &mut gb),
        Err(Error::InvalidLabel { index: 1, .. })
    ));
    assert_eq!(
        l.batch(&[], &[], 2, &[]),
        Err(Error::Empty {
            argument: "targets"
        })
    );
    assert_eq!(
        l.batch_per_pair(&a, &b, 2, &[1.0, -1.0], &mut [0.0; 1]),
        Err(len("out", 2, 1))
    );
    assert_eq!((ga, gb), ([7.0; 4], [7.0; 4]), "an error writes nothing");
}

#[test]
fn in_batch_bad_inputs_are_errors() {
    let x = [0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0];
    let classes = [1u32, 1, 2];
    let all = BatchAllTripletLoss::pml();
    let hard = BatchHardTripletLoss::sentence_transformers();
    let mut grad = [7.0f32; 6];
    let mut scratch = vec![0.0f32; 64];
    for margin in [-0.1, f32::NAN, f32::INFINITY] {
        assert!(matches!(
            BatchAllTripletLoss::new(margin).batch(&x, 2, &classes, &mut scratch),
            Err(Error::InvalidMargin { .. })
        ));
        assert!(matches!(
            BatchHardTripletLoss::new(margin).batch(&x, 2, &classes, &mut scratch),
            Err(Error::InvalidMargin { .. })
        ));
    }
    macro_rules! both {
        ($call:ident ( $($arg:expr),* ), $want:expr) => {
            assert_eq!(all.$call($($arg),*), $want);
            assert_eq!(hard.$call($($arg),*), $want);
        };
    }
    both!(
        batch(&x, 0, &classes, &mut scratch),
        Err(Error::ZeroDimension)
    );
    both!(
        batch(&x, 4, &classes, &mut scratch),
        Err(Error::NotMultipleOfDim {
            argument: "x",
            len: 6,
            dim: 4
        })
    );
    both!(
        batch(&x, 2, &classes[..2], &mut scratch),
        Err(len("classes", 3, 2))
    );
    both!(
        batch_with_grad(&x, 2, &classes, &mut grad[..5], &mut scratch),
        Err(len("grad", 6, 5))
    );
    let need_all = all.scratch_len(3, 2);
    // Distance rows of a block of anchors (3·3), a row of work, the normalised copy.
    assert_eq!(need_all, 3 * 3 + 3 + 3 * 2);
    assert_eq!(
        all.batch_with_grad(&x, 2, &classes, &mut grad, &mut scratch[..need_all - 1]),
        Err(Error::ScratchTooShort {
            needed: need_all,
            found: need_all - 1
        })
    );
    assert_eq!(hard.scratch_len(3, 2), 3 * 3);
    assert_eq!(hard.scratch_len(100, 2), 8 * 100);
    assert_eq!(
        hard.batch(&x, 2, &classes, &mut scratch[..2]),
        Err(Error::ScratchTooShort {
            needed: 9,
            found: 2
        })
    );
    let cosine = hard.with_distance(contrastive::Distance::Cosine);
    assert_eq!(cosine.scratch_len(3, 2), 3 * 3 + 3 + 3 * 2 + 2 * 2);
    assert_eq!(grad, [7.0; 6], "an error writes nothing");
    // Each error displays which argument and which sizes.
    let shown = Error::ScratchTooShort {
        needed: 7,
        found: 2,
    }
    .to_string();
    assert!(shown.contains('7') && shown.contains('2') && shown.contains("scratch"));
    let shown = Error::InvalidParameter {
        argument: "eps",
        value: -1.0,
    }
    .to_string();
    assert!(shown.contains("eps") && shown.contains("-1"));
}
