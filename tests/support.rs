//! Shared test plumbing: a private world per test (Redis key prefix, storage dir, failed_jobs database),
//! the real Laravel harness (`php fixtures/laravel/artisan ...`), and the real `defer-worker` binary.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use defer_worker::laravel::database::{Db, DbConfig};
use defer_worker::laravel::failed_jobs::{FailedJob, FailedJobs};
use serde_json::Value as Json;

pub const REDIS_URL: &str = "redis://127.0.0.1:6379/0";
/// What every fleet key holds after the prefix (src/fleet/store.rs).
pub const FLEET_TAG: &str = "{defer_worker}:";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Which database holds failed_jobs in a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    MySql,
    Postgres,
}

/// `DEFER_WORKER_LOG` for a test that reads the `log` kind's own line ("deferred job logged (kind =
/// log)", at debug: at info the outcome line alone says a job ran), as a ledger of the jobs it ran.
pub const LOG_KIND_LINES: (&str, &str) =
    ("DEFER_WORKER_LOG", "info,defer_worker::actions::log=debug");

/// `DEFER_WORKER_LOG_BUFFER=0` for a test that reads the log as a ledger across `kill -9`: each line is
/// written before the job goes on, so a job that ran has its line even when the worker is killed.
pub const LOG_UNBUFFERED: (&str, &str) = ("DEFER_WORKER_LOG_BUFFER", "0");

/// One test's private world. Dropping it deletes its Redis keys and its database.
pub struct World {
    pub prefix: String,
    pub dir: tempfile::TempDir,
    pub db: DbKind,
    pub db_name: String,
    pub extra: Vec<(String, String)>,
    /// Variables left out of [`World::env`] (e.g. `DB_CONNECTION`, for the embedded failed_jobs file).
    pub unset: Vec<&'static str>,
}

impl World {
    pub fn new(db: DbKind) -> World {
        let tag = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let dir = tempfile::tempdir().expect("temp dir");
        let db_name = match db {
            DbKind::Sqlite => dir.path().join("app.sqlite").display().to_string(),
            DbKind::MySql => {
                let name = format!("dw_{tag}");
                sh(
                    "mysql",
                    &[
                        "-h127.0.0.1",
                        "-uroot",
                        "-e",
                        &format!("CREATE DATABASE {name}"),
                    ],
                );
                name
            }
            DbKind::Postgres => {
                let name = format!("dw_{tag}");
                sh(
                    "psql",
                    &[
                        "-h",
                        "127.0.0.1",
                        "-U",
                        "postgres",
                        "-d",
                        "postgres",
                        "-qc",
                        &format!("CREATE DATABASE {name}"),
                    ],
                );
                name
            }
        };
        let world = World {
            prefix: format!("dwt_{tag}_"),
            dir,
            db,
            db_name,
            extra: Vec::new(),
            unset: Vec::new(),
        };
        // The app's migrations: failed_jobs exists in the app's database before any worker runs.
        world.php(&["harness:schema"]);
        world
    }

    /// The environment both PHP and defer-worker read (Laravel's names).
    pub fn env(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = vec![
            ("APP_NAME".into(), "RestroSaaS".into()),
            ("REDIS_HOST".into(), "127.0.0.1".into()),
            ("REDIS_PORT".into(), "6379".into()),
            ("REDIS_PREFIX".into(), self.prefix.clone()),
            (
                "HARNESS_STORAGE".into(),
                self.dir.path().join("storage").display().to_string(),
            ),
            ("LOG_CHANNEL".into(), "null".into()),
            ("DB_DATABASE".into(), self.db_name.clone()),
        ];
        let conn = match self.db {
            DbKind::Sqlite => vec![("DB_CONNECTION", "sqlite")],
            DbKind::MySql => vec![
                ("DB_CONNECTION", "mysql"),
                ("DB_HOST", "127.0.0.1"),
                ("DB_PORT", "3306"),
                ("DB_USERNAME", "root"),
            ],
            DbKind::Postgres => {
                vec![
                    ("DB_CONNECTION", "pgsql"),
                    ("DB_HOST", "127.0.0.1"),
                    ("DB_PORT", "5432"),
                    ("DB_USERNAME", "postgres"),
                ]
            }
        };
        v.extend(
            conn.into_iter()
                .map(|(k, val)| (k.to_owned(), val.to_owned())),
        );
        v.extend(self.extra.iter().cloned());
        v.retain(|(k, _)| !self.unset.contains(&k.as_str()));
        v
    }

    /// Runs the real Laravel harness; panics with its output when it fails. Returns stdout.
    pub fn php(&self, args: &[&str]) -> String {
        self.php_with(args, &[])
    }

