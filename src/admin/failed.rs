//! Reading failed_jobs for people: the Class column of `queue:failed`, a row's action, searching rows
//! (queue, action, exception text, time) and one row's document with its payload decoded, masked or
//! not. Shared by `defer-worker failed` and the console; it never writes (retry and forget are
//! [`super::retry`] and [`FailedJobs::forget`]).

use serde::Serialize;
use serde_json::{json, Value as Json};

use super::decode::decode;
use super::mask::{mask_json, mask_text};
use crate::laravel::encrypter::Encrypter;
use crate::laravel::failed_jobs::FailedJobRow;

/// The Class column of `queue:failed` (8–12.60): the first double-quoted text in `data.command` (the
/// class of `O:n:"Class"`), else the payload's `job`; empty when the payload is not a JSON object.
pub fn job_class(payload: &str) -> String {
    let Ok(Json::Object(p)) = serde_json::from_str::<Json>(payload) else {
        return String::new();
    };
    let job = || p.get("job").map(php_text).unwrap_or_default();
    match p.get("data").and_then(|d| d.get("command")) {
        None | Some(Json::Null) => job(),
        Some(command) => first_quoted(&php_text(command)).unwrap_or_else(job),
    }
}

/// A scalar as PHP's string conversion prints it (enough for a table cell).
fn php_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Number(n) => n.to_string(),
        Json::Bool(true) => "1".to_owned(),
        _ => String::new(),
    }
}

/// `preg_match('/"([^"]+)"/', $s)`: the first non-empty run between two double quotes.
fn first_quoted(s: &str) -> Option<String> {
    let mut rest = s;
    while let Some(open) = rest.find('"') {
        let after = &rest[open + 1..];
        let close = after.find('"')?;
        if close > 0 {
            return Some(after[..close].to_owned());
        }
        rest = after;
    }
    None
}

/// A DeferredJob's action, when the payload decodes to one.
pub fn action(payload: &str, encrypter: &Encrypter) -> Option<String> {
    let doc = decode(
        payload.as_bytes(),
        encrypter,
        crate::deferred::DEFAULT_CLASS,
    )
    .ok()?;
    doc.get("deferred")?
        .get("action")?
        .as_str()
        .map(str::to_owned)
}

/// A search over failed_jobs; empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// The queue, exactly.
    pub queue: Option<String>,
    /// The DeferredJob action, exactly.
    pub action: Option<String>,
    /// Text the exception contains, ignoring case.
    pub text: Option<String>,
    /// `failed_at` at or after this (`Y-m-d H:i:s`, or a prefix such as `2026-12-06` or
    /// `2026-12-06T18:00`).
    pub since: Option<String>,
    /// `failed_at` at or before this (same forms; a prefix covers its whole minute, day…).
    pub until: Option<String>,
}

impl Filter {
    fn matches(&self, summary: &Summary, exception: &str) -> bool {
        let at = summary.failed_at.as_str();
        self.queue.as_deref().is_none_or(|q| summary.queue == q)
            && self
                .action
                .as_deref()
                .is_none_or(|a| summary.action.as_deref() == Some(a))
            && self
                .text
                .as_deref()
                .is_none_or(|t| exception.to_lowercase().contains(&t.to_lowercase()))
            && self
                .since
                .as_deref()
                .is_none_or(|s| at >= normalize_time(s).as_str())
            && self.until.as_deref().is_none_or(|u| {
                let u = normalize_time(u);
                at <= u.as_str() || at.starts_with(u.as_str())
            })
    }
}

/// `2026-12-06T18:00` (an HTML datetime-local) → `2026-12-06 18:00`, comparable with `failed_at`.
fn normalize_time(t: &str) -> String {
    t.trim().replacen('T', " ", 1)
}

/// One row as lists show it: no payload, the exception's first line masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub id: i64,
    pub uuid: String,
    pub connection: String,
    pub queue: String,
    pub class: String,
    /// The DeferredJob action, None for other jobs and payloads that do not decode.
    pub action: Option<String>,
    pub failed_at: String,
    /// The first line of the exception, masked (see [`mask_text`]).
    pub error: String,
}

/// The longest exception line a summary keeps.
const ERROR_CHARS: usize = 200;

impl Summary {
    pub fn of(row: &FailedJobRow, encrypter: &Encrypter) -> Summary {
        let job = &row.job;
        let first: String = job
            .exception
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(ERROR_CHARS)
            .collect();
        Summary {
            id: row.id,
            uuid: job.uuid.clone(),
            connection: job.connection.clone(),
            queue: job.queue.clone(),
            class: job_class(&job.payload),
            action: action(&job.payload, encrypter),
            failed_at: job.failed_at.clone(),
            error: mask_text(&first),
        }
    }
}

/// The rows `filter` matches, as summaries, in the order given (failed_jobs' newest first).
pub fn search(rows: &[FailedJobRow], filter: &Filter, encrypter: &Encrypter) -> Vec<Summary> {
    rows.iter()
        .filter_map(|row| {
            let summary = Summary::of(row, encrypter);
            filter
                .matches(&summary, &row.job.exception)
                .then_some(summary)
        })
        .collect()
}

