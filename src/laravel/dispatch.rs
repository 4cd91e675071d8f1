//! Building the payload the app's `defer($action, $data)` pushes, byte for byte: the serialized
//! `App\Jobs\DeferredJob` command and the JSON envelope around it, encoded as PHP's `json_encode` with
//! `JSON_UNESCAPED_UNICODE` does (docs/laravel-queue.md §2, docs/restrosaas.md §2.3).
//!
//! Two command shapes: Laravel 10 (the app; 9.4+ `SerializesModels` omits default-valued properties, so
//! only `\0*\0action` and `\0*\0data` remain) and Laravel 8 (every `InteractsWithQueue`/`Queueable`
//! property, as the 8.83 harness writes). `data` comes from JSON and is turned into the PHP array
//! `json_decode($json, true)` gives.
//!
//! The envelope is also what the next link of a chain gets ([`envelope`], `worker::chain`).
//!
//! Pure: no I/O. Pushing is [`super::redis_queue::RedisQueue::push_raw`]'s job.

use rand::distributions::Alphanumeric;
use rand::Rng;

use super::payload::CALL_QUEUED_HANDLER;
use crate::php::{self, Key, Object, Prop, Unicode, Value};

/// Which Laravel wrote the command (only the serialized properties differ; the envelope is the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandShape {
    /// Laravel 8.x: `action`, `data`, then `job`, `connection`, `queue`, `chainConnection`, `chainQueue`,
    /// `chainCatchCallbacks`, `delay`, `afterCommit` (null) and `middleware`, `chained` (empty arrays).
    Laravel8,
    /// Laravel 9.4+ (the app's 10.x): `action` and `data` only.
    Laravel10,
}

/// Why the job cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DispatchError {
    #[error(
        "data must be a JSON object or array (the job's $data is a PHP array), got a JSON {0}"
    )]
    DataNotArray(&'static str),
    #[error("the action must not be empty")]
    EmptyAction,
}

/// A payload ready to push.
#[derive(Debug, Clone)]
pub struct NewPayload {
    /// `uuid`, a random UUID v4 (`Str::uuid()`).
    pub uuid: String,
    /// `id`, 32 random `[A-Za-z0-9]` (`Str::random(32)`).
    pub id: String,
    /// The JSON envelope, as `RedisQueue::createPayload` encodes it.
    pub bytes: Vec<u8>,
}

/// `json_decode($json, true)` for the job's `$data`: objects become arrays in key order, integer-like keys
/// (`"7"`, not `"07"` or `"-0"`) become integer keys, integers that fit in 64 bits stay integers and every
/// other number becomes a float. The top level must be an object or an array.
pub fn data_from_json(json: &serde_json::Value) -> Result<Value, DispatchError> {
    match json {
        serde_json::Value::Object(_) | serde_json::Value::Array(_) => Ok(to_php(json)),
        other => Err(DispatchError::DataNotArray(json_type(other))),
    }
}

fn to_php(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::Str(s.as_bytes().to_vec()),
        serde_json::Value::Array(items) => Value::Array(
            items
                .iter()
                .zip(0_i64..)
                .map(|(v, i)| (Key::Int(i), to_php(v)))
                .collect(),
        ),
        serde_json::Value::Object(map) => {
            Value::Array(map.iter().map(|(k, v)| (array_key(k), to_php(v))).collect())
        }
    }
}

