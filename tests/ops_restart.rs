//! `defer-worker restart` and the cache stores that hold the restart signal, against real Laravel 8.83:
//! a running PHP `queue:work` exits after our `restart`, for the redis, file and database stores; PHP's
//! `queue:restart` value is read by [`CacheStore`], and ours is read by PHP's cache. The database store
//! comes from `tests/php/cache_artisan.php` (the harness plus Illuminate's DatabaseStore).

use std::collections::HashMap;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use defer_worker::laravel::cache_store::{CacheStore, RESTART_KEY};

use crate::support::{repo, DbKind, World};

/// A world whose PHP and defer-worker share the cache store `driver` (file store under the harness's
/// storage directory).
pub(crate) fn world(driver: &str, db: DbKind) -> (World, Db1Keys) {
    let mut w = World::new(db);
    let storage = w.dir.path().join("storage").display().to_string();
    w.extra.push(("CACHE_DRIVER".into(), driver.into()));
    w.extra.push(("APP_STORAGE_PATH".into(), storage));
    let guard = Db1Keys(w.prefix.clone());
    if driver == "database" {
        // Creates the `cache` table the way the app's migration does.
        assert_eq!(php_cache(&w, &["get", "anything"]).trim(), "null");
    }
    (w, guard)
}

/// Deletes the world's keys on Redis DB 1 (the `cache` connection), which `World` does not know about.
pub(crate) struct Db1Keys(String);

impl Drop for Db1Keys {
    fn drop(&mut self) {
        if let Ok(mut c) =
            redis::Client::open("redis://127.0.0.1:6379/1").and_then(|c| c.get_connection())
        {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}*", self.0))
                .query(&mut c)
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut c);
            }
        }
    }
}

