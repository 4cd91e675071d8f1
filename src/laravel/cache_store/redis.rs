//! Laravel's `RedisStore` on the `cache` connection: key `<REDIS_PREFIX><CACHE_PREFIX>:<key>` (the `:`
//! only on 8–10 with a non-empty cache prefix), `SETEX` for a TTL (at least 1 s), `SET` for `forever`,
//! `DEL` to forget. Values: PHP numbers (and numeric strings) raw, as PHP's `(string)` gives them,
//! everything else `serialize()`d; a raw numeric value reads back as a PHP string, as in PHP.
//!
//! Read-modify-write ([`update`]) is a `WATCH`/`MULTI`/`EXEC` transaction on a connection of its own,
//! so a write by PHP or by another worker between our read and our write makes us read again.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::RedisError;
use tokio::sync::Mutex;

use crate::php::{self, Value};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// A transaction that keeps losing to other writers gives up after this many attempts.
const MAX_TXN_ATTEMPTS: usize = 20;

pub(super) async fn connect(client: &redis::Client) -> Result<ConnectionManager, RedisError> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(CONNECT_TIMEOUT)
        .set_response_timeout(RESPONSE_TIMEOUT)
        .set_number_of_retries(1)
        .set_max_delay(1_000);
    ConnectionManager::new_with_config(client.clone(), config).await
}

/// `RedisStore::serialize`: `is_numeric($value) ? $value : serialize($value)` (INF and NAN serialized).
pub(super) fn encode(value: &Value) -> Vec<u8> {
    match value {
        Value::Int(i) => i.to_string().into_bytes(),
        Value::Float(f) if f.is_finite() => php_float_string(*f).into_bytes(),
        Value::Str(s) if is_php_numeric(s) => s.clone(),
        other => php::serialize(other),
    }
}

/// `RedisStore::unserialize`: a numeric value is returned as the string it is; anything else unserialized.
pub(super) fn decode(raw: &[u8]) -> Result<Value, String> {
    if is_php_numeric(raw) {
        return Ok(Value::Str(raw.to_vec()));
    }
    php::unserialize(raw).map_err(|e| e.to_string())
}

pub(super) async fn get(
    conn: &ConnectionManager,
    key: &str,
) -> Result<Option<Vec<u8>>, RedisError> {
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut conn.clone())
        .await
}

/// `MGET keys` (`RedisStore::many`): one value or `None` per key, in order.
pub(super) async fn mget(
    conn: &ConnectionManager,
    keys: &[String],
) -> Result<Vec<Option<Vec<u8>>>, RedisError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    redis::cmd("MGET")
        .arg(keys)
        .query_async(&mut conn.clone())
        .await
}

/// `SETEX key max(1, ttl)` or, with no TTL, `SET key`.
pub(super) async fn set(
    conn: &ConnectionManager,
    key: &str,
    value: &[u8],
    ttl: Option<i64>,
) -> Result<(), RedisError> {
    set_cmd(key, value, ttl)
        .query_async::<()>(&mut conn.clone())
        .await
}

fn set_cmd(key: &str, value: &[u8], ttl: Option<i64>) -> redis::Cmd {
    match ttl {
        Some(secs) => {
            let mut c = redis::cmd("SETEX");
            c.arg(key).arg(secs.max(1)).arg(value);
            c
        }
        None => {
            let mut c = redis::cmd("SET");
            c.arg(key).arg(value);
            c
        }
    }
}

/// `INCRBY key by` (`RedisStore::increment`): the new value; the key's TTL is left as it is.
pub(super) async fn incr_by(
    conn: &ConnectionManager,
    key: &str,
    by: i64,
) -> Result<i64, RedisError> {
    redis::cmd("INCRBY")
        .arg(key)
        .arg(by)
        .query_async(&mut conn.clone())
        .await
}

pub(super) async fn del(conn: &ConnectionManager, keys: &[String]) -> Result<u64, RedisError> {
    if keys.is_empty() {
        return Ok(0);
    }
    redis::cmd("DEL")
        .arg(keys)
        .query_async(&mut conn.clone())
        .await
}

/// Reads `key`, computes the new value with `f` and writes it with `ttl`, atomically with respect to every
/// other client: retried when the key changed in between. `txn` holds the transaction connection (opened
/// on first use, dropped after an error); it is locked for the whole transaction because `WATCH` is
/// per connection.
pub(super) async fn update(
    client: &redis::Client,
    txn: &Mutex<Option<MultiplexedConnection>>,
    key: &str,
    ttl: Option<i64>,
    f: &mut (dyn FnMut(Option<&[u8]>) -> Vec<u8> + Send),
) -> Result<(), RedisError> {
    let mut guard = txn.lock().await;
    let result = async {
        if guard.is_none() {
            let config = redis::AsyncConnectionConfig::new()
                .set_connection_timeout(CONNECT_TIMEOUT)
                .set_response_timeout(RESPONSE_TIMEOUT);
            *guard = Some(
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?,
            );
        }
        let conn = guard.as_mut().expect("connected above");
        for _ in 0..MAX_TXN_ATTEMPTS {
            redis::cmd("WATCH").arg(key).query_async::<()>(conn).await?;
            let current: Option<Vec<u8>> = redis::cmd("GET").arg(key).query_async(conn).await?;
            let new = f(current.as_deref());
            let mut pipe = redis::pipe();
            pipe.atomic().add_command(set_cmd(key, &new, ttl));
            let reply: redis::Value = pipe.query_async(conn).await?;
            if !matches!(reply, redis::Value::Nil) {
                return Ok(());
            }
        }
        Err(RedisError::from((
            redis::ErrorKind::TryAgain,
            "the key kept changing during the transaction",
        )))
    }
    .await;
    if result
        .as_ref()
        .is_err_and(|e| !matches!(e.kind(), redis::ErrorKind::TryAgain))
    {
        *guard = None;
    }
    result
}

