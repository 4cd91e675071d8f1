//! `laravel::failed_jobs` (and `laravel::database`) against real MariaDB (127.0.0.1:3306, root, db
//! `test`), PostgreSQL (127.0.0.1:5432, postgres, db `test`) and a temporary SQLite file, and against
//! Laravel 8.83's own `DatabaseUuidFailedJobProvider` via `tests/php/failed_jobs.php`.
//!
//! Each scenario is one generic function run once per database. Every run uses its own random table
//! name and drops it on drop, even when the test panics.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{NaiveDateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use defer_worker::laravel::database::{Db, DbConfig, DbError, DbKind};
use defer_worker::laravel::failed_jobs::{FailedJobRow, FailedJobs, FailedJobsError, Recorded};
use serde_json::{json, Value as Json};

const PHP_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/php/failed_jobs.php");

#[derive(Clone, Copy, Debug)]
enum Backend {
    MySql,
    Postgres,
    Sqlite,
}

/// One test's table on one database. Drops the table on drop.
struct Ctx {
    backend: Backend,
    cfg: DbConfig,
    db: Db,
    table: String,
    /// Holds the SQLite file.
    _dir: Option<tempfile::TempDir>,
    sqlite_path: Option<PathBuf>,
}

fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

impl Ctx {
    /// Connects through the Laravel-named settings a deployment would use; no table yet.
    async fn new(backend: Backend) -> Ctx {
        let table = format!("failed_jobs_{}", uuid::Uuid::new_v4().simple());
        let (dir, sqlite_path) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let path = dir.path().join("app.sqlite");
                (Some(dir), Some(path))
            }
            _ => (None, None),
        };
        let vars: Vec<(&str, &str)> = match backend {
            Backend::MySql => vec![
                ("DB_CONNECTION", "mysql"),
                ("DB_DATABASE", "test"),
                ("DB_USERNAME", "root"),
            ],
            Backend::Postgres => vec![
                ("DB_CONNECTION", "pgsql"),
                ("DB_DATABASE", "test"),
                ("DB_USERNAME", "postgres"),
            ],
            // Nothing configured: the embedded file, created by connect.
            Backend::Sqlite => vec![],
        };
        let default_path = sqlite_path
            .clone()
            .unwrap_or_else(|| PathBuf::from("unused.sqlite"));
        let mut cfg = DbConfig::from_env(&env_of(&vars), &default_path).expect("config");
        cfg.table = table.clone();
        let db = Db::connect(&cfg)
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        Ctx {
            backend,
            cfg,
            db,
            table,
            _dir: dir,
            sqlite_path,
        }
    }

    fn jobs(&self, tz: Tz) -> FailedJobs {
        FailedJobs::new(self.db.clone(), &self.table, tz)
    }

    /// Runs the PHP helper on this table; returns its JSON output.
    fn php(&self, action: &str, args: &[&str]) -> Json {
        let (driver, database) = match (self.backend, &self.sqlite_path) {
            (Backend::MySql, _) => ("mysql", "test".to_owned()),
            (Backend::Postgres, _) => ("pgsql", "test".to_owned()),
            (Backend::Sqlite, Some(p)) => ("sqlite", p.display().to_string()),
            (Backend::Sqlite, None) => unreachable!("sqlite always has a path"),
        };
        let out = Command::new("php")
            .arg(PHP_SCRIPT)
            .args([driver, &database, &self.table, action])
            .args(args)
            .output()
            .expect("run php");
        assert!(
            out.status.success(),
            "php {action} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "php {action} printed non-JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    fn php_log(&self, tz: &str, payload: &str, message: &str) -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("payload.json");
        std::fs::write(&file, payload).expect("write payload");
        let out = self.php(
            "log",
            &[
                tz,
                "redis",
                "emails",
                file.to_str().expect("utf-8 path"),
                message,
            ],
        );
        out["uuid"].as_str().expect("uuid").to_owned()
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        // Async cleanup from a sync Drop: a private runtime on a plain thread.
        let cfg = self.cfg.clone();
        let sql = match cfg.kind {
            DbKind::MySql => format!("DROP TABLE IF EXISTS `{}`", self.table),
            _ => format!("DROP TABLE IF EXISTS \"{}\"", self.table),
        };
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let result = match Db::connect(&cfg).await {
                    Ok(Db::MySql(p)) => sqlx::query(&sql).execute(&p).await.map(drop),
                    Ok(Db::Postgres(p)) => sqlx::query(&sql).execute(&p).await.map(drop),
                    Ok(Db::Sqlite(p)) => sqlx::query(&sql).execute(&p).await.map(drop),
                    Err(e) => Err(sqlx::Error::Protocol(e.to_string())),
                };
                if let Err(e) = result {
                    eprintln!("cannot drop {sql}: {e}");
                }
            })
        })
        .join();
    }
}

