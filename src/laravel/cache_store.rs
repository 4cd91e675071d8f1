//! The app's default cache store, as far as workers use it: the restart signal that
//! `php artisan queue:restart` writes (`illuminate:queue:restart`) and every worker polls.
//!
//! Laravel keeps that signal in whatever store `CACHE_DRIVER` (8/10) or `CACHE_STORE` (11+) names, so the
//! bytes must match Laravel's own stores exactly (spec §2.4):
//! - `redis`: key `<REDIS_PREFIX><CACHE_PREFIX>:<key>` on the `cache` connection (`REDIS_CACHE_DB`, default 1);
//!   Laravel 8/10 put the `:` after a non-empty cache prefix, 11+ do not. Numbers are stored raw
//!   (`"1712345678"`), anything else `serialize()`d.
//! - `file`: `<storage>/framework/cache/data/<sha1[0:2]>/<sha1[2:4]>/<sha1(key)>` (no prefix), content = a
//!   10-digit expiry (`9999999999` for `forever`) followed by `serialize(value)`.
//! - `database`: table `cache(key, value, expiration)`, key = `<CACHE_PREFIX><key>` (no separator), value
//!   `serialize()`d (base64 on PostgreSQL when it holds a NUL), `forever` = now + 315360000 s.
//!
//! Settings, under Laravel's names: `CACHE_DRIVER` / `CACHE_STORE` (default `file`, as in the app),
//! `CACHE_PREFIX` (default `slug(APP_NAME, '_')` + `_cache`, the app's `config/cache.php`; `_cache_` for 11+),
//! `REDIS_*` + `REDIS_CACHE_DB`, `DB_*` / `DATABASE_URL` + `DB_CACHE_TABLE` (default `cache`), and for the
//! file store the app's storage directory: `APP_STORAGE_PATH` (ours), else `LARAVEL_STORAGE_PATH` (Laravel
//! 10+), else `./storage` (run from the app's base directory). `DEFER_WORKER_LARAVEL` (8–13, default 10)
//! picks the version-dependent details (Redis key separator, default prefix, which driver variable wins).
//!
//! This module reads and writes that one key; it is not a general cache client, it never deletes keys
//! (Laravel's stores do that on read of an expired entry; we just treat it as absent), and it must not
//! log or show the password of a store.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::RedisError;
use sha1::{Digest, Sha1};

use super::database::{Db, DbConfig, DbConfigError, DbError, DbKind};
use super::redis_config::{laravel_slug, RedisConfig, RedisConfigError};
use crate::php::{self, Value};

/// The logical key `queue:restart` writes and workers compare on every loop.
pub const RESTART_KEY: &str = "illuminate:queue:restart";
/// The FileStore expiry of a `forever` entry.
const FILE_FOREVER: i64 = 9_999_999_999;
/// `DatabaseStore::forever` = `put($key, $value, 315360000)` (ten years).
const DB_FOREVER_SECS: i64 = 315_360_000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Which Laravel major line wrote (or will read) the store; only the details listed in the module doc
/// depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LaravelLine {
    /// Laravel 8, 9 and 10 (the app is on 10): `RedisStore` puts `:` after the cache prefix.
    V8To10,
    /// Laravel 11 and later: no `:`; `CACHE_STORE` names the store.
    V11Plus,
}

impl LaravelLine {
    /// Parses a major version (`8`, `10`, `11.3` …).
    pub fn parse(version: &str) -> Option<LaravelLine> {
        let major: u32 = version.trim().split('.').next()?.parse().ok()?;
        match major {
            8..=10 => Some(LaravelLine::V8To10),
            11..=13 => Some(LaravelLine::V11Plus),
            _ => None,
        }
    }
}

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
        source: RedisError,
    },
    #[error("Redis {op} {key} failed: {source}")]
    Redis {
        op: &'static str,
        key: String,
        #[source]
        source: RedisError,
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
}

