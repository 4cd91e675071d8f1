//! Per-action concurrency (`[limits.actions]`): one semaphore per limited action name.
//!
//! A job holds a global slot (`--concurrency`) from the moment it is reserved; a job whose action is at
//! its limit waits here for a permit while staying reserved. The wait is bounded by the caller (it counts
//! inside the job's timeout, see [`super::job`]), so a waiting job never outlives its reservation.
//! Nothing here knows about queues or payloads.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The semaphores, built once at start. Actions without a limit need no permit.
#[derive(Debug, Default)]
pub struct ActionPermits {
    by_action: HashMap<String, (usize, Arc<Semaphore>)>,
}

impl ActionPermits {
    pub fn new(limits: &BTreeMap<String, usize>) -> ActionPermits {
        ActionPermits {
            by_action: limits
                .iter()
                .map(|(name, n)| (name.clone(), (*n, Arc::new(Semaphore::new((*n).max(1))))))
                .collect(),
        }
    }

    /// The configured limit of `action`, when it has one.
    pub fn limit(&self, action: &str) -> Option<usize> {
        self.by_action.get(action).map(|(n, _)| *n)
    }

    /// Waits for a permit of `action`; `None` at once when the action is not limited. The permit is
    /// given back when dropped.
    pub async fn acquire(&self, action: &str) -> Option<OwnedSemaphorePermit> {
        let (_, sem) = self.by_action.get(action)?;
        Some(
            Arc::clone(sem)
                .acquire_owned()
                .await
                .expect("the semaphore is never closed"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_limit_run_at_once_and_others_are_free() {
        let permits = Arc::new(ActionPermits::new(&BTreeMap::from([(
            "whatsapp_notification".to_owned(),
            2,
        )])));
        assert_eq!(permits.limit("whatsapp_notification"), Some(2));
        assert!(permits.acquire("analytics_tracking").await.is_none());
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let (permits, running, peak) = (
                    Arc::clone(&permits),
                    Arc::clone(&running),
                    Arc::clone(&peak),
                );
                tokio::spawn(async move {
                    let _p = permits.acquire("whatsapp_notification").await;
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }
}
