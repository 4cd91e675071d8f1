//! [`Metrics`]: the counters and gauges of one worker process, and [`JobOutcome`], the label the worker
//! settles each job with. Every method takes `&self`; share it as `Arc<Metrics>`.
//!
//! It must not format (that is `text`), talk to a store, or hold its lock for more than an increment
//! or a copy: the job series sit behind one mutex, the gauges are atomics.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::depth::QueueDepth;
use super::histogram::Histogram;
use super::text;
use crate::actions::whatsapp::BreakerState;
use crate::logging;
use crate::util::clock;

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
    /// Put back in its own queue's `:delayed` unchanged, without using an attempt.
    HandedBack,
    /// The stores were unreachable: still in `:reserved`, back after `retry_after`.
    LeftReserved,
    /// Its lease was lost while it ran: another worker took it back, so it was left to that worker.
    LeaseLost,
}

impl JobOutcome {
    /// Every outcome, in the order they are rendered.
    pub const ALL: [JobOutcome; 7] = [
        JobOutcome::Done,
        JobOutcome::Released,
        JobOutcome::Failed,
        JobOutcome::HandedOff,
        JobOutcome::HandedBack,
        JobOutcome::LeftReserved,
        JobOutcome::LeaseLost,
    ];

    /// The label value: `done`, `released`, `failed`, `handed_off`, `handed_back`, `left_reserved` or
    /// `lease_lost`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobOutcome::Done => "done",
            JobOutcome::Released => "released",
            JobOutcome::Failed => "failed",
            JobOutcome::HandedOff => "handed_off",
            JobOutcome::HandedBack => "handed_back",
            JobOutcome::LeftReserved => "left_reserved",
            JobOutcome::LeaseLost => "lease_lost",
        }
    }

    pub(super) fn index(self) -> usize {
        match self {
            JobOutcome::Done => 0,
            JobOutcome::Released => 1,
            JobOutcome::Failed => 2,
            JobOutcome::HandedOff => 3,
            JobOutcome::HandedBack => 4,
            JobOutcome::LeftReserved => 5,
            JobOutcome::LeaseLost => 6,
        }
    }
}

/// Counters and run times of one queue/action pair.
#[derive(Debug, Default, Clone)]
pub(super) struct Series {
    pub(super) outcomes: [u64; JobOutcome::ALL.len()],
    pub(super) run_time: Histogram,
}

impl Series {
    fn count(&mut self, outcome: JobOutcome, secs: f64) {
        self.outcomes[outcome.index()] += 1;
        self.run_time.observe(secs);
    }
}

/// Everything [`text::render`] writes, copied out of [`Metrics`] at one instant.
pub(super) struct Snapshot {
    /// (queue, action, series), sorted by queue then action.
    pub(super) jobs: Vec<(String, String, Series)>,
    pub(super) in_flight: i64,
    pub(super) lease_lost: u64,
    pub(super) failed_jobs: Option<u64>,
    pub(super) redis_up: Option<bool>,
    pub(super) db_up: Option<bool>,
    pub(super) paused: Option<Paused>,
    pub(super) start_time: f64,
    /// Log lines the non-blocking writer dropped; `None` when not attached.
    pub(super) log_lines_dropped: Option<u64>,
}

/// What the worker skips, as it last read it: the whole worker (SIGUSR2) and each queue it serves,
/// in its priority order, with whether that queue is paused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paused {
    pub worker: bool,
    pub queues: Vec<(String, bool)>,
}

impl Paused {
    /// The paused queues' names, in the worker's priority order.
    pub fn paused_queues(&self) -> Vec<&str> {
        self.queues
            .iter()
            .filter(|(_, p)| *p)
            .map(|(q, _)| q.as_str())
            .collect()
    }
}

