//! Retrying failed jobs as `php artisan queue:retry` does, for the CLI (`failed retry`) and the console
//! alike: which rows ([`Selection`]), the payload pushed back byte for byte ([`retried_payload`]), and the
//! push-then-forget of each row ([`retry`]), onto the connection the row names.
//!
//! The payload: `RetryCommand::resetAttempts` runs `json_decode($payload, true)`, sets `attempts` to 0
//! when it is set, and `json_encode`s the result **with no flags**; `refreshRetryUntil` decodes and
//! encodes once more the same way. So the pushed bytes are PHP's flag-less JSON of a PHP *array*:
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
//! not refresh either); a row whose `retryUntil` has passed is refused unless asked. It opens queue
//! connections only through the caller's [`QueueOpener`] and never prints: the caller reports each
//! [`RetryEvent`].

use std::collections::{HashMap, HashSet};

use futures::future::BoxFuture;
use serde_json::Value as Json;

use crate::laravel::failed_jobs::{FailedJobRow, FailedJobs, FailedJobsError};
use crate::laravel::queue::{DriverError, Queue};
use crate::php::json_encode;

/// Why a failed job's payload cannot be retried as Laravel would.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
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

/// Which failed_jobs rows to retry, as `queue:retry`'s arguments choose them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// `all`: every row (then `ids` is empty).
    pub all: bool,
    /// Uuids, in the order given.
    pub ids: Vec<String>,
    /// Row ids, inclusive ranges.
    pub ranges: Vec<(i64, i64)>,
    /// Only rows of this queue; alone, every row of this queue.
    pub queue: Option<String>,
}

/// The rows `selection` names, in queue:retry's order (uuids first, then ranges, newest first), and
/// the uuids that matched no row.
pub async fn select(
    selection: &Selection,
    failed: &FailedJobs,
) -> Result<(Vec<FailedJobRow>, Vec<String>), FailedJobsError> {
    let mut rows = Vec::new();
    let mut missing = Vec::new();
    if selection.all || (selection.ids.is_empty() && selection.ranges.is_empty()) {
        rows = failed.all().await?;
    } else {
        let mut seen = HashSet::new();
        for id in &selection.ids {
            match failed.find(id).await? {
                Some(row) if seen.insert(row.job.uuid.clone()) => rows.push(row),
                Some(_) => {}
                None => missing.push(id.clone()),
            }
        }
        if !selection.ranges.is_empty() {
            for row in failed.all().await? {
                let in_range = selection
                    .ranges
                    .iter()
                    .any(|(a, b)| (*a..=*b).contains(&row.id));
                if in_range && seen.insert(row.job.uuid.clone()) {
                    rows.push(row);
                }
            }
        }
    }
    if let Some(q) = &selection.queue {
        rows.retain(|r| &r.job.queue == q);
    }
    Ok((rows, missing))
}

/// How a retry treats rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryOptions {
    /// failed_jobs.connection names that mean our Redis (`redis` by default); other names are
    /// opened as the app's connections (the database queue's `jobs` table).
    pub redis_connections: Vec<String>,
    /// Retry rows whose `retryUntil` has passed anyway.
    pub keep_retry_until: bool,
}

impl Default for RetryOptions {
    fn default() -> Self {
        RetryOptions {
            redis_connections: vec!["redis".to_owned()],
            keep_retry_until: false,
        }
    }
}

/// Why [`QueueOpener::open`] gave no queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// The connection is not one defer-worker pushes to (the row stays, the others go on).
    NotOurs(String),
    /// The connection is ours but could not be opened (the retry stops).
    Failed(String),
}

/// Opens a queue connection by its `config/queue.php` name (`redis` for our Redis); the caller's
/// settings decide how. Returns a description for messages (passwords masked) and the queue.
pub trait QueueOpener: Send + Sync {
    fn open<'a>(&'a self, connection: &'a str)
        -> BoxFuture<'a, Result<(String, Queue), OpenError>>;
}

