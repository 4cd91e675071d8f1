//! [`FleetStore`]: the connection to the app's Redis the fleet writes to, and [`Keys`], where.
//!
//! Every key is `<REDIS_PREFIX>{defer_worker}:…`. The `{defer_worker}` hash tag puts them all in one
//! Redis Cluster slot (or the prefix's own tag does, when the prefix carries one), so a beat's
//! pipeline and a reader's MGET never cross slots.
//!
//! This module only connects and names keys.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::RedisError;

use crate::laravel::redis_config::RedisConfig;
use crate::laravel::redis_conn::RedisConn;

/// Longest wait for one answer: a beat or a read is small.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The fleet's Redis could not be reached or answered unexpectedly.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("cannot connect to Redis at {endpoint} for the fleet registry: {source}")]
    Connect {
        endpoint: String,
        #[source]
        source: RedisError,
    },
    /// A command failed; `key` is the key (or key pattern) it was about.
    #[error("fleet {op} on {key} failed: {source}")]
    Command {
        op: &'static str,
        key: String,
        #[source]
        source: RedisError,
    },
}

/// The fleet's key names under one connection prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    /// `<prefix>{defer_worker}:`
    base: String,
}

impl Keys {
    /// The keys under the app's Redis `prefix` (e.g. `restrosaas_database_`).
    pub fn new(prefix: &str) -> Keys {
        Keys {
            base: format!("{prefix}{{defer_worker}}:"),
        }
    }

    /// The sorted set of worker ids, scored by their last beat (unix seconds).
    pub fn workers(&self) -> String {
        format!("{}workers", self.base)
    }

    /// One worker's announcement (JSON), expiring [`super::EXPIRY`] after its last beat.
    pub fn worker(&self, id: &str) -> String {
        format!("{}workers:{id}", self.base)
    }

    /// The minute bucket starting at unix second `start` (a multiple of 60).
    pub fn minute(&self, start: i64) -> String {
        format!("{}history:m:{start}", self.base)
    }

    /// The hour bucket starting at unix second `start` (a multiple of 3600).
    pub fn hour(&self, start: i64) -> String {
        format!("{}history:h:{start}", self.base)
    }
}

/// The fleet's Redis: the app's (`REDIS_*`, its prefix), single server or cluster. Cheap to clone.
#[derive(Clone)]
pub struct FleetStore {
    pub(super) conn: RedisConn,
    pub(super) keys: Arc<Keys>,
    endpoint: Arc<str>,
}

impl fmt::Debug for FleetStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetStore")
            .field("endpoint", &self.endpoint)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl FleetStore {
    /// Connects to the Redis `cfg` describes; the keys go under its prefix.
    pub async fn connect(cfg: &RedisConfig) -> Result<FleetStore, FleetError> {
        let endpoint = cfg.masked_url();
        let conn = RedisConn::open(cfg, RESPONSE_TIMEOUT)
            .await
            .map_err(|source| FleetError::Connect {
                endpoint: endpoint.clone(),
                source,
            })?;
        Ok(FleetStore {
            conn,
            keys: Arc::new(Keys::new(&cfg.prefix)),
            endpoint: Arc::from(endpoint),
        })
    }

    /// The key layout.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The Redis endpoint, password masked, for logs.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::laravel::redis_config::hash_tag;

    #[test]
    fn every_key_shares_one_hash_tag() {
        let k = Keys::new("restrosaas_database_");
        assert_eq!(k.workers(), "restrosaas_database_{defer_worker}:workers");
        assert_eq!(
            k.worker("h:1:ab"),
            "restrosaas_database_{defer_worker}:workers:h:1:ab"
        );
        for key in [k.workers(), k.worker("x"), k.minute(60), k.hour(3600)] {
            assert_eq!(hash_tag(&key), Some("defer_worker"), "{key}");
        }
        // A prefix with its own tag wins, as Redis takes the first {…}: still one slot for all.
        let tagged = Keys::new("{app}_");
        assert_eq!(hash_tag(&tagged.minute(60)), Some("app"));
        assert_eq!(hash_tag(&tagged.workers()), Some("app"));
    }
}
