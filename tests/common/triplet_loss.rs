//! The crate's two in-batch triplet losses run on every backend against the oracle of
//! triplet_oracle.rs (kept apart from the oracle, which never uses the crate).

use super::assert_in_batch_close;
use super::triplet_oracle::InBatchRef;
use contrastive::{Backend, BatchAllTripletLoss, BatchHardTripletLoss};

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
    let scratch_len = match loss {
        InBatchTriplet::Hard(l) => l.scratch_len(n, d),
        InBatchTriplet::All(l) => l.scratch_len(n, d),
    };
    let mut scratch = vec![0.0; scratch_len];
    for b in Backend::available() {
        let mut grad = vec![f32::NAN; n * d];
        let (g, s) = (&mut grad[..], &mut scratch[..]);
        let got = match loss {
            InBatchTriplet::Hard(l) => l.with_backend(b).batch_with_grad(x, d, cls, g, s),
            InBatchTriplet::All(l) => l.with_backend(b).batch_with_grad(x, d, cls, g, s),
        };
        assert_in_batch_close(&format!("{b:?} {what}"), got.unwrap(), &grad, r, n, d);
    }
}
