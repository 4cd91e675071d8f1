//! The `whatsapp` action against a wiremock stand-in for the WhatsApp Cloud API (answering with Meta's
//! bodies and status codes) and real MariaDB loaded with `fixtures/app` (RestroSaaS-shaped schema + seed):
//! the exact request per message type; each Meta error class → retry (with Retry-After) or permanent,
//! with the code in the message; the pacing; disabled/demo modes; the `whatsapp_messages_log` rows; and
//! the text itself, byte for byte against `fixtures/app/php/whatsapp_message.php`, a re-creation of the
//! app's formatter run on Debian's PHP over the same rows. Also PHP's `number_format` and `(string)` of
//! floats against the real `php` binary.

use std::collections::HashMap;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use defer_worker::actions::ledger::Ledger;
use defer_worker::actions::whatsapp::format::{float_to_string, number_format};
use defer_worker::actions::whatsapp::{
    Limiter, MessageKind, OnMissingRecipient, RateLimitOptions, Recipient, TemplateOptions,
    WhatsappAction, WhatsappOptions, WhatsappSettings,
};
use defer_worker::actions::{ActionError, JobMeta};
use defer_worker::app::{AppData, AppSection, Row};
use defer_worker::deferred::DeferredJob;
use defer_worker::laravel::redis_config::RedisConfig;
use defer_worker::php::{Key, Value};
use serde_json::{json, Value as Json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::support::{repo, DbKind, World};

const TOKEN: &str = "EAAG-test-token";
const APP_URL: &str = "https://resto.test";

/// What the app's formatter (re-created in PHP) prints for `order` of the world's MariaDB database.
pub(crate) fn php_text(world: &World, order: i64) -> String {
    let out = Command::new("php")
        .arg(repo().join("fixtures/app/php/whatsapp_message.php"))
        .arg(order.to_string())
        .env("DB_HOST", "127.0.0.1")
        .env("DB_PORT", "3306")
        .env("DB_DATABASE", &world.db_name)
        .env("DB_USERNAME", "root")
        .env("APP_URL", APP_URL)
        .output()
        .expect("run php");
    assert!(
        out.status.success(),
        "whatsapp_message.php {order}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 text")
}

/// One test's database (schema + seed), app data and Cloud API stub.
struct Stage {
    world: World,
    app: AppData,
    server: MockServer,
    phone_id: String,
}

impl Stage {
    async fn new() -> Stage {
        Stage::on(DbKind::MySql).await
    }

    async fn on(kind: DbKind) -> Stage {
        let world = World::new(kind);
        let client = match kind {
            DbKind::MySql => "mysql",
            DbKind::Postgres => "pgsql",
            DbKind::Sqlite => "sqlite",
        };
        let out = Command::new(repo().join("fixtures/app/load.sh"))
            .args([client, &world.db_name])
            .output()
            .expect("run fixtures/app/load.sh");
        assert!(
            out.status.success(),
            "load.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env: HashMap<String, String> = world.env().into_iter().collect();
        let app = AppData::from_lookup(&AppSection::default(), &|k| env.get(k).cloned())
            .await
            .expect("valid DB settings")
            .expect("an app database");
        // A sender id of its own (digits, like Meta's), so limiter state never crosses tests.
        let digits: String = world
            .prefix
            .chars()
            .filter_map(|c| c.to_digit(16))
            .map(|d| char::from(b'0' + (d % 10) as u8))
            .collect();
        let phone_id = format!("1{digits}");
        Stage {
            world,
            app,
            server: MockServer::start().await,
            phone_id,
        }
    }

    /// The action's settings: the stub as WHATSAPP_API_URL, plus `extra`.
    fn settings(&self, extra: &[(&str, &str)]) -> WhatsappSettings {
        let mut env: HashMap<String, String> = [
            ("WHATSAPP_API_URL", format!("{}/v25.0", self.server.uri())),
            ("WHATSAPP_API_TOKEN", TOKEN.to_owned()),
            ("WHATSAPP_PHONE_NUMBER_ID", self.phone_id.clone()),
            ("APP_URL", APP_URL.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        WhatsappSettings::from_lookup(&|k| env.get(k).cloned()).expect("valid settings")
    }

    fn action(&self, opts: &WhatsappOptions, extra: &[(&str, &str)]) -> WhatsappAction {
        WhatsappAction::with_settings(opts, self.settings(extra), Some(self.app.clone()))
            .expect("action builds")
    }

    fn messages_path(&self) -> String {
        format!("/v25.0/{}/messages", self.phone_id)
    }

    /// Meta's success answer for every send.
    async fn answer_ok(&self, wamid: &str) {
        self.server.reset().await;
        Mock::given(method("POST"))
            .and(path(self.messages_path()))
            .respond_with(ok(wamid))
            .mount(&self.server)
            .await;
    }

    /// One answer for every send.
    async fn answer(&self, response: ResponseTemplate) {
        self.server.reset().await;
        Mock::given(method("POST"))
            .and(path(self.messages_path()))
            .respond_with(response)
            .mount(&self.server)
            .await;
    }

    async fn requests(&self) -> Vec<Request> {
        self.server.received_requests().await.unwrap_or_default()
    }

    /// What the app's formatter (re-created in PHP) prints for `order`.
    fn php_text(&self, order: i64) -> String {
        php_text(&self.world, order)
    }

    fn sql(&self, statement: &str) {
        let out = match self.world.db {
            DbKind::MySql => Command::new("mysql")
                .args([
                    "-h127.0.0.1",
                    "-uroot",
                    &self.world.db_name,
                    "-e",
                    statement,
                ])
                .output(),
            DbKind::Postgres => Command::new("psql")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-d",
                    &self.world.db_name,
                ])
                .args(["-v", "ON_ERROR_STOP=1", "-qc", statement])
                .output(),
            DbKind::Sqlite => Command::new("sqlite3")
                .args([&self.world.db_name, statement])
                .output(),
        }
        .expect("run the SQL client");
        assert!(
            out.status.success(),
            "{statement}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    async fn log_rows(&self) -> Vec<Row> {
        self.app
            .fetch_all(
                "test",
                "SELECT * FROM whatsapp_messages_log ORDER BY id",
                &[],
            )
            .await
            .expect("read whatsapp_messages_log")
    }
}

pub(crate) fn ok(wamid: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": "2250707000001", "wa_id": "2250707000001"}],
        "messages": [{"id": wamid}],
    }))
}

