//! The crate's `ContrastiveLoss` for a configuration of the in-batch oracle (kept apart
//! from the oracle, which never uses the crate). Shared by the in-batch tests and the
//! fuzz target, which include it beside `inbatch_oracle.rs`.

use super::inbatch_oracle::{Dist, Loss, Red};
use contrastive::{ContrastiveLoss, Distance, Hinge, Reduction};

/// The crate's loss for the oracle configuration `o`.
pub fn loss_of(o: &Loss) -> ContrastiveLoss {
    ContrastiveLoss::new(o.m_neg as f32)
        .with_margins(o.m_pos as f32, o.m_neg as f32)
        .with_weights(o.w_pos as f32, o.w_neg as f32)
        .with_distance(match o.dist {
            Dist::Euclidean => Distance::Euclidean,
            Dist::Squared => Distance::SquaredEuclidean,
            Dist::Cosine => Distance::Cosine,
        })
        .with_reduction(match o.red {
            Red::Mean => Reduction::Mean,
            Red::Sum | Red::None => Reduction::Sum,
            Red::AvgNonZero => Reduction::AvgNonZero,
        })
        .with_hinge(if o.power == 2 {
            Hinge::Squared
        } else {
            Hinge::Linear
        })
        .with_normalize(o.normalize)
}
