//! Replays the real-Laravel fixture corpus (fixtures/manifest.json): every payload decodes to what the
//! manifest says, every command string survives `serialize(unserialize(x))` byte for byte, and every
//! truncation of every fixture is a clean error.

use std::path::{Path, PathBuf};

use defer_worker::laravel::encrypter::Encrypter;
use defer_worker::laravel::payload::Payload;
use defer_worker::ops::decode::decode;
use defer_worker::php;
use serde_json::Value as Json;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn manifest() -> Vec<Json> {
    manifest_in(&fixtures())
}

fn manifest_in(dir: &Path) -> Vec<Json> {
    let text = std::fs::read_to_string(dir.join("manifest.json")).expect("manifest.json");
    let m: Json = serde_json::from_str(&text).expect("manifest is JSON");
    let entries = match m {
        Json::Array(a) => a,
        Json::Object(mut o) => match o.remove("fixtures").or_else(|| o.remove("entries")) {
            Some(Json::Array(a)) => a,
            _ => panic!("manifest has no fixture list"),
        },
        _ => panic!("manifest is neither a list nor an object"),
    };
    assert!(
        entries.len() >= 30,
        "the corpus should cover every case of the issue, got {}",
        entries.len()
    );
    entries
}

fn encrypter_for(entry: &Json) -> Encrypter {
    let key = entry.get("app_key").and_then(Json::as_str);
    Encrypter::from_keys(key, None).expect("manifest key is valid")
}

fn raw(entry: &Json) -> Vec<u8> {
    raw_in(&fixtures(), entry)
}

fn raw_in(dir: &Path, entry: &Json) -> Vec<u8> {
    let file = entry["file"].as_str().expect("file");
    std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// JSON equality where numbers compare as numbers (PHP writes 1.0 as 1.0, serde_json may write 1.0 as 1.0 or 1).
fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => {
                let (f, g) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                f == g && f.is_sign_negative() == g.is_sign_negative()
            }
        },
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k1, v1), (k2, v2))| k1 == k2 && same(v1, v2))
        }
        _ => a == b,
    }
}

#[test]
fn every_fixture_decodes_to_its_manifest_entry() {
    check_corpus(&fixtures());
}

/// Real Laravel regenerates the corpus now (scripts/regen-fixtures.sh into a temp dir), and what it
/// writes today decodes as the manifest it writes says: the harness and the decoder stay in step.
#[test]
fn a_freshly_regenerated_corpus_decodes_too() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/regen-fixtures.sh"))
        .env("FIXTURES_OUT", dir.path())
        .output()
        .expect("run scripts/regen-fixtures.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fresh = manifest_in(dir.path());
    assert_eq!(fresh.len(), manifest().len(), "the same set of fixtures");
    check_corpus(dir.path());
}

fn check_corpus(dir: &Path) {
    let mut deferred = 0;
    for entry in manifest_in(dir) {
        let file = entry["file"].as_str().unwrap().to_owned();
        let out = decode(
            &raw_in(dir, &entry),
            &encrypter_for(&entry),
            defer_worker::deferred::DEFAULT_CLASS,
        )
        .unwrap_or_else(|e| panic!("{file}: {e}"));
        for key in [
            "uuid",
            "displayName",
            "attempts",
            "maxTries",
            "backoff",
            "timeout",
            "retryUntil",
        ] {
            if let Some(expected) = entry.get(key) {
                assert!(
                    same(&out[key], expected),
                    "{file}: {key} is {} not {expected}",
                    out[key]
                );
            }
        }
        if let Some(enc) = entry.get("encrypted").and_then(Json::as_bool) {
            assert_eq!(out["encrypted"], enc, "{file}: encrypted");
        }
        let expected = &entry["deferred"];
        assert!(
            same(&out["deferred"], expected),
            "{file}: deferred is\n{}\nexpected\n{}",
            serde_json::to_string_pretty(&out["deferred"]).unwrap(),
            serde_json::to_string_pretty(expected).unwrap()
        );
        if !expected.is_null() {
            deferred += 1;
        }
        if let Some(class) = entry.get("command_class").and_then(Json::as_str) {
            assert_eq!(out["command"]["__class"], class, "{file}: command class");
        }
    }
    assert!(deferred >= 10, "too few DeferredJob fixtures: {deferred}");
}

#[test]
fn every_command_string_round_trips_byte_for_byte() {
    let mut checked = 0;
    for entry in manifest() {
        let file = entry["file"].as_str().unwrap().to_owned();
        let bytes = raw(&entry);
        let payload = Payload::parse(&bytes).unwrap();
        let Some(command) = payload
            .envelope()
            .data
            .as_ref()
            .and_then(|d| d.command.clone())
        else {
            continue;
        };
        let plain = if command.starts_with("O:") {
            command.into_bytes()
        } else {
            // Encrypted: check both the outer serialized string and the inner command.
            let outer = encrypter_for(&entry)
                .decrypt(&command)
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            let value = php::unserialize(&outer).unwrap();
            assert_eq!(php::serialize(&value), outer, "{file}: outer round trip");
            match value {
                php::Value::Str(inner) => inner,
                other => panic!("{file}: decrypted to {other:?}"),
            }
        };
        let value = php::unserialize(&plain).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            php::serialize(&value),
            plain,
            "{file}: serialize(unserialize(x)) != x"
        );
        checked += 1;
    }
    assert!(checked >= 25, "only {checked} command strings checked");
}

#[test]
fn every_truncation_of_every_fixture_is_a_clean_error() {
    for entry in manifest() {
        let file = entry["file"].as_str().unwrap().to_owned();
        let bytes = raw(&entry);
        let enc = encrypter_for(&entry);
        // The payload JSON: cut everywhere for small ones, at ~200 points for the large ones.
        let step = (bytes.len() / 200).max(1);
        for cut in (0..bytes.len()).step_by(step) {
            assert!(
                decode(&bytes[..cut], &enc, defer_worker::deferred::DEFAULT_CLASS).is_err(),
                "{file}: truncation at {cut} decoded"
            );
        }
        // The command string inside: every truncation is a PHP parse error with an offset.
        let payload = Payload::parse(&bytes).unwrap();
        if let Some(cmd) = payload
            .envelope()
            .data
            .as_ref()
            .and_then(|d| d.command.as_deref())
        {
            if cmd.starts_with("O:") {
                let cmd = cmd.as_bytes();
                let step = (cmd.len() / 500).max(1);
                for cut in (0..cmd.len()).step_by(step) {
                    let err = php::unserialize(&cmd[..cut]).expect_err("truncated command parsed");
                    assert!(
                        err.offset <= cut,
                        "{file}: offset {} past the cut {cut}",
                        err.offset
                    );
                }
            }
        }
    }
}
