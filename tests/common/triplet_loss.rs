//! The crate's two in-batch triplet losses run on every backend against the oracle of
//! triplet_oracle.rs (kept apart from the oracle, which never uses the crate).

use super::assert_in_batch_close;
use super::triplet_oracle::InBatchRef;
use contrastive::{Backend, BatchAllTripletLoss, BatchHardTripletLoss, Error};

/// Either in-batch triplet loss.
#[derive(Clone, Copy)]
pub enum InBatchTriplet {
    Hard(BatchHardTripletLoss),
    All(BatchAllTripletLoss),
}

impl From<BatchHardTripletLoss> for InBatchTriplet {
    fn from(l: BatchHardTripletLoss) -> Self {
        Self::Hard(l)
    }
}

impl From<BatchAllTripletLoss> for InBatchTriplet {
    fn from(l: BatchAllTripletLoss) -> Self {
        Self::All(l)
    }
}

impl InBatchTriplet {
    /// The loss's `scratch_len`.
    pub fn scratch_len(self, n: usize, d: usize) -> usize {
        match self {
            Self::Hard(l) => l.scratch_len(n, d),
            Self::All(l) => l.scratch_len(n, d),
        }
    }

    /// `batch_with_grad` on `backend` with a gradient, `batch` without.
    pub fn run(
        self,
        backend: Backend,
        (x, d, cls): (&[f32], usize, &[u32]),
        grad: Option<&mut [f32]>,
        scratch: &mut [f32],
    ) -> Result<f32, Error> {
        match (self, grad) {
            (Self::Hard(l), Some(g)) => l
                .with_backend(backend)
                .batch_with_grad(x, d, cls, g, scratch),
            (Self::Hard(l), None) => l.with_backend(backend).batch(x, d, cls, scratch),
            (Self::All(l), Some(g)) => l
                .with_backend(backend)
                .batch_with_grad(x, d, cls, g, scratch),
            (Self::All(l), None) => l.with_backend(backend).batch(x, d, cls, scratch),
        }
    }
}

/// `loss`'s loss and gradient of the batch `x` (rows of `d`, labels `cls`) on every
/// available backend, each within the in-batch bound of the oracle's result `r`.
#[track_caller]
pub fn check_every_backend(
    what: &str,
    loss: impl Into<InBatchTriplet>,
    x: &[f32],
    d: usize,
    cls: &[u32],
    r: &InBatchRef,
) {
    let loss = loss.into();
    let n = cls.len();
    let mut scratch = vec![0.0; loss.scratch_len(n, d)];
    for b in Backend::available() {
        let mut grad = vec![f32::NAN; n * d];
        let got = loss.run(b, (x, d, cls), Some(&mut grad), &mut scratch);
        assert_in_batch_close(&format!("{b:?} {what}"), got.unwrap(), &grad, r, n, d);
    }
}
