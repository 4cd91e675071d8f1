//! Leases against duplicate runs (docs/laravel-queue.md §15): jobs that run longer than `retry_after`
//! stay defer-worker's while real PHP `queue:work` works the same queue, on Redis and on the `jobs`
//! table; a killed worker's jobs still come back after `retry_after`; a lease another worker broke
//! (the worker frozen with SIGSTOP past `retry_after`) is reported and its job left to that worker.

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use defer_worker::laravel::database::{Db, DbConfig};
use defer_worker::laravel::database_queue::DatabaseQueue;
use serde_json::Value as Json;

use crate::support::{log_time, now_f64, repo, DbKind, World};

const LOG_ALL: &str = "[actions.\"*\"]\nkind = \"log\"\n";
/// Job data with a phone number, which no log line above debug may show.
const DATA: &str = r#"{"order_id":1,"phone":"+22507123456"}"#;
const PHONE: &str = "22507123456";

/// Every action runs as the `log` kind, taking `ms`.
fn slow(ms: u64) -> String {
    format!("[actions.\"*\"]\nkind = \"log\"\nsleep_ms = {ms}\n")
}

/// A world whose Redis queues have `retry_after` seconds on both sides (REDIS_QUEUE_RETRY_AFTER).
fn redis_world(retry_after: u64) -> World {
    let mut w = World::new(DbKind::Sqlite);
    w.extra
        .push(("REDIS_QUEUE_RETRY_AFTER".into(), retry_after.to_string()));
    w
}

/// A world whose app pushes to the `database` connection, `retry_after` seconds on both sides.
fn db_world(db: DbKind, retry_after: u64) -> World {
    let mut w = World::new(db);
    w.extra.push(("QUEUE_CONNECTION".into(), "database".into()));
    w.extra
        .push(("DB_QUEUE_RETRY_AFTER".into(), retry_after.to_string()));
    w
}

/// The members of `queue`'s `:reserved` set with their scores.
fn reserved(w: &World, queue: &str) -> Vec<(String, f64)> {
    redis::cmd("ZRANGE")
        .arg(w.key(&format!("{queue}:reserved")))
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(&mut w.redis())
        .expect("ZRANGE")
}

fn uuid_of(member: &str) -> String {
    let json: Json = serde_json::from_str(member).expect("a JSON member");
    json["uuid"].as_str().expect("uuid").to_owned()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// PHP's `queue:work` (Laravel 8.83) on `queues`, recording what it runs under `done`.
fn php_worker(w: &World, connection: &str, queues: &str) -> crate::support::PhpProc {
    w.php_background(
        &[
            "queue:work",
            connection,
            &format!("--queue={queues}"),
            "--sleep=0.2",
            "--tries=1",
        ],
        &[("HARNESS_DONE_KEY", "done")],
    )
}

/// Calls `f` every 100 ms until it returns something, for at most `secs` seconds.
fn poll<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// Waits until the wall clock is past `unix_secs`.
fn wait_past(w: &World, unix_secs: f64) {
    assert!(w.wait_until(Duration::from_secs(30), || now_f64() > unix_secs));
}

/// The app's database, as the harness configures it.
async fn app_db(w: &World) -> Db {
    let env: std::collections::HashMap<String, String> = w.env().into_iter().collect();
    let cfg = DbConfig::from_env(&|k: &str| env.get(k).cloned(), &w.dir.path().join("x"))
        .expect("db config");
    Db::connect(&cfg).await.expect("app database")
}

/// (id, attempts, reserved_at) of every row of `jobs`.
async fn rows(db: &Db) -> Vec<(i64, i64, Option<i64>)> {
    let sql = "SELECT CAST(id AS SIGNED) AS id, CAST(attempts AS SIGNED) AS attempts, \
               CAST(reserved_at AS SIGNED) AS reserved_at FROM jobs ORDER BY id";
    let lite = "SELECT id, attempts, reserved_at FROM jobs ORDER BY id";
    match db {
        Db::MySql(p) => sqlx::query_as(sql).fetch_all(p).await,
        Db::Postgres(p) => {
            sqlx::query_as(&sql.replace("SIGNED", "BIGINT"))
                .fetch_all(p)
                .await
        }
        Db::Sqlite(p) => sqlx::query_as(lite).fetch_all(p).await,
    }
    .expect("read jobs")
}

/// A free local port for `--http`.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port()
}

