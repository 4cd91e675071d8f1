//! `defer_worker::http` served on 127.0.0.1:0 against real Redis (unique prefix) and a SQLite
//! failed_jobs made by the real Laravel harness, requested with hyper's HTTP/1.1 client.
//!
//! `/metrics` is read twice: by the `prometheus-parse` crate (what a scraper library sees) and by
//! [`strict_parse`] below, because that crate skips lines it cannot read and splits labels on `,`
//! without unescaping; the strict one rejects anything outside the 0.0.4 text format.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use defer_worker::http::{serve, HttpState, PROMETHEUS_TEXT};
use defer_worker::laravel::database::{Db, DbConfig};
use defer_worker::laravel::failed_jobs::FailedJobs;
use defer_worker::laravel::redis_config::RedisConfig;
use defer_worker::laravel::redis_queue::RedisQueue;
use defer_worker::metrics::{JobOutcome, Metrics, BUCKETS};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value as Json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::support::{DbKind, World, REDIS_URL};

const QUEUES: [&str; 5] = ["whatsapp", "analytics", "emails", "cache", "default"];

struct Reply {
    status: StatusCode,
    content_type: String,
    body: String,
}

async fn request(addr: SocketAddr, method: Method, path: &str) -> Reply {
    let stream = TcpStream::connect(addr).await.expect("connect to server");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP handshake");
    tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .body(Empty::<Bytes>::new())
        .expect("request");
    let res = tokio::time::timeout(Duration::from_secs(5), sender.send_request(req))
        .await
        .expect("answer within 5 s")
        .expect("response");
    let status = res.status();
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = res.into_body().collect().await.expect("body").to_bytes();
    Reply {
        status,
        content_type,
        body: String::from_utf8(body.to_vec()).expect("utf-8 body"),
    }
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, Method::GET, path).await
}

