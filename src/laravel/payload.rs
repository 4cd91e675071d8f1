//! The JSON envelope Laravel stores for a queued job (docs/laravel-queue.md §2), read exactly as PHP reads it.
//!
//! The raw bytes are kept and never re-encoded: Redis needs the exact reserved string to delete or release
//! a job, and failed_jobs needs the exact original one. Every known key is optional and tolerant of the forms
//! cjson writes back (numbers as floats, `[]` as `{}`); unknown keys (Horizon's `type`, `tags`, `pushedAt`,
//! 11.x/12.x additions) are ignored. This module does not decrypt or unserialize the command: see
//! [`Payload::command`] for that, which needs the [`Encrypter`].

use serde::de::{self, Deserializer};
use serde::Deserialize;

use super::encrypter::{DecryptError, Encrypter};
use crate::php::{self, ParseError};

#[path = "payload_scan.rs"]
mod scan;

/// The `job` value of every object job: the handler that unserializes `data.command`.
pub const CALL_QUEUED_HANDLER: &str = "Illuminate\\Queue\\CallQueuedHandler@call";

/// Why a payload could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("payload is not valid UTF-8 (first bad byte at offset {0})")]
    NotUtf8(usize),
    #[error("payload is not valid JSON: {0}")]
    Json(String),
    #[error("payload is a JSON {0}, not an object")]
    NotAnObject(&'static str),
    #[error("payload has no numeric \"attempts\" key (Laravel's Redis payloads always carry one)")]
    NoAttempts,
}

/// Why `data.command` could not be turned into a PHP value.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("payload has no data.command string (job {job:?})")]
    Missing { job: String },
    #[error("data.command is encrypted and cannot be decrypted: {0}")]
    Decrypt(#[from] DecryptError),
    #[error("data.command is not valid PHP serialize() output: {0}")]
    Php(#[from] ParseError),
    #[error("data.command decrypted to something other than a serialized string (Laravel serializes twice)")]
    NotDoublySerialized,
}

/// The envelope's known keys, as Laravel names them (docs/laravel-queue.md §2.2).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    #[serde(default)]
    pub uuid: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub job: Option<String>,
    #[serde(default, deserialize_with = "lenient_int")]
    pub max_tries: Option<i64>,
    #[serde(default, deserialize_with = "lenient_int")]
    pub max_exceptions: Option<i64>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub fail_on_timeout: Option<bool>,
    #[serde(default, deserialize_with = "lenient_backoff")]
    pub backoff: Option<String>,
    #[serde(default, deserialize_with = "lenient_int")]
    pub timeout: Option<i64>,
    #[serde(default, deserialize_with = "lenient_int")]
    pub retry_until: Option<i64>,
    #[serde(default)]
    pub data: Option<Data>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient_int")]
    pub attempts: Option<i64>,
    #[serde(default, deserialize_with = "lenient_int")]
    pub created_at: Option<i64>,
    #[serde(default, deserialize_with = "lenient_int")]
    pub delay: Option<i64>,
}

/// `data` of an object job: `{commandName, command[, batchId]}`. String jobs carry arbitrary user data,
/// which is then not an object with these keys: every field is optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Data {
    pub command_name: Option<String>,
    pub command: Option<String>,
    pub batch_id: Option<String>,
}