/// The body of `GET /metrics`.
fn scrape(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to --http");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("reply");
    reply
}

/// Laravel's own `RedisQueue::pop` (tests/php/redis_queue.php `reserve`): migrates, then reserves
/// the next job for 90 s and leaves it reserved, as a PHP worker still running it does.
fn php_reserve(w: &World, queue: &str) -> Option<Json> {
    let out = Command::new("php")
        .arg(repo().join("tests/php/redis_queue.php"))
        .args([&w.prefix, "reserve", queue])
        .output()
        .expect("php");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Json = serde_json::from_slice(&out.stdout).expect("json");
    (!json.is_null()).then_some(json)
}

/// Ten 5-second jobs with retry_after 2 while PHP's `queue:work` pops the same queue: PHP migrates
/// `:reserved` before each pop, so without leases it would take all ten back and run them again (and,
/// with `--tries=1`, fail them). The canaries on a second queue, which only PHP works, show that PHP
/// kept popping `leases` after the reservations made at the pop had run out.
#[test]
fn php_queue_work_on_the_same_queue_never_takes_a_running_job() {
    let w = redis_world(2);
    let sent = w.dispatch("analytics_tracking", DATA, "leases", 10);
    let ours = w.worker(
        &[
            "--queue=leases",
            "--concurrency=10",
            "--tries=1",
            "--timeout=30",
        ],
        &slow(5000),
    );
    assert!(
        w.wait_until(Duration::from_secs(60), || reserved(&w, "leases").len()
            == 10),
        "defer-worker reserved the ten; log:\n{}",
        ours.log_text()
    );
    let popped_until = reserved(&w, "leases")
        .iter()
        .map(|(_, s)| *s)
        .fold(0.0, f64::max);
    let _php = php_worker(&w, "redis", "leases,canary");

    // Past the pop's reservations: PHP pops `leases` (migrating it first) before each canary.
    wait_past(&w, popped_until + 1.0);
    let canaries = w.dispatch("analytics_tracking", r#"{"order_id":2}"#, "canary", 2);
    assert!(
        w.wait_until(Duration::from_secs(60), || w.list("done").len() == 2),
        "PHP ran the canaries"
    );
    let held = reserved(&w, "leases");
    let finished = ours.uuids("done").len();
    assert_eq!(held.len() + finished, 10, "each job reserved or done");
    for (member, score) in &held {
        assert!(*score > popped_until, "{} not extended", uuid_of(member));
    }

    ours.wait_for(Duration::from_secs(60), "ten done", |logs| {
        logs.iter().filter(|l| l["outcome"] == "done").count() == 10
    });
    assert_eq!(
        sorted(ours.uuids("done")),
        sorted(sent),
        "each ran once, here"
    );
    assert_eq!(
        sorted(w.list("done")),
        sorted(canaries),
        "PHP ran only the canaries"
    );
    assert!(w.failed().is_empty(), "{:?}", w.failed());
    assert!(ours.outcomes("lease_lost").is_empty());
    assert_eq!(w.queue_len("leases"), 0);
    let text = ours.log_text();
    assert!(
        text.contains("is not below retry_after 2s of queue leases: leases cover it"),
        "the start-up note"
    );
    assert!(!text.contains(PHONE));
}

/// `kill -9` mid-run: no lease extends the jobs any more, they stay reserved, and the next worker
/// runs them (attempt 2) once their reservation has run out, not before.
#[test]
fn kill_9_mid_run_brings_the_jobs_back_after_retry_after() {
    let w = redis_world(2);
    let sent = w.dispatch("analytics_tracking", DATA, "leases", 3);
    let args = ["--queue=leases", "--concurrency=3", "--tries=3"];
    let mut ours = w.worker(&args, &slow(20_000));
    assert!(
        w.wait_until(Duration::from_secs(60), || reserved(&w, "leases").len()
            == 3)
    );
    let popped_until = reserved(&w, "leases")
        .iter()
        .map(|(_, s)| *s)
        .fold(0.0, f64::max);
    assert!(
        w.wait_until(Duration::from_secs(30), || {
            let held = reserved(&w, "leases");
            held.len() == 3 && held.iter().all(|(_, s)| *s > popped_until)
        }),
        "the leases were extended; log:\n{}",
        ours.log_text()
    );
    ours.signal("KILL");
    let _ = ours.wait(Duration::from_secs(10));
    let at_kill = reserved(&w, "leases");
    assert_eq!(at_kill.len(), 3, "still reserved: nothing lost");
    assert!(ours.outcomes("done").is_empty());

    let again = w.worker(&args, LOG_ALL);
    again.wait_for(Duration::from_secs(60), "three done", |logs| {
        logs.iter().filter(|l| l["outcome"] == "done").count() == 3
    });
    assert_eq!(sorted(again.uuids("done")), sorted(sent));
    for line in again.outcomes("done") {
        assert_eq!(line["attempt"], 2, "{line}");
        let uuid = line["uuid"].as_str().expect("uuid");
        let (_, expired_at) = at_kill
            .iter()
            .find(|(m, _)| uuid_of(m) == uuid)
            .expect("reserved at the kill");
        assert!(
            log_time(&line) >= *expired_at,
            "{uuid} ran again only after its reservation ran out at {expired_at}"
        );
    }
    assert!(w.failed().is_empty());
}

/// The `jobs` table: three 5-second jobs with retry_after 2 while PHP's `queue:work database` pops the
/// same table (taking rows whose `reserved_at <= now - retry_after`): the leases keep moving
/// `reserved_at`, and each job runs once, here.
fn database_lease_keeps_the_row(kind: DbKind) {
    let w = db_world(kind, 2);
    let sent = w.dispatch("analytics_tracking", DATA, "default", 3);
    // One runtime for the test: a pool lives on the runtime that opened it.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let db = rt.block_on(app_db(&w));
    let ours = w.worker(
        &[
            "--connection=database",
            "--concurrency=3",
            "--tries=1",
            "--timeout=30",
        ],
        &slow(5000),
    );
    let reserved_ats = || -> Vec<i64> {
        rt.block_on(rows(&db))
            .into_iter()
            .filter_map(|(_, _, r)| r)
            .collect()
    };
    assert!(
        w.wait_until(Duration::from_secs(60), || reserved_ats().len() == 3),
        "defer-worker reserved the three; log:\n{}",
        ours.log_text()
    );
    let popped_at = reserved_ats().into_iter().max().expect("a row");
    let _php = php_worker(&w, "database", "default,canary");

    wait_past(&w, (popped_at + 2 + 1) as f64);
    let canary = w.dispatch("analytics_tracking", r#"{"order_id":2}"#, "canary", 1);
    assert!(
        w.wait_until(Duration::from_secs(60), || w.list("done").len() == 1),
        "PHP ran the canary"
    );
    let held = reserved_ats();
    assert_eq!(held.len() + ours.uuids("done").len(), 3);
    assert!(
        held.iter().all(|r| *r > popped_at),
        "{held:?} after {popped_at}"
    );

    ours.wait_for(Duration::from_secs(60), "three done", |logs| {
        logs.iter().filter(|l| l["outcome"] == "done").count() == 3
    });
    assert_eq!(sorted(ours.uuids("done")), sorted(sent));
    assert_eq!(w.list("done"), canary, "PHP ran only the canary");
    assert!(w.failed().is_empty(), "{:?}", w.failed());
    assert!(rt.block_on(rows(&db)).is_empty(), "every row deleted");
}

#[test]
fn the_database_driver_keeps_a_long_jobs_row_reserved_on_sqlite() {
    database_lease_keeps_the_row(DbKind::Sqlite);
}

#[test]
fn the_database_driver_keeps_a_long_jobs_row_reserved_on_mariadb() {
    database_lease_keeps_the_row(DbKind::MySql);
}

/// The lines a lost lease leaves: the warning (in the job's span: uuid, queue) and the outcome.
fn assert_lease_lost_reported(ours: &crate::support::WorkerProc, uuid: &str, queue: &str) {
    let logs = ours.logs();
    let warning = logs
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("lease lost"))
        })
        .unwrap_or_else(|| panic!("a lease-lost warning; log:\n{}", ours.log_text()));
    assert_eq!(warning["level"], "WARN");
    assert_eq!(warning["span"]["uuid"], uuid);
    assert_eq!(warning["queue"], queue);
    let lost = ours.outcomes("lease_lost");
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0]["uuid"], uuid);
    for other in ["done", "released", "failed", "handed_off", "left_reserved"] {
        assert!(ours.outcomes(other).is_empty(), "no {other}");
    }
    assert!(
        !ours.log_text().contains(PHONE),
        "no phone number in the logs"
    );
}

