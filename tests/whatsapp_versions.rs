//! The Graph API version in `WHATSAPP_API_URL`, through the real binary: an expired one (v18.0, the
//! app's own default) stops `work` with a message naming the key, the version and the one to move to;
//! `WHATSAPP_ALLOW_EXPIRED_API_VERSION=true` starts anyway and sends; a live one (v25.0) starts and
//! sends to the Meta-shaped stub; with no `WHATSAPP_API_URL` the default is v25.0, which `config`
//! shows with its end date and `work` accepts.

use std::process::Command;
use std::time::Duration;

use serde_json::Value as Json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer};

use crate::actions_whatsapp::ok;
use crate::app_data::load_fixture_app;
use crate::support::{DbKind, World};

const CONFIG: &str = "[actions.whatsapp_notification]\nkind = \"whatsapp\"\n";

/// A world with the app's rows and WhatsApp configured; `api_url` `None` leaves the default.
fn world(api_url: Option<String>, extra: &[(&str, &str)]) -> World {
    let mut w = World::new(DbKind::Sqlite);
    load_fixture_app(&w);
    let mut vars = vec![
        (
            "WHATSAPP_API_TOKEN".to_owned(),
            "EAAG-version-token".to_owned(),
        ),
        (
            "WHATSAPP_PHONE_NUMBER_ID".to_owned(),
            "1234509876".to_owned(),
        ),
    ];
    vars.extend(api_url.map(|u| ("WHATSAPP_API_URL".to_owned(), u)));
    vars.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    w.extra.extend(vars);
    w
}

async fn stub() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok("wamid.version"))
        .mount(&server)
        .await;
    server
}

/// Starts `work`, dispatches one message and waits for it to be done; returns the log text.
fn sends_one(w: &World) -> String {
    let mut worker = w.worker(&["--queue=whatsapp", "--tries=1"], CONFIG);
    let uuid = w.dispatch("whatsapp_notification", r#"{"order_id":2}"#, "whatsapp", 1);
    worker.wait_for(Duration::from_secs(30), "the job done", |logs| {
        logs.iter()
            .any(|l| l["outcome"] == "done" && l["uuid"] == uuid[0].as_str())
    });
    worker.signal("TERM");
    assert!(worker.wait(Duration::from_secs(20)).success());
    worker.log_text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_version_refuses_to_start_naming_the_key_and_the_version_to_move_to() {
    let meta = stub().await;
    let w = world(Some(format!("{}/v18.0", meta.uri())), &[]);
    let mut worker = w.worker(&["--queue=whatsapp"], CONFIG);
    let status = worker.wait(Duration::from_secs(30));
    assert!(!status.success(), "started on an expired version");
    let log = worker.log_text();
    assert!(
        log.contains(
            "WHATSAPP_API_URL names Graph API v18.0, which Meta stopped serving on 2026-01-26"
        ),
        "{log}"
    );
    assert!(
        log.contains("Set WHATSAPP_API_URL to https://graph.facebook.com/v25.0 (Graph API v25.0)"),
        "{log}"
    );
    assert!(
        log.contains("WHATSAPP_ALLOW_EXPIRED_API_VERSION=true"),
        "{log}"
    );
    assert!(
        meta.received_requests()
            .await
            .unwrap_or_default()
            .is_empty(),
        "nothing sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_version_starts_when_allowed_and_says_so() {
    let meta = stub().await;
    let w = world(
        Some(format!("{}/v18.0", meta.uri())),
        &[("WHATSAPP_ALLOW_EXPIRED_API_VERSION", "true")],
    );
    let log = sends_one(&w);
    assert!(
        log.contains("starting because WHATSAPP_ALLOW_EXPIRED_API_VERSION=true"),
        "{log}"
    );
    let reqs = meta.received_requests().await.unwrap_or_default();
    assert_eq!(reqs.len(), 1);
    assert!(reqs[0].url.path().starts_with("/v18.0/1234509876/messages"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_version_starts_and_sends() {
    let meta = stub().await;
    let w = world(Some(format!("{}/v25.0", meta.uri())), &[]);
    let log = sends_one(&w);
    let line: Json = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Json>(l).ok())
        .find(|l| l["message"] == "WhatsApp Graph API version")
        .unwrap_or_else(|| panic!("no version line; log:\n{log}"));
    assert_eq!(line["api_version"], "v25.0 until 2028-07-29");
    assert!(!log.contains("stopped serving"), "{log}");
    let reqs = meta.received_requests().await.unwrap_or_default();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].url.path(), "/v25.0/1234509876/messages");
}

#[test]
fn the_default_version_is_live_shown_with_its_end_date_and_accepted_by_work() {
    let w = world(None, &[]);
    let out = Command::new(env!("CARGO_BIN_EXE_defer-worker"))
        .args(["config", "--json"])
        .env_clear()
        .envs(w.env())
        .output()
        .expect("run defer-worker config");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Json = serde_json::from_slice(&out.stdout).expect("JSON");
    let value = |key: &str| -> String {
        json["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rows"].as_array().unwrap())
            .find(|r| r["key"] == key)
            .and_then(|r| r["value"].as_str())
            .unwrap_or_else(|| panic!("no row {key}: {json}"))
            .to_owned()
    };
    assert_eq!(
        value("WHATSAPP_API_URL"),
        "https://graph.facebook.com/v25.0"
    );
    assert_eq!(value("whatsapp.api_version"), "v25.0 until 2028-07-29");
    assert_eq!(
        value("whatsapp.messages_url"),
        "https://graph.facebook.com/v25.0/1234509876/messages"
    );

    let mut worker = w.worker(&["--queue=whatsapp"], CONFIG);
    worker.wait_for(Duration::from_secs(30), "the worker connected", |logs| {
        logs.iter().any(|l| l["message"] == "connected")
    });
    worker.signal("TERM");
    assert!(worker.wait(Duration::from_secs(20)).success());
    let log = worker.log_text();
    assert!(log.contains("v25.0 until 2028-07-29"), "{log}");
}
