//! The job a line is logged in, without a tracing span per job.
//!
//! Every line logged while a job runs shows the job's fields as a span `job{queue=… connection=… uuid=…
//! name=… attempt=… action=…}` would, in every format. A tracing span per job is the dearest part of
//! logging one (its slot in the registry, its extensions, its close: ~6 000 instructions of a job's
//! ~15 000 for logging, see README Performance). So the worker runs each job in a [`JobScope`], which
//! keeps the job's fields in a task-local the layers read when they write a line, and the worker
//! records the job's uuid, name, attempt and action there ([`record_job`], [`record_action`]).
//!
//! The real span is still made when the log filter may need it: a filter naming spans or fields
//! (`info,[job{queue=emails}]=debug`) is an `EnvFilter`, which decides per span. The span's target,
//! [`SPAN_TARGET`], is switched off in the target-only filter every other directive gives (so making it
//! costs one check of its callsite) and is on in `EnvFilter`; when it is on, the layers show the span
//! and not the task-local, with the same fields (`the_job_context_writes_the_lines_of_the_job_span`).

use std::cell::RefCell;
use std::fmt;
use std::future::Future;

use futures::future::Either;

use tracing::field::{Field, Visit};
use tracing::instrument::Instrument as _;
use tracing::level_filters::LevelFilter;
use tracing::Span;

use super::fields::ValRef;

/// The job span's target: off unless the filter names spans or fields.
pub const SPAN_TARGET: &str = "defer_worker::worker::job_span";

/// The job span's name, which lines show (`job{…}:`) and filters match (`[job{queue=emails}]`).
pub(super) const SPAN_NAME: &str = "job";

/// The fields a job's lines show as text, in the order a span shows them.
#[derive(Debug, Clone, Copy)]
pub(super) enum Key {
    Queue,
    Connection,
    Uuid,
    Name,
    Action,
}

impl Key {
    fn named(name: &str) -> Option<Key> {
        Some(match name {
            "queue" => Key::Queue,
            "connection" => Key::Connection,
            "uuid" => Key::Uuid,
            "name" => Key::Name,
            "action" => Key::Action,
            _ => return None,
        })
    }
}

/// A job's fields, as its lines show them: the text ones end to end in one string (one allocation
/// per job, not one per field), each found by its place.
#[derive(Debug, Default)]
pub(super) struct JobFields {
    text: String,
    at: [Option<(u32, u32)>; 5],
    pub(super) attempt: Option<i64>,
}

/// Room for a job's text fields (a queue, `redis`, a uuid, a class, an action) without growing.
const ROOM: usize = 160;

impl JobFields {
    fn set(&mut self, key: Key, value: &str) {
        let start = self.text.len();
        self.text.push_str(value);
        let place = u32::try_from(start)
            .ok()
            .zip(u32::try_from(self.text.len()).ok());
        self.at[key as usize] = place;
    }

    pub(super) fn get(&self, key: Key) -> Option<&str> {
        let (start, end) = self.at[key as usize]?;
        self.text.get(start as usize..end as usize)
    }

    /// The fields known, in the order the job span shows them (the order the worker records them:
    /// the queue and connection when the job is taken, the uuid, name and attempt once its payload
    /// is read, the action once its command is).
    pub(super) fn each(&self) -> impl Iterator<Item = (&'static str, ValRef<'_>)> {
        [
            self.get(Key::Queue).map(|q| ("queue", ValRef::Shown(q))),
            self.get(Key::Connection)
                .map(|c| ("connection", ValRef::Shown(c))),
            self.get(Key::Uuid).map(|u| ("uuid", ValRef::Str(u))),
            self.get(Key::Name).map(|n| ("name", ValRef::Str(n))),
            self.attempt.map(|a| ("attempt", ValRef::Int(a))),
            self.get(Key::Action).map(|a| ("action", ValRef::Str(a))),
        ]
        .into_iter()
        .flatten()
    }
}

