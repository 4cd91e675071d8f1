//! `defer-worker work`: resolves the worker's options from its flags and the command's [`Settings`],
//! connects the queue, the failed_jobs database, the app's data and cache store, installs the signal
//! handlers and runs the [`Worker`] until it stops. The composition root: everything is built here and
//! passed down.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::breaker_board;
use super::connect;
use super::startup;
use crate::actions::ledger::Ledger;
use crate::actions::whatsapp::{Breakers, WhatsappSettings};
use crate::actions::{Actions, Deps, Plan};
use crate::app::{AppData, AppSection};
use crate::config::{FileConfig, Settings};
use crate::fleet::{Beat, FleetStore, Identity, Registry};
use crate::http::{self, FleetView, HttpState};
use crate::laravel::cache_store::CacheStore;
use crate::laravel::connection::{Connection, Driver};
use crate::laravel::queue::Queue;
use crate::laravel::redis_config::{hash_tag, RedisConfig};
use crate::laravel::redis_queue::RedisQueue;
use crate::logging;
use crate::metrics::Metrics;
use crate::php;
use crate::util::runtime;
use crate::worker::chain;
use crate::worker::exceptions::ExceptionCounter;
use crate::worker::job::Decider;
use crate::worker::pause::Pauses;
use crate::worker::permits::ActionPermits;
use crate::worker::settle::Settler;
use crate::worker::{Worker, WorkerOptions};

/// Arguments of `defer-worker work` (`php artisan queue:work`'s flags, plus ours).
#[derive(Debug, Default, clap::Args)]
pub struct WorkArgs {
    /// Queues to work, highest priority first (comma list). Default: REDIS_QUEUE, else `default`.
    #[arg(long, value_name = "Q1,Q2")]
    pub queue: Option<String>,
    /// Connection name written to failed_jobs.
    #[arg(long)]
    pub connection: Option<String>,
    /// Attempts before a job fails, when its payload has no maxTries (0 = unlimited). Laravel's default: 1.
    #[arg(long)]
    pub tries: Option<i64>,
    /// Seconds before a failed job is retried, when its payload has none; a comma list per attempt.
    #[arg(long, value_name = "S[,S…]")]
    pub backoff: Option<String>,
    /// Seconds a job may run, when its payload has no timeout (0 = none).
    #[arg(long)]
    pub timeout: Option<u64>,
    /// Longest idle wait in seconds (new jobs wake the worker at once).
    #[arg(long)]
    pub sleep: Option<f64>,
    /// Seconds to rest after each job.
    #[arg(long)]
    pub rest: Option<f64>,
    /// Stop when the queues are empty and no job is running.
    #[arg(long)]
    pub stop_when_empty: bool,
    /// Stop after this many jobs.
    #[arg(long)]
    pub max_jobs: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long)]
    pub max_time: Option<u64>,
    /// Seconds a reserved job is kept before any worker may take it again (the connection's retry_after).
    #[arg(long)]
    pub retry_after: Option<u64>,
    /// Jobs in flight (reserved) at once in this process: the in-flight limit. Per-action limits:
    /// `[limits.actions]` in the config file.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Threads running the jobs (default 1: one core, like one queue:work process). Run more
    /// processes to use more cores, or raise this when the actions themselves are CPU-heavy.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Largest payload read, in bytes (default 1048576); a larger one goes to failed_jobs unparsed.
    /// Also `[limits] max_payload_bytes`.
    #[arg(long, env = "DEFER_WORKER_MAX_PAYLOAD_BYTES", value_name = "BYTES")]
    pub max_payload_bytes: Option<usize>,
    /// Queue for jobs defer-worker does not run (other classes, `forward` actions); `{queue}` = source queue.
    #[arg(long, value_name = "QUEUE")]
    pub handoff_queue: Option<String>,
    /// Seconds running jobs get to finish after SIGTERM/SIGINT.
    #[arg(long)]
    pub drain_timeout: Option<u64>,
    /// SQLite file for failed_jobs when no DB_CONNECTION/DATABASE_URL is set.
    #[arg(long, value_name = "PATH")]
    pub failed_db: Option<std::path::PathBuf>,
    /// Serve /metrics (Prometheus), /health, /ready, /stats and the operator console on this address,
    /// e.g. 127.0.0.1:9090. Off by default. Elsewhere than loopback the console needs
    /// DEFER_WORKER_CONSOLE_TOKEN (without it only the probes and /metrics are served).
    #[arg(long, value_name = "ADDR")]
    pub http: Option<std::net::SocketAddr>,
    /// Do not announce this worker in the fleet registry nor add its counts to the fleet history
    /// (both in the app's Redis, see the README's Fleet section).
    #[arg(long, env = "DEFER_WORKER_NO_FLEET", value_parser = clap::builder::FalseyValueParser::new())]
    pub no_fleet: bool,
    /// Run `defer-worker check` with these flags and exit (0 when nothing failed) instead of working.
    #[arg(long)]
    pub check: bool,
}

