//! The worker loop: take jobs in strict queue priority whenever a slot is free, run up to `concurrency`
//! at once, wait for new jobs without polling, and stop the way `queue:work` does.
//!
//! Only the wait for the next job is cancelled by a signal; running jobs finish under their own timeout,
//! tracked by a `TaskTracker`, within the drain deadline. Correctness never relies on the drain: a job
//! still reserved when the process dies returns after `retry_after`.
//!
//! It must not decide or settle a job itself ([`super::job`], [`super::settle`]), nor stop on a store
//! error: it logs it, backs off (at once to the longest wait when a retry cannot help) and keeps looping.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::laravel::cache_store::CacheStore;
use crate::laravel::queue::{DriverError, Queue, ReservedJob};
use crate::logging::JobScope;
use crate::metrics::Metrics;
use crate::util::clock::unix_now;

use super::job::{Decider, JobInfo};
use super::lease::{Kept, Lease};
use super::outcome_log::log_outcome;
use super::pause::{self, Pauses};
use super::settle::{Settled, Settler};

/// How often due `:delayed` and expired `:reserved` jobs are moved back while the worker is busy.
pub const MIGRATE_EVERY: Duration = Duration::from_millis(500);
/// The longest an idle worker blocks before looking for due delayed jobs again.
const IDLE_CHECK: Duration = Duration::from_secs(1);
/// Laravel's migration batch is unlimited by default; we move at most this many per queue per pass.
pub const MIGRATE_LIMIT: i64 = 1000;
/// How often the restart signal is read (PHP reads it once per job; this bounds the cost at high rates
/// and still stops the worker within a second of `queue:restart`).
const RESTART_CHECK: Duration = Duration::from_millis(400);
/// Most jobs reserved in one round trip when several slots are free.
pub const POP_BATCH: usize = 32;
/// First and longest wait after the queue failed to migrate or pop; an error a retry cannot fix
/// waits the longest at once.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Counters of one run, printed at exit.
#[derive(Debug, Default)]
pub struct Summary {
    pub popped: AtomicU64,
    pub done: AtomicU64,
    pub released: AtomicU64,
    pub failed: AtomicU64,
    pub handed_off: AtomicU64,
    pub handed_back: AtomicU64,
    pub left_reserved: AtomicU64,
    pub lease_lost: AtomicU64,
}

