//! The worker's Prometheus metrics: job counters and run-time histograms by queue and action,
//! jobs in flight, whether Redis and the failed_jobs database answer, and, at scrape time, the
//! depth and age of each queue. [`Metrics::render`] writes them in the Prometheus text exposition
//! format 0.0.4; every name starts with `defer_worker_`.
//!
//! Hand-written rather than the `prometheus-client` crate: the worker needs one counter family,
//! one histogram and a few gauges, whose exposition fits in this file, and the queue gauges are
//! read from Redis at scrape time, which the crate's registry would only model through a custom
//! collector anyway.
//!
//! This module only counts and formats. It must not talk to Redis or the database (the HTTP layer
//! queries them and passes [`QueueDepth`]s in), must never block on I/O while holding its lock,
//! and must not take unbounded label values: action names come from payloads, so they are cut to
//! [`MAX_LABEL_LEN`] characters and at most [`MAX_SERIES`] queue/action pairs are kept.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::laravel::payload::Payload;
use crate::laravel::queue::QueueStats;
use crate::util::clock;

/// Upper bounds (seconds) of the job run-time histogram buckets; `+Inf` is implied. From 5 ms (a
/// log action) to two minutes (beyond `queue:work`'s default 60 s timeout).
pub const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];
/// Distinct queue/action pairs kept; later new pairs are counted under [`OTHER`]/[`OTHER`].
pub const MAX_SERIES: usize = 256;
/// Longest label value taken from a job, in characters.
pub const MAX_LABEL_LEN: usize = 64;
/// Label value for pairs beyond [`MAX_SERIES`].
pub const OTHER: &str = "_other";
/// Action label of a job without an action (foreign job classes, unreadable payloads).
pub const NO_ACTION: &str = "_none";

/// How a job ended, as the worker settled it. The label `outcome` of `defer_worker_jobs_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    /// Ran and was deleted.
    Done,
    /// Put back in `:delayed` for another attempt.
    Released,
    /// Written to failed_jobs and deleted.
    Failed,
    /// Pushed unchanged to the hand-off queue for a PHP worker.
    HandedOff,
    /// The stores were unreachable: still in `:reserved`, back after `retry_after`.
    LeftReserved,
}

impl JobOutcome {
    /// Every outcome, in the order they are rendered.
    pub const ALL: [JobOutcome; 5] = [
        JobOutcome::Done,
        JobOutcome::Released,
        JobOutcome::Failed,
        JobOutcome::HandedOff,
        JobOutcome::LeftReserved,
    ];

    /// The label value: `done`, `released`, `failed`, `handed_off` or `left_reserved`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobOutcome::Done => "done",
            JobOutcome::Released => "released",
            JobOutcome::Failed => "failed",
            JobOutcome::HandedOff => "handed_off",
            JobOutcome::LeftReserved => "left_reserved",
        }
    }

    fn index(self) -> usize {
        match self {
            JobOutcome::Done => 0,
            JobOutcome::Released => 1,
            JobOutcome::Failed => 2,
            JobOutcome::HandedOff => 3,
            JobOutcome::LeftReserved => 4,
        }
    }
}

/// One queue as read from Redis at scrape time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueueDepth {
    /// Queue name without prefix.
    pub queue: String,
    /// Jobs in the ready list.
    pub ready: u64,
    /// Jobs in `:delayed` (not yet due, or due and not yet migrated).
    pub delayed: u64,
    /// Jobs in `:reserved` (running, or left by a worker that died).
    pub reserved: u64,
    /// Seconds since the next ready job was pushed: 0 when the list is empty, from the payload's
    /// `createdAt` when it has one (Laravel 12), otherwise unknown (Laravel 8/10 write no push time).
    pub oldest_ready_age: Option<f64>,
    /// Seconds the earliest delayed job is past due (0 when none is): nobody is migrating it.
    pub delayed_overdue: f64,
    /// Seconds the oldest reservation is past its expiry (0 when none is): its worker is gone.
    pub reservation_overdue: f64,
}

