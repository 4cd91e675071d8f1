//! `defer-worker work`: resolves the settings, connects Redis and the failed_jobs database, installs the
//! signal handlers and runs the [`Worker`] until it stops.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::connect;
use crate::actions::ledger::Ledger;
use crate::actions::{Actions, Deps};
use crate::app::AppData;
use crate::cli::WorkArgs;
use crate::config::FileConfig;
use crate::http::{self, HttpState};
use crate::laravel::cache_store::CacheStore;
use crate::laravel::connection::{Connection, Driver};
use crate::laravel::queue::Queue;
use crate::laravel::redis_config::hash_tag;
use crate::laravel::redis_queue::RedisQueue;
use crate::metrics::Metrics;
use crate::php;
use crate::worker::job::Decider;
use crate::worker::permits::ActionPermits;
use crate::worker::settle::Settler;
use crate::worker::{Worker, WorkerOptions};

/// Flags > environment (the connection's settings) > file > the connection's and Laravel's defaults.
pub fn resolve_options(
    args: &WorkArgs,
    file: &FileConfig,
    conn: &Connection,
) -> anyhow::Result<WorkerOptions> {
    let w = &file.worker;
    let d = WorkerOptions::default();
    let queue = args
        .queue
        .clone()
        .or_else(|| conn.queue_from_env.then(|| conn.queue.clone()))
        .or_else(|| w.queue.clone());
    let queues: Vec<String> = match queue {
        Some(q) => q
            .split(',')
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(String::from)
            .collect(),
        None if conn.driver == Driver::Redis => d.queues.clone(),
        None => vec![conn.queue.clone()],
    };
    anyhow::ensure!(
        !queues.is_empty(),
        "--queue is empty: give at least one queue name"
    );
    let retry_after = args
        .retry_after
        .or_else(|| conn.retry_after_from_env.then_some(conn.retry_after))
        .or(w.retry_after)
        .unwrap_or(conn.retry_after);
    anyhow::ensure!(retry_after > 0, "--retry-after must be at least 1 second");
    let secs = |v: Option<f64>, name: &str| -> anyhow::Result<Option<Duration>> {
        v.map(|s| {
            Duration::try_from_secs_f64(s)
                .with_context(|| format!("{name} must be a number of seconds ≥ 0"))
        })
        .transpose()
    };
    let backoff = args
        .backoff
        .clone()
        .or_else(|| w.backoff.clone())
        .unwrap_or(d.backoff.clone());
    anyhow::ensure!(
        backoff.split(',').all(|b| b.trim().parse::<u64>().is_ok()),
        "--backoff {backoff:?} must be whole seconds, comma separated (e.g. 10,60,300)"
    );
    let concurrency = args.concurrency.or(w.concurrency).unwrap_or(d.concurrency);
    anyhow::ensure!(concurrency > 0, "--concurrency must be at least 1");
    let l = &file.limits;
    let options = WorkerOptions {
        max_payload_bytes: args
            .max_payload_bytes
            .or(l.max_payload_bytes)
            .unwrap_or(d.max_payload_bytes),
        unserialize: php::Limits {
            max_depth: l.max_depth.unwrap_or(d.unserialize.max_depth),
            max_elements: l.max_elements.unwrap_or(d.unserialize.max_elements),
        },
        action_concurrency: l.actions.clone(),
        queues,
        connection: conn.name.clone(),
        tries: args.tries.or(w.tries).unwrap_or(d.tries),
        backoff,
        timeout: args.timeout.or(w.timeout).unwrap_or(d.timeout),
        sleep: secs(args.sleep.or(w.sleep), "--sleep")?.unwrap_or(d.sleep),
        rest: secs(args.rest.or(w.rest), "--rest")?.unwrap_or(d.rest),
        stop_when_empty: args.stop_when_empty,
        max_jobs: args.max_jobs.unwrap_or(0),
        max_time: Duration::from_secs(args.max_time.unwrap_or(0)),
        retry_after,
        retry_after_per_queue: file
            .queues
            .iter()
            .filter_map(|(q, s)| Some((q.clone(), s.retry_after?)))
            .collect(),
        concurrency,
        handoff_queue: args
            .handoff_queue
            .clone()
            .or_else(|| w.handoff_queue.clone())
            .unwrap_or(d.handoff_queue),
        class: w.class.clone().unwrap_or(d.class),
        drain_timeout: args
            .drain_timeout
            .or(w.drain_timeout)
            .map(Duration::from_secs)
            .unwrap_or(d.drain_timeout),
    };
    options.check_limits().map_err(anyhow::Error::msg)?;
    Ok(options)
}

