//! Laravel's Redis queue protocol (`Illuminate\Queue\RedisQueue`), spoken from Rust so that PHP
//! producers, PHP workers and this worker can share the same queues.
//!
//! Per queue `q` the keys are `<prefix>queues:q` (ready list), `…:delayed` and `…:reserved`
//! (zsets scored by unix seconds) and `…:notify` (one `"1"` token per ready job). Like phpredis's
//! `OPT_PREFIX`, we prepend the connection prefix to every key ourselves, including EVAL KEYS and
//! BLPOP keys. Multi-step operations run as our own Lua scripts (`lua/*.lua`, EVALSHA with a
//! NOSCRIPT fallback) so they are atomic.
//!
//! This module moves bytes; it must not interpret payloads beyond what the scripts need
//! (`attempts`), decide retries, or write failed jobs. Reserved payloads are cjson re-encodings
//! and can never be rebuilt from the original, so callers must hand back the exact reserved bytes
//! that [`RedisQueue::pop`] returned.
//!
//! Redis Cluster (`REDIS_CLUSTER_NODES`): every script touches the keys of one queue, which share a
//! slot only if the queue name carries a `{hash tag}`, so on a cluster every operation refuses a
//! queue whose key has none ([`QueueError::NoHashTag`]); [`RedisQueue::handoff`] touches two queues
//! and needs both in one tag. BLPOP over queues in several slots waits on each slot at once.
//!
//! The counts and heads that the operator commands read are in [`super::redis_stats`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::{Script, Value};

use super::redis_config::{hash_tag, RedisConfig};
use super::redis_conn::RedisConn;
use super::redis_error::QueueError;
use super::redis_notify::NotifyWaiter;
use crate::util::clock::unix_now;

/// Bound on one non-blocking command or script; guards against a hung server.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest single BLPOP; longer waits return None early and the caller simply blocks again.
const MAX_BLOCK: Duration = Duration::from_secs(24 * 60 * 60);

/// A job taken from the ready list by [`RedisQueue::pop`], as Laravel's `RedisJob` holds it: the
/// original payload and the reserved copy. The worker sees it as a [`ReservedJob`](super::queue::ReservedJob).
#[derive(Clone, PartialEq, Eq)]
pub struct RedisJob {
    /// Queue name without prefix, e.g. `default`.
    pub queue: String,
    /// The payload exactly as it was in the ready list (Laravel's `getRawBody`).
    pub original: Vec<u8>,
    /// The member now in `:reserved`: pass these exact bytes to delete/release/handoff. For an
    /// invalid payload it equals `original`.
    pub reserved: Vec<u8>,
    /// `Some(reason)` when the payload could not be reserved as a job (not JSON, no numeric
    /// `attempts`). It is still in `:reserved`, so nothing is lost: record it, then delete it.
    pub invalid: Option<String>,
    /// The member's score: when the reservation runs out (UNIX seconds; a migration takes it back
    /// from that second on).
    pub reserved_until: i64,
}

impl fmt::Debug for RedisJob {
    // Payloads may hold personal data; show sizes only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisJob")
            .field("queue", &self.queue)
            .field("original_len", &self.original.len())
            .field("reserved_len", &self.reserved.len())
            .field("invalid", &self.invalid)
            .field("reserved_until", &self.reserved_until)
            .finish()
    }
}

pub(super) struct Scripts {
    pop: Script,
    release: Script,
    migrate: Script,
    push: Script,
    pub(super) size: Script,
    pub(super) clear: Script,
    handoff: Script,
    extend: Script,
}

impl Scripts {
    fn load() -> Scripts {
        Scripts {
            pop: Script::new(include_str!("lua/pop.lua")),
            release: Script::new(include_str!("lua/release.lua")),
            migrate: Script::new(include_str!("lua/migrate.lua")),
            push: Script::new(include_str!("lua/push.lua")),
            size: Script::new(include_str!("lua/size.lua")),
            clear: Script::new(include_str!("lua/clear.lua")),
            handoff: Script::new(include_str!("lua/handoff.lua")),
            extend: Script::new(include_str!("lua/extend.lua")),
        }
    }
}

/// A handle on Laravel's Redis queues behind one connection prefix. Cheap to clone: clones share
/// the reconnecting connection, the scripts and the pool of blocking connections.
#[derive(Clone)]
pub struct RedisQueue {
    pub(super) conn: RedisConn,
    cfg: Arc<RedisConfig>,
    prefix: Arc<str>,
    endpoint: Arc<str>,
    pub(super) scripts: Arc<Scripts>,
    /// Connections of their own for BLPOP, which would stall every other command on a shared one.
    notify: NotifyWaiter,
}

