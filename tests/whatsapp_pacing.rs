//! Meta's pair rate limit (131056, HTTP 429) and a 200 `held_for_quality_assessment`, through the real
//! binary with one job in flight: PHP dispatches orders 1 and 7 (the same restaurant, A) then order 2
//! (another restaurant, B). A's first message meets 131056: that job and A's next one are handed back
//! (no attempt used, the second without any request), B's goes out at once, and A's two are sent 6 s
//! or more after the refusal. B's answer is `held_for_quality_assessment`: the job is done and the log
//! line carries the wamid and the status.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::actions_whatsapp::meta_error;
use crate::app_data::load_fixture_app;
use crate::support::{DbKind, World};

/// Restaurant A's number as the fixture's `settings.contact` normalises (orders 1 and 7).
const A: &str = "2250707000001";
const HELD_WAMID: &str = "wamid.HBgLNDkxNzAxMjM0NTY3FQIAERgSQUJDREVGMDEyMzQ1Njc4OQA=";

/// (when, recipient, answered status) of each request.
type Seen = Arc<Mutex<Vec<(Instant, String, u16)>>>;

struct Meta {
    seen: Seen,
}

impl Respond for Meta {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body: Json = serde_json::from_slice(&req.body).unwrap_or_default();
        let to = body["to"].as_str().unwrap_or_default().to_owned();
        let mut seen = self.seen.lock().unwrap();
        let first_to_a = to == A && !seen.iter().any(|(_, r, _)| r == A);
        let (status, response) = if first_to_a {
            (
                429,
                meta_error(
                    429,
                    131056,
                    "(#131056) (Business Account, Consumer Account) pair rate limit hit",
                ),
            )
        } else if to == A {
            (200, crate::actions_whatsapp::ok("wamid.a"))
        } else {
            (
                200,
                ResponseTemplate::new(200).set_body_json(json!({
                    "messaging_product": "whatsapp",
                    "contacts": [{"input": to, "wa_id": to}],
                    "messages": [{"id": HELD_WAMID, "message_status": "held_for_quality_assessment"}],
                })),
            )
        };
        seen.push((Instant::now(), to, status));
        response
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_rate_limit_delays_only_that_recipient_and_a_held_message_is_accepted() {
    let mut w = World::new(DbKind::Sqlite);
    load_fixture_app(&w);
    let seen: Seen = Arc::default();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(Meta {
            seen: Arc::clone(&seen),
        })
        .mount(&server)
        .await;
    for (k, v) in [
        ("WHATSAPP_API_URL", format!("{}/v25.0", server.uri())),
        ("WHATSAPP_API_TOKEN", "EAAG-pacing-token".to_owned()),
        ("WHATSAPP_PHONE_NUMBER_ID", "1098765432".to_owned()),
    ] {
        w.extra.push((k.to_owned(), v));
    }
    let mut uuids = Vec::new();
    for order in [1, 7, 2] {
        uuids.extend(w.dispatch(
            "whatsapp_notification",
            &format!(r#"{{"order_id":{order}}}"#),
            "whatsapp",
            1,
        ));
    }
    // No spacing of our own: only Meta's answer delays restaurant A.
    let config = "[actions.whatsapp_notification]\nkind = \"whatsapp\"\n\
                  rate_limit = { per_recipient_ms = 0 }\n";
    let mut worker = w.worker(
        &["--queue=whatsapp", "--tries=1", "--concurrency=1"],
        config,
    );
    worker.wait_for(Duration::from_secs(40), "three jobs done", |logs| {
        logs.iter().filter(|l| l["outcome"] == "done").count() >= 3
    });
    worker.signal("TERM");
    assert!(worker.wait(Duration::from_secs(20)).success());
    let logs = worker.logs();

    let seen = seen.lock().unwrap().clone();
    let order: Vec<(&str, u16)> = seen.iter().map(|(_, to, s)| (to.as_str(), *s)).collect();
    assert_eq!(order.len(), 4, "{order:?}");
    assert_eq!(order[0], (A, 429), "A first, refused");
    assert!(
        order[1].0 != A && order[1].1 == 200,
        "B next, not held up: {order:?}"
    );
    assert_eq!(&order[2..], &[(A, 200), (A, 200)], "A's two, once each");
    let refused_at = seen[0].0;
    for (at, _, _) in &seen[2..] {
        assert!(
            *at - refused_at >= Duration::from_secs(6),
            "A was sent again {:?} after 131056",
            *at - refused_at
        );
    }

    // Both A jobs handed back (one by Meta's answer, one by the pushed-back recipient), none failed,
    // every job done on its first attempt.
    let handed: Vec<&Json> = logs
        .iter()
        .filter(|l| l["outcome"] == "handed_back")
        .collect();
    assert!(
        handed.iter().any(|l| l["uuid"] == uuids[0].as_str()
            && l["reason"].as_str().is_some_and(|r| r.contains("131056"))),
        "{handed:?}"
    );
    assert!(
        handed.iter().any(|l| l["uuid"] == uuids[1].as_str()
            && l["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("WhatsApp rate limit"))),
        "{handed:?}"
    );
    assert!(!handed.iter().any(|l| l["uuid"] == uuids[2].as_str()));
    let done: Vec<&Json> = logs.iter().filter(|l| l["outcome"] == "done").collect();
    assert_eq!(done.len(), 3);
    assert!(done.iter().all(|l| l["attempt"] == 1), "{done:?}");
    assert!(w.failed_rows().await.is_empty());

    // B's message: accepted, held for Meta's quality assessment, logged with its wamid.
    let held = logs
        .iter()
        .find(|l| l["message_status"] == "held_for_quality_assessment")
        .unwrap_or_else(|| panic!("no held line; log:\n{}", worker.log_text()));
    assert_eq!(held["wamid"], HELD_WAMID);
    assert!(held["message"]
        .as_str()
        .is_some_and(|m| m.contains("held for Meta's quality assessment")));
}
