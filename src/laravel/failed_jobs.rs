//! The `failed_jobs` table, read and written the way Laravel's `DatabaseUuidFailedJobProvider` does
//! (driver `database-uuids`), on MySQL/MariaDB, PostgreSQL and SQLite, so `php artisan queue:failed`,
//! `queue:retry` and `queue:forget` work on rows we write, and we read rows PHP wrote.
//!
//! This module only stores rows. It must not decide when a job fails, touch Redis, or parse the
//! payload beyond its `uuid`. Every dialect difference (placeholders, identifier quotes, the
//! `failed_at` cast, the schema) lives in `Queries::new`; the queries themselves are written once.
//!
//! `failed_at` is bound as `Y-m-d H:i:s` text in the app timezone, like Laravel's query grammar, and
//! read back as text, so no driver converts it on the way.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use chrono_tz::Tz;
use sqlx::Row;

use super::database::{on_pool, Db, DbKind};

/// How many `-dupN` uuids [`FailedJobs::log`] tries before the payload-hash uuid (`-h<sha256>`): a few
/// readable names for the usual case (a job re-dispatched by hand), then one query whatever the count.
const MAX_DUPLICATES: u32 = 3;
/// Longest payload uuid used as is; longer (or missing) ones get a fresh v4 uuid, because the
/// column is `varchar(255)` and `-dupN` must still fit.
const MAX_UUID_LEN: usize = 200;

/// The first 16 hex digits of the payload's SHA-256: a uuid suffix that is the same for the same payload.
fn payload_hash(payload: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(payload.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One failed job, with the columns Laravel writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedJob {
    pub uuid: String,
    /// The queue connection name, e.g. `redis`.
    pub connection: String,
    /// The unprefixed queue name, e.g. `default`.
    pub queue: String,
    /// The original payload, byte for byte as it was on the ready list.
    pub payload: String,
    /// PHP's `(string) $exception`.
    pub exception: String,
    /// `Y-m-d H:i:s` in the app timezone.
    pub failed_at: String,
}

/// A stored row: the job plus its auto-increment id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedJobRow {
    pub id: i64,
    pub job: FailedJob,
}

/// What [`FailedJobs::log`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// A new row under the payload's uuid (or a generated one when the payload has none).
    Inserted(String),
    /// A row with this uuid and the same payload exists: the same failure recorded twice.
    AlreadyThere,
    /// The uuid was taken by a row with another payload; stored under this `<uuid>-dupN` (or, past a few,
    /// `<uuid>-h<first 16 hex digits of the payload's SHA-256>`) instead.
    AsDuplicate(String),
}

#[derive(Debug, thiserror::Error)]
pub enum FailedJobsError {
    /// The database refused or could not be reached; the caller keeps the job and retries.
    #[error("failed_jobs table {table}: {op} failed: {error}")]
    Database {
        table: String,
        op: &'static str,
        error: sqlx::Error,
    },
    #[error(
        "failed_jobs table {table}: uuid {uuid}, {uuid}-dup1..-dup{max} and its payload-hash uuid all hold other payloads"
    )]
    TooManyDuplicates {
        table: String,
        uuid: String,
        max: u32,
    },
}

/// Laravel's failed job provider on one table. Cheap to clone.
#[derive(Clone, Debug)]
pub struct FailedJobs {
    db: Db,
    table: String,
    timezone: Tz,
    sql: Arc<Queries>,
}

