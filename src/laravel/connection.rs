//! Queue connections by name, as the app's `config/queue.php` declares them: which driver, which
//! table, the default queue and `retry_after` of each. `queue:work <connection>` and `defer-worker
//! work --connection NAME` pick one; the name is also what failed_jobs rows carry.
//!
//! The app's connections (docs/restrosaas.md §3.1): `redis` (REDIS_QUEUE, REDIS_QUEUE_RETRY_AFTER, 90),
//! `database` (table `jobs`, queue `default`, 90; DB_QUEUE_TABLE, DB_QUEUE and DB_QUEUE_RETRY_AFTER as
//! Laravel 11's skeleton names them), and `whatsapp` (30), `analytics` (120), `emails` (60), `cache`
//! (180), all on the `jobs` table with a queue of their own name. Pure: reads settings, connects nothing.

/// What a connection stores jobs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Driver {
    Redis,
    /// Laravel's `database` driver on the app's database (`DB_*`).
    Database {
        table: String,
    },
}

/// One resolved connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub name: String,
    pub driver: Driver,
    /// The queue worked when none is given; `from_env` says whether a setting chose it.
    pub queue: String,
    pub queue_from_env: bool,
    pub retry_after: u64,
    pub retry_after_from_env: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    #[error("queue connection {0:?} uses the {1} driver, which defer-worker does not work (it runs the redis and database drivers); pass --connection=redis or --connection=database")]
    Unsupported(String, &'static str),
    #[error("queue connection {0:?} is not one of the app's (redis, database, whatsapp, analytics, emails, cache)")]
    Unknown(String),
    #[error("{key}={value:?} is not a number of seconds")]
    BadNumber { key: &'static str, value: String },
}

/// The connection `queue:work` uses without an argument: QUEUE_CONNECTION when it names a queue
/// that workers can work, else `redis` (the app's `.env.example` says `sync`, which has no queue).
pub fn default_name(env: &dyn Fn(&str) -> Option<String>) -> String {
    match env("QUEUE_CONNECTION") {
        Some(c) if !matches!(c.as_str(), "sync" | "null" | "") => c,
        _ => "redis".to_owned(),
    }
}

/// Resolves `name` with the settings in `env` (Laravel's names).
pub fn resolve(
    name: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Connection, ConnectionError> {
    let number = |key: &'static str| -> Result<Option<u64>, ConnectionError> {
        env(key)
            .map(|v| {
                v.trim().parse().map_err(|_| ConnectionError::BadNumber {
                    key,
                    value: v.clone(),
                })
            })
            .transpose()
    };
    let database = |queue: &str, retry_after: u64| Connection {
        name: name.to_owned(),
        driver: Driver::Database {
            table: "jobs".to_owned(),
        },
        queue: queue.to_owned(),
        queue_from_env: false,
        retry_after,
        retry_after_from_env: false,
    };
    Ok(match name {
        "redis" => {
            let queue = env("REDIS_QUEUE");
            let retry_after = number("REDIS_QUEUE_RETRY_AFTER")?;
            Connection {
                name: name.to_owned(),
                driver: Driver::Redis,
                queue_from_env: queue.is_some(),
                queue: queue.unwrap_or_else(|| "default".to_owned()),
                retry_after_from_env: retry_after.is_some(),
                retry_after: retry_after.unwrap_or(90),
            }
        }
        "database" => {
            let queue = env("DB_QUEUE");
            let retry_after = number("DB_QUEUE_RETRY_AFTER")?;
            Connection {
                driver: Driver::Database {
                    table: env("DB_QUEUE_TABLE").unwrap_or_else(|| "jobs".to_owned()),
                },
                queue_from_env: queue.is_some(),
                queue: queue.unwrap_or_else(|| "default".to_owned()),
                retry_after_from_env: retry_after.is_some(),
                retry_after: retry_after.unwrap_or(90),
                ..database("default", 90)
            }
        }
        "whatsapp" => database("whatsapp", 30),
        "analytics" => database("analytics", 120),
        "emails" => database("emails", 60),
        "cache" => database("cache", 180),
        "sync" => return Err(ConnectionError::Unsupported(name.to_owned(), "sync")),
        "beanstalkd" => return Err(ConnectionError::Unsupported(name.to_owned(), "beanstalkd")),
        "sqs" => return Err(ConnectionError::Unsupported(name.to_owned(), "sqs")),
        _ => return Err(ConnectionError::Unknown(name.to_owned())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn the_apps_connections() {
        let none = env(&[]);
        let r = resolve("redis", &none).unwrap();
        assert_eq!(
            (r.driver, r.queue.as_str(), r.retry_after),
            (Driver::Redis, "default", 90)
        );
        let w = resolve("whatsapp", &none).unwrap();
        assert_eq!(
            (w.driver, w.queue.as_str(), w.retry_after),
            (
                Driver::Database {
                    table: "jobs".into()
                },
                "whatsapp",
                30
            )
        );
        assert_eq!(resolve("cache", &none).unwrap().retry_after, 180);
        let d = resolve(
            "database",
            &env(&[
                ("DB_QUEUE_TABLE", "queue_jobs"),
                ("DB_QUEUE_RETRY_AFTER", "45"),
            ]),
        )
        .unwrap();
        assert_eq!(
            d.driver,
            Driver::Database {
                table: "queue_jobs".into()
            }
        );
        assert_eq!((d.retry_after, d.retry_after_from_env), (45, true));
    }

    #[test]
    fn default_connection_follows_queue_connection_except_sync() {
        assert_eq!(default_name(&env(&[])), "redis");
        assert_eq!(default_name(&env(&[("QUEUE_CONNECTION", "sync")])), "redis");
        assert_eq!(
            default_name(&env(&[("QUEUE_CONNECTION", "database")])),
            "database"
        );
    }

    #[test]
    fn unsupported_and_unknown_are_named() {
        let none = env(&[]);
        let e = resolve("sqs", &none).unwrap_err().to_string();
        assert!(e.contains("sqs driver"), "{e}");
        let e = resolve("rabbit", &none).unwrap_err().to_string();
        assert!(e.contains("\"rabbit\""), "{e}");
        let e = resolve("redis", &env(&[("REDIS_QUEUE_RETRY_AFTER", "soon")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("REDIS_QUEUE_RETRY_AFTER"), "{e}");
    }
}
