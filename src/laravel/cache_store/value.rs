//! The cache values Laravel's stores hold, as far as the worker reads them: PHP's `is_numeric` on a
//! raw value (RedisStore stores numbers unserialized) and the restart signal's number with PHP's loose
//! comparison in mind.
//!
//! Pure: no I/O, no store; each driver's byte encoding stays in its own submodule.

use crate::php::{self, Value};

/// PHP's `is_numeric` on a whole string, as an integer (floats truncated, as `(int)` would): what
/// RedisStore stores raw and what a loose `!=` compares as a number.
pub(super) fn parse_php_number(raw: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(raw).ok()?;
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0B', '\x0C']);
    let t = t.trim_end_matches([' ', '\t', '\n', '\r', '\x0B', '\x0C']);
    if t.is_empty()
        || !t
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
    {
        return None;
    }
    if let Ok(n) = t.parse::<i64>() {
        return Some(n);
    }
    t.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(|f| f as i64)
}

/// The restart signal's serialized value as a number, with PHP's loose comparison in mind
/// (`"123" == 123`); the reason when it is not one.
pub(super) fn signal_number(raw: &[u8]) -> Result<i64, String> {
    match php::unserialize(raw).map_err(|e| e.to_string())? {
        Value::Int(n) => Ok(n),
        Value::Float(f) if f.is_finite() => Ok(f as i64),
        Value::Str(s) => parse_php_number(&s).ok_or_else(|| "a non-numeric string".into()),
        _ => Err("not an integer".into()),
    }
}

/// PHP's `(int)` cast of a cache value, as `FileStore::increment` and `DatabaseStore::increment`
/// apply it to the current value (a numeric string is read up to its first non-digit).
pub(super) fn int_cast(value: &Value) -> i64 {
    match value {
        Value::Null => 0,
        Value::Bool(b) => i64::from(*b),
        Value::Int(i) => *i,
        Value::Float(f) if f.is_finite() => *f as i64,
        Value::Float(_) => 0,
        Value::Str(s) => parse_php_number(s)
            .unwrap_or_else(|| crate::laravel::payload::php_int_cast(&String::from_utf8_lossy(s))),
        Value::Array(items) => i64::from(!items.is_empty()),
        _ => 1,
    }
}

/// PHP's `is_numeric` on a cache value: numbers, and strings that read whole as one.
pub(super) fn is_numeric(value: &Value) -> bool {
    match value {
        Value::Int(_) | Value::Float(_) => true,
        Value::Str(s) => super::redis::is_php_numeric(s),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_numbers_parse_like_is_numeric() {
        assert_eq!(parse_php_number(b"1712345678"), Some(1_712_345_678));
        assert_eq!(parse_php_number(b" 12"), Some(12));
        assert_eq!(parse_php_number(b"1.5e3"), Some(1500));
        assert_eq!(parse_php_number(b"i:1;"), None);
        assert_eq!(parse_php_number(b""), None);
        assert_eq!(parse_php_number(b"abc"), None);
    }

    #[test]
    fn int_cast_and_is_numeric_are_phps() {
        assert_eq!(int_cast(&Value::Str(b"12abc".to_vec())), 12);
        assert_eq!(int_cast(&Value::Str(b"1.9e1".to_vec())), 19);
        assert_eq!(int_cast(&Value::Float(2.9)), 2);
        assert_eq!(int_cast(&Value::Null), 0);
        assert_eq!(int_cast(&Value::Bool(true)), 1);
        assert!(is_numeric(&Value::Str(b" 3".to_vec())));
        assert!(!is_numeric(&Value::Str(b"3a".to_vec())));
        assert!(!is_numeric(&Value::Null));
    }

    #[test]
    fn signal_numbers_compare_loosely() {
        assert_eq!(signal_number(b"i:1700000000;"), Ok(1_700_000_000));
        assert_eq!(signal_number(b"d:1700000000.5;"), Ok(1_700_000_000));
        assert_eq!(signal_number(b"s:3:\"123\";"), Ok(123));
        assert_eq!(
            signal_number(b"s:3:\"abc\";"),
            Err("a non-numeric string".into())
        );
        assert_eq!(signal_number(b"b:1;"), Err("not an integer".into()));
        assert!(signal_number(b"i:1").is_err());
    }
}
