//! The worker's settings: `php artisan queue:work`'s options with Laravel's defaults, plus ours.

use std::collections::BTreeMap;
use std::time::Duration;

/// Default `[limits] max_payload_bytes`: 1 MiB. The app's largest job (an order with its items) is a few
/// KB; Laravel itself has no limit, Redis strings stop at 512 MiB.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1024 * 1024;
/// Upper bound of `max_payload_bytes` (Redis's own limit on a string).
pub const MAX_PAYLOAD_BYTES_CEILING: usize = 512 * 1024 * 1024;
/// Upper bound of `max_depth`: each level costs stack in the parser, the JSON view and the writer,
/// and a job runs on a tokio worker thread (2 MiB of stack).
pub const MAX_DEPTH_CEILING: usize = 1024;

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
    /// Jobs in flight at once (`--concurrency`): the limit on reserved jobs this process holds, and so
    /// on its memory and connections. A job waiting for its action's permit counts.
    pub concurrency: usize,
    /// Threads of the async runtime (`--threads`): shown in the `worker started` line; `main` starts the
    /// runtime with them.
    pub threads: usize,
    /// `[limits] max_payload_bytes`: a larger payload is not parsed; it goes to failed_jobs.
    pub max_payload_bytes: usize,
    /// `[limits] max_depth`, `max_elements`: bounds of the PHP unserialize of the command.
    pub unserialize: crate::php::Limits,
    /// `[limits.actions]`: jobs of an action running at once (actions not listed: only `concurrency`).
    pub action_concurrency: BTreeMap<String, usize>,
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
            threads: crate::util::runtime::DEFAULT_THREADS,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            unserialize: crate::php::Limits::default(),
            action_concurrency: BTreeMap::new(),
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

    /// Checks the `[limits]` values; the error names the key.
    pub fn check_limits(&self) -> Result<(), String> {
        let p = self.max_payload_bytes;
        if !(1..=MAX_PAYLOAD_BYTES_CEILING).contains(&p) {
            return Err(format!(
                "limits.max_payload_bytes = {p}: must be between 1 and {MAX_PAYLOAD_BYTES_CEILING} (512 MiB, Redis's largest string)"
            ));
        }
        let d = self.unserialize.max_depth;
        if !(1..=MAX_DEPTH_CEILING).contains(&d) {
            return Err(format!(
                "limits.max_depth = {d}: must be between 1 and {MAX_DEPTH_CEILING} (each level costs stack)"
            ));
        }
        if self.unserialize.max_elements == 0 {
            return Err("limits.max_elements = 0: must be at least 1".into());
        }
        for (action, n) in &self.action_concurrency {
            if *n == 0 {
                return Err(format!(
                    "limits.actions.{action} = 0: must be at least 1 (to stop running an action, give it kind = \"forward\" or \"fail\")"
                ));
            }
        }
        Ok(())
    }

    /// Notes worth printing at start: settings that are fine here, and why.
    pub fn notes(&self) -> Vec<String> {
        let mut out = Vec::new();
        for q in &self.queues {
            let ra = self.retry_after_for(q);
            if self.timeout > 0 && self.timeout >= ra {
                out.push(format!(
                    "--timeout {}s is not below retry_after {ra}s of queue {q}: leases cover it (a running \
                     job's reservation is extended every {}s, so no other worker takes it back); PHP workers \
                     on the same queue have no lease, so keep retry_after above their --timeout",
                    self.timeout,
                    (super::lease::Lease::every(ra).as_secs_f64() * 10.0).round() / 10.0
                ));
            }
        }
        out
    }

    /// Warnings worth printing at start: settings that make Laravel setups misbehave.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for q in &self.queues {
            if self.handoff_queue_for(q) == *q {
                out.push(format!(
                    "the hand-off queue for {q} is {q} itself: foreign jobs would come straight back; \
                     set --handoff-queue to a queue only PHP workers drain"
                ));
            }
        }
        for (action, n) in &self.action_concurrency {
            if *n >= self.concurrency {
                out.push(format!(
                    "limits.actions.{action} = {n} is not below --concurrency {}: it never holds anything back",
                    self.concurrency
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
    fn limits_are_checked_and_the_error_names_the_key() {
        let ok = WorkerOptions::default();
        assert_eq!(ok.check_limits(), Ok(()));
        assert_eq!(ok.max_payload_bytes, 1024 * 1024);
        let bad = |f: &dyn Fn(&mut WorkerOptions)| {
            let mut o = WorkerOptions::default();
            f(&mut o);
            o.check_limits().unwrap_err()
        };
        assert!(bad(&|o| o.max_payload_bytes = 0).starts_with("limits.max_payload_bytes = 0"));
        assert!(bad(&|o| o.unserialize.max_depth = 5000).starts_with("limits.max_depth = 5000"));
        assert!(bad(&|o| o.unserialize.max_elements = 0).starts_with("limits.max_elements = 0"));
        let e = bad(&|o| {
            o.action_concurrency
                .insert("whatsapp_notification".into(), 0);
        });
        assert!(
            e.starts_with("limits.actions.whatsapp_notification = 0"),
            "{e}"
        );
    }

    #[test]
    fn an_action_limit_at_or_over_concurrency_is_a_warning() {
        let mut o = WorkerOptions::default();
        o.action_concurrency.insert("log_me".into(), 8);
        let w = o.warnings();
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("limits.actions.log_me = 8"), "{}", w[0]);
    }

    #[test]
    fn a_timeout_over_retry_after_is_a_note_that_leases_cover_it() {
        let mut o = WorkerOptions::default();
        assert!(o.warnings().is_empty());
        assert!(o.notes().is_empty());
        o.timeout = 90;
        assert!(o.warnings().is_empty(), "{:?}", o.warnings());
        let n = o.notes();
        assert_eq!(n.len(), 1);
        assert!(n[0].contains("retry_after 90s"), "{}", n[0]);
        assert!(n[0].contains("leases cover it"), "{}", n[0]);
        assert!(n[0].contains("extended every 30s"), "{}", n[0]);
        o.retry_after = 10;
        assert!(
            o.notes()[0].contains("extended every 3.3s"),
            "{:?}",
            o.notes()
        );
        o.retry_after = 90;
        o.timeout = 10;
        o.handoff_queue = "{queue}".into();
        assert!(o.notes().is_empty());
        assert!(o.warnings()[0].contains("come straight back"));
    }
}
