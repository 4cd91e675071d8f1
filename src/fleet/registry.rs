//! The registry: who is working. Each `work` process writes its [`WorkerInfo`] as JSON under its own
//! key with an [`EXPIRY`] of three beats, and its id into an index sorted by last beat, so a process
//! that dies (`kill -9`, a lost host) drops out by itself within [`EXPIRY`], and a clean stop removes
//! itself at once. Readers take the index's live ids and MGET their keys: no SCAN, one slot.
//!
//! It must not run the beat (that is `beat`) nor count jobs: jobs in flight are read from
//! [`Metrics`].

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::store::{FleetError, FleetStore, Keys};
use crate::metrics::Metrics;
use crate::util::clock;

/// How long an announcement outlives its last beat: three beats, so one slow beat does not drop a
/// live worker.
pub const EXPIRY: Duration = Duration::from_secs(15);

/// One `work` process as it last announced itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// `<host>:<pid>:<start in ms, hex>`: unique even when a pid is reused.
    pub id: String,
    pub host: String,
    pub pid: u32,
    /// defer-worker's version and commit.
    pub version: String,
    /// The queue connection's name (`redis`, `whatsapp`…) and driver (`redis`, `database`).
    pub connection: String,
    pub driver: String,
    /// Queues worked, highest priority first.
    pub queues: Vec<String>,
    /// Jobs it may run at once.
    pub concurrency: usize,
    /// Jobs running at the last beat.
    pub in_flight: i64,
    /// Its queues that are paused (`defer-worker pause`, Laravel's `queue:pause`), as the worker
    /// last read the flags.
    pub paused: Vec<String>,
    /// The whole worker is paused (SIGUSR2) until SIGCONT.
    #[serde(default)]
    pub worker_paused: bool,
    /// Unix seconds.
    pub started_at: i64,
    pub last_beat: i64,
}

/// What does not change while the process runs.
#[derive(Debug, Clone)]
pub struct Identity {
    pub connection: String,
    pub driver: String,
    pub queues: Vec<String>,
    pub concurrency: usize,
}

/// This process's announcement: its identity, and the metrics it reads jobs in flight and the pause
/// state from.
#[derive(Debug)]
pub struct Registry {
    id: String,
    host: String,
    started_at: i64,
    identity: Identity,
    metrics: Arc<Metrics>,
}

impl Registry {
    /// This process, started now.
    pub fn new(identity: Identity, metrics: Arc<Metrics>) -> Registry {
        let host = hostname::get()
            .ok()
            .and_then(|h| h.into_string().ok())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown".to_owned());
        let since = clock::since_epoch();
        Registry {
            id: format!("{host}:{}:{:x}", std::process::id(), since.as_millis()),
            host,
            started_at: since.as_secs() as i64,
            identity,
            metrics,
        }
    }

    /// This process's id in the registry.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The announcement as of unix second `now`.
    pub fn info(&self, now: i64) -> WorkerInfo {
        let paused = self.metrics.paused().unwrap_or_default();
        WorkerInfo {
            id: self.id.clone(),
            host: self.host.clone(),
            pid: std::process::id(),
            version: concat!(
                env!("CARGO_PKG_VERSION"),
                " (",
                env!("DEFER_WORKER_COMMIT"),
                ")"
            )
            .to_owned(),
            connection: self.identity.connection.clone(),
            driver: self.identity.driver.clone(),
            queues: self.identity.queues.clone(),
            concurrency: self.identity.concurrency,
            in_flight: self.metrics.in_flight().max(0),
            paused: paused
                .paused_queues()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            worker_paused: paused.worker,
            started_at: self.started_at,
            last_beat: now,
        }
    }

