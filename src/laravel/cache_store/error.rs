//! What can go wrong with the app's cache store: each variant names the setting, key, file or table to
//! fix, and never a password or a cached value.

use crate::laravel::database::{DbConfigError, DbError};
use crate::laravel::redis_config::RedisConfigError;

/// Why the cache store cannot be used. Names the setting, key, file or table to fix; never a password.
#[derive(Debug, thiserror::Error)]
pub enum CacheStoreError {
    /// The driver keeps its data inside each process (only reported by callers that need sharing).
    #[error("the `{driver}` cache store lives inside each PHP process, so a restart signal cannot reach other processes; set CACHE_DRIVER (or CACHE_STORE) to redis, file or database, as the app does")]
    NotShared { driver: String },
    #[error("{var}={driver} is not supported: defer-worker reads the restart signal from the redis, file and database stores")]
    Unsupported { var: &'static str, driver: String },
    #[error("{var}={value:?} is not valid: {reason}")]
    Invalid {
        var: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("invalid Redis settings for the cache store: {0}")]
    RedisConfig(#[from] RedisConfigError),
    #[error("invalid database settings for the cache store: {0}")]
    DbConfig(#[from] DbConfigError),
    #[error("CACHE_DRIVER=database needs the app's database: set DB_CONNECTION and DB_* (or DATABASE_URL)")]
    DbNotConfigured,
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot connect to the Redis cache store at {endpoint}: {source}")]
    RedisConnect {
        endpoint: String,
        #[source]
        source: ::redis::RedisError,
    },
    #[error("Redis {op} {key} failed: {source}")]
    Redis {
        op: &'static str,
        key: String,
        #[source]
        source: ::redis::RedisError,
    },
    #[error("cannot {op} the cache file {path}: {source}")]
    File {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot {op} key {key:?} in table {table} of {database}: {source}")]
    Sql {
        op: &'static str,
        key: String,
        table: String,
        database: String,
        #[source]
        source: Box<sqlx::Error>,
    },
    /// The stored value is not what `queue:restart` writes (a number).
    #[error("the restart signal at {location} is not a number: {reason}")]
    BadValue { location: String, reason: String },
    /// The stored bytes are not a value PHP's store could have written.
    #[error("cannot read the cache value at {location}: {reason}")]
    Unreadable { location: String, reason: String },
}

impl CacheStoreError {
    /// True when trying again later may succeed: the store is unreachable, times out or is busy, or a
    /// file or table cannot be accessed right now. False for settings and for values that cannot be read.
    pub fn is_transient(&self) -> bool {
        match self {
            CacheStoreError::RedisConnect { .. } | CacheStoreError::Db(_) => true,
            CacheStoreError::File { .. } => true,
            CacheStoreError::Redis { source, .. } => {
                source.is_io_error()
                    || source.is_timeout()
                    || source.is_connection_dropped()
                    || source.is_connection_refusal()
                    || source.is_unrecoverable_error()
                    || matches!(
                        source.kind(),
                        ::redis::ErrorKind::BusyLoadingError | ::redis::ErrorKind::TryAgain
                    )
            }
            CacheStoreError::Sql { source, .. } => !matches!(**source, sqlx::Error::Database(_)),
            _ => false,
        }
    }
}
