//! `defer-worker console --http ADDR` (the operator console without a worker) and the console's
//! set-up for `work --http`: its tokens from the settings, the rule on non-loopback addresses, the
//! stores it reads and writes.
//!
//! Tokens: `DEFER_WORKER_CONSOLE_TOKEN` (admin) or the file `DEFER_WORKER_CONSOLE_TOKEN_FILE` names,
//! and `DEFER_WORKER_CONSOLE_READ_TOKEN` (read-only). With none, the console is served on a loopback
//! address only: `console` refuses to start on another, and `work --http` on another keeps its
//! probes and `/metrics` (a kubelet or Prometheus needs them) but mounts no console, with a warning.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::connect;
use super::failed::SettingsOpener;
use super::work::{fleet_store, listen_for_signals};
use crate::admin::retry::RetryOptions;
use crate::config::Settings;
use crate::http::auth::Tokens;
use crate::http::{self, Console, FleetView, HttpState};
use crate::laravel::cache_store::CacheStore;
use crate::laravel::connection::{Connection, Driver};
use crate::logging;
use crate::metrics::Metrics;

const EXAMPLES: &str = "\
Examples:
  defer-worker console                                   # http://127.0.0.1:9091, no token needed
  defer-worker console --http 127.0.0.1:8080 --queue whatsapp,emails,default
  DEFER_WORKER_CONSOLE_TOKEN_FILE=/etc/defer-worker/console-token \\
    defer-worker console --http 0.0.0.0:9091             # elsewhere than loopback: a token is required

Pages: / (queues, failures per hour), /workers, /failed (search, one job decoded, retry, forget),
/queues (pause, resume, clear). JSON API under /api/ (see the README). /metrics, /health, /ready and
/stats need no token. Tokens: DEFER_WORKER_CONSOLE_TOKEN (admin, or DEFER_WORKER_CONSOLE_TOKEN_FILE)
and DEFER_WORKER_CONSOLE_READ_TOKEN (read-only), 16 characters or more; send them as
`Authorization: Bearer <token>` or sign in on the login page (an HttpOnly cookie).";

/// Arguments of `defer-worker console`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct ConsoleArgs {
    /// Address to serve on; a non-loopback address needs DEFER_WORKER_CONSOLE_TOKEN.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9091")]
    pub http: SocketAddr,
    /// Queues to show, comma list (default: as `work` chooses them).
    #[arg(long)]
    pub queue: Option<String>,
    /// The queue connection (default: QUEUE_CONNECTION, else `redis`).
    #[arg(long)]
    pub connection: Option<String>,
    /// SQLite file for failed_jobs when no DB_CONNECTION/DATABASE_URL is set (as `work --failed-db`).
    #[arg(long, value_name = "PATH")]
    pub failed_db: Option<std::path::PathBuf>,
}

/// The console's tokens from the settings.
pub fn tokens(settings: &Settings) -> anyhow::Result<Tokens> {
    let direct = settings.env("DEFER_WORKER_CONSOLE_TOKEN");
    let file = settings.env("DEFER_WORKER_CONSOLE_TOKEN_FILE");
    let (admin, name) =
        match (direct, file) {
            (Some(_), Some(_)) => anyhow::bail!(
            "DEFER_WORKER_CONSOLE_TOKEN and DEFER_WORKER_CONSOLE_TOKEN_FILE are both set: keep one"
        ),
            (Some(t), None) => (Some(t), "DEFER_WORKER_CONSOLE_TOKEN"),
            (None, Some(path)) => (
                Some(std::fs::read_to_string(&path).with_context(|| {
                    format!("DEFER_WORKER_CONSOLE_TOKEN_FILE: cannot read {path}")
                })?),
                "the file DEFER_WORKER_CONSOLE_TOKEN_FILE names",
            ),
            (None, None) => (None, "DEFER_WORKER_CONSOLE_TOKEN"),
        };
    let read = settings.env("DEFER_WORKER_CONSOLE_READ_TOKEN");
    Ok(Tokens::new(admin.as_deref(), name, read.as_deref())?)
}

/// The console for a server on `addr`, or None when it must not be mounted there (no token on a
/// non-loopback address); `strict` makes that an error instead (the `console` command).
pub fn build(
    settings: &Settings,
    conn: &Connection,
    addr: SocketAddr,
    pause: Option<CacheStore>,
    strict: bool,
) -> anyhow::Result<Option<Console>> {
    let tokens = tokens(settings)?;
    if tokens.is_open() && !addr.ip().is_loopback() {
        anyhow::ensure!(
            !strict,
            "--http {addr} is not a loopback address: set DEFER_WORKER_CONSOLE_TOKEN (or \
             DEFER_WORKER_CONSOLE_TOKEN_FILE) so the console is not open to the network, or serve on 127.0.0.1"
        );
        tracing::warn!(%addr, "http: no DEFER_WORKER_CONSOLE_TOKEN, so the console is not served on this non-loopback address (the probes and /metrics are)");
        return Ok(None);
    }
    Ok(Some(Console {
        tokens,
        encrypter: connect::encrypter(settings)?,
        opener: Arc::new(SettingsOpener {
            settings: settings.clone(),
        }),
        retry: RetryOptions {
            // As `failed retry`: rows of `redis` go to our Redis, and so do the rows of the worked
            // connection when it is a Redis one under another name.
            redis_connections: if conn.driver == Driver::Redis && conn.name != "redis" {
                vec!["redis".to_owned(), conn.name.clone()]
            } else {
                vec!["redis".to_owned()]
            },
            keep_retry_until: false,
        },
        connection: conn.name.clone(),
        pause,
    }))
}

pub async fn run(
    args: &ConsoleArgs,
    settings: &Settings,
    log: &logging::Handle,
) -> anyhow::Result<ExitCode> {
    let file = settings.file();
    let conn = connect::worker_connection(settings, args.connection.as_deref())?;
    let queues: Vec<String> = match args.queue.clone().or_else(|| file.worker.queue.clone()) {
        Some(list) => connect::queue_list(&list)?,
        None => vec![conn.queue.clone()],
    };
    let pause = CacheStore::from_lookup(&settings.lookup())
        .await
        .context("the app's cache store (for pausing queues)")?;
    let console = build(settings, &conn, args.http, pause, true)?
        .context("the console cannot be served on this address")?;
    let (_, queue) = connect::queue(settings, &conn).await?;
    let failed_db = args
        .failed_db
        .clone()
        .or_else(|| file.worker.failed_db.clone());
    let (_, failed) = connect::failed_jobs(settings, failed_db.as_deref()).await?;
    let listener = tokio::net::TcpListener::bind(args.http)
        .await
        .with_context(|| format!("--http {}: cannot listen", args.http))?;
    let shutdown = CancellationToken::new();
    listen_for_signals(shutdown.clone(), log.clone());
    let state = HttpState {
        metrics: Arc::new(Metrics::new()),
        queue,
        queues,
        default_queue: conn.queue.clone(),
        failed,
        stopping: shutdown.clone(),
        breakers: Default::default(),
        fleet: fleet_store(settings).await.map(|store| FleetView {
            store,
            own_id: String::new(),
        }),
        console: Some(Arc::new(console)),
    };
    tracing::info!(addr = %args.http, "console: open http://{}/", args.http);
    http::serve(listener, state, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}