/// PHP's `is_numeric` on a string (PHP 8: surrounding whitespace allowed; no hex, no `INF`).
pub(super) fn is_php_numeric(raw: &[u8]) -> bool {
    let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C);
    let start = raw.iter().position(|b| !ws(b)).unwrap_or(raw.len());
    let end = raw.iter().rposition(|b| !ws(b)).map_or(start, |i| i + 1);
    let s = &raw[start..end];
    let s = s
        .strip_prefix(b"+")
        .or_else(|| s.strip_prefix(b"-"))
        .unwrap_or(s);
    let int_digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    let mut rest = &s[int_digits..];
    let mut frac_digits = 0;
    if let Some(r) = rest.strip_prefix(b".") {
        frac_digits = r.iter().take_while(|b| b.is_ascii_digit()).count();
        rest = &r[frac_digits..];
    }
    if int_digits + frac_digits == 0 {
        return false;
    }
    if let Some(r) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        let r = r
            .strip_prefix(b"+")
            .or_else(|| r.strip_prefix(b"-"))
            .unwrap_or(r);
        let exp_digits = r.iter().take_while(|b| b.is_ascii_digit()).count();
        return exp_digits > 0 && exp_digits == r.len();
    }
    rest.is_empty()
}

/// A float as PHP's `(string)` cast writes it (`precision` = 14): 14 significant digits, trailing zeros
/// dropped, exponent form (`1.0E+15`, `1.0E-5`) outside 1e-4 ≤ |x| < 1e15.
pub(super) fn php_float_string(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sci = format!("{:.13e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let decpt = exp + 1;
    let mut out = String::from(if f < 0.0 { "-" } else { "" });
    if !(-3..=14).contains(&decpt) {
        out.push_str(&digits[..1]);
        out.push('.');
        out.push_str(if digits.len() > 1 { &digits[1..] } else { "0" });
        out.push_str(&format!(
            "E{}{}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        ));
    } else if decpt <= 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat(decpt.unsigned_abs() as usize));
        out.push_str(digits);
    } else {
        let d = decpt as usize;
        if digits.len() <= d {
            out.push_str(digits);
            out.push_str(&"0".repeat(d - digits.len()));
        } else {
            out.push_str(&digits[..d]);
            out.push('.');
            out.push_str(&digits[d..]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_raw_and_the_rest_serialized() {
        assert_eq!(encode(&Value::Int(1_712_345_678)), b"1712345678");
        assert_eq!(encode(&Value::Float(2.5)), b"2.5");
        assert_eq!(encode(&Value::Str(b" 12".to_vec())), b" 12");
        assert_eq!(encode(&Value::Str(b"12a".to_vec())), b"s:3:\"12a\";");
        assert_eq!(encode(&Value::Bool(true)), b"b:1;");
        assert_eq!(encode(&Value::Float(f64::INFINITY)), b"d:INF;");
        assert_eq!(decode(b"42").unwrap(), Value::Str(b"42".to_vec()));
        assert_eq!(decode(b"i:42;").unwrap(), Value::Int(42));
        assert!(decode(b"garbage").is_err());
    }

    #[test]
    fn is_numeric_is_phps() {
        for yes in ["1", " 1", "1 ", "-1.5", ".5", "5.", "1e5", "+1E-3", "007"] {
            assert!(is_php_numeric(yes.as_bytes()), "{yes}");
        }
        for no in [
            "", " ", ".", "e5", "1e", "0x1A", "INF", "1_000", "1 2", "--1",
        ] {
            assert!(!is_php_numeric(no.as_bytes()), "{no}");
        }
    }

    #[test]
    fn floats_print_like_php_string_cast() {
        assert_eq!(php_float_string(0.1 + 0.2), "0.3");
        assert_eq!(php_float_string(100.0), "100");
        assert_eq!(php_float_string(-2.5), "-2.5");
        assert_eq!(php_float_string(1.0 / 3.0), "0.33333333333333");
        assert_eq!(php_float_string(123_456.789), "123456.789");
        assert_eq!(php_float_string(1e15), "1.0E+15");
        assert_eq!(php_float_string(1e14), "1.0E+14");
        assert_eq!(php_float_string(99_999_999_999_999.0), "99999999999999");
        assert_eq!(php_float_string(0.0001), "0.0001");
        assert_eq!(php_float_string(0.00001), "1.0E-5");
        assert_eq!(php_float_string(1.5e-7), "1.5E-7");
    }
}
