//! `--log-format laravel`: the lines of Laravel 11.27+'s `queue:work --json`, so that log pipelines
//! built for PHP's worker read defer-worker's log unchanged (docs/laravel-queue.md §12).
//!
//! A job's lines: `starting` when its action starts, then one of `success`, `released_after_exception`
//! or `failed`, each `{"level","id","uuid","connection","queue","job","status","result","attempts",
//! "exception","message","timestamp","duration"}` in that order, empty values left out as PHP's
//! `array_filter` does, strings escaped as `json_encode` without flags. The outcomes PHP's worker has
//! no line for keep the shape with their own status: `handed_off` (pushed to a PHP queue, deleted
//! here), `handed_back` (back on its own queue, no attempt used), `left_reserved` (stores unreachable)
//! and `lease_lost` (another worker took it back). Every other event is one line of the same family:
//! `{"level","message",<its fields>,"uuid","queue","timestamp"}`, the job's uuid and queue added when
//! it happens inside a job; a field named like one of the job lines' keys gets a `_` suffix, so a
//! line with `status` is always a job line.
//!
//! It reads the job from the worker's events (`outcome` on the outcome line, `action_run = "start"`
//! on the start line) and from the job's fields (the task-local of `job`, or a real `job` span's,
//! kept as values), never re-formatted per event. It must not read settings: timestamps are UTC
//! (`+00:00`), as the app's config/app.php fixes its time zone (docs/restrosaas.md §1.1).

use std::fmt::{self, Write as _};
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::clock::Stamp;
use super::fields::Val;
use super::job::{self, JobFields, Key, SPAN_NAME};
use crate::php::{json_encode, json_string, Unicode};

/// Keys of the job lines; an ordinary event's field of the same name is written with a `_` suffix.
const RESERVED: [&str; 13] = [
    "level",
    "id",
    "uuid",
    "connection",
    "queue",
    "job",
    "status",
    "result",
    "attempts",
    "exception",
    "message",
    "timestamp",
    "duration",
];

/// The layer; `W` is where the lines go (the non-blocking writer).
pub struct LaravelLayer<W> {
    writer: W,
}

impl<W> LaravelLayer<W> {
    pub fn new(writer: W) -> Self {
        LaravelLayer { writer }
    }
}

/// A value as `json_encode` writes it.
fn write_val(value: &Val, out: &mut String) {
    match value {
        Val::Str(s) | Val::Shown(s) => json_string(out, s, Unicode::Escaped),
        Val::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Val::Uint(u) => {
            let _ = write!(out, "{u}");
        }
        Val::Float(f) if f.is_finite() => out.push_str(&json_encode(&serde_json::json!(f))),
        // json_encode fails on INF/NAN; a string keeps the line readable.
        Val::Float(f) => json_string(out, &f.to_string(), Unicode::Escaped),
        Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
    }
}

/// An event's fields, in order, the message apart.
#[derive(Default)]
struct Fields {
    message: String,
    list: Vec<(&'static str, Val)>,
}

impl Fields {
    fn get(&self, name: &str) -> Option<&Val> {
        self.list.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    fn str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Val::as_str)
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.list.push((field.name(), Val::Str(value.to_owned())));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.list.push((field.name(), Val::Int(value)));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.list.push((field.name(), Val::Uint(value)));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.list.push((field.name(), Val::Float(value)));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.list.push((field.name(), Val::Bool(value)));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            self.list.push((field.name(), Val::shown(value)));
        }
    }
}

/// `Y-m-d\TH:i:s.uP` in UTC.
fn timestamp(out: &mut String) {
    out.push_str(Stamp::now().as_str());
    out.push_str("+00:00");
}

/// Appends `,"key":` (or `{"key":` for the first key).
fn key(out: &mut String, name: &str) {
    out.push(if out.is_empty() { '{' } else { ',' });
    json_string(out, name, Unicode::Escaped);
    out.push(':');
}

