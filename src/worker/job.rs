//! One job's decision: from the popped bytes to an [`Outcome`], applying Laravel's rules around the action.
//!
//! Nothing here touches the queue or failed_jobs: [`super::settle`] carries the outcome out (the next
//! link of a chain included, built here before the link runs, [`super::chain`]). The one store it
//! writes is the app's cache store, to count maxExceptions ([`super::exceptions`]). A payload that
//! cannot be read is an outcome too (`Fail` with the reason), never an error of the worker; so is one
//! over `[limits] max_payload_bytes`, which is not parsed at all.
//!
//! Per-action concurrency (`[limits.actions]`): the wait for the action's permit counts inside the job's
//! timeout, so wait + run never exceed it (and the job's lease, [`super::lease`], keeps it reserved
//! meanwhile: no other worker takes it). A job that spends its whole timeout waiting never started: it is handed
//! back, unchanged and without consuming an attempt, to the end of its own queue. With no timeout
//! (`--timeout 0`) the wait is bounded by half the queue's `retry_after`.

use std::sync::Arc;
use std::time::Duration;

use std::panic::AssertUnwindSafe;

use futures::FutureExt;

use crate::actions::{ActionError, Actions, Handler, JobMeta};
use crate::deferred::{classify, DeferredJob, JobClass};
use crate::laravel::encrypter::Encrypter;
use crate::laravel::exception::PhpException;
use crate::laravel::payload::Payload;
use crate::laravel::queue::ReservedJob;
use crate::logging;
use crate::php;
use crate::util::clock::unix_now;

use super::chain::{self, Chain, NextLink};
use super::exceptions::ExceptionCounter;
use super::options::WorkerOptions;
use super::permits::ActionPermits;
use super::rules::{self, Limits};

