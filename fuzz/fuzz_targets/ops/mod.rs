//! The crate's `ops::decode`, mounted for the `decode` fuzz target (its pure half, `view.rs`).
#[path = "../../../src/ops/decode/view.rs"]
pub mod decode;
