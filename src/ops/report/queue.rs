//! The report's queue part: the Redis connection, key prefix and queue key, Redis Cluster's hash tags,
//! `QUEUE_CONNECTION`, and where failed_jobs is written.

use std::path::Path;

use super::check::redis_problem;
use super::model::Derivation;
use crate::config::catalogue::{DB, REDIS};
use crate::laravel::db_config::DbConfig;
use crate::laravel::redis_config::{hash_tag, RedisConfig};

pub(super) fn derive(d: &mut Derivation<'_>, embedded_failed_db: &Path) {
    let settings = d.settings;
    let lookup = settings.lookup();
    match RedisConfig::from_env(&lookup) {
        Ok(cfg) => {
            let from = if d.env("REDIS_PREFIX").is_some() {
                "REDIS_PREFIX"
            } else {
                "APP_NAME"
            };
            d.row(
                REDIS,
                "redis.url",
                cfg.masked_url(),
                "REDIS_URL, REDIS_HOST…",
            );
            d.row(REDIS, "redis.prefix", cfg.prefix.clone(), from);
            let cluster = if cfg.is_cluster() {
                format!("yes, {} seed node(s)", cfg.cluster_nodes.len())
            } else {
                "no (single server)".to_owned()
            };
            d.row(
                REDIS,
                "redis.cluster",
                cluster,
                "REDIS_CLUSTER_NODES, REDIS_CLUSTER",
            );
            let queue = d.env_or("REDIS_QUEUE", "default");
            let queue_key = format!("{}queues:{queue}", cfg.prefix);
            if cfg.is_cluster() && hash_tag(&queue_key).is_none() {
                d.problem(
                    "REDIS_QUEUE",
                    format!(
                        "on Redis Cluster every queue name needs a {{hash tag}} so its keys share a slot: \
                         REDIS_QUEUE={queue:?} has none; use e.g. {{{queue}}} in the app and in work --queue"
                    ),
                );
            }
            d.row(
                REDIS,
                "redis.queue_key",
                queue_key,
                "the prefix and REDIS_QUEUE",
            );
        }
        Err(err) => d.report.problems.push(redis_problem(settings, &err)),
    }
    let connection = d.env_or("QUEUE_CONNECTION", "sync");
    if connection != "redis" {
        d.note(format!(
            "QUEUE_CONNECTION={connection:?}: the app does not push jobs to Redis, so no worker (PHP or this one) \
             sees them; set QUEUE_CONNECTION=redis in the app"
        ));
    }

    match DbConfig::from_env(&lookup, embedded_failed_db) {
        Ok(cfg) => {
            let what = if cfg.is_embedded() {
                format!("{} (embedded: no DB_* setting)", cfg.masked_url())
            } else {
                cfg.masked_url().to_owned()
            };
            d.row(DB, "failed_jobs.database", what, "DB_CONNECTION, DB_*");
            d.row(
                DB,
                "failed_jobs.table",
                cfg.table.clone(),
                "Laravel's queue.failed.table",
            );
        }
        Err(err) => d.problem(
            db_error_key(&err.to_string()),
            format!("invalid database settings for failed_jobs: {err}"),
        ),
    }
    let failed_driver = d.env_or("QUEUE_FAILED_DRIVER", "database-uuids");
    if failed_driver != "database-uuids" {
        d.note(format!(
            "QUEUE_FAILED_DRIVER={failed_driver:?}: defer-worker writes failed jobs as database-uuids does"
        ));
    }
}

/// The variable a `DbConfigError` message is about.
fn db_error_key(message: &str) -> &'static str {
    [
        "DATABASE_URL",
        "DB_URL",
        "DB_PORT",
        "DB_DATABASE",
        "DB_CONNECTION",
    ]
    .into_iter()
    .find(|k| message.contains(k))
    .unwrap_or("DB_CONNECTION")
}
