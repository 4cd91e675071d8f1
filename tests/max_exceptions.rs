//! maxExceptions shared with PHP: a DeferredJob whose payload says `maxExceptions: 2`, with unlimited
//! tries, fails after its second exception whether the attempts ran on defer-worker, on PHP's
//! `queue:work` (real Laravel 8.83), or one on each, with the counter `job-exceptions:<uuid>` in the
//! app's cache store (redis, file, database) read back through PHP's own `Cache::get`.

use std::time::Duration;

use defer_worker::php::Value;

use crate::actions_cache::{php_get, world, Db1Keys};
use crate::ops_restart::php_cache_command;
use crate::support::{DbKind, WorkerProc, World};

/// The action fails with a retryable error on defer-worker; `harness_throw` makes PHP's DeferredJob throw.
const FLAKY: &str = "[actions.flaky]\nkind = \"fail\"\npermanent = false\n";

/// A world sharing the cache store `driver` with PHP, and one job with maxExceptions = 2 on `flaky`.
fn setup(driver: &str) -> (World, Db1Keys, String) {
    let (w, guard) = world(driver, DbKind::Sqlite);
    // Pushing needs no cache store (the harness's artisan has no database store).
    let out = w.php_with(
        &[
            "harness:dispatch",
            "flaky",
            r#"--data={"harness_throw":"boom"}"#,
            "--queue=flaky",
            "--max-exceptions=2",
        ],
        &[("CACHE_DRIVER", "array")],
    );
    (w, guard, out.trim().to_owned())
}

/// PHP's `queue:work` (with the cache store the world names) for one job (`once`) or until empty;
/// unlimited tries, no backoff.
fn php_work(w: &World, once: bool) {
    let stop = if once { "--once" } else { "--stop-when-empty" };
    let out = php_cache_command(
        w,
        &[
            "queue:work",
            "redis",
            "--queue=flaky",
            "--tries=0",
            "--sleep=0",
            stop,
        ],
    )
    .output()
    .expect("php queue:work");
    assert!(
        out.status.success(),
        "queue:work: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// defer-worker on `flaky` with unlimited tries, for `max_jobs` jobs (0: until empty).
fn dw_work(w: &World, max_jobs: u32) -> WorkerProc {
    let mut args = vec!["--queue=flaky".to_owned(), "--tries=0".to_owned()];
    args.push(match max_jobs {
        0 => "--stop-when-empty".to_owned(),
        n => format!("--max-jobs={n}"),
    });
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut worker = w.worker(&args, FLAKY);
    assert!(worker.wait(Duration::from_secs(30)).success());
    worker
}

fn counter(w: &World, uuid: &str) -> Value {
    php_get(w, &format!("job-exceptions:{uuid}"))
}

/// The job failed once, with the uuid it was dispatched with, and its counter is gone.
fn assert_failed_and_forgotten(w: &World, uuid: &str) {
    let rows = w.failed();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].uuid, uuid);
    assert_eq!(counter(w, uuid), Value::Null, "forgotten when it failed");
    w.assert_no_keys("nothing left in the queue");
}

fn one(value: &Value) -> bool {
    // RedisStore gives numbers back as strings; the file and database stores as integers.
    matches!(value, Value::Int(1)) || value == &Value::Str(b"1".to_vec())
}

#[test]
fn both_attempts_on_defer_worker() {
    let (w, _g, uuid) = setup("redis");
    let worker = dw_work(&w, 0);
    assert_eq!(
        worker.outcomes("released").len(),
        1,
        "{}",
        worker.log_text()
    );
    let failed = worker.outcomes("failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0]["attempt"], 2,
        "the second exception, tries unlimited"
    );
    assert_failed_and_forgotten(&w, &uuid);
}

#[test]
fn both_attempts_on_php() {
    let (w, _g, uuid) = setup("redis");
    php_work(&w, false);
    assert_failed_and_forgotten(&w, &uuid);
}

#[test]
fn php_first_then_defer_worker_on_each_store() {
    for driver in ["redis", "file", "database"] {
        let (w, _g, uuid) = setup(driver);
        php_work(&w, true);
        assert!(
            w.failed().is_empty(),
            "{driver}: one exception is not enough"
        );
        let count = counter(&w, &uuid);
        assert!(one(&count), "{driver}: PHP counted 1, got {count:?}");
        let worker = dw_work(&w, 0);
        let failed = worker.outcomes("failed");
        assert_eq!(failed.len(), 1, "{driver}: {}", worker.log_text());
        assert!(worker.outcomes("released").is_empty(), "{driver}");
        assert_failed_and_forgotten(&w, &uuid);
    }
}

#[test]
fn defer_worker_first_then_php_on_each_store() {
    for driver in ["redis", "file", "database"] {
        let (w, _g, uuid) = setup(driver);
        let worker = dw_work(&w, 1);
        assert_eq!(worker.outcomes("released").len(), 1, "{driver}");
        let count = counter(&w, &uuid);
        assert!(
            one(&count),
            "{driver}: PHP reads our count of 1, got {count:?}"
        );
        php_work(&w, true);
        assert_failed_and_forgotten(&w, &uuid);
    }
}