/// The cache store holding the restart signal. Cheap to clone.
#[derive(Clone)]
pub struct CacheStore {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Redis {
        conn: ConnectionManager,
        endpoint: String,
        /// `<redis prefix><cache prefix>[:]`, put in front of the logical key.
        prefix: String,
    },
    File {
        /// `<storage>/framework/cache/data`.
        dir: PathBuf,
    },
    Database {
        db: Db,
        target: String,
        table: String,
        /// The cache prefix, put in front of the logical key with no separator.
        prefix: String,
    },
}

impl fmt::Debug for CacheStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl CacheStore {
    /// The app's default store from the process environment (see the module doc). `None` for the `array`
    /// driver, which holds nothing another process can see: with it PHP's workers never see a restart
    /// either. (`CACHE_DRIVER=null` is Laravel's `env()` null, i.e. the default `file` store.)
    pub async fn from_env() -> Result<Option<CacheStore>, CacheStoreError> {
        Self::from_lookup(&crate::config::env).await
    }

    /// Like [`CacheStore::from_env`], with settings looked up through `get` (Laravel's `env()` rules:
    /// `null` is unset, `(empty)` is the empty string, one pair of quotes is removed).
    pub async fn from_lookup(
        get: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<CacheStore>, CacheStoreError> {
        let env = |k: &str| laravel_env(get(k));
        let line = match env("DEFER_WORKER_LARAVEL") {
            None => LaravelLine::V8To10,
            Some(v) => LaravelLine::parse(&v).ok_or(CacheStoreError::Invalid {
                var: "DEFER_WORKER_LARAVEL",
                value: v,
                reason: "expected a Laravel major version, 8 to 13",
            })?,
        };
        let (first, second) = match line {
            LaravelLine::V8To10 => ("CACHE_DRIVER", "CACHE_STORE"),
            LaravelLine::V11Plus => ("CACHE_STORE", "CACHE_DRIVER"),
        };
        let (var, driver) = match (env(first), env(second)) {
            (Some(d), _) => (first, d),
            (None, Some(d)) => (second, d),
            (None, None) => (first, "file".to_owned()),
        };
        let prefix = env("CACHE_PREFIX").unwrap_or_else(|| {
            let app = env("APP_NAME").unwrap_or_else(|| "laravel".to_owned());
            let suffix = match line {
                LaravelLine::V8To10 => "_cache",
                LaravelLine::V11Plus => "_cache_",
            };
            format!("{}{suffix}", laravel_slug(&app, '_'))
        });
        let backend = match driver.trim().to_ascii_lowercase().as_str() {
            "array" => return Ok(None),
            "redis" => {
                // The `cache` connection: the default one's settings with REDIS_CACHE_DB (1) as database;
                // a database in REDIS_URL still wins, as in Laravel's ConfigurationUrlParser.
                let cache_get = |k: &str| match k {
                    "REDIS_DB" => get("REDIS_CACHE_DB").or_else(|| Some("1".to_owned())),
                    _ => get(k),
                };
                let cfg = RedisConfig::from_env(&cache_get)?;
                let separator = if line == LaravelLine::V8To10 && !prefix.is_empty() {
                    ":"
                } else {
                    ""
                };
                Self::redis(&cfg, &format!("{}{prefix}{separator}", cfg.prefix)).await?
            }
            "file" => {
                let storage = env("APP_STORAGE_PATH")
                    .or_else(|| env("LARAVEL_STORAGE_PATH"))
                    .unwrap_or_else(|| "storage".to_owned());
                Backend::File {
                    dir: Path::new(&storage).join("framework/cache/data"),
                }
            }
            "database" => {
                let cfg = DbConfig::from_env(get, Path::new("unused.sqlite"))?;
                if cfg.is_embedded() {
                    return Err(CacheStoreError::DbNotConfigured);
                }
                let table = env("DB_CACHE_TABLE").unwrap_or_else(|| "cache".to_owned());
                if table.is_empty()
                    || !table
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
                {
                    return Err(CacheStoreError::Invalid {
                        var: "DB_CACHE_TABLE",
                        value: table,
                        reason: "expected a table name of letters, digits, `_` and `.`",
                    });
                }
                let db = Db::connect_lazy(&cfg).await?;
                Backend::Database {
                    db,
                    target: cfg.to_string(),
                    table,
                    prefix,
                }
            }
            _ => return Err(CacheStoreError::Unsupported { var, driver }),
        };
        Ok(Some(CacheStore { backend }))
    }

    /// A Redis store: `key_prefix` is everything before the logical key (`<redis prefix><cache prefix>:`).
    async fn redis(cfg: &RedisConfig, key_prefix: &str) -> Result<Backend, CacheStoreError> {
        let endpoint = cfg.masked_url();
        let connect_err = |source| CacheStoreError::RedisConnect {
            endpoint: endpoint.clone(),
            source,
        };
        let client = redis::Client::open(cfg.url.as_str()).map_err(connect_err)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(CONNECT_TIMEOUT)
            .set_response_timeout(RESPONSE_TIMEOUT)
            .set_number_of_retries(1)
            .set_max_delay(1_000);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(connect_err)?;
        Ok(Backend::Redis {
            conn,
            endpoint,
            prefix: key_prefix.to_owned(),
        })
    }

    /// The driver name, as in `CACHE_DRIVER`.
    pub fn driver(&self) -> &'static str {
        match self.backend {
            Backend::Redis { .. } => "redis",
            Backend::File { .. } => "file",
            Backend::Database { .. } => "database",
        }
    }

