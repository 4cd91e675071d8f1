//! What a worker cannot work without stops `work` at start, within seconds and with a non-zero exit,
//! naming what to fix and taking no job: the failed_jobs table missing in the app's database (SQLite,
//! MariaDB, PostgreSQL), the SQLite file DB_DATABASE names, the `jobs` table of the database driver.
//! Before, the worker started and its first failing job retried its insert for ever, so
//! `--stop-when-empty` never returned. The embedded SQLite default still creates its own table.

use std::collections::HashMap;
use std::time::Duration;

use defer_worker::laravel::database::{Db, DbConfig};

use crate::support::{DbKind, WorkerProc, World};

/// Every action fails for good: a job that runs must write its failed_jobs row.
const FAIL_ALL: &str = "[actions.\"*\"]\nkind = \"fail\"\n";

/// Drops `table` from the world's app database.
fn drop_table(w: &World, table: &str) {
    let env: HashMap<String, String> = w.env().into_iter().collect();
    let cfg = DbConfig::from_env(&|k| env.get(k).cloned(), &w.dir.path().join("x.sqlite"))
        .expect("db config");
    let sql = format!("DROP TABLE {table}");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let db = Db::connect(&cfg).await.expect("app database");
        match &db {
            Db::MySql(p) => sqlx::query(&sql).execute(p).await.map(drop),
            Db::Postgres(p) => sqlx::query(&sql).execute(p).await.map(drop),
            Db::Sqlite(p) => sqlx::query(&sql).execute(p).await.map(drop),
        }
        .expect("drop table");
        db.close().await;
    });
}

/// Runs `work --stop-when-empty` over a failing job on `queue`; it must exit non-zero and leave the
/// job where it was. Returns the worker (its log holds the error).
fn refused(w: &World, args: &[&str], queue: &str, ready_key: &str) -> WorkerProc {
    w.dispatch("email_notification", r#"{"order_id":1}"#, queue, 1);
    let mut all = vec!["--stop-when-empty"];
    all.extend_from_slice(args);
    let mut worker = w.worker(&all, FAIL_ALL);
    let status = worker.wait(Duration::from_secs(20));
    assert!(!status.success(), "refused: {}", worker.log_text());
    assert_eq!(w.lrange(ready_key).len(), 1, "no job taken");
    worker
}

fn assert_names(log: &str, parts: &[&str]) {
    for part in parts {
        assert!(log.contains(part), "{part:?} not in:\n{log}");
    }
}

#[test]
fn work_refuses_to_start_without_failed_jobs_on_each_database() {
    for db in [DbKind::Sqlite, DbKind::MySql, DbKind::Postgres] {
        let w = World::new(db);
        drop_table(&w, "failed_jobs");
        let worker = refused(&w, &["--queue=q"], "q", &w.key("q"));
        let log = worker.log_text();
        assert_names(
            &log,
            &[
                "the failed_jobs table `failed_jobs` does not exist in the app's database",
                &w.db_name,
                "`php artisan queue:failed-table && php artisan migrate`",
            ],
        );
        assert!(!log.contains("worker started"), "{db:?}: {log}");
    }
}

#[test]
fn work_refuses_a_missing_sqlite_file() {
    let mut w = World::new(DbKind::Sqlite);
    let missing = w.dir.path().join("gone/app.sqlite").display().to_string();
    w.extra.push(("DB_DATABASE".into(), missing.clone()));
    // Pushing needs no database; the harness would create the file, so push the job by hand.
    w.rpush("q", &crate::support::fixture("email.json"));
    let mut worker = w.worker(&["--queue=q", "--stop-when-empty"], FAIL_ALL);
    assert!(!worker.wait(Duration::from_secs(20)).success());
    assert_names(
        &worker.log_text(),
        &[
            "failed_jobs: the SQLite database file",
            &missing,
            "DB_DATABASE",
        ],
    );
    assert_eq!(w.lrange(&w.key("q")).len(), 1, "no job taken");
}

#[test]
fn the_database_driver_refuses_to_start_without_its_jobs_table() {
    let w = World::new(DbKind::MySql);
    drop_table(&w, "jobs");
    let mut worker = w.worker(&["--connection=database", "--stop-when-empty"], FAIL_ALL);
    assert!(!worker.wait(Duration::from_secs(20)).success());
    assert_names(
        &worker.log_text(),
        &[
            "the database queue's table `jobs` does not exist in",
            &w.db_name,
            "`php artisan queue:table && php artisan migrate`",
        ],
    );
}

#[test]
fn the_embedded_default_still_creates_its_own_failed_jobs() {
    let mut w = World::new(DbKind::Sqlite);
    // No app database configured: failed jobs go to the embedded file (`--failed-db`).
    w.unset.extend(["DB_CONNECTION", "DB_DATABASE"]);
    let uuid = w
        .dispatch("email_notification", r#"{"order_id":1}"#, "q", 1)
        .remove(0);
    let mut worker = w.worker(&["--queue=q", "--stop-when-empty"], FAIL_ALL);
    assert!(
        worker.wait(Duration::from_secs(20)).success(),
        "{}",
        worker.log_text()
    );
    assert_eq!(worker.uuids("failed"), std::slice::from_ref(&uuid));
    let rows = w.failed();
    assert_eq!(rows.len(), 1, "in the embedded file: {rows:?}");
    assert_eq!(rows[0].uuid, uuid);
}
