//! The in-batch contrastive loss's new options (`Reduction::AvgNonZero`,
//! `Distance::SquaredEuclidean`) are not defined for the triplet and cosine-embedding
//! losses yet: those refuse them with an error instead of computing something else.

use contrastive::{
    BatchHardTripletLoss, CosineEmbeddingLoss, Distance, Error, Reduction, TripletLoss,
};

fn refused<T: core::fmt::Debug>(r: Result<T, Error>, argument: &str) {
    match r {
        Err(Error::InvalidParameter { argument: a, .. }) => assert_eq!(a, argument),
        other => panic!("expected InvalidParameter({argument}), got {other:?}"),
    }
}

#[test]
fn triplet_and_cosine_embedding_refuse_avg_non_zero() {
    let (a, p, n) = ([0.0f32, 1.0], [0.5f32, 1.0], [1.0f32, 0.0]);
    let triplet = TripletLoss::new(1.0).with_reduction(Reduction::AvgNonZero);
    refused(triplet.batch(&a, &p, &n, 2), "reduction");
    let (mut ga, mut gp, mut gn) = ([0.0f32; 2], [0.0f32; 2], [0.0f32; 2]);
    refused(
        triplet.batch_with_grad(&a, &p, &n, 2, &mut ga, &mut gp, &mut gn),
        "reduction",
    );
    let cosine = CosineEmbeddingLoss::new(0.0).with_reduction(Reduction::AvgNonZero);
    refused(cosine.batch(&a, &p, 2, &[1.0]), "reduction");
    refused(
        cosine.batch_with_grad(&a, &p, 2, &[1.0], &mut ga, &mut gp),
        "reduction",
    );
    // The defined reductions still work.
    assert!(TripletLoss::new(1.0).batch(&a, &p, &n, 2).is_ok());
}

#[test]
fn batch_hard_triplet_refuses_the_squared_distance() {
    let x = [0.0f32, 0.0, 0.0, 1.0, 3.0, 0.0, 3.0, 2.0];
    let classes = [7, 7, 9, 9];
    let loss = BatchHardTripletLoss::new(2.0).with_distance(Distance::SquaredEuclidean);
    let mut scratch = vec![0.0; loss.scratch_len(4, 2)];
    let mut grad = [0.0f32; 8];
    refused(loss.batch(&x, 2, &classes, &mut scratch), "distance");
    refused(
        loss.batch_with_grad(&x, 2, &classes, &mut grad, &mut scratch),
        "distance",
    );
}