fn payload(uuid: &str, extra: &str) -> String {
    // The shape Laravel pushes, with text that breaks naive quoting and encodings.
    format!(
        r#"{{"uuid":"{uuid}","displayName":"App\\Jobs\\DeferredJob","job":"Illuminate\\Queue\\CallQueuedHandler@call","maxTries":null,"data":{{"commandName":"App\\Jobs\\DeferredJob","command":"O:21:\"App\\Jobs\\DeferredJob\":1:{{s:9:\"\u0000*\u0000action\";s:8:\"whatsapp\";}}","note":"{extra} 'q' \"dq\" é 🍕 \\ %"}},"id":"x","attempts":0}}"#
    )
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Asserts `failed_at` is "now" in a zone `offset_hours` ahead of UTC (within a minute).
fn assert_now_at_offset(failed_at: &str, offset_hours: i64) {
    let at = NaiveDateTime::parse_from_str(failed_at, "%Y-%m-%d %H:%M:%S")
        .unwrap_or_else(|e| panic!("failed_at {failed_at:?} is not Y-m-d H:i:s: {e}"));
    let expected = Utc::now().naive_utc() + TimeDelta::hours(offset_hours);
    let skew = (at - expected).num_seconds().abs();
    assert!(
        skew < 60,
        "failed_at {failed_at} is {skew}s away from UTC{offset_hours:+}h now ({expected})"
    );
}

fn tz(name: &str) -> Tz {
    name.parse().expect("known time zone")
}

// ---------------------------------------------------------------------------------------------

async fn log_and_read_back(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let tokyo = ctx.jobs(tz("Asia/Tokyo"));
    tokyo.ensure_table().await.expect("ensure_table");
    tokyo
        .ensure_table()
        .await
        .expect("ensure_table is idempotent");
    assert_eq!(tokyo.count().await.expect("count"), 0);

    let (u1, u2) = (new_uuid(), new_uuid());
    let (p1, p2) = (payload(&u1, "first"), payload(&u2, "second"));
    let exception = "DeferWorker\\ActionFailedException: Graph API 131026 « refusé » in defer-worker/src/x.rs:1\nStack trace:\n#0 {main}";
    assert_eq!(
        tokyo
            .log("redis", "whatsapp", &p1, exception)
            .await
            .expect("log"),
        Recorded::Inserted(u1.clone())
    );
    let abidjan = ctx.jobs(tz("Africa/Abidjan"));
    assert_eq!(
        abidjan
            .log("redis", "default", &p2, "E")
            .await
            .expect("log"),
        Recorded::Inserted(u2.clone())
    );

    let all = tokyo.all().await.expect("all");
    assert_eq!(all.len(), 2);
    let (second, first) = (&all[0], &all[1]);
    assert!(
        second.id > first.id,
        "newest id first, ids increase: {} then {}",
        second.id,
        first.id
    );
    assert_eq!(first.job.uuid, u1);
    assert_eq!(first.job.connection, "redis");
    assert_eq!(first.job.queue, "whatsapp");
    assert_eq!(first.job.payload, p1);
    assert_eq!(first.job.exception, exception);
    assert_now_at_offset(&first.job.failed_at, 9);
    assert_eq!(
        (
            second.job.uuid.as_str(),
            second.job.queue.as_str(),
            second.job.payload.as_str()
        ),
        (u2.as_str(), "default", p2.as_str())
    );
    assert_now_at_offset(&second.job.failed_at, 0);

    let found: FailedJobRow = tokyo.find(&u1).await.expect("find").expect("row for u1");
    assert_eq!(&found, first);
    assert_eq!(tokyo.find("no-such-uuid").await.expect("find"), None);
    assert_eq!(tokyo.count().await.expect("count"), 2);
}

async fn unique_uuid(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let jobs = ctx.jobs(chrono_tz::UTC);
    jobs.ensure_table().await.expect("ensure_table");
    let uuid = new_uuid();
    let (a, b, c) = (
        payload(&uuid, "a"),
        payload(&uuid, "b"),
        payload(&uuid, "c"),
    );

    assert_eq!(
        jobs.log("redis", "default", &a, "E1").await.expect("log"),
        Recorded::Inserted(uuid.clone())
    );
    assert_eq!(
        jobs.log("redis", "default", &a, "E1 again")
            .await
            .expect("log"),
        Recorded::AlreadyThere
    );
    assert_eq!(jobs.count().await.expect("count"), 1);

    let dup1 = format!("{uuid}-dup1");
    assert_eq!(
        jobs.log("redis", "default", &b, "E2").await.expect("log"),
        Recorded::AsDuplicate(dup1.clone())
    );
    assert_eq!(jobs.count().await.expect("count"), 2);
    let row = jobs.find(&dup1).await.expect("find").expect("dup1 row");
    assert_eq!(
        (row.job.payload.as_str(), row.job.exception.as_str()),
        (b.as_str(), "E2")
    );
    // The original row is untouched.
    assert_eq!(
        jobs.find(&uuid)
            .await
            .expect("find")
            .expect("row")
            .job
            .payload,
        a
    );

    // b again matches dup1; c is new and goes to dup2.
    assert_eq!(
        jobs.log("redis", "default", &b, "E2").await.expect("log"),
        Recorded::AlreadyThere
    );
    assert_eq!(
        jobs.log("redis", "default", &c, "E3").await.expect("log"),
        Recorded::AsDuplicate(format!("{uuid}-dup2"))
    );
    assert_eq!(jobs.count().await.expect("count"), 3);

    // Past -dup3, each further payload takes a uuid named after its hash: one insert, however many
    // payloads share the uuid, and the same payload lands on the same row.
    let d = payload(&uuid, "d");
    assert_eq!(
        jobs.log("redis", "default", &d, "E4").await.expect("log"),
        Recorded::AsDuplicate(format!("{uuid}-dup3"))
    );
    let mut hashed = std::collections::BTreeSet::new();
    for i in 0..50 {
        let p = payload(&uuid, &format!("many-{i}"));
        match jobs.log("redis", "default", &p, "E").await.expect("log") {
            Recorded::AsDuplicate(u) => {
                assert!(
                    u.starts_with(&format!("{uuid}-h")) && u.len() == uuid.len() + 18,
                    "{u}"
                );
                hashed.insert(u);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            jobs.log("redis", "default", &p, "E").await.expect("log"),
            Recorded::AlreadyThere
        );
    }
    assert_eq!(hashed.len(), 50);
    assert_eq!(jobs.count().await.expect("count"), 54);
}

async fn forget_flush_count(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let utc = ctx.jobs(chrono_tz::UTC);
    // Twelve hours behind UTC: its rows look 12 h old to the UTC provider.
    let behind = ctx.jobs(tz("Etc/GMT+12"));
    utc.ensure_table().await.expect("ensure_table");
    let (u1, u2, u3, u4) = (new_uuid(), new_uuid(), new_uuid(), new_uuid());
    utc.log("redis", "default", &payload(&u1, ""), "E")
        .await
        .expect("log");
    utc.log("redis", "default", &payload(&u2, ""), "E")
        .await
        .expect("log");
    behind
        .log("redis", "default", &payload(&u3, ""), "E")
        .await
        .expect("log");
    behind
        .log("redis", "default", &payload(&u4, ""), "E")
        .await
        .expect("log");
    assert_eq!(utc.count().await.expect("count"), 4);

    assert!(utc.forget(&u1).await.expect("forget"));
    assert!(
        !utc.forget(&u1).await.expect("forget again"),
        "a second forget finds nothing"
    );
    assert_eq!(utc.find(&u1).await.expect("find"), None);
    assert_eq!(utc.count().await.expect("count"), 3);

    // 24 h: nothing is that old. 6 h: the two rows written 12 h "ago".
    assert_eq!(utc.flush(Some(24)).await.expect("flush 24h"), 0);
    assert_eq!(utc.flush(Some(6)).await.expect("flush 6h"), 2);
    let left: Vec<String> = utc
        .all()
        .await
        .expect("all")
        .into_iter()
        .map(|r| r.job.uuid)
        .collect();
    assert_eq!(left, vec![u2]);
    assert_eq!(utc.flush(Some(u64::MAX)).await.expect("flush huge"), 0);

    assert_eq!(utc.flush(None).await.expect("flush all"), 1);
    assert_eq!(utc.count().await.expect("count"), 0);
}

/// Rows we write in the table we create are read by Laravel's provider, column for column, and a
/// row Laravel's provider writes into that table is read by us.
async fn php_reads_our_rows_and_writes_to_our_table(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let jobs = ctx.jobs(tz("Asia/Tokyo"));
    jobs.ensure_table().await.expect("ensure_table");
    let uuid = new_uuid();
    let p = payload(&uuid, "ours");
    let exception = "Illuminate\\Queue\\MaxAttemptsExceededException: App\\Jobs\\DeferredJob has been attempted too many times. in defer-worker/src/worker/job.rs:84\nStack trace:\n#0 {main}";
    jobs.log("redis", "whatsapp", &p, exception)
        .await
        .expect("log");
    let ours = jobs.find(&uuid).await.expect("find").expect("row");

    let expected = json!({
        "id": uuid,
        "connection": "redis",
        "queue": "whatsapp",
        "payload": p,
        "exception": exception,
        "failed_at": ours.job.failed_at,
    });
    let found = ctx.php("find", &[&uuid]);
    assert_eq!(
        found, expected,
        "PHP find() sees exactly our row (uuid as id, no other columns)"
    );
    assert_eq!(ctx.php("all", &[]), json!([expected]));

    // PHP writes into the table we created (its insert satisfies our schema), we read it.
    let php_uuid = new_uuid();
    let php_payload = payload(&php_uuid, "theirs");
    assert_eq!(
        ctx.php_log("Asia/Tokyo", &php_payload, "from php"),
        php_uuid
    );
    let all = jobs.all().await.expect("all");
    assert_eq!(all.len(), 2);
    let theirs = &all[0];
    assert!(theirs.id > all[1].id);
    assert_eq!(theirs.job.uuid, php_uuid);
    assert_eq!(
        (theirs.job.connection.as_str(), theirs.job.queue.as_str()),
        ("redis", "emails")
    );
    assert_eq!(theirs.job.payload, php_payload);
    assert!(
        theirs
            .job
            .exception
            .starts_with("RuntimeException: from php in "),
        "{}",
        theirs.job.exception
    );
    assert!(
        theirs.job.exception.contains("\nStack trace:\n#0 "),
        "{}",
        theirs.job.exception
    );
    assert_now_at_offset(&theirs.job.failed_at, 9);
    // And both providers agree on its failed_at text.
    assert_eq!(
        ctx.php("find", &[&php_uuid])["failed_at"],
        json!(theirs.job.failed_at)
    );
}

/// A table created by Laravel's own migration accepts our rows; we read PHP's rows from it.
async fn we_use_a_table_laravel_created(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    ctx.php("migrate", &[]);
    let jobs = ctx.jobs(chrono_tz::UTC);
    jobs.ensure_table()
        .await
        .expect("ensure_table leaves Laravel's table alone");

    let php_uuid = new_uuid();
    let php_payload = payload(&php_uuid, "php first");
    ctx.php_log("UTC", &php_payload, "");
    let uuid = new_uuid();
    let p = payload(&uuid, "ours second");
    assert_eq!(
        jobs.log("redis", "default", &p, "E").await.expect("log"),
        Recorded::Inserted(uuid.clone())
    );
    // The unique index Laravel created is the one our dedup relies on.
    assert_eq!(
        jobs.log("redis", "default", &php_payload, "E")
            .await
            .expect("log"),
        Recorded::AlreadyThere
    );

    let all = jobs.all().await.expect("all");
    let uuids: Vec<&str> = all.iter().map(|r| r.job.uuid.as_str()).collect();
    assert_eq!(uuids, vec![uuid.as_str(), php_uuid.as_str()]);
    // PHP's empty-message exception text, as Laravel stored it.
    assert!(
        all[1].job.exception.starts_with("RuntimeException in "),
        "{}",
        all[1].job.exception
    );
    assert_now_at_offset(&all[1].job.failed_at, 0);
    let php_view = ctx.php("find", &[&uuid]);
    assert_eq!(php_view["payload"], json!(p));
    assert_eq!(php_view["failed_at"], json!(all[0].job.failed_at));
}

/// A missing table is an error for the caller (which keeps the job), never a panic or a silent Ok.
async fn missing_table_is_an_error(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let jobs = ctx.jobs(chrono_tz::UTC);
    let err = jobs
        .log("redis", "default", &payload(&new_uuid(), ""), "E")
        .await
        .unwrap_err();
    assert!(
        matches!(err, FailedJobsError::Database { op: "insert", .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(&ctx.table), "{err}");
    assert!(jobs.count().await.is_err());
}

macro_rules! on_all_databases {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                use super::*;
                #[tokio::test]
                async fn mysql() {
                    super::$scenario(Backend::MySql).await
                }
                #[tokio::test]
                async fn postgres() {
                    super::$scenario(Backend::Postgres).await
                }
                #[tokio::test]
                async fn sqlite() {
                    super::$scenario(Backend::Sqlite).await
                }
            }
        )*
    };
}

on_all_databases!(
    log_and_read_back,
    unique_uuid,
    forget_flush_count,
    php_reads_our_rows_and_writes_to_our_table,
    we_use_a_table_laravel_created,
    missing_table_is_an_error,
);

// --- connection errors ------------------------------------------------------------------------

#[tokio::test]
async fn wrong_password_is_an_error_without_the_password() {
    let vars = [
        ("DB_CONNECTION", "mysql"),
        ("DB_DATABASE", "test"),
        ("DB_USERNAME", "root"),
        ("DB_PASSWORD", "Wr0ng-pa55word"),
    ];
    let cfg = DbConfig::from_env(&env_of(&vars), Path::new("x")).expect("config");
    let err = Db::connect(&cfg).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, DbError::Connect { .. }), "{err:?}");
    assert!(
        text.contains("mysql://root:***@127.0.0.1:3306/test"),
        "{text}"
    );
    assert!(
        !text.contains("Wr0ng") && !format!("{err:?}").contains("Wr0ng"),
        "{text}"
    );
}