pub(crate) fn meta_error(status: u16, code: i64, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "error": {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "error_subcode": 2494010,
            "fbtrace_id": "AbCdEf123",
        }
    }))
}

fn job(order_id: Value) -> DeferredJob {
    DeferredJob {
        action: "whatsapp_notification".into(),
        data: Value::Array(vec![(Key::Str(b"order_id".to_vec()), order_id)]),
    }
}

fn meta(attempt: i64) -> JobMeta<'static> {
    JobMeta {
        uuid: "9f0c7f5e-1111-4222-8333-444455556666",
        id: "job-1",
        queue: "whatsapp",
        attempt,
    }
}

/// Options without per-recipient spacing (tests send to the same numbers back to back).
fn unpaced() -> WhatsappOptions {
    WhatsappOptions {
        rate_limit: RateLimitOptions {
            per_recipient_ms: 0,
            ..RateLimitOptions::default()
        },
        ..WhatsappOptions::default()
    }
}

fn body(req: &Request) -> Json {
    serde_json::from_slice(&req.body).expect("JSON body")
}

fn keys(v: &Json) -> Vec<String> {
    v.as_object().expect("object").keys().cloned().collect()
}

#[tokio::test]
async fn text_message_is_the_vendor_template_sent_like_the_app() {
    let s = Stage::new().await;
    Mock::given(method("POST"))
        .and(path(s.messages_path()))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("content-type", "application/json"))
        .respond_with(ok(
            "wamid.HBgLMjI1MDcwNzAwMDAwMRUCABEYEjdBQjBGRkI2RkU1N0YxQjk2AA==",
        ))
        .expect(1)
        .mount(&s.server)
        .await;
    let action = s.action(&WhatsappOptions::default(), &[]);
    action
        .run(&job(Value::Int(1)), meta(1))
        .await
        .expect("sent");

    let reqs = s.requests().await;
    assert_eq!(reqs.len(), 1);
    let b = body(&reqs[0]);
    // WhatsAppService::sendMessage's body: no recipient_type, preview_url false, the vendor's
    // settings.contact "07 07 00 00 01" normalised for Côte d'Ivoire (225, the 0 kept); the job's
    // uuid as biz_opaque_callback_data, which Meta echoes in the status webhooks.
    assert_eq!(
        keys(&b),
        [
            "messaging_product",
            "to",
            "type",
            "text",
            "biz_opaque_callback_data"
        ]
    );
    assert_eq!(
        b,
        json!({
            "messaging_product": "whatsapp",
            "to": "2250707000001",
            "type": "text",
            "text": {"preview_url": false, "body": s.php_text(1)},
            "biz_opaque_callback_data": meta(1).uuid,
        })
    );
    s.server.verify().await;
}

