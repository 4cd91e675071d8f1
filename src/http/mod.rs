//! The small HTTP/1.1 server of `work --http ADDR` and `console --http ADDR`: `/metrics` (Prometheus
//! text), `/health`, `/ready` and `/stats` (the JSON of the app's `GET /api/v1/queue/stats`), GET and
//! HEAD only, never behind a token ([`probes`]); and, when it is mounted, the operator console: HTML
//! pages and a JSON API under `/api/` ([`console`]), behind the tokens of [`auth`].
//!
//! | path | answer |
//! | --- | --- |
//! | `/metrics` | 200, [`Metrics::render`] with each queue's depth read from Redis now; while Redis or the database is unreachable the scrape still answers, with `defer_worker_redis_up 0` / `defer_worker_db_up 0` and without the gauges it could not read |
//! | `/health` | 200 `ok` while the process runs |
//! | `/ready` | 200 `ready` when Redis answers PING and the worker is not shutting down, else 503 with the reason; a paused worker or queue stays ready, with a line saying so (`paused queues: emails,default`), and a line per WhatsApp sender whose circuit breaker is open follows (still 200: the other queues and actions work) |
//! | `/stats` | 200 `{"queue_system":…,"performance_equivalent":…,"stats":{"pending_jobs","failed_jobs","queues","workers_active","pending_per_queue"[,"workers"]}}`; 503 `{"error":…}` when a store cannot be read |
//! | `/`, `/workers`, `/failed…`, `/queues…`, `/login`, `/api/…` | the console ([`console`]), when mounted; else 404 |
//! | other | 404 (405 for other methods) |
//!
//! `/stats` follows `DeferredExecutionService::getStats`: `pending_jobs` is Laravel's `size()` (ready +
//! delayed + reserved) of the app's default queue only (`REDIS_QUEUE`, else `default`), `failed_jobs`
//! counts the failed_jobs rows. Where the app hard-codes values we report real ones: `queues` is the
//! list this worker serves (the app always answers `default, whatsapp, analytics, emails, cache`), and
//! `workers_active` is the whole fleet's: true while this worker runs (false once it is shutting
//! down) or any other worker is in the fleet registry. `pending_per_queue` is ours: each queue's size,
//! the default queue included; so is `workers`, the number of workers in the registry, present when
//! the registry is on and answered (without it, `workers_active` is this worker's alone).
//!
//! The server listens only on the listener it is given. The probes never write to Redis or the
//! database; only the console's POST actions do (retry, forget, pause, resume, clear). No response
//! carries a password or a store error's detail (details go to the log), and a payload only on the
//! console's failed-job page, masked unless an admin reveals it.
//! Every store query is bounded by [`STORE_TIMEOUT`], so a hung Redis cannot hang a probe.

pub mod auth;
pub mod console;
mod probes;
pub(crate) mod response;
mod server;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::actions::whatsapp::Breakers;
use crate::fleet::FleetStore;
use crate::laravel::failed_jobs::FailedJobs;
use crate::laravel::queue::Queue;
use crate::metrics::Metrics;

pub use console::Console;
pub use server::serve;

/// Longest wait for one Redis or database answer while serving a request.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(2);
/// The content type of the Prometheus text format 0.0.4.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the endpoints read.
#[derive(Clone, Debug)]
pub struct HttpState {
    /// The worker's counters; the scrape also updates `redis_up`, `db_up` and `failed_jobs`.
    pub metrics: Arc<Metrics>,
    /// The queue connection (Redis or the database), for depths and PING.
    pub queue: Queue,
    /// The queues the worker serves, in priority order: depths in `/metrics`, `pending_per_queue`.
    pub queues: Vec<String>,
    /// The app's default queue (`REDIS_QUEUE`, else `default`): `pending_jobs` in `/stats`.
    pub default_queue: String,
    /// failed_jobs, for its row count.
    pub failed: FailedJobs,
    /// The worker's own shutdown token: once cancelled `/ready` answers 503 and `workers_active`
    /// is false, while `/metrics` keeps answering through the drain.
    pub stopping: CancellationToken,
    /// The WhatsApp senders' circuit breakers (`defer_worker_whatsapp_breaker_open`, `/ready`).
    pub breakers: Breakers,
    /// The fleet registry, for `/stats`'s `workers_active` and `workers` and the console's Workers
    /// page and history; `None` when it is off.
    pub fleet: Option<FleetView>,
    /// The operator console, when mounted (None: its paths answer 404).
    pub console: Option<Arc<Console>>,
}

/// The fleet registry as this process reads it.
#[derive(Clone, Debug)]
pub struct FleetView {
    pub store: FleetStore,
    /// This worker's id in the registry: it is not "another worker" while it shuts down (empty for
    /// the `console` command, which is no worker).
    pub own_id: String,
}
