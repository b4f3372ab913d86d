//! Plain Rust, four independent accumulators: the fallback on every target and the
//! baseline every other backend is compared against.

super::lanes_backend::lanes_backend!(f32);
