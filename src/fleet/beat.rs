//! The beat: every [`BEAT`], one pipeline to the fleet's Redis with this process's announcement and
//! its job counts since the last flush; once a minute also each queue's wait. At shutdown, after the
//! worker drained, the last counts and the removal from the registry.
//!
//! A failed beat is logged once per outage and retried at the next; the worker never waits for it.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::history::{stage_wait, Recorder};
use super::registry::Registry;
use super::store::{FleetError, FleetStore};
use crate::laravel::queue::Queue;
use crate::metrics::{Metrics, QueueDepth};
use crate::util::clock;

/// How often a worker announces itself and flushes its counts.
pub const BEAT: Duration = Duration::from_secs(5);
/// Longest wait for a queue's sizes when sampling the wait.
const STATS_TIMEOUT: Duration = Duration::from_secs(2);

/// This process's beat: where to write, what to announce, what to count.
pub struct Beat {
    pub store: FleetStore,
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    /// The queue connection and the queues worked, for the wait samples.
    pub queue: Queue,
    pub queues: Vec<String>,
}

impl Beat {
    /// Beats until `stop` is cancelled, then flushes the last counts and leaves the registry.
    pub async fn run(self, stop: CancellationToken) {
        let mut recorder = Recorder::default();
        let mut sampled_minute = None;
        let mut failing = false;
        loop {
            let now = clock::unix_now();
            let minute = now.div_euclid(60);
            let sample = sampled_minute != Some(minute);
            match self.beat(&mut recorder, now, sample, false).await {
                Ok(()) => {
                    if failing {
                        tracing::info!("fleet: beating again");
                    }
                    failing = false;
                    if sample {
                        sampled_minute = Some(minute);
                    }
                }
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(%error, "fleet: beat failed; counts are kept for the next one");
                }
                Err(_) => {}
            }
            tokio::select! {
                _ = tokio::time::sleep(BEAT) => {}
                _ = stop.cancelled() => break,
            }
        }
        match self
            .beat(&mut recorder, clock::unix_now(), false, true)
            .await
        {
            Ok(()) => tracing::debug!("fleet: last counts flushed, left the registry"),
            Err(error) => tracing::warn!(
                %error,
                "fleet: the last counts could not be written; the registry entry expires by itself"
            ),
        }
    }

    /// One pipeline: the counts since the last flush, then the announcement (or, `leaving`, the
    /// removal), and the wait samples when `sample`.
    async fn beat(
        &self,
        recorder: &mut Recorder,
        now: i64,
        sample: bool,
        leaving: bool,
    ) -> Result<(), FleetError> {
        let keys = &self.store.keys;
        let mut pipe = redis::pipe();
        let totals = self.metrics.totals();
        recorder.stage(&mut pipe, keys, now, &totals);
        if leaving {
            self.registry.leave(&mut pipe, keys, now);
        } else {
            self.registry.announce(&mut pipe, keys, now);
        }
        if sample {
            for (queue, secs) in self.waits(now).await {
                stage_wait(&mut pipe, keys, now, &queue, secs);
            }
        }
        let mut conn = self.store.conn.clone();
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(|source| FleetError::Command {
                op: "beat",
                key: keys.worker(self.registry.id()),
                source,
            })?;
        recorder.commit(totals);
        Ok(())
    }

    /// The oldest ready job's age of each queue whose age can be known (Laravel 12 payloads carry
    /// `createdAt`; an empty queue waits 0). Queues that cannot be read now are skipped.
    async fn waits(&self, now: i64) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        for q in &self.queues {
            match tokio::time::timeout(STATS_TIMEOUT, self.queue.stats(q)).await {
                Ok(Ok(stats)) => {
                    if let Some(age) = QueueDepth::from_stats(q, &stats, now).oldest_ready_age {
                        out.push((q.clone(), age));
                    }
                }
                Ok(Err(error)) => {
                    tracing::debug!(%error, queue = %q, "fleet: cannot sample the wait")
                }
                Err(_) => tracing::debug!(queue = %q, "fleet: wait sample timed out"),
            }
        }
        out
    }
}