#[tokio::test]
async fn template_message_maps_order_fields_to_positional_parameters() {
    let s = Stage::new().await;
    s.answer_ok("wamid.template1").await;
    let opts = WhatsappOptions {
        message: MessageKind::Template,
        recipient: Recipient::Customer,
        template: TemplateOptions {
            name: None,
            language: Some("en".into()),
            parameters: vec![
                "{customer_name}".into(),
                "#{order_no}".into(),
                "{grand_total}".into(),
                "{item_variable}".into(),
                "{notes}".into(),
                "{building}".into(),
            ],
        },
        ..unpaced()
    };
    let action = s.action(
        &opts,
        &[("WHATSAPP_TEMPLATE_NEW_ORDER", "nouvelle_commande")],
    );
    action
        .run(&job(Value::Int(2)), meta(1))
        .await
        .expect("sent");
    let reqs = s.requests().await;
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0]
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    let b = body(&reqs[0]);
    assert_eq!(
        keys(&b),
        [
            "messaging_product",
            "recipient_type",
            "to",
            "type",
            "template",
            "biz_opaque_callback_data"
        ]
    );
    assert_eq!(
        b,
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "491701234567",
            "type": "template",
            "template": {
                "name": "nouvelle_commande",
                "language": {"code": "en"},
                "components": [{"type": "body", "parameters": [
                    {"type": "text", "text": "Zoë Ångström-Müller"},
                    {"type": "text", "text": "#CM-0042"},
                    {"type": "text", "text": "35,65€"},
                    {"type": "text", "text": "▪️ 2 × Käsespätzle (Groß) = 22,00€, 👉Röstzwiebeln:0,80€, 👉Speck 🥓:1,20€, ▪️ 1 × Crème brûlée = 5,90€, ▪️ 1 × Formule Midi, Soir = 2,00€"},
                    {"type": "text", "text": "Bitte klingeln 🔔"},
                    {"type": "text", "text": "3. OG"},
                ]}],
            },
            "biz_opaque_callback_data": meta(1).uuid,
        })
    );

    // No parameters configured: `components` is empty, as the app sends it.
    s.answer_ok("wamid.template2").await;
    let bare = WhatsappOptions {
        message: MessageKind::Template,
        template: TemplateOptions {
            name: Some("order_ready".into()),
            ..TemplateOptions::default()
        },
        ..unpaced()
    };
    s.action(&bare, &[])
        .run(&job(Value::Int(1)), meta(1))
        .await
        .expect("sent");
    let b = body(&s.requests().await[0]);
    assert_eq!(
        b["template"],
        json!({"name": "order_ready", "language": {"code": "fr"}, "components": []})
    );
}

