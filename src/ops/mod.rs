//! Subcommands that are not the worker loop itself, and the wiring of `work`.

pub mod decode;
pub mod work;
