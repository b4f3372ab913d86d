//! `Vec`-returning twins of the triplet and cosine embedding losses (feature `alloc`): the
//! same checks and kernels, with the scratch and outputs allocated here.

#![forbid(unsafe_code)]

use crate::{BatchAllTripletLoss, BatchHardTripletLoss, CosineEmbeddingLoss, Error, TripletLoss};
use alloc::vec;
use alloc::vec::Vec;

impl TripletLoss {
    /// [`batch_per_triplet`](Self::batch_per_triplet), returning one loss per row.
    pub fn batch_per_triplet_vec(
        &self,
        anchor: &[f32],
        positive: &[f32],
        negative: &[f32],
        dim: usize,
    ) -> Result<Vec<f32>, Error> {
        let mut out = vec![0.0; anchor.len().checked_div(dim).unwrap_or(0)];
        self.batch_per_triplet(anchor, positive, negative, dim, &mut out)?;
        Ok(out)
    }

    /// [`batch_with_grad`](Self::batch_with_grad), returning
    /// `(loss, [grad_anchor, grad_positive, grad_negative])`.
    pub fn batch_with_grad_vec(
        &self,
        anchor: &[f32],
        positive: &[f32],
        negative: &[f32],
        dim: usize,
    ) -> Result<(f32, [Vec<f32>; 3]), Error> {
        let n = anchor.len();
        let mut g = [vec![0.0; n], vec![0.0; n], vec![0.0; n]];
        let [ga, gp, gn] = &mut g;
        let loss = self.batch_with_grad(anchor, positive, negative, dim, ga, gp, gn)?;
        Ok((loss, g))
    }
}

impl CosineEmbeddingLoss {
    /// [`batch_per_pair`](Self::batch_per_pair), returning one loss per row.
    pub fn batch_per_pair_vec(
        &self,
        a: &[f32],
        b: &[f32],
        dim: usize,
        targets: &[f32],
    ) -> Result<Vec<f32>, Error> {
        let mut out = vec![0.0; targets.len()];
        self.batch_per_pair(a, b, dim, targets, &mut out)?;
        Ok(out)
    }

    /// [`batch_with_grad`](Self::batch_with_grad), returning `(loss, grad_a, grad_b)`.
    pub fn batch_with_grad_vec(
        &self,
        a: &[f32],
        b: &[f32],
        dim: usize,
        targets: &[f32],
    ) -> Result<(f32, Vec<f32>, Vec<f32>), Error> {
        let (mut ga, mut gb) = (vec![0.0; a.len()], vec![0.0; a.len()]);
        let loss = self.batch_with_grad(a, b, dim, targets, &mut ga, &mut gb)?;
        Ok((loss, ga, gb))
    }
}

/// The rows of a batch, for sizing its scratch (the checks proper come after).
fn rows(x: &[f32], dim: usize) -> usize {
    x.len().checked_div(dim).unwrap_or(0)
}

impl BatchHardTripletLoss {
    /// [`batch`](Self::batch) with its scratch allocated here.
    ///
    /// ```
    /// use contrastive::BatchHardTripletLoss;
    /// let x = [0.0, 0.0, 0.0, 1.0, 3.0, 0.0, 3.0, 2.0];
    /// let loss = BatchHardTripletLoss::new(2.0).batch_vec(&x, 2, &[7, 7, 9, 9])?;
    /// assert!((loss - (5.0 - 10f32.sqrt()) / 4.0).abs() < 1e-6);
    /// # Ok::<(), contrastive::Error>(())
    /// ```
    pub fn batch_vec(&self, x: &[f32], dim: usize, classes: &[u32]) -> Result<f32, Error> {
        let mut scratch = vec![0.0; self.scratch_len(rows(x, dim), dim)];
        self.batch(x, dim, classes, &mut scratch)
    }

    /// [`batch_with_grad`](Self::batch_with_grad), returning `(loss, grad)`.
    pub fn batch_with_grad_vec(
        &self,
        x: &[f32],
        dim: usize,
        classes: &[u32],
    ) -> Result<(f32, Vec<f32>), Error> {
        let mut scratch = vec![0.0; self.scratch_len(rows(x, dim), dim)];
        let mut grad = vec![0.0; x.len()];
        let loss = self.batch_with_grad(x, dim, classes, &mut grad, &mut scratch)?;
        Ok((loss, grad))
    }
}

impl BatchAllTripletLoss {
    /// [`batch`](Self::batch) with its scratch allocated here: the symmetric path's
    /// ([`symmetric_scratch_len`](Self::symmetric_scratch_len), sized from the batch's
    /// largest class) where it applies.
    pub fn batch_vec(&self, x: &[f32], dim: usize, classes: &[u32]) -> Result<f32, Error> {
        let mut scratch = vec![0.0; self.vec_scratch_len(x, dim, classes)];
        self.batch(x, dim, classes, &mut scratch)
    }

    /// [`batch_with_grad`](Self::batch_with_grad), returning `(loss, grad)`, with the
    /// scratch of [`batch_vec`](Self::batch_vec).
    pub fn batch_with_grad_vec(
        &self,
        x: &[f32],
        dim: usize,
        classes: &[u32],
    ) -> Result<(f32, Vec<f32>), Error> {
        let mut scratch = vec![0.0; self.vec_scratch_len(x, dim, classes)];
        let mut grad = vec![0.0; x.len()];
        let loss = self.batch_with_grad(x, dim, classes, &mut grad, &mut scratch)?;
        Ok((loss, grad))
    }

    fn vec_scratch_len(&self, x: &[f32], dim: usize, classes: &[u32]) -> usize {
        self.symmetric_scratch_len(rows(x, dim), dim, largest_class(classes))
    }
}

/// The number of rows of the most frequent class.
fn largest_class(classes: &[u32]) -> usize {
    let mut sorted = classes.to_vec();
    sorted.sort_unstable();
    sorted
        .chunk_by(|a, b| a == b)
        .map(<[u32]>::len)
        .max()
        .unwrap_or(0)
}
