//! The per-sender circuit breaker through the real binary: PHP's app helper dispatches 200
//! `whatsapp_notification` jobs, `defer-worker work` sends them to a Cloud API stub that answers as
//! Meta does, and after the first 40 the stub answers a sender-stopping code (190 with HTTP 401, 368
//! with 403, 131048 with 400, Meta's bodies) until the test lets it accept again. Asserted: during the
//! block only the probes reach the stub (with one job in flight, every blocked request after the first
//! is a probe, at least one cool-down after the previous one), the error line names the code and what
//! to do, `/metrics` shows `defer_worker_whatsapp_breaker_open` 1 then 0 and `/ready` names the
//! sender; afterwards every one of the 200 jobs was accepted exactly once (by its
//! `biz_opaque_callback_data`), each on its first attempt (hand-backs use none), and failed_jobs is
//! empty. `defer-worker monitor` prints the sender's breaker open, then closed. Cool-downs are 1 s here
//! (`breaker = { cooldown_s = { … = 1 } }`).

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::actions_whatsapp::ok;
use crate::app_data::load_fixture_app;
use crate::support::{log_time, DbKind, World};

const TOKEN: &str = "EAAG-breaker-token";
const JOBS: usize = 200;
/// Requests accepted before the stub starts blocking.
const BEFORE_BLOCK: usize = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Accepting,
    Blocking,
    Recovered,
}

/// One request the stub saw.
#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    blocked: bool,
    uuid: String,
}

#[derive(Debug)]
struct Stub {
    mode: Mode,
    seen: Vec<Seen>,
}

/// Meta's Cloud API for one sender: accepts [`BEFORE_BLOCK`] messages, then answers `error` (with
/// `status`) until [`Mode::Recovered`].
#[derive(Clone)]
struct Meta {
    state: Arc<Mutex<Stub>>,
    status: u16,
    error: Json,
}

impl Respond for Meta {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body: Json = serde_json::from_slice(&req.body).unwrap_or_default();
        let uuid = body["biz_opaque_callback_data"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut st = self.state.lock().unwrap();
        if st.mode == Mode::Accepting && st.seen.len() >= BEFORE_BLOCK {
            st.mode = Mode::Blocking;
        }
        let blocked = st.mode == Mode::Blocking;
        let n = st.seen.len();
        st.seen.push(Seen {
            at: Instant::now(),
            blocked,
            uuid,
        });
        if blocked {
            ResponseTemplate::new(self.status).set_body_json(self.error.clone())
        } else {
            ok(&format!("wamid.HBgLMjI1MDcwNzAwMDAwMRUCABIYF{n:05}"))
        }
    }
}

/// Meta's error body for `code`, as the Cloud API sends it.
fn meta_body(code: i64) -> (u16, Json) {
    let (status, message, details) = match code {
        190 => (
            401,
            "Error validating access token: Session has expired on Sunday, 06-Dec-26 10:00:00 PST.",
            None,
        ),
        368 => (
            403,
            "Temporarily blocked for policies violations",
            Some("The account is temporarily blocked for policy violations"),
        ),
        131048 => (
            400,
            "Spam rate limit hit",
            Some("Message failed to send because there are restrictions on how many messages can be sent from this phone number."),
        ),
        _ => unreachable!("not a breaker code"),
    };
    let mut error = json!({
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "AwXyZ0123456789",
    });
    if let Some(d) = details {
        error["error_data"] = json!({"messaging_product": "whatsapp", "details": d});
    }
    (status, json!({ "error": error }))
}

/// `defer-worker monitor whatsapp` with the world's environment: its standard output.
fn monitor(w: &World) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_defer-worker"))
        .args(["monitor", "whatsapp", "--max=100000"])
        .env_clear()
        .envs(w.env())
        .output()
        .expect("run defer-worker monitor");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_addr() -> SocketAddr {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port();
    ([127, 0, 0, 1], port).into()
}

async fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let r = reqwest::get(format!("http://{addr}{path}")).await.ok()?;
    let status = r.status().as_u16();
    Some((status, r.text().await.ok()?))
}

