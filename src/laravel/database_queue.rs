//! Laravel's `database` queue driver: the `jobs` table (id, queue, payload, attempts, reserved_at,
//! available_at, created_at), read and written the way `DatabaseQueue` does on MySQL/MariaDB,
//! PostgreSQL and SQLite, so PHP workers and ours can work the same table.
//!
//! - pop: in one transaction, the lowest id of the queue that is available (`reserved_at IS NULL AND
//!   available_at <= now`) or whose reservation expired (`reserved_at <= now - retry_after`), locked
//!   with `FOR UPDATE SKIP LOCKED` where the server has it (MySQL ≥ 8.0.1, MariaDB ≥ 10.6, PostgreSQL
//!   ≥ 9.5; plain `FOR UPDATE` otherwise, nothing on SQLite, whose write lock serialises), then
//!   `reserved_at = now, attempts = attempts + 1`. The update also checks the attempts it read, so a
//!   row taken by someone else in between (SQLite, or a server without SKIP LOCKED) is skipped,
//!   never run twice.
//! - delete: by id and our `reserved_at`. release: that delete and an insert of the same payload with
//!   the attempts so far and `available_at = now + delay`, in one transaction; unlike Laravel nothing is
//!   inserted when the row was already gone, so a release never duplicates a job.
//! - extend (a lease): `reserved_at = now` by id and our `reserved_at`. Laravel deletes by id alone,
//!   but on this driver a reservation that ran out is taken back *in the same row* (same id, new
//!   `reserved_at`, attempts + 1), so only the `reserved_at` we wrote tells our reservation from the
//!   next worker's: every statement on a reserved row is guarded by it, and one that matches nothing
//!   means the row is someone else's now (docs/laravel-queue.md §15).
//!
//! This module only stores jobs. It must not decide what happens to a job nor parse payloads; the
//! payload has no `id` or `attempts` on this driver (the row carries them).

use sqlx::Row;

use super::database::{on_pool, Db, DbKind};
use super::database_sql::{has_skip_locked, Sql};
use super::queue::QueueStats;
use super::sql_error;
use crate::util::clock::unix_now;

