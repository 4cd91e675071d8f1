//! Accepting connections and routing each request: the probes first, then the console when mounted.
//! Bounded: [`MAX_CONNECTIONS`] at once, headers within [`HEADER_TIMEOUT`], a short grace at shutdown.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::response::{respond, TEXT};
use super::{console, probes, HttpState};

/// A client must send its request headers within this time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 64;
/// How long open connections get to finish their request once the server stops.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Serves HTTP/1.1 on `listener` until `shutdown` is cancelled, then lets open connections finish
/// their current request (up to a short grace period) and returns. Accept errors (e.g. out of file
/// descriptors) are logged and retried, never returned.
pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, console = state.console.is_some(), "http: serving /metrics /health /ready /stats");
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
    let path = req.uri().path().to_owned();
    let probe = matches!(path.as_str(), "/metrics" | "/health" | "/ready" | "/stats");
    let r = if probe || state.console.is_none() {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut r = respond(StatusCode::METHOD_NOT_ALLOWED, TEXT, "method not allowed\n");
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        match probes::route(state, &path).await {
            Some(r) => r,
            None => respond(StatusCode::NOT_FOUND, TEXT, "not found\n"),
        }
    } else {
        console::route(state, req).await
    };
    tracing::debug!(path = %path, status = r.status().as_u16(), "http: request");
    r
}
