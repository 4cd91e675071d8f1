//! `defer-worker clear`: `php artisan queue:clear`. Deletes every job of a queue (the ready list,
//! `:delayed`, `:reserved` and the `:notify` tokens) in one Lua script, the way Laravel's `clear`
//! script does, and prints how many jobs there were.
//!
//! Like artisan it refuses to run in production (APP_ENV `production`, or unset, which Laravel's
//! config treats as production) without `--force`; unlike artisan it never prompts. It touches no
//! other key and never writes failed_jobs.

use std::process::ExitCode;

use anyhow::Context;

use super::connect;
use crate::config::Settings;

const EXAMPLES: &str = "\
Examples:
  defer-worker clear --queue=analytics --force       # php artisan queue:clear --queue=analytics
  defer-worker clear redis --queue=whatsapp,emails --force
  APP_ENV=local defer-worker clear                   # the default queue: REDIS_QUEUE or `default`

Jobs running right now are dropped from :reserved too; their workers still finish them.
Settings: REDIS_* as for `work`, APP_ENV (unset counts as production, as in Laravel).";

/// Arguments of `defer-worker clear`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct ClearArgs {
    /// The queue connection, as queue:clear's argument: `redis` (REDIS_*) or one of the app's
    /// database connections (the jobs table); default QUEUE_CONNECTION, else `redis`.
    #[arg(value_name = "CONNECTION")]
    pub connection: Option<String>,
    /// The queue to clear (comma list allowed); default REDIS_QUEUE, else `default`.
    #[arg(long)]
    pub queue: Option<String>,
    /// Clear even when APP_ENV is production (or unset).
    #[arg(long)]
    pub force: bool,
}

/// Whether Laravel's `confirmToProceed` would ask: the app environment is `production`, which is
/// also what the skeleton's `env('APP_ENV', 'production')` gives when it is unset.
fn in_production(app_env: Option<&str>) -> bool {
    app_env.is_none_or(|e| e == "production")
}

pub async fn run(args: &ClearArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let conn = connect::connection(settings, args.connection.as_deref())?;
    if !args.force && in_production(settings.env("APP_ENV").as_deref()) {
        eprintln!(
            "Application In Production! APP_ENV is {}: pass --force to clear the queue.",
            settings
                .env("APP_ENV")
                .map_or_else(|| "unset".to_owned(), |e| format!("{e:?}"))
        );
        return Ok(ExitCode::FAILURE);
    }
    let list = args.queue.clone().unwrap_or_else(|| conn.queue.clone());
    let queues = connect::queue_list(&list)?;
    let (store, q) = connect::queue(settings, &conn).await?;
    for queue in &queues {
        let n = q
            .clear(queue)
            .await
            .with_context(|| format!("cannot clear queue {queue} of {store}"))?;
        println!("Cleared {n} jobs from the [{queue}] queue");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_unless_another_env_is_named() {
        assert!(in_production(None));
        assert!(in_production(Some("production")));
        assert!(!in_production(Some("local")));
        assert!(!in_production(Some("staging")));
    }
}