/// The table `php artisan queue:table` creates.
pub const DEFAULT_TABLE: &str = "jobs";
/// Times pop looks again when the row it picked was taken by another worker in between.
const POP_RACES: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum DbQueueError {
    /// The database refused or could not be reached.
    #[error("jobs table {table}: {op} failed: {source}")]
    Database {
        table: String,
        op: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

impl DbQueueError {
    /// True when the same statement may succeed later: the connection or pool failed, or the server
    /// answered a deadlock, a lock wait or statement timeout, a serialization failure, a shutdown
    /// (see [`sql_error`]). False for a syntax error, a missing table, a value that does not decode.
    pub fn is_retryable(&self) -> bool {
        let DbQueueError::Database { source, .. } = self;
        sql_error::is_transient(source)
    }

    /// True when the connection (not the statement) failed.
    pub fn is_connection(&self) -> bool {
        let DbQueueError::Database { source, .. } = self;
        matches!(
            source,
            sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::WorkerCrashed
        )
    }
}

/// A reserved row, as Laravel's `DatabaseJobRecord`: what [`DatabaseQueue::pop`] returns. The worker
/// sees it as a [`ReservedJob`](super::queue::ReservedJob).
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseJobRecord {
    pub id: i64,
    /// The `reserved_at` this reservation wrote (UNIX seconds).
    pub reserved_at: i64,
    /// Attempts after this reservation (Laravel's `DatabaseJobRecord::increment`).
    pub attempts: i64,
    pub payload: Vec<u8>,
}

/// The `jobs` table of one database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DatabaseQueue {
    db: Db,
    table: String,
    /// The connection's `retry_after`, for [`DatabaseQueue::stats`] (pop takes its own).
    retry_after: u64,
    sql: std::sync::Arc<Sql>,
}

impl DatabaseQueue {
    /// Uses `table` on `db`; asks the server once whether it has `SKIP LOCKED`. `retry_after` is the
    /// connection's, used to report when reservations expire.
    pub async fn new(db: Db, table: &str, retry_after: u64) -> Result<DatabaseQueue, DbQueueError> {
        let lock = match db.kind() {
            DbKind::Sqlite => "",
            DbKind::MySql | DbKind::Postgres => {
                let version: String = on_pool!(&db, pool => sqlx::query_scalar("SELECT VERSION()")
                    .fetch_one(pool)
                    .await)
                .map_err(|source| DbQueueError::Database {
                    table: table.to_owned(),
                    op: "read the server version",
                    source,
                })?;
                if has_skip_locked(db.kind(), &version) {
                    " FOR UPDATE SKIP LOCKED"
                } else {
                    " FOR UPDATE"
                }
            }
        };
        Ok(DatabaseQueue {
            sql: std::sync::Arc::new(Sql::new(db.kind(), table, lock)),
            db,
            table: table.to_owned(),
            retry_after,
        })
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn error(&self, op: &'static str) -> impl FnOnce(sqlx::Error) -> DbQueueError + '_ {
        move |source| DbQueueError::Database {
            table: self.table.clone(),
            op,
            source,
        }
    }

    /// Reserves up to `max` jobs of `queue` in one transaction (see the module doc), oldest first.
    pub async fn pop(
        &self,
        queue: &str,
        retry_after: u64,
        max: usize,
    ) -> Result<Vec<DatabaseJobRecord>, DbQueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        for _ in 0..POP_RACES {
            let now = unix_now();
            let expired = now - retry_after as i64;
            let sql = &self.sql;
            let picked: Result<(usize, Vec<DatabaseJobRecord>), sqlx::Error> = on_pool!(&self.db, pool => {
                async {
                    let mut tx = pool.begin_with(sql.begin).await?;
                    let rows = sqlx::query(&sql.select_next)
                        .bind(queue)
                        .bind(now)
                        .bind(expired)
                        .bind(max as i64)
                        .fetch_all(&mut *tx)
                        .await?;
                    let mut got = Vec::with_capacity(rows.len());
                    for row in &rows {
                        let id: i64 = row.try_get("id")?;
                        let attempts: i64 = row.try_get("attempts")?;
                        let payload: String = row.try_get("payload")?;
                        let updated = sqlx::query(&sql.reserve)
                            .bind(now)
                            .bind(attempts + 1)
                            .bind(id)
                            .bind(attempts)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                        if updated == 1 {
                            got.push(DatabaseJobRecord {
                                id,
                                reserved_at: now,
                                attempts: attempts + 1,
                                payload: payload.into_bytes(),
                            });
                        }
                    }
                    tx.commit().await?;
                    Ok((rows.len(), got))
                }
                .await
            });
            let (seen, got) = picked.map_err(self.error("pop"))?;
            // Rows taken by another worker in between (no SKIP LOCKED here): look again.
            if seen == 0 || !got.is_empty() {
                return Ok(got);
            }
        }
        Ok(Vec::new())
    }

    /// Deletes a finished (or failed) job, like `deleteReserved`, if the row still holds our
    /// reservation (`reserved_at`). False when it was gone or reserved again by another worker.
    pub async fn delete_reserved(&self, id: i64, reserved_at: i64) -> Result<bool, DbQueueError> {
        let sql = &self.sql.delete;
        let n = on_pool!(&self.db, pool => sqlx::query(sql)
            .bind(id)
            .bind(reserved_at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(self.error("delete"))?;
        Ok(n == 1)
    }

    /// Deletes the row `id` reserved at `reserved_at` and inserts `payload` on `to_queue` with
    /// `attempts`, due in `delay_secs`, in one transaction (`deleteAndRelease`, or a hand-off to another
    /// queue). False, and nothing inserted, when the row was gone or reserved again by another worker.
    pub async fn replace(
        &self,
        (id, reserved_at): (i64, i64),
        to_queue: &str,
        payload: &[u8],
        attempts: i64,
        delay_secs: u64,
    ) -> Result<bool, DbQueueError> {
        let payload = String::from_utf8_lossy(payload);
        let now = unix_now();
        let sql = &self.sql;
        on_pool!(&self.db, pool => {
            async {
                let mut tx = pool.begin_with(sql.begin).await?;
                let gone = sqlx::query(&sql.delete)
                    .bind(id)
                    .bind(reserved_at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if gone != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                sqlx::query(&sql.insert)
                    .bind(to_queue)
                    .bind(payload.as_ref())
                    .bind(attempts)
                    .bind(now + delay_secs as i64)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }
            .await
        })
        .map_err(self.error("release"))
    }

    /// Inserts a new job (`pushToDatabase`): attempts 0, due in `delay_secs`.
    pub async fn push_raw(
        &self,
        queue: &str,
        payload: &[u8],
        delay_secs: u64,
    ) -> Result<(), DbQueueError> {
        let payload = String::from_utf8_lossy(payload);
        let now = unix_now();
        let sql = &self.sql.insert;
        on_pool!(&self.db, pool => sqlx::query(sql)
            .bind(queue)
            .bind(payload.as_ref())
            .bind(0_i64)
            .bind(now + delay_secs as i64)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(self.error("push"))?;
        Ok(())
    }

    /// Keeps the row `id` reserved until `until` (UNIX seconds) given `retry_after`, if it still
    /// holds our reservation (`reserved_at`): the lease of a running job, or a failed job waiting for
    /// failed_jobs. Returns the row's new `reserved_at`, which guards the next statement on it; None
    /// when the row was gone or reserved again by another worker.
    pub async fn extend_reservation(
        &self,
        (id, reserved_at): (i64, i64),
        until: i64,
        retry_after: u64,
    ) -> Result<Option<i64>, DbQueueError> {
        let sql = &self.sql.extend;
        let new = until.saturating_sub(i64::try_from(retry_after).unwrap_or(i64::MAX));
        // Never backwards: a late extension does not shorten the reservation.
        let new = new.max(reserved_at);
        // MySQL counts matched rows here (sqlx sets CLIENT_FOUND_ROWS), so an unchanged value is 1.
        let n = on_pool!(&self.db, pool => sqlx::query(sql)
            .bind(new)
            .bind(id)
            .bind(reserved_at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(self.error("extend the reservation"))?;
        Ok((n == 1).then_some(new))
    }

    /// When the next waiting job becomes due or the next reservation expires (UNIX seconds).
    pub async fn next_due(
        &self,
        queue: &str,
        retry_after: u64,
    ) -> Result<Option<i64>, DbQueueError> {
        let sql = &self.sql.next_due;
        let row = on_pool!(&self.db, pool => {
            async {
                let row = sqlx::query(sql).bind(queue).bind(queue).fetch_one(pool).await?;
                let available: Option<i64> = row.try_get("available")?;
                let reserved: Option<i64> = row.try_get("reserved")?;
                Ok::<_, sqlx::Error>((available, reserved))
            }
            .await
        })
        .map_err(self.error("next due"))?;
        let (available, reserved) = row;
        Ok([available, reserved.map(|r| r + retry_after as i64)]
            .into_iter()
            .flatten()
            .min())
    }

    /// Ready, delayed and reserved counts with the head, for `monitor` and `/metrics`.
    pub async fn stats(&self, queue: &str) -> Result<QueueStats, DbQueueError> {
        let now = unix_now();
        let retry_after = self.retry_after;
        let sql = &self.sql;
        on_pool!(&self.db, pool => {
            async {
                let row = sqlx::query(&sql.stats)
                    .bind(now)
                    .bind(now)
                    .bind(now)
                    .bind(queue)
                    .fetch_one(pool)
                    .await?;
                let head: Option<String> = sqlx::query_scalar(&sql.head)
                    .bind(queue)
                    .bind(now)
                    .fetch_optional(pool)
                    .await?;
                let count = |c: &str| -> Result<u64, sqlx::Error> {
                    Ok(row.try_get::<Option<i64>, _>(c)?.unwrap_or(0).max(0) as u64)
                };
                let reserved_min: Option<i64> = row.try_get("reserved_min")?;
                Ok::<_, sqlx::Error>(QueueStats {
                    ready: count("ready")?,
                    delayed: count("delayed_count")?,
                    reserved: count("reserved")?,
                    head: head.map(String::into_bytes),
                    next_delayed_at: row.try_get("delayed_min")?,
                    first_reservation_expires_at: reserved_min.map(|r| r + retry_after as i64),
                })
            }
            .await
        })
        .map_err(self.error("count jobs"))
    }

    /// Deletes every job of `queue`, like `clear`; returns how many.
    pub async fn clear(&self, queue: &str) -> Result<u64, DbQueueError> {
        let sql = &self.sql.clear;
        on_pool!(&self.db, pool => sqlx::query(sql)
            .bind(queue)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(self.error("clear"))
    }

    /// `SELECT 1`: Ok when the database answers.
    pub async fn ping(&self) -> Result<(), DbQueueError> {
        on_pool!(&self.db, pool => sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(self.error("ping"))?;
        Ok(())
    }
}

impl std::fmt::Debug for DatabaseJobRecord {
    // Payloads may hold personal data; show sizes only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseJobRecord")
            .field("id", &self.id)
            .field("reserved_at", &self.reserved_at)
            .field("attempts", &self.attempts)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `jobs` table as `php artisan queue:table` makes it, on one in-memory SQLite connection.
    async fn sqlite_queue() -> DatabaseQueue {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .expect("in-memory SQLite");
        sqlx::query(
            "CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, queue VARCHAR NOT NULL, \
             payload TEXT NOT NULL, attempts INTEGER NOT NULL, reserved_at INTEGER NULL, \
             available_at INTEGER NOT NULL, created_at INTEGER NOT NULL)",
        )
        .execute(&pool)
        .await
        .expect("create jobs");
        DatabaseQueue::new(Db::Sqlite(pool), "jobs", 2)
            .await
            .expect("queue")
    }

    /// The row `id` as (attempts, reserved_at), or None when it is gone.
    async fn row(q: &DatabaseQueue, id: i64) -> Option<(i64, Option<i64>)> {
        let Db::Sqlite(pool) = q.db() else {
            unreachable!()
        };
        sqlx::query_as("SELECT attempts, reserved_at FROM jobs WHERE id = ?")
            .bind(id)
            .fetch_optional(pool)
            .await
            .expect("select")
    }

    #[tokio::test]
    async fn an_extension_moves_reserved_at_and_guards_the_next_statement_with_it() {
        let q = sqlite_queue().await;
        q.push_raw("default", b"{}", 0).await.expect("push");
        let job = q.pop("default", 2, 1).await.expect("pop").remove(0);
        let popped_at = job.reserved_at;
        assert_eq!(row(&q, job.id).await, Some((1, Some(popped_at))));

        let later = popped_at + 5;
        let new = q
            .extend_reservation((job.id, popped_at), later + 2, 2)
            .await
            .expect("extend");
        assert_eq!(new, Some(later), "reserved_at = until - retry_after");
        assert_eq!(row(&q, job.id).await, Some((1, Some(later))));
        // Extending to the same second again still finds the row ours.
        assert_eq!(
            q.extend_reservation((job.id, later), later + 2, 2)
                .await
                .expect("extend"),
            Some(later)
        );
        // Never backwards.
        assert_eq!(
            q.extend_reservation((job.id, later), popped_at, 2)
                .await
                .expect("extend"),
            Some(later)
        );
        assert_eq!(row(&q, job.id).await, Some((1, Some(later))));

        // The old value no longer guards anything: not the delete, not a release.
        assert!(!q.delete_reserved(job.id, popped_at).await.expect("delete"));
        assert!(!q
            .replace((job.id, popped_at), "default", b"{}", 1, 0)
            .await
            .expect("release"));
        assert_eq!(row(&q, job.id).await, Some((1, Some(later))));
        assert!(q.delete_reserved(job.id, later).await.expect("delete"));
        assert_eq!(row(&q, job.id).await, None);
    }

    #[tokio::test]
    async fn a_row_another_worker_took_back_is_not_extended_deleted_or_released() {
        let q = sqlite_queue().await;
        q.push_raw("default", b"{}", 0).await.expect("push");
        let ours = q.pop("default", 2, 1).await.expect("pop").remove(0);
        // Our reservation ran out (retry_after 2): as Laravel's pop would, another worker reserves
        // the same row again, with its own reserved_at and attempts + 1.
        let Db::Sqlite(pool) = q.db() else {
            unreachable!()
        };
        sqlx::query("UPDATE jobs SET reserved_at = reserved_at - 3 WHERE id = ?")
            .bind(ours.id)
            .execute(pool)
            .await
            .expect("age the reservation");
        let theirs = q.pop("default", 2, 1).await.expect("pop").remove(0);
        assert_eq!((theirs.id, theirs.attempts), (ours.id, 2), "the same row");
        let taken = row(&q, ours.id).await;

        let guard = (ours.id, ours.reserved_at - 3);
        assert_eq!(
            q.extend_reservation(guard, unix_now() + 2, 2)
                .await
                .expect("extend"),
            None,
            "lost"
        );
        assert!(!q.delete_reserved(guard.0, guard.1).await.expect("delete"));
        assert!(!q
            .replace(guard, "default", b"{}", 1, 0)
            .await
            .expect("release"));
        assert_eq!(
            row(&q, ours.id).await,
            taken,
            "the other worker's row, untouched"
        );
        assert_eq!(
            q.stats("default").await.expect("stats").size(),
            1,
            "nothing inserted"
        );
    }
}