/// What a real `job` span records, read into the same fields (the laravel format keeps them so).
impl Visit for JobFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if let Some(key) = Key::named(field.name()) {
            self.set(key, value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "attempt" {
            self.attempt = Some(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `queue = %name` arrives here, as a Display wrapper.
        if let Some(key) = Key::named(field.name()) {
            self.set(key, &format!("{value:?}"));
        }
    }
}

/// The job a task runs: its fields (kept only when some line may show them), and its span (disabled
/// unless the filter needs it).
struct Current {
    fields: RefCell<JobFields>,
    kept: bool,
    span: Span,
}

tokio::task_local! {
    static JOB: Current;
}

/// A job about to run on `queue` of `connection`.
pub struct JobScope {
    current: Current,
}

impl JobScope {
    pub fn new(queue: &str, connection: &str) -> JobScope {
        let span = tracing::info_span!(target: SPAN_TARGET, SPAN_NAME, uuid = tracing::field::Empty,
            name = tracing::field::Empty, action = tracing::field::Empty,
            attempt = tracing::field::Empty, queue = %queue, connection = %connection);
        JobScope::with_span(queue, connection, span)
    }

    fn with_span(queue: &str, connection: &str, span: Span) -> JobScope {
        // With logging off nothing shows them: no allocation, nothing recorded.
        let kept = LevelFilter::current() != LevelFilter::OFF;
        let mut fields = JobFields::default();
        if kept {
            fields.text.reserve(ROOM);
            fields.set(Key::Queue, queue);
            fields.set(Key::Connection, connection);
        }
        JobScope {
            current: Current {
                fields: RefCell::new(fields),
                kept,
                span,
            },
        }
    }

    /// `job` run as this job: every line it logs shows the job's fields. With logging off it runs
    /// as it is, with nothing around it.
    pub fn run<F: Future>(self, job: F) -> impl Future<Output = F::Output> {
        if !self.current.kept && self.current.span.is_disabled() {
            return Either::Right(job);
        }
        let span = self.current.span.clone();
        Either::Left(JOB.scope(self.current, job.instrument(span)))
    }

    /// A job without its span, as under the target-only filter.
    #[cfg(test)]
    pub(super) fn untraced(queue: &str, connection: &str) -> JobScope {
        JobScope::with_span(queue, connection, Span::none())
    }

    /// `f` run as this job, for code that does not wait.
    #[cfg(test)]
    pub(super) fn run_sync<R>(self, f: impl FnOnce() -> R) -> R {
        let span = self.current.span.clone();
        JOB.sync_scope(self.current, || span.in_scope(f))
    }
}

/// Records the job's uuid, name and attempt, once its payload is read. Outside a job, nothing.
pub fn record_job(uuid: &str, name: &str, attempt: i64) {
    let _ = JOB.try_with(|job| {
        if let Some(mut fields) = job.kept.then(|| job.fields.try_borrow_mut().ok()).flatten() {
            fields.set(Key::Uuid, uuid);
            fields.set(Key::Name, name);
            fields.attempt = Some(attempt);
        }
        record_on_span(&job.span, uuid, name, attempt);
    });
}

/// Records the job's action, once its command is read. Outside a job, nothing.
pub fn record_action(action: &str) {
    let _ = JOB.try_with(|job| {
        if let Some(mut fields) = job.kept.then(|| job.fields.try_borrow_mut().ok()).flatten() {
            fields.set(Key::Action, action);
        }
        if !job.span.is_disabled() {
            job.span.record("action", action);
        }
    });
}

/// The three fields in one call into the subscriber, not one per field.
fn record_on_span(span: &Span, uuid: &str, name: &str, attempt: i64) {
    use tracing::field::Value;
    let Some(fields) = span.metadata().map(|m| m.fields()) else {
        return; // the span is disabled
    };
    let (Some(uuid_field), Some(name_field), Some(attempt_field)) = (
        fields.field("uuid"),
        fields.field("name"),
        fields.field("attempt"),
    ) else {
        return;
    };
    span.record_all(&fields.value_set(&[
        (&uuid_field, Some(&uuid as &dyn Value)),
        (&name_field, Some(&name as &dyn Value)),
        (&attempt_field, Some(&attempt as &dyn Value)),
    ]));
}

/// `f` given the fields of the job this thread is running, unless there is none or its real span
/// shows them.
pub(super) fn with_current<R>(f: impl FnOnce(Option<&JobFields>) -> R) -> R {
    let mut f = Some(f);
    let shown = JOB.try_with(|job| {
        if !job.kept || !job.span.is_disabled() {
            return None;
        }
        let fields = job.fields.try_borrow().ok()?;
        f.take().map(|f| f(Some(&fields)))
    });
    match shown {
        Ok(Some(r)) => r,
        // Not called above: every way out without a value leaves before `f.take()`.
        _ => f.expect("f not called yet")(None),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The worker's steps for one job, as `JobScope` and a real span: `events` logged before the
    /// payload is read, then after the uuid, name and attempt, then after the action.
    pub(crate) fn as_the_worker_does(scope: JobScope, events: impl Fn(u8)) {
        scope.run_sync(|| {
            events(0);
            record_job("9f1c-uuid", "App\\Jobs\\DeferredJob", 2);
            events(1);
            record_action("whatsapp_notification");
            events(2);
        });
    }

    #[test]
    fn fields_are_known_in_the_order_they_are_recorded_and_only_inside_the_job() {
        use tracing_subscriber::layer::SubscriberExt as _;
        let seen = std::cell::RefCell::new(Vec::new());
        let logging = tracing_subscriber::registry().with(LevelFilter::INFO);
        tracing::subscriber::with_default(logging, || {
            let scope = JobScope::untraced("emails", "redis");
            as_the_worker_does(scope, |_| {
                with_current(|f| seen.borrow_mut().push(f.map(|f| f.each().count())));
            });
            with_current(|f| assert!(f.is_none()));
            record_job("outside", "a job", 1); // nothing to record on: no panic
        });
        assert_eq!(*seen.borrow(), [Some(2), Some(5), Some(6)]);
        // With logging off, nothing is kept or shown.
        let off = tracing_subscriber::registry().with(LevelFilter::OFF);
        let shown = tracing::subscriber::with_default(off, || {
            let scope = JobScope::untraced("emails", "redis");
            scope.run_sync(|| {
                record_job("9f1c", "App\\Jobs\\DeferredJob", 1);
                with_current(|f| f.is_some())
            })
        });
        assert!(!shown);
    }
}
