//! The worker's Prometheus metrics: job counters and run-time histograms by queue and action,
//! jobs in flight, whether Redis and the failed_jobs database answer, which queues the worker skips
//! because they are paused, and, at scrape time, the depth and age of each queue. [`Metrics::render`] writes them in the Prometheus text exposition
//! format 0.0.4; every name starts with `defer_worker_`.
//!
//! Hand-written rather than the `prometheus-client` crate: the worker needs one counter family,
//! one histogram and a few gauges, whose exposition fits in this module, and the queue gauges are
//! read from Redis at scrape time, which the crate's registry would only model through a custom
//! collector anyway.
//!
//! This module only counts and formats. It must not talk to Redis or the database (the HTTP layer
//! queries them and passes [`QueueDepth`]s in), must never block on I/O while holding its lock,
//! and must not take unbounded label values: action names come from payloads, so they are cut to
//! [`MAX_LABEL_LEN`] characters and at most [`MAX_SERIES`] queue/action pairs are kept.
//!
//! - `registry`: [`Metrics`], the counters and gauges of one process, [`JobOutcome`] and [`Paused`].
//! - `histogram`: the run-time histogram and its [`BUCKETS`].
//! - `depth`: [`QueueDepth`], one queue's gauges from a [`QueueStats`](crate::laravel::queue::QueueStats).
//! - `text`: the Prometheus text exposition.

mod depth;
mod histogram;
mod registry;
mod text;

pub use depth::QueueDepth;
pub use histogram::BUCKETS;
pub use registry::{
    InFlight, JobOutcome, Metrics, Paused, MAX_LABEL_LEN, MAX_SERIES, NO_ACTION, OTHER,
};
