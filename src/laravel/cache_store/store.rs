//! [`CacheStore`]: the app's cache store and its operations (`get`, `many`, `put`, `forever`, `forget`,
//! `forget_many`, `update`, the restart signal), dispatched to the driver that holds the entries
//! (submodules `redis`, `file`, `database`); see the module doc of [`super`] for the bytes each writes.
//!
//! This file routes and locks. It must not build a driver's keys, files or statements itself (each
//! driver's submodule does), read settings (`settings` does), or log a cached value above debug level.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

use ::redis::aio::{ConnectionManager, MultiplexedConnection};
use tokio::sync::Mutex;

use super::{database, file, redis, value, CacheStoreError};
use crate::laravel::database::Db;
use crate::php::{self, Value};
use crate::util::clock::unix_now;

/// The logical key `queue:restart` writes and workers compare on every loop.
pub const RESTART_KEY: &str = "illuminate:queue:restart";
/// Stripes of the in-process per-key lock of [`CacheStore::update`].
const LOCK_STRIPES: usize = 64;

/// The app's cache store. Cheap to clone (clones share connections and locks).
#[derive(Clone)]
pub struct CacheStore {
    pub(super) backend: Backend,
    pub(super) locks: Arc<[Mutex<()>; LOCK_STRIPES]>,
}

/// Where the entries live, with what each driver needs to reach them.
#[derive(Clone)]
pub(super) enum Backend {
    Redis {
        conn: ConnectionManager,
        client: ::redis::Client,
        /// The connection of [`CacheStore::update`]'s transactions (WATCH is per connection).
        txn: Arc<Mutex<Option<MultiplexedConnection>>>,
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
        self.describe_key(RESTART_KEY)
    }

    /// Where `key` lives: the store, and the physical key, file or row (no password).
    pub fn describe_key(&self, key: &str) -> String {
        match &self.backend {
            Backend::Redis {
                endpoint, prefix, ..
            } => format!("redis store {endpoint}, key {prefix}{key}"),
            Backend::File { dir } => format!("file store, {}", file::path(dir, key).display()),
            Backend::Database {
                target,
                table,
                prefix,
                ..
            } => format!("database store {target}, table {table}, key {prefix}{key}"),
        }
    }

    /// The key as the store names it: `<prefix><key>` for redis and database, the file path for file.
    pub fn physical_key(&self, key: &str) -> String {
        match &self.backend {
            Backend::Redis { prefix, .. } | Backend::Database { prefix, .. } => {
                format!("{prefix}{key}")
            }
            Backend::File { dir } => file::path(dir, key).display().to_string(),
        }
    }

    /// The restart signal (`Cache::get('illuminate:queue:restart')`): `None` when no restart was ever
    /// signalled (or the entry expired). A worker restarts when this differs from what it read at start.
    pub async fn restart_signal(&self) -> Result<Option<i64>, CacheStoreError> {
        let Some(raw) = self.get_raw(RESTART_KEY).await? else {
            return Ok(None);
        };
        // RedisStore stores numbers raw and everything else serialized.
        if matches!(self.backend, Backend::Redis { .. }) {
            if let Some(n) = value::parse_php_number(&raw) {
                return Ok(Some(n));
            }
        }
        self.unserialize_number(&raw).map(Some)
    }

    /// Writes the restart signal as `queue:restart` does: `Cache::forever('illuminate:queue:restart', $now)`.
    pub async fn signal_restart(&self, now: i64) -> Result<(), CacheStoreError> {
        self.forever(RESTART_KEY, &Value::Int(now)).await
    }

    /// `Cache::get($key)`: `None` when absent or expired.
    pub async fn get(&self, key: &str) -> Result<Option<Value>, CacheStoreError> {
        let Some(raw) = self.get_raw(key).await? else {
            return Ok(None);
        };
        self.decode(key, &raw).map(Some)
    }

