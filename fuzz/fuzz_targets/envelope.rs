//! Fuzz target: the JSON envelope (`Payload::parse`) and every accessor the worker calls on it never
//! panic, a payload that parses keeps its exact bytes (failed_jobs must get them back unchanged), and
//! its envelope is the one serde_json reads (`Payload::parse` reads most payloads in one pass of its
//! own, `payload_scan.rs`).

#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
mod laravel;
#[allow(dead_code, unused_imports)]
#[path = "../../src/php/mod.rs"]
mod php;

use laravel::encrypter::Encrypter;
use laravel::payload::{backoff_at, php_int_cast, Envelope, Payload};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Payload::parse(data) else {
        return;
    };
    assert_eq!(
        p.raw().as_bytes(),
        data,
        "raw() must be the input, byte for byte"
    );
    let text = p.raw();
    let by_serde = serde_json::from_str::<Envelope>(text).ok().or_else(|| {
        let tree: serde_json::Value = serde_json::from_str(text).ok()?;
        serde_json::from_value(tree).ok()
    });
    assert_eq!(Some(p.envelope()), by_serde.as_ref(), "the envelope serde_json reads");
    let _ = p.uuid();
    let _ = p.attempts();
    let _ = p.display_name();
    let _ = p.command_name();
    let _ = p.is_object_job();
    for attempt in [i64::MIN, -1, 0, 1, 2, 7, i64::MAX] {
        let _ = p.backoff_for(attempt);
    }
    // A small bound, so that deep and wide commands reach the limit paths too.
    let limits = php::Limits {
        max_depth: 16,
        max_elements: 1000,
    };
    let _ = p.command(&Encrypter::none(), &limits);
    let _ = p.command(&Encrypter::none(), &php::Limits::default());
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = php_int_cast(s);
        let _ = backoff_at(s, 3);
    }
});
