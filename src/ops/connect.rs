//! Opening the stores every subcommand needs, from the command's [`Settings`], with errors that name the
//! setting to fix. One place, so `work`, `failed`, `monitor`… connect the same way.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::startup;

use crate::config::{self, Settings};
use crate::laravel::connection::{self, Connection, Driver};
use crate::laravel::database::{Db, DbConfig};
use crate::laravel::database_queue::DatabaseQueue;
use crate::laravel::encrypter::Encrypter;
use crate::laravel::failed_jobs::FailedJobs;
use crate::laravel::queue::Queue;
use crate::laravel::redis_config::RedisConfig;
use crate::laravel::redis_queue::RedisQueue;

/// The embedded failed_jobs database used when the app's database is not configured.
pub const DEFAULT_FAILED_DB: &str = "defer-worker-failed-jobs.sqlite";

/// The queue's Redis settings (REDIS_*, key prefix).
pub fn redis_config(settings: &Settings) -> anyhow::Result<RedisConfig> {
    RedisConfig::from_env(&settings.lookup()).context("invalid Redis settings")
}

/// The queue connection (REDIS_* settings, key prefix).
pub async fn redis_queue(settings: &Settings) -> anyhow::Result<(RedisConfig, RedisQueue)> {
    let cfg = redis_config(settings)?;
    let queue = RedisQueue::connect(&cfg)
        .await
        .with_context(|| format!("cannot connect to Redis at {cfg}"))?;
    Ok((cfg, queue))
}

/// The connection a worker-side command uses: its `--connection`, else `[worker] connection` in the
/// config file, else the app's default ([`connection`]).
pub fn worker_connection(settings: &Settings, flag: Option<&str>) -> anyhow::Result<Connection> {
    connection(
        settings,
        flag.or(settings.file().worker.connection.as_deref()),
    )
}

/// A `--queue` list: names separated by commas, blanks around them and empty names dropped; refused
/// when nothing is left.
pub fn queue_list(list: &str) -> anyhow::Result<Vec<String>> {
    let queues: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(String::from)
        .collect();
    anyhow::ensure!(
        !queues.is_empty(),
        "--queue is empty: give at least one queue name"
    );
    Ok(queues)
}

/// The queue connection `name` (default: QUEUE_CONNECTION, else `redis`), as `config/queue.php`
/// declares it.
pub fn connection(settings: &Settings, name: Option<&str>) -> anyhow::Result<Connection> {
    let lookup = settings.lookup();
    let name = name
        .map(str::to_owned)
        .unwrap_or_else(|| connection::default_name(&lookup));
    Ok(connection::resolve(&name, &lookup)?)
}

/// Opens `conn`'s store; returns a description for logs (passwords masked) and the queue.
pub async fn queue(settings: &Settings, conn: &Connection) -> anyhow::Result<(String, Queue)> {
    match &conn.driver {
        Driver::Redis => {
            let (cfg, queue) = redis_queue(settings).await?;
            Ok((cfg.to_string(), Queue::Redis(queue)))
        }
        Driver::Database { table } => {
            // The app's database, as Laravel's database queue uses it (no embedded fallback).
            let cfg = DbConfig::from_env(&settings.lookup(), Path::new(DEFAULT_FAILED_DB))
                .context("invalid database settings for the database queue")?;
            anyhow::ensure!(
                !cfg.is_embedded(),
                "--connection={}: the database driver needs the app's database: set DB_CONNECTION and DB_* (or DATABASE_URL)",
                conn.name
            );
            startup::sqlite_file(&cfg, "the database queue")?;
            let db = Db::connect(&cfg)
                .await
                .with_context(|| format!("cannot connect to the queue database {cfg}"))?;
            let queue = DatabaseQueue::new(db, table, conn.retry_after)
                .await
                .with_context(|| format!("cannot use the jobs table {table} in {cfg}"))?;
            startup::jobs_table(&cfg, &queue, &conn.queue).await?;
            Ok((format!("{cfg} table {table}"), Queue::Database(queue)))
        }
    }
}

/// APP_TIMEZONE, for failed_at (UTC when unset).
pub fn timezone(settings: &Settings) -> anyhow::Result<chrono_tz::Tz> {
    config::app_timezone(&settings.lookup()).map_err(anyhow::Error::msg)
}

/// APP_KEY and APP_PREVIOUS_KEYS.
pub fn encrypter(settings: &Settings) -> anyhow::Result<Encrypter> {
    Ok(Encrypter::from_keys(
        settings.env("APP_KEY").as_deref(),
        settings.env("APP_PREVIOUS_KEYS").as_deref(),
    )?)
}

/// failed_jobs in the app's database (DB_* / DATABASE_URL), or in the embedded SQLite file at
/// `embedded` when no database is configured (created with its table).
///
/// The app's database may be down: the pool is lazy and a warning is logged, so a worker can start
/// and keep failing jobs reserved until it is back. A missing table or SQLite file stops the start
/// ([`startup`]).
pub async fn failed_jobs(
    settings: &Settings,
    embedded: Option<&Path>,
) -> anyhow::Result<(DbConfig, FailedJobs)> {
    let embedded: PathBuf = embedded
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_FAILED_DB));
    let cfg = DbConfig::from_env(&settings.lookup(), &embedded)
        .context("invalid database settings for failed_jobs")?;
    let tz = timezone(settings)?;
    if cfg.is_embedded() {
        let db = Db::connect(&cfg)
            .await
            .with_context(|| format!("cannot open the embedded failed_jobs database {cfg}"))?;
        let failed = FailedJobs::new(db, &cfg.table, tz);
        failed
            .ensure_table()
            .await
            .context("cannot create the embedded failed_jobs table")?;
        return Ok((cfg, failed));
    }
    startup::sqlite_file(&cfg, "failed_jobs")?;
    let db = Db::connect_lazy(&cfg)
        .await
        .with_context(|| format!("invalid failed_jobs database {cfg}"))?;
    let failed = FailedJobs::new(db, &cfg.table, tz);
    startup::failed_jobs_table(&cfg, &failed).await?;
    Ok((cfg, failed))
}
