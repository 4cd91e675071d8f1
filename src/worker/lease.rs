//! A running job's lease: its reservation is extended before it runs out, so a job that runs longer
//! than `retry_after` is not taken back by another worker (PHP's migration of `:reserved`, its pop of
//! an expired `jobs` row, or ours) and run twice (docs/laravel-queue.md §15).
//!
//! The lease runs beside the job in the job's own task: nothing while the job is shorter than the first
//! extension, then one round trip per extension ([`Queue::extend_reservation`]) every third of
//! `retry_after` (at least a second), early enough that the reservation does not run out: a
//! reservation is whole seconds and a migration takes it at its last second, so the next extension is
//! due at the latest [`every`](Lease::every) before that second, though never within [`MIN_GAP`] of the
//! last one (with `retry_after` 1 a reservation may be shorter than that: use 2 or more). An extension that finds the
//! reservation gone means another worker has the job: it is logged, counted
//! (`defer_worker_lease_lost_total`) and reported as [`Kept::Lost`], so the job's delete or release is
//! skipped and the other worker's reservation stays untouched.
//!
//! An extension in flight is never cancelled: its answer (on the database, the row's new `reserved_at`)
//! is what guards the job's delete. A killed worker extends nothing, so its jobs come back after
//! `retry_after` as before. This module must not settle a job nor stop its action.

use std::future::Future;
use std::time::Duration;

use tokio::sync::Notify;

use crate::laravel::queue::{Queue, ReservedJob};
use crate::metrics::Metrics;
use crate::util::clock::{since_epoch, unix_now};

/// The least time between two extensions (and from the pop to the first), so a reservation shorter
/// than a period (`retry_after` 1: whole seconds leave it 0–1 s) never makes the lease spin, and a
/// job that ends within it never costs an extension.
const MIN_GAP: Duration = Duration::from_millis(250);

/// Whether the job was still ours when it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// Still reserved by us: settle it.
    Held,
    /// Another worker took it back while it ran: leave it to that worker.
    Lost,
}

/// The lease of one reserved job.
pub struct Lease<'a> {
    queue: &'a Queue,
    job: &'a ReservedJob,
    retry_after: u64,
    metrics: &'a Metrics,
}

impl<'a> Lease<'a> {
    pub fn new(
        queue: &'a Queue,
        job: &'a ReservedJob,
        retry_after: u64,
        metrics: &'a Metrics,
    ) -> Lease<'a> {
        Lease {
            queue,
            job,
            retry_after,
            metrics,
        }
    }

    /// How often a running job's reservation is extended: a third of `retry_after`, at least a second.
    pub fn every(retry_after: u64) -> Duration {
        (Duration::from_secs(retry_after) / 3).max(Duration::from_secs(1))
    }

    /// Runs `work` (the job) while keeping its reservation; returns its output and whether the job
    /// was still ours when it finished.
    pub async fn hold<F: Future>(&self, work: F) -> (F::Output, Kept) {
        let finished = Notify::new();
        let work = async {
            let out = work.await;
            // Stores a permit when the lease is extending right now: it stops at its next look.
            finished.notify_one();
            out
        };
        tokio::join!(work, self.keep(&finished))
    }

    /// Extends the reservation until `finished` is notified or the reservation is lost.
    async fn keep(&self, finished: &Notify) -> Kept {
        let every = Lease::every(self.retry_after);
        let mut expires_at = self.job.reserved_until;
        let mut failing = false;
        loop {
            let mut wait = next_extension(since_epoch(), expires_at, every);
            if failing {
                // The store did not answer: look again in a second, not in a busy loop.
                wait = wait.max(Duration::from_secs(1));
            }
            tokio::select! {
                _ = finished.notified() => return Kept::Held,
                _ = tokio::time::sleep(wait) => {}
            }
            let until = unix_now().saturating_add(i64::try_from(self.retry_after).unwrap_or(0));
            match self
                .queue
                .extend_reservation(self.job, until, self.retry_after)
                .await
            {
                Ok(true) => {
                    if failing {
                        tracing::info!(queue = %self.job.queue, "lease extended again");
                    }
                    failing = false;
                    expires_at = expires_at.max(until);
                    tracing::debug!(queue = %self.job.queue, until, "lease extended");
                }
                Ok(false) => {
                    tracing::warn!(
                        queue = %self.job.queue,
                        retry_after = self.retry_after,
                        "lease lost: the job's reservation ran out and another worker took it back; \
                         this run goes on, but its delete or release is skipped and the job is left \
                         to that worker"
                    );
                    self.metrics.lease_lost();
                    return Kept::Lost;
                }
                Err(err) => {
                    if !failing {
                        tracing::warn!(
                            error = %err,
                            queue = %self.job.queue,
                            "cannot extend the job's lease; trying again every second"
                        );
                    }
                    failing = true;
                }
            }
        }
    }
}

/// How long from `now` (since the UNIX epoch) until the next extension of a reservation that runs out
/// at `expires_at` (whole UNIX seconds, taken back from that second on): `every` from now, but no
/// later than `every` before `expires_at`; never sooner than [`MIN_GAP`].
fn next_extension(now: Duration, expires_at: i64, every: Duration) -> Duration {
    let deadline =
        Duration::from_secs(u64::try_from(expires_at).unwrap_or(0)).saturating_sub(every);
    deadline.saturating_sub(now).min(every).max(MIN_GAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn the_period_is_a_third_of_retry_after_and_at_least_a_second() {
        assert_eq!(Lease::every(90), secs(30.0));
        assert_eq!(Lease::every(2), secs(1.0));
        assert_eq!(Lease::every(1), secs(1.0));
        assert_eq!(
            Lease::every(10),
            Duration::from_millis(3333) + Duration::from_nanos(333_333)
        );
    }

    #[test]
    fn the_next_extension_comes_a_period_after_the_last_one() {
        // retry_after 90, reserved at 1000.4 until 1090: the first extension 30 s later.
        assert_eq!(next_extension(secs(1000.4), 1090, secs(30.0)), secs(30.0));
    }

    #[test]
    fn the_next_extension_leaves_a_period_before_the_reservation_runs_out() {
        // retry_after 2, reserved at 1000.6 until 1002: a migration takes it at 1002.0, so extend by
        // 1001.0 (0.4 s from now), not at 1001.6.
        let wait = next_extension(secs(1000.6), 1002, secs(1.0));
        assert!((wait.as_secs_f64() - 0.4).abs() < 1e-6, "{wait:?}");
        // Reserved at 1000.0 until 1002: a full second.
        assert_eq!(next_extension(secs(1000.0), 1002, secs(1.0)), secs(1.0));
    }

    #[test]
    fn an_extension_never_comes_sooner_than_the_minimum_gap() {
        // Reserved at 1000.9 until 1002: 0.1 s would be sooner than the gap.
        assert_eq!(next_extension(secs(1000.9), 1002, secs(1.0)), MIN_GAP);
        // Overdue, or a reservation of less than a period (retry_after 1, reserved at 1000.2 until
        // 1001): after the gap, not in a loop.
        assert_eq!(next_extension(secs(1001.5), 1002, secs(1.0)), MIN_GAP);
        assert_eq!(next_extension(secs(5000.0), 1002, secs(30.0)), MIN_GAP);
        assert_eq!(next_extension(secs(1000.2), 1001, secs(1.0)), MIN_GAP);
        assert_eq!(next_extension(secs(5.0), -1, secs(1.0)), MIN_GAP);
    }
}
