//! The worker's settings: `php artisan queue:work`'s options with Laravel's defaults, plus ours.

use std::collections::BTreeMap;
use std::time::Duration;

/// Everything `work` needs besides its connections.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Queue names, highest priority first (`--queue`).
    pub queues: Vec<String>,
    /// The connection name written to failed_jobs (`--connection`, default `redis`).
    pub connection: String,
    /// `--tries`: used when the payload's maxTries is null; 0 = unlimited. Laravel's default is 1.
    pub tries: i64,
    /// `--backoff`: Laravel's comma list, used when the payload has no backoff.
    pub backoff: String,
    /// `--timeout` in seconds when the payload has none; 0 disables it.
    pub timeout: u64,
    /// `--sleep`: the longest an idle worker waits before looking again (it is woken at once by new jobs).
    pub sleep: Duration,
    /// `--rest`: pause after each job, per slot.
    pub rest: Duration,
    pub stop_when_empty: bool,
    /// `--max-jobs`: stop after popping this many jobs; 0 = no limit.
    pub max_jobs: u64,
    /// `--max-time`: stop after this long; zero = no limit.
    pub max_time: Duration,
    /// `retry_after` per queue (seconds), with the default for queues not listed.
    pub retry_after: u64,
    pub retry_after_per_queue: BTreeMap<String, u64>,
    /// Jobs in flight at once.
    pub concurrency: usize,
    /// Queue that foreign and forwarded jobs are handed to; `{queue}` is replaced by the source queue.
    pub handoff_queue: String,
    /// The DeferredJob class name as written in `data.commandName`.
    pub class: String,
    /// How long in-flight jobs may take to finish after SIGTERM/SIGINT.
    pub drain_timeout: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            queues: vec!["default".into()],
            connection: "redis".into(),
            tries: 1,
            backoff: "0".into(),
            timeout: 60,
            sleep: Duration::from_secs(3),
            rest: Duration::ZERO,
            stop_when_empty: false,
            max_jobs: 0,
            max_time: Duration::ZERO,
            retry_after: 90,
            retry_after_per_queue: BTreeMap::new(),
            concurrency: 8,
            handoff_queue: "php".into(),
            class: crate::deferred::DEFAULT_CLASS.into(),
            drain_timeout: Duration::from_secs(70),
        }
    }
}

impl WorkerOptions {
    pub fn retry_after_for(&self, queue: &str) -> u64 {
        self.retry_after_per_queue
            .get(queue)
            .copied()
            .unwrap_or(self.retry_after)
    }

    pub fn handoff_queue_for(&self, queue: &str) -> String {
        self.handoff_queue.replace("{queue}", queue)
    }

    /// Warnings worth printing at start: settings that make Laravel setups misbehave.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for q in &self.queues {
            let ra = self.retry_after_for(q);
            if self.timeout > 0 && self.timeout >= ra {
                out.push(format!(
                    "--timeout {}s is not below retry_after {ra}s of queue {q}: a job still running when its \
                     reservation expires is handed to another worker and runs twice; set retry_after above the timeout",
                    self.timeout
                ));
            }
            if self.handoff_queue_for(q) == *q {
                out.push(format!(
                    "the hand-off queue for {q} is {q} itself: foreign jobs would come straight back; \
                     set --handoff-queue to a queue only PHP workers drain"
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_queue_retry_after_and_handoff_template() {
        let mut o = WorkerOptions::default();
        o.retry_after_per_queue.insert("whatsapp".into(), 30);
        o.handoff_queue = "{queue}-php".into();
        assert_eq!(o.retry_after_for("whatsapp"), 30);
        assert_eq!(o.retry_after_for("emails"), 90);
        assert_eq!(o.handoff_queue_for("emails"), "emails-php");
    }

    #[test]
    fn warns_about_the_duplicate_run_trap() {
        let mut o = WorkerOptions::default();
        assert!(o.warnings().is_empty());
        o.timeout = 90;
        let w = o.warnings();
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("retry_after 90s"), "{}", w[0]);
        o.timeout = 10;
        o.handoff_queue = "{queue}".into();
        assert!(o.warnings()[0].contains("come straight back"));
    }
}