    pub fn php_with(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.php_command(args, env).output().expect("run php");
        assert!(
            out.status.success(),
            "php artisan {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn php_command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new("php");
        cmd.arg(repo().join("fixtures/laravel/artisan"))
            .args(args)
            .env_clear();
        cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
        cmd.envs(self.env())
            .envs(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        cmd
    }

    /// Starts a long-running PHP command (e.g. `queue:work`), killed when the guard drops.
    pub fn php_background(&self, args: &[&str], env: &[(&str, &str)]) -> PhpProc {
        let child = self
            .php_command(args, env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start php");
        PhpProc(child)
    }

    /// The values of a Redis list under this world's prefix (e.g. `HARNESS_DONE_KEY`'s), as text.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.lrange(&format!("{}{name}", self.prefix))
            .into_iter()
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .collect()
    }

    /// `defer()` through the real app helpers; returns the uuids pushed.
    pub fn dispatch(&self, action: &str, data: &str, queue: &str, count: usize) -> Vec<String> {
        let out = self.php(&[
            "harness:dispatch",
            action,
            &format!("--data={data}"),
            &format!("--queue={queue}"),
            &format!("--count={count}"),
        ]);
        let uuids: Vec<String> = out
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        assert_eq!(
            uuids.len(),
            count,
            "harness printed {} uuids, expected {count}",
            uuids.len()
        );
        uuids
    }

    /// Starts `defer-worker work` with this world's environment and the given config file text.
    pub fn worker(&self, args: &[&str], config: &str) -> WorkerProc {
        let log_path = self.fresh_path("worker", "log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = self
            .worker_command("json", args, config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start defer-worker");
        WorkerProc {
            child,
            log_path,
            started: Instant::now(),
        }
    }

    /// `defer-worker --log-format=<format> --config <file holding config> work <args> --failed-db=…`
    /// with this world's environment (and nothing else), for a test that wires stdio itself.
    pub fn worker_command(&self, format: &str, args: &[&str], config: &str) -> Command {
        let config_path = self.fresh_path("defer-worker", "toml");
        std::fs::write(&config_path, config).expect("write config");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_defer-worker"));
        cmd.arg(format!("--log-format={format}"))
            .arg("--config")
            .arg(&config_path)
            .arg("work")
            .args(args)
            .arg(format!(
                "--failed-db={}",
                self.dir.path().join("embedded.sqlite").display()
            ))
            .env_clear()
            .envs(self.env());
        cmd
    }

    /// A path in this world's directory that no other call returned (`<stem>-<n>.<ext>`).
    fn fresh_path(&self, stem: &str, ext: &str) -> PathBuf {
        let n = std::fs::read_dir(self.dir.path())
            .map(|d| d.count())
            .unwrap_or(0);
        (n..)
            .map(|i| self.dir.path().join(format!("{stem}-{i}.{ext}")))
            .find(|p| !p.exists())
            .expect("a free name")
    }

    pub fn redis(&self) -> redis::Connection {
        redis::Client::open(REDIS_URL)
            .expect("url")
            .get_connection()
            .expect("redis at 127.0.0.1:6379")
    }

    pub fn key(&self, queue_suffix: &str) -> String {
        format!("{}queues:{queue_suffix}", self.prefix)
    }

    /// Every key under this world's prefix but the fleet's (`{defer_worker}:`: the registry and the
    /// history every worker writes, see [`World::fleet_keys`]).
    pub fn keys(&self) -> Vec<String> {
        let mut keys = self.all_keys();
        keys.retain(|k| !k.contains(FLEET_TAG));
        keys
    }

    /// The fleet's keys under this world's prefix.
    pub fn fleet_keys(&self) -> Vec<String> {
        let mut keys = self.all_keys();
        keys.retain(|k| k.contains(FLEET_TAG));
        keys
    }

    fn all_keys(&self) -> Vec<String> {
        redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query(&mut self.redis())
            .expect("KEYS")
    }

    pub fn lrange(&self, key: &str) -> Vec<Vec<u8>> {
        redis::cmd("LRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .query(&mut self.redis())
            .expect("LRANGE")
    }

    pub fn zrange(&self, key: &str) -> Vec<Vec<u8>> {
        redis::cmd("ZRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .query(&mut self.redis())
            .expect("ZRANGE")
    }

    pub fn rpush(&self, queue: &str, payload: &[u8]) {
        let mut c = self.redis();
        let _: () = redis::cmd("RPUSH")
            .arg(self.key(queue))
            .arg(payload)
            .query(&mut c)
            .expect("RPUSH");
        let _: () = redis::cmd("RPUSH")
            .arg(self.key(&format!("{queue}:notify")))
            .arg(1)
            .query(&mut c)
            .expect("RPUSH");
    }

    /// Jobs on a queue: ready, delayed and reserved (what `size` counts).
    pub fn queue_len(&self, queue: &str) -> usize {
        let mut c = self.redis();
        let ready: usize = redis::cmd("LLEN")
            .arg(self.key(queue))
            .query(&mut c)
            .expect("LLEN");
        let sets: usize = ["delayed", "reserved"]
            .iter()
            .map(|s| -> usize {
                redis::cmd("ZCARD")
                    .arg(self.key(&format!("{queue}:{s}")))
                    .query(&mut c)
                    .expect("ZCARD")
            })
            .sum();
        ready + sets
    }

    /// Waits until [`World::queue_len`] is 0 or `timeout` passes; returns what is left.
    pub fn wait_until_empty(&self, queue: &str, timeout: Duration) -> usize {
        let start = Instant::now();
        loop {
            let left = self.queue_len(queue);
            if left == 0 || start.elapsed() > timeout {
                return left;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Polls `pred` every 100 ms until it holds (true) or `timeout` passes (false).
    pub fn wait_until(&self, timeout: Duration, pred: impl Fn() -> bool) -> bool {
        let start = Instant::now();
        loop {
            if pred() {
                return true;
            }
            if start.elapsed() > timeout {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn redis_del(&self, key: &str) -> i64 {
        redis::cmd("DEL")
            .arg(key)
            .query(&mut self.redis())
            .expect("DEL")
    }

    /// [`World::failed_rows`] from synchronous test code.
    pub fn failed(&self) -> Vec<FailedJob> {
        tokio::runtime::Runtime::new()
            .expect("runtime")
            .block_on(self.failed_rows())
    }

    /// Asserts that nothing is left under this world's prefix (lists, notify tokens, sorted sets).
    pub fn assert_no_keys(&self, why: &str) {
        assert_eq!(self.keys(), Vec::<String>::new(), "{why}");
    }

    /// The failed_jobs table as defer-worker sees it (its own module is checked against Laravel's elsewhere).
    pub async fn failed_rows(&self) -> Vec<FailedJob> {
        let env: HashMap<String, String> = self.env().into_iter().collect();
        let get = |k: &str| env.get(k).cloned();
        let cfg =
            DbConfig::from_env(&get, &self.dir.path().join("embedded.sqlite")).expect("db config");
        let db = Db::connect(&cfg).await.expect("connect failed_jobs db");
        let rows = FailedJobs::new(db, "failed_jobs", chrono_tz::UTC)
            .all()
            .await
            .unwrap_or_default();
        rows.into_iter().map(|r| r.job).collect()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Ok(mut c) = redis::Client::open(REDIS_URL).and_then(|c| c.get_connection()) {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}*", self.prefix))
                .query(&mut c)
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut c);
            }
        }
        match self.db {
            DbKind::Sqlite => {}
            DbKind::MySql => {
                let _ = Command::new("mysql")
                    .args([
                        "-h127.0.0.1",
                        "-uroot",
                        "-e",
                        &format!("DROP DATABASE IF EXISTS {}", self.db_name),
                    ])
                    .output();
            }
            DbKind::Postgres => {
                let _ = Command::new("psql")
                    .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc"])
                    .arg(format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        self.db_name
                    ))
                    .output();
            }
        }
    }
}

fn sh(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A PHP process started by [`World::php_background`]; killed on drop.
pub struct PhpProc(pub Child);

impl Drop for PhpProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `defer-worker work`.
pub struct WorkerProc {
    pub child: Child,
    pub log_path: PathBuf,
    pub started: Instant,
}

impl WorkerProc {
    /// Waits for exit, killing the worker (and failing) after `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "defer-worker did not exit within {timeout:?}; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The JSON log lines so far.
    pub fn logs(&self) -> Vec<Json> {
        let Ok(f) = std::fs::File::open(&self.log_path) else {
            return Vec::new();
        };
        BufReader::new(f)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str(&l).ok())
            .collect()
    }

    /// The outcome lines (`outcome` = done, released, failed, handed_off, handed_back, left_reserved).
    pub fn outcomes(&self, kind: &str) -> Vec<Json> {
        self.logs()
            .into_iter()
            .filter(|l| l["outcome"] == kind)
            .collect()
    }

    pub fn uuids(&self, kind: &str) -> Vec<String> {
        self.outcomes(kind)
            .iter()
            .filter_map(|l| l["uuid"].as_str().map(String::from))
            .collect()
    }

    /// Polls until `pred` holds on the logs, or panics after `timeout`.
    pub fn wait_for(&self, timeout: Duration, what: &str, pred: impl Fn(&[Json]) -> bool) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if pred(&self.logs()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("timed out waiting for {what}; log:\n{}", self.log_text());
    }
}

impl Drop for WorkerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses the RFC 3339 `timestamp` of a JSON log line as seconds since the epoch.
pub fn log_time(line: &Json) -> f64 {
    let ts = line["timestamp"].as_str().expect("timestamp");
    let t = chrono::DateTime::parse_from_rfc3339(ts).expect("rfc3339 timestamp");
    t.timestamp() as f64 + f64::from(t.timestamp_subsec_micros()) / 1e6
}

pub fn now_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("fixtures/payloads").join(name)).expect("fixture")
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}
