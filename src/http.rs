//! The worker's small HTTP/1.1 server (`work --http ADDR`): `/metrics` (Prometheus text), `/health`,
//! `/ready` and `/stats` (the JSON of the app's `GET /api/v1/queue/stats`). GET and HEAD only.
//!
//! | path | answer |
//! | --- | --- |
//! | `/metrics` | 200, [`Metrics::render`] with each queue's depth read from Redis now; while Redis or the database is unreachable the scrape still answers, with `defer_worker_redis_up 0` / `defer_worker_db_up 0` and without the gauges it could not read |
//! | `/health` | 200 `ok` while the process runs |
//! | `/ready` | 200 `ready` when Redis answers PING and the worker is not shutting down, else 503 with the reason; a paused worker or queue stays ready, with a line saying so (`paused queues: emails,default`), and a line per WhatsApp sender whose circuit breaker is open follows (still 200: the other queues and actions work) |
//! | `/stats` | 200 `{"queue_system":…,"performance_equivalent":…,"stats":{"pending_jobs","failed_jobs","queues","workers_active","pending_per_queue"}}`; 503 `{"error":…}` when a store cannot be read |
//! | other | 404 (405 for other methods) |
//!
//! `/stats` follows `DeferredExecutionService::getStats`: `pending_jobs` is Laravel's `size()` (ready +
//! delayed + reserved) of the app's default queue only (`REDIS_QUEUE`, else `default`), `failed_jobs`
//! counts the failed_jobs rows. Where the app hard-codes values we report real ones: `queues` is the
//! list this worker serves (the app always answers `default, whatsapp, analytics, emails, cache`), and
//! `workers_active` is false once the worker is shutting down. `pending_per_queue` is ours: each
//! queue's size, the default queue included.
//!
//! The server listens only on the listener it is given, never writes to Redis or the database, and
//! never puts a payload, a password or a store error's detail into a response (details go to the log).
//! Every store query is bounded by [`STORE_TIMEOUT`], so a hung Redis cannot hang a probe.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Map, Value as Json};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::actions::whatsapp::Breakers;
use crate::laravel::failed_jobs::FailedJobs;
use crate::laravel::queue::Queue;
use crate::metrics::{Metrics, QueueDepth};
use crate::util::clock::unix_now;

/// Longest wait for one Redis or database answer while serving a request.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(2);
/// A client must send its request headers within this time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 64;
/// How long open connections get to finish their request once the server stops.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

const TEXT: &str = "text/plain; charset=utf-8";
/// The content type of the Prometheus text format 0.0.4.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const JSON: &str = "application/json";

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
}

