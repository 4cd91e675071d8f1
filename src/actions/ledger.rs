//! The idempotency ledger: which steps of a job already had their effect outside (a mail accepted by the
//! SMTP server, a WhatsApp message accepted by Meta), so that a retry of the job does only what is left.
//!
//! One Redis set per job, `<REDIS_PREFIX>defer_worker:sent:<job uuid>`, holding step names
//! (`email:customer`, `email:vendor`, …), expiring 7 days after its last write. The job's uuid survives
//! Laravel's release (`attempts` changes, the uuid does not) and `queue:retry` / `failed retry`, so a job
//! retried from failed_jobs within the TTL also skips what was already done.
//!
//! Delivery stays **at least once**, never exactly once: a step is marked only after the far side
//! accepted it, so a crash (or a Redis outage) between the SMTP server's `250 OK` and [`Ledger::mark`]
//! means that step runs again on the next attempt. What the ledger removes is the common case: one
//! recipient failing and the retry resending to the others.
//!
//! This module knows nothing of queues or actions' payloads: it stores opaque step names under a uuid.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::RedisError;

use crate::actions::ActionError;
use crate::laravel::redis_config::RedisConfig;
use crate::laravel::redis_conn::RedisConn;

/// How long a job's record is kept after its last step: longer than any sane retry schedule.
pub const LEDGER_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// The ledger could not be read or written. Retrying later may succeed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot connect to Redis at {endpoint} for the sent-ledger: {source}")]
    Connect {
        endpoint: String,
        #[source]
        source: RedisError,
    },
    #[error("Redis sent-ledger {op} failed: {source}")]
    Command {
        op: &'static str,
        #[source]
        source: RedisError,
    },
}

impl From<LedgerError> for ActionError {
    fn from(e: LedgerError) -> Self {
        ActionError::Retry {
            message: e.to_string(),
            after: None,
        }
    }
}

/// Steps already done per job, in Redis. Cheap to clone (one shared reconnecting connection).
#[derive(Clone)]
pub struct Ledger {
    conn: RedisConn,
    prefix: Arc<str>,
    ttl: Duration,
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger")
            .field("prefix", &self.prefix)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Ledger {
    /// Opens its own reconnecting connection to the queue's Redis (`cfg`, the same `REDIS_*` settings
    /// and prefix as the queue).
    pub async fn connect(cfg: &RedisConfig) -> Result<Ledger, LedgerError> {
        let endpoint = cfg.masked_url();
        let connect_err = |source| LedgerError::Connect {
            endpoint: endpoint.clone(),
            source,
        };
        let conn = RedisConn::open(cfg, RESPONSE_TIMEOUT)
            .await
            .map_err(connect_err)?;
        Ok(Self::new(conn, &cfg.prefix))
    }

    /// On an existing connection (a `ConnectionManager` or a [`RedisConn`]); `prefix` is the Redis
    /// key prefix (`REDIS_PREFIX`).
    pub fn new(conn: impl Into<RedisConn>, prefix: &str) -> Ledger {
        Ledger {
            conn: conn.into(),
            prefix: Arc::from(prefix),
            ttl: LEDGER_TTL,
        }
    }

    /// The same ledger with another expiry (tests).
    pub fn with_ttl(mut self, ttl: Duration) -> Ledger {
        self.ttl = ttl;
        self
    }

    /// The Redis key holding `uuid`'s done steps.
    pub fn key(&self, uuid: &str) -> String {
        format!("{}defer_worker:sent:{uuid}", self.prefix)
    }

    /// Whether `step` of job `uuid` was marked done.
    pub async fn done(&self, uuid: &str, step: &str) -> Result<bool, LedgerError> {
        let mut conn = self.conn.clone();
        redis::cmd("SISMEMBER")
            .arg(self.key(uuid))
            .arg(step)
            .query_async::<bool>(&mut conn)
            .await
            .map_err(|source| LedgerError::Command {
                op: "SISMEMBER",
                source,
            })
    }

    /// Records `step` of job `uuid` as done and (re)starts the record's expiry, atomically.
    pub async fn mark(&self, uuid: &str, step: &str) -> Result<(), LedgerError> {
        let key = self.key(uuid);
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .cmd("SADD")
            .arg(&key)
            .arg(step)
            .ignore()
            .cmd("EXPIRE")
            .arg(&key)
            .arg(self.ttl.as_secs().max(1))
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(|source| LedgerError::Command { op: "SADD", source })
    }

    /// Every step recorded for `uuid`, sorted (for `failed show`-like tooling and tests).
    pub async fn steps(&self, uuid: &str) -> Result<Vec<String>, LedgerError> {
        let mut conn = self.conn.clone();
        let mut steps: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.key(uuid))
            .query_async(&mut conn)
            .await
            .map_err(|source| LedgerError::Command {
                op: "SMEMBERS",
                source,
            })?;
        steps.sort();
        Ok(steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_errors_are_retries_without_secrets() {
        let err = LedgerError::Command {
            op: "SADD",
            source: RedisError::from((redis::ErrorKind::IoError, "connection reset")),
        };
        match ActionError::from(err) {
            ActionError::Retry { message, after } => {
                assert!(message.contains("sent-ledger SADD"), "{message}");
                assert_eq!(after, None);
            }
            other => panic!("{other:?}"),
        }
    }
}