impl fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisQueue")
            .field("endpoint", &self.endpoint)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn secs_from_now(secs: u64) -> i64 {
    unix_now().saturating_add(i64::try_from(secs).unwrap_or(i64::MAX))
}

impl RedisQueue {
    /// Opens the shared connection (reconnecting on failure afterwards).
    pub async fn connect(cfg: &RedisConfig) -> Result<RedisQueue, QueueError> {
        let endpoint = cfg.masked_url();
        let connect_err = |source| QueueError::Connect {
            endpoint: endpoint.clone(),
            source,
        };
        let conn = RedisConn::open(cfg, RESPONSE_TIMEOUT)
            .await
            .map_err(connect_err)?;
        let cfg = Arc::new(cfg.clone());
        Ok(RedisQueue {
            conn,
            prefix: Arc::from(cfg.prefix.as_str()),
            endpoint: Arc::from(endpoint.as_str()),
            scripts: Arc::new(Scripts::load()),
            notify: NotifyWaiter::new(Arc::clone(&cfg)),
            cfg,
        })
    }

    /// The connection prefix put in front of every key.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The ready-list key of `queue`: prefix + `queues:` + queue.
    pub fn key(&self, queue: &str) -> String {
        [&self.prefix[..], "queues:", queue].concat()
    }

