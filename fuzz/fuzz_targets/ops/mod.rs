//! The crate's `ops::decode`, mounted for the `decode` fuzz target.
#[path = "../../../src/ops/decode.rs"]
pub mod decode;
