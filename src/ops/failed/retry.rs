//! The payload `php artisan queue:retry` pushes back for a failed job, byte for byte.
//!
//! `RetryCommand::resetAttempts` runs `json_decode($payload, true)`, sets `attempts` to 0 when it is
//! set, and `json_encode`s the result **with no flags**; `refreshRetryUntil` decodes and encodes once
//! more the same way. So the pushed bytes are PHP's flag-less JSON of a PHP *array*:
//! - JSON objects became PHP arrays, so an object whose keys are `"0"`, `"1"`, … in order (and the
//!   empty object `{}`) comes back as a JSON list (`[...]`, `[]`);
//! - every non-ASCII character is written `\uXXXX` (lowercase hex, surrogate pairs above U+FFFF),
//!   `/` as `\/`, control characters as `\b \f \n \r \t` or `\u00XX`; DEL stays raw;
//! - floats in PHP's shortest round-trip form (`serialize_precision = -1`, exponent with `e`), with
//!   no `.0` on whole numbers; integers beyond 64 bits became floats.
//!
//! What this module does not do: recompute `retryUntil`. PHP unserializes the command and calls its
//! `retryUntil()` *method*, which needs the app's PHP classes; the value is left as it is (right for
//! `App\Jobs\DeferredJob`, which has no such method, and for a `retryUntil` property, which PHP does
//! not refresh either). It never touches Redis or the database.

use std::fmt::Write as _;

use serde_json::{Map, Value as Json};

/// Why a failed job's payload cannot be retried as Laravel would.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RetryPayloadError {
    /// PHP's `json_decode` would return null and push the string `null`, which every worker drops.
    #[error("the payload is not valid JSON ({0}); retrying it would push `null`")]
    NotJson(String),
    #[error("the payload is JSON but not an object")]
    NotAnObject,
    /// Laravel's pop script cannot increment a missing `attempts` and would destroy the job.
    #[error("the payload has no `attempts`, so no Redis worker could take it")]
    NoAttempts,
}

/// The payload `queue:retry` pushes for a failed job whose stored payload is `payload`. For Redis
/// (`redis`) a payload without `attempts` is refused; the database driver keeps attempts in its row.
pub fn retried_payload(payload: &str, redis: bool) -> Result<String, RetryPayloadError> {
    let mut value: Json =
        serde_json::from_str(payload).map_err(|e| RetryPayloadError::NotJson(e.to_string()))?;
    let object = value
        .as_object_mut()
        .ok_or(RetryPayloadError::NotAnObject)?;
    match object.get_mut("attempts") {
        // `isset($payload['attempts'])`: present and not null.
        Some(attempts) if !attempts.is_null() => *attempts = Json::from(0),
        _ if redis => return Err(RetryPayloadError::NoAttempts),
        _ => {}
    }
    Ok(php_json_encode(&value))
}

/// `json_encode($value)` with no flags, for a value PHP obtained with `json_decode($json, true)`.
pub fn php_json_encode(value: &Json) -> String {
    let mut out = String::new();
    encode(value, &mut out);
    out
}

fn encode(value: &Json, out: &mut String) {
    match value {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => match n.as_i64() {
            Some(i) => {
                let _ = write!(out, "{i}");
            }
            // serde_json reads `-0` as the float -0.0, which PHP reads as the integer 0. PHP and
            // cjson write a negative zero as `-0`, so that is the spelling stored payloads have.
            None if n.as_f64() == Some(0.0) => out.push('0'),
            // Beyond i64 (or with a fraction/exponent) PHP holds a float.
            None => out.push_str(&php_float(n.as_f64().unwrap_or(0.0))),
        },
        Json::String(s) => escape(s, out),
        Json::Array(items) => encode_list(items.iter(), out),
        Json::Object(map) if is_php_list(map) => encode_list(map.values(), out),
        Json::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                escape(key, out);
                out.push(':');
                encode(item, out);
            }
            out.push('}');
        }
    }
}

fn encode_list<'a>(items: impl Iterator<Item = &'a Json>, out: &mut String) {
    out.push('[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        encode(item, out);
    }
    out.push(']');
}

/// Whether the PHP array decoded from this object is a list: its keys, after PHP turned canonical
/// integer strings into integers, are exactly 0, 1, … in order. True for `{}`.
fn is_php_list(map: &Map<String, Json>) -> bool {
    map.keys()
        .enumerate()
        .all(|(i, key)| php_int_key(key) == i64::try_from(i).ok())
}