#[tokio::test]
async fn meta_errors_are_retried_or_failed_with_the_code_in_the_message() {
    let s = Stage::new().await;
    let action = s.action(&unpaced(), &[]);
    let retry: &[(u16, i64, &str)] = &[
        (429, 130429, "(#130429) Rate limit hit"),
        (400, 80007, "(#80007) Rate limit issues"),
        (400, 4, "(#4) Application request limit reached"),
        (503, 2, "(#2) Service temporarily unavailable"),
        (500, 1, "(#1) An unknown error occurred"),
        (500, 131000, "(#131000) Something went wrong"),
        (503, 131016, "(#131016) Service unavailable"),
        (503, 133004, "(#133004) Server temporarily unavailable"),
    ];
    for (status, code, text) in retry {
        s.answer(meta_error(*status, *code, text)).await;
        match action.run(&job(Value::Int(1)), meta(1)).await {
            Err(ActionError::Retry { message, after }) => {
                assert!(
                    message.starts_with(&format!(
                        "WhatsApp Cloud API error {code}: {text} (HTTP {status}"
                    )),
                    "{message}"
                );
                assert_eq!(after, None, "{code}");
                assert!(!message.contains("2250707000001"), "{message}");
            }
            other => panic!("{code}: expected a retry, got {other:?}"),
        }
    }
    let permanent: &[(u16, i64, &str)] = &[
        (401, 0, "(#0) AuthException"),
        (400, 100, "(#100) Invalid parameter"),
        (400, 131008, "(#131008) Required parameter is missing"),
        (400, 131026, "(#131026) Message undeliverable"),
        (400, 131047, "(#131047) Re-engagement message"),
        (400, 131051, "(#131051) Unsupported message type"),
        (400, 132000, "(#132000) Number of parameters does not match"),
        (
            400,
            132012,
            "(#132012) Parameter format does not match format in the created template",
        ),
        (400, 132016, "(#132016) Template is disabled"),
    ];
    for (status, code, text) in permanent {
        s.answer(meta_error(*status, *code, text)).await;
        match action.run(&job(Value::Int(1)), meta(1)).await {
            Err(ActionError::Permanent { message }) => {
                assert_eq!(
                    message.split(" (HTTP").next(),
                    Some(format!("WhatsApp Cloud API error {code}: {text}").as_str()),
                    "{message}"
                );
                assert!(
                    message.contains(&format!(
                        "HTTP {status}, subcode 2494010, fbtrace_id AbCdEf123"
                    )),
                    "{message}"
                );
            }
            other => panic!("{code}: expected a permanent failure, got {other:?}"),
        }
    }
    // The 24-hour window: the message says what to do.
    s.answer(meta_error(400, 131047, "(#131047) Re-engagement message"))
        .await;
    let Err(ActionError::Permanent { message }) = action.run(&job(Value::Int(1)), meta(1)).await
    else {
        panic!("131047 is permanent")
    };
    assert!(
        message.contains("send an approved template instead"),
        "{message}"
    );

    // Retry-After is honoured (seconds).
    s.answer(
        meta_error(429, 130429, "(#130429) Rate limit hit").insert_header("Retry-After", "17"),
    )
    .await;
    assert_eq!(
        action.run(&job(Value::Int(1)), meta(1)).await,
        Err(ActionError::Retry {
            message: "WhatsApp Cloud API error 130429: (#130429) Rate limit hit (HTTP 429, subcode 2494010, fbtrace_id AbCdEf123); retry after 17s".into(),
            after: Some(Duration::from_secs(17)),
        })
    );
    // A proxy's 502 page: retried, the status in the message.
    s.answer(ResponseTemplate::new(502).set_body_string("<html><body>Bad Gateway</body></html>"))
        .await;
    let Err(ActionError::Retry { message, .. }) = action.run(&job(Value::Int(1)), meta(1)).await
    else {
        panic!("5xx is retried")
    };
    assert!(
        message.starts_with("WhatsApp Cloud API answered HTTP 502: <html>"),
        "{message}"
    );
    // An unknown 4xx code: permanent.
    s.answer(meta_error(
        400,
        131009,
        "(#131009) Parameter value is not valid",
    ))
    .await;
    assert!(matches!(
        action.run(&job(Value::Int(1)), meta(1)).await,
        Err(ActionError::Permanent { .. })
    ));
}

/// The sent-ledger under the job's uuid: a job run again after Meta's 200 (a retry, a re-run after
/// kill -9) sends nothing; a send Meta refused is not recorded, so its retry sends; another job for the
/// same order, or the other recipient, is another message.
#[tokio::test]
async fn a_job_run_again_after_a_send_does_not_send_twice() {
    let s = Stage::new().await;
    let env: HashMap<String, String> = s.world.env().into_iter().collect();
    let redis = RedisConfig::from_env(&|k| env.get(k).cloned()).expect("redis settings");
    let ledger = Ledger::connect(&redis).await.expect("redis");
    let action = s.action(&unpaced(), &[]).with_ledger(ledger.clone());
    s.answer_ok("wamid.once").await;
    action
        .run(&job(Value::Int(1)), meta(1))
        .await
        .expect("sent");
    action
        .run(&job(Value::Int(1)), meta(2))
        .await
        .expect("the second run completes");
    assert_eq!(
        s.requests().await.len(),
        1,
        "one POST for two runs of one job"
    );
    assert_eq!(
        ledger.steps(meta(1).uuid).await.unwrap(),
        ["whatsapp:vendor"]
    );

    // Refused (retryable): nothing recorded, the retry sends, then it is recorded.
    let other = JobMeta {
        uuid: "9f0c7f5e-2222-4222-8333-444455556666",
        ..meta(1)
    };
    s.answer(meta_error(500, 2, "Service temporarily unavailable"))
        .await;
    assert!(matches!(
        action.run(&job(Value::Int(1)), other).await,
        Err(ActionError::Retry { .. })
    ));
    assert!(ledger.steps(other.uuid).await.unwrap().is_empty());
    s.answer_ok("wamid.retry").await;
    action.run(&job(Value::Int(1)), other).await.expect("sent");
    action.run(&job(Value::Int(1)), other).await.expect("done");
    assert_eq!(s.requests().await.len(), 1, "the retry sent once");

    // The customer's message of the same job is its own step.
    let customer = WhatsappOptions {
        recipient: Recipient::Customer,
        ..unpaced()
    };
    let to_customer = s.action(&customer, &[]).with_ledger(ledger.clone());
    s.answer_ok("wamid.customer").await;
    to_customer
        .run(&job(Value::Int(1)), meta(1))
        .await
        .expect("sent");
    to_customer
        .run(&job(Value::Int(1)), meta(2))
        .await
        .expect("done");
    assert_eq!(s.requests().await.len(), 1);
    assert_eq!(
        ledger.steps(meta(1).uuid).await.unwrap(),
        ["whatsapp:customer", "whatsapp:vendor"]
    );
    let _: () = redis::cmd("DEL")
        .arg(ledger.key(meta(1).uuid))
        .arg(ledger.key(other.uuid))
        .query(&mut s.world.redis())
        .unwrap();
}