/// What must happen to a reserved job.
#[derive(Debug)]
pub enum Outcome {
    /// Succeeded: delete it from `:reserved`.
    Done,
    /// Succeeded, and its chain goes on: push `next`, then delete this one (docs/laravel-queue.md §11.1).
    Chained { next: NextLink },
    /// Try again later: back to `:delayed` in `delay` seconds.
    Release { delay: u64, reason: String },
    /// Give up: a failed_jobs row, then delete it.
    Fail { exception: PhpException },
    /// Not ours to run: push the original payload, unchanged, to another queue.
    Handoff { to: String, reason: &'static str },
    /// The action did nothing for it and asked to wait: back to its own queue's `:delayed` in
    /// `delay` seconds exactly as it was, without consuming an attempt.
    HandBack { delay: u64, reason: String },
}

/// What the logs say about a job (never its data).
#[derive(Debug, Default, Clone)]
pub struct JobInfo {
    pub uuid: String,
    /// The payload's `id` (the job id of Laravel's Redis queue; empty on the database queue).
    pub id: String,
    pub name: String,
    pub action: String,
    pub attempt: i64,
}

/// Shared, read-only state for deciding jobs.
#[derive(Debug)]
pub struct Decider {
    pub options: Arc<WorkerOptions>,
    pub actions: Arc<Actions>,
    pub encrypter: Encrypter,
    pub limits: php::Limits,
    /// `[limits.actions]`.
    pub permits: ActionPermits,
    /// Where the next link of a chain goes.
    pub chain: chain::Route,
    /// The maxExceptions counter in the app's cache store.
    pub exceptions: ExceptionCounter,
}

impl Decider {
    /// Decides what to do with one popped job, running its action when it is ours; what it learns of
    /// the job goes into `info` and is recorded as the job's fields in the log before the action runs.
    pub async fn decide(&self, popped: &ReservedJob, info: &mut JobInfo) -> Outcome {
        let size = popped.original.len();
        if size > self.options.max_payload_bytes {
            return invalid(format!(
                "payload is {size} bytes, over the limit of {} bytes (limits.max_payload_bytes, \
                 --max-payload-bytes); it was not parsed",
                self.options.max_payload_bytes
            ));
        }
        if let Some(reason) = &popped.invalid {
            return invalid(reason.clone());
        }
        let payload = match Payload::parse(&popped.original) {
            Ok(p) => p,
            Err(e) => return invalid(e.to_string()),
        };
        info.uuid = payload.uuid().unwrap_or_default().to_owned();
        info.name = payload.display_name().to_owned();
        info.id = payload.envelope().id.clone().unwrap_or_default();
        // Redis keeps the count in the payload (already bumped in the reserved copy, not in
        // `original`); the database driver keeps it in the row.
        let attempt = match popped.attempts {
            Some(a) => a,
            None => match payload.attempts() {
                Ok(a) => a + 1,
                Err(e) => return invalid(e.to_string()),
            },
        };
        info.attempt = attempt;
        logging::record_job(&info.uuid, &info.name, info.attempt);
        let env = payload.envelope();
        let limits = Limits {
            max_tries: env.max_tries.unwrap_or(self.options.tries),
            retry_until: env.retry_until,
            fail_on_timeout: env.fail_on_timeout.unwrap_or(false),
        };
        if !rules::may_run(&limits, attempt, unix_now()) {
            return Outcome::Fail {
                exception: PhpException::max_attempts_exceeded(payload.display_name()),
            };
        }
        if let JobClass::Foreign { .. } = classify(&payload, &self.options.class) {
            return self.handoff(popped, "foreign job class");
        }
        let command = match payload.command(&self.encrypter, &self.limits) {
            Ok(c) => c,
            Err(e) => return invalid(e.to_string()),
        };
        let job = match DeferredJob::from_command(&command.value, &self.options.class) {
            Ok(job) => job,
            Err(e) => return invalid(e.to_string()),
        };
        info.action = job.action.clone();
        logging::record_action(&info.action);
        let kind = self.actions.handler(&job.action);
        if kind.is_forward() {
            return self.handoff(popped, "action configured as forward");
        }
        let next = match chain::plan(
            &command.value,
            command.encrypted,
            env,
            &self.options.class,
            &self.chain,
            &self.limits,
        ) {
            Chain::End => None,
            Chain::Next(next) => Some(next),
            Chain::Php(why) => return self.handoff(popped, why),
        };
        let timeout = env
            .timeout
            .and_then(|t| u64::try_from(t).ok())
            .unwrap_or(self.options.timeout);
        let waiting = tokio::time::Instant::now();
        let wait_budget = match timeout {
            0 => Duration::from_secs(self.options.retry_after_for(&popped.queue) / 2),
            t => Duration::from_secs(t),
        };
        let permit = match tokio::time::timeout(wait_budget, self.permits.acquire(&job.action))
            .await
        {
            Ok(permit) => permit,
            Err(_) => {
                tracing::warn!(
                    action = %job.action,
                    limit = self.permits.limit(&job.action),
                    waited_s = wait_budget.as_secs(),
                    "no permit for the action within the job's timeout: handed back to its queue unchanged"
                );
                return Outcome::Handoff {
                    to: popped.queue.clone(),
                    reason:
                        "action at its concurrency limit (limits.actions) for the whole timeout",
                };
            }
        };
        let run_budget = (timeout > 0).then(|| {
            Duration::from_secs(timeout)
                .saturating_sub(waiting.elapsed())
                .max(Duration::from_millis(1))
        });
        // The `starting` line of `--log-format laravel` (crate::logging::JOB_TARGET).
        tracing::debug!(action_run = "start", action = %job.action, id = %info.id, waited_ms = waiting.elapsed().as_millis() as u64, "action started");
        let result = self
            .run(kind, &job, &payload, &popped.queue, attempt, run_budget)
            .await;
        // Logged before the permit is given back, so that in the log no more than the limit are ever
        // between their start and end lines.
        tracing::debug!(action_run = "end", action = %info.action, "action finished");
        drop(permit);
        let backoff =
            || rules::backoff(payload.backoff_for(attempt), &self.options.backoff, attempt);
        match result {
            RunResult::Ok => match next {
                Some(next) => Outcome::Chained { next },
                None => Outcome::Done,
            },
            RunResult::Err(ActionError::Permanent { message }) => Outcome::Fail {
                exception: PhpException::action_failed(message),
            },
            // Not an exception of the job: neither maxExceptions nor the attempts count it.
            RunResult::Err(ActionError::HandBack { message, after }) => Outcome::HandBack {
                delay: whole_secs(after),
                reason: message,
            },
            RunResult::Err(ActionError::Retry { message, after }) => {
                // Counted even when out of attempts, as PHP's worker does.
                let too_many = self.exceptions.exceeded(&payload).await;
                if too_many || rules::out_of_attempts(&limits, attempt, unix_now()) {
                    Outcome::Fail {
                        exception: PhpException::action_failed(message),
                    }
                } else {
                    let delay = backoff().max(after.map(|d| d.as_secs()).unwrap_or(0));
                    Outcome::Release {
                        delay,
                        reason: message,
                    }
                }
            }
            RunResult::TimedOut => {
                let too_many = self.exceptions.exceeded(&payload).await;
                if too_many || rules::fail_after_timeout(&limits, attempt, unix_now()) {
                    Outcome::Fail {
                        exception: PhpException::timed_out(payload.display_name()),
                    }
                } else {
                    Outcome::Release {
                        delay: backoff(),
                        reason: format!("timed out after {timeout}s"),
                    }
                }
            }
            RunResult::Panicked(msg) => Outcome::Fail {
                exception: PhpException::action_panicked(msg),
            },
        }
    }

    fn handoff(&self, popped: &ReservedJob, reason: &'static str) -> Outcome {
        Outcome::Handoff {
            to: self.options.handoff_queue_for(&popped.queue),
            reason,
        }
    }