/// `defer_worker_whatsapp_breaker_open{sender="<sender>"}` in a scrape, if present.
fn breaker_gauge(metrics: &str, sender: &str) -> Option<f64> {
    let prefix = format!("defer_worker_whatsapp_breaker_open{{sender=\"{sender}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.trim().parse().ok())
}

/// Polls until `pred` holds (panics after `secs`, with the worker's log).
async fn until(secs: u64, what: &str, log: impl Fn() -> String, pred: impl AsyncFnPred) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !pred.check().await {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; log:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A condition polled by [`until`].
trait AsyncFnPred {
    async fn check(&self) -> bool;
}

struct Gauge<'a> {
    addr: SocketAddr,
    sender: &'a str,
    want: f64,
}

impl AsyncFnPred for Gauge<'_> {
    async fn check(&self) -> bool {
        match get(self.addr, "/metrics").await {
            Some((200, m)) => breaker_gauge(&m, self.sender) == Some(self.want),
            _ => false,
        }
    }
}

/// At least `.1` probe lines in the log `.0` reads.
struct Probes<F: Fn() -> String>(F, usize);

impl<F: Fn() -> String> AsyncFnPred for Probes<F> {
    async fn check(&self) -> bool {
        (self.0)().matches("this message is the probe").count() >= self.1
    }
}

