//! `defer-worker dispatch` against real Laravel: the payload is byte-identical to what the app's `defer()`
//! writes (8.83 harness live, 10.x corpus), PHP's `queue:work` runs it, and PHP decodes it to the same
//! action and data.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

use crate::support::{fixture, DbKind, World};

/// Runs our binary with the world's environment; panics with its output when it fails.
fn dw(w: &World, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_defer-worker"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(w.env())
        .output()
        .expect("run defer-worker");
    assert!(
        out.status.success(),
        "defer-worker {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `dispatch` and the uuid it printed.
fn dispatch(w: &World, args: &[&str]) -> String {
    let out = dw(w, &[&["dispatch"], args].concat());
    let uuid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(uuid::Uuid::parse_str(&uuid).is_ok(), "printed {uuid:?}");
    uuid
}

/// The payload with its random `uuid` and `id` replaced by `other`'s, for byte comparison.
fn with_ids_of(payload: &[u8], other: &[u8]) -> String {
    let ids = |p: &[u8]| -> (String, String) {
        let v: Json = serde_json::from_slice(p).expect("payload JSON");
        (
            v["uuid"].as_str().expect("uuid").to_owned(),
            v["id"].as_str().expect("id").to_owned(),
        )
    };
    let (uuid, id) = ids(payload);
    let (their_uuid, their_id) = ids(other);
    String::from_utf8(payload.to_vec())
        .expect("UTF-8")
        .replacen(
            &format!("\"uuid\":\"{uuid}\""),
            &format!("\"uuid\":\"{their_uuid}\""),
            1,
        )
        .replacen(
            &format!("\"id\":\"{id}\""),
            &format!("\"id\":\"{their_id}\""),
            1,
        )
}

#[test]
fn laravel8_payload_is_byte_identical_to_the_apps_defer() {
    let w = World::new(DbKind::Sqlite);
    // Unicode, escaped slashes, quotes, controls, U+2028, int-like and non-canonical keys, nested lists,
    // floats in PHP's shortest form, big integers, bools, null, empty arrays.
    let data = r#"{"order_id":42,"name":"Café \"Chez Aïcha\" 🙂","url":"https://x.test/a/b","ctl":"a\u0000b\tc\n\u2028","7":"seven","07":"zero-seven","-0":0,"items":[{"qty":2,"price":25.5},{"qty":1,"price":0.1}],"big":9223372036854775807,"huge":18446744073709551616,"exp":1e100,"neg":-0.0,"flags":[true,false,null],"empty":[],"obj":{}}"#;
    let theirs = w.dispatch("whatsapp_notification", data, "php_side", 1);
    let ours = dispatch(
        &w,
        &[
            "whatsapp_notification",
            &format!("--data={data}"),
            "--queue=rust_side",
            "--laravel=8",
        ],
    );
    let php = w.lrange(&w.key("php_side"));
    let rust = w.lrange(&w.key("rust_side"));
    assert_eq!((php.len(), rust.len()), (1, 1));
    let php_json: Json = serde_json::from_slice(&php[0]).expect("json");
    assert_eq!(php_json["uuid"], theirs[0].as_str());
    let rust_json: Json = serde_json::from_slice(&rust[0]).expect("json");
    assert_eq!(rust_json["uuid"], ours.as_str());
    assert_eq!(
        with_ids_of(&rust[0], &php[0]),
        String::from_utf8_lossy(&php[0])
    );
    // One notify token each, as RedisQueue::pushRaw leaves.
    assert_eq!(w.lrange(&w.key("rust_side:notify")).len(), 1);
}

#[test]
fn default_shape_is_the_apps_laravel10_payload() {
    let w = World::new(DbKind::Sqlite);
    for (file, action, data, queue) in [
        (
            "l10_whatsapp.json",
            "whatsapp_notification",
            r#"{"order_id":42}"#,
            "whatsapp",
        ),
        ("l10_empty_data.json", "email_notification", "{}", "emails"),
    ] {
        dispatch(
            &w,
            &[
                action,
                &format!("--data={data}"),
                &format!("--queue={queue}"),
            ],
        );
        let ours = w.lrange(&w.key(queue));
        assert_eq!(ours.len(), 1, "{file}");
        let want = fixture(file);
        assert_eq!(
            with_ids_of(&ours[0], &want),
            String::from_utf8_lossy(&want),
            "{file}"
        );
    }
}

#[test]
fn php_worker_runs_our_job_and_php_decodes_it_to_the_same_action_and_data() {
    let w = World::new(DbKind::Sqlite);
    let data = json!({"order_id": 7, "note": "à/b", "lines": [1, 2], "total": 25.5});
    let uuid = dispatch(
        &w,
        &[
            "email_notification",
            &format!("--data={data}"),
            "--queue=emails",
        ],
    );

    // PHP decodes it (harness:decode unserializes the command with Laravel's classes).
    let payload = w.lrange(&w.key("emails")).remove(0);
    let mut child = w
        .php_command(&["harness:decode"], &[])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("php");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&payload)
        .expect("write");
    let out = child.wait_with_output().expect("php output");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decoded: Json = serde_json::from_slice(&out.stdout).expect("harness:decode JSON");
    assert_eq!(
        decoded["deferred"],
        json!({"action": "email_notification", "data": data})
    );
    assert_eq!(decoded["uuid"], uuid.as_str());
    assert_eq!(decoded["attempts"], 0);

    // PHP's worker runs it: DeferredJob::handle succeeded and recorded the uuid.
    w.php_with(
        &[
            "queue:work",
            "redis",
            "--queue=emails",
            "--stop-when-empty",
            "--tries=1",
            "--sleep=0",
        ],
        &[("HARNESS_DONE_KEY", "done")],
    );
    let done: Vec<String> = w
        .lrange(&format!("{}done", w.prefix))
        .into_iter()
        .map(|b| String::from_utf8(b).expect("uuid"))
        .collect();
    assert_eq!(done, vec![uuid]);
    assert!(w.lrange(&w.key("emails")).is_empty());
    assert!(w.zrange(&w.key("emails:reserved")).is_empty());
    assert!(w.failed().is_empty());
}

#[test]
fn delay_goes_to_the_asked_queue_delayed_set_and_php_runs_it_when_due() {
    let w = World::new(DbKind::Sqlite);
    let before = chrono::Utc::now().timestamp();
    let out = dw(
        &w,
        &[
            "dispatch",
            "cache_warming",
            r#"--data={"vendor_id":7}"#,
            "--queue=cache",
            "--delay=1",
        ],
    );
    let uuid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("default queue"),
        "the note about the app's bug: {stderr}"
    );
    assert!(w.lrange(&w.key("cache")).is_empty());
    assert!(w.zrange(&w.key("default:delayed")).is_empty());
    let score: f64 = redis::cmd("ZSCORE")
        .arg(w.key("cache:delayed"))
        .arg(&w.zrange(&w.key("cache:delayed"))[0])
        .query(&mut w.redis())
        .expect("ZSCORE");
    let after = chrono::Utc::now().timestamp();
    assert!(
        (before + 1) as f64 <= score && score <= (after + 1) as f64,
        "due at {score}, dispatched in [{before}, {after}]"
    );

    // PHP's worker migrates it when due and runs it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        w.php_with(
            &[
                "queue:work",
                "redis",
                "--queue=cache",
                "--stop-when-empty",
                "--tries=1",
                "--sleep=0",
            ],
            &[("HARNESS_DONE_KEY", "done")],
        );
        if !w.lrange(&format!("{}done", w.prefix)).is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the delayed job never ran");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        w.lrange(&format!("{}done", w.prefix)),
        vec![uuid.into_bytes()]
    );
}

#[test]
fn bad_data_is_refused_with_the_flag_named() {
    let w = World::new(DbKind::Sqlite);
    for (data, needle) in [("[1,", "--data is not valid JSON"), ("42", "JSON number")] {
        let out = Command::new(env!("CARGO_BIN_EXE_defer-worker"))
            .args(["dispatch", "x", &format!("--data={data}")])
            .env_clear()
            .envs(w.env())
            .output()
            .expect("run");
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{data}: {err}");
    }
    assert!(w.keys().is_empty(), "nothing pushed");
}
