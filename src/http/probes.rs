//! The probes and the app's stats endpoint: `/metrics`, `/health`, `/ready`, `/stats` (see the table in
//! [`super`]). They never need a token: a kubelet, Prometheus or a load balancer calls them, and they
//! show counts, never a payload.

use futures::future::join_all;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};
use serde_json::{json, Map, Value as Json};

use super::response::{respond, JSON, TEXT};
use super::{HttpState, PROMETHEUS_TEXT, STORE_TIMEOUT};
use crate::fleet::list_workers;
use crate::metrics::{Metrics, QueueDepth};
use crate::util::clock::unix_now;

/// `/metrics`, `/health`, `/ready`, `/stats`; None for any other path.
pub async fn route(state: &HttpState, path: &str) -> Option<Response<Full<Bytes>>> {
    Some(match path {
        "/metrics" => respond(StatusCode::OK, PROMETHEUS_TEXT, scrape(state).await),
        "/health" => respond(StatusCode::OK, TEXT, "ok\n"),
        "/ready" => ready(state).await,
        "/stats" => stats(state).await,
        _ => return None,
    })
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
    let running = !state.stopping.is_cancelled();
    let (workers_active, workers) = match fleet_workers(state).await {
        Some((others, total)) => (running || others > 0, Some(total)),
        None => (running, None),
    };
    let mut body = json!({
        "queue_system": "Laravel 10 Background Jobs",
        "performance_equivalent": "Laravel 12 Deferred Functions",
        "stats": {
            "pending_jobs": pending_jobs,
            "failed_jobs": failed_jobs,
            "queues": state.queues,
            "workers_active": workers_active,
            "pending_per_queue": Json::Object(per_queue),
        }
    });
    if let Some(n) = workers {
        body["stats"]["workers"] = json!(n);
    }
    respond(StatusCode::OK, JSON, body.to_string())
}

/// Workers in the fleet registry other than this one, and in all; `None` when the registry is off or
/// cannot be read now (logged).
async fn fleet_workers(state: &HttpState) -> Option<(usize, usize)> {
    let fleet = state.fleet.as_ref()?;
    match tokio::time::timeout(STORE_TIMEOUT, list_workers(&fleet.store)).await {
        Ok(Ok(workers)) => {
            let others = workers.iter().filter(|w| w.id != fleet.own_id).count();
            Some((others, workers.len()))
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, "http: /stats: cannot read the fleet registry");
            None
        }
        Err(_) => {
            tracing::warn!("http: /stats: the fleet registry did not answer in time");
            None
        }
    }
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
