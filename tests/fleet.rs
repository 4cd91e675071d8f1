//! The fleet registry and history (src/fleet/) end to end: real `work` processes announcing
//! themselves in real Redis (and a local Redis Cluster), one killed with SIGKILL, jobs dispatched by
//! real Laravel and counted by both workers into the shared history, read back through the public
//! API the console uses (`list_workers`, `read_history`), `/stats` and `monitor --fleet`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use defer_worker::fleet::{list_workers, read_history, FleetStore, Span, WorkerInfo, BEAT, EXPIRY};
use defer_worker::laravel::redis_config::RedisConfig;
use serde_json::Value as Json;

use crate::redis_cluster::Cluster;
use crate::support::{now_f64, DbKind, World};

const ALL_LOG: &str = "[actions.\"*\"]\nkind = \"log\"\n";

/// The fleet's store as a worker of `w` would open it (cluster too, from the world's environment).
async fn store(w: &World) -> FleetStore {
    let env: HashMap<String, String> = w.env().into_iter().collect();
    let cfg = RedisConfig::from_env(&|k: &str| env.get(k).cloned()).expect("redis config");
    FleetStore::connect(&cfg).await.expect("fleet store")
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Runtime::new().expect("runtime").block_on(f)
}

fn workers(w: &World) -> Vec<WorkerInfo> {
    block_on(async { list_workers(&store(w).await).await.expect("list_workers") })
}

