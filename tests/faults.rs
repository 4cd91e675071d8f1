//! Faults injected under the real `defer-worker work` binary running the native actions against the
//! seeded app database (MariaDB, `fixtures/app` plus clones of order 1 so every job has an order of its
//! own): failed_jobs unusable while jobs fail, the SMTP server (`tests/smtp/server.py`) killed and
//! answering 4xx, the WhatsApp Cloud API stub answering 503 / 130429 / hanging, and kill -9 in a run of
//! WhatsApp and e-mail jobs. Each ends with a ledger check: every dispatched uuid either had its side
//! effect (the mails / messages the far side received, which name the order) or is in failed_jobs;
//! duplicates are counted, printed, and 0 unless a kill of the worker allows them. No timing is asserted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::{now_f64, repo, DbKind, WorkerProc, World};

/// First id of the cloned orders; order `FIRST + i` has order_number `FLT<id>Z`.
const FIRST: i64 = 1001;
const CUSTOMER: &str = "jean.dupont@example.com";

fn mysql(db: &str, sql: &str) {
    let out = Command::new("mysql")
        .args(["-h127.0.0.1", "-uroot", db, "-e", sql])
        .output()
        .expect("mysql client");
    assert!(
        out.status.success(),
        "mysql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A MariaDB world with the app's schema and seed, plus `clones` copies of order 1 (vendor 1, customer
/// jean.dupont@example.com) with ids from [`FIRST`] and order numbers `FLT<id>Z`.
fn seeded(clones: usize) -> World {
    let w = World::new(DbKind::MySql);
    let out = Command::new(repo().join("fixtures/app/load.sh"))
        .args(["mysql", &w.db_name])
        .output()
        .expect("run fixtures/app/load.sh");
    assert!(
        out.status.success(),
        "load.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut sql = String::from("CREATE TEMPORARY TABLE t AS SELECT * FROM orders WHERE id = 1;");
    for i in 0..clones as i64 {
        let id = FIRST + i;
        sql.push_str(&format!(
            "UPDATE t SET id = {id}, order_number = 'FLT{id}Z'; INSERT INTO orders SELECT * FROM t;"
        ));
    }
    mysql(&w.db_name, &sql);
    w
}

/// One `defer()` per order; uuid → order id.
fn dispatch_per_order(w: &World, action: &str, orders: &[i64]) -> BTreeMap<String, i64> {
    orders
        .iter()
        .map(|id| {
            let uuid = w
                .dispatch(action, &format!(r#"{{"order_id":{id}}}"#), "default", 1)
                .remove(0);
            (uuid, *id)
        })
        .collect()
}

/// The cloned order a text names (`…/track-order/FLT1001Z`).
fn order_in(text: &str) -> Option<i64> {
    let start = text.find("FLT")? + 3;
    let end = start + text[start..].find('Z')?;
    text[start..end].parse().ok()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn count(logs: &[Json], outcome: &str) -> usize {
    logs.iter().filter(|l| l["outcome"] == outcome).count()
}

/// Duplicates in a per-order count of side effects: Σ (n − 1) over orders seen.
fn duplicates(seen: &HashMap<i64, usize>) -> usize {
    seen.values().map(|n| n.saturating_sub(1)).sum()
}

/// The ledger check: every job had its side effect or is in failed_jobs (not both); returns how many
/// were delivered and how many failed.
fn ledger_check(
    what: &str,
    jobs: &BTreeMap<String, i64>,
    seen: &HashMap<i64, usize>,
    failed: &[String],
) -> (usize, usize) {
    let failed: HashSet<&String> = failed.iter().collect();
    let mut delivered = 0;
    for (uuid, order) in jobs {
        let got = seen.get(order).copied().unwrap_or(0);
        let is_failed = failed.contains(uuid);
        assert!(
            got > 0 || is_failed,
            "{what}: job {uuid} (order {order}) neither delivered nor in failed_jobs: lost"
        );
        assert!(
            !(got > 0 && is_failed),
            "{what}: job {uuid} (order {order}) delivered and in failed_jobs"
        );
        delivered += usize::from(got > 0);
    }
    (delivered, failed.len())
}

fn failed_uuids(w: &World) -> Vec<String> {
    w.failed().into_iter().map(|j| j.uuid).collect()
}

/// Runs until the queue is empty (ready, delayed and reserved), then stops the worker with SIGTERM.
fn drain(w: &World, worker: &mut WorkerProc, timeout: Duration) {
    let left = w.wait_until_empty("default", timeout);
    assert_eq!(left, 0, "jobs left on the queue after {timeout:?}");
    worker.signal("TERM");
    assert!(worker.wait(Duration::from_secs(15)).success());
}

// ---------------------------------------------------------------------------------------------------
// The WhatsApp Cloud API stub: a mode switched by the test, and the orders whose message got a 200.

const OK: u8 = 0;
const UNAVAILABLE: u8 = 1;
const RATE_LIMITED: u8 = 2;
const HANGING: u8 = 3;

#[derive(Clone, Default)]
struct Meta {
    mode: Arc<AtomicU8>,
    /// Order → messages answered 200.
    accepted: Arc<Mutex<HashMap<i64, usize>>>,
    refused: Arc<Mutex<usize>>,
}

impl Meta {
    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }

    fn accepted(&self) -> HashMap<i64, usize> {
        self.accepted.lock().unwrap().clone()
    }

    fn total(&self) -> usize {
        self.accepted.lock().unwrap().values().sum()
    }

    fn refused(&self) -> usize {
        *self.refused.lock().unwrap()
    }
}

fn meta_error(status: u16, code: i64, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "Ab"}
    }))
}

impl Respond for Meta {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body: Json = serde_json::from_slice(&req.body).unwrap_or_default();
        let text = body["text"]["body"].as_str().unwrap_or_default();
        let order = order_in(text).unwrap_or(-1);
        match self.mode.load(Ordering::SeqCst) {
            OK => {
                *self.accepted.lock().unwrap().entry(order).or_default() += 1;
                ResponseTemplate::new(200).set_body_json(json!({
                    "messaging_product": "whatsapp",
                    "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                    "messages": [{"id": format!("wamid.{order}")}],
                }))
            }
            mode => {
                *self.refused.lock().unwrap() += 1;
                match mode {
                    UNAVAILABLE => meta_error(503, 2, "(#2) Service temporarily unavailable"),
                    RATE_LIMITED => meta_error(429, 130429, "(#130429) Rate limit hit")
                        .insert_header("Retry-After", "1"),
                    // Past WHATSAPP_TIMEOUT: the worker gives up before the (refusing) answer.
                    _ => meta_error(500, 1, "(#1) An unknown error occurred")
                        .set_delay(Duration::from_secs(3)),
                }
            }
        }
    }
}