/// Every metric of one worker process. Share it as `Arc<Metrics>`; every method takes `&self`.
/// Gauges are atomics; the job series sit behind one mutex held only for an increment.
#[derive(Debug)]
pub struct Metrics {
    /// queue → action → series.
    jobs: Mutex<HashMap<String, HashMap<String, Series>>>,
    in_flight: AtomicI64,
    /// Leases found lost by an extension (another worker took the job back while it ran).
    lease_lost: AtomicU64,
    redis_up: AtomicU8,
    db_up: AtomicU8,
    /// Rows in failed_jobs at the last scrape; `u64::MAX` while unknown.
    failed_jobs: AtomicU64,
    /// `None` until the worker first reports its pause state.
    paused: Mutex<Option<Paused>>,
    start_time: f64,
    /// The log writer, read (never written) at render time for its dropped lines.
    log: Option<logging::Handle>,
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
            lease_lost: AtomicU64::new(0),
            redis_up: AtomicU8::new(UNKNOWN),
            db_up: AtomicU8::new(UNKNOWN),
            failed_jobs: AtomicU64::new(u64::MAX),
            paused: Mutex::new(None),
            start_time: clock::since_epoch().as_secs_f64(),
            log: None,
        }
    }

    /// Empty metrics that also report the log lines `log`'s writer dropped.
    pub fn with_log(log: logging::Handle) -> Metrics {
        Metrics {
            log: Some(log),
            ..Metrics::new()
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
        // A known series (every job but the first of its queue and action): two lookups.
        if let Some(series) = jobs.get_mut(queue).and_then(|a| a.get_mut(action)) {
            series.count(outcome, secs);
            return;
        }
        let total: usize = jobs.values().map(HashMap::len).sum();
        let (queue, action) = if total < MAX_SERIES {
            (queue, action)
        } else {
            (OTHER, OTHER)
        };
        // Names are copied only for a new series, not for every job.
        let by_action = match jobs.get_mut(queue) {
            Some(by_action) => by_action,
            None => jobs.entry(queue.to_owned()).or_default(),
        };
        let series = match by_action.get_mut(action) {
            Some(series) => series,
            None => by_action.entry(action.to_owned()).or_default(),
        };
        series.count(outcome, secs);
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

    /// One lease found lost: a running job's reservation was taken back by another worker.
    pub fn lease_lost(&self) {
        self.lease_lost.fetch_add(1, Ordering::Relaxed);
    }

    /// Leases found lost so far.
    pub fn lease_lost_count(&self) -> u64 {
        self.lease_lost.load(Ordering::Relaxed)
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

    /// What the worker skips now (see [`Paused`]); rendered as `defer_worker_paused` and
    /// `defer_worker_queue_paused{queue}`.
    pub fn set_paused(&self, paused: Paused) {
        *self
            .paused
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(paused);
    }

    /// The pause state last reported by the worker; `None` before its first report.
    pub fn paused(&self) -> Option<Paused> {
        self.paused
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// How many jobs of `queue`/`action` ended with `outcome` so far (0 if none).
    pub fn job_count(&self, queue: &str, action: &str, outcome: JobOutcome) -> u64 {
        self.lock()
            .get(queue)
            .and_then(|a| a.get(action))
            .map_or(0, |s| s.outcomes[outcome.index()])
    }

    /// Every queue/action pair's counters since the start, unsorted: what the fleet history flushes
    /// as deltas. The lock is held only for the copy.
    pub fn totals(&self) -> Vec<JobTotals> {
        self.lock()
            .iter()
            .flat_map(|(q, actions)| {
                actions.iter().map(move |(a, s)| JobTotals {
                    queue: q.clone(),
                    action: a.clone(),
                    outcomes: s.outcomes,
                    run_time_secs: s.run_time.sum(),
                })
            })
            .collect()
    }

    /// Every metric in the Prometheus text format 0.0.4, with the queue gauges from `depths`.
    /// Series are sorted, so two renders of the same state are identical.
    pub fn render(&self, depths: &[QueueDepth]) -> String {
        self.render_with(depths, &[])
    }

    /// [`Metrics::render`] with the WhatsApp senders' circuit breakers.
    pub fn render_with(&self, depths: &[QueueDepth], breakers: &[BreakerState]) -> String {
        text::render(&self.snapshot(), depths, breakers)
    }

    /// A copy of every metric; the lock is held only for the copy.
    fn snapshot(&self) -> Snapshot {
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
        let up = |v: &AtomicU8| match v.load(Ordering::Relaxed) {
            UNKNOWN => None,
            v => Some(v == 1),
        };
        let failed_jobs = self.failed_jobs.load(Ordering::Relaxed);
        Snapshot {
            jobs,
            in_flight: self.in_flight(),
            lease_lost: self.lease_lost_count(),
            failed_jobs: (failed_jobs != u64::MAX).then_some(failed_jobs),
            redis_up: up(&self.redis_up),
            db_up: up(&self.db_up),
            paused: self.paused(),
            start_time: self.start_time,
            log_lines_dropped: self.log.as_ref().map(logging::Handle::dropped),
        }
    }
}

/// One queue/action pair's counters since the process started, from [`Metrics::totals`].
#[derive(Debug, Clone, PartialEq)]
pub struct JobTotals {
    pub queue: String,
    pub action: String,
    /// Jobs per outcome, indexed as [`JobOutcome::ALL`].
    pub outcomes: [u64; JobOutcome::ALL.len()],
    /// Sum of the run times, seconds.
    pub run_time_secs: f64,
}

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
