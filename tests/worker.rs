//! `defer-worker work` end to end: real Laravel 8.83 dispatching and working (Debian's packages through
//! fixtures/laravel), real Redis, failed_jobs on SQLite, MariaDB and PostgreSQL.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::Value as Json;

use crate::support::{fixture, log_time, now_f64, DbKind, World, LOG_KIND_LINES, LOG_UNBUFFERED};

const ALL_LOG: &str = "[actions.\"*\"]\nkind = \"log\"\n";
const QUEUES: &str = "--queue=whatsapp,analytics,emails,cache,default";

#[test]
fn php_dispatches_defer_worker_runs_every_job_once_and_leaves_no_key() {
    let w = World::new(DbKind::Sqlite);
    let mut sent: Vec<String> = Vec::new();
    sent.extend(w.dispatch(
        "whatsapp_notification",
        r#"{"order_id":42}"#,
        "whatsapp",
        40,
    ));
    sent.extend(w.dispatch("email_notification", r#"{"order_id":42}"#, "emails", 30));
    sent.extend(w.dispatch("analytics_tracking", r#"{"order_id":42}"#, "analytics", 30));
    sent.extend(w.dispatch("cache_warming", r#"{"vendor_id":7}"#, "default", 20));
    let mut worker = w.worker(
        &[QUEUES, "--tries=3", "--stop-when-empty", "--concurrency=8"],
        ALL_LOG,
    );
    assert!(
        worker.wait(Duration::from_secs(60)).success(),
        "{}",
        worker.log_text()
    );
    let done = worker.uuids("done");
    let unique: HashSet<&String> = done.iter().collect();
    assert_eq!(done.len(), unique.len(), "a job ran twice");
    assert_eq!(
        unique,
        sent.iter().collect::<HashSet<_>>(),
        "every dispatched job is done once"
    );
    // Every action is logged by the `log` kind with its name.
    let actions: HashSet<String> = worker
        .outcomes("done")
        .iter()
        .filter_map(|l| l["action"].as_str().map(String::from))
        .collect();
    assert_eq!(actions.len(), 4, "{actions:?}");
    w.assert_no_keys("no key left behind (lists, notify tokens, reserved)");
}

#[test]
fn an_empty_redis_prefix_means_no_prefix_as_in_laravel() {
    // Laravel's `env('REDIS_PREFIX', default)` is the empty string for `REDIS_PREFIX=` and for
    // `REDIS_PREFIX=(empty)`, not the default: PHP pushes to `queues:<name>`, and the worker must take
    // them from there, not from `restrosaas_database_queues:<name>`.
    let mut w = World::new(DbKind::Sqlite);
    // Its keys are not under the world's prefix: a queue name of this test's own, deleted at the end.
    let queue = format!("{}unprefixed", w.prefix);
    let key = format!("queues:{queue}");
    for value in ["", "(empty)"] {
        w.extra = vec![("REDIS_PREFIX".into(), value.into())];
        let sent = w.dispatch("analytics_tracking", r#"{"order_id":1}"#, &queue, 3);
        assert_eq!(
            w.lrange(&key).len(),
            3,
            "PHP pushed to {key} with REDIS_PREFIX={value:?}"
        );
        let mut worker = w.worker(
            &[
                &format!("--queue={queue}"),
                "--tries=1",
                "--stop-when-empty",
                "--no-fleet",
            ],
            ALL_LOG,
        );
        let status = worker.wait(Duration::from_secs(30));
        let done: HashSet<String> = worker.uuids("done").into_iter().collect();
        let mut c = w.redis();
        let left: Vec<String> = redis::cmd("KEYS")
            .arg(format!("*{queue}*"))
            .query(&mut c)
            .unwrap();
        if !left.is_empty() {
            let _: () = redis::cmd("DEL").arg(&left).query(&mut c).unwrap();
        }
        assert!(status.success(), "{}", worker.log_text());
        assert_eq!(done, sent.into_iter().collect(), "REDIS_PREFIX={value:?}");
        assert!(left.is_empty(), "REDIS_PREFIX={value:?}: {left:?} left");
    }
}

#[test]
fn whatsapp_queue_is_taken_before_default_whenever_a_slot_frees_up() {
    let w = World::new(DbKind::Sqlite);
    let low = w.dispatch("cache_warming", r#"{"vendor_id":1}"#, "default", 20);
    let high = w.dispatch("whatsapp_notification", r#"{"order_id":1}"#, "whatsapp", 20);
    let mut worker = w.worker(&[QUEUES, "--stop-when-empty", "--concurrency=1"], ALL_LOG);
    assert!(worker.wait(Duration::from_secs(60)).success());
    let order = worker.uuids("done");
    assert_eq!(order.len(), 40);
    assert_eq!(
        order[..20].iter().collect::<HashSet<_>>(),
        high.iter().collect::<HashSet<_>>()
    );
    assert_eq!(order[20..].to_vec(), low, "FIFO within a queue");
}

/// The same failing job run by PHP's worker and by defer-worker gives the same failed_jobs row, Laravel's
/// `queue:failed` lists ours, and `queue:retry` puts it back for defer-worker to run.
fn failing_job_matches_php(db: DbKind) {
    let w = World::new(db);
    let data = r#"{"order_id":7,"harness_throw":"boom"}"#;
    let config_fail =
        "[actions.whatsapp_notification]\nkind = \"fail\"\npermanent = false\nmessage = \"boom\"\n";

    // defer-worker: 3 tries, backoff 1 s.
    let ours = w
        .dispatch("whatsapp_notification", data, "whatsapp", 1)
        .remove(0);
    let mut worker = w.worker(
        &[
            "--queue=whatsapp",
            "--tries=3",
            "--backoff=1",
            "--max-jobs=3",
        ],
        config_fail,
    );
    assert!(
        worker.wait(Duration::from_secs(30)).success(),
        "{}",
        worker.log_text()
    );
    let released = worker.outcomes("released");
    assert_eq!(
        released.len(),
        2,
        "released after attempts 1 and 2:\n{}",
        worker.log_text()
    );
    let failed = worker.outcomes("failed");
    assert_eq!(failed.len(), 1);
    let (t1, t2, t3) = (
        log_time(&released[0]),
        log_time(&released[1]),
        log_time(&failed[0]),
    );
    // Laravel's availableAt is whole seconds (time() + backoff): a job released at 12.998 with a backoff
    // of 1 is due at 13, so the next attempt starts at the first whole second after release + 1. The
    // `released` line is stamped a little after the release itself (a release at 12.9995 can be logged
    // at 13.0003 and rightly run again at 13.006), so the release time is taken as up to 50 ms earlier.
    let due = |released: f64| (released - 0.05).floor() + 1.0;
    assert!(
        t2 >= due(t1) && t3 >= due(t2),
        "backoff of 1 s between attempts: {t1} {t2} {t3}"
    );
    assert!(
        t3 - t1 < 5.0,
        "released jobs come back soon after their backoff: {t1} {t3}"
    );
    assert_eq!(failed[0]["attempt"], 3);

    // PHP's worker on the same job shape.
    let theirs = w
        .dispatch("whatsapp_notification", data, "emails", 1)
        .remove(0);
    w.php(&[
        "queue:work",
        "redis",
        "--queue=emails",
        "--tries=3",
        "--backoff=1",
        "--max-jobs=3",
        "--sleep=0",
    ]);

    let rows = w.failed();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let row = |uuid: &str| {
        rows.iter()
            .find(|r| r.uuid == uuid)
            .unwrap_or_else(|| panic!("no row for {uuid}"))
            .clone()
    };
    let (o, t) = (row(&ours), row(&theirs));
    assert_eq!(
        (o.connection.as_str(), t.connection.as_str()),
        ("redis", "redis")
    );
    assert_eq!((o.queue.as_str(), t.queue.as_str()), ("whatsapp", "emails"));
    // The payload is the ORIGINAL string of the last attempt (cjson form, attempts 2), the same for both.
    let strip = |p: &str| {
        let mut v: Json = serde_json::from_str(p).unwrap();
        let m = v.as_object_mut().unwrap();
        m.remove("uuid");
        m.remove("id");
        v
    };
    assert_eq!(strip(&o.payload), strip(&t.payload));
    assert_eq!(strip(&o.payload)["attempts"], 2);
    // Exception text: PHP's `Class: message in file:line` + `Stack trace:` + `#N {main}` layout.
    for (e, class) in [
        (&o.exception, "DeferWorker\\ActionFailedException"),
        (&t.exception, "RuntimeException"),
    ] {
        let lines: Vec<&str> = e.lines().collect();
        assert!(lines[0].starts_with(&format!("{class}: boom in ")), "{e}");
        assert!(
            lines[0].rsplit(':').next().unwrap().parse::<u32>().is_ok(),
            "{e}"
        );
        assert_eq!(lines[1], "Stack trace:", "{e}");
        assert!(lines.last().unwrap().ends_with("{main}"), "{e}");
    }
    for r in [&o, &t] {
        let at = chrono::NaiveDateTime::parse_from_str(&r.failed_at, "%Y-%m-%d %H:%M:%S")
            .expect("Y-m-d H:i:s");
        let age = now_f64() - at.and_utc().timestamp() as f64;
        assert!(
            (-2.0..120.0).contains(&age),
            "failed_at {} is in UTC and recent",
            r.failed_at
        );
    }

    // Laravel's own tools on our row.
    let listed = w.php(&["queue:failed"]);
    assert!(
        listed.contains(&ours) && listed.contains("App\\Jobs\\DeferredJob"),
        "{listed}"
    );
    w.php(&["queue:retry", &ours]);
    let back = w.lrange(&w.key("whatsapp"));
    assert_eq!(back.len(), 1);
    let back: Json = serde_json::from_slice(&back[0]).unwrap();
    assert_eq!(
        (back["uuid"].as_str(), back["attempts"].as_i64()),
        (Some(ours.as_str()), Some(0))
    );
    let mut again = w.worker(&["--queue=whatsapp", "--stop-when-empty"], ALL_LOG);
    assert!(again.wait(Duration::from_secs(30)).success());
    assert_eq!(
        again.uuids("done"),
        vec![ours.clone()],
        "the retried row runs on defer-worker"
    );
    assert_eq!(w.failed().len(), 1, "queue:retry forgot our row");
}

#[test]
fn failing_job_matches_php_on_sqlite() {
    failing_job_matches_php(DbKind::Sqlite);
}

#[test]
fn failing_job_matches_php_on_mariadb() {
    failing_job_matches_php(DbKind::MySql);
}

#[test]
fn failing_job_matches_php_on_postgres() {
    failing_job_matches_php(DbKind::Postgres);
}

#[test]
fn mixed_fleet_runs_each_job_exactly_once_while_both_live() {
    let w = World::new(DbKind::Sqlite);
    let sent = w.dispatch("analytics_tracking", r#"{"order_id":1}"#, "default", 10_000);
    let mut php = w
        .php_command(
            &[
                "queue:work",
                "redis",
                "--queue=default",
                "--stop-when-empty",
                "--sleep=0",
            ],
            &[("HARNESS_DONE_KEY", "done")],
        )
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("php worker");
    let mut ours = w.worker(
        &["--queue=default", "--stop-when-empty", "--concurrency=16"],
        ALL_LOG,
    );
    assert!(ours.wait(Duration::from_secs(120)).success());
    assert!(php.wait().expect("php worker").success());
    let by_php: Vec<String> = w
        .lrange(&format!("{}done", w.prefix))
        .into_iter()
        .map(|b| String::from_utf8(b).unwrap())
        .collect();
    let by_us = ours.uuids("done");
    let mut count: HashMap<&String, u32> = HashMap::new();
    for u in by_php.iter().chain(&by_us) {
        *count.entry(u).or_default() += 1;
    }
    let twice: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "{} jobs ran twice, e.g. {:?}",
        twice.len(),
        twice.first()
    );
    assert_eq!(count.len(), sent.len(), "every job ran");
    assert!(!by_us.is_empty(), "defer-worker took part");
    eprintln!(
        "mixed fleet: PHP ran {}, defer-worker ran {}",
        by_php.len(),
        by_us.len()
    );
    assert_eq!(w.zrange(&w.key("default:reserved")).len(), 0);
}

#[test]
fn kill_9_of_defer_worker_in_a_mixed_fleet_loses_nothing() {
    let mut w = World::new(DbKind::Sqlite);
    let (var, filter) = LOG_KIND_LINES;
    w.extra.push((var.into(), filter.into()));
    let (var, bytes) = LOG_UNBUFFERED;
    w.extra.push((var.into(), bytes.into()));
    let sent = w.dispatch("analytics_tracking", r#"{"order_id":1}"#, "default", 5_000);
    // PHP's worker works the same queue throughout, with retry_after 2 s on its connection too; it runs
    // until the queue is empty (what the killed worker had reserved included), however slow the machine.
    let mut php = w
        .php_command(
            &[
                "queue:work",
                "redis",
                "--queue=default",
                "--tries=3",
                "--sleep=1",
            ],
            &[
                ("HARNESS_DONE_KEY", "done"),
                ("REDIS_QUEUE_RETRY_AFTER", "2"),
            ],
        )
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("php worker");
    let config = "[actions.\"*\"]\nkind = \"log\"\nsleep_ms = 2\n";
    // --tries=3: a job reserved by the killed worker comes back as attempt 2 (with Laravel's default
    // --tries=1 it would go to failed_jobs with MaxAttemptsExceededException, as in PHP).
    let mut ours = w.worker(
        &[
            "--queue=default",
            "--tries=3",
            "--concurrency=16",
            "--retry-after=2",
        ],
        config,
    );
    ours.wait_for(
        Duration::from_secs(60),
        "1000 jobs done by defer-worker",
        |logs| logs.iter().filter(|l| l["outcome"] == "done").count() >= 1000,
    );
    ours.signal("KILL");
    let _ = ours.wait(Duration::from_secs(5));
    assert!(w.queue_len("default") > 0, "killed mid-run, with jobs left");
    let left = w.wait_until_empty("default", Duration::from_secs(120));
    // Nothing is reserved any more, so PHP holds no job: stopping it cannot lose one.
    let _ = php.kill();
    let _ = php.wait();
    assert_eq!(
        left, 0,
        "PHP drained the queue, the killed worker's reservations included"
    );
    // The ledger is each side's own record of running the job: PHP's done list, and the `log` kind's
    // line for defer-worker (a kill between the action and the outcome line still counts as run).
    let by_php: Vec<String> = w
        .lrange(&format!("{}done", w.prefix))
        .into_iter()
        .map(|b| String::from_utf8(b).unwrap())
        .collect();
    let by_us: Vec<String> = ours
        .logs()
        .iter()
        .filter(|l| l["message"] == "deferred job logged (kind = log)")
        .filter_map(|l| l["span"]["uuid"].as_str().map(String::from))
        .collect();
    let all: HashSet<&String> = by_php.iter().chain(&by_us).collect();
    let missing: Vec<_> = sent.iter().filter(|u| !all.contains(u)).collect();
    assert!(
        missing.is_empty(),
        "{} jobs lost, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    let duplicates = by_php.len() + by_us.len() - all.len();
    assert!(
        duplicates <= 16,
        "only jobs in flight at the kill may run twice, got {duplicates}"
    );
    eprintln!(
        "kill -9: defer-worker ran {}, PHP ran {}, {duplicates} ran twice (at-least-once)",
        by_us.len(),
        by_php.len()
    );
    assert_eq!(w.zrange(&w.key("default:reserved")).len(), 0);
    assert!(w.failed().is_empty());
}

#[test]
fn delayed_jobs_run_on_time() {
    let w = World::new(DbKind::Sqlite);
    let worker = w.worker(&["--queue=default"], ALL_LOG);
    worker.wait_for(Duration::from_secs(10), "worker start", |l| {
        l.iter()
            .any(|l| l["fields"]["message"] == "worker started" || l["message"] == "worker started")
    });
    // defer(..., delay 2): the app's later() bug sends it to `default` whatever the queue.
    let out = w.php(&[
        "harness:dispatch",
        "cache_warming",
        "--data={\"vendor_id\":7}",
        "--queue=cache",
        "--delay=2",
    ]);
    let uuid = out.trim().to_owned();
    let member = w
        .zrange(&w.key("default:delayed"))
        .into_iter()
        .next()
        .expect("the job is delayed");
    let score: f64 = redis::cmd("ZSCORE")
        .arg(w.key("default:delayed"))
        .arg(member)
        .query(&mut w.redis())
        .expect("score");
    worker.wait_for(Duration::from_secs(10), "the delayed job", |l| {
        l.iter()
            .any(|l| l["uuid"] == uuid.as_str() && l["outcome"] == "done")
    });
    let done = worker
        .outcomes("done")
        .into_iter()
        .find(|l| l["uuid"] == uuid.as_str())
        .unwrap();
    let late = log_time(&done) - score;
    // Laravel's due times are whole seconds and Redis compares them with the clock's seconds, so a
    // job is due within the second after its score; the rest is wake-up and run time (a poller with
    // queue:work's --sleep=3 would be up to 3 s late).
    assert!(
        (0.0..=1.5).contains(&late),
        "ran {late:.3}s after it was due (1.5 s allowed)"
    );
}

#[test]
fn a_reserved_job_whose_worker_died_comes_back_after_retry_after() {
    let w = World::new(DbKind::Sqlite);
    let uuid = w
        .dispatch("email_notification", r#"{"order_id":3}"#, "emails", 1)
        .remove(0);
    // A PHP worker that "dies" holding the job: reserve it with Laravel's own pop and never finish.
    let mut c = w.redis();
    let reserved_until = now_f64() as i64 + 2;
    let popped: Vec<Option<Vec<u8>>> =
        redis::Script::new(include_str!("../src/laravel/lua/pop.lua"))
            .key(w.key("emails"))
            .key(w.key("emails:reserved"))
            .key(w.key("emails:notify"))
            .arg(reserved_until)
            .arg(1)
            .invoke(&mut c)
            .expect("reserve");
    assert!(!popped.is_empty());
    let mut worker = w.worker(&["--queue=emails", "--tries=3", "--retry-after=2"], ALL_LOG);
    worker.wait_for(Duration::from_secs(10), "the orphaned job", |l| {
        l.iter().any(|l| l["outcome"] == "done")
    });
    let done = &worker.outcomes("done")[0];
    assert_eq!(done["uuid"], uuid.as_str());
    assert_eq!(done["attempt"], 2, "the dead worker's attempt counts");
    assert!(
        log_time(done) >= reserved_until as f64,
        "not before the reservation expired"
    );
    worker.signal("TERM");
    assert!(worker.wait(Duration::from_secs(10)).success());
}

#[test]
fn a_job_beyond_its_tries_fails_with_max_attempts_exceeded() {
    let w = World::new(DbKind::Sqlite);
    let uuid = w
        .dispatch("email_notification", r#"{"order_id":3}"#, "emails", 1)
        .remove(0);
    // Make the stored attempts 1, as after a worker died mid-job, then run with --tries=1.
    let raw = w.lrange(&w.key("emails")).remove(0);
    let mut c = w.redis();
    let _: () = redis::cmd("DEL")
        .arg(w.key("emails"))
        .query(&mut c)
        .unwrap();
    let bumped = String::from_utf8(raw)
        .unwrap()
        .replace("\"attempts\":0", "\"attempts\":1");
    w.rpush("emails", bumped.as_bytes());
    let mut worker = w.worker(&["--queue=emails", "--stop-when-empty"], ALL_LOG);
    assert!(worker.wait(Duration::from_secs(20)).success());
    let rows = w.failed();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].uuid, uuid);
    assert!(
        rows[0].exception.starts_with(
            "Illuminate\\Queue\\MaxAttemptsExceededException: App\\Jobs\\DeferredJob has been attempted too many times. in "
        ),
        "{}",
        rows[0].exception
    );
    assert_eq!(
        rows[0].payload, bumped,
        "the original payload string, byte for byte"
    );
}

#[test]
fn malformed_payloads_end_in_failed_jobs_and_the_worker_goes_on() {
    let w = World::new(DbKind::Sqlite);
    let good = fixture("whatsapp.json");
    let bad_php = String::from_utf8(good.clone()).unwrap().replace(
        "s:21:\\\"whatsapp_notification",
        "s:99:\\\"whatsapp_notification",
    );
    w.rpush("whatsapp", b"this is not json");
    w.rpush("whatsapp", br#"{"uuid":"no-attempts","displayName":"X"}"#);
    w.rpush("whatsapp", bad_php.as_bytes());
    w.rpush("whatsapp", &fixture("encrypted_aes_256_cbc.json")); // APP_KEY not set for the worker
    w.rpush("whatsapp", &good);
    let mut worker = w.worker(&["--queue=whatsapp", "--stop-when-empty"], ALL_LOG);
    assert!(worker.wait(Duration::from_secs(20)).success());
    assert_eq!(worker.outcomes("done").len(), 1, "the good job still runs");
    let rows = w.failed();
    assert_eq!(rows.len(), 4, "{rows:#?}");
    let mut reasons: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.payload.clone(), r.exception.clone()))
        .collect();
    reasons.sort();
    let find = |needle: &str| {
        reasons
            .iter()
            .find(|(_, e)| e.contains(needle))
            .unwrap_or_else(|| panic!("no exception with {needle:?}: {reasons:#?}"))
    };
    assert_eq!(
        find("not valid JSON").0,
        "this is not json",
        "the payload is kept as it was"
    );
    find("attempts");
    find("not valid PHP serialize() output");
    find("APP_KEY");
    for (_, e) in &reasons {
        assert!(
            e.starts_with("DeferWorker\\InvalidPayloadException: "),
            "{e}"
        );
    }
    assert_eq!(
        w.zrange(&w.key("whatsapp:reserved")).len(),
        0,
        "nothing left reserved"
    );
}

#[test]
fn foreign_jobs_are_handed_to_php_unchanged_and_php_runs_them() {
    let w = World::new(DbKind::Sqlite);
    w.php(&["harness:dispatch-foreign", "mailable", "--queue=emails"]);
    w.dispatch("email_notification", r#"{"order_id":5}"#, "emails", 1);
    let original = w.lrange(&w.key("emails")).remove(0);
    let config = "[actions.email_notification]\nkind = \"forward\"\n";
    let mut worker = w.worker(
        &["--queue=emails", "--stop-when-empty", "--handoff-queue=php"],
        config,
    );
    assert!(worker.wait(Duration::from_secs(20)).success());
    assert_eq!(
        worker.outcomes("handed_off").len(),
        2,
        "{}",
        worker.log_text()
    );
    let handed = w.lrange(&w.key("php"));
    assert_eq!(handed.len(), 2);
    // Both were popped together and handed off concurrently: either may land first.
    assert!(
        handed.contains(&original),
        "pushed byte for byte, attempts not consumed"
    );
    w.php_with(
        &["queue:work", "redis", "--queue=php", "--stop-when-empty"],
        &[("HARNESS_DONE_KEY", "done")],
    );
    assert_eq!(
        w.lrange(&format!("{}done", w.prefix)).len(),
        1,
        "PHP ran the forwarded DeferredJob"
    );
    let rows = w.failed();
    assert!(rows.is_empty(), "PHP ran the mailable too: {rows:?}");
}

#[test]
fn a_job_that_times_out_is_released_then_failed_with_timeout_exceeded() {
    let w = World::new(DbKind::Sqlite);
    let uuid = w
        .dispatch("analytics_tracking", r#"{"order_id":9}"#, "analytics", 1)
        .remove(0);
    let config = "[actions.analytics_tracking]\nkind = \"log\"\nsleep_ms = 5000\n";
    let mut worker = w.worker(
        &[
            "--queue=analytics",
            "--timeout=1",
            "--tries=2",
            "--max-jobs=2",
        ],
        config,
    );
    assert!(worker.wait(Duration::from_secs(20)).success());
    assert_eq!(
        worker.outcomes("released").len(),
        1,
        "{}",
        worker.log_text()
    );
    let rows = w.failed();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].uuid, uuid);
    assert!(
        rows[0].exception.starts_with("Illuminate\\Queue\\TimeoutExceededException: App\\Jobs\\DeferredJob has timed out. in "),
        "{}",
        rows[0].exception
    );
    w.assert_no_keys("released and failed on purpose, not left in :reserved");
}

#[test]
fn sigterm_lets_running_jobs_finish_and_exits_0() {
    let w = World::new(DbKind::Sqlite);
    let sent = w.dispatch("analytics_tracking", r#"{"order_id":9}"#, "analytics", 4);
    let config = "[actions.\"*\"]\nkind = \"log\"\nsleep_ms = 1500\n";
    let mut worker = w.worker(&["--queue=analytics", "--concurrency=4"], config);
    std::thread::sleep(Duration::from_millis(700));
    worker.signal("TERM");
    let status = worker.wait(Duration::from_secs(10));
    assert!(status.success(), "exit 0 after a drain: {status}");
    let done: HashSet<String> = worker.uuids("done").into_iter().collect();
    assert_eq!(
        done,
        sent.into_iter().collect(),
        "the running jobs finished"
    );
    w.assert_no_keys("nothing left in Redis");
}

#[test]
fn an_idle_worker_picks_up_a_new_job_within_milliseconds() {
    let w = World::new(DbKind::Sqlite);
    let mut worker = w.worker(&["--queue=whatsapp", "--sleep=3"], ALL_LOG);
    std::thread::sleep(Duration::from_millis(800));
    let pushed_at = now_f64();
    w.dispatch("whatsapp_notification", r#"{"order_id":1}"#, "whatsapp", 1);
    worker.wait_for(Duration::from_secs(5), "the job", |l| {
        l.iter().any(|l| l["outcome"] == "done")
    });
    let lag = log_time(&worker.outcomes("done")[0]) - pushed_at;
    // The PHP dispatch itself takes ~100 ms to boot; a polling worker with --sleep=3 would take up to 3 s.
    assert!(lag < 1.0, "picked up {lag:.3}s after the push");
    worker.signal("INT");
    assert!(worker.wait(Duration::from_secs(5)).success());
}

#[test]
fn a_failing_job_waits_in_redis_while_failed_jobs_is_unusable_then_is_written_once() {
    let w = World::new(DbKind::Sqlite);
    let config = "[actions.\"*\"]\nkind = \"fail\"\nmessage = \"nope\"\n";
    // Started with the table there (a worker refuses to start without it, tests/startup_checks.rs).
    let mut worker = w.worker(&["--queue=whatsapp", "--retry-after=1"], config);
    worker.wait_for(Duration::from_secs(10), "the worker to start", |l| {
        l.iter().any(|l| l["message"] == "worker started")
    });
    // The app's database loses its failed_jobs table: every insert fails until the migration runs.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", w.db_name))
            .await
            .unwrap();
        sqlx::query("DROP TABLE failed_jobs")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
    let uuid = w
        .dispatch("whatsapp_notification", r#"{"order_id":1}"#, "whatsapp", 1)
        .remove(0);
    let insert_errors = |l: &[Json]| {
        l.iter()
            .filter(|l| {
                l["message"]
                    == "cannot write failed_jobs row; the job stays reserved until it is written"
            })
            .count()
    };
    worker.wait_for(Duration::from_secs(10), "the first failed insert", |l| {
        insert_errors(l) >= 1
    });
    let first_error = now_f64();
    // Well past retry_after the job is still ours: reserved, reservation extended, not back in the list.
    worker.wait_for(Duration::from_secs(15), "retries past retry_after", |l| {
        now_f64() - first_error > 2.5 && insert_errors(l) >= 3
    });
    assert_eq!(
        w.lrange(&w.key("whatsapp")).len(),
        0,
        "not migrated back to the list"
    );
    let reserved = w.zrange(&w.key("whatsapp:reserved"));
    assert_eq!(reserved.len(), 1, "still reserved");
    let score: f64 = redis::cmd("ZSCORE")
        .arg(w.key("whatsapp:reserved"))
        .arg(&reserved[0])
        .query(&mut w.redis())
        .unwrap();
    assert!(score > now_f64(), "reservation extended ahead of now");
    assert!(worker.outcomes("failed").is_empty());
    // The migration runs: the row is written once and the job leaves Redis.
    w.php(&["harness:schema"]);
    worker.wait_for(Duration::from_secs(30), "the job to be failed", |l| {
        l.iter().any(|l| l["outcome"] == "failed")
    });
    let rows = w.failed();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].uuid, uuid);
    assert!(rows[0]
        .exception
        .starts_with("DeferWorker\\ActionFailedException: nope in "));
    assert!(w.zrange(&w.key("whatsapp:reserved")).is_empty());
    worker.signal("TERM");
    assert!(worker.wait(Duration::from_secs(10)).success());
    assert_eq!(
        worker.outcomes("failed").len(),
        1,
        "failed once, not once per retry"
    );
}

#[test]
fn the_example_config_file_is_valid_and_maps_the_apps_actions() {
    let path = crate::support::repo().join("deploy/defer-worker.example.toml");
    let file = defer_worker::config::FileConfig::load(Some(&path))
        .expect("deploy/defer-worker.example.toml parses");
    let plan = defer_worker::actions::Plan::from_file(&file).expect("[actions] parses");
    use defer_worker::actions::ActionKind;
    assert!(matches!(
        plan.kind_of("whatsapp_notification"),
        ActionKind::Whatsapp(_)
    ));
    assert!(matches!(
        plan.kind_of("email_notification"),
        ActionKind::Email(_)
    ));
    assert!(matches!(
        plan.kind_of("cache_warming"),
        ActionKind::CacheWarming(_)
    ));
    assert_eq!(plan.kind_of("analytics_export"), &ActionKind::Warn);
    assert_eq!(plan.kind_of("something_new"), &ActionKind::Warn);
    assert_eq!(file.worker.tries, Some(3));
}

#[test]
fn the_worker_runs_on_the_threads_asked_for_one_by_default_and_refuses_zero() {
    let w = World::new(DbKind::Sqlite);
    let log = "[actions.\"*\"]\nkind = \"log\"\n";
    let in_file = format!("[worker]\nthreads = 2\n{log}");
    for (flag, config, threads) in [
        (None, log.to_owned(), 1),
        (None, in_file.clone(), 2),
        (Some("--threads=3"), in_file, 3),
    ] {
        let uuid = w
            .dispatch("analytics_tracking", r#"{"order_id":1}"#, "analytics", 1)
            .remove(0);
        let mut args = vec!["--queue=analytics", "--stop-when-empty"];
        args.extend(flag);
        let mut worker = w.worker(&args, &config);
        assert!(worker.wait(Duration::from_secs(20)).success());
        let logs = worker.logs();
        let started = logs
            .iter()
            .find(|l| l["message"] == "worker started")
            .unwrap_or_else(|| panic!("{}", worker.log_text()));
        assert_eq!(started["threads"], threads, "{flag:?}: {started}");
        assert_eq!(worker.uuids("done"), vec![uuid], "{flag:?}");
    }
    let mut worker = w.worker(
        &["--queue=analytics", "--stop-when-empty", "--threads=0"],
        log,
    );
    assert!(!worker.wait(Duration::from_secs(20)).success());
    assert!(
        worker
            .log_text()
            .contains("--threads (worker.threads) is 0: it must be between 1 and 1024"),
        "{}",
        worker.log_text()
    );
}
