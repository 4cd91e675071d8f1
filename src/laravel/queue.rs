//! One queue connection, whatever its driver: Laravel's `redis` (lists and sorted sets, [`RedisQueue`])
//! or `database` (the `jobs` table, [`DatabaseQueue`]). The worker and the operator commands talk to
//! this and never to a driver, so both drivers share the same rules, failed_jobs and commands.
//!
//! A reserved job is a [`ReservedJob`]; settling it (delete, release, hand-off) takes it back, and its
//! [`Reservation`] says how its driver identifies it: the exact `:reserved` member on Redis, the row id
//! and the `reserved_at` we wrote on the database. [`Queue::extend_reservation`] keeps it (a running
//! job's lease) and says when it was lost to another worker. A reservation only ever reaches its own
//! driver; one handed to the other is refused with [`DriverError::WrongDriver`].
//!
//! This module routes and converts; it must not retry (the worker decides that from
//! [`DriverError::is_retryable`]), nor speak a store's protocol itself.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use super::database_queue::{DatabaseJobRecord, DatabaseQueue, DbQueueError};
use super::redis_error::QueueError;
use super::redis_queue::{RedisJob, RedisQueue};
use crate::util::clock::unix_now;

/// A driver's error, with whether to back off and retry.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Redis(#[from] QueueError),
    #[error(transparent)]
    Database(#[from] DbQueueError),
    /// A job reserved by one driver was handed to the other: a bug of ours, never retried.
    #[error(
        "a job reserved on the {reservation} queue driver cannot be settled on the {driver} one; \
         it stays reserved and returns after retry_after"
    )]
    WrongDriver {
        driver: &'static str,
        reservation: &'static str,
    },
}

impl DriverError {
    /// True when the connection (not the request) failed.
    pub fn is_connection(&self) -> bool {
        match self {
            DriverError::Redis(e) => e.is_connection(),
            DriverError::Database(e) => e.is_connection(),
            DriverError::WrongDriver { .. } => false,
        }
    }

    /// True when the same request may succeed later (the store was unreachable, busy, loading, failing
    /// over, or lost a lock race): back off and try again. False when a retry cannot help (a script
    /// error, a key of the wrong type, a missing table, a queue unusable on a cluster).
    pub fn is_retryable(&self) -> bool {
        match self {
            DriverError::Redis(e) => e.is_retryable(),
            DriverError::Database(e) => e.is_retryable(),
            DriverError::WrongDriver { .. } => false,
        }
    }
}

/// How the driver that reserved a job finds that reservation again.
pub enum Reservation {
    /// The exact member now in `:reserved`: the payload with `attempts` bumped, re-encoded by the
    /// pop script, so it can never be rebuilt from the original. For an invalid payload it equals
    /// the original.
    Redis(Vec<u8>),
    /// The `jobs.id` of the reserved row and the `reserved_at` we last wrote in it: another worker
    /// that takes the row back after `retry_after` keeps the id and writes its own `reserved_at`.
    /// [`Queue::extend_reservation`] moves it forward, so it is shared through `&ReservedJob`.
    Database { id: i64, reserved_at: AtomicI64 },
}

impl Reservation {
    /// A reserved row: its id and the `reserved_at` the reservation wrote.
    pub fn database(id: i64, reserved_at: i64) -> Reservation {
        Reservation::Database {
            id,
            reserved_at: AtomicI64::new(reserved_at),
        }
    }

    /// The driver that made it: `redis` or `database`, as [`Queue::driver`].
    pub fn driver(&self) -> &'static str {
        match self {
            Reservation::Redis(_) => "redis",
            Reservation::Database { .. } => "database",
        }
    }

    /// The row id and current `reserved_at` of a database reservation.
    pub fn row(&self) -> Option<(i64, i64)> {
        match self {
            Reservation::Redis(_) => None,
            Reservation::Database { id, reserved_at } => {
                Some((*id, reserved_at.load(Ordering::Acquire)))
            }
        }
    }
}

