//! Carries an [`Outcome`] out on Redis and failed_jobs, so that a job is always somewhere: done (with
//! the next link of its chain pushed first), back in `:delayed` (released, or handed back untouched),
//! handed to another queue, or in failed_jobs.
//!
//! Order matters. A failed job is written to failed_jobs *before* it leaves `:reserved` (Laravel does the
//! opposite and loses the job when the database is down); while the database is down the reservation is
//! extended and the insert retried. Queue errors a retry can help with (the store unreachable, busy,
//! failing over; [`DriverError::is_retryable`]) are retried with a capped backoff; any other (a script
//! error, a key of the wrong type, a missing table) is logged once and not retried. Either way, if the
//! operation does not succeed the job is left reserved and comes back after `retry_after`.
//!
//! It must not decide an outcome (that is [`super::job`]), nor drop a job it could not settle.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::laravel::failed_jobs::FailedJobs;
use crate::laravel::queue::{DriverError, Queue, ReservedJob};
use crate::util::clock::unix_now;

use super::job::{JobInfo, Outcome};

/// The stores a job is settled in.
#[derive(Clone)]
pub struct Settler {
    pub queue: Queue,
    pub failed: FailedJobs,
    pub connection: String,
    pub shutdown: CancellationToken,
}

/// How a settle ended, for counters and the outcome log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Done,
    Released,
    Failed,
    HandedOff,
    /// Back in its queue's `:delayed` as it was, without using an attempt.
    HandedBack,
    /// The stores could not be reached; the job stays reserved and comes back after retry_after.
    LeftReserved,
    /// Not settled: its lease was lost while it ran and another worker holds it now
    /// ([`super::lease`]), so nothing here may delete, release or fail it.
    LeaseLost,
}

impl From<Settled> for crate::metrics::JobOutcome {
    fn from(s: Settled) -> Self {
        use crate::metrics::JobOutcome;
        match s {
            Settled::Done => JobOutcome::Done,
            Settled::Released => JobOutcome::Released,
            Settled::Failed => JobOutcome::Failed,
            Settled::HandedOff => JobOutcome::HandedOff,
            Settled::HandedBack => JobOutcome::HandedBack,
            Settled::LeftReserved => JobOutcome::LeftReserved,
            Settled::LeaseLost => JobOutcome::LeaseLost,
        }
    }
}

/// Tries of one queue operation while its errors are retryable (about 11 s of backoff in all).
const STORE_ATTEMPTS: u32 = 8;

impl Settler {
    pub async fn settle(
        &self,
        popped: &ReservedJob,
        outcome: &Outcome,
        retry_after: u64,
        info: &JobInfo,
    ) -> Settled {
        match outcome {
            Outcome::Done | Outcome::Chained { .. } => {
                if let Outcome::Chained { next } = outcome {
                    // Pushed before the finished link leaves `:reserved`: a crash in between runs
                    // the link again (and pushes its next link twice) rather than losing the chain.
                    let pushed = retrying("push next link", popped, info, || {
                        self.queue
                            .push_raw(&next.queue, &next.payload.bytes, next.delay)
                    })
                    .await;
                    if pushed.is_none() {
                        return Settled::LeftReserved;
                    }
                }
                match retrying("delete", popped, info, || {
                    self.queue.delete_reserved(popped)
                })
                .await
                {
                    Some(_) => Settled::Done,
                    None => Settled::LeftReserved,
                }
            }
            Outcome::Release { delay, .. } => {
                match retrying("release", popped, info, || {
                    self.queue.release(popped, *delay)
                })
                .await
                {
                    Some(_) => Settled::Released,
                    None => Settled::LeftReserved,
                }
            }
            Outcome::HandBack { delay, .. } => {
                match retrying("hand back", popped, info, || {
                    self.queue.hand_back(popped, *delay)
                })
                .await
                {
                    Some(_) => Settled::HandedBack,
                    None => Settled::LeftReserved,
                }
            }
            Outcome::Handoff { to, .. } => {
                match retrying("handoff", popped, info, || self.queue.handoff(popped, to)).await {
                    Some(_) => Settled::HandedOff,
                    None => Settled::LeftReserved,
                }
            }
            Outcome::Fail { exception } => {
                if !self
                    .record_failure(popped, &exception.to_php_string(), retry_after, info)
                    .await
                {
                    return Settled::LeftReserved;
                }
                match retrying("delete", popped, info, || {
                    self.queue.delete_reserved(popped)
                })
                .await
                {
                    Some(_) => Settled::Failed,
                    None => Settled::LeftReserved,
                }
            }
        }
    }