/// The integer PHP stores a string array key as (`"12"` → 12), or None when it stays a string:
/// only canonical decimal integers in the i64 range (no `+`, no leading zero, not `-0`).
fn php_int_key(key: &str) -> Option<i64> {
    let digits = key.strip_prefix('-').unwrap_or(key);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && key != "-0";
    if canonical {
        key.parse().ok()
    } else {
        None
    }
}

/// A float as `json_encode` writes it: `php_gcvt(d, 17, '.', 'e')` on the shortest digits.
fn php_float(f: f64) -> String {
    // Same layout as serialize() apart from the exponent letter; a JSON number is always finite.
    crate::php::format_float(f).replace('E', "e")
}

/// `php_json_escape_string` without flags.
fn escape(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let unit = |u: u16, out: &mut String| {
        out.push_str("\\u");
        for shift in [12, 8, 4, 0] {
            out.push(char::from(HEX[usize::from((u >> shift) & 0xf)]));
        }
    };
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || !c.is_ascii() => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    unit(*u, out);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reencode(json: &str) -> String {
        php_json_encode(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn strings_are_escaped_like_php_without_flags() {
        // php -r 'echo json_encode("a/b \"q\" \\ é 🍔 \u{2028} \x01\x7f\t\n");'
        assert_eq!(
            reencode(r#""a/b \"q\" \\ é 🍔 \u2028 \u0001\u007f\t\n\b\f\r""#),
            "\"a\\/b \\\"q\\\" \\\\ \\u00e9 \\ud83c\\udf54 \\u2028 \\u0001\u{7f}\\t\\n\\b\\f\\r\""
        );
    }

    #[test]
    fn objects_decoded_as_php_arrays_become_lists_when_keys_are_0_to_n() {
        assert_eq!(reencode("{}"), "[]");
        assert_eq!(reencode("[]"), "[]");
        assert_eq!(reencode(r#"{"0":"a","1":{"x":{}}}"#), r#"["a",{"x":[]}]"#);
        assert_eq!(reencode(r#"{"1":"a","0":"b"}"#), r#"{"1":"a","0":"b"}"#);
        assert_eq!(reencode(r#"{"0":"a","01":"b"}"#), r#"{"0":"a","01":"b"}"#);
        assert_eq!(reencode(r#"{"-0":1}"#), r#"{"-0":1}"#);
        // Duplicate keys: the last value, at the first position (PHP's symtable update).
        assert_eq!(reencode(r#"{"a":1,"b":2,"a":3}"#), r#"{"a":3,"b":2}"#);
    }

    #[test]
    fn numbers_follow_php() {
        assert_eq!(
            // php -r 'echo json_encode(json_decode("[…]", true));'
            reencode(
                "[1,-0,1.0,25.5,1e5,1.5e-7,1e17,0.1,12345678901234567890,-9223372036854775808]"
            ),
            "[1,0,1,25.5,100000,1.5e-7,1.0e+17,0.1,1.2345678901234567e+19,-9223372036854775808]"
        );
        assert_eq!(reencode("1.2345678901235e+16"), "12345678901235000");
    }

    #[test]
    fn attempts_reset_and_bad_payloads_refused() {
        assert_eq!(
            retried_payload(
                r#"{"uuid":"u","data":{"command":"O:1:\"A\":0:{}"},"attempts":3}"#,
                true
            ),
            Ok(r#"{"uuid":"u","data":{"command":"O:1:\"A\":0:{}"},"attempts":0}"#.to_owned())
        );
        assert!(matches!(
            retried_payload("nope", true),
            Err(RetryPayloadError::NotJson(_))
        ));
        assert_eq!(
            retried_payload("[1]", true),
            Err(RetryPayloadError::NotAnObject)
        );
        assert_eq!(
            retried_payload(r#"{"uuid":"u"}"#, true),
            Err(RetryPayloadError::NoAttempts)
        );
        assert_eq!(
            retried_payload(r#"{"attempts":null}"#, true),
            Err(RetryPayloadError::NoAttempts)
        );
        // The database driver's payloads carry no attempts: re-encoded as is.
        assert_eq!(
            retried_payload(r#"{"uuid":"u\/v"}"#, false).as_deref(),
            Ok(r#"{"uuid":"u\/v"}"#)
        );
    }
}