impl Clone for Reservation {
    fn clone(&self) -> Reservation {
        match self {
            Reservation::Redis(member) => Reservation::Redis(member.clone()),
            Reservation::Database { id, reserved_at } => {
                Reservation::database(*id, reserved_at.load(Ordering::Acquire))
            }
        }
    }
}

impl PartialEq for Reservation {
    fn eq(&self, other: &Reservation) -> bool {
        match (self, other) {
            (Reservation::Redis(a), Reservation::Redis(b)) => a == b,
            (a, b) => a.row().is_some() && a.row() == b.row(),
        }
    }
}

impl Eq for Reservation {}

impl fmt::Debug for Reservation {
    // The Redis member is a payload and may hold personal data; show its size only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reservation::Redis(member) => f
                .debug_struct("Redis")
                .field("member_len", &member.len())
                .finish(),
            Reservation::Database { id, reserved_at } => f
                .debug_struct("Database")
                .field("id", id)
                .field("reserved_at", &reserved_at.load(Ordering::Acquire))
                .finish(),
        }
    }
}

/// A job reserved by [`Queue::pop`], whatever the driver: what the worker runs and then settles.
#[derive(Clone, PartialEq, Eq)]
pub struct ReservedJob {
    /// Queue name without prefix, e.g. `default`.
    pub queue: String,
    /// The payload exactly as it was in the queue (Laravel's `getRawBody`). Read job settings from
    /// this, and write this to `failed_jobs.payload`.
    pub original: Vec<u8>,
    /// The driver's handle on the reservation; pass the job back to settle it.
    pub reservation: Reservation,
    /// `Some(reason)` when the payload could not be reserved as a job (not JSON, no numeric
    /// `attempts`). It is still reserved, so nothing is lost: record it, then delete it.
    pub invalid: Option<String>,
    /// Attempts including this one, when the driver keeps them outside the payload (the database
    /// driver's `jobs.attempts`); `None` on Redis, where the payload's `attempts` + 1 is the count.
    pub attempts: Option<i64>,
    /// When the reservation made by the pop runs out (UNIX seconds): from that second on a
    /// migration (Redis) or a pop (database) may hand the job to another worker.
    pub reserved_until: i64,
}

impl fmt::Debug for ReservedJob {
    // Payloads may hold personal data; show sizes only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReservedJob")
            .field("queue", &self.queue)
            .field("original_len", &self.original.len())
            .field("reservation", &self.reservation)
            .field("invalid", &self.invalid)
            .field("attempts", &self.attempts)
            .field("reserved_until", &self.reserved_until)
            .finish()
    }
}

impl From<RedisJob> for ReservedJob {
    fn from(job: RedisJob) -> ReservedJob {
        ReservedJob {
            queue: job.queue,
            original: job.original,
            reservation: Reservation::Redis(job.reserved),
            invalid: job.invalid,
            attempts: None,
            reserved_until: job.reserved_until,
        }
    }
}

impl ReservedJob {
    fn from_row(queue: &str, row: DatabaseJobRecord, retry_after: u64) -> ReservedJob {
        ReservedJob {
            queue: queue.to_owned(),
            original: row.payload,
            reservation: Reservation::database(row.id, row.reserved_at),
            invalid: None,
            attempts: Some(row.attempts),
            reserved_until: row
                .reserved_at
                .saturating_add(i64::try_from(retry_after).unwrap_or(i64::MAX)),
        }
    }
}

/// One queue at one instant, from [`Queue::stats`]: Laravel 12's `pendingSize`, `delayedSize`,
/// `reservedSize` and `creationTimeOfOldestPendingJob` together.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Jobs ready to be popped (Redis: LLEN of the ready list).
    pub ready: u64,
    /// Jobs not yet due (Redis: ZCARD of `:delayed`, which may include due jobs not yet migrated).
    pub delayed: u64,
    /// Jobs reserved by a worker (Redis: ZCARD of `:reserved`).
    pub reserved: u64,
    /// The next payload to be popped, None when nothing is ready.
    pub head: Option<Vec<u8>>,
    /// When the next delayed job is due (unix seconds).
    pub next_delayed_at: Option<i64>,
    /// When the oldest reservation runs out (unix seconds).
    pub first_reservation_expires_at: Option<i64>,
}