/// One row with its payload decoded (`failed show --json`): `payload` is the decoded document, or
/// the raw payload with `payload_error` saying why it did not decode; `attempts` the attempts made,
/// the failing one included (null when the payload does not count them). `masked` masks personal data
/// and secrets in the payload and the exception ([`mask_json`], [`mask_text`]).
pub fn detail(row: &FailedJobRow, encrypter: &Encrypter, masked: bool) -> Json {
    let job = &row.job;
    let decoded = decode(
        job.payload.as_bytes(),
        encrypter,
        crate::deferred::DEFAULT_CLASS,
    );
    let (payload, payload_error) = match decoded {
        Ok(doc) => (doc, Json::Null),
        Err(e) => (
            Json::String(job.payload.clone()),
            Json::String(e.to_string()),
        ),
    };
    // The stored payload is the one from the ready list, before the pop that failed counted itself
    // (Laravel's RedisJob::getRawBody), so the attempts made are one more; the database driver keeps
    // its count in the jobs row, not in the payload (null).
    let attempts = payload
        .get("attempts")
        .and_then(Json::as_u64)
        .map_or(Json::Null, |a| Json::from(a + 1));
    let (payload, exception) = if masked {
        (mask_json(&payload), mask_text(&job.exception))
    } else {
        (payload, job.exception.clone())
    };
    json!({
        "id": row.id,
        "uuid": job.uuid,
        "connection": job.connection,
        "queue": job.queue,
        "class": job_class(&job.payload),
        "failed_at": job.failed_at,
        "attempts": attempts,
        "payload": payload,
        "payload_error": payload_error,
        "exception": exception,
        "masked": masked,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::laravel::failed_jobs::FailedJob;

    #[test]
    fn class_column_follows_list_failed_command() {
        let deferred = r#"{"job":"Illuminate\\Queue\\CallQueuedHandler@call","data":{"commandName":"X","command":"O:20:\"App\\Jobs\\DeferredJob\":0:{}"}}"#;
        assert_eq!(job_class(deferred), "App\\Jobs\\DeferredJob");
        let string_job = r#"{"job":"App\\Handlers\\Legacy@handle","data":{"x":1}}"#;
        assert_eq!(job_class(string_job), "App\\Handlers\\Legacy@handle");
        let encrypted =
            r#"{"job":"Illuminate\\Queue\\CallQueuedHandler@call","data":{"command":"eyJpdiI6"}}"#;
        assert_eq!(
            job_class(encrypted),
            "Illuminate\\Queue\\CallQueuedHandler@call"
        );
        assert_eq!(job_class(r#"{"data":{"command":null}}"#), "");
        assert_eq!(job_class("not json"), "");
        assert_eq!(first_quoted(r#"a""b"c"#), Some("b".to_owned()));
        assert_eq!(first_quoted(r#"x"""#), None);
    }

    const DEFERRED: &str = r#"{"uuid":"u-1","job":"Illuminate\\Queue\\CallQueuedHandler@call","data":{"commandName":"App\\Jobs\\DeferredJob","command":"O:20:\"App\\Jobs\\DeferredJob\":2:{s:9:\"\u0000*\u0000action\";s:18:\"email_notification\";s:7:\"\u0000*\u0000data\";a:1:{s:5:\"email\";s:12:\"jane@shop.io\";}}"},"attempts":3}"#;

    fn row(id: i64, queue: &str, exception: &str, at: &str) -> FailedJobRow {
        FailedJobRow {
            id,
            job: FailedJob {
                uuid: format!("u-{id}"),
                connection: "redis".into(),
                queue: queue.into(),
                payload: DEFERRED.into(),
                exception: exception.into(),
                failed_at: at.into(),
            },
        }
    }

    #[test]
    fn search_by_queue_action_text_and_time() {
        let enc = Encrypter::none();
        let rows = [
            row(
                2,
                "emails",
                "RuntimeException: SMTP 451\n#0 trace",
                "2026-12-06 18:30:00",
            ),
            row(
                1,
                "whatsapp",
                "Meta 131026 for +919876543210",
                "2026-12-05 09:00:00",
            ),
        ];
        let ids =
            |f: Filter| -> Vec<i64> { search(&rows, &f, &enc).iter().map(|s| s.id).collect() };
        assert_eq!(ids(Filter::default()), [2, 1]);
        assert_eq!(
            ids(Filter {
                queue: Some("whatsapp".into()),
                ..Default::default()
            }),
            [1]
        );
        assert_eq!(
            ids(Filter {
                action: Some("email_notification".into()),
                ..Default::default()
            }),
            [2, 1]
        );
        assert_eq!(
            ids(Filter {
                action: Some("cache_warming".into()),
                ..Default::default()
            }),
            Vec::<i64>::new()
        );
        assert_eq!(
            ids(Filter {
                text: Some("smtp".into()),
                ..Default::default()
            }),
            [2]
        );
        assert_eq!(
            ids(Filter {
                since: Some("2026-12-06T00:00".into()),
                ..Default::default()
            }),
            [2]
        );
        assert_eq!(
            ids(Filter {
                until: Some("2026-12-05".into()),
                ..Default::default()
            }),
            [1]
        );
        let s = &search(&rows, &Filter::default(), &enc)[1];
        assert_eq!(s.error, "Meta 131026 for ***10");
        assert_eq!(s.action.as_deref(), Some("email_notification"));
    }

    #[test]
    fn detail_masks_unless_revealed() {
        let enc = Encrypter::none();
        let r = row(1, "emails", "to jane@shop.io", "2026-12-06 18:30:00");
        let masked = detail(&r, &enc, true);
        assert_eq!(masked["payload"]["deferred"]["data"]["email"], "j***@***");
        assert_eq!(masked["exception"], "to j***@***");
        assert_eq!(
            masked["attempts"], 4,
            "the payload's 3 earlier attempts and the failing one"
        );
        let open = detail(&r, &enc, false);
        assert_eq!(open["payload"]["deferred"]["data"]["email"], "jane@shop.io");
        assert_eq!(open["exception"], "to jane@shop.io");
    }
}
