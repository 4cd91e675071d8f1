//! The operator console against real Redis, a real failed_jobs table (SQLite) and jobs the real
//! Laravel harness dispatched and the real worker failed: the JSON API lists the queues and the
//! failed jobs Redis and the table hold, shows one decoded and masked, retries it onto its queue
//! (the bytes `queue:retry` pushes) and the worker runs it; pause and resume write the flag the
//! worker reads; and every refusal of the access rules (no token, a wrong one, the read token on a
//! POST, a cross-site POST, a foreign Host on the open console, a non-loopback bind without token).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use defer_worker::laravel::cache_store::CacheStore;
use defer_worker::ops::failed::retry::retried_payload;
use reqwest::header::{AUTHORIZATION, COOKIE, HOST, ORIGIN, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::Value as Json;

use crate::support::{DbKind, World};

pub const ADMIN: &str = "admin-console-token-0123456789";
pub const READ: &str = "read-console-token-0123456789";
/// A config that fails every e-mail job (so failed_jobs gets real rows) and logs the rest.
pub const FAIL_EMAILS: &str =
    "[actions.\"*\"]\nkind = \"log\"\n\n[actions.email_notification]\nkind = \"fail\"\nmessage = \"SMTP refused for jane@shop.io\"\n";
pub const LOG_ALL: &str = "[actions.\"*\"]\nkind = \"log\"\n";
/// What the failed jobs carry: an e-mail address and a phone number the console must mask.
pub const DATA: &str = r#"{"order_id":"test_order_1","customer_email":"jane@shop.io","customer_mobile":"+919876543210"}"#;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port()
}

/// A running `defer-worker console`.
pub struct ConsoleProc {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: std::path::PathBuf,
}

