//! The `log` kind: records that the job ran and succeeds. For dry runs and shadow mode; it sends nothing.
//!
//! Both its lines are at debug level (the data's keys, then the values, which may hold phone numbers or
//! e-mail addresses): at info the worker's outcome line already says the job ran (uuid, queue, action,
//! outcome, run time), one line per job.

use super::JobMeta;
use crate::deferred::DeferredJob;
use crate::php::{Key, Value};

pub(super) fn run(job: &DeferredJob, meta: JobMeta<'_>) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let keys = match &job.data {
        Value::Array(items) => items
            .iter()
            .map(|(k, _)| match k {
                Key::Int(i) => i.to_string(),
                Key::Str(s) => String::from_utf8_lossy(s).into_owned(),
            })
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    };
    tracing::debug!(action = %job.action, job_id = meta.id, data_keys = %keys, "deferred job logged (kind = log)");
    tracing::debug!(action = %job.action, data = %crate::php::to_json(&job.data), "deferred job data");
}

/// The `warn` kind: an action nobody handles. The app's DeferredJob logs "Unknown deferred action" as a
/// warning and completes the job; so does this.
pub(super) fn unknown(job: &DeferredJob, meta: JobMeta<'_>) {
    tracing::warn!(action = %job.action, job_id = meta.id, queue = meta.queue, "Unknown deferred action: completed without doing anything (kind = warn)");
}
