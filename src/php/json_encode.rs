//! PHP's `json_encode`, for the payloads PHP itself would write: the whole-value encoder of
//! `queue:retry` (a value PHP got from `json_decode($json, true)`, written back without flags) and the
//! string escaping of Laravel's `createPayload` (`JSON_UNESCAPED_UNICODE`). Pure.
//!
//! A PHP array decoded from a JSON object is a list when its keys are `"0"`, `"1"`, … in order (and the
//! empty object `{}`), so it comes back as `[...]`; floats are written in PHP's shortest round-trip form
//! (`serialize_precision = -1`, exponent with `e`), with no `.0` on whole numbers; integers beyond 64
//! bits became floats.

use std::fmt::Write as _;

use serde_json::{Map, Value as Json};

/// `json_encode($value)` with no flags, for a value PHP obtained with `json_decode($json, true)`.
pub fn json_encode(value: &Json) -> String {
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
        Json::String(s) => string(out, s, Unicode::Escaped),
        Json::Array(items) => encode_list(items.iter(), out),
        Json::Object(map) if is_php_list(map) => encode_list(map.values(), out),
        Json::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string(out, key, Unicode::Escaped);
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
    super::format_float(f).replace('E', "e")
}

/// How non-ASCII characters are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unicode {
    /// `\uXXXX` (surrogate pairs above U+FFFF): `json_encode` without flags.
    Escaped,
    /// Raw UTF-8 but for U+2028/U+2029: `JSON_UNESCAPED_UNICODE`, as Laravel's `createPayload` uses.
    Unescaped,
}

/// A JSON string as PHP's `php_json_escape_string` writes it: `"` `\` `/` escaped, `\b \f \n \r \t`,
/// other controls as `\u00xx` (lowercase hex), DEL raw; non-ASCII as `unicode` says.
pub fn string(out: &mut String, s: &str, unicode: Unicode) {
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
            '\u{2028}' | '\u{2029}' if unicode == Unicode::Unescaped => unit(c as u16, out),
            c if u32::from(c) < 0x20 || (!c.is_ascii() && unicode == Unicode::Escaped) => {
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
        json_encode(&serde_json::from_str(json).unwrap())
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
}