    /// Where the restart signal lives, for messages: the store, and the physical key, file or row.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Redis {
                endpoint, prefix, ..
            } => format!("redis store {endpoint}, key {prefix}{RESTART_KEY}"),
            Backend::File { dir } => {
                format!("file store, {}", file_path(dir, RESTART_KEY).display())
            }
            Backend::Database {
                target,
                table,
                prefix,
                ..
            } => format!("database store {target}, table {table}, key {prefix}{RESTART_KEY}"),
        }
    }

    /// The restart signal (`Cache::get('illuminate:queue:restart')`): `None` when no restart was ever
    /// signalled (or the entry expired). A worker restarts when this differs from what it read at start.
    pub async fn restart_signal(&self) -> Result<Option<i64>, CacheStoreError> {
        let raw = match &self.backend {
            Backend::Redis { conn, prefix, .. } => {
                let key = format!("{prefix}{RESTART_KEY}");
                let value: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut conn.clone())
                    .await
                    .map_err(|source| CacheStoreError::Redis {
                        op: "GET",
                        key: key.clone(),
                        source,
                    })?;
                match value {
                    // RedisStore stores numbers raw and everything else serialized.
                    Some(v) => match parse_php_number(&v) {
                        Some(n) => return Ok(Some(n)),
                        None => v,
                    },
                    None => return Ok(None),
                }
            }
            Backend::File { dir } => {
                let path = file_path(dir, RESTART_KEY);
                let content = match std::fs::read(&path) {
                    Ok(c) => c,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(source) => {
                        return Err(CacheStoreError::File {
                            op: "read",
                            path: path.display().to_string(),
                            source,
                        })
                    }
                };
                let (expiry, value) = content.split_at(content.len().min(10));
                let expiry: i64 = std::str::from_utf8(expiry)
                    .ok()
                    .and_then(|e| e.parse().ok())
                    .ok_or_else(|| CacheStoreError::BadValue {
                        location: self.describe(),
                        reason: "the file does not start with a 10-digit expiry".to_owned(),
                    })?;
                if unix_now() >= expiry {
                    return Ok(None);
                }
                value.to_vec()
            }
            Backend::Database {
                db, table, prefix, ..
            } => {
                let key = format!("{prefix}{RESTART_KEY}");
                let Some((value, expiration)) = db_get(db, table, &key)
                    .await
                    .map_err(|source| self.sql_error("read", &key, source))?
                else {
                    return Ok(None);
                };
                if unix_now() >= expiration {
                    return Ok(None);
                }
                // DatabaseStore base64-encodes serialized values holding a NUL on PostgreSQL.
                if db.kind() == DbKind::Postgres && !value.contains([':', ';']) {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD
                        .decode(value.trim())
                        .map_err(|e| CacheStoreError::BadValue {
                            location: self.describe(),
                            reason: format!("neither serialized nor base64: {e}"),
                        })?
                } else {
                    value.into_bytes()
                }
            }
        };
        self.unserialize_number(&raw).map(Some)
    }

    /// Writes the restart signal as `queue:restart` does: `Cache::forever('illuminate:queue:restart', $now)`.
    pub async fn signal_restart(&self, now: i64) -> Result<(), CacheStoreError> {
        match &self.backend {
            Backend::Redis { conn, prefix, .. } => {
                let key = format!("{prefix}{RESTART_KEY}");
                redis::cmd("SET")
                    .arg(&key)
                    .arg(now.to_string())
                    .query_async::<()>(&mut conn.clone())
                    .await
                    .map_err(|source| CacheStoreError::Redis {
                        op: "SET",
                        key,
                        source,
                    })
            }
            Backend::File { dir } => {
                let path = file_path(dir, RESTART_KEY);
                let content = format!("{FILE_FOREVER}i:{now};");
                write_atomically(&path, content.as_bytes()).map_err(|(op, source)| {
                    CacheStoreError::File {
                        op,
                        path: path.display().to_string(),
                        source,
                    }
                })
            }
            Backend::Database {
                db, table, prefix, ..
            } => {
                let key = format!("{prefix}{RESTART_KEY}");
                let value = format!("i:{now};");
                db_put(db, table, &key, &value, unix_now() + DB_FOREVER_SECS)
                    .await
                    .map_err(|source| self.sql_error("write", &key, source))
            }
        }
    }

    fn sql_error(&self, op: &'static str, key: &str, source: sqlx::Error) -> CacheStoreError {
        let (table, database) = match &self.backend {
            Backend::Database { table, target, .. } => (table.clone(), target.clone()),
            _ => (String::new(), String::new()),
        };
        CacheStoreError::Sql {
            op,
            key: key.to_owned(),
            table,
            database,
            source: Box::new(source),
        }
    }

    /// The value as a number, with PHP's loose comparison in mind (`"123" == 123`).
    fn unserialize_number(&self, raw: &[u8]) -> Result<i64, CacheStoreError> {
        let bad = |reason: String| CacheStoreError::BadValue {
            location: self.describe(),
            reason,
        };
        let value = php::unserialize(raw).map_err(|e| bad(e.to_string()))?;
        match value {
            Value::Int(n) => Ok(n),
            Value::Float(f) if f.is_finite() => Ok(f as i64),
            Value::Str(s) => parse_php_number(&s).ok_or_else(|| bad("a non-numeric string".into())),
            _ => Err(bad("not an integer".into())),
        }
    }
}