impl Summary {
    fn count(&self, s: Settled) {
        let c = match s {
            Settled::Done => &self.done,
            Settled::Released => &self.released,
            Settled::Failed => &self.failed,
            Settled::HandedOff => &self.handed_off,
            Settled::HandedBack => &self.handed_back,
            Settled::LeftReserved => &self.left_reserved,
            Settled::LeaseLost => &self.lease_lost,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn line(&self) -> String {
        format!(
            "popped={} done={} released={} failed={} handed_off={} handed_back={} left_reserved={} lease_lost={}",
            self.popped.load(Ordering::Relaxed),
            self.done.load(Ordering::Relaxed),
            self.released.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.handed_off.load(Ordering::Relaxed),
            self.handed_back.load(Ordering::Relaxed),
            self.left_reserved.load(Ordering::Relaxed),
            self.lease_lost.load(Ordering::Relaxed),
        )
    }
}

/// Why the loop stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Signal,
    /// `queue:restart` (or `defer-worker restart`) changed the signal in the cache store.
    Restart,
    Empty,
    MaxJobs,
    MaxTime,
}

/// The worker: a decider, a settler, and the queue to take jobs from.
pub struct Worker {
    pub queue: Queue,
    pub decider: Arc<Decider>,
    pub settler: Settler,
    pub shutdown: CancellationToken,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Where `queue:restart` leaves its signal and `queue:pause` its flags; `None`: the app's store
    /// cannot carry them.
    pub restart: Option<CacheStore>,
    /// What is paused ([`super::pause`]): queues are skipped, a paused worker takes no job.
    pub pauses: Arc<Pauses>,
}

impl Worker {
    /// Runs until a stop condition; returns why, with the run's counters.
    pub async fn run(self) -> (StopReason, Arc<Summary>) {
        let opts = Arc::clone(&self.decider.options);
        let slots = Arc::new(Semaphore::new(opts.concurrency.max(1)));
        let tracker = TaskTracker::new();
        let finished = Arc::new(Notify::new());
        let summary = Arc::new(Summary::default());
        let started = Instant::now();
        let mut last_migrate: HashMap<String, Instant> = HashMap::new();
        let mut backoff = BACKOFF_MIN;

        for w in opts.warnings() {
            tracing::warn!("{w}");
        }
        for n in opts.notes() {
            tracing::info!("{n}");
        }
        tracing::info!(queues = %opts.queues.join(","), concurrency = opts.concurrency, threads = opts.threads, "worker started");
        let restart = CancellationToken::new();
        if let Some(store) = self.restart.clone() {
            tokio::spawn(watch_restart(
                store.clone(),
                restart.clone(),
                self.shutdown.clone(),
            ));
            let (pauses, connection) = (Arc::clone(&self.pauses), opts.connection.clone());
            tokio::spawn(pause::watch_flags(
                pauses,
                store,
                connection,
                self.shutdown.clone(),
            ));
        }

        let reason = loop {
            if restart.is_cancelled() {
                break StopReason::Restart;
            }
            if self.shutdown.is_cancelled() {
                break StopReason::Signal;
            }
            if opts.max_jobs > 0 && summary.popped.load(Ordering::Relaxed) >= opts.max_jobs {
                break StopReason::MaxJobs;
            }
            if !opts.max_time.is_zero() && started.elapsed() >= opts.max_time {
                break StopReason::MaxTime;
            }
            if self.pauses.now().worker {
                // SIGUSR2: no new job until SIGCONT; the stop conditions above are checked each second.
                let mut changed = self.pauses.subscribe();
                tokio::select! {
                    _ = changed.wait_for(|s| !s.worker) => {}
                    _ = tokio::time::sleep(IDLE_CHECK) => {}
                    _ = self.shutdown.cancelled() => break StopReason::Signal,
                    _ = restart.cancelled() => break StopReason::Restart,
                }
                continue;
            }
            let permit = tokio::select! {
                p = Arc::clone(&slots).acquire_owned() => p.expect("semaphore never closed"),
                _ = self.shutdown.cancelled() => break StopReason::Signal,
                _ = restart.cancelled() => break StopReason::Restart,
            };
            if self.pauses.now().worker {
                // SIGUSR2 arrived while every slot was busy: the slot that just freed takes nothing.
                drop(permit);
                continue;
            }
            // Every free slot is filled in one round trip (one EVAL, one transaction), never more:
            // a popped job always has a slot and starts at once, so none waits outside `:reserved`.
            let mut permits = vec![permit];
            let mut want = POP_BATCH.min(opts.concurrency.max(1));
            if opts.max_jobs > 0 {
                let left = opts.max_jobs - summary.popped.load(Ordering::Relaxed);
                want = want.min(usize::try_from(left).unwrap_or(usize::MAX));
            }
            while permits.len() < want {
                match Arc::clone(&slots).try_acquire_owned() {
                    Ok(p) => permits.push(p),
                    Err(_) => break,
                }
            }
            // Jobs running when this round starts may release a job (due at once) after the round
            // has looked: only a round that started with none running may stop the worker as empty.
            let running_before =
                opts.concurrency.max(1) - slots.available_permits() - permits.len();
            let mut taken = self
                .next_jobs(&mut last_migrate, false, permits.len())
                .await;
            if taken.jobs.is_empty() && taken.error.is_none() {
                // Nothing ready: migrate now (not on the timer) and look once more before idling.
                taken = self.next_jobs(&mut last_migrate, true, permits.len()).await;
            }
            let Taken {
                jobs: popped,
                error,
            } = taken;
            if let Some(error) = error {
                error.log();
                if popped.is_empty() {
                    drop(permits);
                    tokio::select! {
                        _ = tokio::time::sleep(error.backoff(&mut backoff)) => {}
                        _ = self.shutdown.cancelled() => break StopReason::Signal,
                    }
                    continue;
                }
            }
            backoff = BACKOFF_MIN;
            if popped.is_empty() {
                drop(permits);
                let in_flight = opts.concurrency.max(1) - slots.available_permits();
                if in_flight == 0 && running_before > 0 {
                    // The jobs that were running when this round looked have all settled since: what
                    // they released is in the queue now, so look again at once rather than idle.
                    continue;
                }
                if opts.stop_when_empty && in_flight == 0 {
                    break StopReason::Empty;
                }
                self.idle(&opts.queues, in_flight > 0, &finished, started, &restart)
                    .await;
                continue;
            }
            for (job, permit) in popped.into_iter().zip(permits) {
                summary.popped.fetch_add(1, Ordering::Relaxed);
                self.spawn_job(&tracker, job, permit, &summary, &finished);
            }
        };

        tracker.close();
        let in_flight = tracker.len();
        if in_flight > 0 {
            tracing::info!(
                in_flight,
                drain_timeout_s = opts.drain_timeout.as_secs(),
                "waiting for running jobs"
            );
        }
        if tokio::time::timeout(opts.drain_timeout, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                still_running = tracker.len(),
                "drain deadline passed; unfinished jobs stay reserved and return after retry_after"
            );
        }
        tracing::info!(reason = ?reason, summary = %summary.line(), "worker stopped");
        (reason, summary)
    }