    /// Adds the announcement to `pipe`: the key with its expiry, the index entry, and the removal of
    /// index entries whose worker stopped beating.
    pub(super) fn announce(&self, pipe: &mut redis::Pipeline, keys: &Keys, now: i64) {
        let json = serde_json::to_string(&self.info(now)).expect("WorkerInfo serializes");
        let ttl = EXPIRY.as_secs();
        pipe.set_ex(keys.worker(&self.id), json, ttl)
            .ignore()
            .zadd(keys.workers(), &self.id, now)
            .ignore();
        forget_stale(pipe, keys, now);
        pipe.expire(keys.workers(), ttl as i64).ignore();
    }

    /// Adds this process's removal to `pipe` (a clean stop).
    pub(super) fn leave(&self, pipe: &mut redis::Pipeline, keys: &Keys, now: i64) {
        pipe.del(keys.worker(&self.id))
            .ignore()
            .zrem(keys.workers(), &self.id)
            .ignore();
        forget_stale(pipe, keys, now);
    }
}

/// Drops from the index the workers whose last beat is older than [`EXPIRY`] (their keys are gone).
fn forget_stale(pipe: &mut redis::Pipeline, keys: &Keys, now: i64) {
    let oldest = now - EXPIRY.as_secs() as i64;
    pipe.zrembyscore(keys.workers(), "-inf", format!("({oldest}"))
        .ignore();
}

/// Every worker that beat within [`EXPIRY`], sorted by host, then start time. An announcement that
/// cannot be read (another version's layout) is skipped with a warning naming its key.
pub async fn list_workers(store: &FleetStore) -> Result<Vec<WorkerInfo>, FleetError> {
    let keys = &store.keys;
    let mut conn = store.conn.clone();
    let index = keys.workers();
    let since = clock::unix_now() - EXPIRY.as_secs() as i64;
    let ids: Vec<String> = conn
        .zrangebyscore(&index, since, "+inf")
        .await
        .map_err(|source| FleetError::Command {
            op: "ZRANGEBYSCORE",
            key: index.clone(),
            source,
        })?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let worker_keys: Vec<String> = ids.iter().map(|id| keys.worker(id)).collect();
    let values: Vec<Option<String>> = redis::cmd("MGET")
        .arg(&worker_keys)
        .query_async(&mut conn)
        .await
        .map_err(|source| FleetError::Command {
            op: "MGET",
            key: keys.worker("*"),
            source,
        })?;
    let mut workers: Vec<WorkerInfo> = worker_keys
        .iter()
        .zip(values)
        .filter_map(|(key, value)| {
            // Missing: it expired between the two reads.
            let json = value?;
            match serde_json::from_str(&json) {
                Ok(info) => Some(info),
                Err(error) => {
                    tracing::warn!(%error, key = %key, "fleet: unreadable worker announcement skipped");
                    None
                }
            }
        })
        .collect();
    workers.sort_by(|a, b| (&a.host, a.started_at, &a.id).cmp(&(&b.host, b.started_at, &b.id)));
    Ok(workers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Paused;

    #[test]
    fn info_reads_in_flight_and_paused_and_round_trips() {
        let metrics = Arc::new(Metrics::new());
        let reg = Registry::new(
            Identity {
                connection: "redis".into(),
                driver: "redis".into(),
                queues: vec!["whatsapp".into(), "default".into()],
                concurrency: 8,
            },
            Arc::clone(&metrics),
        );
        let _a = metrics.track_in_flight();
        let _b = metrics.track_in_flight();
        metrics.set_paused(Paused {
            worker: true,
            queues: vec![("whatsapp".into(), false), ("emails".into(), true)],
        });
        let info = reg.info(1_000);
        assert_eq!(info.in_flight, 2);
        assert_eq!(info.paused, ["emails"]);
        assert!(info.worker_paused);
        assert_eq!(info.last_beat, 1_000);
        assert_eq!(info.pid, std::process::id());
        assert!(info.id.starts_with(&format!("{}:{}:", info.host, info.pid)));
        let json = serde_json::to_string(&info).unwrap();
        assert_eq!(serde_json::from_str::<WorkerInfo>(&json).unwrap(), info);
    }
}