pub(crate) fn php_cache_command(w: &World, args: &[&str]) -> Command {
    let mut cmd = Command::new("php");
    cmd.arg(repo().join("tests/php/cache_artisan.php"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(w.env());
    cmd
}

/// The harness with the database store added; panics with its output when it fails. Returns stdout.
pub(crate) fn php_cache(w: &World, args: &[&str]) -> String {
    let out = php_cache_command(w, args).output().expect("run php");
    assert!(
        out.status.success(),
        "php cache_artisan.php {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn dw(w: &World, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_defer-worker"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(w.env())
        .envs(extra.iter().copied())
        .output()
        .expect("run defer-worker");
    assert!(
        out.status.success(),
        "defer-worker {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `defer-worker restart`; returns the value it wrote and where it says it wrote it.
fn restart(w: &World, extra: &[(&str, &str)]) -> (i64, String) {
    let out = dw(w, &["restart"], extra);
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let rest = text
        .strip_prefix("Broadcasting queue restart signal: ")
        .unwrap_or_else(|| panic!("unexpected output {text:?}"));
    let (value, location) = rest.split_once(' ').expect("value and location");
    (value.parse().expect("a UNIX time"), location.to_owned())
}

/// Runs `f` on the world's [`CacheStore`], opened in the same runtime (its Redis connection lives there).
pub(crate) fn with_store<T, F: std::future::Future<Output = T>>(
    w: &World,
    f: impl FnOnce(CacheStore) -> F,
) -> T {
    let env: HashMap<String, String> = w.env().into_iter().collect();
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let store = CacheStore::from_lookup(&|k| env.get(k).cloned())
                .await
                .expect("cache store settings")
                .expect("a shared store");
            f(store).await
        })
}

fn read_signal(w: &World) -> Option<i64> {
    with_store(w, |s| async move {
        s.restart_signal().await.expect("read the restart signal")
    })
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A PHP worker killed when the test ends, whatever happens.
struct PhpWorker(Child);

impl PhpWorker {
    fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for PhpWorker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// PHP's worker runs a job (so it is in its loop and has read the restart signal), then our `restart`
/// makes it exit 0 within a second.
fn restart_stops_a_running_php_worker(driver: &str) {
    let (w, _db1) = world(driver, DbKind::Sqlite);
    let out = php_cache(
        &w,
        &[
            "harness:dispatch",
            "analytics_tracking",
            r#"--data={"order_id":1}"#,
            "--queue=rq",
        ],
    );
    let uuid = out.trim().to_owned();
    let mut worker = PhpWorker(
        php_cache_command(
            &w,
            &[
                "queue:work",
                "redis",
                "--queue=rq",
                "--sleep=0.1",
                "--tries=1",
            ],
        )
        .env("HARNESS_DONE_KEY", "done")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("php queue:work"),
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while w.lrange(&format!("{}done", w.prefix)) != vec![uuid.clone().into_bytes()] {
        assert!(
            worker.0.try_wait().expect("try_wait").is_none(),
            "PHP worker exited before running its job"
        );
        assert!(Instant::now() < deadline, "PHP worker never ran its job");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Still running: nothing has signalled a restart yet.
    assert!(worker.wait(Duration::from_millis(300)).is_none());

    let start = Instant::now();
    let (value, location) = restart(&w, &[]);
    assert!(location.contains(driver), "{location}");
    let status = worker.wait(Duration::from_secs(5)).unwrap_or_else(|| {
        panic!("PHP's queue:work did not exit after `defer-worker restart` ({driver} store)")
    });
    let elapsed = start.elapsed();
    assert!(status.success(), "exit status {status}");
    assert!(
        elapsed < Duration::from_secs(1),
        "{driver}: the worker took {elapsed:?} to stop"
    );
    assert_eq!(read_signal(&w), Some(value));
    assert!(
        w.zrange(&w.key("rq:reserved")).is_empty(),
        "no job left reserved"
    );
}

#[test]
fn restart_stops_php_worker_redis_store() {
    restart_stops_a_running_php_worker("redis");
}

#[test]
fn restart_stops_php_worker_file_store() {
    restart_stops_a_running_php_worker("file");
}

#[test]
fn restart_stops_php_worker_database_store() {
    restart_stops_a_running_php_worker("database");
}

/// PHP's `queue:restart` → our reader; ours (library and CLI) → PHP's `Cache::get`.
fn values_both_ways(driver: &str, db: DbKind) -> (World, Db1Keys) {
    let (w, db1) = world(driver, db);
    assert_eq!(read_signal(&w), None);
    assert_eq!(php_cache(&w, &["get", RESTART_KEY]).trim(), "null");

    let before = now();
    php_cache(&w, &["queue:restart"]);
    let after = now();
    let php_value = read_signal(&w).expect("PHP wrote one");
    assert!(
        (before..=after).contains(&php_value),
        "{php_value} not in [{before}, {after}]"
    );
    // How PHP's cache returns its own value (RedisStore: a numeric string; file/database: an int).
    let php_view = php_cache(&w, &["get", RESTART_KEY]).trim().to_owned();
    let php_view_of = |v: i64| php_view.replace(&php_value.to_string(), &v.to_string());

    with_store(&w, |s| async move {
        s.signal_restart(1_234_567_890).await.expect("write")
    });
    assert_eq!(
        php_cache(&w, &["get", RESTART_KEY]).trim(),
        php_view_of(1_234_567_890)
    );

    let (value, _) = restart(&w, &[]);
    assert_eq!(
        php_cache(&w, &["get", RESTART_KEY]).trim(),
        php_view_of(value)
    );
    assert_eq!(read_signal(&w), Some(value));
    (w, db1)
}

#[test]
fn redis_store_values_both_ways_at_laravels_key() {
    let (w, _db1) = values_both_ways("redis", DbKind::Sqlite);
    // 8/10: <REDIS_PREFIX><CACHE_PREFIX>:<key>, number stored raw, on REDIS_CACHE_DB (1).
    let key = format!("{}restrosaas_cache:{RESTART_KEY}", w.prefix);
    let mut db1 = redis::Client::open("redis://127.0.0.1:6379/1")
        .expect("url")
        .get_connection()
        .expect("redis db 1");
    let raw: Option<String> = redis::cmd("GET").arg(&key).query(&mut db1).expect("GET");
    let raw = raw.unwrap_or_else(|| panic!("nothing at {key}"));
    assert!(
        raw.parse::<i64>().is_ok(),
        "raw number expected, got {raw:?}"
    );

    // 11+: no `:` after the cache prefix, and the skeleton's default prefix ends in `_cache_`.
    let (value, location) = restart(&w, &[("DEFER_WORKER_LARAVEL", "11")]);
    let key11 = format!("{}restrosaas_cache_{RESTART_KEY}", w.prefix);
    assert!(location.ends_with(&key11), "{location}");
    let raw: Option<String> = redis::cmd("GET").arg(&key11).query(&mut db1).expect("GET");
    assert_eq!(raw, Some(value.to_string()));
}

#[test]
fn file_store_values_both_ways_in_laravels_file() {
    let (w, _db1) = values_both_ways("file", DbKind::Sqlite);
    let path = w
        .dir
        .path()
        .join("storage/framework/cache/data/ee/2f/ee2f842aa7bb1f53edf3a2ed2c09a1807ffa6c90");
    let content = std::fs::read_to_string(&path).expect("the FileStore file");
    let value = content
        .strip_prefix("9999999999i:")
        .and_then(|r| r.strip_suffix(';'))
        .unwrap_or_else(|| panic!("unexpected content {content:?}"));
    assert!(value.parse::<i64>().is_ok(), "{content:?}");
    // --storage points at another app directory: nothing is written under this one.
    let other = tempfile::tempdir().expect("tmp");
    let out = dw(
        &w,
        &["restart", &format!("--storage={}", other.path().display())],
        &[],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&other.path().display().to_string()));
    assert_eq!(std::fs::read_to_string(&path).expect("file"), content);
    assert!(other
        .path()
        .join("framework/cache/data/ee/2f/ee2f842aa7bb1f53edf3a2ed2c09a1807ffa6c90")
        .exists());
}

#[test]
fn database_store_values_both_ways_sqlite() {
    let (w, _db1) = values_both_ways("database", DbKind::Sqlite);
    let (_, location) = restart(&w, &[]);
    assert!(
        location.contains(&format!("table cache, key restrosaas_cache{RESTART_KEY}")),
        "{location}"
    );
}

#[test]
fn database_store_values_both_ways_mysql() {
    values_both_ways("database", DbKind::MySql);
}

#[test]
fn database_store_values_both_ways_postgres() {
    values_both_ways("database", DbKind::Postgres);
}

#[test]
fn array_store_is_refused_with_what_to_do() {
    let w = World::new(DbKind::Sqlite);
    let out = Command::new(env!("CARGO_BIN_EXE_defer-worker"))
        .arg("restart")
        .env_clear()
        .envs(w.env())
        .env("CACHE_DRIVER", "array")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("array") && err.contains("redis, file or database"),
        "{err}"
    );
}

/// Our worker, busy with two long jobs and four waiting, gets a restart signal (from PHP's
/// `queue:restart` or from `defer-worker restart`): it sees it within a second, finishes the two
/// running jobs, starts none of the waiting ones, and exits 0, as PHP's worker does.
fn restart_stops_a_busy_defer_worker(driver: &str, by_php: bool) {
    let (w, _db1) = world(driver, DbKind::Sqlite);
    // Through the harness with the database store defined (the plain harness has redis and file only).
    php_cache(
        &w,
        &[
            "harness:dispatch",
            "analytics_tracking",
            r#"--data={"order_id":1}"#,
            "--queue=rq",
            "--count=6",
        ],
    );
    let config = "[actions.\"*\"]\nkind = \"log\"\nsleep_ms = 1500\n";
    let mut ours = w.worker(&["--queue=rq", "--concurrency=2", "--sleep=0.1"], config);
    ours.wait_for(Duration::from_secs(10), "two jobs running", |_| {
        w.zrange(&w.key("rq:reserved")).len() == 2
    });
    let signalled = crate::support::now_f64();
    if by_php {
        php_cache(&w, &["queue:restart"]);
    } else {
        restart(&w, &[]);
    }
    let status = ours.wait(Duration::from_secs(10));
    assert!(status.success(), "exit status {status}");
    let logs = ours.logs();
    let seen = logs
        .iter()
        .find(|l| l["message"] == "restart signal received: finishing running jobs, then exiting")
        .unwrap_or_else(|| panic!("no restart line; log:\n{}", ours.log_text()));
    let latency = crate::support::log_time(seen) - signalled;
    eprintln!("{driver} store: restart seen {latency:.3} s after the signal");
    assert!(
        latency < 1.0,
        "{driver}: the restart signal was seen after {latency:.3} s"
    );
    assert_eq!(ours.outcomes("done").len(), 2, "the running jobs finished");
    assert_eq!(w.lrange(&w.key("rq")).len(), 4, "no new job was started");
    assert!(w.zrange(&w.key("rq:reserved")).is_empty());
    let stopped = logs
        .iter()
        .find(|l| l["message"] == "worker stopped")
        .expect("stop line");
    assert_eq!(stopped["reason"], "Restart");
}

#[test]
fn restart_stops_defer_worker_redis_store() {
    restart_stops_a_busy_defer_worker("redis", false);
}

#[test]
fn php_queue_restart_stops_defer_worker_file_store() {
    restart_stops_a_busy_defer_worker("file", true);
}

#[test]
fn restart_stops_defer_worker_database_store() {
    restart_stops_a_busy_defer_worker("database", false);
}
