//! What the worker skips because it is paused, as `queue:work` does (docs/laravel-queue.md §8.3):
//! a queue paused in the app's cache store (`illuminate:queue:paused:{connection}:{queue}`, or every
//! queue while `illuminate:queues:paused` is set) is skipped before each reservation while the others
//! are served; SIGUSR2 pauses the whole worker (no new job; running jobs finish) until SIGCONT.
//!
//! PHP reads the flags before every pop; we read them for all the worker's queues in one batch
//! ([`CacheStore::paused_queues`], one `MGET` on Redis) every [`PAUSE_CHECK`], so a pause or a resume
//! takes effect within that time and a busy worker costs the store two reads a second, not one per job.
//!
//! A store that cannot be read (down, or a flag PHP could not have written) must not stop the worker:
//! the error is logged once per outage and the last state read stays in force (nothing is paused
//! when the store was never read), so a paused queue is not resumed by a cache outage and a running
//! one is not stopped by it. A `pause --for` that ends during the outage ends when the store answers.
//!
//! This file keeps and publishes the state (to the loop, and to [`Metrics`] for `/metrics` and
//! `/ready`); it must not reserve jobs nor install signal handlers (`ops::work` does).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::laravel::cache_store::CacheStore;
use crate::metrics::{Metrics, Paused};

/// How often the pause flags are read from the cache store.
pub const PAUSE_CHECK: Duration = Duration::from_millis(500);

/// What the worker skips now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PauseState {
    /// SIGUSR2 received and no SIGCONT since: no new job at all.
    pub worker: bool,
    /// The worker's queues paused in the cache store.
    pub queues: BTreeSet<String>,
}

/// The worker's pause state, shared by the loop, the flag watcher and the signal handlers.
#[derive(Debug)]
pub struct Pauses {
    state: watch::Sender<PauseState>,
    metrics: Arc<Metrics>,
    /// The worker's queues, in priority order (for the gauges).
    queues: Vec<String>,
}

impl Pauses {
    /// Nothing paused yet; `metrics` shows the state from now on.
    pub fn new(queues: Vec<String>, metrics: Arc<Metrics>) -> Pauses {
        let pauses = Pauses {
            state: watch::Sender::new(PauseState::default()),
            metrics,
            queues,
        };
        pauses.publish(&PauseState::default());
        pauses
    }

    /// The state now.
    pub fn now(&self) -> PauseState {
        self.state.borrow().clone()
    }

    /// A receiver that sees every later change.
    pub fn subscribe(&self) -> watch::Receiver<PauseState> {
        self.state.subscribe()
    }

    /// SIGUSR2 (`true`) or SIGCONT (`false`); logs a change before the loop sees it.
    pub fn set_worker(&self, paused: bool) {
        if self.state.borrow().worker == paused {
            return;
        }
        if paused {
            tracing::warn!(
                status = "paused",
                "worker paused (SIGUSR2): taking no new job until SIGCONT; running jobs finish"
            );
        } else {
            tracing::info!(status = "resumed", "worker resumed (SIGCONT)");
        }
        self.state.send_modify(|s| s.worker = paused);
        self.publish(&self.now());
    }

    /// The queues the cache store says are paused; logs each queue that was paused or resumed since
    /// the last read (as Laravel 13's `WorkerQueuePaused` / `WorkerQueueResumed`), before the loop
    /// sees the change. Only the flag watcher calls it.
    pub fn set_queues(&self, connection: &str, paused: BTreeSet<String>) {
        let before = self.state.borrow().queues.clone();
        if before == paused {
            return;
        }
        for queue in paused.difference(&before) {
            tracing::warn!(connection, queue = %queue, status = "paused", "queue paused: its jobs wait until it is resumed");
        }
        for queue in before.difference(&paused) {
            tracing::info!(connection, queue = %queue, status = "resumed", "queue resumed");
        }
        self.state.send_modify(|s| s.queues = paused);
        self.publish(&self.now());
    }

    fn publish(&self, state: &PauseState) {
        self.metrics.set_paused(Paused {
            worker: state.worker,
            queues: self
                .queues
                .iter()
                .map(|q| (q.clone(), state.queues.contains(q)))
                .collect(),
        });
    }
}

/// Reads the pause flags of `connection`'s queues every [`PAUSE_CHECK`] until `shutdown`; see the
/// module doc for what a store error does.
pub async fn watch_flags(
    pauses: Arc<Pauses>,
    store: CacheStore,
    connection: String,
    shutdown: CancellationToken,
) {
    let mut failing = false;
    loop {
        match store.paused_queues(&connection, &pauses.queues).await {
            Ok(paused) => {
                if failing {
                    tracing::info!("the pause flags can be read again");
                    failing = false;
                }
                pauses.set_queues(&connection, paused);
            }
            Err(err) if !failing => {
                failing = true;
                tracing::warn!(error = %err, "cannot read the queue pause flags; keeping the last state read (nothing paused if never read) and trying again");
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(PAUSE_CHECK) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_reach_subscribers_and_the_gauges() {
        let metrics = Arc::new(Metrics::new());
        let pauses = Pauses::new(
            vec!["emails".into(), "default".into()],
            Arc::clone(&metrics),
        );
        assert_eq!(
            metrics
                .paused()
                .expect("published at start")
                .paused_queues(),
            Vec::<&str>::new()
        );
        let mut rx = pauses.subscribe();
        pauses.set_queues("redis", BTreeSet::from(["emails".to_owned()]));
        assert!(rx.has_changed().unwrap());
        assert!(rx.borrow_and_update().queues.contains("emails"));
        assert_eq!(metrics.paused().unwrap().paused_queues(), ["emails"]);

        pauses.set_queues("redis", BTreeSet::from(["emails".to_owned()]));
        assert!(!rx.has_changed().unwrap(), "the same state is no change");

        pauses.set_worker(true);
        assert!(rx.borrow_and_update().worker);
        assert!(metrics.paused().unwrap().worker);
        pauses.set_worker(false);
        pauses.set_queues("redis", BTreeSet::new());
        let now = pauses.now();
        assert!(!now.worker && now.queues.is_empty());
        assert_eq!(
            metrics.paused().unwrap().queues,
            [("emails".to_owned(), false), ("default".to_owned(), false)]
        );
    }
}