impl QueueDepth {
    /// Builds the gauges of `queue` from one [`QueueStats`] snapshot taken at unix time `now`.
    pub fn from_stats(queue: &str, stats: &QueueStats, now: i64) -> QueueDepth {
        let overdue = |at: Option<i64>| at.map_or(0.0, |at| (now.saturating_sub(at)).max(0) as f64);
        let oldest_ready_age = match &stats.head {
            None => Some(0.0),
            Some(raw) => Payload::parse(raw)
                .ok()
                .and_then(|p| p.envelope().created_at)
                .map(|at| (now.saturating_sub(at)).max(0) as f64),
        };
        QueueDepth {
            queue: queue.to_owned(),
            ready: stats.ready,
            delayed: stats.delayed,
            reserved: stats.reserved,
            oldest_ready_age,
            delayed_overdue: overdue(stats.next_delayed_at),
            reservation_overdue: overdue(stats.first_reservation_expires_at),
        }
    }
}

/// Counters and run times of one queue/action pair.
#[derive(Debug, Default, Clone)]
struct Series {
    outcomes: [u64; 5],
    /// Per-bucket (not cumulative) counts; jobs slower than the last bound are only in `count`.
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// Every metric of one worker process. Share it as `Arc<Metrics>`; every method takes `&self`.
/// Gauges are atomics; the job series sit behind one mutex held only for an increment.
#[derive(Debug)]
pub struct Metrics {
    /// queue → action → series.
    jobs: Mutex<HashMap<String, HashMap<String, Series>>>,
    in_flight: AtomicI64,
    redis_up: AtomicU8,
    db_up: AtomicU8,
    /// Rows in failed_jobs at the last scrape; `u64::MAX` while unknown.
    failed_jobs: AtomicU64,
    start_time: f64,
}

const UNKNOWN: u8 = 2;

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Empty metrics; the start time is now.
    pub fn new() -> Metrics {
        Metrics {
            jobs: Mutex::new(HashMap::new()),
            in_flight: AtomicI64::new(0),
            redis_up: AtomicU8::new(UNKNOWN),
            db_up: AtomicU8::new(UNKNOWN),
            failed_jobs: AtomicU64::new(u64::MAX),
            start_time: clock::since_epoch().as_secs_f64(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, HashMap<String, Series>>> {
        // Nothing panics while holding the lock; if it ever did, the counters are still usable.
        self.jobs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts one settled job of `action` (empty for a job without one) taken from `queue`, and
    /// its run time from pop to settle.
    pub fn job_finished(&self, queue: &str, action: &str, outcome: JobOutcome, took: Duration) {
        let queue = truncate(queue);
        let action = if action.is_empty() {
            NO_ACTION
        } else {
            truncate(action)
        };
        let secs = took.as_secs_f64();
        let mut jobs = self.lock();
        let known = jobs.get(queue).is_some_and(|a| a.contains_key(action));
        let total: usize = if known {
            0
        } else {
            jobs.values().map(HashMap::len).sum()
        };
        let (queue, action) = if known || total < MAX_SERIES {
            (queue, action)
        } else {
            (OTHER, OTHER)
        };
        let series = jobs
            .entry(queue.to_owned())
            .or_default()
            .entry(action.to_owned())
            .or_default();
        series.outcomes[outcome.index()] += 1;
        if let Some(i) = BUCKETS.iter().position(|&le| secs <= le) {
            series.buckets[i] += 1;
        }
        series.sum += secs;
        series.count += 1;
    }

    /// One more job running.
    pub fn in_flight_inc(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// One job fewer running.
    pub fn in_flight_dec(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Counts a job as running until the guard is dropped, even if its task panics.
    pub fn track_in_flight(&self) -> InFlight<'_> {
        self.in_flight_inc();
        InFlight(self)
    }

    /// Jobs running now.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Whether Redis answered the last command that was tried.
    pub fn redis_up(&self, up: bool) {
        self.redis_up.store(u8::from(up), Ordering::Relaxed);
    }

    /// Whether the failed_jobs database answered the last query that was tried.
    pub fn db_up(&self, up: bool) {
        self.db_up.store(u8::from(up), Ordering::Relaxed);
    }

    /// Rows in failed_jobs, as last counted.
    pub fn failed_jobs(&self, rows: u64) {
        self.failed_jobs
            .store(rows.min(u64::MAX - 1), Ordering::Relaxed);
    }

    /// How many jobs of `queue`/`action` ended with `outcome` so far (0 if none).
    pub fn job_count(&self, queue: &str, action: &str, outcome: JobOutcome) -> u64 {
        self.lock()
            .get(queue)
            .and_then(|a| a.get(action))
            .map_or(0, |s| s.outcomes[outcome.index()])
    }

    /// Every metric in the Prometheus text format 0.0.4, with the queue gauges from `depths`.
    /// Series are sorted, so two renders of the same state are identical.
    pub fn render(&self, depths: &[QueueDepth]) -> String {
        let mut jobs: Vec<(String, String, Series)> = self
            .lock()
            .iter()
            .flat_map(|(q, actions)| {
                actions
                    .iter()
                    .map(move |(a, s)| (q.clone(), a.clone(), s.clone()))
            })
            .collect();
        jobs.sort_by(|x, y| (&x.0, &x.1).cmp(&(&y.0, &y.1)));

        let mut out = String::with_capacity(4096 + jobs.len() * 1500);
        let o = &mut out;

        family(o, "jobs_total", "counter", "Jobs settled, by queue, action and outcome (done, released, failed, handed_off, left_reserved).");
        for (q, a, s) in &jobs {
            for outcome in JobOutcome::ALL {
                let labels = [
                    ("queue", q.as_str()),
                    ("action", a),
                    ("outcome", outcome.as_str()),
                ];
                sample(o, "jobs_total", &labels, s.outcomes[outcome.index()] as f64);
            }
        }

        family(
            o,
            "job_duration_seconds",
            "histogram",
            "Time from pop to settle of each job, by queue and action.",
        );
        for (q, a, s) in &jobs {
            let mut cumulative = 0;
            for (le, n) in BUCKETS.iter().zip(s.buckets) {
                cumulative += n;
                let le = le.to_string();
                let labels = [("queue", q.as_str()), ("action", a), ("le", &le)];
                sample(o, "job_duration_seconds_bucket", &labels, cumulative as f64);
            }
            let labels = [("queue", q.as_str()), ("action", a), ("le", "+Inf")];
            sample(o, "job_duration_seconds_bucket", &labels, s.count as f64);
            let labels = [("queue", q.as_str()), ("action", a.as_str())];
            sample(o, "job_duration_seconds_sum", &labels, s.sum);
            sample(o, "job_duration_seconds_count", &labels, s.count as f64);
        }

        family(
            o,
            "jobs_in_flight",
            "gauge",
            "Jobs running in this process now.",
        );
        sample(o, "jobs_in_flight", &[], self.in_flight().max(0) as f64);

        family(o, "queue_jobs", "gauge", "Jobs in each queue at scrape time, by state: ready (list), delayed and reserved (sorted sets).");
        for d in depths {
            for (state, n) in [
                ("ready", d.ready),
                ("delayed", d.delayed),
                ("reserved", d.reserved),
            ] {
                sample(
                    o,
                    "queue_jobs",
                    &[("queue", &d.queue), ("state", state)],
                    n as f64,
                );
            }
        }

        for (name, help, get) in QUEUE_AGES {
            family(o, name, "gauge", help);
            for d in depths {
                if let Some(v) = get(d) {
                    sample(o, name, &[("queue", &d.queue)], v);
                }
            }
        }

        family(
            o,
            "failed_jobs",
            "gauge",
            "Rows in the failed_jobs table at the last count.",
        );
        let failed = self.failed_jobs.load(Ordering::Relaxed);
        if failed != u64::MAX {
            sample(o, "failed_jobs", &[], failed as f64);
        }

        for (name, help, v) in [
            (
                "redis_up",
                "1 when Redis answered the last command tried, else 0.",
                &self.redis_up,
            ),
            (
                "db_up",
                "1 when the failed_jobs database answered the last query tried, else 0.",
                &self.db_up,
            ),
        ] {
            family(o, name, "gauge", help);
            let v = v.load(Ordering::Relaxed);
            if v != UNKNOWN {
                sample(o, name, &[], f64::from(v));
            }
        }

        family(
            o,
            "start_time_seconds",
            "gauge",
            "Start time of the process, unix seconds.",
        );
        sample(o, "start_time_seconds", &[], self.start_time);
        out
    }
}

/// The per-queue age gauges: name, help, value (None: not rendered for that queue).
type QueueAge = (&'static str, &'static str, fn(&QueueDepth) -> Option<f64>);
const QUEUE_AGES: [QueueAge; 3] = [
    (
        "queue_oldest_ready_age_seconds",
        "Age of the next ready job, from its createdAt (Laravel 12 payloads; absent when unknown); 0 when the queue is empty.",
        |d| d.oldest_ready_age,
    ),
    (
        "queue_delayed_overdue_seconds",
        "How long the earliest delayed job has been due without being moved to the ready list.",
        |d| Some(d.delayed_overdue),
    ),
    (
        "queue_reservation_overdue_seconds",
        "How long the oldest reservation has been expired (its worker is gone; the next pop re-queues it).",
        |d| Some(d.reservation_overdue),
    ),
];

/// Decrements the in-flight gauge when dropped; from [`Metrics::track_in_flight`].
#[derive(Debug)]
pub struct InFlight<'a>(&'a Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight_dec();
    }
}

/// At most [`MAX_LABEL_LEN`] characters of `s`.
fn truncate(s: &str) -> &str {
    match s.char_indices().nth(MAX_LABEL_LEN) {
        Some((end, _)) => &s[..end],
        None => s,
    }
}

const PREFIX: &str = "defer_worker_";

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let help = help.replace('\\', r"\\").replace('\n', r"\n");
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {PREFIX}{name} {help}");
    let _ = writeln!(out, "# TYPE {PREFIX}{name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(PREFIX);
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            escape_label(out, v);
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {}", format_value(value));
}

/// Label values escape `\`, `"` and newline, as the format requires.
fn escape_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str(r"\n"),
            c => out.push(c),
        }
    }
}