impl QueueStats {
    /// Laravel's `size`: ready + delayed + reserved.
    pub fn size(&self) -> u64 {
        self.ready + self.delayed + self.reserved
    }
}

impl fmt::Debug for QueueStats {
    // The head payload may hold personal data; show its size only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueStats")
            .field("ready", &self.ready)
            .field("delayed", &self.delayed)
            .field("reserved", &self.reserved)
            .field("head_len", &self.head.as_ref().map(Vec::len))
            .field("next_delayed_at", &self.next_delayed_at)
            .field(
                "first_reservation_expires_at",
                &self.first_reservation_expires_at,
            )
            .finish()
    }
}

/// A queue connection. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Queue {
    Redis(RedisQueue),
    Database(DatabaseQueue),
}

type Result<T> = std::result::Result<T, DriverError>;

/// A driver with its own handle on a job's reservation, so no driver ever sees another's.
enum Held<'a> {
    Redis(&'a RedisQueue, &'a [u8]),
    /// The row id and the `reserved_at` that guards every statement on it.
    Database(&'a DatabaseQueue, (i64, i64)),
}

impl Queue {
    /// `redis` or `database`, as in `config/queue.php`.
    pub fn driver(&self) -> &'static str {
        match self {
            Queue::Redis(_) => "redis",
            Queue::Database(_) => "database",
        }
    }

    /// This connection's driver with `job`'s reservation; an error when another driver reserved it.
    fn held<'a>(&'a self, job: &'a ReservedJob) -> Result<Held<'a>> {
        match (self, &job.reservation) {
            (Queue::Redis(q), Reservation::Redis(member)) => Ok(Held::Redis(q, member)),
            (Queue::Database(q), Reservation::Database { id, reserved_at }) => Ok(Held::Database(
                q,
                (*id, reserved_at.load(Ordering::Acquire)),
            )),
            (_, reservation) => Err(DriverError::WrongDriver {
                driver: self.driver(),
                reservation: reservation.driver(),
            }),
        }
    }

    /// Moves due delayed and expired reserved jobs back to ready (Redis); the database driver's pop
    /// takes them directly, so nothing to do there.
    pub async fn migrate(&self, queue: &str, limit: i64) -> Result<u64> {
        match self {
            Queue::Redis(q) => Ok(q.migrate(queue, limit).await?),
            Queue::Database(_) => Ok(0),
        }
    }

    /// Reserves up to `max` jobs of `queue` (oldest first) for `retry_after` seconds.
    pub async fn pop(&self, queue: &str, retry_after: u64, max: usize) -> Result<Vec<ReservedJob>> {
        match self {
            Queue::Redis(q) => Ok(q
                .pop(queue, retry_after, max)
                .await?
                .into_iter()
                .map(ReservedJob::from)
                .collect()),
            Queue::Database(q) => Ok(q
                .pop(queue, retry_after, max)
                .await?
                .into_iter()
                .map(|row| ReservedJob::from_row(queue, row, retry_after))
                .collect()),
        }
    }

    /// Deletes a finished or failed job. False when it was no longer reserved by us.
    pub async fn delete_reserved(&self, job: &ReservedJob) -> Result<bool> {
        match self.held(job)? {
            Held::Redis(q, member) => Ok(q.delete_reserved(&job.queue, member).await?),
            Held::Database(q, (id, reserved_at)) => Ok(q.delete_reserved(id, reserved_at).await?),
        }
    }

    /// Puts a job back, due in `delay_secs`, keeping its attempts.
    pub async fn release(&self, job: &ReservedJob, delay_secs: u64) -> Result<bool> {
        match self.held(job)? {
            Held::Redis(q, member) => Ok(q.release(&job.queue, member, delay_secs).await?),
            Held::Database(q, row) => Ok(q
                .replace(
                    row,
                    &job.queue,
                    &job.original,
                    job.attempts.unwrap_or(0),
                    delay_secs,
                )
                .await?),
        }
    }

    /// Puts a job back on its own queue exactly as it was before this reservation, due in
    /// `delay_secs`: it has not used an attempt (an action that did nothing for it, e.g. a WhatsApp
    /// sender whose circuit breaker is open). Atomic as [`Queue::release`].
    pub async fn hand_back(&self, job: &ReservedJob, delay_secs: u64) -> Result<bool> {
        match self.held(job)? {
            Held::Redis(q, member) => Ok(q
                .hand_back(&job.queue, member, &job.original, delay_secs)
                .await?),
            Held::Database(q, id) => Ok(q
                .replace(
                    id,
                    &job.queue,
                    &job.original,
                    (job.attempts.unwrap_or(1) - 1).max(0),
                    delay_secs,
                )
                .await?),
        }
    }

    /// Moves a job, unchanged and without consuming an attempt, to `to_queue` for other workers.
    pub async fn handoff(&self, job: &ReservedJob, to_queue: &str) -> Result<bool> {
        match self.held(job)? {
            Held::Redis(q, member) => Ok(q
                .handoff(&job.queue, member, to_queue, &job.original)
                .await?),
            Held::Database(q, row) => Ok(q
                .replace(
                    row,
                    to_queue,
                    &job.original,
                    (job.attempts.unwrap_or(1) - 1).max(0),
                    0,
                )
                .await?),
        }
    }

    /// Keeps a job reserved until `until` (UNIX seconds; `retry_after` from now, as a pop would):
    /// a running job's lease, or a failed job waiting for failed_jobs. One round trip. False when
    /// the reservation was lost: it ran out and another worker took the job back, so the job is
    /// no longer ours to delete or release. On the database the row's new `reserved_at` is kept
    /// in `job`, so the next statement on the row is guarded by it.
    pub async fn extend_reservation(
        &self,
        job: &ReservedJob,
        until: i64,
        retry_after: u64,
    ) -> Result<bool> {
        match self.held(job)? {
            Held::Redis(q, member) => Ok(q.extend_reservation(&job.queue, member, until).await?),
            Held::Database(q, row) => {
                let new = q.extend_reservation(row, until, retry_after).await?;
                if let (Some(new), Reservation::Database { reserved_at, .. }) =
                    (new, &job.reservation)
                {
                    reserved_at.store(new, Ordering::Release);
                }
                Ok(new.is_some())
            }
        }
    }

    /// When the next delayed job becomes due or the next reservation expires.
    pub async fn next_due(&self, queue: &str, retry_after: u64) -> Result<Option<i64>> {
        match self {
            Queue::Redis(q) => Ok(q.next_due(queue).await?),
            Queue::Database(q) => Ok(q.next_due(queue, retry_after).await?),
        }
    }

    /// Waits up to `timeout` for a push on any of `queues` (Redis's notify lists); the database has
    /// no such signal, so its workers look again after `timeout`, as `queue:work --sleep` does.
    pub async fn block_for_notify(
        &self,
        queues: &[String],
        timeout: Duration,
    ) -> Result<Option<String>> {
        match self {
            Queue::Redis(q) => Ok(q.block_for_notify(queues, timeout).await?),
            Queue::Database(_) => {
                tokio::time::sleep(timeout).await;
                Ok(None)
            }
        }
    }

    /// Pushes a payload as is (`pushRaw`), due in `delay_secs`.
    pub async fn push_raw(&self, queue: &str, payload: &[u8], delay_secs: u64) -> Result<()> {
        match self {
            Queue::Redis(q) if delay_secs == 0 => Ok(q.push_raw(queue, payload).await?),
            Queue::Redis(q) => Ok(q
                .later_raw(queue, payload, unix_now() + delay_secs as i64)
                .await?),
            Queue::Database(q) => Ok(q.push_raw(queue, payload, delay_secs).await?),
        }
    }

    /// Ready, delayed and reserved jobs of `queue`.
    pub async fn stats(&self, queue: &str) -> Result<QueueStats> {
        match self {
            Queue::Redis(q) => Ok(q.stats(queue).await?),
            Queue::Database(q) => Ok(q.stats(queue).await?),
        }
    }

    /// Ready + delayed + reserved, like Laravel's `size`.
    pub async fn size(&self, queue: &str) -> Result<u64> {
        match self {
            Queue::Redis(q) => Ok(q.size(queue).await?),
            Queue::Database(q) => Ok(q.stats(queue).await?.size()),
        }
    }

    /// Deletes every job of `queue`; returns how many there were.
    pub async fn clear(&self, queue: &str) -> Result<u64> {
        match self {
            Queue::Redis(q) => Ok(q.clear(queue).await?),
            Queue::Database(q) => Ok(q.clear(queue).await?),
        }
    }

    /// Ok when the store answers.
    pub async fn ping(&self) -> Result<()> {
        match self {
            Queue::Redis(q) => Ok(q.ping().await?),
            Queue::Database(q) => Ok(q.ping().await?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(reservation: Reservation) -> ReservedJob {
        ReservedJob {
            queue: "q".into(),
            original: b"{\"phone\":\"+22500000000\"}".to_vec(),
            reservation,
            invalid: None,
            attempts: None,
            reserved_until: 0,
        }
    }

    #[test]
    fn debug_hides_payloads() {
        let redis = job(Reservation::Redis(b"{\"phone\":\"+22500000000\"}".to_vec()));
        let shown = format!("{redis:?}");
        assert!(!shown.contains("2250"), "{shown}");
        assert!(shown.contains("member_len: 24"), "{shown}");
        assert!(format!("{:?}", job(Reservation::database(42, 7)))
            .contains("Database { id: 42, reserved_at: 7 }"));
        let stats = QueueStats {
            head: Some(b"{\"phone\":\"+22500000000\"}".to_vec()),
            ..QueueStats::default()
        };
        assert!(!format!("{stats:?}").contains("2250"));
    }

    #[test]
    fn a_wrong_driver_error_is_never_retried() {
        let err = DriverError::WrongDriver {
            driver: "redis",
            reservation: "database",
        };
        assert!(!err.is_connection());
        assert!(err
            .to_string()
            .contains("reserved on the database queue driver"));
    }

    #[tokio::test]
    async fn a_reservation_never_reaches_the_other_driver() {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .connect("sqlite::memory:")
            .await
            .expect("in-memory SQLite");
        let db = crate::laravel::database::Db::Sqlite(pool);
        let queue = Queue::Database(DatabaseQueue::new(db, "jobs", 90).await.expect("queue"));
        // No `jobs` table: had the call reached the database, it would fail with a SQL error.
        let redis_job = job(Reservation::Redis(b"{}".to_vec()));
        for result in [
            queue.delete_reserved(&redis_job).await,
            queue.release(&redis_job, 5).await,
            queue.handoff(&redis_job, "other").await,
            queue.extend_reservation(&redis_job, 0, 90).await,
        ] {
            let err = result.expect_err("refused");
            assert!(
                matches!(
                    err,
                    DriverError::WrongDriver {
                        driver: "database",
                        reservation: "redis"
                    }
                ),
                "{err:?}"
            );
        }
    }

    #[test]
    fn a_database_reservation_is_its_row_and_current_reserved_at() {
        let r = Reservation::database(7, 100);
        assert_eq!(r.row(), Some((7, 100)));
        let copy = r.clone();
        assert_eq!(copy, r);
        if let Reservation::Database { reserved_at, .. } = &r {
            reserved_at.store(130, Ordering::Release);
        }
        assert_eq!(r.row(), Some((7, 130)));
        assert_ne!(copy, r, "a clone keeps the value it was made with");
        assert_eq!(Reservation::Redis(b"{}".to_vec()).row(), None);
        assert_ne!(Reservation::Redis(Vec::new()), Reservation::database(0, 0));
    }

    #[test]
    fn reservations_name_their_driver() {
        assert_eq!(Reservation::Redis(Vec::new()).driver(), "redis");
        assert_eq!(Reservation::database(1, 0).driver(), "database");
    }
}
