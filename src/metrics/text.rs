//! The Prometheus text exposition format 0.0.4 of a [`Snapshot`] of the metrics: `# HELP` and
//! `# TYPE` before each family's samples, escaped label values, Go's float syntax, the `defer_worker_`
//! prefix on every name.
//!
//! Pure formatting: it must not count, lock or read a store.

use std::fmt::Write as _;

use super::depth::QueueDepth;
use super::registry::{JobOutcome, Snapshot};
use crate::actions::whatsapp::BreakerState;

/// Every metric of `m`, with the queue gauges from `depths` and the WhatsApp senders' circuit
/// breakers from `breakers`.
pub(super) fn render(m: &Snapshot, depths: &[QueueDepth], breakers: &[BreakerState]) -> String {
    let mut out = String::with_capacity(4096 + m.jobs.len() * 1500);
    let o = &mut out;

    family(o, "jobs_total", "counter", "Jobs settled, by queue, action and outcome (done, released, failed, handed_off, handed_back, left_reserved, lease_lost).");
    for (q, a, s) in &m.jobs {
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
    for (q, a, s) in &m.jobs {
        for (le, cumulative) in s.run_time.cumulative() {
            let le = le.to_string();
            let labels = [("queue", q.as_str()), ("action", a), ("le", &le)];
            sample(o, "job_duration_seconds_bucket", &labels, cumulative as f64);
        }
        let labels = [("queue", q.as_str()), ("action", a), ("le", "+Inf")];
        sample(
            o,
            "job_duration_seconds_bucket",
            &labels,
            s.run_time.count() as f64,
        );
        let labels = [("queue", q.as_str()), ("action", a.as_str())];
        sample(o, "job_duration_seconds_sum", &labels, s.run_time.sum());
        sample(
            o,
            "job_duration_seconds_count",
            &labels,
            s.run_time.count() as f64,
        );
    }

    family(
        o,
        "jobs_in_flight",
        "gauge",
        "Jobs running in this process now.",
    );
    sample(o, "jobs_in_flight", &[], m.in_flight.max(0) as f64);

    family(
        o,
        "lease_lost_total",
        "counter",
        "Running jobs whose reservation another worker took back (found by a lease extension); each was left to that worker.",
    );
    sample(o, "lease_lost_total", &[], m.lease_lost as f64);

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
    if let Some(failed) = m.failed_jobs {
        sample(o, "failed_jobs", &[], failed as f64);
    }

    for (name, help, up) in [
        (
            "redis_up",
            "1 when Redis answered the last command tried, else 0.",
            m.redis_up,
        ),
        (
            "db_up",
            "1 when the failed_jobs database answered the last query tried, else 0.",
            m.db_up,
        ),
    ] {
        family(o, name, "gauge", help);
        if let Some(up) = up {
            sample(o, name, &[], f64::from(u8::from(up)));
        }
    }

    if let Some(dropped) = m.log_lines_dropped {
        family(
            o,
            "log_lines_dropped_total",
            "counter",
            "Log lines dropped because the log buffer was full (stderr not keeping up); the log says how many, too.",
        );
        sample(o, "log_lines_dropped_total", &[], dropped as f64);
    }

    family(
        o,
        "paused",
        "gauge",
        "1 while the whole worker is paused by SIGUSR2 (until SIGCONT): it takes no new job.",
    );
    if let Some(p) = &m.paused {
        sample(o, "paused", &[], f64::from(u8::from(p.worker)));
    }
    family(
        o,
        "queue_paused",
        "gauge",
        "1 while the worker skips the queue because it is paused in the app's cache store (illuminate:queue:paused:{connection}:{queue}, or illuminate:queues:paused), as last read.",
    );
    for (queue, paused) in m.paused.iter().flat_map(|p| &p.queues) {
        let value = f64::from(u8::from(*paused));
        sample(o, "queue_paused", &[("queue", queue)], value);
    }

    family(
        o,
        "start_time_seconds",
        "gauge",
        "Start time of the process, unix seconds.",
    );
    sample(o, "start_time_seconds", &[], m.start_time);

    family(
        o,
        "whatsapp_breaker_open",
        "gauge",
        "1 while the WhatsApp circuit breaker of a sender (phone-number id) is open: nothing is sent from it and its jobs are handed back; 0 when closed.",
    );
    for b in breakers {
        sample(
            o,
            "whatsapp_breaker_open",
            &[("sender", &b.sender.phone_number_id)],
            f64::from(u8::from(b.open)),
        );
    }
    out
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
    use std::time::Duration;

    use super::*;
    use crate::metrics::{Metrics, MAX_LABEL_LEN, MAX_SERIES, NO_ACTION, OTHER};

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
    fn pause_gauges_appear_once_the_worker_reports() {
        let m = Metrics::new();
        assert!(!m.render(&[]).contains("\ndefer_worker_queue_paused{"));
        m.set_paused(crate::metrics::Paused {
            worker: false,
            queues: vec![("emails".into(), true), ("default".into(), false)],
        });
        let text = m.render(&[]);
        assert!(text.contains("\ndefer_worker_paused 0\n"), "{text}");
        assert!(text.contains("\ndefer_worker_queue_paused{queue=\"emails\"} 1\n"));
        assert!(text.contains("\ndefer_worker_queue_paused{queue=\"default\"} 0\n"));
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
    fn lost_leases_are_counted_and_their_jobs_have_an_outcome() {
        let m = Metrics::new();
        assert!(m
            .render(&[])
            .contains("\ndefer_worker_lease_lost_total 0\n"));
        m.lease_lost();
        m.lease_lost();
        m.job_finished("q", "a", JobOutcome::LeaseLost, Duration::ZERO);
        let text = m.render(&[]);
        assert!(
            text.contains("\ndefer_worker_lease_lost_total 2\n"),
            "{text}"
        );
        assert!(text.contains(
            "defer_worker_jobs_total{queue=\"q\",action=\"a\",outcome=\"lease_lost\"} 1\n"
        ));
    }

    #[test]
    fn values_in_go_syntax() {
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(3.0), "3");
        assert_eq!(format_value(0.25), "0.25");
    }

    #[test]
    fn log_lines_dropped_are_a_counter_when_the_log_writer_is_attached() {
        let text = Metrics::new().render(&[]);
        assert!(!text.contains("log_lines_dropped"), "no writer, no series");
        let m = Metrics::with_log(crate::logging::Handle::having_dropped(42));
        let text = m.render(&[]);
        assert!(text.contains("# TYPE defer_worker_log_lines_dropped_total counter\n"));
        assert!(
            text.contains("\ndefer_worker_log_lines_dropped_total 42\n"),
            "{text}"
        );
    }
}