/// Go's float syntax: `+Inf`, `-Inf`, `NaN`; everything else as Rust prints it (`1`, `0.25`).
fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
        text.lines().filter(|l| l.starts_with(prefix)).collect()
    }

    #[test]
    fn counts_by_queue_action_outcome_and_fills_buckets() {
        let m = Metrics::new();
        m.job_finished(
            "whatsapp",
            "whatsapp_notification",
            JobOutcome::Done,
            Duration::from_millis(3),
        );
        m.job_finished(
            "whatsapp",
            "whatsapp_notification",
            JobOutcome::Done,
            Duration::from_millis(300),
        );
        m.job_finished(
            "whatsapp",
            "whatsapp_notification",
            JobOutcome::Released,
            Duration::from_secs(500),
        );
        m.job_finished("default", "", JobOutcome::HandedOff, Duration::ZERO);
        assert_eq!(
            m.job_count("whatsapp", "whatsapp_notification", JobOutcome::Done),
            2
        );
        assert_eq!(m.job_count("default", NO_ACTION, JobOutcome::HandedOff), 1);

        let text = m.render(&[]);
        let w = r#"queue="whatsapp",action="whatsapp_notification""#;
        assert!(text.contains(&format!(
            "defer_worker_jobs_total{{{w},outcome=\"done\"}} 2\n"
        )));
        assert!(text.contains(&format!(
            "defer_worker_jobs_total{{{w},outcome=\"released\"}} 1\n"
        )));
        assert!(text.contains(&format!(
            "defer_worker_jobs_total{{{w},outcome=\"failed\"}} 0\n"
        )));
        assert!(text.contains(&format!(
            "defer_worker_job_duration_seconds_bucket{{{w},le=\"0.005\"}} 1\n"
        )));
        assert!(text.contains(&format!(
            "defer_worker_job_duration_seconds_bucket{{{w},le=\"0.25\"}} 1\n"
        )));
        assert!(text.contains(&format!(
            "defer_worker_job_duration_seconds_bucket{{{w},le=\"0.5\"}} 2\n"
        )));
        assert!(text.contains(&format!(
            "defer_worker_job_duration_seconds_bucket{{{w},le=\"120\"}} 2\n"
        )));
        assert!(text.contains(&format!(
            "defer_worker_job_duration_seconds_bucket{{{w},le=\"+Inf\"}} 3\n"
        )));
        assert!(text.contains(&format!(
            "defer_worker_job_duration_seconds_count{{{w}}} 3\n"
        )));
        assert!(text.contains(&format!(
            "defer_worker_job_duration_seconds_sum{{{w}}} 500.303\n"
        )));
        assert!(text.contains(
            "defer_worker_jobs_total{queue=\"default\",action=\"_none\",outcome=\"handed_off\"} 1\n"
        ));
        // Sorted: default before whatsapp, so renders are stable.
        let first = lines_of(&text, "defer_worker_jobs_total{")[0];
        assert!(first.contains("queue=\"default\""), "{first}");
        assert_eq!(text, m.render(&[]));
    }

    #[test]
    fn every_family_has_help_and_type_before_its_samples() {
        let m = Metrics::new();
        m.job_finished("q", "a", JobOutcome::Failed, Duration::from_millis(1));
        let depth = QueueDepth {
            queue: "q".into(),
            ready: 1,
            ..QueueDepth::default()
        };
        let text = m.render(&[depth]);
        let mut typed: Vec<String> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                typed.push(rest.split(' ').next().unwrap_or_default().to_owned());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap_or_default();
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| {
                        name.strip_suffix(s)
                            .filter(|b| typed.iter().any(|t| t == b))
                    })
                    .unwrap_or(name);
                assert_eq!(typed.last().map(String::as_str), Some(base), "{line}");
            }
        }
        assert!(typed.iter().all(|t| t.starts_with("defer_worker_")));
    }

    #[test]
    fn label_values_are_escaped_and_cut() {
        let m = Metrics::new();
        m.job_finished("q", "a\"b\\c\nd", JobOutcome::Done, Duration::ZERO);
        let long = "é".repeat(100);
        m.job_finished("q", &long, JobOutcome::Done, Duration::ZERO);
        let text = m.render(&[]);
        assert!(text.contains(r#"action="a\"b\\c\nd""#), "{text}");
        assert!(text.contains(&format!("action=\"{}\"", "é".repeat(MAX_LABEL_LEN))));
        assert!(!text.contains(&"é".repeat(MAX_LABEL_LEN + 1)));
    }

    #[test]
    fn series_beyond_the_cap_go_to_other() {
        let m = Metrics::new();
        for i in 0..MAX_SERIES + 10 {
            m.job_finished("q", &format!("action{i}"), JobOutcome::Done, Duration::ZERO);
        }
        m.job_finished("q", "action0", JobOutcome::Done, Duration::ZERO);
        assert_eq!(m.job_count("q", "action0", JobOutcome::Done), 2);
        assert_eq!(m.job_count(OTHER, OTHER, JobOutcome::Done), 10);
        let text = m.render(&[]);
        assert_eq!(
            lines_of(&text, "defer_worker_job_duration_seconds_count{").len(),
            MAX_SERIES + 1
        );
    }

    #[test]
    fn gauges_and_unknowns() {
        let m = Metrics::new();
        let text = m.render(&[]);
        assert!(
            !text.contains("\ndefer_worker_redis_up "),
            "unknown until checked"
        );
        assert!(!text.contains("\ndefer_worker_failed_jobs "));
        m.redis_up(true);
        m.db_up(false);
        m.failed_jobs(7);
        {
            let _a = m.track_in_flight();
            let _b = m.track_in_flight();
            assert!(m.render(&[]).contains("\ndefer_worker_jobs_in_flight 2\n"));
        }
        let text = m.render(&[]);
        assert!(text.contains("\ndefer_worker_jobs_in_flight 0\n"));
        assert!(text.contains("\ndefer_worker_redis_up 1\n"));
        assert!(text.contains("\ndefer_worker_db_up 0\n"));
        assert!(text.contains("\ndefer_worker_failed_jobs 7\n"));
    }

    #[test]
    fn depth_from_stats() {
        let stats = QueueStats {
            ready: 2,
            delayed: 1,
            reserved: 1,
            head: Some(br#"{"uuid":"u","createdAt":900,"attempts":0}"#.to_vec()),
            next_delayed_at: Some(990),
            first_reservation_expires_at: Some(1010),
        };
        let d = QueueDepth::from_stats("q", &stats, 1000);
        assert_eq!(d.oldest_ready_age, Some(100.0));
        assert_eq!(d.delayed_overdue, 10.0);
        assert_eq!(d.reservation_overdue, 0.0);
        let laravel10 = QueueStats {
            head: Some(br#"{"uuid":"u","attempts":0}"#.to_vec()),
            ..stats.clone()
        };
        assert_eq!(
            QueueDepth::from_stats("q", &laravel10, 1000).oldest_ready_age,
            None
        );
        let empty = QueueDepth::from_stats("q", &QueueStats::default(), 1000);
        assert_eq!(empty.oldest_ready_age, Some(0.0));
        assert_eq!(empty.delayed_overdue, 0.0);

        let text = Metrics::new().render(&[d]);
        assert!(text.contains("defer_worker_queue_jobs{queue=\"q\",state=\"ready\"} 2\n"));
        assert!(text.contains("defer_worker_queue_jobs{queue=\"q\",state=\"reserved\"} 1\n"));
        assert!(text.contains("defer_worker_queue_oldest_ready_age_seconds{queue=\"q\"} 100\n"));
        assert!(text.contains("defer_worker_queue_delayed_overdue_seconds{queue=\"q\"} 10\n"));
    }

    #[test]
    fn values_in_go_syntax() {
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(3.0), "3");
        assert_eq!(format_value(0.25), "0.25");
    }
}