/// Polls the registry until `pred` holds; panics with the last listing after `timeout`.
fn wait_for_workers(
    w: &World,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&[WorkerInfo]) -> bool,
) -> Vec<WorkerInfo> {
    let deadline = Instant::now() + timeout;
    loop {
        let listed = workers(w);
        if pred(&listed) {
            return listed;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {listed:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Each queue/action pair's counts summed over every bucket of `span`.
fn totals(w: &World, span: Span) -> HashMap<(String, String), (u64, u64, f64)> {
    let history = block_on(async {
        read_history(&store(w).await, span)
            .await
            .expect("read_history")
    });
    let mut out: HashMap<(String, String), (u64, u64, f64)> = HashMap::new();
    for b in &history.buckets {
        for s in &b.series {
            let e = out.entry((s.queue.clone(), s.action.clone())).or_default();
            e.0 += s.done;
            e.1 += s.failed;
            e.2 += s.run_time_secs;
        }
    }
    out
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// `GET /stats` of a worker's HTTP server, as JSON.
fn stats(port: u16) -> Json {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to --http");
    s.write_all(b"GET /stats HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .expect("write");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let body = text.split_once("\r\n\r\n").expect("headers end").1;
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn two_workers_are_listed_and_a_killed_one_drops_out_within_its_expiry() {
    let mut w = World::new(DbKind::Sqlite);
    // The pause flags live in the app's cache store.
    w.extra.push(("CACHE_DRIVER".into(), "redis".into()));
    let port = free_port();
    let mut a = w.worker(
        &[
            "--queue=fleet_a,fleet_b",
            "--concurrency=3",
            &format!("--http=127.0.0.1:{port}"),
        ],
        ALL_LOG,
    );
    let mut b = w.worker(&["--queue=fleet_b", "--concurrency=2"], ALL_LOG);
    let (pa, pb) = (a.child.id(), b.child.id());
    let listed = wait_for_workers(&w, Duration::from_secs(30), "both workers", |ws| {
        ws.len() == 2
    });
    let host = hostname();
    let info_a = listed
        .iter()
        .find(|i| i.pid == pa)
        .expect("worker a listed");
    let info_b = listed
        .iter()
        .find(|i| i.pid == pb)
        .expect("worker b listed");
    assert_eq!(info_a.queues, ["fleet_a", "fleet_b"]);
    assert_eq!((info_a.concurrency, info_b.concurrency), (3, 2));
    assert_eq!(info_b.queues, ["fleet_b"]);
    for i in [info_a, info_b] {
        assert_eq!(
            (i.connection.as_str(), i.driver.as_str()),
            ("redis", "redis")
        );
        assert_eq!(i.host, host);
        assert_eq!(i.in_flight, 0);
        assert!(i.paused.is_empty());
        assert!(
            i.version.starts_with(env!("CARGO_PKG_VERSION")),
            "{}",
            i.version
        );
        let now = now_f64() as i64;
        assert!(
            i.started_at <= i.last_beat && i.last_beat <= now + 1,
            "{i:?}"
        );
    }
    assert_ne!(info_a.id, info_b.id);
    let id_b = info_b.id.clone();
    let info_a = info_a.clone();

    // A paused queue and a paused worker are announced (from the next beat).
    dw(&w, &["pause", "redis:fleet_b"]);
    wait_for_workers(
        &w,
        Duration::from_secs(20),
        "fleet_b paused on both",
        |ws| ws.len() == 2 && ws.iter().all(|i| i.paused == ["fleet_b"]),
    );
    dw(&w, &["resume", "redis:fleet_b"]);
    a.signal("USR2");
    wait_for_workers(
        &w,
        Duration::from_secs(20),
        "worker a paused, fleet_b resumed",
        |ws| {
            ws.len() == 2
                && ws
                    .iter()
                    .all(|i| i.paused.is_empty() && i.worker_paused == (i.pid == pa))
        },
    );
    a.signal("CONT");
    wait_for_workers(&w, Duration::from_secs(20), "worker a resumed", |ws| {
        ws.len() == 2 && ws.iter().all(|i| !i.worker_paused)
    });

    // /stats answers for the whole fleet.
    let s = stats(port);
    assert_eq!(s["stats"]["workers_active"], Json::Bool(true), "{s}");
    assert_eq!(s["stats"]["workers"], 2, "{s}");

    // monitor --fleet lists both.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_defer-worker"))
        .args(["monitor", "--fleet", "--json"])
        .env_clear()
        .envs(w.env())
        .output()
        .expect("monitor");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: Vec<WorkerInfo> = serde_json::from_slice(&out.stdout).expect("JSON array");
    let mut pids: Vec<u32> = shown.iter().map(|i| i.pid).collect();
    pids.sort_unstable();
    let mut expected = vec![pa, pb];
    expected.sort_unstable();
    assert_eq!(pids, expected);

    // SIGKILL: no goodbye. The entry stays until its expiry (at least EXPIRY - BEAT after the last
    // beat), then it is gone by itself, key included.
    b.child.kill().expect("kill -9");
    b.child.wait().expect("reap");
    assert!(
        workers(&w).iter().any(|i| i.pid == pb),
        "a killed worker is still listed until its entry expires"
    );
    wait_for_workers(
        &w,
        EXPIRY + BEAT + Duration::from_secs(5),
        "the killed worker to expire",
        |ws| ws.len() == 1 && ws[0].pid == pa,
    );
    assert!(
        !w.fleet_keys().iter().any(|k| k.ends_with(&id_b)),
        "its key expired: {:?}",
        w.fleet_keys()
    );
    let s = stats(port);
    assert_eq!(s["stats"]["workers"], 1, "{s}");

    // A clean stop leaves the registry at once: its key and its index entry.
    let id_a = info_a.id.clone();
    a.signal("TERM");
    assert!(
        a.wait(Duration::from_secs(20)).success(),
        "{}",
        a.log_text()
    );
    assert_eq!(workers(&w), Vec::new(), "a stopped worker removed itself");
    let index = format!("{}{{defer_worker}}:workers", w.prefix);
    let score: Option<i64> = redis::cmd("ZSCORE")
        .arg(&index)
        .arg(&id_a)
        .query(&mut w.redis())
        .expect("ZSCORE");
    assert_eq!(score, None, "not in the index");
    assert!(
        !w.fleet_keys().iter().any(|k| k.ends_with(&id_a)),
        "its key is deleted: {:?}",
        w.fleet_keys()
    );
}

/// `defer-worker <args>` in the world's environment; panics when it fails.
fn dw(w: &World, args: &[&str]) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_defer-worker"))
        .args(args)
        .env_clear()
        .envs(w.env())
        .output()
        .expect("defer-worker");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_owned()
}

#[test]
fn history_counts_the_jobs_of_both_workers_and_survives_a_restart() {
    let w = World::new(DbKind::Sqlite);
    let config = format!("{ALL_LOG}[actions.analytics_tracking]\nkind = \"fail\"\n");
    w.dispatch("cache_warming", r#"{"vendor_id":7}"#, "hist", 30);
    w.dispatch("analytics_tracking", r#"{"order_id":1}"#, "hist", 10);
    let args = [
        "--queue=hist",
        "--stop-when-empty",
        "--tries=1",
        "--concurrency=2",
    ];
    let mut a = w.worker(&args, &config);
    let mut b = w.worker(&args, &config);
    for p in [&mut a, &mut b] {
        assert!(
            p.wait(Duration::from_secs(60)).success(),
            "{}",
            p.log_text()
        );
    }
    let done_by = |p: &crate::support::WorkerProc| p.outcomes("done").len();
    assert_eq!(done_by(&a) + done_by(&b), 30, "the workers' own logs");

    let key = |a: &str| ("hist".to_owned(), a.to_owned());
    for span in [Span::Hour, Span::Day, Span::Week] {
        let t = totals(&w, span);
        assert_eq!(t[&key("cache_warming")].0, 30, "{span:?}: {t:?}");
        assert_eq!(t[&key("analytics_tracking")].1, 10, "{span:?}: {t:?}");
        assert_eq!(t[&key("analytics_tracking")].0, 0, "{span:?}: {t:?}");
        assert!(t[&key("cache_warming")].2 > 0.0, "run time summed: {t:?}");
    }

    // A new process adds to what the stopped ones left, it does not start over.
    w.dispatch("cache_warming", r#"{"vendor_id":7}"#, "hist", 5);
    let mut c = w.worker(&args, &config);
    assert!(
        c.wait(Duration::from_secs(60)).success(),
        "{}",
        c.log_text()
    );
    for span in [Span::Hour, Span::Week] {
        let t = totals(&w, span);
        assert_eq!(t[&key("cache_warming")].0, 35, "{span:?}: {t:?}");
        assert_eq!(t[&key("analytics_tracking")].1, 10, "{span:?}: {t:?}");
    }
    // Every bucket key expires (24 h for minutes, 7 days for hours).
    let mut r = w.redis();
    for k in w.fleet_keys() {
        let ttl: i64 = redis::cmd("TTL").arg(&k).query(&mut r).expect("TTL");
        let most = if k.contains(":history:m:") {
            24 * 3600 + 60
        } else {
            7 * 24 * 3600 + 3600
        };
        assert!(ttl > 0 && ttl <= most, "{k}: TTL {ttl}");
    }
}

#[test]
fn the_wait_is_the_oldest_ready_jobs_age_sampled_while_it_waits() {
    let w = World::new(DbKind::Sqlite);
    // w1's job holds the only slot for 3 s, so w2's job waits in the ready list meanwhile.
    let config = "[actions.\"*\"]\nkind = \"log\"\n[actions.cache_warming]\nkind = \"log\"\nsleep_ms = 3000\n";
    w.dispatch("cache_warming", r#"{"vendor_id":7}"#, "wait_1", 1);
    w.dispatch("analytics_tracking", r#"{"order_id":1}"#, "wait_2", 1);
    // Laravel 8/10 write no push time; a Laravel 12 payload carries createdAt: made 100 s old.
    let key = w.key("wait_2");
    let mut r = w.redis();
    let raw: String = redis::cmd("LPOP").arg(&key).query(&mut r).expect("LPOP");
    let mut payload: Json = serde_json::from_str(&raw).expect("payload");
    payload["createdAt"] = Json::from(now_f64() as i64 - 100);
    let _: () = redis::cmd("RPUSH")
        .arg(&key)
        .arg(payload.to_string())
        .query(&mut r)
        .expect("RPUSH");
    let mut worker = w.worker(
        &[
            "--queue=wait_1,wait_2",
            "--concurrency=1",
            "--stop-when-empty",
        ],
        config,
    );
    assert!(
        worker.wait(Duration::from_secs(60)).success(),
        "{}",
        worker.log_text()
    );
    let history = block_on(async {
        read_history(&store(&w).await, Span::Hour)
            .await
            .expect("read")
    });
    let waits: Vec<f64> = history
        .buckets
        .iter()
        .filter_map(|b| b.wait.get("wait_2").copied())
        .collect();
    let most = waits.iter().copied().fold(f64::MIN, f64::max);
    assert!((100.0..130.0).contains(&most), "wait_2 samples: {waits:?}");
    assert_eq!(history.bucket_secs, 60);
    assert_eq!(history.buckets.len(), 60);
}

#[test]
fn a_worker_on_redis_cluster_registers_and_counts() {
    let cluster = Cluster::start(3, 0);
    let w = cluster.world();
    w.dispatch("cache_warming", r#"{"vendor_id":7}"#, "{whatsapp}", 5);
    let mut worker = w.worker(
        &[
            "--queue={whatsapp}",
            "--handoff-queue={queue}-php",
            "--concurrency=2",
        ],
        ALL_LOG,
    );
    let pid = worker.child.id();
    wait_for_workers(
        &w,
        Duration::from_secs(30),
        "the worker on the cluster",
        |ws| ws.len() == 1 && ws[0].pid == pid,
    );
    worker.wait_for(Duration::from_secs(30), "5 jobs done", |logs| {
        logs.iter().filter(|l| l["outcome"] == "done").count() == 5
    });
    worker.signal("TERM");
    assert!(
        worker.wait(Duration::from_secs(20)).success(),
        "{}",
        worker.log_text()
    );
    assert_eq!(workers(&w), Vec::new(), "left the registry on the cluster");
    let t = totals(&w, Span::Hour);
    assert_eq!(
        t[&("{whatsapp}".to_owned(), "cache_warming".to_owned())].0,
        5,
        "{t:?}"
    );
    let noisy: Vec<Json> = worker
        .logs()
        .into_iter()
        .filter(|l| l["level"] == "WARN" || l["level"] == "ERROR")
        .collect();
    assert!(noisy.is_empty(), "{noisy:#?}");
}

#[test]
fn a_database_queue_worker_announces_itself_in_redis_and_runs_alone_without_it() {
    let mut w = World::new(DbKind::Sqlite);
    w.extra.push(("QUEUE_CONNECTION".into(), "database".into()));
    let mut worker = w.worker(&["--connection=database"], ALL_LOG);
    let pid = worker.child.id();
    let listed = wait_for_workers(&w, Duration::from_secs(30), "the database worker", |ws| {
        ws.len() == 1 && ws[0].pid == pid
    });
    assert_eq!(
        (listed[0].connection.as_str(), listed[0].driver.as_str()),
        ("database", "database")
    );
    w.dispatch("analytics_tracking", r#"{"order_id":1}"#, "default", 3);
    worker.wait_for(Duration::from_secs(30), "3 jobs done", |logs| {
        logs.iter().filter(|l| l["outcome"] == "done").count() == 3
    });
    worker.signal("TERM");
    assert!(
        worker.wait(Duration::from_secs(20)).success(),
        "{}",
        worker.log_text()
    );
    let key = ("default".to_owned(), "analytics_tracking".to_owned());
    assert_eq!(totals(&w, Span::Hour)[&key].0, 3);

    // The app's Redis unreachable: the worker works alone and says so once.
    w.dispatch("analytics_tracking", r#"{"order_id":1}"#, "default", 2);
    w.extra.push(("REDIS_PORT".into(), "1".into()));
    let mut alone = w.worker(&["--connection=database", "--stop-when-empty"], ALL_LOG);
    assert!(
        alone.wait(Duration::from_secs(60)).success(),
        "{}",
        alone.log_text()
    );
    assert_eq!(alone.outcomes("done").len(), 2, "{}", alone.log_text());
    let off: Vec<Json> = alone
        .logs()
        .into_iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("fleet: off"))
        })
        .collect();
    assert_eq!(off.len(), 1, "{}", alone.log_text());
    assert_eq!(off[0]["level"], "INFO");
    w.extra.pop();
    assert_eq!(
        totals(&w, Span::Hour)[&key].0,
        3,
        "nothing counted without Redis"
    );
}