    /// True when connected to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.cfg.is_cluster()
    }

    /// Ok when `queue` can be used on this connection: always on a single server; on a cluster
    /// only when its key carries a `{hash tag}` (in the queue name, or in the prefix).
    pub fn check_queue(&self, queue: &str) -> Result<(), QueueError> {
        self.queue_key(queue).map(drop)
    }

    /// [`RedisQueue::key`], refused on a cluster when the queue's keys would not share a slot.
    pub(super) fn queue_key(&self, queue: &str) -> Result<String, QueueError> {
        self.queue_key_with(queue, "")
    }

    /// [`RedisQueue::queue_key`] followed by `suffix` (`:reserved`), built in one piece: this runs
    /// once per job.
    fn queue_key_with(&self, queue: &str, suffix: &str) -> Result<String, QueueError> {
        let key = [&self.prefix[..], "queues:", queue, suffix].concat();
        let base = &key[..key.len() - suffix.len()];
        if self.is_cluster() && hash_tag(base).is_none() {
            return Err(QueueError::NoHashTag {
                queue: queue.to_owned(),
                key: base.to_owned(),
            });
        }
        Ok(key)
    }

    /// Reserves up to `max` jobs from the head of `queue` until now + `retry_after`, bumping
    /// `attempts` in each reserved copy and consuming one notify token per job. FIFO order.
    ///
    /// Unlike Laravel's `pop`, this does not migrate due jobs first: call [`RedisQueue::migrate`]
    /// before it. Invalid payloads come back with [`RedisJob::invalid`] set (see `lua/pop.lua`).
    /// `max == 0` returns nothing without touching Redis.
    pub async fn pop(
        &self,
        queue: &str,
        retry_after: u64,
        max: usize,
    ) -> Result<Vec<RedisJob>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let key = self.queue_key(queue)?;
        let reserved_until = secs_from_now(retry_after);
        let reply: Vec<Value> = self
            .scripts
            .pop
            .key(&key)
            .key(format!("{key}:reserved"))
            .key(format!("{key}:notify"))
            .arg(reserved_until)
            .arg(max)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| QueueError::script("pop", &key, e))?;

        let bad = |detail: String| QueueError::Reply {
            op: "pop",
            key: key.clone(),
            detail,
        };
        if reply.len() % 3 != 0 {
            return Err(bad(format!("{} items, not a multiple of 3", reply.len())));
        }
        let mut jobs = Vec::with_capacity(reply.len() / 3);
        // The payloads are moved out of the reply, not copied: two ~KB buffers per job.
        let mut items = reply.into_iter().map(bytes);
        while let Some(original) = items.next() {
            let (Some(reserved), Some(reason)) = (items.next(), items.next()) else {
                return Err(bad("short triple".to_owned()));
            };
            let (Some(original), Some(reserved)) = (original, reserved) else {
                return Err(bad("a job without payload".to_owned()));
            };
            jobs.push(RedisJob {
                queue: queue.to_owned(),
                original,
                reserved,
                invalid: reason.map(|r| String::from_utf8_lossy(&r).into_owned()),
                reserved_until,
            });
        }
        Ok(jobs)
    }

    /// Removes a finished (or failed) job's reservation, like `RedisJob::delete`.
    /// False when it was no longer reserved (its reservation expired and it was re-queued).
    pub async fn delete_reserved(&self, queue: &str, reserved: &[u8]) -> Result<bool, QueueError> {
        let key = self.queue_key_with(queue, ":reserved")?;
        // Sized for the whole reserved payload at once: it is copied in one piece, not grown into.
        let removed: i64 = redis::Cmd::with_capacity(3, 4 + key.len() + reserved.len())
            .arg("ZREM")
            .arg(&key)
            .arg(reserved)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| QueueError::command("ZREM", &key, e))?;
        Ok(removed == 1)
    }

    /// Pushes a job's reservation out to `until` (UNIX seconds) so no migration hands it to another
    /// worker while we still hold it: the lease of a running job, or a failed job waiting for
    /// failed_jobs (`lua/extend.lua`; no PHP counterpart). Only the exact member `reserved` is
    /// touched and its score only moves forward. False when it was no longer reserved: its
    /// reservation ran out and another worker may have it now.
    pub async fn extend_reservation(
        &self,
        queue: &str,
        reserved: &[u8],
        until: i64,
    ) -> Result<bool, QueueError> {
        let key = format!("{}:reserved", self.queue_key(queue)?);
        let held: i64 = self
            .scripts
            .extend
            .key(&key)
            .arg(reserved)
            .arg(until)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| QueueError::script("extend", &key, e))?;
        Ok(held == 1)
    }

    /// Moves a reserved job to `:delayed`, due in `delay_secs`, like `RedisJob::release`. Even a
    /// zero delay goes through `:delayed` and needs a [`RedisQueue::migrate`] to become ready.
    /// False (and nothing added) when it was no longer reserved, so an expired, re-queued job is
    /// not duplicated.
    pub async fn release(
        &self,
        queue: &str,
        reserved: &[u8],
        delay_secs: u64,
    ) -> Result<bool, QueueError> {
        self.delay_reserved(queue, reserved, None, delay_secs).await
    }

    /// Moves a reserved job to `:delayed` as `original` (the payload as it was before the pop bumped
    /// its `attempts`), due in `delay_secs`: the job comes back without having used an attempt. The
    /// same atomic step as [`RedisQueue::release`]; false (nothing added) when it was no longer
    /// reserved.
    pub async fn hand_back(
        &self,
        queue: &str,
        reserved: &[u8],
        original: &[u8],
        delay_secs: u64,
    ) -> Result<bool, QueueError> {
        self.delay_reserved(queue, reserved, Some(original), delay_secs)
            .await
    }

    async fn delay_reserved(
        &self,
        queue: &str,
        reserved: &[u8],
        replacement: Option<&[u8]>,
        delay_secs: u64,
    ) -> Result<bool, QueueError> {
        let key = self.queue_key(queue)?;
        let mut call = self.scripts.release.key(format!("{key}:delayed"));
        call.key(format!("{key}:reserved"))
            .arg(reserved)
            .arg(secs_from_now(delay_secs));
        if let Some(payload) = replacement {
            call.arg(payload);
        }
        let moved: i64 = call
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| QueueError::script("release", &key, e))?;
        Ok(moved == 1)
    }

    /// Moves due jobs back to the ready list: first `:delayed`, then expired `:reserved`, each
    /// oldest first and at most `limit` per set (negative = all, Laravel's `migration_batch_size`).
    /// Returns how many were moved in total.
    pub async fn migrate(&self, queue: &str, limit: i64) -> Result<u64, QueueError> {
        let key = self.queue_key(queue)?;
        let limit = limit.max(-1);
        let now = unix_now();
        let mut moved = 0;
        for source in ["delayed", "reserved"] {
            let n: u64 = self
                .scripts
                .migrate
                .key(format!("{key}:{source}"))
                .key(&key)
                .key(format!("{key}:notify"))
                .arg(now)
                .arg(limit)
                .invoke_async(&mut self.conn.clone())
                .await
                .map_err(|e| QueueError::script("migrate", &format!("{key}:{source}"), e))?;
            moved += n;
        }
        Ok(moved)
    }

    /// Appends a payload to the ready list with a notify token, like `RedisQueue::pushRaw`.
    /// The payload must be valid JSON with `"attempts":0` for PHP workers to accept it.
    pub async fn push_raw(&self, queue: &str, payload: &[u8]) -> Result<(), QueueError> {
        let key = self.queue_key(queue)?;
        self.scripts
            .push
            .key(&key)
            .key(format!("{key}:notify"))
            .arg(payload)
            .invoke_async::<()>(&mut self.conn.clone())
            .await
            .map_err(|e| QueueError::script("push", &key, e))
    }

    /// Adds a payload to `:delayed`, due at `available_at` (unix seconds), like `laterRaw`.
    pub async fn later_raw(
        &self,
        queue: &str,
        payload: &[u8],
        available_at: i64,
    ) -> Result<(), QueueError> {
        let key = format!("{}:delayed", self.queue_key(queue)?);
        redis::cmd("ZADD")
            .arg(&key)
            .arg(available_at)
            .arg(payload)
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(|e| QueueError::command("ZADD", &key, e))
    }

    /// Atomically drops the reservation `reserved` from `from_queue` and appends `payload` (with
    /// a notify token) to `to_queue`: hands a job to other workers without consuming an attempt
    /// when `payload` is the original. False (nothing pushed) when it was no longer reserved.
    pub async fn handoff(
        &self,
        from_queue: &str,
        reserved: &[u8],
        to_queue: &str,
        payload: &[u8],
    ) -> Result<bool, QueueError> {
        let from = self.queue_key(from_queue)?;
        let to = self.queue_key(to_queue)?;
        if self.is_cluster() && hash_tag(&from) != hash_tag(&to) {
            return Err(QueueError::CrossSlot {
                from: from_queue.to_owned(),
                to: to_queue.to_owned(),
            });
        }
        let moved: i64 = self
            .scripts
            .handoff
            .key(format!("{from}:reserved"))
            .key(&to)
            .key(format!("{to}:notify"))
            .arg(reserved)
            .arg(payload)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| QueueError::script("handoff", &from, e))?;
        Ok(moved == 1)
    }

    /// Waits up to `timeout` for a notify token on any of `queues` (BLPOP, in priority order)
    /// and returns the first signalled queue, unprefixed, or None on timeout. Consumes the token.
    ///
    /// Runs on a dedicated connection so it never stalls other commands. A zero timeout is raised
    /// to 1 ms rather than meaning "forever" as in Redis; timeouts above a day are cut to a day.
    /// Cancel-safe in that dropping the future drops its connection; a token that arrives in
    /// that instant may be consumed unseen, which only costs a wake-up because tokens are hints
    /// (the worker always pops before blocking).
    ///
    /// On a cluster one BLPOP cannot span slots, so the queues are grouped by hash tag and each
    /// group waits on its own connection at once; the first to answer wins and the others are
    /// dropped. Priority is unaffected: the wake-up only tells the worker to pop again, and it
    /// pops its queues in order.
    pub async fn block_for_notify(
        &self,
        queues: &[String],
        timeout: Duration,
    ) -> Result<Option<String>, QueueError> {
        let timeout = timeout.clamp(Duration::from_millis(1), MAX_BLOCK);
        if queues.is_empty() {
            tokio::time::sleep(timeout).await;
            return Ok(None);
        }
        let mut keys: Vec<(String, String)> = Vec::with_capacity(queues.len());
        for q in queues {
            keys.push((q.clone(), format!("{}:notify", self.queue_key(q)?)));
        }
        self.notify.wait(keys, timeout).await
    }

    /// PING on the shared connection: Ok when Redis answers. For readiness checks (`/ready`);
    /// the caller bounds the wait, since a hung server only fails after the response timeout.
    pub async fn ping(&self) -> Result<(), QueueError> {
        redis::cmd("PING")
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(|e| QueueError::command("PING", &self.endpoint, e))
    }
}

