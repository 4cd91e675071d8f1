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

use serde_json::Value as Json;

use crate::php::json_encode;

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
    Ok(json_encode(&value))
}

#[cfg(test)]
mod tests {
    use super::*;

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
