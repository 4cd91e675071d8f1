//! The app's cache store, as Laravel 8/10 (and 11+) read and write it: the restart signal that
//! `php artisan queue:restart` writes (`illuminate:queue:restart`) and every worker polls, and the keys the
//! actions maintain (`realtime_metrics_{vendor}`, the dashboard and `vendor_{id}_*` keys): `get`, `put`
//! with a TTL, `many`, `forever`, `forget`, `forget_many`, an atomic read-modify-write `update`, Laravel's own
//! `increment` (submodule `increment`), the maxExceptions counter `job-exceptions:<uuid>` (submodule
//! `exceptions`) and the queue pause flags `illuminate:queue:paused:{connection}:{queue}` (submodule
//! `pause`).
//!
//! Laravel keeps all of them in whatever store `CACHE_DRIVER` (8/10) or `CACHE_STORE` (11+) names, so the
//! bytes must match Laravel's own stores exactly (docs/laravel-queue.md §8.1, docs/restrosaas.md §6.4):
//! - `redis` (submodule `redis`): key `<REDIS_PREFIX><CACHE_PREFIX>:<key>` on the `cache` connection
//!   (`REDIS_CACHE_DB`, default 1); Laravel 8/10 put the `:` after a non-empty cache prefix, 11+ do not.
//!   `put` is `SETEX` with at least 1 s, `forever` is `SET`. PHP numbers and numeric strings are stored
//!   raw (`"1712345678"`, floats as PHP's `(string)` prints them) and read back as strings, as PHP does;
//!   anything else is `serialize()`d.
//! - `file` (submodule `file`): `<storage>/framework/cache/data/<sha1[0:2]>/<sha1[2:4]>/<sha1(key)>` (no prefix),
//!   content = a 10-digit expiry (`now + ttl`; `9999999999` for `forever`) followed by `serialize(value)`.
//! - `database` (submodule `database`): table `cache(key, value, expiration)`, key = `<CACHE_PREFIX><key>` (no
//!   separator), value `serialize()`d (base64 on PostgreSQL when it holds a NUL), `forever` = now + 315360000 s.
//!
//! TTLs follow `Illuminate\Cache\Repository::put`: a TTL of 0 or less forgets the key. An expired entry
//! reads as absent (Laravel also deletes it on that read; we leave that to PHP).
//!
//! Settings, under Laravel's names: `CACHE_DRIVER` / `CACHE_STORE` (default `file`, as in the app),
//! `CACHE_PREFIX` (default `slug(APP_NAME, '_')` + `_cache`, the app's `config/cache.php`; `_cache_` for 11+),
//! `REDIS_*` + `REDIS_CACHE_DB`, `DB_*` / `DATABASE_URL` + `DB_CACHE_TABLE` (default `cache`), and for the
//! file store the app's storage directory: `APP_STORAGE_PATH` (ours), else `LARAVEL_STORAGE_PATH` (Laravel
//! 10+), else `./storage` (run from the app's base directory). `DEFER_WORKER_LARAVEL` (8–13, default 10)
//! picks the version-dependent details (Redis key separator, default prefix, which driver variable wins).
//!
//! Concurrency: [`CacheStore::update`] holds an in-process lock per key (striped) for every driver, and on
//! Redis runs a `WATCH`/`MULTI`/`EXEC` transaction, so concurrent jobs of this process never lose an update
//! and, on Redis, neither do other processes. On the file and database stores another process (PHP, or a
//! second defer-worker) writing the same key between our read and write wins, exactly as with PHP's own
//! `Cache::get` + `Cache::put`, which take no lock.
//!
//! This is not a general cache client beyond those operations (no tags, no locks of
//! Laravel's), and it must not log or show a store's password or a cached value above debug level.

mod database;
mod error;
mod exceptions;
mod file;
mod increment;
mod pause;
mod redis;
mod settings;
mod store;
mod value;

pub use error::CacheStoreError;
pub use exceptions::JOB_EXCEPTIONS_PREFIX;
pub use pause::{paused_key, ALL_PAUSED_KEY, PAUSED_PREFIX};
pub use settings::LaravelLine;
pub use store::{CacheStore, RESTART_KEY};

/// For `settings`, which builds a [`CacheStore`] on one of them.
use store::Backend;