impl FailedJobs {
    /// `timezone` is the app's `app.timezone` (RestroSaaS: UTC); `failed_at` is written in it.
    pub fn new(db: Db, table: &str, timezone: Tz) -> Self {
        let sql = Arc::new(Queries::new(db.kind(), table));
        FailedJobs {
            db,
            table: table.to_owned(),
            timezone,
            sql,
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The app timezone `failed_at` is written in.
    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// Creates the table with the schema Laravel's `failed_jobs` migration creates on this
    /// database, unless it exists.
    pub async fn ensure_table(&self) -> Result<(), FailedJobsError> {
        for ddl in &self.sql.create {
            self.execute("create table", ddl, &[]).await?;
        }
        Ok(())
    }

    /// Inserts one row, `failed_at` = now in the app timezone. The uuid is the payload's `uuid`.
    /// If that uuid is taken by a row with the same payload, nothing is written
    /// ([`Recorded::AlreadyThere`]); if by another payload, the row goes in as `<uuid>-dupN` (first
    /// free N, then the payload-hash uuid) so neither failure is lost. Any other database error is returned.
    pub async fn log(
        &self,
        connection: &str,
        queue: &str,
        payload: &str,
        exception: &str,
    ) -> Result<Recorded, FailedJobsError> {
        let uuid = uuid_of(payload);
        let failed_at = self.now(TimeDelta::zero()).unwrap_or_default();
        let mut n = 0;
        let mut vanished = 0;
        while n <= MAX_DUPLICATES + 1 {
            let candidate = match n {
                0 => uuid.clone(),
                n if n <= MAX_DUPLICATES => format!("{uuid}-dup{n}"),
                _ => format!("{uuid}-h{}", payload_hash(payload)),
            };
            let args = [
                candidate.as_str(),
                connection,
                queue,
                payload,
                exception,
                &failed_at,
            ];
            match self.execute("insert", &self.sql.insert, &args).await {
                Ok(_) if n == 0 => return Ok(Recorded::Inserted(candidate)),
                Ok(_) => {
                    tracing::warn!(uuid = %uuid, stored_as = %candidate, "failed_jobs already has this uuid with another payload");
                    return Ok(Recorded::AsDuplicate(candidate));
                }
                Err(FailedJobsError::Database { error, .. }) if is_unique_violation(&error) => {
                    match self.find(&candidate).await? {
                        Some(row) if row.job.payload == payload => {
                            return Ok(Recorded::AlreadyThere)
                        }
                        Some(_) => n += 1,
                        // Deleted between our insert and our look (queue:forget): try it again.
                        None if vanished < 3 => vanished += 1,
                        None => n += 1,
                    }
                }
                Err(err) => return Err(err),
            }
        }
        Err(FailedJobsError::TooManyDuplicates {
            table: self.table.clone(),
            uuid,
            max: MAX_DUPLICATES,
        })
    }

    /// Every row, newest id first (like `queue:failed`).
    pub async fn all(&self) -> Result<Vec<FailedJobRow>, FailedJobsError> {
        self.fetch("select", &self.sql.all, &[]).await
    }

    /// The row with this uuid.
    pub async fn find(&self, uuid: &str) -> Result<Option<FailedJobRow>, FailedJobsError> {
        Ok(self
            .fetch("select", &self.sql.find, &[uuid])
            .await?
            .into_iter()
            .next())
    }

    /// Deletes the row with this uuid (`queue:forget`); false when there was none.
    pub async fn forget(&self, uuid: &str) -> Result<bool, FailedJobsError> {
        Ok(self.execute("delete", &self.sql.forget, &[uuid]).await? > 0)
    }

    /// Deletes every row, or with `Some(hours)` those with `failed_at` at least that many hours ago
    /// (`queue:flush --hours`; 0 means all, as in Laravel). Returns the number of rows deleted.
    pub async fn flush(&self, older_than_hours: Option<u64>) -> Result<u64, FailedJobsError> {
        match older_than_hours.filter(|h| *h > 0) {
            None => self.execute("delete", &self.sql.flush_all, &[]).await,
            Some(hours) => {
                let cutoff = i64::try_from(hours)
                    .ok()
                    .and_then(TimeDelta::try_hours)
                    .and_then(|d| self.now(d));
                match cutoff {
                    Some(cutoff) => {
                        self.execute("delete", &self.sql.flush_before, &[&cutoff])
                            .await
                    }
                    // Before the start of chrono's calendar: nothing is that old.
                    None => Ok(0),
                }
            }
        }
    }

    pub async fn count(&self) -> Result<u64, FailedJobsError> {
        let n: i64 = on_pool!(&self.db, pool => {
            sqlx::query(&self.sql.count).fetch_one(pool).await.and_then(|row| row.try_get(0))
        })
        .map_err(|error| self.error("count", error))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// `now - ago` in the app timezone as `Y-m-d H:i:s`; `None` if out of range.
    fn now(&self, ago: TimeDelta) -> Option<String> {
        let at = Utc::now().checked_sub_signed(ago)?;
        Some(
            at.with_timezone(&self.timezone)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
        )
    }

    fn error(&self, op: &'static str, error: sqlx::Error) -> FailedJobsError {
        FailedJobsError::Database {
            table: self.table.clone(),
            op,
            error,
        }
    }

    async fn execute(
        &self,
        op: &'static str,
        sql: &str,
        args: &[&str],
    ) -> Result<u64, FailedJobsError> {
        on_pool!(&self.db, pool => {
            let mut query = sqlx::query(sql);
            for arg in args {
                query = query.bind(*arg);
            }
            query.execute(pool).await.map(|done| done.rows_affected())
        })
        .map_err(|error| self.error(op, error))
    }

    async fn fetch(
        &self,
        op: &'static str,
        sql: &str,
        args: &[&str],
    ) -> Result<Vec<FailedJobRow>, FailedJobsError> {
        on_pool!(&self.db, pool => {
            let mut query = sqlx::query(sql);
            for arg in args {
                query = query.bind(*arg);
            }
            match query.fetch_all(pool).await {
                Ok(rows) => rows
                    .iter()
                    .map(|r| {
                        Ok(FailedJobRow {
                            id: r.try_get(0)?,
                            job: FailedJob {
                                uuid: r.try_get(1)?,
                                connection: r.try_get(2)?,
                                queue: r.try_get(3)?,
                                payload: r.try_get(4)?,
                                exception: r.try_get(5)?,
                                failed_at: r.try_get::<Option<String>, _>(6)?.unwrap_or_default(),
                            },
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>(),
                Err(e) => Err(e),
            }
        })
        .map_err(|error| self.error(op, error))
    }
}

/// The SQL for one table on one database. Written once with `"ident"` quotes and `?` placeholders,
/// then adapted: MySQL quotes with backticks, PostgreSQL numbers its placeholders.
#[derive(Debug)]
struct Queries {
    create: Vec<String>,
    insert: String,
    all: String,
    find: String,
    forget: String,
    flush_all: String,
    flush_before: String,
    count: String,
}

impl Queries {
    fn new(kind: DbKind, table: &str) -> Queries {
        let (quote, id, failed_at, timestamp_param) = match kind {
            DbKind::MySql => (
                '`',
                "CAST(`id` AS SIGNED)",
                "CAST(`failed_at` AS CHAR)",
                "?",
            ),
            DbKind::Postgres => (
                '"',
                "\"id\"",
                "to_char(\"failed_at\", 'YYYY-MM-DD HH24:MI:SS')",
                "CAST(? AS TIMESTAMP)",
            ),
            DbKind::Sqlite => ('"', "\"id\"", "CAST(\"failed_at\" AS TEXT)", "?"),
        };
        let ident = |name: &str| {
            let q = quote.to_string();
            format!("{q}{}{q}", name.replace(quote, &format!("{q}{q}")))
        };
        let t = ident(table);
        let unique = ident(&format!("{table}_uuid_unique"));
        // Placeholders and quotes of the generic text → this dialect. Table names are added after,
        // so a quote inside one is not touched.
        let adapt = |generic: &str| {
            let mut out = String::with_capacity(generic.len() + 16);
            let mut n = 0;
            for c in generic.chars() {
                match c {
                    '?' if kind == DbKind::Postgres => {
                        n += 1;
                        out.push_str(&format!("${n}"));
                    }
                    '"' => out.push(quote),
                    _ => out.push(c),
                }
            }
            out.replace("{table}", &t)
        };
        let select = format!(
            "SELECT {id}, \"uuid\", \"connection\", \"queue\", \"payload\", \"exception\", {failed_at} FROM {{table}}"
        );
        // The schema of Laravel's failed_jobs migration, as each of its schema grammars emits it.
        let create = match kind {
            DbKind::MySql => vec![format!(
                "CREATE TABLE IF NOT EXISTS {t} (`id` bigint unsigned not null auto_increment primary key, \
                 `uuid` varchar(255) not null, `connection` text not null, `queue` text not null, \
                 `payload` longtext not null, `exception` longtext not null, \
                 `failed_at` timestamp default CURRENT_TIMESTAMP not null, unique {unique}(`uuid`)) \
                 default character set utf8mb4 collate 'utf8mb4_unicode_ci'"
            )],
            DbKind::Postgres => vec![format!(
                "CREATE TABLE IF NOT EXISTS {t} (\"id\" bigserial primary key not null, \
                 \"uuid\" varchar(255) not null, \"connection\" text not null, \"queue\" text not null, \
                 \"payload\" text not null, \"exception\" text not null, \
                 \"failed_at\" timestamp(0) without time zone default CURRENT_TIMESTAMP not null, \
                 constraint {unique} unique (\"uuid\"))"
            )],
            DbKind::Sqlite => vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {t} (\"id\" integer not null primary key autoincrement, \
                     \"uuid\" varchar not null, \"connection\" text not null, \"queue\" text not null, \
                     \"payload\" text not null, \"exception\" text not null, \
                     \"failed_at\" datetime default CURRENT_TIMESTAMP not null)"
                ),
                format!("CREATE UNIQUE INDEX IF NOT EXISTS {unique} ON {t} (\"uuid\")"),
            ],
        };
        Queries {
            create,
            insert: adapt(&format!(
                "INSERT INTO {{table}} (\"uuid\", \"connection\", \"queue\", \"payload\", \"exception\", \"failed_at\") \
                 VALUES (?, ?, ?, ?, ?, {timestamp_param})"
            )),
            all: adapt(&format!("{select} ORDER BY \"id\" DESC")),
            find: adapt(&format!("{select} WHERE \"uuid\" = ?")),
            forget: adapt("DELETE FROM {table} WHERE \"uuid\" = ?"),
            flush_all: adapt("DELETE FROM {table}"),
            flush_before: adapt(&format!("DELETE FROM {{table}} WHERE \"failed_at\" <= {timestamp_param}")),
            count: adapt("SELECT COUNT(*) FROM {table}"),
        }
    }
}

/// The payload's `uuid` (what Laravel stores), or a fresh one when it has none we can use.
fn uuid_of(payload: &str) -> String {
    serde_json::from_str::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v.get("uuid")?.as_str().map(str::to_owned))
        .filter(|u| !u.is_empty() && u.len() <= MAX_UUID_LEN)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_numbers_placeholders_and_casts_the_timestamp() {
        let q = Queries::new(DbKind::Postgres, "failed_jobs");
        assert_eq!(
            q.insert,
            "INSERT INTO \"failed_jobs\" (\"uuid\", \"connection\", \"queue\", \"payload\", \"exception\", \"failed_at\") \
             VALUES ($1, $2, $3, $4, $5, CAST($6 AS TIMESTAMP))"
        );
        assert_eq!(q.forget, "DELETE FROM \"failed_jobs\" WHERE \"uuid\" = $1");
    }

    #[test]
    fn mysql_uses_backticks_and_question_marks() {
        let q = Queries::new(DbKind::MySql, "failed_jobs");
        assert_eq!(q.forget, "DELETE FROM `failed_jobs` WHERE `uuid` = ?");
        assert!(
            q.all.starts_with("SELECT CAST(`id` AS SIGNED), `uuid`,"),
            "{}",
            q.all
        );
        assert!(
            q.all.ends_with("FROM `failed_jobs` ORDER BY `id` DESC"),
            "{}",
            q.all
        );
    }

    #[test]
    fn table_names_are_quoted_safely() {
        let q = Queries::new(DbKind::Sqlite, "odd\"name");
        assert_eq!(q.flush_all, "DELETE FROM \"odd\"\"name\"");
        let m = Queries::new(DbKind::MySql, "odd`name");
        assert_eq!(m.flush_all, "DELETE FROM `odd``name`");
    }

    #[test]
    fn uuid_comes_from_the_payload_or_is_generated() {
        assert_eq!(uuid_of(r#"{"uuid":"1c7f-ab","job":"x"}"#), "1c7f-ab");
        let generated = uuid_of("not json at all");
        assert_eq!(generated.len(), 36);
        assert_ne!(generated, uuid_of("not json at all"));
        assert_eq!(uuid_of(r#"{"uuid":""}"#).len(), 36);
        assert_eq!(
            uuid_of(&format!(r#"{{"uuid":"{}"}}"#, "a".repeat(300))).len(),
            36
        );
    }
}
