//! Fuzz target: `unserialize` never panics on any input, and whatever it accepts writes back to
//! bytes that read back to a tree that writes the same bytes again (a stable round trip).

#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code, unused_imports)]
#[path = "../../src/php/mod.rs"]
mod php;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = php::unserialize(data) else {
        return;
    };
    let out = php::serialize(&value);
    let again = match php::unserialize(&out) {
        Ok(v) => v,
        Err(e) => panic!(
            "our own output does not parse: {e}: {:?}",
            String::from_utf8_lossy(&out)
        ),
    };
    assert_eq!(php::serialize(&again), out, "round trip is not stable");
    let _ = php::to_json(&value);
});