fn put_str(out: &mut String, name: &str, value: &str) {
    if !value.is_empty() {
        key(out, name);
        json_string(out, value, Unicode::Escaped);
    }
}

/// Status, result and level of a job line, from the worker's `outcome` (or the start line). An
/// outcome PHP has no line for keeps its own name as the status.
fn job_status(outcome: &str) -> (&str, &'static str, &'static str) {
    match outcome {
        "starting" => ("starting", "", "info"),
        "done" => ("success", "deleted", "info"),
        "released" => ("released_after_exception", "released", "warning"),
        "failed" => ("failed", "failed", "warning"),
        "handed_off" => ("handed_off", "deleted", "info"),
        "handed_back" => ("handed_back", "released", "warning"),
        // left_reserved, lease_lost: not settled by this worker.
        other => (other, "", "warning"),
    }
}

/// One job line, as `WorkCommand::writeOutputAsJson` writes it.
fn job_line(out: &mut String, outcome: &str, fields: &Fields, job: Option<&JobFields>) {
    let (status, result, level) = job_status(outcome);
    let from_job = |key| job.and_then(|j| j.get(key)).unwrap_or("");
    let uuid = fields.str("uuid").unwrap_or_else(|| from_job(Key::Uuid));
    let name = fields.str("name").unwrap_or_else(|| from_job(Key::Name));
    let attempts = fields
        .get("attempt")
        .and_then(Val::as_i64)
        .or(job.and_then(|j| j.attempt))
        .unwrap_or(0);
    // The worker writes `Class: message`; a PHP class name has no colon.
    let (exception, message) = match fields.str("exception") {
        Some(e) => e.split_once(": ").unwrap_or((e, "")),
        None => ("", ""),
    };
    put_str(out, "level", level);
    put_str(out, "id", fields.str("id").unwrap_or(""));
    put_str(out, "uuid", uuid);
    put_str(out, "connection", from_job(Key::Connection));
    put_str(out, "queue", from_job(Key::Queue));
    put_str(out, "job", name);
    put_str(out, "status", status);
    put_str(out, "result", result);
    if attempts != 0 {
        key(out, "attempts");
        let _ = write!(out, "{attempts}");
    }
    put_str(out, "exception", exception);
    put_str(out, "message", message);
    key(out, "timestamp");
    out.push('"');
    timestamp(out);
    out.push('"');
    if let Some(ms) = fields.get("ms").and_then(Val::as_f64) {
        key(out, "duration");
        // round(…, 6) of seconds.
        write_val(&Val::Float((ms * 1000.0).round() / 1_000_000.0), out);
    }
    out.push_str("}\n");
}

/// Any other event, in the same family of lines.
fn other_line(out: &mut String, level: &Level, fields: &Fields, job: Option<&JobFields>) {
    let level = match *level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        _ => "debug",
    };
    put_str(out, "level", level);
    key(out, "message");
    json_string(out, &fields.message, Unicode::Escaped);
    for (name, value) in &fields.list {
        if RESERVED.contains(name) {
            key(out, &format!("{name}_"));
        } else {
            key(out, name);
        }
        write_val(value, out);
    }
    if let Some(job) = job {
        put_str(out, "uuid", job.get(Key::Uuid).unwrap_or(""));
        put_str(out, "queue", job.get(Key::Queue).unwrap_or(""));
    }
    key(out, "timestamp");
    out.push('"');
    timestamp(out);
    out.push_str("\"}\n");
}

/// The line of an event in `job`, if it has one (false for the action's end: the outcome line follows).
fn line(out: &mut String, level: &Level, fields: &Fields, job: Option<&JobFields>) -> bool {
    match (fields.str("outcome"), fields.str("action_run")) {
        (Some(outcome), _) => job_line(out, outcome, fields, job),
        (None, Some("start")) => job_line(out, "starting", fields, job),
        (None, Some(_)) => return false,
        (None, None) => other_line(out, level, fields, job),
    }
    true
}

