//! Faults on purpose, each bounded in time, each ending with a ledger check: every dispatched job is
//! done (its side effect is the `log` kind's line), in failed_jobs, or handed off; duplicates only
//! where at-least-once allows them (jobs in flight at a kill), counted and reported.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde_json::Value as Json;

use crate::support::{fixture, repo, DbKind, World, LOG_KIND_LINES, LOG_UNBUFFERED};

const LOG_ALL: &str = "[actions.\"*\"]\nkind = \"log\"\n";

fn ran(logs: &[Json]) -> Vec<String> {
    logs.iter()
        .filter(|l| l["message"] == "deferred job logged (kind = log)")
        .filter_map(|l| l["span"]["uuid"].as_str().map(String::from))
        .collect()
}

/// kill -9 in the middle of 5 000 jobs, five times in a row, then a last worker drains the rest.
#[test]
fn kill_9_five_times_in_a_row_loses_nothing() {
    let mut w = World::new(DbKind::Sqlite);
    let (var, filter) = LOG_KIND_LINES;
    w.extra.push((var.into(), filter.into()));
    let (var, bytes) = LOG_UNBUFFERED;
    w.extra.push((var.into(), bytes.into()));
    let sent = w.dispatch("analytics_tracking", r#"{"order_id":1}"#, "default", 5_000);
    let slow = "[actions.\"*\"]\nkind = \"log\"\nsleep_ms = 3\n";
    let args = [
        "--queue=default",
        "--tries=10",
        "--concurrency=16",
        "--retry-after=1",
    ];
    let mut all_runs: Vec<String> = Vec::new();
    for round in 0..5 {
        let ours = w.worker(&args, slow);
        let before = all_runs.len();
        ours.wait_for(Duration::from_secs(60), "400 more jobs done", |logs| {
            logs.iter().filter(|l| l["outcome"] == "done").count() >= 400
        });
        ours.signal("KILL");
        let mut ours = ours;
        let _ = ours.wait(Duration::from_secs(5));
        all_runs.extend(ran(&ours.logs()));
        assert!(
            w.queue_len("default") > 0,
            "round {round}: killed with jobs left"
        );
        eprintln!(
            "round {round}: {} ran before the kill",
            all_runs.len() - before
        );
    }
    // --stop-when-empty stops when nothing is ready, as PHP's does: a worker that drains what is left
    // in less than retry_after (1 s) stops before the last kill's reservations come back. Workers
    // are started one after the other until the queue (ready, delayed and reserved) is empty.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut last = w.worker(&[&args[..], &["--stop-when-empty"]].concat(), LOG_ALL);
        let _ = last.wait(Duration::from_secs(30));
        all_runs.extend(ran(&last.logs()));
        if w.queue_len("default") == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the queue drained");
        std::thread::sleep(Duration::from_millis(250));
    }

    let distinct: HashSet<&String> = all_runs.iter().collect();
    let missing: Vec<_> = sent.iter().filter(|u| !distinct.contains(u)).collect();
    assert!(missing.is_empty(), "{} jobs lost", missing.len());
    let twice = all_runs.len() - distinct.len();
    assert!(
        twice <= 5 * 16,
        "at most the jobs in flight at each kill run twice, got {twice}"
    );
    assert!(w.failed().is_empty(), "--tries=10: none ran out of tries");
    eprintln!(
        "5 kills: {} runs of {} jobs, {twice} ran twice",
        all_runs.len(),
        sent.len()
    );
}

/// A Redis of our own, so it can be stopped and started again with its data (RDB in its dir).
struct PrivateRedis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl PrivateRedis {
    fn start() -> PrivateRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut r = PrivateRedis {
            port,
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        r.up();
        r
    }