/// The bytes of a bulk/simple string reply; None for nil or false.
fn bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        Value::VerbatimString { text, .. } => Some(text.into_bytes()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_embedded_and_distinct() {
        let s = Scripts::load();
        let hashes = [
            s.pop.get_hash(),
            s.release.get_hash(),
            s.migrate.get_hash(),
            s.push.get_hash(),
            s.size.get_hash(),
            s.clear.get_hash(),
            s.handoff.get_hash(),
            s.extend.get_hash(),
        ];
        let unique: std::collections::HashSet<_> = hashes.iter().collect();
        assert_eq!(unique.len(), hashes.len());
    }

    #[test]
    fn job_debug_hides_payload() {
        let p = RedisJob {
            queue: "q".into(),
            original: b"{\"phone\":\"+22500000000\"}".to_vec(),
            reserved: b"x".to_vec(),
            invalid: None,
            reserved_until: 0,
        };
        assert!(!format!("{p:?}").contains("2250"));
    }

    #[test]
    fn reply_bytes_treat_nil_and_false_as_absent() {
        assert_eq!(bytes(Value::Nil), None);
        assert_eq!(bytes(Value::Boolean(false)), None);
        assert_eq!(bytes(Value::BulkString(b"a".to_vec())), Some(b"a".to_vec()));
    }
}
