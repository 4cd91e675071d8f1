//! `defer-worker failed list|show|retry|forget|flush|prune` against real Redis, real failed_jobs
//! databases (SQLite, MariaDB, PostgreSQL) and Laravel 8.83's own `queue:failed`, `queue:retry` and
//! `queue:work`: rows either side wrote are listed alike, rows we retry run on PHP's worker, rows PHP
//! retries run on ours, and our retried payload is byte for byte the one `queue:retry` pushes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::{Command, Output};
use std::time::Duration;

use defer_worker::laravel::database::{Db, DbConfig};
use defer_worker::laravel::failed_jobs::{FailedJobs, Recorded};
use defer_worker::ops::failed::retry::retried_payload;
use serde_json::Value as Json;

use crate::support::{fixture, repo, DbKind, World};

const ALL_LOG: &str = "[actions.\"*\"]\nkind = \"log\"\n";

/// Runs `defer-worker` with the world's environment (no assertion on the exit status).
fn dw(w: &World, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_defer-worker"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(w.env())
        .output()
        .expect("run defer-worker")
}

/// `defer-worker` that must succeed; returns stdout.
fn dw_ok(w: &World, args: &[&str]) -> String {
    let out = dw(w, args);
    assert!(
        out.status.success(),
        "defer-worker {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Runtime::new().expect("runtime").block_on(f)
}

/// The world's failed_jobs as the library opens it (to write rows and age them).
async fn failer(w: &World) -> FailedJobs {
    let env: HashMap<String, String> = w.env().into_iter().collect();
    let cfg = DbConfig::from_env(
        &|k: &str| env.get(k).cloned(),
        &w.dir.path().join("e.sqlite"),
    )
    .expect("db config");
    FailedJobs::new(
        Db::connect(&cfg).await.expect("failed_jobs db"),
        "failed_jobs",
        chrono_tz::UTC,
    )
}

fn log_rows(w: &World, rows: &[(&str, &str, &str)]) {
    block_on(async {
        let f = failer(w).await;
        for (connection, queue, payload) in rows {
            let r = f
                .log(connection, queue, payload, "RuntimeException: x")
                .await
                .expect("insert");
            assert!(matches!(r, Recorded::Inserted(_)), "{r:?}");
        }
    });
}

/// Sets failed_at of `uuid` to `hours` ago (UTC, like the rows).
fn age_row(w: &World, uuid: &str, hours: i64) {
    let at = (chrono::Utc::now() - chrono::TimeDelta::hours(hours))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    block_on(async {
        let f = failer(w).await;
        let done = match f.db() {
            Db::Sqlite(p) => sqlx::query("UPDATE failed_jobs SET failed_at = ? WHERE uuid = ?")
                .bind(&at)
                .bind(uuid)
                .execute(p)
                .await
                .map(|d| d.rows_affected()),
            Db::MySql(p) => sqlx::query("UPDATE failed_jobs SET failed_at = ? WHERE uuid = ?")
                .bind(&at)
                .bind(uuid)
                .execute(p)
                .await
                .map(|d| d.rows_affected()),
            Db::Postgres(p) => sqlx::query(
                "UPDATE failed_jobs SET failed_at = CAST($1 AS TIMESTAMP) WHERE uuid = $2",
            )
            .bind(&at)
            .bind(uuid)
            .execute(p)
            .await
            .map(|d| d.rows_affected()),
        };
        assert_eq!(done.expect("update"), 1);
    });
}

/// A payload with its uuid replaced (JSON-level, the rest byte for byte).
fn with_uuid(payload: &[u8], uuid: &str) -> String {
    let text = String::from_utf8(payload.to_vec()).expect("utf-8");
    let old: Json = serde_json::from_str(&text).expect("json");
    let old = old["uuid"].as_str().expect("uuid").to_owned();
    text.replacen(
        &format!("\"uuid\":\"{old}\""),
        &format!("\"uuid\":\"{uuid}\""),
        1,
    )
}

/// The data rows of an artisan/our table: cells of each `| … |` line after the header.
fn table_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| l.starts_with("| "))
        .skip(1)
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect()
}

