//! `defer-worker monitor`: `php artisan queue:monitor` with more detail. Per queue: ready (LLEN),
//! delayed and reserved (ZCARD), Laravel's size (their sum) against `--max` (ALERT when
//! size >= max, Laravel's rule), and how old the oldest work is: the ready head's age when its
//! payload carries `createdAt` (Laravel 12), when the next delayed job is due, and when the oldest
//! reservation runs out (a past time means a worker died holding it), and whether the queue is
//! paused (`defer-worker pause`, Laravel's `queue:pause`: its flag in the app's cache store).
//!
//! `--fleet` shows the workers instead: every `work` process in the fleet registry (the app's Redis,
//! see `crate::fleet`), wherever it runs, with its queues, jobs running, paused queues and last beat.
//!
//! Unlike artisan, which only fires `QueueBusy`, the exit code is 1 when any queue is at or over
//! its threshold, so cron or a health check can act on it. Read-only: it never moves or deletes a
//! job, and never prints a payload.
//!
//! Below the table, the circuit breaker of the WhatsApp sender (`WHATSAPP_PHONE_NUMBER_ID`) as the
//! workers publish it in the app's cache store ([`super::breaker_board`]); not in `--json`, whose
//! shape stays one object per queue, and not in the exit status.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::{json, Value as Json};

use super::breaker_board;
use super::connect;
use super::failed::table;
use crate::config::Settings;
use crate::fleet::{list_workers, FleetStore, WorkerInfo};
use crate::laravel::cache_store::CacheStore;
use crate::laravel::queue::QueueStats;

const EXAMPLES: &str = "\
Examples:
  defer-worker monitor whatsapp,analytics,emails,cache,default
  defer-worker monitor redis:whatsapp,redis:default --max=100   # [connection:]queue
  defer-worker monitor whatsapp --json | jq '.[0].ready'

Columns: Ready (LLEN queues:<q>), Delayed and Reserved (ZCARD), Size (their sum, what queue:monitor
shows), Oldest ready (age of the next job, from createdAt: Laravel 12 payloads only, else ?), Next
delayed (when the next delayed job is due; `ago` = overdue, no worker is migrating it), Reservation
(when the oldest reservation runs out; `ago` = its worker is gone and the next pop re-queues it),
Paused (yes: workers take no job from it until `defer-worker resume`; ? when the app's cache store
cannot be read).
Exit status: 0 when every queue is OK; 1 when any is ALERT (size >= --max), or on an error (then
only a message on stderr).
Settings: REDIS_* as for `work`; with no queues given, REDIS_QUEUE or `default`.
--fleet: the workers in the fleet registry instead (every `work` process that beat within 15 s,
on any host): Host, PID, Connection, Queues, Running (jobs in flight / concurrency), Paused, Up
(since start), Last beat, Version. Exit status 0, or 1 when the registry cannot be read.";

/// Arguments of `defer-worker monitor`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct MonitorArgs {
    /// Queues, comma list, each `queue` or `connection:queue` (`redis`, or the app's database
    /// connections: `database`, `whatsapp`, `analytics`, `emails`, `cache`).
    #[arg(value_name = "QUEUES")]
    pub queues: Option<String>,
    /// ALERT (and exit 1) when a queue holds this many jobs or more.
    #[arg(long, default_value_t = 1000)]
    pub max: u64,
    /// One JSON array instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Show the fleet's workers (the registry in the app's Redis) instead of the queues.
    #[arg(long, conflicts_with_all = ["queues", "max"])]
    pub fleet: bool,
}

/// `[connection:]queue` items of a comma list (`default` is the connection of items without one);
/// a connection defer-worker cannot read is an error naming it.
fn parse_queues(
    settings: &Settings,
    list: &str,
    default: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (connection, queue) = item.split_once(':').unwrap_or((default, item));
        connect::connection(settings, Some(connection)).with_context(|| format!("{item:?}"))?;
        anyhow::ensure!(!queue.is_empty(), "{item:?}: empty queue name");
        out.push((connection.to_owned(), queue.to_owned()));
    }
    anyhow::ensure!(!out.is_empty(), "no queue given (e.g. whatsapp,default)");
    Ok(out)
}

/// One line of the report, as printed with `--json`.
pub fn report(connection: &str, queue: &str, stats: &QueueStats, max: u64, now: i64) -> Json {
    let created_at = stats
        .head
        .as_deref()
        .and_then(|h| serde_json::from_slice::<Json>(h).ok())
        .and_then(|p| p.get("createdAt").and_then(Json::as_i64));
    let size = stats.size();
    json!({
        "connection": connection,
        "queue": queue,
        "ready": stats.ready,
        "delayed": stats.delayed,
        "reserved": stats.reserved,
        "size": size,
        "max": max,
        "status": if size >= max { "ALERT" } else { "OK" },
        "oldest_ready_age_secs": created_at.map(|t| now - t),
        "next_delayed_due_in_secs": stats.next_delayed_at.map(|t| t - now),
        "oldest_reservation_expires_in_secs": stats.first_reservation_expires_at.map(|t| t - now),
    })
}

