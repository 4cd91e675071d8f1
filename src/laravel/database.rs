//! A small connection pool on the app's SQL database (or the embedded SQLite file), opened from a
//! [`DbConfig`]. It knows nothing about tables; a connection failure is an error for the caller, never a
//! panic, and no error carries a password.
//!
//! Connection sessions are set up like Laravel's connectors, not like sqlx's defaults, so that values
//! read and written by PHP and by us agree: MySQL keeps the server's `time_zone` (sqlx would force
//! `+00:00`, shifting every `TIMESTAMP` PHP reads back) and uses `utf8mb4_unicode_ci`.

use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

pub use super::db_config::{DbConfig, DbConfigError, DbKind, DEFAULT_TABLE};

const MAX_CONNECTIONS: u32 = 4;
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The database could not be opened. Never contains a password.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot connect to {target}: {reason}")]
    Connect { target: String, reason: String },
    #[error("cannot create the directory {path} for the embedded SQLite database: {reason}")]
    CreateDir { path: String, reason: String },
}

/// Runs the same code on whichever pool a [`Db`] holds (the code is type-checked once per driver).
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::laravel::database::Db::MySql($pool) => $body,
            $crate::laravel::database::Db::Postgres($pool) => $body,
            $crate::laravel::database::Db::Sqlite($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// A connection pool on the app's database (or the embedded file). Cheap to clone.
#[derive(Clone, Debug)]
pub enum Db {
    MySql(sqlx::MySqlPool),
    Postgres(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

impl Db {
    /// Opens a pool of at most 4 connections and checks that one connection works, so a wrong
    /// host or password is reported now. Later outages surface as errors from each query.
    pub async fn connect(cfg: &DbConfig) -> Result<Db, DbError> {
        Self::open(cfg, false, MAX_CONNECTIONS).await
    }

    /// Like [`Db::connect`] but opens no connection until the first query, so the caller can start
    /// while the database is down. Only unusable settings are reported here.
    pub async fn connect_lazy(cfg: &DbConfig) -> Result<Db, DbError> {
        Self::open(cfg, true, MAX_CONNECTIONS).await
    }

    /// [`Db::connect_lazy`] with a pool of up to `max_connections` (the app's lookups, which run on
    /// every job, need more than failed_jobs does).
    pub async fn connect_lazy_sized(cfg: &DbConfig, max_connections: u32) -> Result<Db, DbError> {
        Self::open(cfg, true, max_connections.max(1)).await
    }

    async fn open(cfg: &DbConfig, lazy: bool, max_connections: u32) -> Result<Db, DbError> {
        let failed = |e: sqlx::Error| DbError::Connect {
            target: cfg.masked_url().to_owned(),
            reason: e.to_string(),
        };
        Ok(match cfg.kind {
            DbKind::MySql => {
                let mut opts = MySqlConnectOptions::from_str(&cfg.url)
                    .map_err(failed)?
                    .pipes_as_concat(false);
                // Laravel sets no time_zone unless configured; keep the server's, like PHP.
                if !has_param(&cfg.url, "timezone") {
                    opts = opts.timezone(None);
                }
                if !has_param(&cfg.url, "collation") {
                    opts = opts.charset("utf8mb4").collation("utf8mb4_unicode_ci");
                }
                let pool = MySqlPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .idle_timeout(IDLE_TIMEOUT);
                Db::MySql(if lazy {
                    pool.connect_lazy_with(opts)
                } else {
                    pool.connect_with(opts).await.map_err(failed)?
                })
            }
            DbKind::Postgres => {
                let opts = PgConnectOptions::from_str(&cfg.url).map_err(failed)?;
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .idle_timeout(IDLE_TIMEOUT);
                Db::Postgres(if lazy {
                    pool.connect_lazy_with(opts)
                } else {
                    pool.connect_with(opts).await.map_err(failed)?
                })
            }
            DbKind::Sqlite => {
                let opts = SqliteConnectOptions::from_str(&cfg.url).map_err(failed)?;
                if cfg.is_embedded() {
                    if let Some(dir) = opts
                        .get_filename()
                        .parent()
                        .filter(|d| !d.as_os_str().is_empty())
                    {
                        std::fs::create_dir_all(dir).map_err(|e| DbError::CreateDir {
                            path: dir.display().to_string(),
                            reason: e.to_string(),
                        })?;
                    }
                }
                let pool = SqlitePoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .idle_timeout(IDLE_TIMEOUT);
                Db::Sqlite(if lazy {
                    pool.connect_lazy_with(opts)
                } else {
                    pool.connect_with(opts).await.map_err(failed)?
                })
            }
        })
    }

    pub fn kind(&self) -> DbKind {
        match self {
            Db::MySql(_) => DbKind::MySql,
            Db::Postgres(_) => DbKind::Postgres,
            Db::Sqlite(_) => DbKind::Sqlite,
        }
    }

    /// Closes every connection of the pool (waits for the ones in use).
    pub async fn close(&self) {
        match self {
            Db::MySql(p) => p.close().await,
            Db::Postgres(p) => p.close().await,
            Db::Sqlite(p) => p.close().await,
        }
    }
}

fn has_param(url: &str, key: &str) -> bool {
    url.split_once('?')
        .is_some_and(|(_, q)| q.split('&').any(|kv| kv.split('=').next() == Some(key)))
}