#[tokio::test]
async fn timeouts_and_connection_errors_are_retried() {
    let s = Stage::new().await;
    s.answer(ok("wamid.late").set_delay(Duration::from_secs(5)))
        .await;
    let slow = s.action(&unpaced(), &[("WHATSAPP_TIMEOUT", "0.3")]);
    match slow.run(&job(Value::Int(1)), meta(1)).await {
        Err(ActionError::Retry { message, after }) => {
            assert_eq!(
                message,
                "WhatsApp Cloud API request timed out after 0.3s (WHATSAPP_TIMEOUT)"
            );
            assert_eq!(after, None);
        }
        other => panic!("expected a retry, got {other:?}"),
    }
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("http://127.0.0.1:{closed}/v18.0");
    let down = s.action(&unpaced(), &[("WHATSAPP_API_URL", url.as_str())]);
    match down.run(&job(Value::Int(1)), meta(1)).await {
        Err(ActionError::Retry { message, .. }) => {
            assert!(
                message.starts_with("could not connect to the WhatsApp Cloud API"),
                "{message}"
            );
            assert!(!message.contains(TOKEN));
        }
        other => panic!("expected a retry, got {other:?}"),
    }
}

#[tokio::test]
async fn bursts_to_one_recipient_are_spaced_or_released() {
    let s = Stage::new().await;
    s.answer_ok("wamid.paced").await;
    let opts = WhatsappOptions {
        rate_limit: RateLimitOptions {
            per_recipient_ms: 60_000,
            max_wait_ms: 10_000,
            ..RateLimitOptions::default()
        },
        ..WhatsappOptions::default()
    };
    let action = s.action(&opts, &[]);
    action
        .run(&job(Value::Int(1)), meta(1))
        .await
        .expect("first goes out");
    // Order 7 is for the same restaurant: the next slot is a minute away, more than max_wait, so the
    // job is handed back (no attempt used) with that delay instead of waiting or earning Meta's 131056.
    match action.run(&job(Value::Int(7)), meta(1)).await {
        Err(ActionError::HandBack { message, after }) => {
            assert!(message.starts_with("WhatsApp rate limit"), "{message}");
            assert!(
                after > Duration::from_secs(50) && after <= Duration::from_secs(60),
                "{after:?}"
            );
        }
        other => panic!("expected a release, got {other:?}"),
    }
    // Another restaurant is not held up.
    action
        .run(&job(Value::Int(2)), meta(1))
        .await
        .expect("other recipient");
    assert_eq!(s.requests().await.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn limiter_paces_a_sender_and_spaces_a_recipient_on_tokios_clock() {
    let limiter = std::sync::Arc::new(Limiter::new(&RateLimitOptions {
        per_second: 2.0,
        burst: 2,
        per_recipient_ms: 3_000,
        max_wait_ms: 30_000,
    }));
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for recipient in ["a", "b", "c", "a", "a"] {
        let l = limiter.clone();
        tasks.push(tokio::spawn(async move {
            l.acquire("phone-1", recipient)
                .await
                .expect("within max_wait");
            tokio::time::Instant::now() - start
        }));
        // Reservations are made in spawn order.
        tokio::task::yield_now().await;
    }
    let mut at = Vec::new();
    for t in tasks {
        at.push(t.await.expect("task").as_millis());
    }
    // a, b: the burst; c: the 2/s rate; the second "a" waits for its 3 s spacing; the third 3 s more.
    assert_eq!(at, [0, 0, 500, 3000, 6000]);
}

#[tokio::test]
async fn disabled_demo_and_switched_off_send_nothing() {
    let s = Stage::new().await;
    s.answer_ok("wamid.never").await;
    for extra in [
        [("WHATSAPP_ENABLED", "false")],
        [("WHATSAPP_DEMO_MODE", "true")],
        [("WHATSAPP_NOTIFY_RESTAURANT_ON_ORDER", "0")],
    ] {
        let action = s.action(&unpaced(), &extra);
        assert_eq!(
            action.run(&job(Value::Int(1)), meta(1)).await,
            Ok(()),
            "{extra:?}"
        );
    }
    // Demo mode needs no token, and a disabled action needs no database.
    let demo = s.action(
        &unpaced(),
        &[("WHATSAPP_DEMO_MODE", "true"), ("WHATSAPP_API_TOKEN", "")],
    );
    assert_eq!(demo.run(&job(Value::Int(2)), meta(1)).await, Ok(()));
    let disabled = WhatsappAction::with_settings(
        &unpaced(),
        s.settings(&[("WHATSAPP_ENABLED", "false")]),
        None,
    )
    .expect("builds without a database");
    assert_eq!(disabled.run(&job(Value::Int(1)), meta(1)).await, Ok(()));
    assert!(
        WhatsappAction::with_settings(&unpaced(), s.settings(&[]), None).is_err(),
        "enabled without a database is refused at start"
    );
    assert!(s.requests().await.is_empty());
    assert!(s.log_rows().await.is_empty());
}

#[tokio::test]
async fn order_ids_missing_orders_and_missing_numbers() {
    let s = Stage::new().await;
    s.answer_ok("wamid.ids").await;
    let action = s.action(&unpaced(), &[]);
    // The app's test command sends "test_order_1": logged and completed.
    assert_eq!(
        action
            .run(&job(Value::Str(b"test_order_1".to_vec())), meta(1))
            .await,
        Ok(())
    );
    assert!(s.requests().await.is_empty());
    // A numeric string is an order id.
    assert_eq!(
        action.run(&job(Value::Str(b"2".to_vec())), meta(1)).await,
        Ok(())
    );
    assert_eq!(s.requests().await.len(), 1);
    assert_eq!(
        action.run(&job(Value::Int(999)), meta(1)).await,
        Err(ActionError::Permanent {
            message: "Order 999 not found".into()
        })
    );
    // Order 5's vendor (99) does not exist: no number to send to.
    assert_eq!(
        action.run(&job(Value::Int(5)), meta(1)).await,
        Err(ActionError::Permanent {
            message:
                "Order 5: vendor 99 has no usable WhatsApp number (settings.contact, users.mobile)"
                    .into()
        })
    );
    let skip = WhatsappOptions {
        on_missing_recipient: OnMissingRecipient::Skip,
        ..unpaced()
    };
    assert_eq!(
        s.action(&skip, &[]).run(&job(Value::Int(5)), meta(1)).await,
        Ok(())
    );
    // Vendor 3 has no settings row: its users.mobile is used.
    action
        .run(&job(Value::Int(4)), meta(1))
        .await
        .expect("sent");
    let reqs = s.requests().await;
    assert_eq!(body(reqs.last().expect("a request"))["to"], "97145550101");
    // No token: permanent, naming the setting.
    let unconfigured = s.action(&unpaced(), &[("WHATSAPP_API_TOKEN", "")]);
    assert_eq!(
        unconfigured.run(&job(Value::Int(1)), meta(1)).await,
        Err(ActionError::Permanent {
            message: "WhatsApp API not configured: WHATSAPP_API_TOKEN is empty".into()
        })
    );
}

#[tokio::test]
async fn text_equals_the_apps_formatter_byte_for_byte() {
    let s = Stage::new().await;
    s.answer_ok("wamid.bytes").await;
    let opts = WhatsappOptions {
        recipient: Recipient::Customer,
        ..unpaced()
    };
    let action = s.action(&opts, &[]);
    let orders = [1, 2, 3, 4, 5, 6, 7];
    let mut sent = 0;
    for shape in [
        "as seeded",
        "as migrated (no tax_name, discount_amount, order_notes)",
    ] {
        if shape != "as seeded" {
            s.sql("ALTER TABLE orders DROP COLUMN tax_name, DROP COLUMN discount_amount, DROP COLUMN order_notes");
        }
        for order in orders {
            action
                .run(&job(Value::Int(order)), meta(1))
                .await
                .unwrap_or_else(|e| panic!("order {order} ({shape}): {e}"));
            sent += 1;
            let reqs = s.requests().await;
            assert_eq!(reqs.len(), sent);
            let ours = body(&reqs[sent - 1])["text"]["body"]
                .as_str()
                .expect("a text body")
                .to_owned();
            let app = s.php_text(order);
            assert_eq!(
                ours.as_bytes(),
                app.as_bytes(),
                "order {order} ({shape}):\n{ours}\n---\n{app}"
            );
        }
    }
    // The texts are not trivially equal: formats and fallbacks differ per order.
    let o2 = s.php_text(2);
    assert!(
        o2.contains("Rabatt: -0,00€") && o2.contains("Notiz: \n"),
        "{o2}"
    );
    assert!(s.php_text(6).contains("*Gesamt: 2,68€*"));
    assert!(s.php_text(1).contains("👉 : XOF 500.00"));
}

#[tokio::test]
async fn sends_are_recorded_in_whatsapp_messages_log() {
    let s = Stage::new().await;
    let action = s.action(&unpaced(), &[]);

    s.answer(meta_error(400, 131026, "(#131026) Message undeliverable"))
        .await;
    assert!(action.run(&job(Value::Int(1)), meta(1)).await.is_err());
    s.answer_ok("wamid.HBgLNDkxNTEyMzQ1Njc4OQ==").await;
    action
        .run(&job(Value::Int(2)), meta(1))
        .await
        .expect("sent");
    // A throttled first attempt, then a successful second: one row, retried in place.
    s.answer(meta_error(429, 130429, "(#130429) Rate limit hit"))
        .await;
    assert!(matches!(
        action.run(&job(Value::Int(7)), meta(1)).await,
        Err(ActionError::Retry { .. })
    ));
    s.answer_ok("wamid.second-attempt").await;
    action
        .run(&job(Value::Int(7)), meta(2))
        .await
        .expect("sent");

    let rows = s.log_rows().await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    let failed = &rows[0];
    assert_eq!(failed.int("order_id"), Some(1));
    assert_eq!(failed.int("restaurant_id"), Some(1));
    assert_eq!(failed.str("phone").as_deref(), Some("2250707000001"));
    assert_eq!(
        failed.str("message_type").as_deref(),
        Some("order_notification")
    );
    assert_eq!(failed.str("status").as_deref(), Some("failed"));
    assert_eq!(failed.str("message_id"), None);
    assert_eq!(failed.str("error_code").as_deref(), Some("131026"));
    assert_eq!(
        failed.str("error").as_deref(),
        Some("(#131026) Message undeliverable")
    );
    assert_eq!(failed.str("sent_at"), None);
    assert!(failed.str("created_at").is_some() && failed.str("updated_at").is_some());

    let sent = &rows[1];
    assert_eq!(sent.int("order_id"), Some(2));
    assert_eq!(sent.int("restaurant_id"), Some(2));
    assert_eq!(sent.str("phone").as_deref(), Some("4915123456789"));
    assert_eq!(sent.str("status").as_deref(), Some("sent"));
    assert_eq!(
        sent.str("message_id").as_deref(),
        Some("wamid.HBgLNDkxNTEyMzQ1Njc4OQ==")
    );
    assert_eq!(sent.str("error"), None);
    assert_eq!(sent.str("error_code"), None);
    assert!(sent.str("sent_at").is_some());
    assert_eq!(sent.int("retry_count"), Some(0));

    let retried = &rows[2];
    assert_eq!(retried.int("order_id"), Some(7));
    assert_eq!(retried.str("status").as_deref(), Some("sent"));
    assert_eq!(
        retried.str("message_id").as_deref(),
        Some("wamid.second-attempt")
    );
    assert_eq!(retried.str("error_code"), None);
    assert_eq!(retried.int("retry_count"), Some(1));
    assert!(retried.str("last_retry_at").is_some() && retried.str("sent_at").is_some());

    // A log write that fails does not fail a message that has left.
    s.sql("ALTER TABLE whatsapp_messages_log DROP COLUMN error_code");
    s.answer_ok("wamid.unlogged").await;
    let fresh = s.action(&unpaced(), &[]);
    fresh
        .run(&job(Value::Int(3)), meta(1))
        .await
        .expect("sent anyway");
    assert_eq!(s.log_rows().await.len(), 3);
    // No table: nothing is written, nothing fails.
    s.sql("DROP TABLE whatsapp_messages_log");
    let untabled = s.action(&unpaced(), &[]);
    untabled
        .run(&job(Value::Int(4)), meta(1))
        .await
        .expect("sent");
    assert_eq!(s.requests().await.len(), 2);
}

/// The log rows on the other databases the app supports: PostgreSQL needs its timestamps cast and no
/// untyped NULL parameters, SQLite its own dialect; both must take the retry-in-place update.
#[tokio::test]
async fn log_rows_on_postgresql_and_sqlite() {
    for kind in [DbKind::Postgres, DbKind::Sqlite] {
        let s = Stage::on(kind).await;
        let action = s.action(&unpaced(), &[]);
        s.answer(meta_error(400, 131026, "(#131026) Message undeliverable"))
            .await;
        assert!(matches!(
            action.run(&job(Value::Int(1)), meta(1)).await,
            Err(ActionError::Permanent { .. })
        ));
        s.answer(meta_error(503, 131016, "(#131016) Service unavailable"))
            .await;
        assert!(matches!(
            action.run(&job(Value::Int(2)), meta(1)).await,
            Err(ActionError::Retry { .. })
        ));
        s.answer_ok("wamid.pg-or-sqlite").await;
        action
            .run(&job(Value::Int(2)), meta(2))
            .await
            .expect("sent");

        let rows = s.log_rows().await;
        assert_eq!(rows.len(), 2, "{kind:?}: {rows:?}");
        assert_eq!(rows[0].str("status").as_deref(), Some("failed"), "{kind:?}");
        assert_eq!(
            rows[0].str("error_code").as_deref(),
            Some("131026"),
            "{kind:?}"
        );
        assert_eq!(rows[0].int("restaurant_id"), Some(1), "{kind:?}");
        assert_eq!(rows[0].str("customer_id"), None, "{kind:?}");
        assert_eq!(rows[1].int("order_id"), Some(2), "{kind:?}");
        assert_eq!(rows[1].str("status").as_deref(), Some("sent"), "{kind:?}");
        assert_eq!(
            rows[1].str("message_id").as_deref(),
            Some("wamid.pg-or-sqlite"),
            "{kind:?}"
        );
        assert_eq!(rows[1].str("error_code"), None, "{kind:?}");
        assert_eq!(rows[1].int("retry_count"), Some(1), "{kind:?}");
        assert!(
            rows[1].str("last_retry_at").is_some() && rows[1].str("sent_at").is_some(),
            "{kind:?}"
        );
    }
}

/// Deterministic pseudo-random numbers (no extra dependency).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }
}

#[test]
fn number_format_and_float_strings_match_php() {
    let mut rng = Lcg(0x5eed);
    let mut cases: Vec<(f64, i32)> = Vec::new();
    // Prices as typed: whole cents and mills, ties on the rounding digit, several magnitudes.
    for _ in 0..1500 {
        let cents = (rng.next() % 10_000_000) as f64;
        let scale = [1.0, 10.0, 100.0, 1000.0, 10_000.0][(rng.next() % 5) as usize];
        let sign = if rng.next() % 7 == 0 { -1.0 } else { 1.0 };
        cases.push((sign * cents / scale, (rng.next() % 4) as i32));
    }
    for _ in 0..500 {
        let base = (rng.next() % 100_000) as f64 / 100.0 + 0.005;
        cases.push((base, 2));
        cases.push((base * 3.0, 2));
    }
    for _ in 0..500 {
        let bits = rng.next() % 1_000_000_007;
        let magnitude = 10f64.powi((rng.next() % 16) as i32 - 4);
        cases.push((
            bits as f64 / 1_000_000_007.0 * magnitude,
            (rng.next() % 5) as i32,
        ));
    }
    cases.extend([
        (0.0, 2),
        (-0.0, 2),
        (1e15 + 0.3, 2),
        (0.49999999999999994, 0),
        (1.005, 2),
        (2.675, 2),
    ]);

    let input: String = cases.iter().map(|(v, d)| format!("{v:?} {d}\n")).collect();
    let script = r#"while (($line = fgets(STDIN)) !== false) {
        [$v, $d] = explode(' ', trim($line));
        $f = (float)$v;
        echo number_format($f, (int)$d, '.', ','), "\t", number_format($f, (int)$d, ',', ' '), "\t", (string)$f, "\n";
    }"#;
    let mut child = Command::new("php")
        .args(["-r", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run php");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("php output");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), cases.len());
    for ((v, d), line) in cases.iter().zip(lines) {
        let ours = format!(
            "{}\t{}\t{}",
            number_format(*v, *d, ".", ","),
            number_format(*v, *d, ",", " "),
            float_to_string(*v)
        );
        assert_eq!(ours, line, "value {v:?}, {d} decimals");
    }
}
