//! The crate's pure `laravel` modules, mounted for the `decode` fuzz target.
#[path = "../../../src/laravel/encrypter.rs"]
pub mod encrypter;
#[path = "../../../src/laravel/payload.rs"]
pub mod payload;
