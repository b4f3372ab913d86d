//! Losses: thin layers of arithmetic over the kernels.

pub(crate) mod contrastive;
mod pair;
pub mod seed;