/// FileStore's path of `key`: `<dir>/<sha1[0:2]>/<sha1[2:4]>/<sha1>`.
fn file_path(dir: &Path, key: &str) -> PathBuf {
    let hash: String = Sha1::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    dir.join(&hash[0..2]).join(&hash[2..4]).join(&hash)
}

/// Writes `content` to a temporary file beside `path` and renames it over `path`, so a PHP reader never sees
/// half a value (FileStore forgets an entry it cannot unserialize). Directories are created like PHP's
/// `makeDirectory(0777, recursive)`, under the process umask.
fn write_atomically(path: &Path, content: &[u8]) -> Result<(), (&'static str, std::io::Error)> {
    let dir = path.parent().ok_or((
        "create the directory of",
        std::io::Error::other("no parent directory"),
    ))?;
    std::fs::create_dir_all(dir).map_err(|e| ("create the directory of", e))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("cache"),
        std::process::id()
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(content)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| ("write", e))
}

async fn db_get(db: &Db, table: &str, key: &str) -> Result<Option<(String, i64)>, sqlx::Error> {
    use sqlx::Row;
    Ok(match db {
        Db::MySql(pool) => sqlx::query(&format!(
            "SELECT `value`, CAST(`expiration` AS SIGNED) FROM {} WHERE `key` = ? LIMIT 1",
            quote(table, '`')
        ))
        .bind(key)
        .fetch_optional(pool)
        .await?
        .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?)))
        .transpose()?,
        Db::Postgres(pool) => sqlx::query(&format!(
            "SELECT \"value\", CAST(\"expiration\" AS BIGINT) FROM {} WHERE \"key\" = $1 LIMIT 1",
            quote(table, '"')
        ))
        .bind(key)
        .fetch_optional(pool)
        .await?
        .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?)))
        .transpose()?,
        Db::Sqlite(pool) => sqlx::query(&format!(
            "SELECT \"value\", CAST(\"expiration\" AS INTEGER) FROM {} WHERE \"key\" = ? LIMIT 1",
            quote(table, '"')
        ))
        .bind(key)
        .fetch_optional(pool)
        .await?
        .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?)))
        .transpose()?,
    })
}