/// PHP fails each job it runs once (`harness_throw`), leaving rows written by Laravel itself.
fn php_fails(w: &World, queue: &str, count: usize) -> Vec<String> {
    let uuids = w.dispatch(
        "whatsapp_notification",
        r#"{"order_id":9,"harness_throw":"boom"}"#,
        queue,
        count,
    );
    w.php(&[
        "queue:work",
        "redis",
        &format!("--queue={queue}"),
        "--tries=1",
        "--stop-when-empty",
        "--sleep=0",
    ]);
    uuids
}

#[test]
fn list_prints_what_queue_failed_prints_for_rows_php_and_we_wrote() {
    let w = World::new(DbKind::Sqlite);
    let php_rows = php_fails(&w, "whatsapp", 2);
    let string_job = with_uuid(&fixture("foreign_string.json"), "row-string");
    let encrypted = with_uuid(&fixture("encrypted_aes_256_cbc.json"), "row-encrypted");
    let mailable = with_uuid(&fixture("foreign_mailable.json"), "row-mailable");
    log_rows(
        &w,
        &[
            ("redis", "default", &string_job),
            ("redis", "whatsapp", &encrypted),
            ("redis", "emails", &mailable),
        ],
    );

    let ours = dw_ok(&w, &["failed", "list"]);
    let theirs = w.php(&["queue:failed"]);
    assert_eq!(ours, theirs, "same table as queue:failed");
    let rows = table_rows(&ours);
    assert_eq!(rows.len(), 5, "{ours}");
    let class: HashMap<&str, &str> = rows
        .iter()
        .map(|r| (r[0].as_str(), r[3].as_str()))
        .collect();
    assert_eq!(class["row-string"], "App\\Handlers\\Legacy@handle");
    assert_eq!(
        class["row-encrypted"],
        "Illuminate\\Queue\\CallQueuedHandler@call"
    );
    assert_eq!(
        class["row-mailable"],
        "Illuminate\\Mail\\SendQueuedMailable"
    );
    assert_eq!(class[php_rows[0].as_str()], "App\\Jobs\\DeferredJob");
    assert_eq!(rows[0][0], "row-mailable", "newest first");

    let json: Json = serde_json::from_str(&dw_ok(&w, &["failed", "list", "--json"])).unwrap();
    let items = json.as_array().expect("array");
    assert_eq!(items.len(), 5);
    for (item, row) in items.iter().zip(&rows) {
        assert_eq!(item["uuid"], row[0].as_str());
        assert_eq!(item["queue"], row[2].as_str());
        assert_eq!(item["class"], row[3].as_str());
        assert_eq!(item["failed_at"], row[4].as_str());
        assert!(item["id"].as_i64().is_some());
    }

    // No rows: the same message as artisan.
    dw_ok(&w, &["failed", "flush"]);
    assert_eq!(dw_ok(&w, &["failed", "list"]), w.php(&["queue:failed"]));
}

#[test]
fn show_decodes_the_payload_and_prints_the_exception() {
    let w = World::new(DbKind::Sqlite);
    let uuid = php_fails(&w, "whatsapp", 1).remove(0);
    let doc: Json = serde_json::from_str(&dw_ok(&w, &["failed", "show", &uuid, "--json"])).unwrap();
    assert_eq!(doc["uuid"], uuid.as_str());
    assert_eq!(doc["queue"], "whatsapp");
    assert_eq!(doc["payload_error"], Json::Null);
    assert_eq!(
        doc["payload"]["deferred"]["action"],
        "whatsapp_notification"
    );
    assert_eq!(doc["payload"]["deferred"]["data"]["order_id"], 9);
    let exception = doc["exception"].as_str().unwrap();
    assert!(
        exception.starts_with("RuntimeException: boom in "),
        "{exception}"
    );
    let text = dw_ok(&w, &["failed", "show", &uuid]);
    assert!(
        text.contains("Stack trace:") && text.contains("\"whatsapp_notification\""),
        "{text}"
    );
    let missing = dw(&w, &["failed", "show", "no-such-uuid"]);
    assert_eq!(missing.status.code(), Some(1));
}

