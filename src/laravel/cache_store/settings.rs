//! Finding the app's cache store from Laravel-named settings (see the parent module's doc for the
//! variables and their defaults), and the Laravel line whose key details apply. No I/O beyond opening the
//! store's connection.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::Mutex;

use super::{redis, Backend, CacheStore, CacheStoreError};
use crate::laravel::database::{Db, DbConfig};
use crate::laravel::redis_config::RedisConfig;
use crate::laravel::slug::laravel_slug;

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

impl CacheStore {
    /// The app's default store (see the module doc), from Laravel-named settings looked up through `get`
    /// (values after Laravel's `env()` conversion, as `config::Settings` hands them over). `None` for the
    /// `array` driver, which holds nothing another process can see: with it PHP's workers never see a
    /// restart either. (`CACHE_DRIVER=null` is Laravel's `env()` null, i.e. the default `file` store.)
    pub async fn from_lookup(
        get: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<CacheStore>, CacheStoreError> {
        let env = get;
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
        Ok(Some(CacheStore {
            backend,
            locks: Arc::new(std::array::from_fn(|_| Mutex::new(()))),
        }))
    }

    /// A Redis store: `key_prefix` is everything before the logical key (`<redis prefix><cache prefix>:`).
    async fn redis(cfg: &RedisConfig, key_prefix: &str) -> Result<Backend, CacheStoreError> {
        let endpoint = cfg.masked_url();
        let connect_err = |source| CacheStoreError::RedisConnect {
            endpoint: endpoint.clone(),
            source,
        };
        let client = ::redis::Client::open(cfg.url.as_str()).map_err(connect_err)?;
        let conn = redis::connect(&client).await.map_err(connect_err)?;
        Ok(Backend::Redis {
            conn,
            client,
            txn: Arc::new(Mutex::new(None)),
            endpoint,
            prefix: key_prefix.to_owned(),
        })
    }
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
        // Values arrive through Laravel's env() conversion, applied once by the settings.
        move |k| map.get(k).and_then(|v| crate::config::laravel_env(v))
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
}