/// PHP's array-key rule: a canonical decimal i64 (no `+`, no leading zero, not `-0`) is an integer key.
fn array_key(k: &str) -> Key {
    match k.parse::<i64>() {
        Ok(n) if n.to_string() == k => Key::Int(n),
        _ => Key::Str(k.as_bytes().to_vec()),
    }
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// The command object `new DeferredJob($action, $data)` serializes to.
pub fn deferred_command(class: &str, action: &str, data: Value, shape: CommandShape) -> Value {
    let mut props = vec![
        (
            Prop::protected("action"),
            Value::Str(action.as_bytes().to_vec()),
        ),
        (Prop::protected("data"), data),
    ];
    if shape == CommandShape::Laravel8 {
        for name in [
            "job",
            "connection",
            "queue",
            "chainConnection",
            "chainQueue",
            "chainCatchCallbacks",
            "delay",
            "afterCommit",
        ] {
            props.push((Prop::public(name), Value::Null));
        }
        props.push((Prop::public("middleware"), Value::Array(Vec::new())));
        props.push((Prop::public("chained"), Value::Array(Vec::new())));
    }
    Value::Object(Object {
        class: class.to_owned(),
        props,
    })
}

/// The whole payload with fresh `uuid` and `id`.
pub fn build(
    class: &str,
    action: &str,
    data: Value,
    shape: CommandShape,
) -> Result<NewPayload, DispatchError> {
    let (uuid, id) = fresh_ids();
    let bytes = build_with_ids(class, action, data, shape, &uuid, &id)?;
    Ok(NewPayload { uuid, id, bytes })
}

/// A fresh `uuid` (`Str::uuid()`, a v4) and `id` (`Str::random(32)`, 32 `[A-Za-z0-9]`).
pub fn fresh_ids() -> (String, String) {
    let uuid = uuid::Uuid::new_v4().to_string();
    let id: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    (uuid, id)
}

/// The payload with the given `uuid` and `id` (see [`envelope`]).
pub fn build_with_ids(
    class: &str,
    action: &str,
    data: Value,
    shape: CommandShape,
    uuid: &str,
    id: &str,
) -> Result<Vec<u8>, DispatchError> {
    if action.is_empty() {
        return Err(DispatchError::EmptyAction);
    }
    let command = php::serialize(&deferred_command(class, action, data, shape));
    Ok(envelope(class, &command, uuid, id))
}

/// The envelope `createObjectPayload` + `createPayloadArray` write around an already serialized
/// command of `class`, keys in Laravel 8/10's order: `uuid, displayName, job, maxTries, maxExceptions,
/// failOnTimeout, backoff, timeout, retryUntil, data{commandName, command}, id, attempts`. DeferredJob
/// declares none of the tuning properties, so they are null (`failOnTimeout` false) and the display
/// name is the class.
pub fn envelope(class: &str, command: &[u8], uuid: &str, id: &str) -> Vec<u8> {
    let mut out = String::with_capacity(command.len() + 400);
    out.push_str("{\"uuid\":");
    json_string(&mut out, uuid.as_bytes());
    out.push_str(",\"displayName\":");
    json_string(&mut out, class.as_bytes());
    out.push_str(",\"job\":");
    json_string(&mut out, CALL_QUEUED_HANDLER.as_bytes());
    out.push_str(
        ",\"maxTries\":null,\"maxExceptions\":null,\"failOnTimeout\":false,\"backoff\":null,\
         \"timeout\":null,\"retryUntil\":null,\"data\":{\"commandName\":",
    );
    json_string(&mut out, class.as_bytes());
    out.push_str(",\"command\":");
    json_string(&mut out, command);
    out.push_str("},\"id\":");
    json_string(&mut out, id.as_bytes());
    out.push_str(",\"attempts\":0}");
    out.into_bytes()
}

/// A JSON string as PHP's `json_encode(..., JSON_UNESCAPED_UNICODE)` writes it. Invalid UTF-8 (which
/// PHP refuses) is written as U+FFFD; our input comes from Rust strings, so there is none.
fn json_string(out: &mut String, bytes: &[u8]) {
    php::json_string(out, &String::from_utf8_lossy(bytes), Unicode::Unescaped);
}

#[cfg(test)]
mod tests {
    use super::*;
    // The app's job class (`deferred::DEFAULT_CLASS`, a layer above this one).
    const DEFAULT_CLASS: &str = "App\\Jobs\\DeferredJob";

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/payloads")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Rebuilds a fixture with its own uuid and id and compares the bytes.
    fn rebuild(name: &str, action: &str, data: &str, shape: CommandShape) {
        let want = fixture(name);
        let env: serde_json::Value = serde_json::from_slice(&want).expect("fixture JSON");
        let data = data_from_json(&serde_json::from_str(data).expect("data JSON")).expect("array");
        let got = build_with_ids(
            DEFAULT_CLASS,
            action,
            data,
            shape,
            env["uuid"].as_str().expect("uuid"),
            env["id"].as_str().expect("id"),
        )
        .expect("build");
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "{name}"
        );
    }

    #[test]
    fn laravel10_shape_matches_the_corpus() {
        rebuild(
            "l10_whatsapp.json",
            "whatsapp_notification",
            r#"{"order_id":42}"#,
            CommandShape::Laravel10,
        );
        rebuild(
            "l10_empty_data.json",
            "email_notification",
            "{}",
            CommandShape::Laravel10,
        );
        rebuild(
            "l10_cache_warming_delayed.json",
            "cache_warming",
            r#"{"vendor_id":7}"#,
            CommandShape::Laravel10,
        );
    }

    #[test]
    fn laravel8_shape_matches_the_corpus() {
        rebuild(
            "whatsapp.json",
            "whatsapp_notification",
            r#"{"order_id":42}"#,
            CommandShape::Laravel8,
        );
        rebuild(
            "whatsapp_order_id_string.json",
            "whatsapp_notification",
            r#"{"order_id":"test_order_1"}"#,
            CommandShape::Laravel8,
        );
    }

    #[test]
    fn json_data_becomes_the_php_array_json_decode_gives() {
        let json: serde_json::Value = serde_json::from_str(
            r#"{"b":1,"7":[true,null],"07":2.5,"-0":-0.0,"x":1e2,"big":18446744073709551615}"#,
        )
        .expect("json");
        let v = data_from_json(&json).expect("array");
        assert_eq!(
            String::from_utf8_lossy(&php::serialize(&v)),
            "a:6:{s:1:\"b\";i:1;i:7;a:2:{i:0;b:1;i:1;N;}s:2:\"07\";d:2.5;s:2:\"-0\";d:-0;s:1:\"x\";d:100;s:3:\"big\";d:1.8446744073709552E+19;}"
        );
        assert_eq!(
            data_from_json(&serde_json::json!("x")),
            Err(DispatchError::DataNotArray("string"))
        );
    }

    #[test]
    fn strings_are_escaped_like_php() {
        let mut s = String::new();
        json_string(&mut s, "a\"\\/\u{0}\u{1f}\n\u{7f}é🙂\u{2028}".as_bytes());
        assert_eq!(s, "\"a\\\"\\\\\\/\\u0000\\u001f\\n\u{7f}é🙂\\u2028\"");
    }

    #[test]
    fn fresh_ids_have_laravels_form() {
        let p = build(
            DEFAULT_CLASS,
            "x",
            Value::Array(Vec::new()),
            CommandShape::Laravel10,
        )
        .expect("build");
        assert_eq!(p.id.len(), 32);
        assert!(p.id.bytes().all(|b| b.is_ascii_alphanumeric()));
        let uuid = uuid::Uuid::parse_str(&p.uuid).expect("uuid");
        assert_eq!(uuid.get_version_num(), 4);
        let env: serde_json::Value = serde_json::from_slice(&p.bytes).expect("JSON");
        assert_eq!(env["uuid"], p.uuid.as_str());
        assert_eq!(env["attempts"], 0);
        assert_eq!(
            build(DEFAULT_CLASS, "", Value::Null, CommandShape::Laravel10).unwrap_err(),
            DispatchError::EmptyAction
        );
    }
}
