//! The command line: subcommands and flags, named after `php artisan queue:*`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  # Replace `php artisan queue:work --queue=whatsapp,analytics,emails,cache,default --tries=3`
  defer-worker work --queue=whatsapp,analytics,emails,cache,default --tries=3

  # Same, 32 jobs in flight, JSON logs, stop when the queues are empty
  defer-worker work --queue=default --concurrency=32 --log-format=json --stop-when-empty

  # Before the switch: try everything the worker would use, with the app's .env
  defer-worker --env /var/www/restrosaas/.env check --queue=whatsapp,analytics,emails,cache,default

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
    /// Log format on stderr (level: DEFER_WORKER_LOG, default info; `off` for none). Colours only on a
    /// terminal and never with NO_COLOR set.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line: the event's fields, the job's under `span`.
    Json,
    /// The lines of Laravel 11.27+'s `queue:work --json` (starting, success, …).
    Laravel,
}

impl From<LogFormat> for crate::logging::Format {
    fn from(f: LogFormat) -> Self {
        match f {
            LogFormat::Text => crate::logging::Format::Text,
            LogFormat::Json => crate::logging::Format::Json,
            LogFormat::Laravel => crate::logging::Format::Laravel,
        }
    }
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
    Work(crate::ops::work::WorkArgs),
    /// Print one job payload as JSON: envelope, decoded command, and the DeferredJob's action and data.
    #[command(after_help = "\
Examples:
  defer-worker decode fixtures/payloads/whatsapp.json
  redis-cli --raw LINDEX laravel_database_queues:default 0 | defer-worker decode -
  APP_KEY=base64:... defer-worker decode encrypted.json")]
    Decode(crate::ops::decode::DecodeArgs),
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
    /// Preflight: try everything `work` would use (Redis, databases, cache, SMTP, WhatsApp, APP_KEY)
    /// with the same settings and flags; one ✓/!/✗ line each, exit 1 when something fails.
    Check(crate::ops::check::CheckArgs),
    /// Tell running workers (PHP's and ours) to finish their jobs and exit (`queue:restart`).
    Restart(crate::ops::restart::RestartArgs),
    /// Pause queues: workers take no new job from them until resumed (`queue:pause`, Laravel 12.40+).
    Pause(crate::ops::pause::PauseArgs),
    /// Resume paused queues (`queue:resume`).
    Resume(crate::ops::pause::ResumeArgs),
    /// Which of the worker's queues are paused.
    Paused(crate::ops::pause::PausedArgs),
    /// Serve the operator console (queues, workers, failed jobs) without running jobs.
    Console(crate::ops::console::ConsoleArgs),
}