    /// Pops up to `max` jobs in priority order (the rest of a batch from the next queues), migrating
    /// due jobs first when it is time (or `force`). A failure ends the round: the jobs taken before it
    /// are returned with it.
    async fn next_jobs(
        &self,
        last: &mut HashMap<String, Instant>,
        force: bool,
        max: usize,
    ) -> Taken {
        let opts = &self.decider.options;
        let mut jobs = Vec::new();
        let failed = |jobs, op, queue: &String, source| Taken {
            jobs,
            error: Some(TakeError {
                op,
                queue: queue.clone(),
                source,
            }),
        };
        let paused = self.pauses.now().queues;
        for q in opts.queues.iter().filter(|q| !paused.contains(*q)) {
            let due = force || last.get(q).is_none_or(|t| t.elapsed() >= MIGRATE_EVERY);
            if due {
                if let Err(err) = self.queue.migrate(q, MIGRATE_LIMIT).await {
                    return failed(jobs, "migrating", q, err);
                }
                last.insert(q.clone(), Instant::now());
            }
            match self
                .queue
                .pop(q, opts.retry_after_for(q), max - jobs.len())
                .await
            {
                Ok(mut got) => jobs.append(&mut got),
                Err(err) => return failed(jobs, "popping", q, err),
            }
            if jobs.len() >= max {
                break;
            }
        }
        Taken { jobs, error: None }
    }

    /// Waits for a notify token, a finished job, the next due delayed job, or `--sleep`, whichever first.
    async fn idle(
        &self,
        queues: &[String],
        busy: bool,
        finished: &Notify,
        started: Instant,
        restart: &CancellationToken,
    ) {
        let opts = &self.decider.options;
        // A paused queue is neither watched nor migrated; a pause or resume ends the wait.
        let mut pause_changed = self.pauses.subscribe();
        let paused = pause_changed.borrow_and_update().queues.clone();
        let queues: Vec<String> = queues
            .iter()
            .filter(|q| !paused.contains(*q))
            .cloned()
            .collect();
        let queues = queues.as_slice();
        // Delayed jobs arrive without a notify token (a plain ZADD), so look again at least every second.
        let mut wait = opts.sleep.clamp(Duration::from_millis(50), IDLE_CHECK);
        let now = unix_now();
        for q in queues {
            if let Ok(Some(due)) = self.queue.next_due(q, opts.retry_after_for(q)).await {
                let secs = (due - now).max(0) as u64;
                wait = wait
                    .min(Duration::from_millis(secs * 1000 + 20).max(Duration::from_millis(50)));
            }
        }
        if !opts.max_time.is_zero() {
            wait = wait.min(
                opts.max_time
                    .saturating_sub(started.elapsed())
                    .max(Duration::from_millis(10)),
            );
        }
        let finished_wait = async {
            if busy {
                finished.notified().await
            } else {
                std::future::pending().await
            }
        };
        let notified = async {
            if queues.is_empty() {
                tokio::time::sleep(wait).await;
                return;
            }
            if let Err(err) = self.queue.block_for_notify(queues, wait).await {
                tracing::error!(error = %err, "queue unreachable while waiting for jobs");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        };
        tokio::select! {
            _ = notified => {}
            _ = pause_changed.changed() => {}
            _ = finished_wait => {}
            _ = self.shutdown.cancelled() => {}
            _ = restart.cancelled() => {}
        }
    }

    fn spawn_job(
        &self,
        tracker: &TaskTracker,
        popped: ReservedJob,
        permit: tokio::sync::OwnedSemaphorePermit,
        summary: &Arc<Summary>,
        finished: &Arc<Notify>,
    ) {
        let decider = Arc::clone(&self.decider);
        let settler = self.settler.clone();
        let summary = Arc::clone(summary);
        let finished = Arc::clone(finished);
        let metrics = Arc::clone(&self.metrics);
        let scope = JobScope::new(&popped.queue, &self.decider.options.connection);
        tracker.spawn(scope.run(async move {
            let started = Instant::now();
            let in_flight = metrics.track_in_flight();
            let mut info = JobInfo::default();
            let retry_after = decider.options.retry_after_for(&popped.queue);
            let lease = Lease::new(&settler.queue, &popped, retry_after, &metrics);
            // Boxed, each only while it runs: the task itself stays small (~1.7 KB instead
            // of ~10 KB for every job in flight) and is not copied around whole.
            let (outcome, kept) = lease
                .hold(Box::pin(decider.decide(&popped, &mut info)))
                .await;
            let settled = match kept {
                Kept::Held => Box::pin(settler.settle(&popped, &outcome, retry_after, &info)).await,
                Kept::Lost => Settled::LeaseLost,
            };
            drop(in_flight);
            summary.count(settled);
            let took = started.elapsed();
            metrics.job_finished(&popped.queue, &info.action, settled.into(), took);
            log_outcome(&outcome, settled, &info, took);
            let rest = decider.options.rest;
            if !rest.is_zero() {
                tokio::time::sleep(rest).await;
            }
            drop(permit);
            finished.notify_one();
        }));
    }
}

/// What one round of [`Worker::next_jobs`] reserved, and the failure that cut it short, if any.
struct Taken {
    jobs: Vec<ReservedJob>,
    error: Option<TakeError>,
}

/// A queue operation of the loop that failed.
struct TakeError {
    /// `migrating` or `popping`.
    op: &'static str,
    queue: String,
    source: DriverError,
}

impl TakeError {
    /// How long to wait before the next round, given the current `backoff`: doubling from
    /// [`BACKOFF_MIN`] while the errors are retryable, [`BACKOFF_MAX`] at once when a retry cannot help.
    fn backoff(&self, backoff: &mut Duration) -> Duration {
        if !self.source.is_retryable() {
            return BACKOFF_MAX;
        }
        let wait = *backoff;
        *backoff = (wait * 2).min(BACKOFF_MAX);
        wait
    }