impl<S, W> Layer<S> for LaravelLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != SPAN_NAME {
            return;
        }
        if let Some(span) = ctx.span(id) {
            let mut job = JobFields::default();
            attrs.record(&mut job);
            span.extensions_mut().insert(job);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(job) = span.extensions_mut().get_mut::<JobFields>() {
                values.record(job);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let scope = ctx.event_scope(event);
        let job_span = scope.and_then(|mut s| s.find(|span| span.name() == SPAN_NAME));
        let extensions = job_span.as_ref().map(|s| s.extensions());
        let mut out = String::with_capacity(320);
        let level = event.metadata().level();
        let written = match extensions.as_ref().and_then(|e| e.get::<JobFields>()) {
            Some(job) => line(&mut out, level, &fields, Some(job)),
            None => job::with_current(|job| line(&mut out, level, &fields, job)),
        };
        if !written {
            return;
        }
        let _ = self.writer.make_writer().write_all(out.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::job::tests::as_the_worker_does;
    use crate::logging::job::JobScope;

    fn lines(f: impl FnOnce()) -> Vec<String> {
        crate::logging::capture::lines(LaravelLayer::new, f)
    }

    /// The line without its timestamp (checked apart), and the timestamp.
    fn split_timestamp(line: &str) -> (String, String) {
        let at = line.find(",\"timestamp\":\"").expect("a timestamp");
        let ts = &line[at + 14..at + 14 + 32];
        (
            format!("{}{}", &line[..at], &line[at + 14 + 33..]),
            ts.to_owned(),
        )
    }

    /// `f` run in a job whose uuid, name and attempt are known, as the worker runs it.
    fn in_job(f: impl FnOnce()) {
        JobScope::untraced("whatsapp", "redis").run_sync(|| {
            job::record_job("9f1c-uuid", "App\\Jobs\\DeferredJob", 2);
            f();
        });
    }

    #[test]
    fn the_job_context_writes_the_lines_of_the_job_span() {
        let events = |scope: JobScope| {
            as_the_worker_does(scope, |step| {
                tracing::info!(step, "a step");
                if step == 2 {
                    tracing::debug!(action_run = "start", id = "Ab12", "action started");
                    tracing::info!(outcome = "done", ms = 1.5_f64, id = "Ab12", "job done");
                }
            })
        };
        let untraced = lines(|| events(JobScope::untraced("whatsapp", "redis")));
        let traced = lines(|| events(JobScope::new("whatsapp", "redis")));
        let untimed =
            |l: &Vec<String>| -> Vec<String> { l.iter().map(|l| split_timestamp(l).0).collect() };
        assert_eq!(untimed(&untraced), untimed(&traced));
        assert_eq!(
            untimed(&untraced),
            [
                r#"{"level":"info","message":"a step","step":0,"queue":"whatsapp"}"#,
                r#"{"level":"info","message":"a step","step":1,"uuid":"9f1c-uuid","queue":"whatsapp"}"#,
                r#"{"level":"info","message":"a step","step":2,"uuid":"9f1c-uuid","queue":"whatsapp"}"#,
                r#"{"level":"info","id":"Ab12","uuid":"9f1c-uuid","connection":"redis","queue":"whatsapp","job":"App\\Jobs\\DeferredJob","status":"starting","attempts":2}"#,
                r#"{"level":"info","id":"Ab12","uuid":"9f1c-uuid","connection":"redis","queue":"whatsapp","job":"App\\Jobs\\DeferredJob","status":"success","result":"deleted","attempts":2,"duration":0.0015}"#,
            ]
        );
    }

    #[test]
    fn a_job_that_runs_writes_a_starting_and_a_success_line_as_php_does() {
        let got = lines(|| {
            in_job(|| {
                tracing::debug!(
                    action_run = "start",
                    action = "whatsapp_notification",
                    id = "Ab12",
                    "action started"
                );
                tracing::debug!(
                    action_run = "end",
                    action = "whatsapp_notification",
                    "action finished"
                );
                tracing::info!(
                    outcome = "done",
                    uuid = "9f1c-uuid",
                    name = "App\\Jobs\\DeferredJob",
                    action = "whatsapp_notification",
                    attempt = 2_i64,
                    ms = 12.3456789_f64,
                    id = "Ab12",
                    "job done"
                );
            })
        });
        assert_eq!(got.len(), 2, "{got:?}");
        let (start, ts) = split_timestamp(&got[0]);
        assert_eq!(
            start,
            r#"{"level":"info","id":"Ab12","uuid":"9f1c-uuid","connection":"redis","queue":"whatsapp","job":"App\\Jobs\\DeferredJob","status":"starting","attempts":2}"#
        );
        // Y-m-d\TH:i:s.uP
        let parsed = chrono::DateTime::parse_from_str(&ts, "%Y-%m-%dT%H:%M:%S%.6f%:z").unwrap();
        assert_eq!(parsed.offset().local_minus_utc(), 0);
        assert_eq!(ts.len(), 32, "{ts}");
        let (done, _) = split_timestamp(&got[1]);
        assert_eq!(
            done,
            r#"{"level":"info","id":"Ab12","uuid":"9f1c-uuid","connection":"redis","queue":"whatsapp","job":"App\\Jobs\\DeferredJob","status":"success","result":"deleted","attempts":2,"duration":0.012346}"#
        );
    }

    #[test]
    fn released_and_failed_lines_are_warnings_and_a_failure_names_the_exception() {
        let got = lines(|| {
            in_job(|| {
                tracing::warn!(
                    outcome = "released",
                    uuid = "9f1c-uuid",
                    attempt = 2_i64,
                    ms = 5.0_f64,
                    delay = 10_u64,
                    reason = "HTTP 503",
                    "job released"
                );
                tracing::error!(outcome = "failed", uuid = "9f1c-uuid", attempt = 3_i64, ms = 2000.0_f64,
                    exception = %"App\\Exceptions\\DeferredActionFailed: WhatsApp said 131026 / undeliverable", "job failed");
            })
        });
        let (released, _) = split_timestamp(&got[0]);
        assert!(
            released.starts_with(r#"{"level":"warning","uuid":"9f1c-uuid","connection":"redis","queue":"whatsapp","job":"App\\Jobs\\DeferredJob","status":"released_after_exception","result":"released","attempts":2"#),
            "{released}"
        );
        let (failed, _) = split_timestamp(&got[1]);
        assert_eq!(
            failed,
            r#"{"level":"warning","uuid":"9f1c-uuid","connection":"redis","queue":"whatsapp","job":"App\\Jobs\\DeferredJob","status":"failed","result":"failed","attempts":3,"exception":"App\\Exceptions\\DeferredActionFailed","message":"WhatsApp said 131026 \/ undeliverable","duration":2}"#
        );
    }

    #[test]
    fn other_events_keep_the_family_shape_and_never_look_like_a_job_line() {
        let got = lines(|| {
            tracing::info!(
                queues = "default,emails",
                concurrency = 64_u64,
                "worker started"
            );
            in_job(|| tracing::warn!(status = 503_u64, code = "é", "WhatsApp Cloud API answered"));
        });
        let (first, _) = split_timestamp(&got[0]);
        assert_eq!(
            first,
            r#"{"level":"info","message":"worker started","queues":"default,emails","concurrency":64}"#
        );
        let (second, _) = split_timestamp(&got[1]);
        assert_eq!(
            second,
            r#"{"level":"warning","message":"WhatsApp Cloud API answered","status_":503,"code":"\u00e9","uuid":"9f1c-uuid","queue":"whatsapp"}"#
        );
    }
}
