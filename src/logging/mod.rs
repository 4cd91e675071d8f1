//! Logging: where the worker's log lines go and what they look like. `main` calls [`init`] once and
//! keeps the [`Guard`] until it returns; the [`Handle`] goes to whoever must count dropped lines (the
//! metrics) or flush before `process::exit`.
//!
//! - `writer`: the non-blocking writer: a bounded buffer drained by its own thread, dropped lines
//!   counted and reported, everything written out at exit.
//! - `lines`: `--log-format text` and `json`, tracing's two formats written by a layer of our own:
//!   `text` coloured only when stderr is a terminal and `NO_COLOR` is not set (no-color.org), `json`
//!   one object per line with the event's fields at the top and the job's under `span`.
//! - `laravel`: `--log-format laravel`, the lines of Laravel 11.27+'s `queue:work --json`.
//! - `job`: the job a line is logged in, kept in a task-local rather than a span per job ([`JobScope`]).
//! - `fields`: span fields kept as values until a line shows them; `clock`: the lines' timestamps.
//!
//! Per job at `info` the worker writes one outcome line (`outcome`, `uuid`, `name`, `action`,
//! `attempt`, `ms`, the queue in the job's fields).
//!
//! This module only sets up logging: it must not read settings or the environment (`main` passes in
//! `DEFER_WORKER_LOG` and whether colour is wanted).

#[cfg(test)]
mod capture;
mod clock;
mod fields;
mod job;
mod laravel;
mod lines;
mod writer;

use std::ffi::OsStr;
use std::io;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry};

pub use job::{record_action, record_job, JobScope, SPAN_TARGET};
pub use laravel::LaravelLayer;
pub use lines::{LineLayer, Style};
pub use writer::{non_blocking, DroppedNotice, Guard, Handle, NonBlocking, DEFAULT_CAPACITY};

/// The variable holding the log filter (`info`, `off`, `warn,defer_worker::worker=debug`, …).
pub const FILTER_VAR: &str = "DEFER_WORKER_LOG";

/// The target of the worker's job-start event, a `debug` line in `text`/`json` and the `starting`
/// line of `laravel` (which therefore enables it at `info`).
pub const JOB_TARGET: &str = "defer_worker::worker::job";

/// The shape of the lines on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Laravel,
}

/// What [`init`] needs.
#[derive(Debug, Clone)]
pub struct Options {
    pub format: Format,
    /// `DEFER_WORKER_LOG`, if set.
    pub filter: Option<String>,
    /// ANSI colours in `text` (see [`colour`]).
    pub colour: bool,
    /// Bytes of lines held while the drain thread writes ([`DEFAULT_CAPACITY`]).
    pub capacity: usize,
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot start the log writer thread: {0}")]
    Thread(#[from] io::Error),
    #[error("a log subscriber is already installed: {0}")]
    Installed(#[from] tracing_subscriber::util::TryInitError),
}

/// The environment variable that sizes the log buffer in bytes; `0` writes each line before the logging
/// call returns (slower; no line is lost to a SIGKILL).
pub const BUFFER_VAR: &str = "DEFER_WORKER_LOG_BUFFER";

/// The buffer size `DEFER_WORKER_LOG_BUFFER` asks for ([`DEFAULT_CAPACITY`] when unset or empty).
pub fn capacity(value: Option<&str>) -> Result<usize, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(DEFAULT_CAPACITY),
        Some(v) => v.parse().map_err(|_| {
            format!("{BUFFER_VAR}={v:?} is not a number of bytes (0: write each line at once)")
        }),
    }
}

/// Colour only on a terminal, and never when `NO_COLOR` is set to a non-empty value.
pub fn colour(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// The log filter, as one of tracing-subscriber's two.
///
/// `Targets` when the directives only name targets and levels (`info`, `warn,defer_worker::worker=debug`,
/// every filter the docs show): it decides once per callsite and does nothing per span, and it switches
/// the job span ([`SPAN_TARGET`]) off, since nothing it decides needs one. `EnvFilter` when a directive
/// names a span or a field (`[job{queue=emails}]=debug`): it keeps state per span, looked up under a
/// lock on every span's creation, entry, exit, record and close, several times per job, and the job span
/// is made for it to decide by. The same directives let the same events through either way
/// (`both_filters_let_the_same_events_through`).
enum Filter {
    Targets(Box<Targets>),
    Env(Box<EnvFilter>),
}

impl Filter {
    fn layer<S>(self) -> Box<dyn Layer<S> + Send + Sync>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        match self {
            Filter::Targets(t) => t,
            Filter::Env(e) => e,
        }
    }
}

impl std::fmt::Display for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Filter::Targets(t) => write!(f, "{t}"),
            Filter::Env(e) => write!(f, "{e}"),
        }
    }
}