    /// Inserts the failed_jobs row, retrying (and keeping the job reserved) while the database is down.
    async fn record_failure(
        &self,
        popped: &ReservedJob,
        exception: &str,
        retry_after: u64,
        info: &JobInfo,
    ) -> bool {
        let payload = String::from_utf8_lossy(&popped.original);
        let mut wait = Duration::from_millis(250);
        loop {
            match self
                .failed
                .log(&self.connection, &popped.queue, &payload, exception)
                .await
            {
                Ok(recorded) => {
                    tracing::debug!(?recorded, "failed_jobs row written");
                    return true;
                }
                Err(err) => {
                    tracing::error!(
                        error = %err,
                        uuid = %info.uuid,
                        retry_in_ms = wait.as_millis() as u64,
                        "cannot write failed_jobs row; the job stays reserved until it is written"
                    );
                }
            }
            // Keep the reservation ahead of the migration so no other worker takes the job meanwhile.
            // Scores are whole seconds: one second of margin, and retries well within retry_after.
            let until = unix_now() + retry_after as i64 + 1;
            if let Err(err) = self
                .queue
                .extend_reservation(popped, until, retry_after)
                .await
            {
                tracing::warn!(error = %err, "cannot extend the reservation while the database is down");
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.shutdown.cancelled() => {
                    tracing::warn!(uuid = %info.uuid, "shutting down before failed_jobs was reachable: the job stays reserved and returns after retry_after");
                    return false;
                }
            }
            wait = (wait * 2)
                .min(Duration::from_secs(15))
                .min(Duration::from_millis(retry_after * 500).max(Duration::from_millis(250)));
        }
    }
}

/// Runs the queue operation `op` on `job`, retrying with a capped backoff while its errors are
/// retryable; `None` when it did not succeed: a non-retryable error (logged once, at the first try) or
/// [`STORE_ATTEMPTS`] retryable ones.
async fn retrying<T, F, Fut>(op: &'static str, job: &ReservedJob, info: &JobInfo, f: F) -> Option<T>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, DriverError>>,
{
    let uuid = (!info.uuid.is_empty()).then_some(info.uuid.as_str());
    let mut wait = Duration::from_millis(100);
    for attempt in 1..=STORE_ATTEMPTS {
        match f().await {
            Ok(v) => return Some(v),
            Err(err) if !err.is_retryable() => {
                tracing::error!(error = %err, op, queue = %job.queue, uuid, "queue operation failed and a retry cannot help; the job stays reserved and returns after retry_after");
                return None;
            }
            Err(err) if attempt < STORE_ATTEMPTS => {
                tracing::warn!(error = %err, op, queue = %job.queue, uuid, attempt, "queue operation failed, retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            Err(err) => {
                tracing::error!(error = %err, op, queue = %job.queue, uuid, "queue operation failed for good; the job stays reserved and returns after retry_after");
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::laravel::queue::Reservation;
    use crate::laravel::redis_error::QueueError;

    fn job() -> ReservedJob {
        ReservedJob {
            queue: "q".into(),
            original: b"{}".to_vec(),
            reservation: Reservation::Redis(b"{}".to_vec()),
            invalid: None,
            attempts: None,
            reserved_until: 0,
        }
    }

    /// A store error as the driver reports it, from an error of the Redis client.
    fn redis_error(source: impl Into<redis::RedisError>) -> DriverError {
        DriverError::Redis(QueueError::Script {
            script: "release",
            key: "queues:q".into(),
            source: source.into(),
        })
    }

    /// Runs `retrying` over an operation failing with `fail(call)` (None: succeeds); returns the
    /// result, how many times the operation ran, and how long it took on tokio's (paused) clock.
    async fn run(fail: impl Fn(u32) -> Option<DriverError>) -> (Option<u32>, u32, Duration) {
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let result = retrying("release", &job(), &JobInfo::default(), || {
            let call = calls.fetch_add(1, Ordering::SeqCst) + 1;
            let outcome = fail(call).map_or(Ok(call), Err);
            async move { outcome }
        })
        .await;
        (result, calls.load(Ordering::SeqCst), started.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_a_retry_cannot_fix_is_tried_once() {
        let cross_slot = (
            redis::ErrorKind::CrossSlot,
            "Keys don't hash to the same slot",
        );
        let (result, calls, took) = run(|_| Some(redis_error(cross_slot))).await;
        assert_eq!((result, calls), (None, 1));
        assert_eq!(took, Duration::ZERO, "no backoff");
        let (result, calls, _) = run(|_| {
            Some(DriverError::WrongDriver {
                driver: "redis",
                reservation: "database",
            })
        })
        .await;
        assert_eq!((result, calls), (None, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_retryable_error_is_retried_with_a_capped_backoff() {
        let loading = (
            redis::ErrorKind::BusyLoadingError,
            "Redis is loading the dataset",
        );
        let (result, calls, took) = run(|_| Some(redis_error(loading))).await;
        assert_eq!((result, calls), (None, STORE_ATTEMPTS));
        // 0.1 + 0.2 + 0.4 + 0.8 + 1.6 + 3.2 + 5 (capped) seconds between the 8 tries.
        assert_eq!(took, Duration::from_millis(11_300));

        let refused = || redis_error(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let (result, calls, took) = run(|call| (call < 3).then(refused)).await;
        assert_eq!((result, calls), (Some(3), 3), "succeeds on the third try");
        assert_eq!(took, Duration::from_millis(300));
    }
}