    /// `Cache::many($keys)`: one value (`None` when absent or expired) per key, in order; one `MGET` on
    /// Redis, one `IN` query on the database store, one read per file on the file store. An unreadable
    /// value is an error naming its key.
    pub async fn many<S: AsRef<str>>(
        &self,
        keys: &[S],
    ) -> Result<Vec<Option<Value>>, CacheStoreError> {
        let raws: Vec<Option<Vec<u8>>> = match &self.backend {
            Backend::Redis { conn, .. } => {
                let physical: Vec<String> =
                    keys.iter().map(|k| self.physical_key(k.as_ref())).collect();
                redis::mget(conn, &physical)
                    .await
                    .map_err(|source| CacheStoreError::Redis {
                        op: "MGET",
                        key: physical.first().cloned().unwrap_or_default(),
                        source,
                    })?
            }
            Backend::Database { db, table, .. } => {
                let physical: Vec<String> =
                    keys.iter().map(|k| self.physical_key(k.as_ref())).collect();
                let rows = database::get_many(db, table, &physical)
                    .await
                    .map_err(|source| {
                        self.sql_error("read", physical.first().map_or("", String::as_str), source)
                    })?;
                let now = unix_now();
                let mut raws = Vec::with_capacity(keys.len());
                for (key, wanted) in keys.iter().zip(&physical) {
                    let live = rows.iter().find(|(k, _, exp)| k == wanted && now < *exp);
                    raws.push(match live {
                        Some((_, value, _)) => Some(
                            database::decode(db.kind(), value.clone())
                                .map_err(|reason| self.bad_value(key.as_ref(), reason))?,
                        ),
                        None => None,
                    });
                }
                raws
            }
            Backend::File { .. } => {
                let mut raws = Vec::with_capacity(keys.len());
                for key in keys {
                    raws.push(self.get_raw(key.as_ref()).await?);
                }
                raws
            }
        };
        keys.iter()
            .zip(raws)
            .map(|(key, raw)| raw.map(|r| self.decode(key.as_ref(), &r)).transpose())
            .collect()
    }

    /// `Cache::put($key, $value, $ttl)`: stored for `ttl_secs` seconds; a TTL of 0 or less forgets the key.
    pub async fn put(
        &self,
        key: &str,
        value: &Value,
        ttl_secs: i64,
    ) -> Result<(), CacheStoreError> {
        if ttl_secs <= 0 {
            return self.forget(key).await.map(drop);
        }
        self.write(key, value, Some(ttl_secs)).await
    }

    /// `Cache::forever($key, $value)`.
    pub async fn forever(&self, key: &str, value: &Value) -> Result<(), CacheStoreError> {
        self.write(key, value, None).await
    }

    /// `Cache::forget($key)`: true when there was an entry.
    pub async fn forget(&self, key: &str) -> Result<bool, CacheStoreError> {
        Ok(self.forget_many(&[key]).await? > 0)
    }

    /// `Cache::deleteMultiple($keys)` in one round trip where the store allows; returns how many entries
    /// were there.
    pub async fn forget_many<S: AsRef<str>>(&self, keys: &[S]) -> Result<u64, CacheStoreError> {
        match &self.backend {
            Backend::Redis { conn, .. } => {
                let physical: Vec<String> =
                    keys.iter().map(|k| self.physical_key(k.as_ref())).collect();
                redis::del(conn, &physical)
                    .await
                    .map_err(|source| CacheStoreError::Redis {
                        op: "DEL",
                        key: physical.first().cloned().unwrap_or_default(),
                        source,
                    })
            }
            Backend::File { dir } => {
                let mut n = 0;
                for key in keys {
                    let path = file::path(dir, key.as_ref());
                    if file::remove(&path).map_err(|source| CacheStoreError::File {
                        op: "delete",
                        path: path.display().to_string(),
                        source,
                    })? {
                        n += 1;
                    }
                }
                Ok(n)
            }
            Backend::Database { db, table, .. } => {
                let physical: Vec<String> =
                    keys.iter().map(|k| self.physical_key(k.as_ref())).collect();
                database::delete(db, table, &physical)
                    .await
                    .map_err(|source| {
                        self.sql_error(
                            "delete",
                            physical.first().map_or("", String::as_str),
                            source,
                        )
                    })
            }
        }
    }

    /// Reads `key`, passes its value (`None` when absent, expired or unreadable) to `f`, and stores what
    /// `f` returns for `ttl_secs` (at least 1 s), without losing a concurrent update (see the module doc).
    /// `f` may run more than once (on Redis, when another client wrote the key meanwhile). Returns the
    /// value written.
    pub async fn update(
        &self,
        key: &str,
        ttl_secs: i64,
        mut f: impl FnMut(Option<Value>) -> Value + Send,
    ) -> Result<Value, CacheStoreError> {
        let ttl = ttl_secs.max(1);
        let _guard = self.locks[stripe(key)].lock().await;
        match &self.backend {
            Backend::Redis {
                client,
                txn,
                prefix,
                ..
            } => {
                let physical = format!("{prefix}{key}");
                let mut written = Value::Null;
                let mut step = |current: Option<&[u8]>| {
                    let old = current.and_then(|raw| self.decode_or_warn(key, raw));
                    written = f(old);
                    redis::encode(&written)
                };
                redis::update(client, txn, &physical, Some(ttl), &mut step)
                    .await
                    .map_err(|source| CacheStoreError::Redis {
                        op: "WATCH/MULTI/EXEC",
                        key: physical.clone(),
                        source,
                    })?;
                Ok(written)
            }
            _ => {
                let old = match self.get_raw(key).await? {
                    Some(raw) => self.decode_or_warn(key, &raw),
                    None => None,
                };
                let new = f(old);
                self.write(key, &new, Some(ttl)).await?;
                Ok(new)
            }
        }
    }

