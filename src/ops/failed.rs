//! `defer-worker failed …`: the failed_jobs commands of artisan, on the same table and with the same
//! rules, so operators can use either tool on rows either worker wrote.
//!
//! | ours | artisan |
//! | --- | --- |
//! | `failed list [--json]` | `queue:failed` |
//! | `failed show <uuid>` | (none: the row with its payload decoded) |
//! | `failed retry <uuid…>\|all [--queue Q] [--range a-b]` | `queue:retry` |
//! | `failed forget <uuid>` | `queue:forget` |
//! | `failed flush [--hours N]` | `queue:flush` |
//! | `failed prune [--hours N]` | `queue:prune-failed` |
//!
//! `retry` pushes exactly the bytes `queue:retry` would (see [`retry`]), so PHP's worker runs what we
//! retried and we run what PHP retried. Like `queue:retry` it pushes onto the connection the row names:
//! `redis` (or a name given with `--connection`) is our Redis, the app's `database`, `whatsapp`,
//! `analytics`, `emails` and `cache` connections are the `jobs` table; it never recomputes
//! `retryUntil`, which needs PHP.
//!
//! Payloads and exceptions are printed on stdout when asked for (`show`); nothing here logs them.

pub use crate::admin::retry;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::{json, Value as Json};

use super::connect;
use crate::admin::failed::{detail, job_class};
use crate::admin::retry::{OpenError, QueueOpener, RetryEvent, RetryOptions, Selection};
use crate::config::Settings;
use crate::laravel::failed_jobs::{FailedJobRow, FailedJobs};
use crate::laravel::queue::Queue;

const EXAMPLES: &str = "\
Examples:
  defer-worker failed list                      # php artisan queue:failed
  defer-worker failed list --json
  defer-worker failed show 8b3c97e8-0886-4b14-b00a-26bb53cccbc3
  defer-worker failed retry 8b3c97e8-0886-4b14-b00a-26bb53cccbc3   # php artisan queue:retry <id>
  defer-worker failed retry all                 # every row
  defer-worker failed retry --queue=whatsapp    # every row of one queue
  defer-worker failed forget 8b3c97e8-0886-4b14-b00a-26bb53cccbc3
  defer-worker failed flush --hours=48          # rows that failed at least 48 hours ago
  defer-worker failed prune --hours=48          # php artisan queue:prune-failed --hours=48

failed_jobs is found as `work` finds it: DB_CONNECTION, DB_HOST, DB_PORT, DB_DATABASE, DB_USERNAME,
DB_PASSWORD or DATABASE_URL (none: the embedded SQLite file, or --failed-db); APP_TIMEZONE for failed_at.
`retry` pushes onto Redis with the REDIS_* settings, as `work` reads them.";

/// Arguments of `defer-worker failed`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct FailedArgs {
    #[command(subcommand)]
    pub command: FailedCommand,
    /// SQLite file for failed_jobs when no DB_CONNECTION/DATABASE_URL is set (as `work --failed-db`).
    #[arg(long, global = true, value_name = "PATH")]
    pub failed_db: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