/// The stub on its own server thread; `rt` only has to outlive the test.
struct Stub {
    rt: tokio::runtime::Runtime,
    server: MockServer,
    meta: Meta,
}

impl Stub {
    fn start() -> Stub {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let meta = Meta::default();
        let server = rt.block_on(async {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .respond_with(meta.clone())
                .mount(&server)
                .await;
            server
        });
        Stub { rt, server, meta }
    }

    fn env(&self) -> Vec<(String, String)> {
        [
            ("WHATSAPP_API_URL", format!("{}/v25.0", self.server.uri())),
            ("WHATSAPP_API_TOKEN", "EAAG-test-token".into()),
            ("WHATSAPP_PHONE_NUMBER_ID", "1555000111".into()),
            ("WHATSAPP_TIMEOUT", "1".into()),
            ("APP_URL", "https://resto.test".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

const WHATSAPP: &str = "[actions.whatsapp_notification]\nkind = \"whatsapp\"\n\
                        rate_limit = { per_recipient_ms = 0 }\n";
const EMAIL: &str = "[actions.email_notification]\nkind = \"email\"\nvendor = false\n\
                     vendor_smtp = false\ntimeout_secs = 3\n";

// ---------------------------------------------------------------------------------------------------
// The SMTP server: tests/smtp/server.py without TLS or AUTH on a port of our own, stopped and started.

struct Smtp {
    port: u16,
    maildir: PathBuf,
    rules: PathBuf,
    child: Option<(Child, ChildStdin)>,
}

impl Smtp {
    fn start(dir: &std::path::Path) -> Smtp {
        let maildir = dir.join("mail");
        let mut s = Smtp {
            port: free_port(),
            rules: dir.join("smtp-rules.json"),
            maildir,
            child: None,
        };
        s.up();
        s
    }

    fn up(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut child = Command::new("/usr/bin/python3")
                .arg(repo().join("tests/smtp/server.py"))
                .args(["--maildir", self.maildir.to_str().unwrap(), "--tls", "none"])
                .args(["--port", &self.port.to_string()])
                .args(["--rules", self.rules.to_str().unwrap()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("start tests/smtp/server.py (apt-get install python3-aiosmtpd)");
            let mut line = String::new();
            let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
            if line.starts_with("READY ") {
                let stdin = child.stdin.take().unwrap();
                self.child = Some((child, stdin));
                return;
            }
            // The port may still be held by the connections of the stopped server: try again.
            let _ = child.kill();
            let _ = child.wait();
            assert!(Instant::now() < deadline, "SMTP server did not restart");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Gone at once, open connections included (SIGKILL).
    fn down(&mut self) {
        if let Some((mut c, _stdin)) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The customer's RCPT gets `reply` (a 4xx) until [`Smtp::clear`].
    fn refuse(&self, reply: &str) {
        std::fs::write(&self.rules, json!({"rcpt": {CUSTOMER: reply}}).to_string()).unwrap();
    }

    fn clear(&self) {
        std::fs::write(&self.rules, "{}").unwrap();
    }

    /// Order → mails received (the server's parsed text part names the order).
    fn received(&self) -> HashMap<i64, usize> {
        let mut seen = HashMap::new();
        for entry in std::fs::read_dir(&self.maildir).into_iter().flatten() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let rec: Json = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let text = rec["message"]["text"].as_str().unwrap_or_default();
            let order = order_in(text).unwrap_or(-1);
            *seen.entry(order).or_default() += 1;
        }
        seen
    }

    fn total(&self) -> usize {
        self.received().values().sum()
    }

    fn env(&self) -> Vec<(String, String)> {
        [
            ("MAIL_MAILER", "smtp".to_owned()),
            ("MAIL_HOST", "127.0.0.1".to_owned()),
            ("MAIL_PORT", self.port.to_string()),
            ("MAIL_ENCRYPTION", "null".to_owned()),
            ("MAIL_FROM_ADDRESS", "shop@resto.test".to_owned()),
            ("APP_URL", "https://resto.test".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        self.down();
    }
}

fn wait_for(what: &str, timeout: Duration, pred: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------------------

/// failed_jobs unusable (the table renamed away, as a botched migration would) while 12 jobs fail
/// permanently: none is lost or written meanwhile (each stays in Redis, reserved and extended, or
/// ready); once the table is back each is in failed_jobs exactly once.
#[test]
fn failed_jobs_unusable_while_jobs_fail_then_each_is_written_once() {
    let w = seeded(0);
    // Orders that do not exist: the email action fails them permanently ("Order N not found").
    let orders: Vec<i64> = (0..12).map(|i| 990_000 + i).collect();
    // Started with the table there (a worker refuses to start without it), which then goes away.
    let mut worker = w.worker(
        &["--queue=default", "--concurrency=4", "--retry-after=2"],
        "[actions.email_notification]\nkind = \"email\"\n",
    );
    worker.wait_for(Duration::from_secs(10), "the worker to start", |l| {
        l.iter().any(|l| l["message"] == "worker started")
    });
    mysql(&w.db_name, "RENAME TABLE failed_jobs TO failed_jobs_parked");
    let jobs = dispatch_per_order(&w, "email_notification", &orders);
    let insert_errors = |l: &[Json]| -> HashSet<String> {
        l.iter()
            .filter(|l| {
                l["message"]
                    == "cannot write failed_jobs row; the job stays reserved until it is written"
            })
            .filter_map(|l| {
                l["uuid"]
                    .as_str()
                    .or(l["span"]["uuid"].as_str())
                    .map(String::from)
            })
            .collect()
    };
    // Each of the 4 slots holds a failing job and retries its insert, past retry_after (2 s).
    let started = Instant::now();
    worker.wait_for(
        Duration::from_secs(30),
        "4 jobs retrying their insert",
        |l| insert_errors(l).len() >= 4 && started.elapsed() > Duration::from_secs(5),
    );
    let logs = worker.logs();
    let waiting = insert_errors(&logs);
    assert_eq!(count(&logs, "failed"), 0, "nothing reported failed yet");
    assert_eq!(
        w.queue_len("default"),
        jobs.len(),
        "every job still in Redis"
    );
    let reserved = w.zrange(&w.key("default:reserved")).len();
    assert_eq!(
        reserved,
        waiting.len(),
        "the jobs waiting for their row stay reserved"
    );
    let scores: Vec<(Vec<u8>, f64)> = redis::cmd("ZRANGE")
        .arg(w.key("default:reserved"))
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(&mut w.redis())
        .unwrap();
    assert!(
        scores.iter().all(|(_, at)| *at > now_f64()),
        "their reservations are extended past retry_after"
    );
    eprintln!(
        "failed_jobs down: {} jobs retrying their insert, {} error lines, {} jobs in Redis ({} reserved)",
        waiting.len(),
        logs.iter()
            .filter(|l| l["message"]
                == "cannot write failed_jobs row; the job stays reserved until it is written")
            .count(),
        w.queue_len("default"),
        reserved
    );

    mysql(&w.db_name, "RENAME TABLE failed_jobs_parked TO failed_jobs");
    drain(&w, &mut worker, Duration::from_secs(40));
    let rows = failed_uuids(&w);
    let distinct: HashSet<&String> = rows.iter().collect();
    assert_eq!(rows.len(), jobs.len(), "one row per job: {rows:?}");
    assert_eq!(distinct.len(), jobs.len(), "no row twice");
    assert!(
        jobs.keys().all(|u| distinct.contains(u)),
        "every job has its row"
    );
    assert_eq!(count(&worker.logs(), "failed"), jobs.len());
    eprintln!(
        "failed_jobs restored: {} rows for {} jobs, 0 lost, 0 twice",
        rows.len(),
        jobs.len()
    );
}

/// The SMTP server answering 451 to the customer, killed, back, answering 451 and killed again, back,
/// during 20 e-mail jobs: every job's mail arrives (or the job is in failed_jobs), none twice.
#[test]
fn smtp_server_flapping_loses_no_mail_and_sends_none_twice() {
    let mut w = seeded(20);
    let dir = tempfile::tempdir().unwrap();
    let mut smtp = Smtp::start(dir.path());
    smtp.clear();
    w.extra.extend(smtp.env());
    let orders: Vec<i64> = (0..20).map(|i| FIRST + i).collect();
    let jobs = dispatch_per_order(&w, "email_notification", &orders);
    // Starts refusing; the worker is slowed (2 slots, 0.3 s rest) so the later phases find work.
    smtp.refuse("451 4.3.0 Try again later");
    let mut worker = w.worker(
        &[
            "--queue=default",
            "--tries=0",
            "--backoff=1",
            "--concurrency=2",
            "--rest=0.3",
        ],
        &format!("{EMAIL}\n[actions.\"*\"]\nkind = \"warn\"\n"),
    );
    let released = || count(&worker.logs(), "released");
    wait_for("releases on 451", Duration::from_secs(30), || {
        released() >= 3
    });
    let at_451 = released();
    smtp.clear();
    smtp.down();
    wait_for("releases while down", Duration::from_secs(30), || {
        released() >= at_451 + 3
    });
    let while_down = released() - at_451;
    smtp.up();
    wait_for("5 mails", Duration::from_secs(30), || smtp.total() >= 5);
    // Killed only once it refuses every RCPT, so no accepted mail is cut before its 250 (that would be
    // an at-least-once duplicate, not what this test is about).
    smtp.refuse("451 4.3.0 Try again later");
    let before = released();
    wait_for("releases on 451 again", Duration::from_secs(30), || {
        released() >= before + 2
    });
    let at_451 = at_451 + released() - before;
    smtp.down();
    let before = released();
    wait_for("releases while down again", Duration::from_secs(30), || {
        released() >= before + 2
    });
    let while_down = while_down + released() - before;
    smtp.clear();
    smtp.up();
    drain(&w, &mut worker, Duration::from_secs(45));

    let seen = smtp.received();
    let failed = failed_uuids(&w);
    let (delivered, nfailed) = ledger_check("smtp flapping", &jobs, &seen, &failed);
    let dups = duplicates(&seen);
    eprintln!(
        "smtp flapping: {} jobs, {delivered} delivered, {nfailed} in failed_jobs, {} mails, \
         {dups} duplicates; {at_451} releases on 451, {while_down} while down",
        jobs.len(),
        smtp.total()
    );
    assert_eq!(dups, 0, "no kill: no mail twice ({seen:?})");
    assert_eq!(delivered, jobs.len(), "--tries=0: every mail arrives");
}

/// The Cloud API stub answering 503, then 130429 with Retry-After, then hanging past WHATSAPP_TIMEOUT,
/// with healthy phases between, during 20 WhatsApp jobs: every job's message accepted once (or the
/// job in failed_jobs), none twice.
#[test]
fn whatsapp_api_flapping_loses_no_message_and_sends_none_twice() {
    let mut w = seeded(20);
    let stub = Stub::start();
    w.extra.extend(stub.env());
    let orders: Vec<i64> = (0..20).map(|i| FIRST + i).collect();
    let jobs = dispatch_per_order(&w, "whatsapp_notification", &orders);
    stub.meta.set(UNAVAILABLE);
    let mut worker = w.worker(
        &[
            "--queue=default",
            "--tries=0",
            "--backoff=1",
            "--concurrency=2",
            "--rest=0.3",
        ],
        &format!("{WHATSAPP}\n[actions.\"*\"]\nkind = \"warn\"\n"),
    );
    let m = &stub.meta;
    let mut refused_at = 0;
    for (mode, accepted) in [(UNAVAILABLE, 4), (RATE_LIMITED, 9), (HANGING, 14)] {
        stub.meta.set(mode);
        wait_for("refusals", Duration::from_secs(20), || {
            m.refused() >= refused_at + 4
        });
        refused_at = m.refused();
        stub.meta.set(OK);
        wait_for("accepted messages", Duration::from_secs(20), || {
            m.total() >= accepted
        });
    }
    drain(&w, &mut worker, Duration::from_secs(40));

    let seen = m.accepted();
    let failed = failed_uuids(&w);
    let (delivered, nfailed) = ledger_check("whatsapp flapping", &jobs, &seen, &failed);
    let dups = duplicates(&seen);
    eprintln!(
        "whatsapp flapping: {} jobs, {delivered} delivered, {nfailed} in failed_jobs, {} accepted, \
         {} refused (503, 130429, hanging), {dups} duplicates",
        jobs.len(),
        m.total(),
        m.refused()
    );
    assert_eq!(dups, 0, "no kill: no message twice ({seen:?})");
    assert_eq!(delivered, jobs.len(), "--tries=0: every message accepted");
}

/// kill -9 in the middle of 30 WhatsApp + 30 e-mail jobs (Meta answering in 300 ms, so sends are in
/// flight), then a fresh worker: nothing lost; duplicates (sends the far side accepted but the killed
/// worker never recorded in the sent-ledger) at most the jobs in flight (reserved) at the kill. Jobs
/// done before the kill are never sent again.
#[test]
fn kill_9_during_whatsapp_and_email_duplicates_at_most_the_jobs_in_flight() {
    const CONCURRENCY: usize = 8;
    let mut w = seeded(30);
    let stub = Stub::start();
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path());
    smtp.clear();
    w.extra.extend(stub.env());
    w.extra.extend(smtp.env());
    let orders: Vec<i64> = (0..30).map(|i| FIRST + i).collect();
    // Interleaved, so both kinds are in flight at the kill.
    let (mut wa_jobs, mut mail_jobs) = (BTreeMap::new(), BTreeMap::new());
    for order in &orders {
        wa_jobs.extend(dispatch_per_order(&w, "whatsapp_notification", &[*order]));
        mail_jobs.extend(dispatch_per_order(&w, "email_notification", &[*order]));
    }
    // Slow answers (still under WHATSAPP_TIMEOUT): the kill lands with sends in flight.
    stub.rt.block_on(async {
        stub.server.reset().await;
        Mock::given(method("POST"))
            .respond_with(SlowOk(stub.meta.clone()))
            .mount(&stub.server)
            .await;
    });
    let config = format!("{WHATSAPP}\n{EMAIL}\n[actions.\"*\"]\nkind = \"warn\"\n");
    let concurrency = format!("--concurrency={CONCURRENCY}");
    let args = [
        "--queue=default",
        "--tries=0",
        "--backoff=1",
        "--retry-after=2",
        concurrency.as_str(),
    ];
    let first = w.worker(&args, &config);
    first.wait_for(Duration::from_secs(40), "15 jobs done", |l| {
        count(l, "done") >= 15
    });
    first.signal("KILL");
    let mut first = first;
    let _ = first.wait(Duration::from_secs(5));
    let done_before = count(&first.logs(), "done");
    // What the killed worker held: reserved, not yet deleted or released.
    let in_flight = w.zrange(&w.key("default:reserved")).len();
    assert!(in_flight <= CONCURRENCY);
    let (wa_before, mail_before) = (stub.meta.total(), smtp.total());
    // The killed worker's reservations come back after retry_after (2 s).
    let mut second = w.worker(&args, &config);
    drain(&w, &mut second, Duration::from_secs(50));

    let skipped = second
        .logs()
        .iter()
        .filter(|l| {
            l["message"]
                == "WhatsApp message already sent by an earlier run of this job: not sent again"
                || l["message"] == "mail already sent by an earlier attempt: skipped"
        })
        .count();
    let wa_seen = stub.meta.accepted();
    let mail_seen = smtp.received();
    let failed = failed_uuids(&w);
    let (wa_ok, _) = ledger_check("kill -9 whatsapp", &wa_jobs, &wa_seen, &failed);
    let (mail_ok, _) = ledger_check("kill -9 email", &mail_jobs, &mail_seen, &failed);
    let (wa_dups, mail_dups) = (duplicates(&wa_seen), duplicates(&mail_seen));
    eprintln!(
        "kill -9: {done_before} jobs done before the kill ({wa_before} messages, {mail_before} mails \
         out), {in_flight} in flight (concurrency {CONCURRENCY}); after: {wa_ok}/{} messages, {mail_ok}/{} mails delivered, \
         {} in failed_jobs; {skipped} sends skipped by the ledger; duplicates: {wa_dups} WhatsApp, \
         {mail_dups} e-mail",
        wa_jobs.len(),
        mail_jobs.len(),
        failed.len()
    );
    assert_eq!(wa_ok, wa_jobs.len(), "no WhatsApp job lost");
    assert_eq!(mail_ok, mail_jobs.len(), "no e-mail job lost");
    assert!(
        wa_dups + mail_dups <= in_flight,
        "duplicates only for the {in_flight} jobs in flight at the kill: {wa_dups} + {mail_dups}"
    );
}

/// [`Meta`] answering 200 after 300 ms (the message counts as accepted when the stub answers).
struct SlowOk(Meta);

impl Respond for SlowOk {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        self.0.respond(req).set_delay(Duration::from_millis(300))
    }
}
