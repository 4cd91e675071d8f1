//! `defer-worker config`: prints the resolved configuration, grouped, secrets masked, each value with the
//! place it came from (process environment, `.env` line, config file, default, or derived), then the
//! notes and problems; exits 1 when there is a problem.
//!
//! It connects to nothing and must never print a secret: values come masked from [`super::report`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::actions::{Origin, Plan};
use crate::app::orders::APP_MAX_CONNECTIONS;
use crate::app::AppSection;
use crate::config::{self, Settings, Source};
use crate::ops::connect::DEFAULT_FAILED_DB;
use crate::ops::report::{Group, Report, Row};
use crate::util::url::mask_password;
use crate::worker::WorkerOptions;

/// Arguments of `defer-worker config`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Precedence: command-line flags > process environment > the app's .env (--env PATH, default ./.env) >
defer-worker.toml ([env] table; --config PATH) > defaults.

Examples:
  # What a worker started here would use
  defer-worker config

  # Check the app's .env before deploying; exit status 1 names each bad key and its file:line
  defer-worker --env /var/www/restrosaas/.env config

  # Machine-readable, e.g. for a deployment check
  defer-worker --env .env config --json | jq '.groups[] | select(.name == \"redis / queue\")'")]
pub struct ConfigArgs {
    /// Print one JSON document (`groups`, `problems`, `notes`, `layers`) instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: &ConfigArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let report = build(settings)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json(settings, &report))?
        );
    } else {
        print!("{}", text(settings, &report));
    }
    if report.problems.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "defer-worker: {} configuration problem(s), listed above",
            report.problems.len()
        );
        Ok(ExitCode::FAILURE)
    }
}

/// The report of [`super::report`] plus the worker group (the `[worker]`, `[queues]` and `[actions]`
/// tables, with `work`'s defaults).
pub fn build(settings: &Settings) -> anyhow::Result<Report> {
    let file = settings.file();
    let embedded = file
        .worker
        .failed_db
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_FAILED_DB));
    let mut report = Report::build(settings, &embedded);
    report.groups.insert(3, worker_group(settings)?);
    Ok(report)
}

fn worker_group(settings: &Settings) -> anyhow::Result<Group> {
    let file = settings.file();
    let w = &file.worker;
    let d = WorkerOptions::default();
    let from_file = settings.file_source().to_string();
    let row = |key: &str, set: Option<String>, default: String| match set {
        Some(v) => Row {
            key: key.to_owned(),
            value: Some(v),
            source: format!("{from_file} [worker]"),
        },
        None => Row {
            key: key.to_owned(),
            value: Some(default),
            source: Source::Default.to_string(),
        },
    };
    // `work` reads REDIS_QUEUE and REDIS_QUEUE_RETRY_AFTER above the file (flags > env > file).
    let env_first = |key: &str, env_key: &str, set: Option<String>, default: String| match settings
        .get(env_key)
        .and_then(|r| Some((r.value.filter(|v| !v.is_empty())?, r.source)))
    {
        Some((v, source)) => Row {
            key: key.to_owned(),
            value: Some(v),
            source: format!("{env_key} ({source})"),
        },
        None => row(key, set, default),
    };
    let secs = |d: std::time::Duration| format!("{}", d.as_secs_f64());
    let mut rows = vec![
        env_first(
            "worker.queue",
            "REDIS_QUEUE",
            w.queue.clone(),
            d.queues.join(","),
        ),
        row("worker.connection", w.connection.clone(), d.connection),
        row(
            "worker.tries",
            w.tries.map(|v| v.to_string()),
            d.tries.to_string(),
        ),
        row("worker.backoff", w.backoff.clone(), d.backoff),
        row(
            "worker.timeout",
            w.timeout.map(|v| v.to_string()),
            d.timeout.to_string(),
        ),
        row(
            "worker.sleep",
            w.sleep.map(|v| v.to_string()),
            secs(d.sleep),
        ),
        row("worker.rest", w.rest.map(|v| v.to_string()), secs(d.rest)),
        env_first(
            "worker.retry_after",
            "REDIS_QUEUE_RETRY_AFTER",
            w.retry_after.map(|v| v.to_string()),
            d.retry_after.to_string(),
        ),
        row(
            "worker.concurrency",
            w.concurrency.map(|v| v.to_string()),
            d.concurrency.to_string(),
        ),
        row(
            "worker.threads",
            w.threads.map(|v| v.to_string()),
            d.threads.to_string(),
        ),
        row(
            "worker.handoff_queue",
            w.handoff_queue.clone(),
            d.handoff_queue,
        ),
        row("worker.class", w.class.clone(), d.class),
        row(
            "worker.drain_timeout",
            w.drain_timeout.map(|v| v.to_string()),
            secs(d.drain_timeout),
        ),
        row(
            "worker.failed_db",
            w.failed_db.as_deref().map(|p| p.display().to_string()),
            format!("{DEFAULT_FAILED_DB} (used only without DB_* settings)"),
        ),
    ];
    for (queue, section) in &file.queues {
        if let Some(retry_after) = section.retry_after {
            rows.push(Row {
                key: format!("queues.{queue}.retry_after"),
                value: Some(retry_after.to_string()),
                source: format!("{from_file} [queues.{queue}]"),
            });
        }
    }
    let plan = Plan::from_file(file)?;
    let app = AppSection::from_file(file)?;
    for (action, (kind, origin)) in &plan.by_name {
        rows.push(Row {
            key: format!("actions.{action}"),
            value: Some(kind.name().to_owned()),
            source: match origin {
                Origin::Config => format!("{from_file} [actions.{action}]"),
                Origin::Default => {
                    "default (the app's action; forward if its database or cache store is missing)"
                        .to_owned()
                }
            },
        });
    }
    rows.push(Row {
        key: "actions.*".to_owned(),
        value: Some(plan.unlisted.name().to_owned()),
        source: if Plan::file_sets_unlisted(file) {
            format!("{from_file} [actions.\"*\"]")
        } else {
            Source::Default.to_string()
        },
    });
    if let Some(url) = app.database_url.as_deref().filter(|u| !u.is_empty()) {
        rows.push(Row {
            key: "app.database_url".to_owned(),
            value: Some(mask_password(url)),
            source: format!("{from_file} [app]"),
        });
    }
    rows.push(row(
        "app.max_connections",
        app.max_connections.map(|v| v.to_string()),
        APP_MAX_CONNECTIONS.to_string(),
    ));
    Ok(Group {
        name: "worker".to_owned(),
        rows,
    })
}