    fn log(&self) {
        let (op, queue, error) = (self.op, self.queue.as_str(), &self.source);
        if error.is_retryable() {
            tracing::error!(error = %error, queue, "queue unreachable while {op}; retrying");
        } else {
            tracing::error!(error = %error, queue, retry_in_s = BACKOFF_MAX.as_secs(), "queue operation failed while {op} and a retry cannot help until the queue is fixed");
        }
    }
}

/// Reads the restart signal at start and every [`RESTART_CHECK`]; cancels `restart` when it changes,
/// as `queue:work` compares `illuminate:queue:restart` with the value it read at start. A store that
/// cannot be read is logged (once per outage) and the worker keeps running.
async fn watch_restart(store: CacheStore, restart: CancellationToken, shutdown: CancellationToken) {
    let mut baseline = None;
    let mut failing = false;
    loop {
        match store.restart_signal().await {
            Ok(value) => {
                failing = false;
                match baseline {
                    None => baseline = Some(value),
                    Some(before) if before != value => {
                        tracing::info!(store = %store.describe(), "restart signal received: finishing running jobs, then exiting");
                        restart.cancel();
                        return;
                    }
                    Some(_) => {}
                }
            }
            Err(err) if !failing => {
                failing = true;
                tracing::warn!(error = %err, "cannot read the restart signal; will keep trying");
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(RESTART_CHECK) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::laravel::redis_error::QueueError;

    fn failed(source: redis::RedisError) -> TakeError {
        TakeError {
            op: "popping",
            queue: "default".into(),
            source: DriverError::Redis(QueueError::Command {
                op: "EVALSHA",
                key: "queues:default".into(),
                source,
            }),
        }
    }

    #[test]
    fn backoff_doubles_while_retryable_and_is_longest_at_once_otherwise() {
        let loading = failed(redis::RedisError::from((
            redis::ErrorKind::BusyLoadingError,
            "loading",
        )));
        let mut backoff = BACKOFF_MIN;
        let waits: Vec<u128> = (0..9)
            .map(|_| loading.backoff(&mut backoff).as_millis())
            .collect();
        assert_eq!(
            waits,
            [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]
        );

        let wrong_type = failed(redis::RedisError::from((
            redis::ErrorKind::TypeError,
            "WRONGTYPE",
        )));
        let mut backoff = BACKOFF_MIN;
        assert_eq!(wrong_type.backoff(&mut backoff), BACKOFF_MAX);
        assert_eq!(
            backoff, BACKOFF_MIN,
            "the retryable backoff is left as it was"
        );
    }
}