/// `12s`, `in 30s`, `5s ago`: for the table.
fn relative(v: &Json, future: bool) -> String {
    match v.as_i64() {
        None => "-".to_owned(),
        Some(s) if !future => format!("{s}s"),
        Some(s) if s >= 0 => format!("in {s}s"),
        Some(s) => format!("{}s ago", s.unsigned_abs()),
    }
}

pub async fn run(args: &MonitorArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    if args.fleet {
        return fleet(args, settings).await;
    }
    let default = connect::connection(settings, None)?;
    let list = args.queues.clone().unwrap_or_else(|| default.queue.clone());
    let queues = parse_queues(settings, &list, &default.name)?;
    let now = crate::util::clock::unix_now();
    let mut lines = Vec::with_capacity(queues.len());
    let cache = pause_store(settings).await;
    let mut open: std::collections::HashMap<String, (String, crate::laravel::queue::Queue)> =
        std::collections::HashMap::new();
    for (connection, queue) in &queues {
        if !open.contains_key(connection) {
            let conn = connect::connection(settings, Some(connection))?;
            open.insert(connection.clone(), connect::queue(settings, &conn).await?);
        }
        let (store, q) = &open[connection];
        let stats = q
            .stats(queue)
            .await
            .with_context(|| format!("cannot read the sizes of queue {queue} of {store}"))?;
        let mut line = report(connection, queue, &stats, args.max, now);
        line["paused"] = json!(paused(cache.as_ref(), connection, queue).await);
        lines.push((line, stats.ready > 0));
    }
    let alert = lines.iter().any(|(l, _)| l["status"] == "ALERT");
    if args.json {
        let docs: Vec<&Json> = lines.iter().map(|(l, _)| l).collect();
        println!("{}", serde_json::to_string_pretty(&docs)?);
    } else {
        let rows: Vec<Vec<String>> = lines
            .iter()
            .map(|(l, has_ready)| {
                let text = |k: &str| l[k].to_string().trim_matches('"').to_owned();
                let oldest = match &l["oldest_ready_age_secs"] {
                    Json::Null if *has_ready => "?".to_owned(),
                    v => relative(v, false),
                };
                vec![
                    text("connection"),
                    text("queue"),
                    text("ready"),
                    text("delayed"),
                    text("reserved"),
                    text("size"),
                    oldest,
                    relative(&l["next_delayed_due_in_secs"], true),
                    relative(&l["oldest_reservation_expires_in_secs"], true),
                    text("status"),
                    match l["paused"].as_bool() {
                        Some(true) => "yes".to_owned(),
                        Some(false) => "no".to_owned(),
                        None => "?".to_owned(),
                    },
                ]
            })
            .collect();
        print!(
            "{}",
            table(
                &[
                    "Connection",
                    "Queue",
                    "Ready",
                    "Delayed",
                    "Reserved",
                    "Size",
                    "Oldest ready",
                    "Next delayed",
                    "Reservation",
                    "Status",
                    "Paused",
                ],
                &rows,
            )
        );
    }
    if !args.json {
        if let Some(line) = breaker_line(settings, cache.as_ref()).await {
            println!("{line}");
        }
    }
    Ok(if alert {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `--fleet`: the registry's workers, as a table or a JSON array of [`WorkerInfo`].
async fn fleet(args: &MonitorArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let cfg = connect::redis_config(settings)?;
    let store = FleetStore::connect(&cfg).await?;
    let workers = list_workers(&store)
        .await
        .with_context(|| format!("cannot read the fleet registry at {cfg}"))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&workers)?);
    } else {
        let now = crate::util::clock::unix_now();
        print!("{}", fleet_table(&workers, now));
    }
    Ok(ExitCode::SUCCESS)
}

