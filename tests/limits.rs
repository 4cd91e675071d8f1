//! `[limits]` end to end with the real binary: an oversize payload and a too-deep command end in
//! failed_jobs (never lost), and `[limits.actions]` caps how many jobs of one action run at once.

use std::time::Duration;

use crate::support::{DbKind, World};

#[test]
fn an_oversize_payload_goes_to_failed_jobs_unparsed_and_small_ones_still_run() {
    let w = World::new(DbKind::Sqlite);
    let small = w
        .dispatch("analytics_tracking", r#"{"order_id":1}"#, "analytics", 1)
        .remove(0);
    let note = "x".repeat(4000);
    let big = w
        .dispatch(
            "analytics_tracking",
            &format!(r#"{{"order_id":2,"note":"{note}"}}"#),
            "analytics",
            1,
        )
        .remove(0);
    let config = "[limits]\nmax_payload_bytes = 2000\n[actions.\"*\"]\nkind = \"log\"\n";
    let mut worker = w.worker(&["--queue=analytics", "--stop-when-empty"], config);
    assert!(worker.wait(Duration::from_secs(20)).success());
    assert_eq!(
        worker.uuids("done"),
        vec![small],
        "the small job still runs"
    );
    let rows = w.failed();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].uuid, big);
    let size = rows[0].payload.len();
    assert!(size > 4000, "the payload is kept whole ({size} bytes)");
    let expected = format!(
        "DeferWorker\\InvalidPayloadException: payload is {size} bytes, over the limit of 2000 bytes (limits.max_payload_bytes"
    );
    assert!(
        rows[0].exception.starts_with(&expected),
        "{}",
        rows[0].exception
    );
    w.assert_no_keys("the oversize job is in failed_jobs, not left reserved");
}

#[test]
fn the_flag_overrides_the_file_and_a_bad_limit_stops_the_start_naming_the_key() {
    let w = World::new(DbKind::Sqlite);
    w.dispatch("analytics_tracking", r#"{"order_id":1}"#, "analytics", 1);
    let config = "[limits]\nmax_payload_bytes = 10\n[actions.\"*\"]\nkind = \"log\"\n";
    let mut worker = w.worker(
        &[
            "--queue=analytics",
            "--stop-when-empty",
            "--max-payload-bytes=100000",
        ],
        config,
    );
    assert!(worker.wait(Duration::from_secs(20)).success());
    assert_eq!(worker.outcomes("done").len(), 1, "{}", worker.log_text());

    let bad = "[limits.actions]\nwhatsapp_notification = 0\n";
    let mut worker = w.worker(&["--queue=analytics", "--stop-when-empty"], bad);
    assert!(!worker.wait(Duration::from_secs(20)).success());
    assert!(
        worker
            .log_text()
            .contains("limits.actions.whatsapp_notification = 0: must be at least 1"),
        "{}",
        worker.log_text()
    );
}

#[test]
fn a_command_nested_deeper_than_max_depth_fails_with_the_byte_offset() {
    let w = World::new(DbKind::Sqlite);
    let mut nested = String::from("1");
    for _ in 0..10 {
        nested = format!(r#"{{"a":{nested}}}"#);
    }
    let uuid = w
        .dispatch("analytics_tracking", &nested, "analytics", 1)
        .remove(0);
    let config = "[limits]\nmax_depth = 4\n[actions.\"*\"]\nkind = \"log\"\n";
    let mut worker = w.worker(&["--queue=analytics", "--stop-when-empty"], config);
    assert!(worker.wait(Duration::from_secs(20)).success());
    let rows = w.failed();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].uuid, uuid);
    let e = &rows[0].exception;
    assert!(
        e.starts_with("DeferWorker\\InvalidPayloadException: ")
            && e.contains("at byte ")
            && e.contains("nesting deeper than 4 levels"),
        "{e}"
    );
}

/// The log's `action_run` start/end lines are written after the permit is taken and before it is given
/// back, so walking them in file order never shows more jobs between start and end than hold a permit.
#[test]
fn per_action_concurrency_never_exceeds_its_limit() {
    let mut w = World::new(DbKind::Sqlite);
    w.extra
        .push(("DEFER_WORKER_LOG".into(), "defer_worker=debug".into()));
    let uuids = w.dispatch("analytics_tracking", r#"{"order_id":3}"#, "analytics", 12);
    let config = "[limits.actions]\nanalytics_tracking = 2\n\
                  [actions.analytics_tracking]\nkind = \"log\"\nsleep_ms = 200\n\
                  [actions.\"*\"]\nkind = \"log\"\n";
    let mut worker = w.worker(
        &["--queue=analytics", "--stop-when-empty", "--concurrency=8"],
        config,
    );
    assert!(worker.wait(Duration::from_secs(60)).success());
    let mut done = worker.uuids("done");
    done.sort();
    let mut want = uuids;
    want.sort();
    assert_eq!(done, want, "every job ran once");
    let (mut running, mut peak, mut starts) = (0i64, 0i64, 0);
    for line in worker.logs() {
        if line["action"] != "analytics_tracking" {
            continue;
        }
        match line["action_run"].as_str() {
            Some("start") => {
                starts += 1;
                running += 1;
                peak = peak.max(running);
            }
            Some("end") => running -= 1,
            _ => {}
        }
    }
    assert_eq!(starts, 12, "{}", worker.log_text());
    assert_eq!(running, 0);
    assert!(peak <= 2, "{peak} jobs of analytics_tracking ran at once");
    // 8 reserved at once, 200 ms each: the two permits are both taken (the limit is what held it at 2).
    assert_eq!(peak, 2);
}