/// On Redis Cluster, refuses to start when a queue (or its hand-off queue) has no `{hash tag}`
/// or a hand-off queue is in another slot than its queue: the queue scripts would fail on every
/// job with CROSSSLOT otherwise.
fn check_cluster_queues(redis: &RedisQueue, options: &WorkerOptions) -> anyhow::Result<()> {
    if !redis.is_cluster() {
        return Ok(());
    }
    for q in &options.queues {
        redis.check_queue(q)?;
    }
    for q in &options.queues {
        let handoff = options.handoff_queue_for(q);
        let same_slot = hash_tag(&redis.key(q)) == hash_tag(&redis.key(&handoff));
        anyhow::ensure!(
            same_slot,
            "queue {q:?}: its hand-off queue {handoff:?} has another hash tag, so on Redis Cluster a \
             foreign job cannot be handed off atomically; use --handoff-queue '{{queue}}-php' (or \
             worker.handoff_queue) so the hand-off queue keeps the queue's {{tag}}"
        );
    }
    Ok(())
}

pub async fn run(args: &WorkArgs, file: &FileConfig) -> anyhow::Result<ExitCode> {
    let conn = connect::connection(
        args.connection
            .as_deref()
            .or(file.worker.connection.as_deref()),
    )?;
    let options = resolve_options(args, file, &conn)?;
    let (queue_desc, queue) = connect::queue(&conn).await?;
    if let Queue::Redis(redis) = &queue {
        check_cluster_queues(redis, &options)?;
    }
    let driver = queue.driver();
    let failed_db = args
        .failed_db
        .clone()
        .or_else(|| file.worker.failed_db.clone());
    let (db_cfg, failed) = connect::failed_jobs(failed_db.as_deref()).await?;
    let encrypter = connect::encrypter()?;
    let restart = restart_store().await?;
    let actions = build_actions(file, restart.clone()).await?;
    let shutdown = CancellationToken::new();
    listen_for_signals(shutdown.clone());
    let metrics = Arc::new(Metrics::new());
    let http_stop = CancellationToken::new();
    let server = match args.http {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("--http {addr}: cannot listen"))?;
            let state = HttpState {
                metrics: Arc::clone(&metrics),
                queue: queue.clone(),
                queues: options.queues.clone(),
                default_queue: conn.queue.clone(),
                failed: failed.clone(),
                stopping: shutdown.clone(),
            };
            Some(tokio::spawn(http::serve(
                listener,
                state,
                http_stop.clone(),
            )))
        }
        None => None,
    };
    let worker = Worker {
        queue: queue.clone(),
        decider: Arc::new(Decider {
            options: Arc::new(options.clone()),
            actions: Arc::new(actions),
            encrypter,
            limits: options.unserialize.clone(),
            permits: ActionPermits::new(&options.action_concurrency),
        }),
        settler: Settler {
            queue,
            failed,
            connection: options.connection.clone(),
            shutdown: shutdown.clone(),
        },
        shutdown,
        metrics,
        restart,
    };
    tracing::info!(connection = %conn.name, driver = driver, queue_store = %queue_desc, failed_jobs = %db_cfg, "connected");
    worker.run().await;
    http_stop.cancel();
    if let Some(server) = server {
        let _ = server.await;
    }
    Ok(ExitCode::SUCCESS)
}

/// The action table of the config file, built on the app's database, its cache store and (for `email`)
/// the sent-ledger in the queue's Redis (for `email` and `whatsapp`).
async fn build_actions(file: &FileConfig, cache: Option<CacheStore>) -> anyhow::Result<Actions> {
    let plan = file.actions();
    let app = AppData::from_env(&file.app).await?;
    let ledger = if plan.uses_ledger() {
        match Ledger::from_env().await {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!(
                    "no sent-ledger ({e:#}): a retried job may resend a mail or a WhatsApp message"
                );
                None
            }
        }
    } else {
        None
    };
    let actions = Actions::build(&plan, &Deps { app, cache, ledger }).await?;
    let table = actions
        .summary()
        .iter()
        .map(|(name, kind)| format!("{name}={kind}"))
        .collect::<Vec<_>>()
        .join(" ");
    tracing::info!(actions = %table, "actions");
    Ok(actions)
}

/// The app's cache store, where `queue:restart` leaves its signal. Unusable settings stop the start;
/// a store that cannot carry the signal (`array`) is only a warning, as PHP's workers do not see it either.
async fn restart_store() -> anyhow::Result<Option<CacheStore>> {
    let store = CacheStore::from_env()
        .await
        .context("the app's cache store (for the queue:restart signal)")?;
    match &store {
        Some(s) => tracing::debug!(store = %s.describe(), "restart signal store"),
        None => tracing::warn!(
            "CACHE_DRIVER=array: `queue:restart` cannot reach this worker; use SIGTERM to stop it"
        ),
    }
    Ok(store)
}

/// SIGTERM or SIGINT: stop taking jobs and drain. A second signal exits at once (jobs stay reserved).
fn listen_for_signals(token: CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                tracing::error!("cannot install signal handlers");
                return;
            };
            for n in 0.. {
                tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
                if n == 0 {
                    tracing::info!("signal received: finishing running jobs, taking no new ones");
                    token.cancel();
                } else {
                    tracing::warn!(
                        "second signal: exiting now; unfinished jobs return after retry_after"
                    );
                    std::process::exit(1);
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            token.cancel();
        }
    });
}