/// defer-worker frozen (SIGSTOP) past retry_after while Laravel's own `RedisQueue::pop` takes the job
/// back: when it wakes, its next extension finds the reservation gone, says so, counts it, and
/// leaves PHP's reservation alone (not deleted, not released, nothing in failed_jobs).
#[test]
fn a_lost_lease_on_redis_is_reported_and_the_other_workers_reservation_is_kept() {
    let w = redis_world(2);
    let sent = w.dispatch("whatsapp_notification", DATA, "leases", 1);
    let port = free_port();
    let mut ours = w.worker(
        &[
            "--queue=leases",
            "--concurrency=1",
            "--tries=3",
            &format!("--http=127.0.0.1:{port}"),
        ],
        &slow(15_000),
    );
    assert!(
        w.wait_until(Duration::from_secs(60), || reserved(&w, "leases").len()
            == 1)
    );
    ours.signal("STOP");
    let theirs = poll(30, || php_reserve(&w, "leases"));
    ours.signal("CONT");
    let theirs = theirs.expect("PHP reserved it once ours ran out");
    assert_eq!(theirs["attempts"], 2);

    ours.wait_for(Duration::from_secs(60), "the lease_lost outcome", |logs| {
        logs.iter().any(|l| l["outcome"] == "lease_lost")
    });
    assert_lease_lost_reported(&ours, &sent[0], "leases");
    let held = reserved(&w, "leases");
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].0, theirs["reserved"].as_str().expect("member"));
    assert!(held[0].1 > now_f64() + 60.0, "PHP's 90-second reservation");
    assert_eq!(w.queue_len("leases"), 1, "nothing ready or delayed");
    assert!(w.failed().is_empty());
    let metrics = scrape(port);
    assert!(
        metrics.contains("\ndefer_worker_lease_lost_total 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains(
        "defer_worker_jobs_total{queue=\"leases\",action=\"whatsapp_notification\",outcome=\"lease_lost\"} 1\n"
    ));
    ours.signal("TERM");
    assert!(ours.wait(Duration::from_secs(30)).success());
}