/// The filter, and the complaint about `DEFER_WORKER_LOG` when it could not be read (then `info`).
fn filter(directives: Option<&str>, format: Format) -> (Filter, Option<String>) {
    let (directives, complaint) = match directives {
        None => ("info", None),
        Some(d) => match EnvFilter::try_new(d) {
            Ok(_) => (d, None),
            Err(e) => (
                "info",
                Some(format!(
                    "{FILTER_VAR}={d:?} is not a log filter ({e}); logging at info"
                )),
            ),
        },
    };
    // The job-start line of the laravel format, unless the filter is below info.
    let job_start = |max: Option<LevelFilter>| {
        format == Format::Laravel && max.is_none_or(|l| l >= LevelFilter::INFO)
    };
    // Span names and fields are written in brackets: without any, every directive is a static one.
    let targets = (!directives.contains('['))
        .then(|| directives.parse::<Targets>().ok())
        .flatten();
    let filter = match targets {
        Some(targets) => {
            let max = Layer::<Registry>::max_level_hint(&targets);
            let targets = targets.with_target(SPAN_TARGET, LevelFilter::OFF);
            if job_start(max) {
                Filter::Targets(Box::new(
                    targets.with_target(JOB_TARGET, LevelFilter::DEBUG),
                ))
            } else {
                Filter::Targets(Box::new(targets))
            }
        }
        None => {
            let mut env = EnvFilter::new(directives);
            if job_start(env.max_level_hint()) {
                let directive = format!("{JOB_TARGET}=debug")
                    .parse()
                    .expect("a valid directive");
                env = env.add_directive(directive);
            }
            Filter::Env(Box::new(env))
        }
    };
    (filter, complaint)
}

/// Installs the process's log subscriber, writing to stderr through the non-blocking writer.
pub fn init(options: &Options) -> Result<(Handle, Guard), LogError> {
    let notice: DroppedNotice = match options.format {
        Format::Text => notice::text,
        Format::Json => notice::json,
        Format::Laravel => notice::laravel,
    };
    let (writer, handle, guard) =
        writer::non_blocking(Box::new(io::stderr()), options.capacity, notice)?;
    let (filter, complaint) = filter(options.filter.as_deref(), options.format);
    let registry = tracing_subscriber::registry().with(filter.layer());
    match options.format {
        Format::Text => {
            let style = Style::Text {
                colour: options.colour,
            };
            registry.with(LineLayer::new(writer, style)).try_init()?
        }
        Format::Json => registry
            .with(LineLayer::new(writer, Style::Json))
            .try_init()?,
        Format::Laravel => registry.with(LaravelLayer::new(writer)).try_init()?,
    }
    if let Some(complaint) = complaint {
        tracing::warn!("{complaint}");
    }
    Ok((handle, guard))
}

/// The line saying how many lines the full buffer dropped, in each format.
mod notice {
    const WHAT: &str = "log lines dropped: the log buffer was full (stderr is not keeping up)";

    pub(super) fn text(n: u64) -> String {
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ");
        format!("{now}  WARN defer_worker::logging: {WHAT} lines_dropped={n}\n")
    }

    pub(super) fn json(n: u64) -> String {
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ");
        format!(
            "{{\"timestamp\":\"{now}\",\"level\":\"WARN\",\"message\":\"{WHAT}\",\"lines_dropped\":{n},\"target\":\"defer_worker::logging\"}}\n"
        )
    }

    pub(super) fn laravel(n: u64) -> String {
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f+00:00");
        format!(
            "{{\"level\":\"warning\",\"message\":\"{WHAT}\",\"lines_dropped\":{n},\"timestamp\":\"{now}\"}}\n"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_size_comes_from_its_variable_and_a_bad_one_is_named() {
        assert_eq!(capacity(None), Ok(DEFAULT_CAPACITY));
        assert_eq!(capacity(Some(" ")), Ok(DEFAULT_CAPACITY));
        assert_eq!(capacity(Some("0")), Ok(0));
        assert_eq!(capacity(Some("4096")), Ok(4096));
        let err = capacity(Some("1M")).unwrap_err();
        assert!(err.contains("DEFER_WORKER_LOG_BUFFER=\"1M\""), "{err}");
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(
            colour(true, Some(OsStr::new(""))),
            "an empty NO_COLOR is unset (no-color.org)"
        );
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None));
        assert!(!colour(false, Some(OsStr::new("1"))));
    }

    #[test]
    fn the_laravel_format_enables_the_job_start_line_unless_the_filter_is_below_info() {
        let (f, _) = filter(None, Format::Laravel);
        assert_eq!(
            f.to_string(),
            format!("{SPAN_TARGET}=off,{JOB_TARGET}=debug,info")
        );
        let (f, _) = filter(Some("warn"), Format::Laravel);
        assert_eq!(f.to_string(), format!("{SPAN_TARGET}=off,warn"));
        let (f, _) = filter(Some("off"), Format::Laravel);
        assert_eq!(f.to_string(), format!("{SPAN_TARGET}=off,off"));
        let (f, _) = filter(None, Format::Text);
        assert_eq!(f.to_string(), format!("{SPAN_TARGET}=off,info"));
    }

