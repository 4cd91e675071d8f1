//! One queue connection, whatever its driver: Laravel's `redis` (lists and sorted sets, [`RedisQueue`])
//! or `database` (the `jobs` table, [`DatabaseQueue`]). The worker and the operator commands talk to
//! this and never to a driver, so both drivers share the same rules, failed_jobs and commands.
//!
//! A reserved job is a [`Popped`]; settling it (delete, release, hand-off) takes the `Popped` back,
//! because each driver identifies a reservation differently (the exact `:reserved` member on Redis,
//! the row id on the database).

use std::time::Duration;

use super::database_queue::{DatabaseQueue, DbQueueError};
use super::redis_queue::{Popped, QueueError, QueueStats, RedisQueue};

/// A driver's error, with whether to back off and retry.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Redis(#[from] QueueError),
    #[error(transparent)]
    Database(#[from] DbQueueError),
}

impl DriverError {
    /// True when the connection (not the request) failed: back off and try again.
    pub fn is_connection(&self) -> bool {
        match self {
            DriverError::Redis(e) => e.is_connection(),
            DriverError::Database(e) => e.is_connection(),
        }
    }
}

/// A queue connection. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Queue {
    Redis(RedisQueue),
    Database(DatabaseQueue),
}

type Result<T> = std::result::Result<T, DriverError>;

impl Queue {
    /// `redis` or `database`, as in `config/queue.php`.
    pub fn driver(&self) -> &'static str {
        match self {
            Queue::Redis(_) => "redis",
            Queue::Database(_) => "database",
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
    pub async fn pop(&self, queue: &str, retry_after: u64, max: usize) -> Result<Vec<Popped>> {
        match self {
            Queue::Redis(q) => Ok(q.pop(queue, retry_after, max).await?),
            Queue::Database(q) => Ok(q
                .pop(queue, retry_after, max)
                .await?
                .into_iter()
                .map(|r| Popped {
                    queue: queue.to_owned(),
                    reserved: r.id.to_string().into_bytes(),
                    original: r.payload,
                    invalid: None,
                    attempts: Some(r.attempts),
                })
                .collect()),
        }
    }

    /// Deletes a finished or failed job. False when it was no longer reserved by us.
    pub async fn delete_reserved(&self, job: &Popped) -> Result<bool> {
        match self {
            Queue::Redis(q) => Ok(q.delete_reserved(&job.queue, &job.reserved).await?),
            Queue::Database(q) => Ok(q.delete_reserved(row_id(job)).await?),
        }
    }

    /// Puts a job back, due in `delay_secs`, keeping its attempts.
    pub async fn release(&self, job: &Popped, delay_secs: u64) -> Result<bool> {
        match self {
            Queue::Redis(q) => Ok(q.release(&job.queue, &job.reserved, delay_secs).await?),
            Queue::Database(q) => Ok(q
                .replace(
                    row_id(job),
                    &job.queue,
                    &job.original,
                    job.attempts.unwrap_or(0),
                    delay_secs,
                )
                .await?),
        }
    }

    /// Moves a job, unchanged and without consuming an attempt, to `to_queue` for other workers.
    pub async fn handoff(&self, job: &Popped, to_queue: &str) -> Result<bool> {
        match self {
            Queue::Redis(q) => Ok(q
                .handoff(&job.queue, &job.reserved, to_queue, &job.original)
                .await?),
            Queue::Database(q) => Ok(q
                .replace(
                    row_id(job),
                    to_queue,
                    &job.original,
                    (job.attempts.unwrap_or(1) - 1).max(0),
                    0,
                )
                .await?),
        }
    }

    /// Keeps a job reserved until `until` (UNIX seconds).
    pub async fn extend_reservation(
        &self,
        job: &Popped,
        until: i64,
        retry_after: u64,
    ) -> Result<bool> {
        match self {
            Queue::Redis(q) => Ok(q
                .extend_reservation(&job.queue, &job.reserved, until)
                .await?),
            Queue::Database(q) => Ok(q
                .extend_reservation(row_id(job), until, retry_after)
                .await?),
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
            Queue::Redis(q) => Ok(q.later_raw(queue, payload, delay_secs as i64).await?),
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

/// The row id a database reservation carries in [`Popped::reserved`].
fn row_id(job: &Popped) -> i64 {
    std::str::from_utf8(&job.reserved)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(-1)
}
