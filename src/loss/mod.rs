//! Losses: thin layers of arithmetic over the kernels.

mod block;
pub(crate) mod contrastive;
mod pair;
pub mod seed;
