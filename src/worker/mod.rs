//! The worker: the only module that ties the queue, the actions and failed_jobs together.
//!
//! - [`options`]: `queue:work`'s options and defaults.
//! - [`permits`]: per-action concurrency (`[limits.actions]`).
//! - [`rules`]: Laravel's attempt, retryUntil, timeout and backoff rules, pure.
//! - [`job`]: one job from popped bytes to an [`job::Outcome`], running the action.
//! - [`chain`]: the next link of a `Bus::chain`, built before the link runs (or the chain left to PHP).
//! - [`exceptions`]: the maxExceptions counter in the app's cache store.
//! - [`lease`]: keeps a running job's reservation, and says when another worker took it back.
//! - [`settle`]: carries an outcome out on Redis and failed_jobs without ever losing the job.
//! - [`pause`]: the paused queues (the app's cache store) and the paused worker (SIGUSR2/SIGCONT).
//! - [`outcome_log`]: the outcome line each job leaves in the log.
//! - [`daemon`]: the loop, concurrency, idle waiting, stop conditions and drain.

pub mod chain;
pub mod daemon;
pub mod exceptions;
pub mod job;
pub mod lease;
pub mod options;
mod outcome_log;
pub mod pause;
pub mod permits;
pub mod rules;
pub mod settle;

pub use daemon::{StopReason, Summary, Worker};
pub use options::WorkerOptions;
