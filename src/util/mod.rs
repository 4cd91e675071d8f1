//! Helpers with one home each, at the bottom of the layers: nothing here imports a module of ours.
//!
//! - [`clock`]: the wall clock in UNIX seconds, as Laravel reads it.
//! - [`url`]: connection URLs split, percent-coded and masked.
//! - [`runtime`]: the async runtime, one thread unless more are asked for.

pub mod clock;
pub mod runtime;
pub mod url;