/// The same on the `jobs` table, where the other worker takes back the very same row (same id, its
/// own `reserved_at`): defer-worker's delete, guarded by its own `reserved_at`, would not match it,
/// and is not even tried.
#[test]
fn a_lost_lease_on_the_database_is_reported_and_the_other_workers_row_is_kept() {
    let w = db_world(DbKind::Sqlite, 2);
    let sent = w.dispatch("whatsapp_notification", DATA, "default", 1);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let db = rt.block_on(app_db(&w));
    let mut ours = w.worker(
        // One job only: the other worker's reservation (retry_after 2, never extended) would soon
        // run out too, and this worker would take the row back in turn.
        &[
            "--connection=database",
            "--concurrency=1",
            "--tries=3",
            "--max-jobs=1",
        ],
        &slow(15_000),
    );
    assert!(w.wait_until(Duration::from_secs(60), || rt
        .block_on(rows(&db))
        .iter()
        .any(|(_, _, r)| r.is_some())));
    ours.signal("STOP");
    // Another worker: the same pop as Laravel's DatabaseQueue, with retry_after 2.
    let other = rt
        .block_on(DatabaseQueue::new(db.clone(), "jobs", 2))
        .expect("queue");
    let theirs = poll(30, || {
        rt.block_on(other.pop("default", 2, 1)).expect("pop").pop()
    });
    ours.signal("CONT");
    let theirs = theirs.expect("taken back once ours ran out");
    assert_eq!(theirs.attempts, 2);

    assert!(ours.wait(Duration::from_secs(60)).success(), "--max-jobs=1");
    assert_lease_lost_reported(&ours, &sent[0], "default");
    assert_eq!(
        rt.block_on(rows(&db)),
        vec![(theirs.id, 2, Some(theirs.reserved_at))],
        "the other worker's reservation, untouched"
    );
    assert!(w.failed().is_empty());
}