impl ConsoleProc {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log once `ready` holds for it (lines reach the file from the writer's own thread, a few
    /// milliseconds after the request that logged them has been answered), or as it is after 10 s.
    pub fn log_once(&self, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log_text();
            if ready(&log) || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ConsoleProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `console` command with the world's environment plus `env`, on `addr`.
pub fn console_command(w: &World, addr: &str, queues: &str, env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_defer-worker"));
    c.args([
        "--log-format=json",
        "console",
        "--http",
        addr,
        "--queue",
        queues,
    ])
    .env_clear()
    .env("PATH", std::env::var("PATH").unwrap_or_default())
    .envs(w.env())
    .envs(env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    .stdin(Stdio::null())
    .stdout(Stdio::null());
    c
}

/// Starts the console on a free loopback port and waits until it answers /health.
pub fn start_console(w: &World, queues: &str, env: &[(&str, &str)]) -> ConsoleProc {
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let log = w.dir.path().join(format!("console-{}.log", addr.port()));
    let child = console_command(w, &addr.to_string(), queues, env)
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start console");
    let c = ConsoleProc { child, addr, log };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "console never listened; log:\n{}",
            c.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    c
}

/// A world with the cache in Redis (pause flags) and `failed` e-mail jobs failed by the real worker
/// on queue `emails`, plus `ready` analytics jobs left on queue `analytics`; returns the failed uuids.
pub async fn seeded_world(failed: usize, ready: usize) -> (World, Vec<String>) {
    let mut w = World::new(DbKind::Sqlite);
    w.extra.push(("CACHE_DRIVER".into(), "redis".into()));
    let uuids = w.dispatch("email_notification", DATA, "emails", failed);
    let mut worker = w.worker(&["--queue=emails", "--stop-when-empty"], FAIL_EMAILS);
    assert!(
        worker.wait(Duration::from_secs(30)).success(),
        "{}",
        worker.log_text()
    );
    assert_eq!(
        w.failed_rows().await.len(),
        failed,
        "the worker failed every e-mail job"
    );
    if ready > 0 {
        w.dispatch(
            "analytics_tracking",
            r#"{"order_id":1}"#,
            "analytics",
            ready,
        );
    }
    (w, uuids)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn get_json(c: &ConsoleProc, path: &str, token: &str) -> (StatusCode, Json) {
    let r = client()
        .get(c.url(path))
        .header(AUTHORIZATION, bearer(token))
        .send()
        .await
        .expect("GET");
    let status = r.status();
    (status, r.json().await.unwrap_or(Json::Null))
}

async fn post(
    c: &ConsoleProc,
    path: &str,
    headers: &[(reqwest::header::HeaderName, String)],
) -> (StatusCode, Json) {
    let mut req = client().post(c.url(path));
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let r = req.send().await.expect("POST");
    let status = r.status();
    (status, r.json().await.unwrap_or(Json::Null))
}

pub async fn paused(w: &World, queue: &str) -> bool {
    let env: HashMap<String, String> = w.env().into_iter().collect();
    let store = CacheStore::from_lookup(&|k: &str| env.get(k).cloned())
        .await
        .expect("cache store")
        .expect("redis cache");
    store
        .is_paused("redis", queue)
        .await
        .expect("read the flag")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_shows_what_redis_and_failed_jobs_hold_and_retries_a_job_that_then_runs() {
    let (w, uuids) = seeded_world(2, 3).await;
    let c = start_console(
        &w,
        "emails,analytics",
        &[
            ("DEFER_WORKER_CONSOLE_TOKEN", ADMIN),
            ("DEFER_WORKER_CONSOLE_READ_TOKEN", READ),
        ],
    );

    // Queues: the counts Redis holds, read with the read-only token.
    let (status, queues) = get_json(&c, "/api/queues", READ).await;
    assert_eq!(status, StatusCode::OK, "{queues}");
    let by_name: HashMap<&str, &Json> = queues
        .as_array()
        .expect("list")
        .iter()
        .map(|q| (q["queue"].as_str().expect("name"), q))
        .collect();
    assert_eq!(by_name["analytics"]["ready"], 3);
    assert_eq!(
        by_name["analytics"]["size"],
        w.queue_len("analytics") as u64
    );
    assert_eq!(by_name["emails"]["ready"], 0);
    assert_eq!(by_name["emails"]["paused"], false);

    // Failed jobs: both rows, searchable by action, queue and exception text.
    let (_, all) = get_json(&c, "/api/failed", READ).await;
    let mut listed: Vec<&str> = all
        .as_array()
        .expect("list")
        .iter()
        .map(|s| s["uuid"].as_str().unwrap())
        .collect();
    listed.sort_unstable();
    let mut expected: Vec<&str> = uuids.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(listed, expected);
    assert_eq!(all[0]["action"], "email_notification");
    assert!(
        !all.to_string().contains("jane@shop.io"),
        "the exception line is masked: {all}"
    );
    let (_, none) = get_json(&c, "/api/failed?action=cache_warming", READ).await;
    assert_eq!(none, Json::Array(vec![]));
    let (_, by_text) = get_json(&c, "/api/failed?queue=emails&q=smtp+REFUSED", READ).await;
    assert_eq!(by_text.as_array().map(Vec::len), Some(2));

    // One job, decoded and masked; revealed only to the admin.
    let uuid = &uuids[0];
    let (status, one) = get_json(&c, &format!("/api/failed/{uuid}"), READ).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["payload"]["deferred"]["action"], "email_notification");
    assert_eq!(one["attempts"], 1, "failed on its first attempt");
    assert_eq!(one["uuid"], one["payload"]["uuid"]);
    assert_eq!(
        one["payload"]["deferred"]["data"]["customer_email"],
        "j***@***"
    );
    assert_eq!(
        one["payload"]["deferred"]["data"]["customer_mobile"],
        "***10"
    );
    assert!(
        !one.to_string().contains("9876543210") && !one.to_string().contains("jane@"),
        "{one}"
    );
    let (status, _) = get_json(&c, &format!("/api/failed/{uuid}?reveal=1"), READ).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the read token cannot reveal"
    );
    let (status, open) = get_json(&c, &format!("/api/failed/{uuid}?reveal=1"), ADMIN).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        open["payload"]["deferred"]["data"]["customer_mobile"],
        "+919876543210"
    );

    // Retry: the row leaves failed_jobs and the exact bytes queue:retry pushes are on the queue.
    let stored = w
        .failed_rows()
        .await
        .into_iter()
        .find(|f| &f.uuid == uuid)
        .expect("row")
        .payload;
    let (status, done) = post(
        &c,
        &format!("/api/failed/{uuid}/retry"),
        &[(AUTHORIZATION, bearer(ADMIN))],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(
        w.failed_rows().await.iter().all(|f| &f.uuid != uuid),
        "the row is gone"
    );
    let on_queue = w.lrange(&w.key("emails"));
    assert_eq!(on_queue.len(), 1);
    assert_eq!(
        String::from_utf8(on_queue[0].clone()).unwrap(),
        retried_payload(&stored, true).unwrap()
    );
    let (status, _) = post(
        &c,
        &format!("/api/failed/{uuid}/retry"),
        &[(AUTHORIZATION, bearer(ADMIN))],
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a retried row cannot be retried twice"
    );
    // ...and the worker runs it.
    let mut worker = w.worker(&["--queue=emails", "--stop-when-empty"], LOG_ALL);
    assert!(worker.wait(Duration::from_secs(30)).success());
    assert_eq!(worker.uuids("done"), vec![uuid.clone()]);

    // The fleet's history (flushed by both workers as they stopped) counts the two failures and the
    // retried run; the registry lists a running worker with its queues.
    let (status, history) = get_json(&c, "/api/history?span=hour", READ).await;
    assert_eq!(status, StatusCode::OK, "{history}");
    let emails = |stat: &str| -> u64 {
        history["buckets"]
            .as_array()
            .expect("buckets")
            .iter()
            .flat_map(|b| b["series"].as_array().cloned().unwrap_or_default())
            .filter(|s| s["queue"] == "emails" && s["action"] == "email_notification")
            .map(|s| s[stat].as_u64().unwrap_or(0))
            .sum()
    };
    assert_eq!((emails("failed"), emails("done")), (2, 1), "{history}");
    assert_eq!(
        get_json(&c, "/api/history?span=year", READ).await.0,
        StatusCode::BAD_REQUEST
    );
    let running = w.worker(&["--queue=default,analytics-idle"], LOG_ALL);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, workers) = get_json(&c, "/api/workers", READ).await;
        let listed = workers.as_array().into_iter().flatten().any(|wk| {
            wk["pid"] == running.child.id()
                && wk["queues"] == serde_json::json!(["default", "analytics-idle"])
        });
        if listed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the worker never showed in /api/workers: {workers}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(running);

    // Forget the other one.
    let (status, _) = post(
        &c,
        &format!("/api/failed/{}/forget", uuids[1]),
        &[(AUTHORIZATION, bearer(ADMIN))],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(w.failed_rows().await.is_empty());

    // Pause and resume write the flag workers read.
    let (status, _) = post(
        &c,
        "/api/queues/analytics/pause",
        &[(AUTHORIZATION, bearer(ADMIN))],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(paused(&w, "analytics").await);
    let (_, queues) = get_json(&c, "/api/queues", READ).await;
    assert!(queues
        .as_array()
        .unwrap()
        .iter()
        .any(|q| q["queue"] == "analytics" && q["paused"] == true));
    let (status, _) = post(
        &c,
        "/api/queues/analytics/resume",
        &[(AUTHORIZATION, bearer(ADMIN))],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!paused(&w, "analytics").await);
    let (status, _) = post(
        &c,
        "/api/queues/nope/pause",
        &[(AUTHORIZATION, bearer(ADMIN))],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "only the console's queues");

    // Every action is logged with who did it, and no token reaches the log.
    let actions = [
        "\"retry\"",
        "\"forget\"",
        "\"pause\"",
        "\"resume\"",
        "\"reveal\"",
    ];
    let logged = |log: &str, action: &str| {
        log.lines()
            .any(|l| l.contains("\"who\":\"admin\"") && l.contains(action))
    };
    let log = c.log_once(|log| actions.iter().all(|a| logged(log, a)));
    for action in actions {
        assert!(logged(&log, action), "{action} not logged:\n{log}");
    }
    assert!(
        !log.contains(ADMIN) && !log.contains(READ) && !log.contains("9876543210"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_the_right_token_or_origin_are_refused() {
    let (w, uuids) = seeded_world(1, 0).await;
    let c = start_console(
        &w,
        "emails",
        &[
            ("DEFER_WORKER_CONSOLE_TOKEN", ADMIN),
            ("DEFER_WORKER_CONSOLE_READ_TOKEN", READ),
        ],
    );
    let http = client();
    let retry = format!("/api/failed/{}/retry", uuids[0]);

    // No token, a wrong token: 401, on pages and API alike; the probes stay open.
    assert_eq!(
        http.get(c.url("/api/queues"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let page = http.get(c.url("/failed")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::UNAUTHORIZED);
    assert!(
        page.text().await.unwrap().contains("name=\"token\""),
        "the login form"
    );
    assert_eq!(
        get_json(&c, "/api/queues", "wrong-token-0123456789abc")
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(post(&c, &retry, &[]).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        post(
            &c,
            &retry,
            &[(AUTHORIZATION, bearer("wrong-token-0123456789abc"))]
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    for probe in ["/health", "/ready", "/metrics", "/stats"] {
        assert_eq!(
            http.get(c.url(probe)).send().await.unwrap().status(),
            StatusCode::OK,
            "{probe}"
        );
    }

    // The read token: looks, never changes.
    assert_eq!(
        post(&c, &retry, &[(AUTHORIZATION, bearer(READ))]).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(
            &c,
            "/api/queues/emails/pause",
            &[(AUTHORIZATION, bearer(READ))]
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );

    // Cross-site: the admin token does not make another origin's POST acceptable.
    let evil = [
        (AUTHORIZATION, bearer(ADMIN)),
        (ORIGIN, "http://evil.example".to_owned()),
    ];
    assert_eq!(post(&c, &retry, &evil).await.0, StatusCode::FORBIDDEN);
    let evil_referer = [
        (AUTHORIZATION, bearer(ADMIN)),
        (reqwest::header::REFERER, "http://evil.example/x".to_owned()),
    ];
    assert_eq!(
        post(&c, &retry, &evil_referer).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(w.failed_rows().await.len(), 1, "nothing was retried");
    assert!(!paused(&w, "emails").await);

    // The login form: a wrong token is refused; the right one sets an HttpOnly, SameSite=Strict
    // cookie that is not the token, and works; a cookie POST needs the console's own Origin.
    let own = c.url("");
    let wrong = http
        .post(c.url("/login"))
        .header(ORIGIN, &own)
        .form(&[("token", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let ok = http
        .post(c.url("/login"))
        .header(ORIGIN, &own)
        .form(&[("token", ADMIN)])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let set = ok.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && !set.contains(ADMIN),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_owned();
    let page = http
        .get(c.url("/failed"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains(&uuids[0]));
    let no_origin = http
        .post(c.url("/queues/emails/pause"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        no_origin.status(),
        StatusCode::FORBIDDEN,
        "a cookie POST without Origin"
    );
    let cross = http
        .post(c.url("/queues/emails/pause"))
        .header(COOKIE, &cookie)
        .header(ORIGIN, "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    assert!(!paused(&w, "emails").await);
    let same = http
        .post(c.url("/queues/emails/pause"))
        .header(COOKIE, &cookie)
        .header(ORIGIN, &own)
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), StatusCode::SEE_OTHER);
    assert!(paused(&w, "emails").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_the_console_is_loopback_only() {
    let w = World::new(DbKind::Sqlite);
    // `console` on a non-loopback address refuses to start, naming the setting.
    let port = free_port();
    let out = console_command(&w, &format!("0.0.0.0:{port}"), "default", &[])
        .stderr(Stdio::piped())
        .output()
        .expect("run console");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("DEFER_WORKER_CONSOLE_TOKEN") && err.contains("not a loopback address"),
        "{err}"
    );

    // On loopback it is open, to loopback host names only (no DNS rebinding).
    let c = start_console(&w, "default", &[]);
    let http = client();
    assert_eq!(
        http.get(c.url("/api/queues"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let foreign = http
        .get(c.url("/api/queues"))
        .header(HOST, "rebound.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    let page = http.get(c.url("/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.text().await.unwrap().contains("failures-per-hour"),
        "the overview's chart"
    );

    // `work --http` elsewhere than loopback without a token: the probes, not the console.
    let addr: SocketAddr = ([0, 0, 0, 0], free_port()).into();
    let worker = w.worker(&["--queue=default", &format!("--http={addr}")], LOG_ALL);
    let local: SocketAddr = ([127, 0, 0, 1], addr.port()).into();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(local).is_err() {
        assert!(
            Instant::now() < deadline,
            "never listened:\n{}",
            worker.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let base = format!("http://{local}");
    assert_eq!(
        http.get(format!("{base}/health"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        http.get(format!("{base}/api/queues"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    // Logged at start, through the writer's own thread: give it a moment to reach the file.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !worker.log_text().contains("console is not served") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        worker.log_text().contains("console is not served"),
        "{}",
        worker.log_text()
    );
}
