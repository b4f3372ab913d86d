//! The `Vec` twins of the triplet family return what the slice APIs write.

#![cfg(feature = "alloc")]

use crate::common;

use common::Rng;
use contrastive::{
    BatchAllTripletLoss, BatchHardTripletLoss, CosineEmbeddingLoss, Distance, Error, TripletLoss,
};

#[test]
fn vec_twins_return_what_the_slice_apis_write() {
    let mut rng = Rng(5);
    let (n, d) = (9, 7);
    let x = rng.vec(n * d);
    let classes: Vec<u32> = (0..n as u32).map(|i| i % 3).collect();
    for hard in [
        BatchHardTripletLoss::new(1.0),
        BatchHardTripletLoss::new(0.3).with_distance(Distance::Cosine),
    ] {
        let mut scratch = vec![0.0; hard.scratch_len(n, d)];
        let mut grad = vec![0.0; n * d];
        let want = hard
            .batch_with_grad(&x, d, &classes, &mut grad, &mut scratch)
            .unwrap();
        assert_eq!(hard.batch_with_grad_vec(&x, d, &classes), Ok((want, grad)));
        assert_eq!(hard.batch_vec(&x, d, &classes), Ok(want));
    }
    for all in [
        BatchAllTripletLoss::pml(),
        BatchAllTripletLoss::new(0.5).with_smooth(true),
    ] {
        // The `_vec` twins size the symmetric path's scratch from the largest class.
        let largest = (0..n)
            .map(|i| classes.iter().filter(|&&c| c == classes[i]).count())
            .max()
            .unwrap_or(0);
        let mut scratch = vec![0.0; all.symmetric_scratch_len(n, d, largest)];
        let mut grad = vec![0.0; n * d];
        let want = all
            .batch_with_grad(&x, d, &classes, &mut grad, &mut scratch)
            .unwrap();
        assert_eq!(all.batch_with_grad_vec(&x, d, &classes), Ok((want, grad)));
        assert_eq!(all.batch_vec(&x, d, &classes), Ok(want));
    }
    let (a, p, q) = (&x[..3 * d], &x[3 * d..6 * d], &x[6 * d..]);
    let t = TripletLoss::torch().with_swap(true);
    let per = t.batch_per_triplet_vec(a, p, q, d).unwrap();
    assert_eq!(per.len(), 3);
    let (loss, [ga, gp, gn]) = t.batch_with_grad_vec(a, p, q, d).unwrap();
    assert_eq!(loss, t.batch(a, p, q, d).unwrap());
    assert_eq!((ga.len(), gp.len(), gn.len()), (3 * d, 3 * d, 3 * d));
    let c = CosineEmbeddingLoss::new(0.1);
    let targets = [1.0, -1.0, 0.0];
    assert_eq!(c.batch_per_pair_vec(a, p, d, &targets).unwrap().len(), 3);
    let (l, g1, g2) = c.batch_with_grad_vec(a, p, d, &targets).unwrap();
    assert_eq!(l, c.batch(a, p, d, &targets).unwrap());
    assert_eq!((g1.len(), g2.len()), (3 * d, 3 * d));
    // Errors pass through.
    assert_eq!(
        BatchHardTripletLoss::new(1.0).batch_vec(&x, 0, &classes),
        Err(Error::ZeroDimension)
    );
}
