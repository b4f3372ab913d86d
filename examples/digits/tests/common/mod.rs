//! Shared by the digits example's tests.
#![allow(dead_code)]

pub mod net_oracle;