/// The threads of the async runtime `work` runs on (`--threads`, `[worker] threads`, else
/// [`runtime::DEFAULT_THREADS`]); read before the runtime starts, so apart from the other options.
pub fn threads(args: &WorkArgs, file: &FileConfig) -> anyhow::Result<usize> {
    let threads = args
        .threads
        .or(file.worker.threads)
        .unwrap_or(runtime::DEFAULT_THREADS);
    anyhow::ensure!(
        (1..=MAX_THREADS).contains(&threads),
        "--threads (worker.threads) is {threads}: it must be between 1 and {MAX_THREADS}"
    );
    Ok(threads)
}

/// More threads than this is a typo, not a machine.
const MAX_THREADS: usize = 1024;

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
        Some(q) => connect::queue_list(&q)?,
        None if conn.driver == Driver::Redis => d.queues.clone(),
        None => vec![conn.queue.clone()],
    };
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
    let threads = threads(args, file)?;
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
        threads,
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

/// Runs the worker; `log` is the log writer (its dropped lines are a metric; flushed on a hard exit).
pub async fn run(
    args: &WorkArgs,
    settings: &Settings,
    log: &logging::Handle,
) -> anyhow::Result<ExitCode> {
    let file = settings.file();
    let conn = connect::worker_connection(settings, args.connection.as_deref())?;
    let options = resolve_options(args, file, &conn)?;
    let (queue_desc, queue) = connect::queue(settings, &conn).await?;
    if let Queue::Redis(redis) = &queue {
        check_cluster_queues(redis, &options)?;
    }
    let driver = queue.driver();
    let failed_db = args
        .failed_db
        .clone()
        .or_else(|| file.worker.failed_db.clone());
    let (db_cfg, failed) = connect::failed_jobs(settings, failed_db.as_deref()).await?;
    let encrypter = connect::encrypter(settings)?;
    let restart = restart_store(settings).await?;
    let breakers = Breakers::default();
    let actions = build_actions(settings, restart.clone(), breakers.clone()).await?;
    if actions
        .summary()
        .iter()
        .any(|(_, kind)| *kind == "whatsapp")
    {
        let today = chrono::DateTime::from_timestamp(crate::util::clock::unix_now(), 0)
            .unwrap_or_default()
            .date_naive();
        startup::whatsapp_api_version(&WhatsappSettings::from_lookup(&settings.lookup())?, today)?;
    }
    let shutdown = CancellationToken::new();
    listen_for_signals(shutdown.clone(), log.clone());
    let metrics = Arc::new(Metrics::with_log(log.clone()));
    let fleet = if args.no_fleet {
        tracing::info!("fleet: off (--no-fleet)");
        None
    } else {
        fleet_store(settings).await
    };
    // Made even when the fleet is off: it costs nothing and keeps one code path.
    let registry = Arc::new(Registry::new(
        Identity {
            connection: conn.name.clone(),
            driver: driver.to_owned(),
            queues: options.queues.clone(),
            concurrency: options.concurrency,
        },
        Arc::clone(&metrics),
    ));
    let pauses = Arc::new(Pauses::new(options.queues.clone(), Arc::clone(&metrics)));
    listen_for_pause_signals(Arc::clone(&pauses));
    let http_stop = CancellationToken::new();
    let server = match args.http {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("--http {addr}: cannot listen"))?;
            let console = super::console::build(settings, &conn, addr, restart.clone(), false)?;
            let state = HttpState {
                metrics: Arc::clone(&metrics),
                queue: queue.clone(),
                queues: options.queues.clone(),
                default_queue: conn.queue.clone(),
                failed: failed.clone(),
                stopping: shutdown.clone(),
                console: console.map(Arc::new),
                fleet: fleet.as_ref().map(|store| FleetView {
                    store: store.clone(),
                    own_id: registry.id().to_owned(),
                }),
                breakers: breakers.clone(),
            };
            Some(tokio::spawn(http::serve(
                listener,
                state,
                http_stop.clone(),
            )))
        }
        None => None,
    };
    let beat_stop = CancellationToken::new();
    let beat = fleet.map(|store| {
        tracing::info!(id = %registry.id(), redis = %store.endpoint(), "fleet: announcing this worker");
        let beat = Beat {
            store,
            registry: Arc::clone(&registry),
            metrics: Arc::clone(&metrics),
            queue: queue.clone(),
            queues: options.queues.clone(),
        };
        tokio::spawn(beat.run(beat_stop.clone()))
    });
    let board = restart.clone().map(|store| {
        tokio::spawn(breaker_board::publish(
            store,
            breakers.clone(),
            http_stop.clone(),
        ))
    });
    let worker = Worker {
        queue: queue.clone(),
        decider: Arc::new(Decider {
            options: Arc::new(options.clone()),
            actions: Arc::new(actions),
            encrypter,
            limits: options.unserialize.clone(),
            permits: ActionPermits::new(&options.action_concurrency),
            chain: chain_route(settings, &conn, &queue),
            exceptions: ExceptionCounter::new(restart.clone()),
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
        pauses,
    };
    tracing::info!(connection = %conn.name, driver = driver, queue_store = %queue_desc, failed_jobs = %db_cfg, "connected");
    // On a runtime thread, not `main`'s: the jobs it starts then begin on that thread's own run
    // queue, without waking another thread for each one.
    if let Err(err) = tokio::spawn(worker.run()).await {
        std::panic::resume_unwind(err.into_panic());
    }
    // After the drain, so the last jobs' counts are in the final flush.
    beat_stop.cancel();
    if let Some(beat) = beat {
        let _ = beat.await;
    }
    http_stop.cancel();
    if let Some(server) = server {
        let _ = server.await;
    }
    if let Some(board) = board {
        let _ = board.await;
    }
    Ok(ExitCode::SUCCESS)
}

/// The fleet's Redis: the app's (`REDIS_*`), whatever the queue's driver. Without one the worker
/// runs alone: one line says so, and neither the registry nor the history hear from it.
pub async fn fleet_store(settings: &Settings) -> Option<FleetStore> {
    let cfg = match RedisConfig::from_env(&settings.lookup()) {
        Ok(cfg) => cfg,
        Err(error) => {
            tracing::info!(%error, "fleet: off (no usable Redis settings)");
            return None;
        }
    };
    match FleetStore::connect(&cfg).await {
        Ok(store) => Some(store),
        Err(error) => {
            tracing::info!(%error, "fleet: off (the app's Redis cannot be reached at start)");
            None
        }
    }
}

/// Where the next link of a chain is pushed: the worked connection, when the link names it or names
/// none and it is the app's default (`QUEUE_CONNECTION`, `sync` unless set, as `config/queue.php`).
fn chain_route(settings: &Settings, conn: &Connection, queue: &Queue) -> chain::Route {
    chain::Route {
        connection: conn.name.clone(),
        default_connection: settings
            .env("QUEUE_CONNECTION")
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "sync".to_owned()),
        default_queue: conn.queue.clone(),
        // A queue name without a tag is refused only when the prefix carries none either.
        hash_tag_required: matches!(queue, Queue::Redis(r) if r.check_queue("").is_err()),
    }
}