#[tokio::test]
async fn unreachable_server_is_an_error_and_lazy_connect_defers_it() {
    // Port 9 (discard) is closed here: connection refused.
    let vars = [
        ("DB_CONNECTION", "pgsql"),
        ("DB_PORT", "9"),
        ("DB_PASSWORD", "s3cr3t-value"),
    ];
    let cfg = DbConfig::from_env(&env_of(&vars), Path::new("x")).expect("config");
    let err = Db::connect(&cfg).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot connect to postgres://forge:***@127.0.0.1:9/forge"),
        "{err}"
    );
    assert!(!err.to_string().contains("s3cr3t"));

    let db = Db::connect_lazy(&cfg)
        .await
        .expect("lazy pool needs no server");
    let jobs = FailedJobs::new(db, "failed_jobs", chrono_tz::UTC);
    let err = jobs
        .log("redis", "default", &payload(&new_uuid(), ""), "E")
        .await
        .unwrap_err();
    assert!(matches!(err, FailedJobsError::Database { .. }), "{err:?}");
}

#[tokio::test]
async fn embedded_sqlite_file_and_directory_are_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state").join("failed.sqlite");
    let cfg = DbConfig::from_env(&env_of(&[]), &path).expect("config");
    assert!(cfg.is_embedded());
    assert!(!path.exists());
    let db = Db::connect(&cfg).await.expect("connect");
    assert!(path.exists(), "connect creates the embedded file");
    let jobs = FailedJobs::new(db, &cfg.table, chrono_tz::UTC);
    jobs.ensure_table().await.expect("ensure_table");
    let uuid = new_uuid();
    jobs.log("redis", "default", &payload(&uuid, ""), "E")
        .await
        .expect("log");
    assert_eq!(
        jobs.find(&uuid).await.expect("find").map(|r| r.job.uuid),
        Some(uuid)
    );
}

#[tokio::test]
async fn configured_sqlite_file_is_not_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("missing.sqlite");
    let p = path.to_str().expect("utf-8");
    let cfg = DbConfig::from_env(
        &env_of(&[("DB_CONNECTION", "sqlite"), ("DB_DATABASE", p)]),
        Path::new("x"),
    )
    .expect("config");
    assert!(!cfg.is_embedded());
    assert!(
        Db::connect(&cfg).await.is_err(),
        "a wrong DB_DATABASE path is reported, like Laravel"
    );
    assert!(!path.exists());
}