    /// The events `filter` lets through, of events at three targets and five levels, each logged
    /// outside and inside a span.
    fn passed(filter: Filter) -> Vec<String> {
        use std::sync::{Arc, Mutex};
        use tracing::{Event, Level, Subscriber};
        use tracing_subscriber::layer::Context;

        struct Seen(Arc<Mutex<Vec<String>>>);
        impl<S: Subscriber> Layer<S> for Seen {
            fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
                let meta = event.metadata();
                let line = format!("{} {}", meta.target(), meta.level());
                self.0.lock().unwrap().push(line);
            }
        }
        macro_rules! all_levels {
            ($target:literal) => {
                tracing::event!(target: $target, Level::TRACE, "e");
                tracing::event!(target: $target, Level::DEBUG, "e");
                tracing::event!(target: $target, Level::INFO, "e");
                tracing::event!(target: $target, Level::WARN, "e");
                tracing::event!(target: $target, Level::ERROR, "e");
            };
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry()
            .with(filter.layer())
            .with(Seen(Arc::clone(&seen)));
        tracing::subscriber::with_default(subscriber, || {
            for inside in [false, true] {
                let span = tracing::info_span!("job", queue = "emails");
                let _entered = inside.then(|| span.enter());
                all_levels!("defer_worker::worker::job");
                all_levels!("defer_worker::actions");
                all_levels!("sqlx::query");
            }
        });
        let passed = seen.lock().unwrap().clone();
        passed
    }

    #[test]
    fn both_filters_let_the_same_events_through() {
        for directives in [
            "info",
            "warn",
            "off",
            "trace",
            "warn,defer_worker::worker=debug",
            "defer_worker=trace",
            "error,defer_worker::actions=info,sqlx=warn",
            "DEBUG",
        ] {
            let (targets, _) = filter(Some(directives), Format::Text);
            assert!(matches!(targets, Filter::Targets(_)), "{directives}");
            let env = Filter::Env(Box::new(EnvFilter::new(directives)));
            assert_eq!(passed(targets), passed(env), "{directives}");
        }
        // Not the same set for every filter: the comparison can tell them apart.
        let (warn, _) = filter(Some("warn"), Format::Text);
        let (debug, _) = filter(Some("warn,defer_worker::worker=debug"), Format::Text);
        assert_eq!(passed(warn).len(), 2 * 3 * 2);
        let debug = passed(debug);
        assert!(debug.contains(&"defer_worker::worker::job DEBUG".to_owned()));
        assert!(!debug.contains(&"defer_worker::actions INFO".to_owned()));
        // The laravel format's job-start line, either way.
        let (laravel, _) = filter(None, Format::Laravel);
        assert!(matches!(laravel, Filter::Targets(_)));
        assert!(passed(laravel).contains(&"defer_worker::worker::job DEBUG".to_owned()));
    }

    #[test]
    fn a_filter_on_span_fields_keeps_env_filter() {
        let (f, complaint) = filter(Some("info,[job{queue=emails}]=debug"), Format::Text);
        assert!(matches!(f, Filter::Env(_)));
        assert!(complaint.is_none());
        // Its spans' fields do decide: a debug event in a span of the `emails` queue only.
        let seen = passed(f);
        assert!(seen.contains(&"sqlx::query DEBUG".to_owned()), "{seen:?}");
        assert_eq!(seen.iter().filter(|l| l.ends_with(" DEBUG")).count(), 3);
    }

    /// Whether the job span is made under `filter`.
    fn job_span_made(filter: Filter) -> bool {
        let subscriber = tracing_subscriber::registry().with(filter.layer());
        tracing::subscriber::with_default(subscriber, || {
            !tracing::info_span!(target: SPAN_TARGET, "job", queue = "emails").is_disabled()
        })
    }

    #[test]
    fn the_job_span_is_made_only_for_a_filter_on_spans_or_fields() {
        for directives in [
            None,
            Some("trace"),
            Some("defer_worker=trace"),
            Some("warn,defer_worker::worker=debug"),
        ] {
            for format in [Format::Text, Format::Laravel] {
                let (f, _) = filter(directives, format);
                assert!(!job_span_made(f), "{directives:?}");
            }
        }
        let (f, _) = filter(Some("info,[job{queue=emails}]=debug"), Format::Text);
        assert!(job_span_made(f));
        // The same check sees a span that is made.
        assert!(job_span_made(Filter::Env(Box::new(EnvFilter::new("info")))));
    }

    #[test]
    fn an_unreadable_filter_names_the_variable_and_falls_back_to_info() {
        let (f, complaint) = filter(Some("info,[="), Format::Text);
        assert_eq!(f.to_string(), format!("{SPAN_TARGET}=off,info"));
        let complaint = complaint.expect("a complaint");
        assert!(
            complaint.starts_with("DEFER_WORKER_LOG=\"info,[=\" is not a log filter"),
            "{complaint}"
        );
    }

    #[test]
    fn the_dropped_notice_is_a_line_of_each_format() {
        let json: serde_json::Value = serde_json::from_str(&notice::json(7)).unwrap();
        assert_eq!(json["lines_dropped"], 7);
        assert_eq!(json["level"], "WARN");
        let laravel: serde_json::Value = serde_json::from_str(&notice::laravel(7)).unwrap();
        assert_eq!(laravel["lines_dropped"], 7);
        assert_eq!(laravel["level"], "warning");
        assert!(notice::text(7).ends_with("lines_dropped=7\n"));
    }
}