    fn up(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.conn().is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SHUTDOWN SAVE: the data survives in dump.rdb for the next `up`.
    fn down(&mut self) {
        let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN")
            .arg("SAVE")
            .query(&mut self.conn().expect("connect"));
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }

    fn conn(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(format!("redis://127.0.0.1:{}/0", self.port))?.get_connection()
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split(' ').nth(1)?.parse().ok()
}

/// Redis goes away for 3 s in the middle of a run and comes back with its data: the worker keeps
/// running, backs off (no busy loop), answers /ready 503 meanwhile, and then finishes every job.
#[test]
fn redis_restarted_mid_run_reconnects_with_backoff_and_loses_nothing() {
    let mut redis = PrivateRedis::start();
    let mut w = World::new(DbKind::Sqlite);
    w.extra.push(("REDIS_PORT".into(), redis.port.to_string()));
    let (var, filter) = LOG_KIND_LINES;
    w.extra.push((var.into(), filter.into()));
    let (var, bytes) = LOG_UNBUFFERED;
    w.extra.push((var.into(), bytes.into()));
    let sent = w.dispatch("analytics_tracking", r#"{"order_id":1}"#, "default", 2_000);
    let http = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let slow = "[actions.\"*\"]\nkind = \"log\"\nsleep_ms = 5\n";
    let mut ours = w.worker(
        &[
            "--queue=default",
            "--tries=5",
            "--concurrency=8",
            &format!("--http=127.0.0.1:{http}"),
        ],
        slow,
    );
    ours.wait_for(Duration::from_secs(60), "300 jobs done", |logs| {
        logs.iter().filter(|l| l["outcome"] == "done").count() >= 300
    });
    assert_eq!(http_status(http, "/ready"), Some(200));
    redis.down();
    let down_at = Instant::now();
    let errors_before = ours.logs().iter().filter(|l| l["level"] == "ERROR").count();
    let mut saw_503 = false;
    while down_at.elapsed() < Duration::from_secs(3) {
        saw_503 |= http_status(http, "/ready") == Some(503);
        std::thread::sleep(Duration::from_millis(200));
    }
    let errors = ours.logs().iter().filter(|l| l["level"] == "ERROR").count() - errors_before;
    assert!(saw_503, "/ready said 503 while Redis was down");
    assert!(
        errors < 60,
        "{errors} error lines in 3 s: the worker must back off, not spin"
    );
    assert!(ours.child.try_wait().unwrap().is_none(), "still running");
    redis.up();
    let c = std::cell::RefCell::new(redis.conn().unwrap());
    let key = format!("{}queues:default", w.prefix);
    let drained = w.wait_until(Duration::from_secs(120), || {
        let c = &mut *c.borrow_mut();
        let ready: usize = redis::cmd("LLEN").arg(&key).query(c).unwrap_or(1);
        let reserved: usize = redis::cmd("ZCARD")
            .arg(format!("{key}:reserved"))
            .query(c)
            .unwrap_or(1);
        let delayed: usize = redis::cmd("ZCARD")
            .arg(format!("{key}:delayed"))
            .query(c)
            .unwrap_or(1);
        ready + reserved + delayed == 0
    });
    assert!(drained, "the worker finished after Redis came back");
    assert_eq!(http_status(http, "/ready"), Some(200));
    ours.signal("TERM");
    assert!(ours.wait(Duration::from_secs(30)).success());
    let runs = ran(&ours.logs());
    let distinct: HashSet<&String> = runs.iter().collect();
    let missing = sent.iter().filter(|u| !distinct.contains(u)).count();
    assert_eq!(missing, 0, "jobs lost");
    let twice = runs.len() - distinct.len();
    eprintln!(
        "Redis down 3 s: {errors} error lines, {} runs, {twice} twice",
        runs.len()
    );
}

/// 10 000 generated bad payloads (truncated JSON, truncated or corrupted PHP inside a valid envelope,
/// hostile lengths and depths, wrong types, invalid UTF-8) and some good ones: every payload is done,
/// failed with a clear exception, or handed off; the worker keeps running with bounded memory.
#[test]
fn ten_thousand_malformed_payloads_end_in_failed_jobs_and_memory_stays_bounded() {
    let w = World::new(DbKind::Sqlite);
    let seeds: Vec<Vec<u8>> = [
        "whatsapp.json",
        "email.json",
        "analytics.json",
        "l10_whatsapp.json",
    ]
    .iter()
    .filter(|f| Path::new(&repo().join("fixtures/payloads").join(f)).exists())
    .map(|f| fixture(f))
    .collect();
    assert!(!seeds.is_empty(), "fixtures present");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut pushed: Vec<Vec<u8>> = Vec::with_capacity(10_000);
    let mut good = 0;
    for i in 0..10_000usize {
        // Every dispatch has its own uuid, as in the app (byte-identical payloads are one failure).
        let seed = &with_uuid(&seeds[i % seeds.len()], i);
        let payload = match i % 10 {
            0 => seed.clone(), // control: a valid job
            1 => seed[..rng.gen_range(0..seed.len())].to_vec(),
            2 => with_command(seed, |c| c[..rng.gen_range(0..c.len())].to_vec()),
            3 => with_command(seed, |c| {
                let mut c = c.to_vec();
                let at = rng.gen_range(0..c.len());
                c[at] = rng.gen();
                c
            }),
            4 => with_command(seed, |_| b"s:999999999:\"x\";".to_vec()),
            5 => with_command(seed, |_| {
                let mut c = b"a:1:{i:0;".repeat(3000);
                c.extend(b"N;");
                c
            }),
            6 => with_command(seed, |_| b"a:999999999:{".to_vec()),
            7 => replace_key(seed, "attempts", "\"many\""),
            8 => {
                let mut p = seed.clone();
                let at = rng.gen_range(0..p.len());
                p.insert(at, 0xff);
                p
            }
            _ => replace_key(seed, "maxTries", "\"x\""),
        };
        if i % 10 == 0 {
            good += 1;
        }
        pushed.push(payload);
    }
    // And every truncation of every fixture (each a distinct payload; none is a valid job).
    for (n, seed) in seeds.iter().enumerate() {
        let seed = with_uuid(seed, 20_000 + n);
        pushed.extend((0..seed.len()).map(|len| seed[..len].to_vec()));
    }
    let mut c = w.redis();
    let key = w.key("default");
    for chunk in pushed.chunks(500) {
        let mut pipe = redis::pipe();
        for p in chunk {
            pipe.cmd("RPUSH").arg(&key).arg(p.as_slice()).ignore();
        }
        let _: () = pipe.query(&mut c).expect("RPUSH");
    }
    let mut ours = w.worker(
        &["--queue=default", "--concurrency=32", "--stop-when-empty"],
        LOG_ALL,
    );
    let pid = ours.child.id();
    let mut peak_kb = 0u64;
    while ours.child.try_wait().unwrap().is_none() {
        peak_kb = peak_kb.max(vm_hwm_kb(pid).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = ours.wait(Duration::from_secs(1));
    assert!(status.success(), "{}", ours.log_text());
    let count = |k: &str| ours.outcomes(k).len();
    let (done, failed, handed) = (count("done"), count("failed"), count("handed_off"));
    assert_eq!(
        done + failed + handed,
        pushed.len(),
        "every payload settled once"
    );
    assert!(
        done >= good,
        "the valid ones ran ({done} done, {good} valid)"
    );
    let rows = w.failed();
    assert_eq!(rows.len(), failed, "one failed_jobs row per failure");
    let mut reasons: HashMap<String, usize> = HashMap::new();
    for r in &rows {
        let first = r.exception.lines().next().unwrap_or_default();
        assert!(
            first.contains("Exception") && first.len() > 30,
            "unclear exception {first:?}"
        );
        let class = first.split(':').next().unwrap_or_default().to_owned();
        *reasons.entry(class).or_default() += 1;
    }
    assert!(w.queue_len("default") == 0);
    assert!(
        peak_kb < 200 * 1024,
        "peak RSS {peak_kb} KB for 10 000 bad payloads"
    );
    eprintln!(
        "malformed run: {done} done, {failed} failed, {handed} handed off; peak RSS {} MB; {reasons:?}",
        peak_kb / 1024
    );
}

/// The envelope with `data.command` replaced by `f(command)` (a JSON string holding PHP bytes).
fn with_command(seed: &[u8], f: impl FnOnce(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let mut doc: serde_json::Map<String, Json> =
        serde_json::from_slice(seed).expect("fixture JSON");
    let command = doc["data"]["command"]
        .as_str()
        .unwrap_or_default()
        .as_bytes()
        .to_vec();
    let new = String::from_utf8_lossy(&f(&command)).into_owned();
    doc["data"]["command"] = Json::String(new);
    doc.entry("attempts").or_insert(Json::from(0));
    serde_json::to_vec(&doc).expect("encode")
}

/// `seed` with its uuid (the fixtures start `{"uuid":"<36 chars>"`) replaced by one made from `i`.
fn with_uuid(seed: &[u8], i: usize) -> Vec<u8> {
    const AT: usize = r#"{"uuid":""#.len();
    assert_eq!(&seed[..AT], br#"{"uuid":""#, "fixture starts with its uuid");
    let mut out = seed.to_vec();
    out[AT..AT + 36].copy_from_slice(format!("00000000-0000-4000-8000-{i:012x}").as_bytes());
    out
}

fn replace_key(seed: &[u8], key: &str, raw: &str) -> Vec<u8> {
    let mut doc: serde_json::Map<String, Json> =
        serde_json::from_slice(seed).expect("fixture JSON");
    doc.insert(key.to_owned(), serde_json::from_str(raw).expect("raw JSON"));
    serde_json::to_vec(&doc).expect("encode")
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