/// Why one row was left in failed_jobs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "its connection [{connection}] is not one defer-worker pushes to ({reason}); use `php artisan queue:retry`, or --connection={connection} if that connection is this Redis"
    )]
    NotOurConnection { connection: String, reason: String },
    #[error("{0}")]
    Payload(RetryPayloadError),
    #[error(
        "its retryUntil ({0}) has passed, so it would fail again at once; `php artisan queue:retry` recomputes it from the job's retryUntil() method (or pass --keep-retry-until)"
    )]
    RetryUntilPassed(i64),
}

/// What happened to one row, reported as it happens.
#[derive(Debug)]
pub enum RetryEvent<'a> {
    /// Pushed back onto its queue; its row is deleted next.
    Pushed(&'a FailedJobRow),
    /// Left in failed_jobs.
    Refused(&'a FailedJobRow, Refusal),
}

/// A retry that stopped: rows before it were retried (and reported), the others were not touched.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error("{0}")]
    Open(String),
    #[error("cannot push failed job {uuid} onto queue {queue} of {store}: {error}")]
    Push {
        uuid: String,
        queue: String,
        store: String,
        error: DriverError,
    },
    #[error(
        "failed job {uuid} is back on queue {queue} but its failed_jobs row could not be deleted: run `defer-worker failed forget {uuid}` so it is not retried twice: {error}"
    )]
    Forget {
        uuid: String,
        queue: String,
        error: FailedJobsError,
    },
}

/// Pushes each row back onto its queue (on the connection it names, as queue:retry does) and then
/// deletes it, reporting each row to `report` before the next; returns how many were pushed. `now`
/// (unix seconds) judges `retryUntil`.
pub async fn retry(
    rows: &[FailedJobRow],
    options: &RetryOptions,
    opener: &dyn QueueOpener,
    failed: &FailedJobs,
    now: i64,
    report: &mut (dyn FnMut(RetryEvent<'_>) + Send),
) -> Result<usize, RetryError> {
    let mut queues: HashMap<String, (String, Queue)> = HashMap::new();
    let mut pushed = 0;
    for row in rows {
        let job = &row.job;
        let name = if options.redis_connections.contains(&job.connection) {
            "redis".to_owned()
        } else {
            job.connection.clone()
        };
        if !queues.contains_key(&name) {
            match opener.open(&name).await {
                Ok(opened) => {
                    queues.insert(name.clone(), opened);
                }
                Err(OpenError::NotOurs(reason)) => {
                    let refusal = Refusal::NotOurConnection {
                        connection: job.connection.clone(),
                        reason,
                    };
                    report(RetryEvent::Refused(row, refusal));
                    continue;
                }
                Err(OpenError::Failed(message)) => return Err(RetryError::Open(message)),
            }
        }
        let payload = match check(options, row, now, name == "redis") {
            Ok(p) => p,
            Err(refusal) => {
                report(RetryEvent::Refused(row, refusal));
                continue;
            }
        };
        if let Some((store, q)) = queues.get(&name) {
            q.push_raw(&job.queue, payload.as_bytes(), 0)
                .await
                .map_err(|error| RetryError::Push {
                    uuid: job.uuid.clone(),
                    queue: job.queue.clone(),
                    store: store.clone(),
                    error,
                })?;
        }
        report(RetryEvent::Pushed(row));
        failed
            .forget(&job.uuid)
            .await
            .map_err(|error| RetryError::Forget {
                uuid: job.uuid.clone(),
                queue: job.queue.clone(),
                error,
            })?;
        pushed += 1;
    }
    Ok(pushed)
}

/// The payload to push for `row`, or why it must stay in failed_jobs.
fn check(
    options: &RetryOptions,
    row: &FailedJobRow,
    now: i64,
    redis: bool,
) -> Result<String, Refusal> {
    let job = &row.job;
    let payload = retried_payload(&job.payload, redis).map_err(Refusal::Payload)?;
    let retry_until = serde_json::from_str::<Json>(&job.payload)
        .ok()
        .and_then(|p| p.get("retryUntil").and_then(Json::as_i64));
    match retry_until {
        Some(until) if until <= now && !options.keep_retry_until => {
            Err(Refusal::RetryUntilPassed(until))
        }
        _ => Ok(payload),
    }
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