/// The action table of the config file, built on the app's database, its cache store and (for `email`)
/// the sent-ledger in the queue's Redis (for `email` and `whatsapp`).
async fn build_actions(
    settings: &Settings,
    cache: Option<CacheStore>,
    breakers: Breakers,
) -> anyhow::Result<Actions> {
    let file = settings.file();
    let plan = Plan::from_file(file)?;
    let app = AppData::from_lookup(&AppSection::from_file(file)?, &settings.lookup()).await?;
    if let Some(app) = app.clone() {
        tokio::spawn(report_order_columns(app));
    }
    let ledger = if plan.uses_ledger() {
        match ledger(settings).await {
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
    let deps = Deps {
        settings: settings.clone(),
        app,
        cache,
        ledger,
        breakers,
    };
    let actions = Actions::build(&plan, &deps).await?;
    let table = actions
        .summary()
        .iter()
        .map(|(name, kind)| format!("{name}={kind}"))
        .collect::<Vec<_>>()
        .join(" ");
    tracing::info!(actions = %table, "actions");
    Ok(actions)
}

/// Says which `order_details` column family the actions will read (docs/restrosaas.md §9.21), in the
/// background so that a database that is down does not hold the start (each job then reads it). The
/// answer is kept in `app`'s pool, which the actions share.
async fn report_order_columns(app: AppData) {
    match app.order_columns().await {
        Ok(columns) => tracing::info!(order_lines = %columns, "order lines"),
        Err(e) if e.is_unavailable() => {}
        // A database without the app's tables (only failed_jobs, say) is not worth a warning: the
        // actions that read lines say so when they run.
        Err(e) if e.is_missing_table() => {
            tracing::info!(error = %e, "order lines cannot be read (no table)")
        }
        Err(e) => tracing::warn!(
            error = %e,
            "order lines cannot be read: WhatsApp and e-mail jobs will fail until the table is fixed"
        ),
    }
}

/// The sent-ledger in the queue's Redis (same `REDIS_*` settings and prefix). Errors name the setting
/// or the (masked) endpoint.
async fn ledger(settings: &Settings) -> anyhow::Result<Ledger> {
    let cfg = RedisConfig::from_env(&settings.lookup())
        .map_err(|e| anyhow::anyhow!("invalid Redis settings for the sent-ledger: {e}"))?;
    Ok(Ledger::connect(&cfg).await?)
}

/// The app's cache store, where `queue:restart` leaves its signal. Unusable settings stop the start;
/// a store that cannot carry the signal (`array`) is only a warning, as PHP's workers do not see it either.
async fn restart_store(settings: &Settings) -> anyhow::Result<Option<CacheStore>> {
    let store = CacheStore::from_lookup(&settings.lookup())
        .await
        .context("the app's cache store (for the queue:restart signal)")?;
    match &store {
        Some(s) => tracing::debug!(store = %s.describe(), "restart signal store"),
        None => tracing::warn!(
            "CACHE_DRIVER=array: `queue:restart` cannot reach this worker (use SIGTERM to stop it), \
             and a job's maxExceptions is not counted"
        ),
    }
    Ok(store)
}

/// SIGUSR2 pauses the worker (no new job, running jobs finish), SIGCONT resumes it, as `queue:work`.
fn listen_for_pause_signals(pauses: Arc<Pauses>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut usr2), Ok(mut cont)) = (
            signal(SignalKind::user_defined2()),
            signal(SignalKind::from_raw(libc::SIGCONT)),
        ) else {
            tracing::error!("cannot install the SIGUSR2/SIGCONT handlers");
            return;
        };
        loop {
            tokio::select! {
                _ = usr2.recv() => pauses.set_worker(true),
                _ = cont.recv() => pauses.set_worker(false),
            }
        }
    });
    #[cfg(not(unix))]
    drop(pauses);
}