/// Serves HTTP/1.1 on `listener` until `shutdown` is cancelled, then lets open connections finish
/// their current request (up to a short grace period) and returns. Accept errors (e.g. out of file
/// descriptors) are logged and retried, never returned.
pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "http: serving /metrics /health /ready /stats");
    }
    let state = Arc::new(state);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let tracker = TaskTracker::new();
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.cancelled() => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "http: accept failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let state = Arc::clone(&state);
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let service = service_fn(move |req| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(route(&state, req).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    tokio::time::timeout(CLOSE_GRACE, conn.as_mut())
                        .await
                        .unwrap_or(Ok(()))
                }
            };
            if let Err(error) = result {
                tracing::debug!(%error, "http: connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tracker.close();
    // Connections watch the same token; this only bounds a connection stuck in a slow write.
    let _ = tokio::time::timeout(CLOSE_GRACE * 2, tracker.wait()).await;
    tracing::info!("http: stopped");
    Ok(())
}

async fn route(state: &HttpState, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = respond(StatusCode::METHOD_NOT_ALLOWED, TEXT, "method not allowed\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let r = match req.uri().path() {
        "/metrics" => respond(StatusCode::OK, PROMETHEUS_TEXT, scrape(state).await),
        "/health" => respond(StatusCode::OK, TEXT, "ok\n"),
        "/ready" => ready(state).await,
        "/stats" => stats(state).await,
        _ => respond(StatusCode::NOT_FOUND, TEXT, "not found\n"),
    };
    tracing::debug!(
        path = req.uri().path(),
        status = r.status().as_u16(),
        "http: request"
    );
    r
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Reads every queue's depth and the failed_jobs count, records whether each store answered,
/// and renders the metrics.
async fn scrape(state: &HttpState) -> String {
    let now = unix_now();
    let depths = join_all(
        state
            .queues
            .iter()
            .map(|q| tokio::time::timeout(STORE_TIMEOUT, state.queue.stats(q))),
    );
    let failed = tokio::time::timeout(STORE_TIMEOUT, state.failed.count());
    let (depths, failed) = tokio::join!(depths, failed);

    let mut redis_up = true;
    let mut read = Vec::with_capacity(depths.len());
    for (queue, result) in state.queues.iter().zip(depths) {
        match result {
            Ok(Ok(stats)) => read.push(QueueDepth::from_stats(queue, &stats, now)),
            Ok(Err(error)) if !error.is_connection() => {
                // Redis answered, but not as a queue should (e.g. WRONGTYPE): a setup problem.
                tracing::warn!(%error, queue = %queue, "http: cannot read queue depth");
            }
            Ok(Err(error)) => {
                redis_up = false;
                tracing::debug!(%error, queue = %queue, "http: redis unreachable during scrape");
            }
            Err(_) => {
                redis_up = false;
                tracing::debug!(queue = %queue, "http: redis did not answer within the scrape timeout");
            }
        }
    }
    if !state.queues.is_empty() {
        state.metrics.redis_up(redis_up);
    }
    match failed {
        Ok(Ok(rows)) => {
            state.metrics.db_up(true);
            state.metrics.failed_jobs(rows);
        }
        Ok(Err(error)) => {
            state.metrics.db_up(false);
            tracing::debug!(%error, "http: cannot count failed_jobs during scrape");
        }
        Err(_) => {
            state.metrics.db_up(false);
            tracing::debug!("http: failed_jobs database did not answer within the scrape timeout");
        }
    }
    state.metrics.render_with(&read, &state.breakers.states())
}

/// One line per open WhatsApp circuit breaker, for `/ready`.
fn open_breakers(state: &HttpState) -> String {
    let mut out = String::new();
    for b in state.breakers.states().iter().filter(|b| b.open) {
        let probe = match b.probe_in_s {
            Some(s) => format!("probe in {s}s"),
            None => "no probe until the token changes or the worker restarts".to_owned(),
        };
        out.push_str(&format!(
            "whatsapp circuit breaker open: sender {} (Meta error {}), {probe}\n",
            b.sender.phone_number_id,
            b.code.unwrap_or_default()
        ));
    }
    out
}

async fn ready(state: &HttpState) -> Response<Full<Bytes>> {
    if state.stopping.is_cancelled() {
        return respond(
            StatusCode::SERVICE_UNAVAILABLE,
            TEXT,
            "not ready: shutting down\n",
        );
    }
    match tokio::time::timeout(STORE_TIMEOUT, state.queue.ping()).await {
        Ok(Ok(())) => {
            state.metrics.redis_up(true);
            respond(
                StatusCode::OK,
                TEXT,
                format!("{}{}", ready_text(&state.metrics), open_breakers(state)),
            )
        }
        Ok(Err(error)) => {
            state.metrics.redis_up(false);
            tracing::debug!(%error, "http: /ready: redis ping failed");
            respond(
                StatusCode::SERVICE_UNAVAILABLE,
                TEXT,
                "not ready: redis unreachable\n",
            )
        }
        Err(_) => {
            state.metrics.redis_up(false);
            respond(
                StatusCode::SERVICE_UNAVAILABLE,
                TEXT,
                "not ready: redis unreachable\n",
            )
        }
    }
}

/// `ready`, then what the worker skips: a paused worker keeps its jobs and a paused queue is the
/// operator's choice, so neither makes it unready (PHP's `queue:work` stays up while paused too).
fn ready_text(metrics: &Metrics) -> String {
    let Some(paused) = metrics.paused() else {
        return "ready\n".to_owned();
    };
    let mut text = "ready\n".to_owned();
    if paused.worker {
        text.push_str("worker paused (SIGUSR2): taking no new job until SIGCONT\n");
    }
    let queues = paused.paused_queues();
    if !queues.is_empty() {
        text.push_str(&format!("paused queues: {}\n", queues.join(",")));
    }
    text
}

/// The queues `/stats` sizes: the worker's, then the default queue if it is not among them.
fn stats_queues(state: &HttpState) -> Vec<&str> {
    let mut queues: Vec<&str> = Vec::with_capacity(state.queues.len() + 1);
    for q in state
        .queues
        .iter()
        .chain(std::iter::once(&state.default_queue))
    {
        if !queues.contains(&q.as_str()) {
            queues.push(q);
        }
    }
    queues
}

async fn stats(state: &HttpState) -> Response<Full<Bytes>> {
    let queues = stats_queues(state);
    let sizes = join_all(
        queues
            .iter()
            .map(|q| tokio::time::timeout(STORE_TIMEOUT, state.queue.size(q))),
    );
    let failed = tokio::time::timeout(STORE_TIMEOUT, state.failed.count());
    let (sizes, failed) = tokio::join!(sizes, failed);

    let mut per_queue = Map::new();
    for (queue, size) in queues.iter().zip(sizes) {
        match size {
            Ok(Ok(n)) => {
                per_queue.insert((*queue).to_owned(), json!(n));
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, queue = %queue, "http: /stats: cannot read queue size");
                if error.is_connection() {
                    state.metrics.redis_up(false);
                }
                return unavailable("redis unreachable");
            }
            Err(_) => {
                state.metrics.redis_up(false);
                return unavailable("redis unreachable");
            }
        }
    }
    let failed_jobs = match failed {
        Ok(Ok(n)) => {
            state.metrics.db_up(true);
            state.metrics.failed_jobs(n);
            n
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, "http: /stats: cannot count failed_jobs");
            state.metrics.db_up(false);
            return unavailable("failed_jobs database unreachable");
        }
        Err(_) => {
            state.metrics.db_up(false);
            return unavailable("failed_jobs database unreachable");
        }
    };
    let pending_jobs = per_queue
        .get(&state.default_queue)
        .cloned()
        .unwrap_or(json!(0));
    let body = json!({
        "queue_system": "Laravel 10 Background Jobs",
        "performance_equivalent": "Laravel 12 Deferred Functions",
        "stats": {
            "pending_jobs": pending_jobs,
            "failed_jobs": failed_jobs,
            "queues": state.queues,
            "workers_active": !state.stopping.is_cancelled(),
            "pending_per_queue": Json::Object(per_queue),
        }
    });
    respond(StatusCode::OK, JSON, body.to_string())
}

fn unavailable(reason: &str) -> Response<Full<Bytes>> {
    respond(
        StatusCode::SERVICE_UNAVAILABLE,
        JSON,
        json!({ "error": reason }).to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Paused;

    #[test]
    fn ready_names_what_is_paused_and_stays_ready() {
        let metrics = Metrics::new();
        assert_eq!(ready_text(&metrics), "ready\n");
        metrics.set_paused(Paused {
            worker: false,
            queues: vec![("emails".into(), true), ("default".into(), false)],
        });
        assert_eq!(ready_text(&metrics), "ready\npaused queues: emails\n");
        metrics.set_paused(Paused {
            worker: true,
            queues: vec![("emails".into(), true), ("default".into(), true)],
        });
        assert_eq!(
            ready_text(&metrics),
            "ready\nworker paused (SIGUSR2): taking no new job until SIGCONT\npaused queues: emails,default\n"
        );
    }
}
