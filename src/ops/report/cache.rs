//! The report's cache part: which store and prefix the app's cache uses (the restart signal, the
//! analytics and cache-warming actions), where `queue:restart` leaves its signal, and the time zone.

use std::path::Path;

use sha1::{Digest, Sha1};

use super::model::Derivation;
use crate::config::catalogue::CACHE;
use crate::laravel::cache_store::LaravelLine;
use crate::laravel::redis_config::RedisConfig;
use crate::laravel::slug::laravel_slug;

const RESTART: &str = "illuminate:queue:restart";

/// Cache store of the restart signal (docs/laravel-queue.md §8.1).
pub(super) fn derive(d: &mut Derivation<'_>) {
    let settings = d.settings;
    let lookup = settings.lookup();
    let line = d
        .env("DEFER_WORKER_LARAVEL")
        .and_then(|v| LaravelLine::parse(&v))
        .unwrap_or(LaravelLine::V8To10);
    let (first, second) = match line {
        LaravelLine::V8To10 => ("CACHE_DRIVER", "CACHE_STORE"),
        LaravelLine::V11Plus => ("CACHE_STORE", "CACHE_DRIVER"),
    };
    let (driver, driver_from) = match (d.env(first), d.env(second)) {
        (Some(v), _) => (v, first),
        (None, Some(v)) => (v, second),
        (None, None) => ("file".to_owned(), "the default"),
    };
    let (prefix, prefix_from) = match d.env("CACHE_PREFIX") {
        Some(p) => (p, "CACHE_PREFIX"),
        None => {
            let suffix = match line {
                LaravelLine::V8To10 => "_cache",
                LaravelLine::V11Plus => "_cache_",
            };
            let app_name = d.env("APP_NAME").unwrap_or_else(|| "laravel".to_owned());
            (
                format!("{}{suffix}", laravel_slug(&app_name, '_')),
                "APP_NAME",
            )
        }
    };
    let redis = RedisConfig::from_env(&lookup);
    let queue_on_cluster = redis.as_ref().is_ok_and(|c| c.is_cluster());
    if queue_on_cluster && driver.eq_ignore_ascii_case("redis") {
        d.note(format!(
            "{driver_from}=redis with the queue on Redis Cluster: the redis cache store (restart \
             signal, cache actions) still connects to the single server REDIS_HOST/REDIS_PORT, \
             database REDIS_CACHE_DB; point those at a standalone Redis or use the file or database store"
        ));
    }
    d.row(CACHE, "cache.store", driver.clone(), driver_from);
    d.row(CACHE, "cache.prefix", prefix.clone(), prefix_from);
    let restart = match driver.to_ascii_lowercase().as_str() {
        "file" => {
            let storage = d
                .env("APP_STORAGE_PATH")
                .or_else(|| d.env("LARAVEL_STORAGE_PATH"))
                .unwrap_or_else(|| "storage".to_owned());
            let hash: String = Sha1::digest(RESTART.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!(
                "{}",
                Path::new(&storage)
                    .join("framework/cache/data")
                    .join(&hash[0..2])
                    .join(&hash[2..4])
                    .join(&hash)
                    .display()
            )
        }
        "redis" => {
            let redis_prefix = redis.map(|c| c.prefix).unwrap_or_default();
            let sep = if line == LaravelLine::V8To10 && !prefix.is_empty() {
                ":"
            } else {
                ""
            };
            format!(
                "{redis_prefix}{prefix}{sep}{RESTART} on Redis database {}",
                d.env_or("REDIS_CACHE_DB", "1")
            )
        }
        "database" => format!(
            "row {prefix}{RESTART} of table {}",
            d.env_or("DB_CACHE_TABLE", "cache")
        ),
        "array" => {
            d.note(format!(
                "{driver_from}=array: queue:restart cannot reach any worker (the array store is per process)"
            ));
            "nowhere (array store)".to_owned()
        }
        other => format!("{other} store (not readable by defer-worker)"),
    };
    d.row(
        CACHE,
        "cache.restart_signal",
        restart,
        "the cache store and prefix",
    );

    if let Some(tz) = d.env("APP_TIMEZONE").filter(|tz| tz != "UTC") {
        d.note(format!(
            "APP_TIMEZONE={tz:?}: defer-worker writes failed_at in this zone, while the app's config/app.php \
             hard-codes UTC"
        ));
    }
}