/// Insert or update in one statement (Laravel 8/10 try an insert and update on a duplicate-key error).
async fn db_put(
    db: &Db,
    table: &str,
    key: &str,
    value: &str,
    expiration: i64,
) -> Result<(), sqlx::Error> {
    match db {
        Db::MySql(pool) => {
            sqlx::query(&format!(
                "INSERT INTO {} (`key`, `value`, `expiration`) VALUES (?, ?, ?) \
                 ON DUPLICATE KEY UPDATE `value` = VALUES(`value`), `expiration` = VALUES(`expiration`)",
                quote(table, '`')
            ))
            .bind(key)
            .bind(value)
            .bind(expiration)
            .execute(pool)
            .await?;
        }
        Db::Postgres(pool) => {
            sqlx::query(&format!(
                "INSERT INTO {} (\"key\", \"value\", \"expiration\") VALUES ($1, $2, $3) \
                 ON CONFLICT (\"key\") DO UPDATE SET \"value\" = EXCLUDED.\"value\", \"expiration\" = EXCLUDED.\"expiration\"",
                quote(table, '"')
            ))
            .bind(key)
            .bind(value)
            .bind(expiration)
            .execute(pool)
            .await?;
        }
        Db::Sqlite(pool) => {
            sqlx::query(&format!(
                "INSERT INTO {} (\"key\", \"value\", \"expiration\") VALUES (?, ?, ?) \
                 ON CONFLICT (\"key\") DO UPDATE SET \"value\" = excluded.\"value\", \"expiration\" = excluded.\"expiration\"",
                quote(table, '"')
            ))
            .bind(key)
            .bind(value)
            .bind(expiration)
            .execute(pool)
            .await?;
        }
    }
    Ok(())
}

/// `schema.table` → `q schema q . q table q`; the name was checked to hold no quote character.
fn quote(table: &str, q: char) -> String {
    table
        .split('.')
        .map(|part| format!("{q}{part}{q}"))
        .collect::<Vec<_>>()
        .join(".")
}

/// PHP's `is_numeric` on a whole string, as an integer (floats truncated, as `(int)` would): what
/// RedisStore stores raw and what a loose `!=` compares as a number.
fn parse_php_number(raw: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(raw).ok()?;
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0B', '\x0C']);
    let t = t.trim_end_matches([' ', '\t', '\n', '\r', '\x0B', '\x0C']);
    if t.is_empty()
        || !t
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
    {
        return None;
    }
    if let Ok(n) = t.parse::<i64>() {
        return Some(n);
    }
    t.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(|f| f as i64)
}

