//! Losses: thin layers of arithmetic over the kernels.

pub(crate) mod block;
pub(crate) mod contrastive;
pub(crate) mod cosine_embedding;
mod direction;
mod inbatch;
pub(crate) mod margins;
mod pair;
pub mod seed;
pub(crate) mod softmax;
pub(crate) mod triplet;
pub(crate) mod triplet_batch;
mod triplet_batch_sym;
mod triplet_hard;
#[cfg(feature = "alloc")]
mod triplet_vec;