fn fleet_table(workers: &[WorkerInfo], now: i64) -> String {
    let rows: Vec<Vec<String>> = workers
        .iter()
        .map(|w| {
            vec![
                w.host.clone(),
                w.pid.to_string(),
                format!("{} ({})", w.connection, w.driver),
                w.queues.join(","),
                format!("{}/{}", w.in_flight, w.concurrency),
                match (w.worker_paused, w.paused.is_empty()) {
                    (true, _) => "worker (SIGUSR2)".to_owned(),
                    (false, true) => "-".to_owned(),
                    (false, false) => w.paused.join(","),
                },
                format!("{}s", (now - w.started_at).max(0)),
                format!("{}s ago", (now - w.last_beat).max(0)),
                w.version.clone(),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "Host",
            "PID",
            "Connection",
            "Queues",
            "Running",
            "Paused",
            "Up",
            "Last beat",
            "Version",
        ],
        &rows,
    );
    out.push_str(&format!("{} worker(s)\n", workers.len()));
    out
}

/// The sender's breaker line, when WhatsApp is configured and the app's cache store is open (a store
/// that cannot be read is a line saying so, never an error of `monitor`).
async fn breaker_line(settings: &Settings, store: Option<&CacheStore>) -> Option<String> {
    let phone = settings
        .env("WHATSAPP_PHONE_NUMBER_ID")
        .filter(|p| !p.is_empty())?;
    Some(match breaker_board::read(store?, &phone).await {
        Ok(state) => breaker_board::line(&phone, state.as_ref()),
        Err(e) => format!("WhatsApp sender {phone}: circuit breaker unknown ({e:#})"),
    })
}

/// The app's cache store, for the pause flags; `None` (logged) when it cannot be opened, so the
/// sizes are still reported.
async fn pause_store(settings: &Settings) -> Option<CacheStore> {
    match CacheStore::from_lookup(&settings.lookup()).await {
        Ok(store) => store,
        Err(err) => {
            tracing::warn!(error = %err, "cannot open the app's cache store: paused shown as ?");
            None
        }
    }
}

/// Whether `queue` is paused; `None` (logged) when the flag cannot be read.
async fn paused(store: Option<&CacheStore>, connection: &str, queue: &str) -> Option<bool> {
    match store?.is_paused(connection, queue).await {
        Ok(p) => Some(p),
        Err(err) => {
            tracing::warn!(error = %err, queue, "cannot read the pause flag: paused shown as ?");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_parse_like_queue_monitor() {
        assert_eq!(
            parse_queues(&Settings::default(), "whatsapp, redis:default", "redis").unwrap(),
            vec![
                ("redis".to_owned(), "whatsapp".to_owned()),
                ("redis".to_owned(), "default".to_owned())
            ]
        );
        assert_eq!(
            parse_queues(&Settings::default(), "whatsapp:whatsapp", "redis").unwrap(),
            vec![("whatsapp".to_owned(), "whatsapp".to_owned())]
        );
        let e = format!(
            "{:#}",
            parse_queues(&Settings::default(), "sqs:default", "redis").unwrap_err()
        );
        assert!(e.contains("sqs:default") && e.contains("sqs driver"), "{e}");
        assert!(parse_queues(&Settings::default(), " , ", "redis").is_err());
    }

    #[test]
    fn report_applies_laravels_threshold_and_ages() {
        let stats = QueueStats {
            ready: 2,
            delayed: 1,
            reserved: 1,
            head: Some(br#"{"createdAt":900,"attempts":0}"#.to_vec()),
            next_delayed_at: Some(1030),
            first_reservation_expires_at: Some(990),
        };
        let r = report("redis", "q", &stats, 4, 1000);
        assert_eq!(r["size"], 4);
        assert_eq!(r["status"], "ALERT");
        assert_eq!(r["oldest_ready_age_secs"], 100);
        assert_eq!(r["next_delayed_due_in_secs"], 30);
        assert_eq!(r["oldest_reservation_expires_in_secs"], -10);
        assert_eq!(report("redis", "q", &stats, 5, 1000)["status"], "OK");
        assert_eq!(relative(&json!(-10), true), "10s ago");
        assert_eq!(relative(&json!(30), true), "in 30s");
    }

    #[test]
    fn fleet_table_shows_each_worker() {
        let w = WorkerInfo {
            id: "h:7:1".into(),
            host: "web-1".into(),
            pid: 7,
            version: "0.1.0 (abc)".into(),
            connection: "redis".into(),
            driver: "redis".into(),
            queues: vec!["whatsapp".into(), "default".into()],
            concurrency: 16,
            in_flight: 3,
            paused: vec!["emails".into()],
            worker_paused: false,
            started_at: 900,
            last_beat: 998,
        };
        let t = fleet_table(&[w], 1000);
        let row = t
            .lines()
            .nth(3)
            .expect("a row under the header and its rules");
        for cell in [
            "web-1",
            "7",
            "redis (redis)",
            "whatsapp,default",
            "3/16",
            "emails",
            "100s",
            "2s ago",
        ] {
            assert!(row.contains(cell), "{cell} in {row}");
        }
        assert!(t.ends_with("1 worker(s)\n"), "{t}");
    }
}
