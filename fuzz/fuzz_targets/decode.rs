//! Fuzz target: `decode` (what the worker does to every payload before running it) never panics,
//! whatever the bytes: JSON envelope, encrypted or plain command, PHP unserialize, DeferredJob, JSON view.
//! The fixture key is loaded so the decryption paths are reached from the corpus' encrypted payloads.

#![no_main]

use libfuzzer_sys::fuzz_target;

// The crate's pure modules, mounted at the same paths so their `crate::` imports resolve.
#[allow(dead_code)]
#[path = "../../src/deferred.rs"]
mod deferred;
#[allow(dead_code)]
mod laravel;
#[allow(dead_code)]
mod admin;
#[allow(dead_code, unused_imports)]
#[path = "../../src/php/mod.rs"]
mod php;

const FIXTURE_KEYS: &str = "base64:ZGVmZXItd29ya2VyLWZpeHR1cmUtVEVTVC1rZXktMzI=";
const FIXTURE_PREVIOUS: &str = "base64:Zml4dHVyZS1URVNULWsxNg==";

fuzz_target!(|data: &[u8]| {
    let enc = laravel::encrypter::Encrypter::from_keys(Some(FIXTURE_KEYS), Some(FIXTURE_PREVIOUS))
        .expect("fixture keys are valid");
    let _ = admin::decode::decode(data, &enc, deferred::DEFAULT_CLASS);
});
