//! What an operator does to the queues and to failed jobs, shared by the CLI (`failed …`) and the web
//! console (`http`), so both act alike: decoding a payload ([`decode`]), reading and searching
//! failed_jobs ([`failed`]), retrying rows as `queue:retry` does ([`retry`]), and masking personal data
//! for display ([`mask`]). It prints nothing and reads no settings: callers pass the stores in.

pub mod decode;
pub mod failed;
pub mod mask;
pub mod retry;