pub enum FailedCommand {
    /// List failed jobs, newest first (`queue:failed`).
    #[command(after_help = "\
Examples:
  defer-worker failed list
  defer-worker failed list --json | jq -r '.[] | select(.queue == \"whatsapp\") | .uuid'

Columns as in queue:failed: ID (the uuid), Connection, Queue, Class (from the payload: the class in
data.command, else the payload's `job`), Failed At. --json adds the numeric row id.")]
    List(ListArgs),
    /// Show one failed job: its columns, the payload decoded, and the exception.
    #[command(after_help = "\
Examples:
  defer-worker failed show 8b3c97e8-0886-4b14-b00a-26bb53cccbc3
  APP_KEY=base64:... defer-worker failed show 8b3c97e8-… --json   # encrypted commands need APP_KEY

The payload is decoded as `defer-worker decode` does. Exit 1 when no row has this uuid.")]
    Show(ShowArgs),
    /// Push failed jobs back onto their queue and delete their rows (`queue:retry`).
    #[command(after_help = "\
Examples:
  defer-worker failed retry 8b3c97e8-0886-4b14-b00a-26bb53cccbc3
  defer-worker failed retry all
  defer-worker failed retry all --queue=whatsapp     # (artisan ignores --queue with `all`)
  defer-worker failed retry --queue=whatsapp
  defer-worker failed retry --range=10-20            # row ids, as `failed list --json` shows

Each payload is re-encoded exactly as queue:retry does (attempts 0, PHP's json_encode
without flags), pushed onto the row's queue, then the row is deleted: a PHP worker and
defer-worker both run it. Refused (the row stays):
  - rows of a connection that is not ours (see --connection);
  - payloads that are not a JSON object with `attempts`;
  - rows whose retryUntil has passed: PHP's queue:retry recomputes it from the job class's
    retryUntil() method (use it for such jobs), or pass --keep-retry-until.
Exit 1 when a uuid was not found or a row was refused.")]
    Retry(RetryArgs),
    /// Delete one failed job (`queue:forget`); exit 1 when none matches.
    #[command(after_help = "\
Examples:
  defer-worker failed forget 8b3c97e8-0886-4b14-b00a-26bb53cccbc3")]
    Forget(ForgetArgs),
    /// Delete all failed jobs, or those older than --hours (`queue:flush`).
    #[command(after_help = "\
Examples:
  defer-worker failed flush
  defer-worker failed flush --hours=168      # failed at least a week ago")]
    Flush(FlushArgs),
    /// Delete failed jobs older than --hours, default 24 (`queue:prune-failed`).
    #[command(after_help = "\
Examples:
  defer-worker failed prune                  # older than 24 hours
  defer-worker failed prune --hours=48       # what RestroSaaS schedules daily at 03:30")]
    Prune(PruneArgs),
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// One JSON array instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The failed job's uuid (the ID column of `failed list`).
    pub uuid: String,
    /// One JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct RetryArgs {
    /// Uuids to retry, or `all`.
    #[arg(value_name = "UUID|all", required_unless_present_any = ["queue", "range"])]
    pub ids: Vec<String>,
    /// Only rows of this queue (alone: every row of this queue).
    #[arg(long)]
    pub queue: Option<String>,
    /// Rows whose numeric id is in this range, e.g. 10-20 (repeatable).
    #[arg(long, value_name = "A-B")]
    pub range: Vec<String>,
    /// Connection names (failed_jobs.connection) that mean our Redis (repeatable); rows of the app's
    /// database connections go back to the jobs table.
    #[arg(long = "connection", value_name = "NAME", default_value = "redis")]
    pub connections: Vec<String>,
    /// Retry rows whose retryUntil has passed anyway (they will fail again at once).
    #[arg(long)]
    pub keep_retry_until: bool,
}

#[derive(Debug, clap::Args)]
pub struct ForgetArgs {
    /// The failed job's uuid.
    pub uuid: String,
}

#[derive(Debug, clap::Args)]
pub struct FlushArgs {
    /// Only rows that failed at least this many hours ago (0: all).
    #[arg(long)]
    pub hours: Option<u64>,
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Delete rows that failed this many hours ago or earlier.
    #[arg(long, default_value_t = 24)]
    pub hours: u64,
}

pub async fn run(args: &FailedArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let (db_cfg, failed) = connect::failed_jobs(settings, args.failed_db.as_deref()).await?;
    let table = || format!("cannot read failed_jobs in {db_cfg}");
    match &args.command {
        FailedCommand::List(a) => {
            let rows = failed.all().await.with_context(table)?;
            list(&rows, a.json)?;
            Ok(ExitCode::SUCCESS)
        }
        FailedCommand::Show(a) => {
            let Some(row) = failed.find(&a.uuid).await.with_context(table)? else {
                eprintln!("No failed job matches the given ID [{}].", a.uuid);
                return Ok(ExitCode::FAILURE);
            };
            show(settings, &row, a.json)
        }
        FailedCommand::Retry(a) => retry(settings, a, &failed).await,
        FailedCommand::Forget(a) => {
            let deleted = failed
                .forget(&a.uuid)
                .await
                .with_context(|| format!("cannot delete failed job {} in {db_cfg}", a.uuid))?;
            if deleted {
                println!("Failed job deleted successfully!");
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("No failed job matches the given ID.");
                Ok(ExitCode::FAILURE)
            }
        }
        FailedCommand::Flush(a) => {
            let n = failed
                .flush(a.hours)
                .await
                .with_context(|| format!("cannot delete from failed_jobs in {db_cfg}"))?;
            match a.hours.filter(|h| *h > 0) {
                Some(h) => println!(
                    "All jobs that failed more than {h} hours ago have been deleted successfully ({n} deleted)."
                ),
                None => println!("All failed jobs deleted successfully! ({n} deleted)"),
            }
            Ok(ExitCode::SUCCESS)
        }
        FailedCommand::Prune(a) => {
            // queue:prune-failed deletes `failed_at < now - hours`; flush's `<=` differs by the
            // boundary second only.
            let n = failed
                .flush(Some(a.hours))
                .await
                .with_context(|| format!("cannot delete from failed_jobs in {db_cfg}"))?;
            println!("{n} entries deleted!");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn list(rows: &[FailedJobRow], as_json: bool) -> anyhow::Result<()> {
    if as_json {
        let out: Vec<Json> = rows
            .iter()
            .map(|r| {
                json!({
                    "id": r.id,
                    "uuid": r.job.uuid,
                    "connection": r.job.connection,
                    "queue": r.job.queue,
                    "class": job_class(&r.job.payload),
                    "failed_at": r.job.failed_at,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("No failed jobs!");
        return Ok(());
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.job.uuid.clone(),
                r.job.connection.clone(),
                r.job.queue.clone(),
                job_class(&r.job.payload),
                r.job.failed_at.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(&["ID", "Connection", "Queue", "Class", "Failed At"], &cells)
    );
    Ok(())
}

/// A table in the layout of Symfony's console `Table` (what artisan prints).
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let width = |s: &str| s.chars().count();
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| width(c))
                .chain([width(headers[i])])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let rule: String = widths
        .iter()
        .map(|w| format!("+{}", "-".repeat(w + 2)))
        .collect::<String>()
        + "+\n";
    let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
        let mut out = String::new();
        for (cell, w) in cells.zip(&widths) {
            out.push_str(&format!("| {cell}{} ", " ".repeat(w - width(cell))));
        }
        out + "|\n"
    };
    let mut out = rule.clone();
    out.push_str(&line(&mut headers.iter().copied()));
    out.push_str(&rule);
    for r in rows {
        out.push_str(&line(&mut r.iter().map(String::as_str)));
    }
    out.push_str(&rule);
    out
}

fn show(settings: &Settings, row: &FailedJobRow, as_json: bool) -> anyhow::Result<ExitCode> {
    let job = &row.job;
    let encrypter =
        connect::encrypter(settings).context("APP_KEY is needed to decode the payload")?;
    let doc = detail(row, &encrypter, false);
    if as_json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("ID:         {}  (row {})", job.uuid, row.id);
    println!("Connection: {}", job.connection);
    println!("Queue:      {}", job.queue);
    println!("Class:      {}", doc["class"].as_str().unwrap_or_default());
    println!("Failed At:  {}", job.failed_at);
    match doc["payload_error"].as_str() {
        None => println!(
            "Payload (decoded):\n{}",
            serde_json::to_string_pretty(&doc["payload"])?
        ),
        Some(err) => println!("Payload (cannot be decoded: {err}):\n{}", job.payload),
    }
    println!("Exception:\n{}", job.exception);
    Ok(ExitCode::SUCCESS)
}

/// Parses `a-b` (numbers, either order) like queue:retry's `--range`.
fn parse_range(range: &str) -> anyhow::Result<(i64, i64)> {
    let parsed = range
        .split_once('-')
        .and_then(|(a, b)| Some((a.parse::<i64>().ok()?, b.parse::<i64>().ok()?)));
    match parsed {
        Some((a, b)) if a >= 0 && b >= 0 => Ok((a.min(b), a.max(b))),
        _ => anyhow::bail!("--range {range:?} must be two row ids like 10-20"),
    }
}

/// The rows `retry` should push, in queue:retry's order, and the uuids that matched none.
async fn select(
    args: &RetryArgs,
    failed: &FailedJobs,
) -> anyhow::Result<(Vec<FailedJobRow>, Vec<String>)> {
    let all = args.ids.len() == 1 && args.ids[0] == "all";
    anyhow::ensure!(
        all || !args.ids.iter().any(|i| i == "all"),
        "`all` cannot be combined with uuids"
    );
    let selection = Selection {
        all,
        ids: if all { Vec::new() } else { args.ids.clone() },
        ranges: args
            .range
            .iter()
            .map(|r| parse_range(r))
            .collect::<anyhow::Result<Vec<_>>>()?,
        queue: args.queue.clone(),
    };
    retry::select(&selection, failed)
        .await
        .context("cannot read failed_jobs")
}

/// Opens the connections a retried row names with the command's settings (`connect`); the console
/// holds one too.
pub struct SettingsOpener {
    pub settings: Settings,
}

impl QueueOpener for SettingsOpener {
    fn open<'a>(
        &'a self,
        connection: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<(String, Queue), OpenError>> {
        Box::pin(async move {
            let conn = connect::connection(&self.settings, Some(connection))
                .map_err(|e| OpenError::NotOurs(e.to_string()))?;
            connect::queue(&self.settings, &conn)
                .await
                .map_err(|e| OpenError::Failed(format!("{e:#}")))
        })
    }
}

async fn retry(
    settings: &Settings,
    args: &RetryArgs,
    failed: &FailedJobs,
) -> anyhow::Result<ExitCode> {
    let (rows, missing) = select(args, failed).await?;
    let mut ok = missing.is_empty();
    for id in &missing {
        eprintln!("Unable to find failed job with ID [{id}].");
    }
    if rows.is_empty() {
        match &args.queue {
            Some(q) => eprintln!("Unable to find failed jobs for queue [{q}]."),
            None if ok => println!("No failed jobs to retry."),
            None => {}
        }
        return Ok(if ok && args.queue.is_none() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let options = RetryOptions {
        redis_connections: args.connections.clone(),
        keep_retry_until: args.keep_retry_until,
    };
    let mut report = |event: RetryEvent<'_>| match event {
        RetryEvent::Pushed(row) => println!(
            "The failed job [{}] has been pushed back onto the queue!",
            row.job.uuid
        ),
        RetryEvent::Refused(row, why) => {
            eprintln!("Not retrying failed job [{}]: {why}", row.job.uuid);
            ok = false;
        }
    };
    let opener = SettingsOpener {
        settings: settings.clone(),
    };
    retry::retry(
        &rows,
        &options,
        &opener,
        failed,
        crate::util::clock::unix_now(),
        &mut report,
    )
    .await?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_laid_out_like_symfony() {
        let t = table(&["ID", "Queue"], &[vec!["abc".into(), "é".into()]]);
        assert_eq!(
            t,
            "+-----+-------+\n| ID  | Queue |\n+-----+-------+\n| abc | é     |\n+-----+-------+\n"
        );
    }

    #[test]
    fn ranges_are_row_ids() {
        assert_eq!(parse_range("20-10").unwrap(), (10, 20));
        assert!(parse_range("a-b").is_err());
        assert!(parse_range("5").is_err());
    }
}
