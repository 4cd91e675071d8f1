//! The crate's `admin::decode`, mounted for the `decode` fuzz target (the pure JSON view of a payload).
#[path = "../../../src/admin/decode.rs"]
pub mod decode;
