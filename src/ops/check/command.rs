//! The wiring of `defer-worker check`: the same settings, connection and options `work` resolves, then
//! each service's checks in the order the worker meets them, printed as text or JSON. Exit 0 when
//! nothing failed (warnings allowed), 1 otherwise.

use std::process::ExitCode;

use super::model::Checks;
use crate::config::Settings;
use crate::ops::connect;
use crate::ops::report;
use crate::ops::work::{resolve_options, WorkArgs};

/// Arguments of `defer-worker check`: `work`'s flags (the queues, connection, timeouts it would use;
/// `--check` is implied), and `--json`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Tries everything `work` would use with the same settings: Redis (connection, AUTH, TLS, the key prefix and
whether the queues exist under it, jobs waiting under another prefix), failed_jobs and the jobs table, the
app's tables and columns, the cache store, SMTP (no mail is sent), the WhatsApp Cloud API (a read-only
GET), APP_KEY on an encrypted job, retry_after against --timeout and the PHP hand-off queue.

Each line: ✓ works, ! works but deserves a look, ✗ will not work (→ what to change). Exit status 0 when
nothing failed, 1 otherwise.

Examples:
  defer-worker --env /var/www/restrosaas/.env check --queue=whatsapp,analytics,emails,cache,default
  defer-worker --env .env check --connection=whatsapp --json | jq '.checks[] | select(.status != \"pass\")'
  defer-worker --env .env work --check --queue=whatsapp")]
pub struct CheckArgs {
    #[command(flatten)]
    pub work: WorkArgs,
    /// Print one JSON document (`ok`, `env_file`, `checks`: name, status, detail, fix) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs every check and prints the report.
pub async fn run(work: &WorkArgs, json: bool, settings: &Settings) -> anyhow::Result<ExitCode> {
    let checks = checks(work, settings).await;
    if json {
        println!("{}", serde_json::to_string_pretty(&checks.json())?);
    } else {
        print!("{}", checks.text());
    }
    Ok(if checks.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The checks, in the order the worker meets what they check.
pub async fn checks(work: &WorkArgs, settings: &Settings) -> Checks {
    let mut c = Checks::new(settings);
    for p in report::problems(settings) {
        let fix = format!("fix {} ({})", p.key, p.source);
        c.fail(&format!("config {}", p.key), p.message, fix);
    }
    let file = settings.file();
    let name = work
        .connection
        .as_deref()
        .or(file.worker.connection.as_deref());
    let conn = match connect::connection(settings, name) {
        Ok(conn) => conn,
        Err(e) => {
            let fix =
                "give --connection one of config/queue.php's connections, or fix QUEUE_CONNECTION";
            c.fail("connection", format!("{e:#}"), fix);
            return c;
        }
    };
    let options = match resolve_options(work, file, &conn) {
        Ok(o) => o,
        Err(e) => {
            c.fail(
                "options",
                format!("{e:#}"),
                "fix the flag or the [worker] key it names",
            );
            return c;
        }
    };
    let redis = super::redis::check(&mut c, settings, &conn, &options).await;
    super::database::check(&mut c, settings, &conn, work.failed_db.as_deref()).await;
    let app = super::app::check(&mut c, settings).await;
    super::cache::check(&mut c, settings, &conn.name, &options.queues).await;
    super::smtp::check(&mut c, settings, app).await;
    super::whatsapp::check(&mut c, settings, app).await;
    super::jobs::check(&mut c, settings, &options, redis.as_ref()).await;
    c
}