/// SIGTERM or SIGINT: stop taking jobs and drain. A second signal exits at once (jobs stay reserved).
pub fn listen_for_signals(token: CancellationToken, log: logging::Handle) {
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
                    log.flush();
                    std::process::exit(1);
                }
            }
        }
        #[cfg(not(unix))]
        {
            drop(log);
            let _ = tokio::signal::ctrl_c().await;
            token.cancel();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_come_from_the_flag_then_the_file_then_the_default_and_zero_is_refused() {
        let file = FileConfig::parse("[worker]\nthreads = 2\n").unwrap();
        let flag = WorkArgs {
            threads: Some(3),
            ..WorkArgs::default()
        };
        assert_eq!(threads(&flag, &file).unwrap(), 3);
        assert_eq!(threads(&WorkArgs::default(), &file).unwrap(), 2);
        let none = FileConfig::default();
        assert_eq!(threads(&WorkArgs::default(), &none).unwrap(), 1);
        for bad in [0, MAX_THREADS + 1] {
            let args = WorkArgs {
                threads: Some(bad),
                ..WorkArgs::default()
            };
            let err = threads(&args, &none).unwrap_err().to_string();
            assert_eq!(
                err,
                format!("--threads (worker.threads) is {bad}: it must be between 1 and 1024")
            );
        }
    }
}
