//! [`CacheStore::increment`]: `Cache::increment($key, $by)` as each of Laravel's stores does it, so a
//! counter PHP and this worker both bump (the maxExceptions counter, `super::exceptions`) keeps one
//! value and one lifetime:
//! - redis: `INCRBY` on the raw number (the key's TTL stays; a missing key becomes `by`, for ever);
//! - file: the value read and `(int)`-cast (a missing or expired entry counts as 0 and is then written
//!   for ever, as `FileStore::increment` does), written back with the entry's own expiry;
//! - database: in a transaction with a row lock, the value unserialized, refused unless numeric,
//!   written back without touching `expiration`; no row, no increment.
//!
//! It must not change an entry's lifetime, nor build a driver's keys, files or statements itself.

use super::store::{stripe, Backend};
use super::{database, file, redis, value, CacheStore, CacheStoreError};
use crate::php::{self, Value};
use crate::util::clock::unix_now;

impl CacheStore {
    /// Adds `by` to the number at `key` and returns the new value; `None` where Laravel returns false
    /// (the database store with no entry, or a value that is not a number).
    pub async fn increment(&self, key: &str, by: i64) -> Result<Option<i64>, CacheStoreError> {
        let _guard = self.locks[stripe(key)].lock().await;
        match &self.backend {
            Backend::Redis { conn, prefix, .. } => {
                let physical = format!("{prefix}{key}");
                redis::incr_by(conn, &physical, by)
                    .await
                    .map(Some)
                    .map_err(|source| CacheStoreError::Redis {
                        op: "INCRBY",
                        key: physical,
                        source,
                    })
            }
            Backend::File { dir } => {
                let path = file::path(dir, key);
                let io = |op: &'static str| {
                    let path = path.display().to_string();
                    move |source| CacheStoreError::File { op, path, source }
                };
                let entry = file::read_entry(&path, unix_now()).map_err(io("read"))?;
                let (expiry, current) = match entry {
                    Ok(Some((expiry, raw))) => {
                        // PHP's unserialize() gives false on bad data, and (int) false is 0.
                        let current = php::unserialize(&raw).map_or(0, |v| value::int_cast(&v));
                        (expiry, current)
                    }
                    Ok(None) | Err(_) => (file::FOREVER, 0),
                };
                let new = current.saturating_add(by);
                let content = file::content(expiry, &php::serialize(&Value::Int(new)));
                file::write_atomically(&path, &content).map_err(|(op, source)| {
                    CacheStoreError::File {
                        op,
                        path: path.display().to_string(),
                        source,
                    }
                })?;
                Ok(Some(new))
            }
            Backend::Database {
                db, table, prefix, ..
            } => {
                let physical = format!("{prefix}{key}");
                let kind = db.kind();
                database::update_value(db, table, &physical, |stored| {
                    let raw = database::decode(kind, stored).ok()?;
                    let current = php::unserialize(&raw).ok()?;
                    if !value::is_numeric(&current) {
                        return None;
                    }
                    let new = value::int_cast(&current).saturating_add(by);
                    let stored = database::encode(kind, &php::serialize(&Value::Int(new)));
                    Some((stored, new))
                })
                .await
                .map_err(|source| self.sql_error("increment", &physical, source))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::Mutex;

    use super::*;

    fn file_store(dir: &std::path::Path) -> CacheStore {
        CacheStore {
            backend: Backend::File {
                dir: dir.join("framework/cache/data"),
            },
            locks: Arc::new(std::array::from_fn(|_| Mutex::new(()))),
        }
    }

    #[tokio::test]
    async fn the_file_store_keeps_the_entrys_expiry() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = file_store(tmp.path());
        let path = file::path(&tmp.path().join("framework/cache/data"), "n");
        assert_eq!(store.increment("n", 1).await.unwrap(), Some(1));
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"9999999999i:1;",
            "missing: for ever"
        );
        let expiry = unix_now() + 500;
        std::fs::write(&path, format!("{expiry}s:2:\"41\";")).unwrap();
        assert_eq!(store.increment("n", 1).await.unwrap(), Some(42));
        assert_eq!(
            std::fs::read(&path).unwrap(),
            format!("{expiry}i:42;").into_bytes()
        );
        std::fs::write(&path, format!("{expiry}garbage")).unwrap();
        assert_eq!(store.increment("n", 2).await.unwrap(), Some(2));
    }

    #[tokio::test]
    async fn the_database_store_updates_only_numbers_and_keeps_expiration() {
        let db = crate::laravel::database::Db::Sqlite(
            sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect("sqlite::memory:")
                .await
                .unwrap(),
        );
        let crate::laravel::database::Db::Sqlite(pool) = &db else {
            unreachable!()
        };
        sqlx::query("CREATE TABLE cache (key TEXT PRIMARY KEY, value TEXT, expiration INTEGER)")
            .execute(pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO cache VALUES ('p_n', 'i:0;', 123), ('p_s', 's:1:\"x\";', 123)")
            .execute(pool)
            .await
            .unwrap();
        let store = CacheStore {
            backend: Backend::Database {
                db: db.clone(),
                target: "sqlite::memory:".into(),
                table: "cache".into(),
                prefix: "p_".into(),
            },
            locks: Arc::new(std::array::from_fn(|_| Mutex::new(()))),
        };
        assert_eq!(store.increment("n", 1).await.unwrap(), Some(1));
        assert_eq!(store.increment("n", 1).await.unwrap(), Some(2));
        assert_eq!(store.increment("s", 1).await.unwrap(), None, "not numeric");
        assert_eq!(store.increment("missing", 1).await.unwrap(), None);
        let row: (String, i64) =
            sqlx::query_as("SELECT value, expiration FROM cache WHERE key = 'p_n'")
                .fetch_one(pool)
                .await
                .unwrap();
        assert_eq!(row, ("i:2;".to_owned(), 123));
    }
}