/// Polls `path` until `pred` holds, for at most `secs` seconds.
async fn poll(addr: SocketAddr, path: &str, secs: u64, pred: impl Fn(&Reply) -> bool) -> Reply {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let r = get(addr, path).await;
        if pred(&r) || Instant::now() > deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// A running server and what it reads.
struct Server {
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    queue: RedisQueue,
    failed: FailedJobs,
    stopping: CancellationToken,
    shutdown: CancellationToken,
    handle: JoinHandle<std::io::Result<()>>,
}

async fn failed_jobs_of(w: &World) -> FailedJobs {
    let env: HashMap<String, String> = w.env().into_iter().collect();
    let get = |k: &str| env.get(k).cloned();
    let cfg = DbConfig::from_env(&get, &w.dir.path().join("embedded.sqlite")).expect("db config");
    let db = Db::connect(&cfg).await.expect("failed_jobs database");
    FailedJobs::new(db, "failed_jobs", chrono_tz::UTC)
}

async fn start(w: &World, redis_url: &str) -> Server {
    let queue = RedisQueue::connect(&RedisConfig {
        url: redis_url.to_owned(),
        prefix: w.prefix.clone(),
        cluster_nodes: Vec::new(),
    })
    .await
    .expect("Redis");
    let failed = failed_jobs_of(w).await;
    let metrics = Arc::new(Metrics::new());
    let stopping = CancellationToken::new();
    let shutdown = CancellationToken::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let state = HttpState {
        metrics: Arc::clone(&metrics),
        queue: defer_worker::laravel::queue::Queue::Redis(queue.clone()),
        queues: QUEUES.iter().map(|q| q.to_string()).collect(),
        default_queue: "default".into(),
        failed: failed.clone(),
        stopping: stopping.clone(),
        fleet: None,
        breakers: Default::default(),
    };
    let handle = tokio::spawn(serve(listener, state, shutdown.clone()));
    Server {
        addr,
        metrics,
        queue,
        failed,
        stopping,
        shutdown,
        handle,
    }
}

/// One sample as the strict parser read it.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

impl Sample {
    fn label(&self, k: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
}

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A strict reader of the text format 0.0.4: `# HELP`/`# TYPE` once per family, before its samples,
/// families contiguous; valid metric and label names; quoted, escaped label values; Go floats;
/// no duplicate series; histogram samples only as `_bucket` (with `le`), `_sum`, `_count`.
fn strict_parse(text: &str) -> Vec<Sample> {
    assert!(text.ends_with('\n'), "exposition must end with a newline");
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helps: HashSet<String> = HashSet::new();
    let mut done_families: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut seen: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = format!("line {}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kw, name, arg) = (parts.next(), parts.next(), parts.next());
            let name = name.unwrap_or_else(|| panic!("{at}: no metric name"));
            assert!(valid_name(name), "{at}: bad name");
            if current.as_deref() != Some(name) {
                if let Some(prev) = current.take() {
                    done_families.insert(prev);
                }
                assert!(!done_families.contains(name), "{at}: family split");
                current = Some(name.to_owned());
            }
            match kw {
                Some("HELP") => assert!(helps.insert(name.to_owned()), "{at}: second HELP"),
                Some("TYPE") => {
                    let t = arg.unwrap_or_default();
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&t),
                        "{at}: bad type"
                    );
                    assert!(
                        types.insert(name.to_owned(), t.to_owned()).is_none(),
                        "{at}: second TYPE"
                    );
                }
                _ => panic!("{at}: unknown comment"),
            }
            continue;
        }
        assert!(
            !line.is_empty() && !line.starts_with('#'),
            "{at}: stray line"
        );
        let name_end = line
            .find(['{', ' '])
            .unwrap_or_else(|| panic!("{at}: no value"));
        let name = &line[..name_end];
        assert!(valid_name(name), "{at}: bad metric name");
        let family = current
            .clone()
            .unwrap_or_else(|| panic!("{at}: sample before TYPE"));
        let ty = types
            .get(&family)
            .unwrap_or_else(|| panic!("{at}: family without TYPE"));
        if ty == "histogram" {
            assert!(
                [
                    format!("{family}_bucket"),
                    format!("{family}_sum"),
                    format!("{family}_count")
                ]
                .iter()
                .any(|n| n == name),
                "{at}: not a histogram sample of {family}"
            );
        } else {
            assert_eq!(name, family, "{at}: sample outside its family");
        }
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(after) = rest.strip_prefix('{') {
            let mut chars = after.char_indices().peekable();
            loop {
                let start = chars.peek().map(|&(i, _)| i).expect("label name");
                let mut end = start;
                for (i, c) in chars.by_ref() {
                    if c == '=' {
                        end = i;
                        break;
                    }
                }
                let lname = &after[start..end];
                assert!(
                    valid_name(lname) && !lname.starts_with("__"),
                    "{at}: bad label name {lname:?}"
                );
                assert_eq!(
                    chars.next().map(|(_, c)| c),
                    Some('"'),
                    "{at}: unquoted value"
                );
                let mut value = String::new();
                loop {
                    match chars.next().map(|(_, c)| c) {
                        Some('\\') => match chars.next().map(|(_, c)| c) {
                            Some('\\') => value.push('\\'),
                            Some('"') => value.push('"'),
                            Some('n') => value.push('\n'),
                            other => panic!("{at}: bad escape {other:?}"),
                        },
                        Some('"') => break,
                        Some('\n') | None => panic!("{at}: unterminated value"),
                        Some(c) => value.push(c),
                    }
                }
                assert!(
                    labels.iter().all(|(k, _): &(String, String)| k != lname),
                    "{at}: duplicate label"
                );
                labels.push((lname.to_owned(), value));
                match chars.next() {
                    Some((_, ',')) => continue,
                    Some((i, '}')) => {
                        rest = &after[i + 1..];
                        break;
                    }
                    other => panic!("{at}: expected , or }} after a label, got {other:?}"),
                }
            }
        }
        let value = rest
            .strip_prefix(' ')
            .unwrap_or_else(|| panic!("{at}: no space before value"));
        assert!(!value.contains(' '), "{at}: timestamps are not expected");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().unwrap_or_else(|_| panic!("{at}: bad value")),
        };
        if name.ends_with("_bucket") {
            let le = labels
                .iter()
                .find(|(k, _)| k == "le")
                .map(|(_, v)| v.as_str());
            let le = le.unwrap_or_else(|| panic!("{at}: bucket without le"));
            assert!(le == "+Inf" || le.parse::<f64>().is_ok(), "{at}: bad le");
        }
        let mut key: Vec<_> = labels.clone();
        key.sort();
        assert!(
            seen.insert(format!("{name}{key:?}")),
            "{at}: duplicate series"
        );
        out.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    for family in types.keys() {
        assert!(helps.contains(family), "{family} has no HELP");
    }
    out
}

fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    samples
        .iter()
        .find(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(v)))
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    find(samples, name, labels)
        .unwrap_or_else(|| panic!("no {name} {labels:?}"))
        .value
}

/// Scrapes `/metrics`, checks the content type, parses it both ways and returns the strict samples
/// and the crate's view.
async fn scrape(addr: SocketAddr) -> (Vec<Sample>, prometheus_parse::Scrape) {
    let r = get(addr, "/metrics").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.content_type, PROMETHEUS_TEXT);
    let strict = strict_parse(&r.body);
    let lines = r.body.lines().map(|l| Ok(l.to_owned()));
    let lib = prometheus_parse::Scrape::parse(lines).expect("prometheus-parse");
    (strict, lib)
}

fn lib_value(
    scrape: &prometheus_parse::Scrape,
    name: &str,
    labels: &[(&str, &str)],
) -> prometheus_parse::Value {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
        .unwrap_or_else(|| panic!("prometheus-parse has no {name} {labels:?}"))
        .value
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_scraped_parsed_and_move_as_jobs_finish() {
    let w = World::new(DbKind::Sqlite);
    let s = start(&w, REDIS_URL).await;
    // Real Laravel payloads on two queues, a delayed job that is already due, and a reservation.
    w.dispatch("whatsapp_notification", r#"{"order_id":42}"#, "whatsapp", 3);
    w.dispatch("cache_warming", r#"{"vendor_id":7}"#, "default", 2);
    s.queue
        .later_raw("default", br#"{"uuid":"d1","attempts":0}"#, now() - 30)
        .await
        .expect("ZADD");
    let popped = s.queue.pop("whatsapp", 90, 1).await.expect("pop");
    assert_eq!(popped.len(), 1);
    // A Laravel 12 style payload with createdAt at the head of `emails`.
    let created = now() - 120;
    s.queue
        .push_raw(
            "emails",
            format!(r#"{{"uuid":"e1","createdAt":{created},"attempts":0}}"#).as_bytes(),
        )
        .await
        .expect("push");

    let (m, lib) = scrape(s.addr).await;
    let q = |queue, state| {
        value(
            &m,
            "defer_worker_queue_jobs",
            &[("queue", queue), ("state", state)],
        )
    };
    assert_eq!(q("whatsapp", "ready"), 2.0);
    assert_eq!(q("whatsapp", "reserved"), 1.0);
    assert_eq!(q("default", "ready"), 2.0);
    assert_eq!(q("default", "delayed"), 1.0);
    assert_eq!(q("analytics", "ready"), 0.0);
    assert_eq!(q("emails", "ready"), 1.0);
    let age = value(
        &m,
        "defer_worker_queue_oldest_ready_age_seconds",
        &[("queue", "emails")],
    );
    assert!((120.0..125.0).contains(&age), "age {age}");
    assert_eq!(
        value(
            &m,
            "defer_worker_queue_oldest_ready_age_seconds",
            &[("queue", "analytics")]
        ),
        0.0,
        "empty queue"
    );
    assert!(
        find(
            &m,
            "defer_worker_queue_oldest_ready_age_seconds",
            &[("queue", "whatsapp")]
        )
        .is_none(),
        "Laravel 8/10 payloads carry no push time: unknown, not made up"
    );
    let overdue = value(
        &m,
        "defer_worker_queue_delayed_overdue_seconds",
        &[("queue", "default")],
    );
    assert!((30.0..35.0).contains(&overdue), "overdue {overdue}");
    assert_eq!(value(&m, "defer_worker_redis_up", &[]), 1.0);
    assert_eq!(value(&m, "defer_worker_db_up", &[]), 1.0);
    assert_eq!(value(&m, "defer_worker_failed_jobs", &[]), 0.0);
    assert_eq!(value(&m, "defer_worker_jobs_in_flight", &[]), 0.0);
    assert!(
        find(&m, "defer_worker_jobs_total", &[]).is_none(),
        "no job finished yet"
    );
    assert_eq!(
        lib_value(
            &lib,
            "defer_worker_queue_jobs",
            &[("queue", "whatsapp"), ("state", "ready")]
        ),
        prometheus_parse::Value::Gauge(2.0)
    );

    // Jobs finish: counters and the histogram move.
    let runs = [
        ("whatsapp", "whatsapp_notification", JobOutcome::Done, 0.003),
        ("whatsapp", "whatsapp_notification", JobOutcome::Done, 0.2),
        (
            "whatsapp",
            "whatsapp_notification",
            JobOutcome::Released,
            1.5,
        ),
        (
            "whatsapp",
            "whatsapp_notification",
            JobOutcome::Failed,
            200.0,
        ),
        ("default", "cache_warming", JobOutcome::Done, 0.04),
        ("default", "", JobOutcome::HandedOff, 0.001),
    ];
    let guard = s.metrics.track_in_flight();
    for (queue, action, outcome, secs) in runs {
        s.metrics
            .job_finished(queue, action, outcome, Duration::from_secs_f64(secs));
    }
    let (m, lib) = scrape(s.addr).await;
    drop(guard);
    let jobs = |queue, action, outcome| {
        value(
            &m,
            "defer_worker_jobs_total",
            &[("queue", queue), ("action", action), ("outcome", outcome)],
        )
    };
    let wa = "whatsapp_notification";
    assert_eq!(jobs("whatsapp", wa, "done"), 2.0);
    assert_eq!(jobs("whatsapp", wa, "released"), 1.0);
    assert_eq!(jobs("whatsapp", wa, "failed"), 1.0);
    assert_eq!(jobs("whatsapp", wa, "handed_off"), 0.0);
    assert_eq!(jobs("whatsapp", wa, "left_reserved"), 0.0);
    assert_eq!(jobs("default", "cache_warming", "done"), 1.0);
    assert_eq!(jobs("default", "_none", "handed_off"), 1.0);
    assert_eq!(value(&m, "defer_worker_jobs_in_flight", &[]), 1.0);
    assert_eq!(
        lib_value(
            &lib,
            "defer_worker_jobs_total",
            &[("queue", "whatsapp"), ("action", wa), ("outcome", "done")]
        ),
        prometheus_parse::Value::Counter(2.0)
    );

    // Histogram consistency for every series: buckets cumulative and monotonic, every bound
    // present, +Inf == _count == jobs counted, _sum == the run times given.
    let mut expected: HashMap<(&str, &str), (u64, f64)> = HashMap::new();
    for (queue, action, _, secs) in runs {
        let action = if action.is_empty() { "_none" } else { action };
        let e = expected.entry((queue, action)).or_default();
        e.0 += 1;
        e.1 += secs;
    }
    for ((queue, action), (count, sum)) in &expected {
        let labels = [("queue", *queue), ("action", *action)];
        let buckets: Vec<&Sample> = m
            .iter()
            .filter(|s| {
                s.name == "defer_worker_job_duration_seconds_bucket"
                    && labels.iter().all(|(k, v)| s.label(k) == Some(v))
            })
            .collect();
        assert_eq!(buckets.len(), BUCKETS.len() + 1, "{labels:?}");
        let mut last = 0.0;
        for (b, le) in buckets
            .iter()
            .zip(BUCKETS.iter().map(|b| b.to_string()).chain(["+Inf".into()]))
        {
            assert_eq!(b.label("le"), Some(le.as_str()), "bucket order");
            assert!(b.value >= last, "buckets must not decrease: {buckets:?}");
            last = b.value;
        }
        assert_eq!(last, *count as f64, "+Inf bucket == count");
        assert_eq!(
            value(&m, "defer_worker_job_duration_seconds_count", &labels),
            *count as f64
        );
        let got = value(&m, "defer_worker_job_duration_seconds_sum", &labels);
        assert!((got - sum).abs() < 1e-6, "sum {got} != {sum}");
        match lib_value(&lib, "defer_worker_job_duration_seconds", &labels) {
            prometheus_parse::Value::Histogram(h) => {
                assert_eq!(h.len(), BUCKETS.len() + 1);
                assert_eq!(h.last().map(|c| c.count), Some(*count as f64));
            }
            other => panic!("not a histogram: {other:?}"),
        }
    }
    let wa_labels = [("queue", "whatsapp"), ("action", wa)];
    let bucket = |le| {
        let mut l = wa_labels.to_vec();
        l.push(("le", le));
        value(&m, "defer_worker_job_duration_seconds_bucket", &l)
    };
    assert_eq!(bucket("0.005"), 1.0, "3 ms");
    assert_eq!(bucket("0.25"), 2.0, "+200 ms");
    assert_eq!(bucket("2.5"), 3.0, "+1.5 s");
    assert_eq!(bucket("120"), 3.0, "200 s is above every bound");
    assert_eq!(bucket("+Inf"), 4.0);

    // Shutdown: serve returns and the port is closed.
    s.shutdown.cancel();
    let r = tokio::time::timeout(Duration::from_secs(5), s.handle)
        .await
        .expect("serve returns after shutdown");
    assert!(r.expect("join").is_ok());
    assert!(TcpStream::connect(s.addr).await.is_err(), "port still open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_is_the_apps_json_with_real_numbers() {
    let w = World::new(DbKind::Sqlite);
    let s = start(&w, REDIS_URL).await;
    w.dispatch("cache_warming", r#"{"vendor_id":7}"#, "default", 2);
    w.dispatch("whatsapp_notification", r#"{"order_id":42}"#, "whatsapp", 3);
    s.queue
        .later_raw("default", br#"{"uuid":"d1","attempts":0}"#, now() + 60)
        .await
        .expect("ZADD");
    for uuid in ["f1", "f2"] {
        s.failed
            .log(
                "redis",
                "default",
                &format!(r#"{{"uuid":"{uuid}"}}"#),
                "Exception: x",
            )
            .await
            .expect("failed_jobs row");
    }

    let r = get(s.addr, "/stats").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.content_type, "application/json");
    let j: Json = serde_json::from_str(&r.body).expect("JSON");
    let expected = serde_json::json!({
        "queue_system": "Laravel 10 Background Jobs",
        "performance_equivalent": "Laravel 12 Deferred Functions",
        "stats": {
            "pending_jobs": 3,
            "failed_jobs": 2,
            "queues": ["whatsapp", "analytics", "emails", "cache", "default"],
            "workers_active": true,
            "pending_per_queue": {"whatsapp": 3, "analytics": 0, "emails": 0, "cache": 0, "default": 3}
        }
    });
    assert_eq!(j, expected);
    // Same key order as the app's JSON.
    let keys: Vec<&String> = j["stats"].as_object().expect("object").keys().collect();
    assert_eq!(
        keys,
        [
            "pending_jobs",
            "failed_jobs",
            "queues",
            "workers_active",
            "pending_per_queue"
        ]
    );
    assert!(r.body.starts_with(r#"{"queue_system":"#), "{}", r.body);

    // The other routes.
    let h = get(s.addr, "/health").await;
    assert_eq!((h.status, h.body.as_str()), (StatusCode::OK, "ok\n"));
    assert_eq!(get(s.addr, "/nope").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        request(s.addr, Method::POST, "/stats").await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    let head = request(s.addr, Method::HEAD, "/health").await;
    assert_eq!((head.status, head.body.as_str()), (StatusCode::OK, ""));

    // Shutting down: not ready, workers no longer active, metrics still served.
    s.stopping.cancel();
    let r = get(s.addr, "/ready").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.body.contains("shutting down"), "{}", r.body);
    let j: Json = serde_json::from_str(&get(s.addr, "/stats").await.body).expect("JSON");
    assert_eq!(j["stats"]["workers_active"], Json::Bool(false));
    scrape(s.addr).await;
    s.shutdown.cancel();
}

/// A TCP proxy to the real Redis that can be closed (its port then refuses connections) and
/// reopened on the same port.
struct Proxy {
    addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Proxy {
    async fn start(addr: &str) -> Proxy {
        let listener = TcpListener::bind(addr).await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            // Dropping the set (when the token fires) aborts every open connection.
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    r = listener.accept() => {
                        let Ok((mut client, _)) = r else { continue };
                        conns.spawn(async move {
                            if let Ok(mut redis) = TcpStream::connect("127.0.0.1:6379").await {
                                let _ = tokio::io::copy_bidirectional(&mut client, &mut redis).await;
                            }
                        });
                    }
                    _ = token.cancelled() => break,
                }
            }
        });
        Proxy { addr, stop, task }
    }

    async fn close(self) -> SocketAddr {
        self.stop.cancel();
        self.task.await.expect("proxy task");
        self.addr
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_503_while_redis_is_unreachable_and_200_again_after() {
    let w = World::new(DbKind::Sqlite);
    let proxy = Proxy::start("127.0.0.1:0").await;
    let s = start(&w, &format!("redis://{}/0", proxy.addr)).await;
    let r = get(s.addr, "/ready").await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "ready\n"));

    let port = proxy.close().await;
    let r = poll(s.addr, "/ready", 8, |r| {
        r.status == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert!(r.body.contains("redis unreachable"), "{}", r.body);
    // The process is alive, and /metrics still answers, saying Redis is down and without depths.
    assert_eq!(get(s.addr, "/health").await.status, StatusCode::OK);
    let (m, _) = scrape(s.addr).await;
    assert_eq!(value(&m, "defer_worker_redis_up", &[]), 0.0);
    assert_eq!(value(&m, "defer_worker_db_up", &[]), 1.0);
    assert!(find(&m, "defer_worker_queue_jobs", &[]).is_none());
    let r = get(s.addr, "/stats").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.body, r#"{"error":"redis unreachable"}"#);

    // Redis comes back on the same address: ready again, without restarting anything.
    let proxy = Proxy::start(&port.to_string()).await;
    let r = poll(s.addr, "/ready", 8, |r| r.status == StatusCode::OK).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (m, _) = scrape(s.addr).await;
    assert_eq!(value(&m, "defer_worker_redis_up", &[]), 1.0);
    assert_eq!(
        value(
            &m,
            "defer_worker_queue_jobs",
            &[("queue", "default"), ("state", "ready")]
        ),
        0.0
    );
    s.shutdown.cancel();
    proxy.close().await;
}

/// The real binary with `--http`: PHP dispatches jobs, the worker runs them, and the counters a
/// scraper reads move by exactly what ran (done and failed by action), with the depth back to 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_with_http_serves_metrics_that_count_the_jobs_it_ran() {
    let w = World::new(DbKind::Sqlite);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let config = "[actions.analytics_tracking]\nkind = \"log\"\n\n\
                  [actions.email_notification]\nkind = \"fail\"\nmessage = \"SMTP refused\"\n";
    let ours = w.worker(&["--queue=default", &format!("--http={addr}")], config);
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "--http never listened; log:\n{}",
            ours.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(get(addr, "/health").await.status, StatusCode::OK);
    let (m, _) = scrape(addr).await;
    assert!(
        find(&m, "defer_worker_jobs_total", &[]).is_none(),
        "no job yet"
    );

    w.dispatch("analytics_tracking", r#"{"order_id":1}"#, "default", 5);
    w.dispatch("email_notification", r#"{"order_id":2}"#, "default", 2);
    let counted = |m: &[Sample], action, outcome| {
        find(
            m,
            "defer_worker_jobs_total",
            &[
                ("queue", "default"),
                ("action", action),
                ("outcome", outcome),
            ],
        )
        .map_or(0.0, |s| s.value)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let m = loop {
        let (m, _) = scrape(addr).await;
        if counted(&m, "analytics_tracking", "done") == 5.0
            && counted(&m, "email_notification", "failed") == 2.0
        {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "counters never reached 5 done + 2 failed; log:\n{}",
            ours.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(counted(&m, "analytics_tracking", "failed"), 0.0);
    assert_eq!(counted(&m, "email_notification", "done"), 0.0);
    assert_eq!(value(&m, "defer_worker_jobs_in_flight", &[]), 0.0);
    assert_eq!(value(&m, "defer_worker_failed_jobs", &[]), 2.0);
    assert_eq!(
        value(
            &m,
            "defer_worker_job_duration_seconds_count",
            &[("queue", "default"), ("action", "analytics_tracking")]
        ),
        5.0
    );
    assert_eq!(
        value(
            &m,
            "defer_worker_queue_jobs",
            &[("queue", "default"), ("state", "ready")]
        ),
        0.0
    );
    let ready = get(addr, "/ready").await;
    assert_eq!(ready.status, StatusCode::OK);
}
