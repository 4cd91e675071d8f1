//! `defer-worker decode` as a user runs it: files, stdin, keys, and one clear line on bad input.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value as Json;

use crate::support::repo;

fn decode(args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_defer-worker"))
        .arg("decode")
        .args(args)
        .env_remove("APP_KEY")
        .env_remove("APP_PREVIOUS_KEYS")
        .envs(env.iter().copied())
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run defer-worker decode");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.unwrap_or_default())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn json(out: &Output) -> Json {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON document")
}

#[test]
fn decodes_a_fixture_file_and_stdin_alike() {
    let from_file = json(&decode(&["fixtures/payloads/whatsapp.json"], None, &[]));
    assert_eq!(
        from_file["deferred"],
        serde_json::json!({"action": "whatsapp_notification", "data": {"order_id": 42}})
    );
    assert_eq!(from_file["displayName"], "App\\Jobs\\DeferredJob");
    assert_eq!(from_file["command"]["__class"], "App\\Jobs\\DeferredJob");
    let raw = std::fs::read(repo().join("fixtures/payloads/whatsapp.json")).unwrap();
    let mut with_newline = raw.clone();
    with_newline.push(b'\n'); // as `redis-cli --raw` prints it
    assert_eq!(json(&decode(&["-"], Some(&with_newline), &[])), from_file);
}

#[test]
fn encrypted_payloads_need_the_key_from_the_flag_or_the_environment() {
    let manifest: Json =
        serde_json::from_slice(&std::fs::read(repo().join("fixtures/manifest.json")).unwrap())
            .unwrap();
    let entry = manifest
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["file"] == "payloads/encrypted_aes_256_gcm.json")
        .expect("GCM fixture");
    let key = entry["app_key"].as_str().unwrap();
    let file = "fixtures/payloads/encrypted_aes_256_gcm.json";
    let by_flag = json(&decode(&[file, "--app-key", key], None, &[]));
    assert_eq!(by_flag["encrypted"], true);
    assert_eq!(by_flag["deferred"], entry["deferred"]);
    assert_eq!(json(&decode(&[file], None, &[("APP_KEY", key)])), by_flag);

    let missing = decode(&[file], None, &[]);
    assert_eq!(missing.status.code(), Some(1));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("APP_KEY"), "{err}");
    let wrong = decode(
        &[
            "fixtures/payloads/encrypted_aes_256_cbc.json",
            "--app-key",
            "base64:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        ],
        None,
        &[],
    );
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("The MAC is invalid"));
}

#[test]
fn bad_input_is_one_line_that_says_what_and_where() {
    let cases: [(&[u8], &str); 4] = [
        (b"{\"uuid\":", "not valid JSON"),
        (b"\xff\xfe", "not valid UTF-8"),
        (br#"{"data":{"commandName":"App\\Jobs\\DeferredJob","command":"O:20:\"App\\Jobs\\DeferredJob\":2:{s:9:\"\u0000*\u0000action\";s:99:\"x\";}"},"attempts":0}"#, "at byte"),
        (br#"{"job":"Illuminate\\Queue\\CallQueuedHandler@call","data":{"commandName":"App\\Jobs\\DeferredJob","command":"O:8:\"stdClass\":0:{}"},"attempts":0}"#, "stdClass"),
    ];
    for (input, needle) in cases {
        let out = decode(&["-"], Some(input), &[]);
        assert_eq!(out.status.code(), Some(1), "{needle}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(
            err.contains(needle) && err.contains("<stdin>"),
            "{needle}: {err}"
        );
        assert!(out.stdout.is_empty());
    }
    let missing = decode(&["/nonexistent/payload.json"], None, &[]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/payload.json"));
}
