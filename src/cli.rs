//! The command line: subcommands and flags, named after `php artisan queue:*`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  # Replace `php artisan queue:work --queue=whatsapp,analytics,emails,cache,default --tries=3`
  defer-worker work --queue=whatsapp,analytics,emails,cache,default --tries=3

  # Same, 32 jobs in flight, JSON logs, stop when the queues are empty
  defer-worker work --queue=default --concurrency=32 --log-format=json --stop-when-empty

  # Show what a payload holds (from Redis, or failed_jobs.payload)
  redis-cli --raw LINDEX restrosaas_database_queues:whatsapp 0 | defer-worker decode -
  defer-worker decode fixtures/payloads/whatsapp.json";

/// `--version`: the build facts build.rs records (`-V` stays one line).
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\ncommit: ",
    env!("DEFER_WORKER_COMMIT"),
    "\nbuilt: ",
    env!("DEFER_WORKER_BUILD_DATE"),
    "\ntarget: ",
    env!("DEFER_WORKER_TARGET"),
    "\nlink: ",
    env!("DEFER_WORKER_LINK"),
);

#[derive(Debug, Parser)]
#[command(name = "defer-worker", version, long_version = LONG_VERSION, about = "Runs Laravel queue jobs (RestroSaaS DeferredJob) from Laravel's own Redis queues, as `php artisan queue:work` does.", after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Config file (TOML); default: ./defer-worker.toml when present.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// The app's .env file (Laravel's rules); default: ./.env when present. Process variables win.
    #[arg(long = "env", global = true, value_name = "PATH")]
    pub env_file: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run jobs from the queues until stopped (`php artisan queue:work`).
    #[command(after_help = "\
Examples:
  defer-worker work --queue=whatsapp,analytics,emails,cache,default --tries=3
  defer-worker work --queue=default --concurrency=64 --max-jobs=1000 --stop-when-empty
  REDIS_PREFIX=restrosaas_database_ defer-worker work --queue=whatsapp --retry-after=30

Settings come from the environment under Laravel's names: REDIS_URL or REDIS_HOST, REDIS_PORT,
REDIS_USERNAME, REDIS_PASSWORD, REDIS_DB, REDIS_PREFIX (else APP_NAME → <slug>_database_), APP_KEY,
APP_PREVIOUS_KEYS, APP_TIMEZONE, DB_CONNECTION, DB_HOST, DB_PORT, DB_DATABASE, DB_USERNAME, DB_PASSWORD or
DATABASE_URL for failed_jobs (none: an embedded SQLite file) and the app's orders; MAIL_*, WHATSAPP_*,
CACHE_DRIVER for the actions.

Actions: with no [actions] table the app's whatsapp_notification, email_notification, analytics_tracking and
cache_warming run natively (handed to PHP when their database or cache store is not configured) and any
other action completes with a warning, as the app does. `defer-worker config` shows the table in use.")]
    Work(WorkArgs),
    /// Print one job payload as JSON: envelope, decoded command, and the DeferredJob's action and data.
    #[command(after_help = "\
Examples:
  defer-worker decode fixtures/payloads/whatsapp.json
  redis-cli --raw LINDEX laravel_database_queues:default 0 | defer-worker decode -
  APP_KEY=base64:... defer-worker decode encrypted.json")]
    Decode(DecodeArgs),
    /// Print the resolved configuration, secrets masked, with where each value came from.
    Config(crate::ops::config_cmd::ConfigArgs),
    /// Failed jobs: list, show, retry, forget, flush, prune (`queue:failed`, `queue:retry`, …).
    Failed(crate::ops::failed::FailedArgs),
    /// Ready, delayed and reserved jobs per queue, with thresholds (`queue:monitor`).
    Monitor(crate::ops::monitor::MonitorArgs),
    /// Delete every job of a queue (`queue:clear`).
    Clear(crate::ops::clear::ClearArgs),
    /// Push a DeferredJob exactly as the app's `defer()` does.
    Dispatch(crate::ops::dispatch::DispatchArgs),
    /// Tell running workers (PHP's and ours) to finish their jobs and exit (`queue:restart`).
    Restart(crate::ops::restart::RestartArgs),
}

#[derive(Debug, Args)]
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
    pub failed_db: Option<PathBuf>,
    /// Serve /metrics (Prometheus), /health, /ready and /stats on this address, e.g. 127.0.0.1:9090.
    /// Off by default.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// The payload file; `-` or nothing reads standard input.
    pub file: Option<PathBuf>,
    /// APP_KEY for encrypted commands (default: the APP_KEY environment variable).
    #[arg(long, env = "APP_KEY", hide_env_values = true)]
    pub app_key: Option<String>,
    /// The DeferredJob class name.
    #[arg(long, default_value = crate::deferred::DEFAULT_CLASS)]
    pub class: String,
}
