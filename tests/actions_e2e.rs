//! The whole path with no PHP per job: the real Laravel harness dispatches the app's four actions
//! through its own helpers (`deferWhatsApp`, `deferEmail`, `deferAnalytics`, `deferCacheWarming` with
//! its 5-second delay onto `default`), `defer-worker work` runs them natively against the seeded app
//! database (MariaDB), a Meta-shaped Cloud API stub, a real SMTP server process and the app's Redis cache
//! store, and PHP's `Cache` then reads what changed. Meta's 131026 fails the job at once with the code in
//! failed_jobs; 130429 is retried and sent on a later attempt; a missing order and the app's
//! `test_order_1` behave as the app; an action the app does not handle completes with a warning.

use std::time::Duration;

use defer_worker::php::{Key, Value};
use serde_json::Value as Json;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer};

use crate::actions_cache::{php_get, php_has, php_put, world};
use crate::actions_email::{make_certs, Smtp};
use crate::actions_whatsapp::{meta_error, ok};
use crate::app_data::load_fixture_app;
use crate::support::{DbKind, World};

const PHONE_ID: &str = "109876543210";

pub(crate) fn via(w: &World, helper: &str, action: Option<&str>, data: &str) -> String {
    let mut args = vec!["harness:dispatch"];
    args.extend(action);
    let data = format!("--data={data}");
    let helper = format!("--via={helper}");
    args.extend([data.as_str(), helper.as_str()]);
    let out = w.php(&args);
    let uuids: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(uuids.len(), 1, "{out}");
    uuids[0].trim().to_owned()
}