    fn decode_or_warn(&self, key: &str, raw: &[u8]) -> Option<Value> {
        match self.decode(key, raw) {
            Ok(v) => Some(v),
            Err(err) => {
                tracing::warn!(error = %err, "unreadable cache value is replaced");
                None
            }
        }
    }

    /// The stored bytes of a live entry: raw-or-serialized on Redis, serialized elsewhere.
    async fn get_raw(&self, key: &str) -> Result<Option<Vec<u8>>, CacheStoreError> {
        match &self.backend {
            Backend::Redis { conn, prefix, .. } => {
                let physical = format!("{prefix}{key}");
                redis::get(conn, &physical)
                    .await
                    .map_err(|source| CacheStoreError::Redis {
                        op: "GET",
                        key: physical,
                        source,
                    })
            }
            Backend::File { dir } => {
                let path = file::path(dir, key);
                file::read(&path, unix_now())
                    .map_err(|source| CacheStoreError::File {
                        op: "read",
                        path: path.display().to_string(),
                        source,
                    })?
                    .map_err(|reason| self.bad_value(key, reason))
            }
            Backend::Database {
                db, table, prefix, ..
            } => {
                let physical = format!("{prefix}{key}");
                let Some((value, expiration)) = database::get(db, table, &physical)
                    .await
                    .map_err(|source| self.sql_error("read", &physical, source))?
                else {
                    return Ok(None);
                };
                if unix_now() >= expiration {
                    return Ok(None);
                }
                database::decode(db.kind(), value)
                    .map(Some)
                    .map_err(|reason| self.bad_value(key, reason))
            }
        }
    }

    /// `put` (`ttl` seconds, at least 1) or `forever` (`None`).
    async fn write(
        &self,
        key: &str,
        value: &Value,
        ttl: Option<i64>,
    ) -> Result<(), CacheStoreError> {
        match &self.backend {
            Backend::Redis { conn, prefix, .. } => {
                let physical = format!("{prefix}{key}");
                redis::set(conn, &physical, &redis::encode(value), ttl)
                    .await
                    .map_err(|source| CacheStoreError::Redis {
                        op: if ttl.is_some() { "SETEX" } else { "SET" },
                        key: physical,
                        source,
                    })
            }
            Backend::File { dir } => {
                let path = file::path(dir, key);
                let content =
                    file::content(file::expiration(unix_now(), ttl), &php::serialize(value));
                file::write_atomically(&path, &content).map_err(|(op, source)| {
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
                let physical = format!("{prefix}{key}");
                let stored = database::encode(db.kind(), &php::serialize(value));
                let expiration = unix_now() + ttl.unwrap_or(database::FOREVER_SECS);
                database::put(db, table, &physical, &stored, expiration)
                    .await
                    .map_err(|source| self.sql_error("write", &physical, source))
            }
        }
    }

    fn decode(&self, key: &str, raw: &[u8]) -> Result<Value, CacheStoreError> {
        let result = match self.backend {
            Backend::Redis { .. } => redis::decode(raw),
            _ => php::unserialize(raw).map_err(|e| e.to_string()),
        };
        result.map_err(|reason| CacheStoreError::Unreadable {
            location: self.describe_key(key),
            reason,
        })
    }

    fn bad_value(&self, key: &str, reason: String) -> CacheStoreError {
        if key == RESTART_KEY {
            CacheStoreError::BadValue {
                location: self.describe(),
                reason,
            }
        } else {
            CacheStoreError::Unreadable {
                location: self.describe_key(key),
                reason,
            }
        }
    }

    pub(super) fn sql_error(
        &self,
        op: &'static str,
        key: &str,
        source: sqlx::Error,
    ) -> CacheStoreError {
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

    /// The restart signal's serialized value as a number.
    fn unserialize_number(&self, raw: &[u8]) -> Result<i64, CacheStoreError> {
        value::signal_number(raw).map_err(|reason| CacheStoreError::BadValue {
            location: self.describe(),
            reason,
        })
    }
}

pub(super) fn stripe(key: &str) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    (h.finish() % LOCK_STRIPES as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_store_round_trip_and_expiry() {
        let dir = tempfile::tempdir().expect("tmp");
        // What `settings` builds for CACHE_DRIVER=file, APP_STORAGE_PATH=<dir>.
        let store = CacheStore {
            backend: Backend::File {
                dir: dir.path().join("framework/cache/data"),
            },
            locks: Arc::new(std::array::from_fn(|_| Mutex::new(()))),
        };
        assert_eq!(store.restart_signal().await.expect("read"), None);
        store.signal_restart(1_700_000_000).await.expect("write");
        assert_eq!(
            store.restart_signal().await.expect("read"),
            Some(1_700_000_000)
        );
        let path = file::path(&dir.path().join("framework/cache/data"), RESTART_KEY);
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
