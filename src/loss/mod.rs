//! Losses: thin layers of arithmetic over the kernels.

pub(crate) mod block;
pub(crate) mod contrastive;
mod inbatch;
pub(crate) mod margins;
mod pair;
pub mod seed;