pub(crate) fn text_of(req: &wiremock::Request) -> String {
    let body: Json = serde_json::from_slice(&req.body).expect("JSON body");
    body["text"]["body"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn laravel_dispatches_the_apps_actions_and_defer_worker_runs_them_natively() {
    let (mut w, _db1) = world("redis", DbKind::MySql);
    load_fixture_app(&w);
    let certs = make_certs(w.dir.path());
    let smtp = Smtp::start(w.dir.path(), &certs, "starttls", &[]);

    // Meta: CM-0043's recipient is not on WhatsApp (permanent); CM-0044 hits the throughput limit
    // once; everything else is accepted.
    let meta = MockServer::start().await;
    let messages = format!("/v25.0/{PHONE_ID}/messages");
    Mock::given(method("POST"))
        .and(path(messages.as_str()))
        .and(body_string_contains("CM-0043"))
        .respond_with(meta_error(400, 131026, "Message undeliverable"))
        .with_priority(1)
        .mount(&meta)
        .await;
    Mock::given(method("POST"))
        .and(path(messages.as_str()))
        .and(body_string_contains("CM-0044"))
        .respond_with(meta_error(400, 130429, "Rate limit hit"))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&meta)
        .await;
    Mock::given(method("POST"))
        .and(path(messages.as_str()))
        .respond_with(ok("wamid.HBgLMjI1MDcwNzAwMDAwMRUCABIYFDNBQjM"))
        .with_priority(5)
        .mount(&meta)
        .await;

    let port = smtp.port.to_string();
    for (k, v) in [
        ("WHATSAPP_API_URL", format!("{}/v25.0", meta.uri())),
        ("WHATSAPP_API_TOKEN", "EAAG-e2e-token".to_owned()),
        ("WHATSAPP_PHONE_NUMBER_ID", PHONE_ID.to_owned()),
        ("APP_URL", "https://resto.test".to_owned()),
        ("MAIL_MAILER", "smtp".to_owned()),
        ("MAIL_HOST", "127.0.0.1".to_owned()),
        ("MAIL_PORT", port),
        ("MAIL_ENCRYPTION", "tls".to_owned()),
        ("MAIL_USERNAME", "mailer".to_owned()),
        ("MAIL_PASSWORD", "s3cret-pass".to_owned()),
        ("MAIL_FROM_ADDRESS", "noreply@restro.test".to_owned()),
        ("MAIL_FROM_NAME", "RestroSaaS".to_owned()),
    ] {
        w.extra.push((k.to_owned(), v));
    }

    // Keys the app cached for vendors 2 and 1; warming vendor 2 must drop only its own.
    let cached = Value::Array(vec![(Key::Int(0), Value::Str(b"menu".to_vec()))]);
    php_put(&w, "vendor_2_info", 600, &cached);
    php_put(&w, "vendor_1_info", 600, &cached);

    let wa_ok = via(&w, "deferWhatsApp", None, r#"{"order_id":2}"#);
    let wa_undeliverable = via(&w, "deferWhatsApp", None, r#"{"order_id":3}"#);
    let wa_throttled = via(&w, "deferWhatsApp", None, r#"{"order_id":6}"#);
    let wa_missing = via(&w, "deferWhatsApp", None, r#"{"order_id":999}"#);
    let wa_test = via(&w, "deferWhatsApp", None, r#"{"order_id":"test_order_1"}"#);
    let mail = via(&w, "deferEmail", None, r#"{"order_id":2}"#);
    let analytics = via(&w, "deferAnalytics", None, r#"{"order_id":2}"#);
    let warming = via(&w, "deferCacheWarming", None, r#"{"vendor_id":2}"#);
    let unknown = via(&w, "defer", Some("analytics_export"), r#"{"vendor_id":2}"#);
    assert_eq!(
        w.zrange(&w.key("default:delayed")).len(),
        1,
        "cache warming waits 5 s on default"
    );

    // Only what a test needs differs from an empty config: the CA of the test SMTP server and no
    // per-recipient spacing (the same restaurant gets three messages back to back).
    let config = format!(
        "[actions.whatsapp_notification]\nkind = \"whatsapp\"\nrate_limit = {{ per_recipient_ms = 0 }}\n\
         [actions.email_notification]\nkind = \"email\"\nca_file = \"{}\"\n",
        certs.ca.display()
    );
    let mut worker = w.worker(
        &[
            "--queue=whatsapp,emails,analytics,cache,default",
            "--tries=3",
            "--backoff=1",
        ],
        &config,
    );
    worker.wait_for(Duration::from_secs(60), "every job settled", |logs| {
        let settled = |o: &str| logs.iter().filter(|l| l["outcome"] == o).count();
        settled("done") + settled("failed") >= 9
    });
    worker.signal("TERM");
    assert!(worker.wait(Duration::from_secs(20)).success());

    let mut done = worker.uuids("done");
    done.sort();
    let mut expected = vec![
        wa_ok.clone(),
        wa_throttled.clone(),
        wa_test,
        mail,
        analytics,
        warming,
        unknown,
    ];
    expected.sort();
    assert_eq!(done, expected, "{}", worker.log_text());
    assert_eq!(
        worker.uuids("released"),
        vec![wa_throttled.clone()],
        "130429 is retried"
    );
    assert!(
        worker.logs().iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Unknown deferred action"))
            && l["action"] == "analytics_export"),
        "analytics_export is logged as unknown"
    );

    // failed_jobs: the undeliverable message after one attempt, the missing order, both with reasons.
    // (World::failed runs its own runtime: off this one's threads.)
    let failed = std::thread::scope(|s| s.spawn(|| w.failed()).join().expect("read failed_jobs"));
    assert_eq!(failed.len(), 2, "{failed:?}");
    let reason = |uuid: &str| {
        failed
            .iter()
            .find(|f| f.uuid == uuid)
            .unwrap_or_else(|| panic!("{uuid} in failed_jobs: {failed:?}"))
            .exception
            .clone()
    };
    assert!(reason(&wa_undeliverable).contains("131026"));
    assert!(reason(&wa_missing).contains("Order 999 not found"));

    // Meta got each message once, the throttled one twice, never the missing or test orders.
    let sent: Vec<String> = meta
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(text_of)
        .collect();
    let count = |order: &str| sent.iter().filter(|t| t.contains(order)).count();
    assert_eq!(
        (count("CM-0042"), count("CM-0043"), count("CM-0044")),
        (1, 1, 2),
        "{sent:#?}"
    );
    assert_eq!(sent.len(), 4);

    // The invoice mails for order 2 (customer and restaurant), over STARTTLS.
    let mails = smtp.mails();
    assert_eq!(mails.len(), 2, "{mails:#?}");
    assert!(mails
        .iter()
        .all(|(m, _)| m["tls"] == Json::Bool(true) && m["message"]["subject"] == "Order Invoice"));

    // Analytics: one new order in vendor 2's live metrics, as PHP's Cache reads them.
    let metrics = php_get(&w, "realtime_metrics_2");
    assert_eq!(
        metrics.get("today_orders"),
        Some(&Value::Int(1)),
        "{metrics:?}"
    );
    // Cache warming: vendor 2's key is gone, vendor 1's stays.
    assert_eq!(
        php_has(&w, &["vendor_2_info".into(), "vendor_1_info".into()]),
        vec![false, true]
    );
    // Every send recorded in the app's whatsapp_messages_log as the app records it.
    let out = std::process::Command::new("mysql")
        .args(["-h127.0.0.1", "-uroot", "-N", &w.db_name, "-e"])
        .arg(
            "SELECT order_id, status, COALESCE(error_code, '-') FROM whatsapp_messages_log \
             ORDER BY order_id, status",
        )
        .output()
        .expect("mysql");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2\tsent\t-\n3\tfailed\t131026\n6\tsent\t-\n",
        "a retried send updates its failed row"
    );
    assert_eq!(w.queue_len("default") + w.queue_len("whatsapp"), 0);
}
