//! Losses: thin layers of arithmetic over the kernels.

pub(crate) mod block;
pub(crate) mod contrastive;
mod pair;
pub mod seed;
pub(crate) mod softmax;