/// Runs 200 jobs through a block of `code` with `concurrency` jobs in flight; checks everything the
/// module header lists. `remedy` is a piece of the error line's "what to do".
async fn block_and_recover(code: i64, concurrency: usize, remedy: &str) {
    let mut w = World::new(DbKind::Sqlite);
    load_fixture_app(&w);
    // A sender id of its own (digits, like Meta's): the gauge's label.
    let sender: String = std::iter::once('9')
        .chain(
            w.prefix
                .chars()
                .filter_map(|c| c.to_digit(16))
                .map(|d| char::from(b'0' + (d % 10) as u8)),
        )
        .collect();
    let (status, error) = meta_body(code);
    let state = Arc::new(Mutex::new(Stub {
        mode: Mode::Accepting,
        seen: Vec::new(),
    }));
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(Meta {
            state: Arc::clone(&state),
            status,
            error,
        })
        .mount(&server)
        .await;
    for (k, v) in [
        ("WHATSAPP_API_URL", format!("{}/v25.0", server.uri())),
        ("WHATSAPP_API_TOKEN", TOKEN.to_owned()),
        ("WHATSAPP_PHONE_NUMBER_ID", sender.clone()),
        ("APP_URL", "https://resto.test".to_owned()),
        // The store `monitor` reads the published breakers from (the test's own Redis prefix).
        ("CACHE_DRIVER", "redis".to_owned()),
    ] {
        w.extra.push((k.to_owned(), v));
    }
    let uuids: BTreeSet<String> = w
        .dispatch(
            "whatsapp_notification",
            r#"{"order_id":2}"#,
            "whatsapp",
            JOBS,
        )
        .into_iter()
        .collect();
    assert_eq!(uuids.len(), JOBS);

    // Every job goes to the same restaurant: no per-recipient spacing, and a 1 s cool-down.
    let config = format!(
        "[actions.whatsapp_notification]\nkind = \"whatsapp\"\n\
         rate_limit = {{ per_recipient_ms = 0 }}\nbreaker = {{ cooldown_s = {{ {code} = 1 }} }}\n"
    );
    let addr = free_addr();
    let mut worker = w.worker(
        &[
            "--queue=whatsapp",
            "--tries=3",
            "--backoff=1",
            &format!("--concurrency={concurrency}"),
            &format!("--http={addr}"),
        ],
        &config,
    );

    // The block opens the breaker: the gauge and /ready say so, and two probes meet the block.
    let open = Gauge {
        addr,
        sender: &sender,
        want: 1.0,
    };
    until(30, "the breaker gauge at 1", || worker.log_text(), open).await;
    let (ready_status, ready) = get(addr, "/ready").await.expect("/ready answers");
    assert_eq!(ready_status, 200, "{ready}");
    assert!(
        ready.contains(&format!(
            "whatsapp circuit breaker open: sender {sender} (Meta error {code})"
        )),
        "{ready}"
    );
    // `work` publishes the open breakers every 2 s for `monitor`.
    let open_line = format!("WhatsApp sender {sender}: circuit breaker OPEN (Meta error {code})");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !monitor(&w).contains(&open_line) {
        assert!(Instant::now() < deadline, "{}", monitor(&w));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Two probes, counted in the worker's log: counting blocked requests would also count the jobs
    // that were in flight when the block began (up to `concurrency` of them, none a probe).
    until(
        30,
        "two probes during the block",
        || worker.log_text(),
        Probes(|| worker.log_text(), 2),
    )
    .await;
    state.lock().unwrap().mode = Mode::Recovered;

    worker.wait_for(Duration::from_secs(40), "200 jobs done", |logs| {
        logs.iter().filter(|l| l["outcome"] == "done").count() >= JOBS
    });
    let closed = Gauge {
        addr,
        sender: &sender,
        want: 0.0,
    };
    until(
        10,
        "the breaker gauge back at 0",
        || worker.log_text(),
        closed,
    )
    .await;
    let (_, metrics) = get(addr, "/metrics").await.expect("/metrics answers");
    // The entry is forgotten at the next publication after the close.
    let deadline = Instant::now() + Duration::from_secs(10);
    let closed_line = format!("WhatsApp sender {sender}: circuit breaker closed");
    while !monitor(&w).contains(&closed_line) {
        assert!(Instant::now() < deadline, "{}", monitor(&w));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    worker.signal("TERM");
    assert!(worker.wait(Duration::from_secs(20)).success());

    // Nothing failed, and each job was accepted exactly once, on its first attempt.
    let failed = w.failed_rows().await;
    assert!(failed.is_empty(), "failed_jobs: {failed:?}");
    let seen = state.lock().unwrap().seen.clone();
    let mut accepted: HashMap<&str, usize> = HashMap::new();
    for s in seen.iter().filter(|s| !s.blocked) {
        *accepted.entry(s.uuid.as_str()).or_default() += 1;
    }
    assert_eq!(accepted.len(), JOBS, "every job sent");
    assert!(
        accepted.values().all(|&n| n == 1),
        "a job was accepted twice"
    );
    assert_eq!(
        accepted
            .keys()
            .map(|u| u.to_string())
            .collect::<BTreeSet<_>>(),
        uuids
    );
    let logs = worker.logs();
    let done: Vec<&Json> = logs.iter().filter(|l| l["outcome"] == "done").collect();
    assert_eq!(done.len(), JOBS);
    assert!(
        done.iter().all(|l| l["attempt"] == 1),
        "a hand-back used an attempt"
    );
    assert!(logs.iter().any(|l| l["outcome"] == "handed_back"));
    let handed_back = metrics
        .lines()
        .find(|l| {
            l.starts_with("defer_worker_jobs_total{")
                && l.contains("action=\"whatsapp_notification\"")
                && l.contains("outcome=\"handed_back\"")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(handed_back >= 1.0, "{metrics}");

    // The error line names the code and what the operator must do.
    let opened: Vec<&Json> = logs
        .iter()
        .filter(|l| {
            l["level"] == "ERROR"
                && l["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("circuit breaker open for sender"))
        })
        .collect();
    assert!(
        !opened.is_empty(),
        "no error line; log:\n{}",
        worker.log_text()
    );
    let line = opened[0]["message"].as_str().unwrap();
    assert!(line.contains(&format!("after Meta error {code}")), "{line}");
    assert!(line.contains(remedy), "{line}");
    assert!(!worker.log_text().contains(TOKEN), "the token leaked");

    // During the block only probes went out: at most the jobs already in flight when it opened, plus
    // one per probe, each probe a cool-down after the one before.
    let blocked: Vec<&Seen> = seen.iter().filter(|s| s.blocked).collect();
    let probes: Vec<f64> = logs
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("this message is the probe"))
        })
        .map(log_time)
        .collect();
    assert!(probes.len() >= 2, "probes: {probes:?}");
    assert!(
        blocked.len() <= concurrency + probes.len(),
        "{} requests during the block, {} probes, {concurrency} in flight",
        blocked.len(),
        probes.len()
    );
    for pair in probes.windows(2) {
        assert!(pair[1] - pair[0] >= 0.95, "probes too close: {probes:?}");
    }
    if concurrency == 1 {
        for pair in blocked.windows(2) {
            let gap = pair[1].at - pair[0].at;
            assert!(
                gap >= Duration::from_secs(1),
                "a request during the block that was no probe: {gap:?} after the previous one"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_190_holds_the_jobs_until_a_probe_is_accepted() {
    block_and_recover(190, 1, "put a new token in WHATSAPP_API_TOKEN").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_block_368_holds_the_jobs_until_a_probe_is_accepted() {
    block_and_recover(368, 4, "request a review (appeal)").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spam_rate_limit_131048_holds_the_jobs_until_a_probe_is_accepted() {
    block_and_recover(131048, 4, "quality rating in WhatsApp Manager").await;
}
