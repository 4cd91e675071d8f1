//! `defer-worker pause`, `resume` and `paused`: Laravel 12.40+'s `queue:pause` / `queue:resume` (and
//! 13.x's `--all`) for an app that runs an older Laravel, writing the very flags Laravel's workers,
//! Horizon and ours read in the app's cache store (docs/laravel-queue.md §8.3):
//! `illuminate:queue:paused:{connection}:{queue}` = `true`, for ever or (`--for`) with a TTL, and
//! `illuminate:queues:paused` for `--all`. `paused` lists the flags of the worker's queues.
//!
//! It only writes, forgets or reads those keys and prints where; a worker skips a paused queue by
//! itself ([`crate::worker::pause`]).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;

use super::connect;
use super::failed::table;
use super::work::{resolve_options, WorkArgs};
use crate::config::Settings;
use crate::laravel::cache_store::{paused_key, CacheStore, CacheStoreError, ALL_PAUSED_KEY};

const PAUSE_EXAMPLES: &str = "\
Examples:
  defer-worker pause redis:emails             # php artisan queue:pause redis:emails
  defer-worker pause emails whatsapp --for 600  # default connection; resumes after 10 min
  defer-worker pause --all                    # every queue of every connection (Laravel 13)

Workers (defer-worker, and Laravel 12.40+'s queue:work) finish the jobs they run and take no new \
job from a paused queue; they keep serving their other queues. defer-worker reads the flags every \
0.5 s. A bare queue name means the default connection (QUEUE_CONNECTION, else redis), and `redis:` \
the queue `default`, as queue:pause parses them.
Settings: the app's cache store, as for `restart`: CACHE_DRIVER (or CACHE_STORE), CACHE_PREFIX, \
REDIS_* and REDIS_CACHE_DB, DB_*, APP_STORAGE_PATH.";

const RESUME_EXAMPLES: &str = "\
Examples:
  defer-worker resume redis:emails            # php artisan queue:resume redis:emails
  defer-worker resume --all                   # forgets --all; queues paused one by one stay so";

const PAUSED_EXAMPLES: &str = "\
Examples:
  defer-worker paused                         # the queues `work` serves ([worker] queue, REDIS_QUEUE)
  defer-worker paused redis:emails whatsapp:whatsapp --json";

/// Arguments of `defer-worker pause`.
#[derive(Debug, clap::Args)]
#[command(after_help = PAUSE_EXAMPLES)]
pub struct PauseArgs {
    /// Queues to pause, each `connection:queue` or `queue` (the default connection).
    #[arg(value_name = "CONNECTION:QUEUE", required_unless_present = "all")]
    pub queues: Vec<String>,
    /// Resume by itself after this many seconds (Laravel's `pauseFor`).
    #[arg(long = "for", value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub for_secs: Option<u64>,
    /// Pause every queue on every connection (`illuminate:queues:paused`, Laravel 13's `--all`).
    #[arg(long, conflicts_with = "queues")]
    pub all: bool,
}

/// Arguments of `defer-worker resume`.
#[derive(Debug, clap::Args)]
#[command(after_help = RESUME_EXAMPLES)]
pub struct ResumeArgs {
    /// Queues to resume, each `connection:queue` or `queue` (the default connection).
    #[arg(value_name = "CONNECTION:QUEUE", required_unless_present = "all")]
    pub queues: Vec<String>,
    /// Forget the flag of `pause --all` (queues paused one by one stay paused).
    #[arg(long, conflicts_with = "queues")]
    pub all: bool,
}

/// Arguments of `defer-worker paused`.
#[derive(Debug, clap::Args)]
#[command(after_help = PAUSED_EXAMPLES)]
pub struct PausedArgs {
    /// Queues to look at, each `connection:queue` or `queue`; default: the queues `work` serves.
    #[arg(value_name = "CONNECTION:QUEUE")]
    pub queues: Vec<String>,
    /// One JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// `connection:queue` as `queue:pause` parses it (`ParsesQueue`): no `:` means the default
/// connection, an empty queue means `default`. An empty connection is refused, naming the argument.
fn parse_queue(arg: &str, default_connection: &str) -> anyhow::Result<(String, String)> {
    let (connection, queue) = match arg.split_once(':') {
        Some((c, q)) => (c, q),
        None => (default_connection, arg),
    };
    anyhow::ensure!(
        !connection.trim().is_empty(),
        "{arg:?}: empty connection name (write connection:queue, e.g. redis:emails, or only the queue)"
    );
    let queue = if queue.is_empty() { "default" } else { queue };
    Ok((connection.to_owned(), queue.to_owned()))
}

/// The arguments as (connection, queue) pairs; a connection defer-worker does not know is an error
/// naming the argument, so a typo does not pause nothing.
fn parse_queues(settings: &Settings, args: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let default = connect::connection(settings, None)?.name;
    args.iter()
        .map(|arg| {
            let (connection, queue) = parse_queue(arg, &default)?;
            connect::connection(settings, Some(&connection)).with_context(|| format!("{arg:?}"))?;
            Ok((connection, queue))
        })
        .collect()
}

/// The app's cache store, where the flags live.
async fn store(settings: &Settings) -> anyhow::Result<CacheStore> {
    Ok(CacheStore::from_lookup(&settings.lookup())
        .await
        .context("cannot open the app's cache store")?
        .ok_or_else(|| CacheStoreError::NotShared {
            driver: "array".to_owned(),
        })?)
}

pub async fn pause(args: &PauseArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let ttl = args.for_secs.map(Duration::from_secs);
    let until = args
        .for_secs
        .map_or_else(|| "until resumed".to_owned(), |s| format!("for {s} s"));
    let store = store(settings).await?;
    if args.all {
        let at = store.describe_key(ALL_PAUSED_KEY);
        store
            .pause_all(ttl)
            .await
            .with_context(|| format!("cannot write {at}"))?;
        println!(
            "Job processing on all queues across all connections has been paused {until} ({at})."
        );
        return Ok(ExitCode::SUCCESS);
    }
    for (connection, queue) in parse_queues(settings, &args.queues)? {
        let at = store.describe_key(&paused_key(&connection, &queue));
        store
            .pause(&connection, &queue, ttl)
            .await
            .with_context(|| format!("cannot write {at}"))?;
        println!("Job processing on queue [{connection}:{queue}] has been paused {until} ({at}).");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn resume(args: &ResumeArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let store = store(settings).await?;
    let was = |had: bool| if had { "" } else { " (it was not paused)" };
    if args.all {
        let at = store.describe_key(ALL_PAUSED_KEY);
        let had = store
            .resume_all()
            .await
            .with_context(|| format!("cannot delete {at}"))?;
        println!(
            "Job processing on all queues across all connections has been resumed{} ({at}).",
            was(had)
        );
        return Ok(ExitCode::SUCCESS);
    }
    for (connection, queue) in parse_queues(settings, &args.queues)? {
        let at = store.describe_key(&paused_key(&connection, &queue));
        let had = store
            .resume(&connection, &queue)
            .await
            .with_context(|| format!("cannot delete {at}"))?;
        println!(
            "Job processing on queue [{connection}:{queue}] has been resumed{} ({at}).",
            was(had)
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn paused(args: &PausedArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let queues = if args.queues.is_empty() {
        let conn = connect::connection(settings, settings.file().worker.connection.as_deref())?;
        let worked = resolve_options(&WorkArgs::default(), settings.file(), &conn)?.queues;
        worked.into_iter().map(|q| (conn.name.clone(), q)).collect()
    } else {
        parse_queues(settings, &args.queues)?
    };
    let store = store(settings).await?;
    let all = store
        .all_paused()
        .await
        .with_context(|| format!("cannot read {}", store.describe_key(ALL_PAUSED_KEY)))?;
    let mut rows = Vec::with_capacity(queues.len());
    for (connection, queue) in &queues {
        let paused = store.is_paused(connection, queue).await.with_context(|| {
            format!(
                "cannot read {}",
                store.describe_key(&paused_key(connection, queue))
            )
        })?;
        rows.push((connection, queue, paused));
    }
    if args.json {
        let queues: Vec<_> = rows
            .iter()
            .map(|(c, q, p)| json!({"connection": c, "queue": q, "paused": p, "key": paused_key(c, q)}))
            .collect();
        println!("{}", json!({"all_paused": all, "queues": queues}));
        return Ok(ExitCode::SUCCESS);
    }
    if all {
        println!(
            "Every queue on every connection is paused ({}).",
            store.describe_key(ALL_PAUSED_KEY)
        );
    }
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|(c, q, p)| {
            let status = if *p { "paused" } else { "running" };
            vec![(*c).clone(), (*q).clone(), status.to_owned()]
        })
        .collect();
    print!("{}", table(&["Connection", "Queue", "Status"], &rows));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_parse_like_queue_pause() {
        let p = |a: &str| parse_queue(a, "redis").map_err(|e| e.to_string());
        assert_eq!(p("emails"), Ok(("redis".into(), "emails".into())));
        assert_eq!(
            p("whatsapp:emails"),
            Ok(("whatsapp".into(), "emails".into()))
        );
        assert_eq!(p("redis:"), Ok(("redis".into(), "default".into())));
        assert_eq!(p("redis:a:b"), Ok(("redis".into(), "a:b".into())));
        let err = p(":emails").unwrap_err();
        assert!(
            err.contains("\":emails\"") && err.contains("empty connection"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_connection_is_named() {
        let err = format!(
            "{:#}",
            parse_queues(&Settings::default(), &["sqs:emails".into()]).unwrap_err()
        );
        assert!(err.contains("sqs:emails") && err.contains("sqs"), "{err}");
    }
}
