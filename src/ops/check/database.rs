//! The app's database as the queue uses it: the failed_jobs table and its columns (or the embedded
//! SQLite file when no database is configured), and the database driver's `jobs` table. Reads only:
//! it never creates a table in the app's database.

use std::path::{Path, PathBuf};

use super::model::Checks;
use crate::app::line::table_columns;
use crate::config::Settings;
use crate::laravel::connection::{Connection, Driver};
use crate::laravel::database::{Db, DbConfig};
use crate::ops::{connect, startup};

/// Laravel's failed_jobs columns, driver `database-uuids` (docs/laravel-queue.md §6.1).
const FAILED_JOBS: &[&str] = &[
    "id",
    "uuid",
    "connection",
    "queue",
    "payload",
    "exception",
    "failed_at",
];
/// The database queue's columns (docs/laravel-queue.md §7.1).
const JOBS: &[&str] = &[
    "id",
    "queue",
    "payload",
    "attempts",
    "reserved_at",
    "available_at",
    "created_at",
];

pub(super) async fn check(
    c: &mut Checks,
    settings: &Settings,
    conn: &Connection,
    failed_db: Option<&Path>,
) {
    let embedded: PathBuf = failed_db
        .map(Path::to_path_buf)
        .or_else(|| settings.file().worker.failed_db.clone())
        .unwrap_or_else(|| PathBuf::from(connect::DEFAULT_FAILED_DB));
    let cfg = match DbConfig::from_env(&settings.lookup(), &embedded) {
        Ok(cfg) => cfg,
        Err(e) => {
            let fix = c.set("the DB_* key named (or DATABASE_URL)", "");
            c.fail("database.settings", e.to_string(), fix);
            return;
        }
    };
    let jobs_table = match &conn.driver {
        Driver::Database { table } => Some(table.as_str()),
        Driver::Redis => None,
    };
    if cfg.is_embedded() {
        let fix = c.set(
            "DB_CONNECTION and DB_* (or DATABASE_URL)",
            "to the app's database",
        );
        c.warn(
            "failed_jobs.database",
            format!(
                "no DB_CONNECTION or DATABASE_URL: failed jobs go to the embedded file {} (created on start), \
                 where `php artisan queue:failed` does not see them",
                embedded.display()
            ),
            Some(fix),
        );
        if let Some(table) = jobs_table {
            let fix = c.set(
                "DB_CONNECTION and DB_* (or DATABASE_URL)",
                "to the app's database",
            );
            c.fail(
                "jobs.table",
                format!(
                    "--connection={}: the database driver's table {table} needs the app's database",
                    conn.name
                ),
                fix,
            );
        }
        return;
    }
    if let Err(e) = startup::sqlite_file(&cfg, "failed_jobs") {
        let fix = c.set("DB_DATABASE", "to the app's SQLite file");
        c.fail("failed_jobs.database", format!("{e:#}"), fix);
        return;
    }
    let db = match Db::connect(&cfg).await {
        Ok(db) => db,
        Err(e) => {
            let fix = c.set(
                "DB_HOST, DB_PORT, DB_DATABASE, DB_USERNAME and DB_PASSWORD (or DATABASE_URL)",
                "to the app's database",
            );
            c.fail("failed_jobs.database", e.to_string(), fix);
            return;
        }
    };
    c.pass("database.connect", format!("{cfg}: connected"));
    table(
        c,
        "failed_jobs.table",
        &db,
        &cfg.table,
        FAILED_JOBS,
        "`php artisan queue:failed-table && php artisan migrate`",
    )
    .await;
    if let Some(jobs) = jobs_table {
        table(
            c,
            "jobs.table",
            &db,
            jobs,
            JOBS,
            "`php artisan queue:table && php artisan migrate`",
        )
        .await;
    }
    db.close().await;
}

/// `table` exists with `needed` columns; `migrate` is the command that creates it.
async fn table(c: &mut Checks, name: &str, db: &Db, table: &str, needed: &[&str], migrate: &str) {
    match table_columns(db, table).await {
        Err(e) => c.fail(
            name,
            e.to_string(),
            "see the error: the database or its user's rights",
        ),
        Ok(cols) if cols.is_empty() => c.fail(
            name,
            format!("the table `{table}` does not exist"),
            format!("create it with {migrate}"),
        ),
        Ok(cols) => {
            let missing = missing(&cols, needed);
            if missing.is_empty() {
                c.pass(name, format!("`{table}`: {}", needed.join(", ")));
            } else {
                c.fail(
                    name,
                    format!("`{table}` has no column {}", missing.join(", ")),
                    format!("migrate it to Laravel's table ({migrate} creates it)"),
                );
            }
        }
    }
}

/// The `needed` columns not in `have` (case-insensitive, as the databases compare names).
pub(super) fn missing<'a>(have: &[String], needed: &[&'a str]) -> Vec<&'a str> {
    needed
        .iter()
        .copied()
        .filter(|n| !have.iter().any(|h| h.eq_ignore_ascii_case(n)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_columns_are_named_in_order_ignoring_case() {
        let have = vec!["ID".to_owned(), "uuid".to_owned(), "Payload".to_owned()];
        assert_eq!(
            missing(&have, FAILED_JOBS),
            vec!["connection", "queue", "exception", "failed_at"]
        );
    }
}