impl<'de> Deserialize<'de> for Data {
    /// Read in place (no JSON tree of `data` is built): the three known keys of an object, each as
    /// `lenient_string` takes it, the last one winning when a key is given twice (as PHP's
    /// `json_decode`); any other key is skipped, and `data` that is not an object gives no field.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(field_identifier, rename_all = "camelCase")]
        enum Key {
            CommandName,
            Command,
            BatchId,
            #[serde(other)]
            Other,
        }
        #[derive(Deserialize)]
        struct Lenient(#[serde(deserialize_with = "lenient_string")] Option<String>);

        struct DataVisitor;
        impl<'de> de::Visitor<'de> for DataVisitor {
            type Value = Data;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("the job's data")
            }

            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Data, A::Error> {
                let mut data = Data::default();
                while let Some(key) = map.next_key::<Key>()? {
                    let field = match key {
                        Key::CommandName => &mut data.command_name,
                        Key::Command => &mut data.command,
                        Key::BatchId => &mut data.batch_id,
                        Key::Other => {
                            map.next_value::<de::IgnoredAny>()?;
                            continue;
                        }
                    };
                    *field = map.next_value::<Lenient>()?.0;
                }
                Ok(data)
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Data, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Data::default())
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Data, E> {
                Ok(Data::default())
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Data, E> {
                Ok(Data::default())
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Data, E> {
                Ok(Data::default())
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Data, E> {
                Ok(Data::default())
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<Data, E> {
                Ok(Data::default())
            }

            fn visit_unit<E: de::Error>(self) -> Result<Data, E> {
                Ok(Data::default())
            }
        }
        d.deserialize_any(DataVisitor)
    }
}

/// One job payload: the exact bytes (borrowed from the caller, never copied) plus the parsed envelope.
#[derive(Debug, Clone)]
pub struct Payload<'a> {
    raw: &'a str,
    envelope: Envelope,
}

/// The unserialized command, and whether it was encrypted.
#[derive(Debug, Clone)]
pub struct Command {
    pub value: php::Value,
    pub encrypted: bool,
}

impl<'a> Payload<'a> {
    /// Parses a payload as stored in Redis or in `failed_jobs.payload`. `attempts` is not required here
    /// (failed_jobs rows of other drivers lack it); the worker checks [`Payload::attempts`] itself.
    pub fn parse(raw: &'a [u8]) -> Result<Payload<'a>, PayloadError> {
        let text = std::str::from_utf8(raw).map_err(|e| PayloadError::NotUtf8(e.valid_up_to()))?;
        // The payloads Laravel writes, in one pass (payload_scan.rs); what it leaves is read below.
        if let Some(envelope) = scan::envelope(text) {
            return Ok(Payload {
                raw: text,
                envelope,
            });
        }
        // Straight into the envelope: no tree of the whole payload is built. What this path refuses
        // (not an object, bad JSON, a key given twice, which PHP's json_decode takes as the last one)
        // goes through the tree below, which reads it as before and says what is wrong.
        let object = text.trim_start().starts_with('{');
        if let Some(Ok(envelope)) = object.then(|| serde_json::from_str::<Envelope>(text)) {
            return Ok(Payload {
                raw: text,
                envelope,
            });
        }
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| PayloadError::Json(e.to_string()))?;
        let kind = match &value {
            serde_json::Value::Object(_) => None,
            serde_json::Value::Array(_) => Some("array"),
            serde_json::Value::String(_) => Some("string"),
            serde_json::Value::Number(_) => Some("number"),
            serde_json::Value::Bool(_) => Some("boolean"),
            serde_json::Value::Null => Some("null"),
        };
        if let Some(kind) = kind {
            return Err(PayloadError::NotAnObject(kind));
        }
        let envelope: Envelope =
            serde_json::from_value(value).map_err(|e| PayloadError::Json(e.to_string()))?;
        Ok(Payload {
            raw: text,
            envelope,
        })
    }

    /// The exact string this payload was parsed from.
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    pub fn uuid(&self) -> Option<&str> {
        self.envelope.uuid.as_deref()
    }

    /// The stored attempts count (the number of finished attempts), required on Redis payloads.
    pub fn attempts(&self) -> Result<i64, PayloadError> {
        self.envelope.attempts.ok_or(PayloadError::NoAttempts)
    }

    /// Laravel's `resolveName()`: `displayName` when non-empty, else `job`.
    pub fn display_name(&self) -> &str {
        match (&self.envelope.display_name, &self.envelope.job) {
            (Some(n), _) if !n.is_empty() => n,
            (_, Some(j)) => j,
            _ => "",
        }
    }

    /// `data.commandName` for object jobs; `None` for string jobs (`Class@method`) and closures' absence.
    pub fn command_name(&self) -> Option<&str> {
        self.envelope.data.as_ref()?.command_name.as_deref()
    }

    /// True when the job goes through `CallQueuedHandler@call` (an object job with a serialized command).
    pub fn is_object_job(&self) -> bool {
        self.envelope.job.as_deref() == Some(CALL_QUEUED_HANDLER)
    }

    /// Laravel's `backoff()` (12.11+: falling back to `delay`) for the given 1-based attempt, in seconds.
    pub fn backoff_for(&self, attempt: i64) -> Option<u64> {
        let list = match (&self.envelope.backoff, self.envelope.delay) {
            (Some(b), _) => b.clone(),
            (None, Some(d)) => d.to_string(),
            (None, None) => return None,
        };
        Some(backoff_at(&list, attempt))
    }

    /// Unserializes `data.command`, decrypting first unless it starts with `O:` (CallQueuedHandler's rule).
    pub fn command(
        &self,
        encrypter: &Encrypter,
        limits: &php::Limits,
    ) -> Result<Command, CommandError> {
        let cmd = self
            .envelope
            .data
            .as_ref()
            .and_then(|d| d.command.as_deref())
            .ok_or_else(|| CommandError::Missing {
                job: self.display_name().to_owned(),
            })?;
        if cmd.starts_with("O:") {
            let value = php::unserialize_with(cmd.as_bytes(), limits)?;
            return Ok(Command {
                value,
                encrypted: false,
            });
        }
        let plain = encrypter.decrypt(cmd)?;
        let inner = match php::unserialize_with(&plain, limits)? {
            php::Value::Str(bytes) => bytes,
            _ => return Err(CommandError::NotDoublySerialized),
        };
        let value = php::unserialize_with(&inner, limits)?;
        Ok(Command {
            value,
            encrypted: true,
        })
    }
}

/// Picks element `attempt - 1` of Laravel's comma list, clamped to the last one, cast as PHP's `(int)` does.
pub fn backoff_at(list: &str, attempt: i64) -> u64 {
    let items: Vec<&str> = list.split(',').collect();
    let idx = usize::try_from(attempt.saturating_sub(1))
        .unwrap_or(0)
        .min(items.len() - 1);
    php_int_cast(items[idx]).max(0) as u64
}

/// PHP's `(int)` cast of a string: leading whitespace, an optional sign, then digits; anything else stops it.
pub fn php_int_cast(s: &str) -> i64 {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut n: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        n = n.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if neg {
        -n
    } else {
        n
    }
}

fn lenient_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n.as_i64().or_else(|| {
            // cjson may write an integer as a float (e.g. 1e+16); accept integral values only.
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                .map(|f| f as i64)
        }),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Bool(b) => Some(b),
        serde_json::Value::Number(n) => Some(n.as_f64() != Some(0.0)),
        _ => None,
    })
}

fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// Laravel writes backoff as a comma string; accept a bare number or a list too (hand-made payloads).
fn lenient_backoff<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Array(items) if !items.is_empty() => Some(
            items
                .iter()
                .map(|i| match i {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"uuid":"0b0c9f5e-8f2a-4c1e-9f64-1d2c3b4a5e6f","displayName":"App\\Jobs\\DeferredJob","job":"Illuminate\\Queue\\CallQueuedHandler@call","maxTries":null,"maxExceptions":null,"failOnTimeout":false,"backoff":"10,60","timeout":null,"retryUntil":null,"data":{"commandName":"App\\Jobs\\DeferredJob","command":"O:20:\"App\\Jobs\\DeferredJob\":0:{}"},"id":"Xq3kP9vT0aL2mN8bC4dF6gH1jK5sR7wY","attempts":0,"type":"job","tags":[],"pushedAt":"1700000000.1"}"#;

    #[test]
    fn parses_the_envelope_and_keeps_the_raw_string() {
        let p = Payload::parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(p.raw(), SAMPLE);
        assert_eq!(p.uuid(), Some("0b0c9f5e-8f2a-4c1e-9f64-1d2c3b4a5e6f"));
        assert_eq!(p.display_name(), "App\\Jobs\\DeferredJob");
        assert_eq!(p.command_name(), Some("App\\Jobs\\DeferredJob"));
        assert!(p.is_object_job());
        assert_eq!(p.attempts().unwrap(), 0);
        assert_eq!(p.envelope().fail_on_timeout, Some(false));
        assert_eq!(
            p.envelope().id.as_deref(),
            Some("Xq3kP9vT0aL2mN8bC4dF6gH1jK5sR7wY")
        );
    }

    #[test]
    fn backoff_is_indexed_by_attempt_and_clamped() {
        let p = Payload::parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(p.backoff_for(1), Some(10));
        assert_eq!(p.backoff_for(2), Some(60));
        assert_eq!(p.backoff_for(7), Some(60));
        assert_eq!(backoff_at("5", 3), 5);
        assert_eq!(backoff_at(" 7abc,x", 1), 7);
        assert_eq!(backoff_at(" 7abc,x", 2), 0);
        assert_eq!(backoff_at("-3", 1), 0);
    }

    #[test]
    fn twelve_x_delay_is_the_backoff_fallback_and_cjson_numbers_are_read() {
        let p = Payload::parse(
            br#"{"backoff":null,"delay":30,"attempts":1.0,"maxTries":3,"retryUntil":1767225600}"#,
        )
        .unwrap();
        assert_eq!(p.backoff_for(1), Some(30));
        assert_eq!(p.attempts().unwrap(), 1);
        assert_eq!(p.envelope().retry_until, Some(1_767_225_600));
        let none = Payload::parse(br#"{"attempts":0}"#).unwrap();
        assert_eq!(none.backoff_for(1), None);
        assert_eq!(none.display_name(), "");
    }

    #[test]
    fn string_jobs_have_user_data_and_no_command_name() {
        let p = Payload::parse(br#"{"displayName":"App\\Handlers\\Legacy","job":"App\\Handlers\\Legacy@handle","data":{"x":1},"attempts":0}"#).unwrap();
        assert!(!p.is_object_job());
        assert_eq!(p.command_name(), None);
        let e = p
            .command(&Encrypter::none(), &php::Limits::default())
            .unwrap_err();
        assert!(e.to_string().contains("no data.command"), "{e}");
    }

    #[test]
    fn data_is_read_in_place_with_every_form_it_can_take() {
        let data = |json: &str| {
            let text = format!(r#"{{"attempts":0,"data":{json}}}"#);
            let p = Payload::parse(text.as_bytes()).unwrap();
            let d = p.envelope().data.clone().unwrap_or_default();
            (d.command_name, d.command, d.batch_id)
        };
        let s = |v: &str| Some(v.to_owned());
        // Unknown keys (nested or not) are skipped; numbers are read as strings; escapes are undone.
        assert_eq!(
            data(
                r#"{"x":{"y":[1,{"z":null}]},"commandName":"A\\B","command":"O:1:\"x\":0:{}","batchId":7}"#
            ),
            (s("A\\B"), s("O:1:\"x\":0:{}"), s("7"))
        );
        // Other types give no field; so does data that is not an object.
        assert_eq!(
            data(r#"{"command":true,"commandName":[1]}"#),
            (None, None, None)
        );
        for other in [r#""""#, "[1,[2]]", "3", "-1.5", "null", "false"] {
            assert_eq!(data(other), (None, None, None), "{other}");
        }
        // A key given twice: the last one, as PHP's json_decode (the payload takes the tree path).
        assert_eq!(
            data(r#"{"command":"first","command":"last"}"#),
            (None, s("last"), None)
        );
    }

    #[test]
    fn bad_payloads_say_what_is_wrong() {
        assert!(matches!(
            Payload::parse(b"{\"a\":\xff}"),
            Err(PayloadError::NotUtf8(5))
        ));
        assert!(matches!(
            Payload::parse(b"[1]"),
            Err(PayloadError::NotAnObject("array"))
        ));
        let e = Payload::parse(b"{\"uuid\":").unwrap_err();
        assert!(
            e.to_string().starts_with("payload is not valid JSON"),
            "{e}"
        );
        let p = Payload::parse(b"{\"uuid\":\"u\"}").unwrap();
        assert!(matches!(p.attempts(), Err(PayloadError::NoAttempts)));
    }

    #[test]
    fn a_key_given_twice_is_read_as_its_last_value_as_php_does() {
        let p =
            Payload::parse(br#"{"uuid":"first","attempts":0,"uuid":"last","attempts":2}"#).unwrap();
        assert_eq!(p.uuid(), Some("last"));
        assert_eq!(p.attempts().unwrap(), 2);
        assert!(matches!(
            Payload::parse(b" []"),
            Err(PayloadError::NotAnObject("array"))
        ));
    }

    #[test]
    fn php_int_cast_matches_php() {
        assert_eq!(php_int_cast("12"), 12);
        assert_eq!(php_int_cast("  -4x"), -4);
        assert_eq!(php_int_cast("x"), 0);
        assert_eq!(php_int_cast(""), 0);
        assert_eq!(php_int_cast("99999999999999999999"), i64::MAX);
    }
}