    /// Runs the action in this job's task: a panic is caught, and at the timeout the action's future
    /// is dropped, which cancels it where it waits. Boxed, so the job's own future stays small.
    async fn run(
        &self,
        kind: &Handler,
        job: &DeferredJob,
        payload: &Payload<'_>,
        queue: &str,
        attempt: i64,
        timeout: Option<Duration>,
    ) -> RunResult {
        let meta = JobMeta {
            uuid: payload.uuid().unwrap_or_default(),
            id: payload.envelope().id.as_deref().unwrap_or_default(),
            queue,
            attempt,
        };
        let action = AssertUnwindSafe(Box::pin(kind.run(job, meta))).catch_unwind();
        let caught = match timeout {
            None => action.await,
            Some(timeout) => match tokio::time::timeout(timeout, action).await {
                Ok(caught) => caught,
                Err(_) => return RunResult::TimedOut,
            },
        };
        match caught {
            Ok(Ok(())) => RunResult::Ok,
            Ok(Err(e)) => RunResult::Err(e),
            Err(p) => RunResult::Panicked(
                p.downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "action panicked".into()),
            ),
        }
    }
}

enum RunResult {
    Ok,
    Err(ActionError),
    TimedOut,
    Panicked(String),
}

/// `after` in whole seconds (queue scores are whole seconds), rounded up, at least 1: a job handed
/// back for "now" would be popped again at once.
fn whole_secs(after: Duration) -> u64 {
    let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
    secs.max(1)
}

fn invalid(reason: String) -> Outcome {
    Outcome::Fail {
        exception: PhpException::invalid_payload(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::{ActionKind, Deps, Plan};
    use crate::laravel::queue::Reservation;
    use std::collections::BTreeMap;

    /// A decider running `whatsapp_notification` as `log` (taking `sleep_ms`), limited to one at a time.
    async fn decider(timeout: u64, sleep_ms: u64, max_payload_bytes: usize) -> Decider {
        let table = BTreeMap::from([
            (
                "whatsapp_notification".to_owned(),
                ActionKind::Log { sleep_ms },
            ),
            ("*".to_owned(), ActionKind::Warn),
        ]);
        let actions = Actions::build(&Plan::new(&table), &Deps::default())
            .await
            .unwrap();
        let limits = BTreeMap::from([("whatsapp_notification".to_owned(), 1)]);
        Decider {
            options: Arc::new(WorkerOptions {
                timeout,
                tries: 3,
                max_payload_bytes,
                action_concurrency: limits.clone(),
                ..WorkerOptions::default()
            }),
            actions: Arc::new(actions),
            encrypter: Encrypter::none(),
            limits: php::Limits::default(),
            permits: ActionPermits::new(&limits),
            chain: chain::Route {
                connection: "redis".into(),
                default_connection: "redis".into(),
                default_queue: "default".into(),
                hash_tag_required: false,
            },
            exceptions: ExceptionCounter::default(),
        }
    }

    fn popped() -> ReservedJob {
        let original = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/payloads/whatsapp.json"),
        )
        .unwrap();
        ReservedJob {
            queue: "whatsapp".into(),
            reservation: Reservation::Redis(original.clone()),
            original,
            invalid: None,
            attempts: None,
            reserved_until: 0,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_that_never_gets_a_permit_within_its_timeout_is_handed_back_to_its_queue() {
        let d = decider(5, 0, 1 << 20).await;
        let held = d.permits.acquire("whatsapp_notification").await;
        let outcome = d.decide(&popped(), &mut JobInfo::default()).await;
        assert!(
            matches!(&outcome, Outcome::Handoff { to, .. } if to == "whatsapp"),
            "{outcome:?}"
        );
        drop(held);
        let outcome = d.decide(&popped(), &mut JobInfo::default()).await;
        assert!(matches!(outcome, Outcome::Done), "{outcome:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_for_a_permit_counts_inside_the_timeout() {
        // 3 s of waiting + 3 s of running > the 5 s timeout: timed out, released for another attempt.
        let d = Arc::new(decider(5, 3000, 1 << 20).await);
        let held = d.permits.acquire("whatsapp_notification").await;
        let job = tokio::spawn({
            let d = Arc::clone(&d);
            async move { d.decide(&popped(), &mut JobInfo::default()).await }
        });
        tokio::time::sleep(Duration::from_secs(3)).await;
        drop(held);
        let outcome = job.await.unwrap();
        assert!(
            matches!(&outcome, Outcome::Release { reason, .. } if reason.contains("timed out")),
            "{outcome:?}"
        );
    }

    #[test]
    fn a_hand_back_waits_whole_seconds_and_never_zero() {
        assert_eq!(whole_secs(Duration::ZERO), 1);
        assert_eq!(whole_secs(Duration::from_millis(1500)), 2);
        assert_eq!(whole_secs(Duration::from_secs(6)), 6);
    }

    #[tokio::test]
    async fn a_payload_over_max_payload_bytes_fails_unparsed() {
        let d = decider(5, 0, 100).await;
        let p = popped();
        let outcome = d.decide(&p, &mut JobInfo::default()).await;
        let Outcome::Fail { exception } = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(
            exception.message,
            format!(
                "payload is {} bytes, over the limit of 100 bytes (limits.max_payload_bytes, \
                 --max-payload-bytes); it was not parsed",
                p.original.len()
            )
        );
    }
}