#[test]
fn retried_payload_is_the_corpus_one() {
    let original = String::from_utf8(fixture("retry_original.json")).unwrap();
    let retried = String::from_utf8(fixture("retried.json")).unwrap();
    assert_eq!(retried_payload(&original, true).unwrap(), retried);
}

/// Every corpus payload PHP can retry without the app's models or APP_KEY, plus shapes where PHP's
/// array semantics matter: `queue:retry all` and `failed retry all` push the same bytes.
#[test]
fn retry_pushes_the_bytes_queue_retry_pushes() {
    let w = World::new(DbKind::Sqlite);
    let dir = repo().join("fixtures/payloads");
    let mut payloads: BTreeMap<String, String> = BTreeMap::new();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        // Encrypted: PHP needs each payload's own APP_KEY to refresh retryUntil. Tuned: PHP
        // recomputes retryUntil from TunedJob::retryUntil() (we refuse those, tested below).
        if name.starts_with("encrypted_") || name.contains("tuned") {
            continue;
        }
        let uuid = format!("u-{}", name.trim_end_matches(".json"));
        payloads.insert(uuid.clone(), with_uuid(&fixture(&name), &uuid));
    }
    let crafted = [
        r#"{"uuid":"u-crafted-1","displayName":"X","job":"App\\Handlers\\Legacy@handle","maxTries":null,"data":{"0":"a","1":{},"e":{},"list":[],"f":[1.5e-7,25.5,1e17,0.1,-0,12345678901234567890],"s":"é\/🍔\u0001\u007f\u2028 \"q\" \\"},"id":"x","attempts":7}"#,
        r#"{"uuid":"u-crafted-2","job":"App\\Handlers\\Legacy@handle","data":{"1":"b","0":"a"},"attempts":"2","z":true}"#,
    ];
    for p in crafted {
        let v: Json = serde_json::from_str(p).unwrap();
        payloads.insert(v["uuid"].as_str().unwrap().to_owned(), p.to_owned());
    }
    assert!(payloads.len() > 40, "{}", payloads.len());
    // PHP unserializes each command to refresh retryUntil, which loads models: create Order 42.
    w.php(&["harness:dispatch-foreign", "model", "--queue=unused"]);

    let push_all = |retry: &dyn Fn()| -> HashMap<String, Vec<u8>> {
        let rows: Vec<(&str, &str, &str)> = payloads
            .values()
            .map(|p| ("redis", "retried", p.as_str()))
            .collect();
        log_rows(&w, &rows);
        retry();
        let pushed = w.lrange(&w.key("retried"));
        let _: () = redis::cmd("DEL")
            .arg(w.key("retried"))
            .arg(w.key("retried:notify"))
            .query(&mut w.redis())
            .unwrap();
        assert!(w.failed().is_empty(), "every row was forgotten");
        pushed
            .into_iter()
            .map(|p| {
                let v: Json = serde_json::from_slice(&p).unwrap();
                (v["uuid"].as_str().unwrap().to_owned(), p)
            })
            .collect()
    };
    let theirs = push_all(&|| {
        w.php(&["queue:retry", "all"]);
    });
    let ours = push_all(&|| {
        dw_ok(&w, &["failed", "retry", "all"]);
    });
    assert_eq!(theirs.len(), payloads.len());
    assert_eq!(ours.len(), payloads.len());
    for (uuid, php) in &theirs {
        assert_eq!(
            String::from_utf8_lossy(&ours[uuid]),
            String::from_utf8_lossy(php),
            "{uuid}"
        );
    }
    // The crafted ones show what was at stake.
    let crafted = String::from_utf8(ours["u-crafted-1"].clone()).unwrap();
    assert!(
        crafted.contains(r#""data":{"0":"a","1":[],"e":[],"list":[]"#),
        "{crafted}"
    );
    assert!(crafted.contains(r#"\u00e9\/\ud83c\udf54"#) && crafted.ends_with(r#""attempts":0}"#));
}

#[test]
fn rows_we_retry_run_on_php_worker_on_mariadb() {
    let w = World::new(DbKind::MySql);
    let wa = w.dispatch("whatsapp_notification", r#"{"order_id":1}"#, "whatsapp", 3);
    let em = w.dispatch("email_notification", r#"{"order_id":2}"#, "emails", 2);
    // defer-worker fails them (a permanent `fail` action) into failed_jobs.
    let config = "[actions.\"*\"]\nkind = \"fail\"\nmessage = \"provider down\"\n";
    let mut worker = w.worker(&["--queue=whatsapp,emails", "--stop-when-empty"], config);
    assert!(
        worker.wait(Duration::from_secs(30)).success(),
        "{}",
        worker.log_text()
    );
    assert_eq!(w.failed().len(), 5);

    let out = dw_ok(&w, &["failed", "retry", "--queue=whatsapp"]);
    assert_eq!(
        out.matches("has been pushed back onto the queue!").count(),
        3,
        "{out}"
    );
    let left: HashSet<String> = w.failed().into_iter().map(|r| r.uuid).collect();
    assert_eq!(
        left,
        em.iter().cloned().collect::<HashSet<_>>(),
        "only whatsapp rows retried"
    );

    let run_php = |queue: &str| {
        w.php_with(
            &[
                "queue:work",
                "redis",
                &format!("--queue={queue}"),
                "--stop-when-empty",
                "--sleep=0",
            ],
            &[("HARNESS_DONE_KEY", "done")],
        );
    };
    run_php("whatsapp");
    let done = |w: &World| -> HashSet<String> {
        w.lrange(&format!("{}done", w.prefix))
            .into_iter()
            .map(|u| String::from_utf8(u).unwrap())
            .collect()
    };
    assert_eq!(
        done(&w),
        wa.iter().cloned().collect::<HashSet<_>>(),
        "PHP ran our retries"
    );

    dw_ok(&w, &["failed", "retry", "all"]);
    run_php("emails");
    assert_eq!(done(&w).len(), 5);
    assert!(w.failed().is_empty(), "nothing failed again");
    assert!(w.php(&["queue:failed"]).contains("No failed jobs!"));
}

#[test]
fn rows_php_retries_run_on_defer_worker_on_postgres() {
    let w = World::new(DbKind::Postgres);
    let wa = php_fails(&w, "whatsapp", 3);
    let em = php_fails(&w, "emails", 2);
    w.php(&["queue:retry", "--queue=whatsapp"]);
    let mut worker = w.worker(&["--queue=whatsapp,emails", "--stop-when-empty"], ALL_LOG);
    assert!(
        worker.wait(Duration::from_secs(30)).success(),
        "{}",
        worker.log_text()
    );
    let done: HashSet<String> = worker.uuids("done").into_iter().collect();
    assert_eq!(done, wa.iter().cloned().collect::<HashSet<_>>());
    let listed: Json = serde_json::from_str(&dw_ok(&w, &["failed", "list", "--json"])).unwrap();
    let listed: HashSet<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uuid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, em.iter().cloned().collect::<HashSet<_>>());

    w.php(&["queue:retry", "all"]);
    let mut again = w.worker(&["--queue=whatsapp,emails", "--stop-when-empty"], ALL_LOG);
    assert!(again.wait(Duration::from_secs(30)).success());
    let done: HashSet<String> = again.uuids("done").into_iter().collect();
    assert_eq!(done, em.iter().cloned().collect::<HashSet<_>>());
    assert!(w.failed().is_empty());
    w.assert_no_keys("every retried job ran and left nothing behind");
}

#[test]
fn retry_refuses_what_it_cannot_retry_as_laravel_would() {
    let w = World::new(DbKind::Sqlite);
    let base = with_uuid(&fixture("whatsapp.json"), "on-sqs");
    let broken = "this is not json";
    let tuned = with_uuid(&fixture("foreign_tuned.json"), "tuned-expired");
    log_rows(
        &w,
        &[
            ("sqs", "default", &base),
            ("redis", "default", broken),
            ("redis", "default", &tuned),
        ],
    );
    let broken_uuid = w
        .failed()
        .into_iter()
        .find(|r| r.payload == broken)
        .unwrap()
        .uuid;
    let out = dw(&w, &["failed", "retry", "all"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("connection [sqs]"), "{err}");
    assert!(err.contains("not valid JSON"), "{err}");
    assert!(err.contains("retryUntil"), "{err}");
    assert_eq!(w.failed().len(), 3, "refused rows stay");
    assert!(w.lrange(&w.key("default")).is_empty(), "nothing pushed");

    let out = dw(&w, &["failed", "retry", "missing-uuid"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("Unable to find failed job with ID [missing-uuid]."));

    // Told that `sqs` is this Redis, and to keep retryUntil: both go.
    dw_ok(&w, &["failed", "retry", "on-sqs", "--connection=sqs"]);
    dw_ok(
        &w,
        &["failed", "retry", "tuned-expired", "--keep-retry-until"],
    );
    assert_eq!(w.lrange(&w.key("default")).len(), 2);
    let left: Vec<String> = w.failed().into_iter().map(|r| r.uuid).collect();
    assert_eq!(left, vec![broken_uuid]);
}

#[test]
fn forget_flush_and_prune_delete_what_artisan_would_on_mariadb() {
    let w = World::new(DbKind::MySql);
    let p = |u: &str| with_uuid(&fixture("whatsapp.json"), u);
    let (a, b, c, d, e) = (
        p("fresh-a"),
        p("fresh-b"),
        p("day-c"),
        p("day-d"),
        p("old-e"),
    );
    log_rows(
        &w,
        &[
            ("redis", "whatsapp", &a),
            ("redis", "whatsapp", &b),
            ("redis", "whatsapp", &c),
            ("redis", "whatsapp", &d),
            ("redis", "whatsapp", &e),
        ],
    );
    age_row(&w, "day-c", 30);
    age_row(&w, "day-d", 30);
    age_row(&w, "old-e", 50);
    let uuids = |w: &World| -> HashSet<String> { w.failed().into_iter().map(|r| r.uuid).collect() };
    let set = |v: &[&str]| -> HashSet<String> { v.iter().map(|s| s.to_string()).collect() };

    assert_eq!(
        dw_ok(&w, &["failed", "prune", "--hours=48"]).trim(),
        "1 entries deleted!"
    );
    assert_eq!(uuids(&w), set(&["fresh-a", "fresh-b", "day-c", "day-d"]));
    assert!(dw_ok(&w, &["failed", "flush", "--hours=24"]).contains("(2 deleted)"));
    assert_eq!(uuids(&w), set(&["fresh-a", "fresh-b"]));
    // Default prune: 24 hours; nothing that old is left.
    assert_eq!(dw_ok(&w, &["failed", "prune"]).trim(), "0 entries deleted!");

    assert_eq!(
        dw_ok(&w, &["failed", "forget", "fresh-a"]).trim(),
        "Failed job deleted successfully!"
    );
    let again = dw(&w, &["failed", "forget", "fresh-a"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("No failed job matches the given ID."));
    let listed = w.php(&["queue:failed"]);
    assert!(
        listed.contains("fresh-b") && !listed.contains("fresh-a"),
        "{listed}"
    );

    assert!(dw_ok(&w, &["failed", "flush"]).contains("(1 deleted)"));
    assert!(w.failed().is_empty());
}