fn layers(settings: &Settings) -> Vec<String> {
    let dotenv = match settings.dotenv() {
        Some(env) => format!("the app's .env ({})", env.path().display()),
        None => "the app's .env (none read)".to_owned(),
    };
    let file = match &settings.file().path {
        Some(p) => format!("config file ({})", p.display()),
        None => format!("config file (none; {} not found)", config::DEFAULT_FILE),
    };
    vec![
        "process environment".to_owned(),
        dotenv,
        file,
        "defaults".to_owned(),
    ]
}

fn text(settings: &Settings, report: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Resolved from, highest first: {}",
        layers(settings).join(" > ")
    );
    for group in &report.groups {
        let _ = writeln!(out, "\n[{}]", group.name);
        let key_width = group.rows.iter().map(|r| r.key.len()).max().unwrap_or(0);
        let value_width = group
            .rows
            .iter()
            .map(|r| shown(r).chars().count())
            .max()
            .unwrap_or(0)
            .min(48);
        for row in &group.rows {
            let _ = writeln!(
                out,
                "  {:key_width$}  {:value_width$}  {}",
                row.key,
                shown(row),
                row.source
            );
        }
    }
    if !report.notes.is_empty() {
        let _ = writeln!(out, "\nNotes:");
        for note in &report.notes {
            let _ = writeln!(out, "  - {note}");
        }
    }
    if !report.problems.is_empty() {
        let _ = writeln!(out, "\nProblems:");
        for problem in &report.problems {
            let _ = writeln!(out, "  - {problem}");
        }
    }
    out
}

fn shown(row: &Row) -> String {
    match &row.value {
        Some(v) if v.is_empty() => "\"\"".to_owned(),
        Some(v) => v.clone(),
        None if row.source == "unset" => "-".to_owned(),
        None => "null".to_owned(),
    }
}

fn json(settings: &Settings, report: &Report) -> serde_json::Value {
    serde_json::json!({
        "layers": layers(settings),
        "dotenv": settings.dotenv().map(|e| e.path().display().to_string()),
        "config_file": settings.file().path.as_deref().map(Path::display).map(|p| p.to_string()),
        "groups": report.groups,
        "notes": report.notes,
        "problems": report.problems,
    })
}