/// Laravel's `env()` normalisation of a raw value.
fn laravel_env(raw: Option<String>) -> Option<String> {
    let value = raw?;
    match value.to_ascii_lowercase().as_str() {
        "null" | "(null)" => return None,
        "empty" | "(empty)" => return Some(String::new()),
        _ => {}
    }
    let b = value.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[0] == b[b.len() - 1] {
        return Some(value[1..value.len() - 1].to_owned());
    }
    Some(value)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn file_path_is_laravels_sha1_layout() {
        // sha1("illuminate:queue:restart"); PHP's FileStore reads it back in tests/ops_restart.rs.
        let p = file_path(Path::new("/s/framework/cache/data"), RESTART_KEY);
        assert_eq!(
            p,
            Path::new("/s/framework/cache/data/ee/2f/ee2f842aa7bb1f53edf3a2ed2c09a1807ffa6c90")
        );
    }

    #[test]
    fn php_numbers_parse_like_is_numeric() {
        assert_eq!(parse_php_number(b"1712345678"), Some(1_712_345_678));
        assert_eq!(parse_php_number(b" 12"), Some(12));
        assert_eq!(parse_php_number(b"1.5e3"), Some(1500));
        assert_eq!(parse_php_number(b"i:1;"), None);
        assert_eq!(parse_php_number(b""), None);
        assert_eq!(parse_php_number(b"abc"), None);
    }

    #[tokio::test]
    async fn drivers_without_shared_state_give_none_and_others_are_named() {
        let store = CacheStore::from_lookup(&lookup(&[("CACHE_DRIVER", "array")]))
            .await
            .expect("valid");
        assert!(store.is_none());
        // Laravel's env() reads the word `null` as unset: the default (file) store.
        let store = CacheStore::from_lookup(&lookup(&[("CACHE_DRIVER", "null")]))
            .await
            .expect("valid")
            .expect("file store");
        assert_eq!(store.driver(), "file");
        let err = CacheStore::from_lookup(&lookup(&[("CACHE_DRIVER", "memcached")]))
            .await
            .expect_err("memcached");
        assert!(err.to_string().contains("CACHE_DRIVER=memcached"), "{err}");
        let err = CacheStore::from_lookup(&lookup(&[
            ("DEFER_WORKER_LARAVEL", "11"),
            ("CACHE_STORE", "dynamodb"),
            ("CACHE_DRIVER", "file"),
        ]))
        .await
        .expect_err("11+ reads CACHE_STORE first");
        assert!(err.to_string().contains("CACHE_STORE=dynamodb"), "{err}");
        let err = CacheStore::from_lookup(&lookup(&[("DEFER_WORKER_LARAVEL", "7")]))
            .await
            .expect_err("7");
        assert!(err.to_string().contains("DEFER_WORKER_LARAVEL"), "{err}");
        let err = CacheStore::from_lookup(&lookup(&[("CACHE_DRIVER", "database")]))
            .await
            .expect_err("no database");
        assert!(matches!(err, CacheStoreError::DbNotConfigured), "{err}");
    }

    #[tokio::test]
    async fn default_is_the_file_store_under_storage() {
        let store = CacheStore::from_lookup(&lookup(&[("APP_STORAGE_PATH", "/srv/app/storage")]))
            .await
            .expect("valid")
            .expect("file store");
        assert_eq!(store.driver(), "file");
        assert!(
            store
                .describe()
                .contains("/srv/app/storage/framework/cache/data/"),
            "{}",
            store.describe()
        );
    }

    #[tokio::test]
    async fn file_store_round_trip_and_expiry() {
        let dir = tempfile::tempdir().expect("tmp");
        let storage = dir.path().display().to_string();
        let store = CacheStore::from_lookup(&lookup(&[
            ("CACHE_DRIVER", "file"),
            ("APP_STORAGE_PATH", &storage),
        ]))
        .await
        .expect("valid")
        .expect("store");
        assert_eq!(store.restart_signal().await.expect("read"), None);
        store.signal_restart(1_700_000_000).await.expect("write");
        assert_eq!(
            store.restart_signal().await.expect("read"),
            Some(1_700_000_000)
        );
        let path = file_path(&dir.path().join("framework/cache/data"), RESTART_KEY);
        assert_eq!(
            std::fs::read(&path).expect("file"),
            b"9999999999i:1700000000;"
        );
        // An expired entry reads as absent, as FileStore::get does.
        std::fs::write(&path, b"1000000000i:5;").expect("write");
        assert_eq!(store.restart_signal().await.expect("read"), None);
        std::fs::write(&path, b"9999999999s:3:\"abc\";").expect("write");
        let err = store.restart_signal().await.expect_err("not a number");
        assert!(err.to_string().contains("not a number"), "{err}");
    }
}
