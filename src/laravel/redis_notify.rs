//! Waiting for pushes on Redis: BLPOP on the `:notify` lists of a worker's queues, on connections of
//! its own (a blocked connection would stall every other command on a shared one), kept in a small
//! pool for reuse. On a cluster one BLPOP cannot span slots, so the keys are grouped by hash tag and
//! each group waits on its own connection at once.
//!
//! This module only waits. It must not run any command but BLPOP, nor build key names: it gets
//! (queue, notify key) pairs from [`RedisQueue`](super::redis_queue::RedisQueue), which checks them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::RedisError;

use super::redis_config::{hash_tag, RedisConfig};
use super::redis_conn::RedisConn;
use super::redis_error::QueueError;

/// Extra time granted to a BLPOP beyond its own timeout before the connection is presumed dead.
const BLOCK_GRACE: Duration = Duration::from_secs(5);
/// Idle blocking connections kept for reuse.
const MAX_IDLE_BLOCKING: usize = 8;

/// The pool of blocking connections of one [`RedisQueue`](super::redis_queue::RedisQueue). Cheap to
/// clone: clones share the pool.
#[derive(Clone)]
pub(super) struct NotifyWaiter {
    cfg: Arc<RedisConfig>,
    /// Idle connections for BLPOP.
    idle: Arc<Mutex<Vec<RedisConn>>>,
}

impl NotifyWaiter {
    pub(super) fn new(cfg: Arc<RedisConfig>) -> NotifyWaiter {
        NotifyWaiter {
            cfg,
            idle: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Waits up to `timeout` for a token on any of `keys` (queue, notify key), in priority order,
    /// and returns the signalled queue, or None on timeout. `keys` must not be empty.
    ///
    /// On a cluster the first group to answer wins and the others are dropped. Priority is
    /// unaffected: the wake-up only tells the worker to pop again, and it pops its queues in order.
    pub(super) async fn wait(
        &self,
        keys: Vec<(String, String)>,
        timeout: Duration,
    ) -> Result<Option<String>, QueueError> {
        if !self.cfg.is_cluster() {
            return self.blpop(&keys, timeout).await;
        }
        let mut groups: Vec<Vec<(String, String)>> = Vec::new();
        for (queue, key) in keys {
            let tag = hash_tag(&key).map(str::to_owned);
            match groups
                .iter_mut()
                .find(|g| g.first().and_then(|(_, k)| hash_tag(k)) == tag.as_deref())
            {
                Some(group) => group.push((queue, key)),
                None => groups.push(vec![(queue, key)]),
            }
        }
        if groups.len() == 1 {
            return self.blpop(&groups[0], timeout).await;
        }
        let waits = groups
            .iter()
            .map(|group| Box::pin(self.blpop(group, timeout)));
        // The first group to return a token (or an error) decides; a timeout of one group is
        // the timeout of all, since they all wait equally long.
        let (first, _, rest) = futures::future::select_all(waits).await;
        match first {
            Ok(Some(queue)) => Ok(Some(queue)),
            Err(e) => Err(e),
            Ok(None) => {
                for result in futures::future::join_all(rest).await {
                    if let Some(queue) = result? {
                        return Ok(Some(queue));
                    }
                }
                Ok(None)
            }
        }
    }

    /// One BLPOP over `keys` (queue, notify key), all in one slot on a cluster.
    async fn blpop(
        &self,
        keys: &[(String, String)],
        timeout: Duration,
    ) -> Result<Option<String>, QueueError> {
        let first_key = keys.first().map(|(_, k)| k.clone()).unwrap_or_default();
        let secs = timeout.as_secs_f64();

        let mut conn = self.blocking_connection(&first_key).await?;
        let mut cmd = redis::cmd("BLPOP");
        for (_, key) in keys {
            cmd.arg(key);
        }
        cmd.arg(format!("{secs:.3}"));
        let reply = tokio::time::timeout(
            timeout + BLOCK_GRACE,
            cmd.query_async::<Option<(Vec<u8>, Vec<u8>)>>(&mut conn),
        )
        .await;
        let reply = match reply {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => return Err(QueueError::command("BLPOP", &first_key, e)),
            Err(_elapsed) => {
                let source = RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "BLPOP did not return within its timeout",
                ));
                return Err(QueueError::Connection {
                    op: "BLPOP",
                    key: first_key,
                    source,
                });
            }
        };
        self.return_blocking_connection(conn);

        let Some((signalled, _token)) = reply else {
            return Ok(None);
        };
        match keys
            .iter()
            .find(|(_, k)| k.as_bytes() == signalled.as_slice())
        {
            Some((queue, _)) => Ok(Some(queue.clone())),
            None => Err(QueueError::Reply {
                op: "BLPOP",
                key: first_key,
                detail: format!(
                    "returned key {:?} that was not asked for",
                    String::from_utf8_lossy(&signalled)
                ),
            }),
        }
    }

    async fn blocking_connection(&self, key: &str) -> Result<RedisConn, QueueError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        if let Some(conn) = idle {
            return Ok(conn);
        }
        // No response timeout here: BLPOP legitimately waits; the caller bounds it instead.
        RedisConn::open_blocking(&self.cfg)
            .await
            .map_err(|e| QueueError::Connection {
                op: "BLPOP connect",
                key: key.to_owned(),
                source: e,
            })
    }

    fn return_blocking_connection(&self, conn: RedisConn) {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < MAX_IDLE_BLOCKING {
            idle.push(conn);
        }
    }
}
