//! Fuzz target: the encrypter (APP_KEY) on arbitrary input with a fixed key never panics, including
//! input that passes the MAC/tag check: the first byte picks the shape of the attempt.
//!
//! - 0: the bytes as the encrypted string itself (base64 of `{iv, value, mac, tag}`), hostile as is.
//! - 1: a CBC envelope whose ciphertext is arbitrary bytes but whose HMAC is valid for the key: the
//!   padding and block-length checks must refuse it as an error, not a panic.
//! - 2/3: arbitrary plaintext encrypted properly (CBC / GCM) with an IV from the input: it must
//!   decrypt to the same bytes, and the worker's next steps (unserialize twice, as `Payload::command`
//!   does) must cope with a plaintext that is valid for the MAC but not what Laravel writes.

#![no_main]

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

#[allow(dead_code)]
mod laravel;
#[allow(dead_code, unused_imports)]
#[path = "../../src/php/mod.rs"]
mod php;

use laravel::encrypter::Encrypter;
use laravel::payload::Payload;

const KEY: &str = "base64:ZGVmZXItd29ya2VyLWZpeHR1cmUtVEVTVC1rZXktMzI=";
const PREVIOUS: &str = "base64:Zml4dHVyZS1URVNULWsxNg==";

fn key_bytes() -> Vec<u8> {
    B64.decode(KEY.trim_start_matches("base64:")).unwrap()
}

fn command_payload(encrypted: &str) -> Vec<u8> {
    serde_json::json!({
        "uuid": "fuzz", "displayName": "App\\Jobs\\DeferredJob", "attempts": 0,
        "job": "Illuminate\\Queue\\CallQueuedHandler@call",
        "data": {"commandName": "App\\Jobs\\DeferredJob", "command": encrypted}
    })
    .to_string()
    .into_bytes()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let enc = Encrypter::from_keys(Some(KEY), Some(PREVIOUS)).expect("fixed keys are valid");
    match mode % 4 {
        0 => {
            let _ = enc.decrypt(&String::from_utf8_lossy(rest));
        }
        1 => {
            let (iv, value) = rest.split_at(rest.len().min(16));
            let mut iv16 = [0u8; 16];
            iv16[..iv.len()].copy_from_slice(iv);
            let iv_b64 = B64.encode(iv16);
            let value_b64 = B64.encode(value);
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key_bytes()).unwrap();
            mac.update(iv_b64.as_bytes());
            mac.update(value_b64.as_bytes());
            let mac: String = mac
                .finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let env = serde_json::json!({"iv": iv_b64, "value": value_b64, "mac": mac, "tag": ""});
            let _ = enc.decrypt(&B64.encode(env.to_string()));
        }
        m => {
            let gcm = m == 3;
            let n = if gcm { 12 } else { 16 };
            let (iv, plain) = rest.split_at(rest.len().min(n));
            let mut ivn = vec![0u8; n];
            ivn[..iv.len()].copy_from_slice(iv);
            let sealed = enc
                .encrypt_with_iv(plain, &ivn, gcm)
                .expect("encrypting with a valid key and IV");
            assert_eq!(
                enc.decrypt(&sealed).expect("our own ciphertext decrypts"),
                plain,
                "round trip"
            );
            if let Ok(p) = Payload::parse(&command_payload(&sealed)) {
                let _ = p.command(&enc, &php::Limits::default());
                let _ = p.command(&Encrypter::none(), &php::Limits::default());
            }
        }
    }
});
