//! Start-up checks for what a worker cannot work without, so it refuses to start (exit non-zero within
//! seconds, naming what to fix) instead of starting and then holding every failing job reserved:
//! - the SQLite file `DB_DATABASE` (or `DATABASE_URL`) names, which Laravel refuses too when missing;
//! - the `failed_jobs` table in the app's database (the embedded SQLite default creates its own);
//! - the `jobs` table of the database queue driver;
//! - a Graph API version in `WHATSAPP_API_URL` that Meta no longer serves (unless
//!   `WHATSAPP_ALLOW_EXPIRED_API_VERSION=true`); one ending within 90 days, or newer than the table, is
//!   a warning.
//!
//! An unreachable database is not refused: the check warns and the worker starts, and failing jobs
//! wait reserved until it is back (docs/laravel-queue.md §6.4). Only an answer that says the table is
//! not there stops the start. This module checks; it must not create a table in the app's database.

use std::path::PathBuf;
use std::str::FromStr;

use crate::actions::whatsapp::{versions, WhatsappSettings};
use crate::laravel::database::{DbConfig, DbKind};
use crate::laravel::database_queue::{DatabaseQueue, DbQueueError};
use crate::laravel::failed_jobs::{FailedJobs, FailedJobsError};
use crate::laravel::sql_error::is_missing_table;

/// The app's SQLite file must exist: sqlx would otherwise fail every query, and Laravel refuses to
/// open a missing file ("Database file at path [...] does not exist"). `what` says what uses it.
pub fn sqlite_file(cfg: &DbConfig, what: &str) -> anyhow::Result<()> {
    if cfg.kind != DbKind::Sqlite || cfg.is_embedded() {
        return Ok(());
    }
    let Some(path) = sqlite_path(cfg) else {
        return Ok(());
    };
    anyhow::ensure!(
        path.exists(),
        "{what}: the SQLite database file {} (DB_DATABASE or DATABASE_URL) does not exist; \
         create it and run the app's migrations (`touch {0}` then `php artisan migrate`), or fix \
         DB_DATABASE",
        path.display()
    );
    Ok(())
}

fn sqlite_path(cfg: &DbConfig) -> Option<PathBuf> {
    let opts = sqlx::sqlite::SqliteConnectOptions::from_str(&cfg.url).ok()?;
    let path = opts.get_filename();
    (path.as_os_str() != ":memory:" && !path.as_os_str().is_empty()).then(|| path.to_path_buf())
}

/// failed_jobs must exist in the app's database: refused with the migration to run when the
/// database says it is missing; a warning when the database cannot be reached.
pub async fn failed_jobs_table(cfg: &DbConfig, failed: &FailedJobs) -> anyhow::Result<()> {
    match failed.count().await {
        Ok(_) => Ok(()),
        Err(FailedJobsError::Database { error, .. }) if is_missing_table(&error) => {
            Err(missing_failed_jobs(failed.table(), cfg))
        }
        Err(err) => {
            tracing::warn!(error = %err, database = %cfg, "failed_jobs cannot be reached yet; failing jobs will wait reserved until it can");
            Ok(())
        }
    }
}

fn missing_failed_jobs(table: &str, cfg: &DbConfig) -> anyhow::Error {
    anyhow::anyhow!(
        "the failed_jobs table `{table}` does not exist in the app's database {cfg}: failed jobs \
         are recorded there (as `php artisan queue:work` records them); create it with \
         `php artisan queue:failed-table && php artisan migrate`"
    )
}

/// The database queue's table must exist; `queue` is the connection's default queue, read once.
pub async fn jobs_table(cfg: &DbConfig, queue: &DatabaseQueue, name: &str) -> anyhow::Result<()> {
    match queue.stats(name).await {
        Err(DbQueueError::Database { source, table, .. }) if is_missing_table(&source) => {
            Err(anyhow::anyhow!(
                "the database queue's table `{table}` does not exist in {cfg}: create it with \
                 `php artisan queue:table && php artisan migrate`"
            ))
        }
        _ => Ok(()),
    }
}

/// The Graph API version the `whatsapp` actions will call, on `today`: an expired one stops the start
/// (naming `WHATSAPP_API_URL` and the version to move to), one ending soon or unknown is logged.
/// Nothing to check when WhatsApp is switched off or in demo mode (nothing is sent).
pub fn whatsapp_api_version(
    settings: &WhatsappSettings,
    today: chrono::NaiveDate,
) -> anyhow::Result<()> {
    if !settings.enabled || settings.demo_mode {
        return Ok(());
    }
    let version = versions::version_of(&settings.api_url);
    match versions::check(&settings.api_url, settings.allow_expired_api_version, today)? {
        None => tracing::info!(
            api_version = %versions::end_date_text(version.as_deref(), today),
            "WhatsApp Graph API version"
        ),
        Some(line) => tracing::warn!("{line}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(vars: &[(&str, &str)]) -> DbConfig {
        let get = |k: &str| {
            vars.iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        };
        DbConfig::from_env(&get, std::path::Path::new("/tmp/embedded.sqlite")).expect("config")
    }

    #[test]
    fn a_missing_sqlite_file_is_named() {
        let tmp = tempfile::tempdir().expect("tmp");
        let missing = tmp.path().join("nope/app.sqlite");
        let c = cfg(&[
            ("DB_CONNECTION", "sqlite"),
            ("DB_DATABASE", missing.to_str().unwrap()),
        ]);
        let err = sqlite_file(&c, "failed_jobs").unwrap_err().to_string();
        assert!(
            err.starts_with("failed_jobs: the SQLite database file "),
            "{err}"
        );
        assert!(err.contains(missing.to_str().unwrap()), "{err}");
        std::fs::create_dir_all(missing.parent().unwrap()).unwrap();
        std::fs::write(&missing, b"").unwrap();
        assert!(sqlite_file(&c, "failed_jobs").is_ok());
        // The embedded default is created on connect.
        assert!(sqlite_file(&cfg(&[]), "failed_jobs").is_ok());
    }

    #[test]
    fn the_missing_table_message_names_the_table_the_masked_database_and_the_fix() {
        let c = cfg(&[
            ("DB_CONNECTION", "mysql"),
            ("DB_DATABASE", "shop"),
            ("DB_USERNAME", "app"),
            ("DB_PASSWORD", "s3cret"),
        ]);
        let msg = missing_failed_jobs("failed_jobs", &c).to_string();
        assert!(msg.contains("`failed_jobs`"), "{msg}");
        assert!(msg.contains("mysql://app:***@127.0.0.1:3306/shop"), "{msg}");
        assert!(!msg.contains("s3cret"), "{msg}");
        assert!(
            msg.ends_with("`php artisan queue:failed-table && php artisan migrate`"),
            "{msg}"
        );
    }
}
