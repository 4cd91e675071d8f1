//! Carries an [`Outcome`] out on Redis and failed_jobs, so that a job is always somewhere: done, back in
//! `:delayed`, handed to another queue, or in failed_jobs.
//!
//! Order matters. A failed job is written to failed_jobs *before* it leaves `:reserved` (Laravel does the
//! opposite and loses the job when the database is down); while the database is down the reservation is
//! extended and the insert retried. Redis errors are retried with a capped backoff; if Redis stays away,
//! the job is left reserved and Laravel's own migration brings it back after `retry_after`.

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
    /// The stores could not be reached; the job stays reserved and comes back after retry_after.
    LeftReserved,
}

impl From<Settled> for crate::metrics::JobOutcome {
    fn from(s: Settled) -> Self {
        use crate::metrics::JobOutcome;
        match s {
            Settled::Done => JobOutcome::Done,
            Settled::Released => JobOutcome::Released,
            Settled::Failed => JobOutcome::Failed,
            Settled::HandedOff => JobOutcome::HandedOff,
            Settled::LeftReserved => JobOutcome::LeftReserved,
        }
    }
}

const REDIS_ATTEMPTS: u32 = 8;

impl Settler {
    pub async fn settle(
        &self,
        popped: &ReservedJob,
        outcome: &Outcome,
        retry_after: u64,
        info: &JobInfo,
    ) -> Settled {
        match outcome {
            Outcome::Done => match self.store(|| self.queue.delete_reserved(popped)).await {
                Some(_) => Settled::Done,
                None => Settled::LeftReserved,
            },
            Outcome::Release { delay, .. } => {
                match self.store(|| self.queue.release(popped, *delay)).await {
                    Some(_) => Settled::Released,
                    None => Settled::LeftReserved,
                }
            }
            Outcome::Handoff { to, .. } => {
                match self.store(|| self.queue.handoff(popped, to)).await {
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
                match self.store(|| self.queue.delete_reserved(popped)).await {
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

    /// Runs a queue operation with a capped backoff; `None` when the store stayed unreachable.
    async fn store<T, F, Fut>(&self, op: F) -> Option<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, DriverError>>,
    {
        let mut wait = Duration::from_millis(100);
        for attempt in 1..=REDIS_ATTEMPTS {
            match op().await {
                Ok(v) => return Some(v),
                Err(err) if attempt < REDIS_ATTEMPTS => {
                    tracing::warn!(error = %err, attempt, "queue operation failed, retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                Err(err) => {
                    tracing::error!(error = %err, "queue operation failed for good; the job stays reserved and returns after retry_after");
                }
            }
        }
        None
    }
}
