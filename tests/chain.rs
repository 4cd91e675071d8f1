//! Chains dispatched by real Laravel (`Bus::chain([...])` through the harness's `harness:dispatch-chain`):
//! defer-worker runs DeferredJob links and pushes the next link before it deletes the finished one;
//! a link whose next one only PHP can build (a foreign job, catch callbacks) is handed to PHP before it
//! runs, and PHP's `queue:work` carries the chain on, reading the links defer-worker built.

use std::time::Duration;

use serde_json::Value as Json;

use crate::support::{fixture, DbKind, PhpProc, World};

/// Every action runs as `log`: a chain's order shows in the outcome lines.
const LOG_ALL: &str = "[actions.\"*\"]\nkind = \"log\"\n";

/// A world whose app pushes to Redis (`QUEUE_CONNECTION=redis`, as an app with queued jobs has it),
/// so a link with no connection of its own goes where defer-worker works.
fn world() -> World {
    let mut w = World::new(DbKind::Sqlite);
    w.extra
        .push(("QUEUE_CONNECTION".to_owned(), "redis".to_owned()));
    w
}

fn dispatch_chain(w: &World, args: &[&str]) -> String {
    let mut all = vec!["harness:dispatch-chain"];
    all.extend_from_slice(args);
    let out = w.php(&all);
    let uuids: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(uuids.len(), 1, "one payload pushed (the first link): {out}");
    uuids[0].to_owned()
}

/// PHP's `queue:work` on the hand-off queue `php`, recording what it runs under `done`.
fn php_worker(w: &World) -> PhpProc {
    w.php_background(
        &[
            "queue:work",
            "redis",
            "--queue=php",
            "--sleep=0.2",
            "--tries=1",
        ],
        &[("HARNESS_DONE_KEY", "done")],
    )
}

fn field<'a>(line: &'a Json, key: &str) -> &'a str {
    line[key]
        .as_str()
        .or_else(|| line["span"][key].as_str())
        .unwrap_or_default()
}

fn fields(lines: &[Json], key: &str) -> Vec<String> {
    lines.iter().map(|l| field(l, key).to_owned()).collect()
}

/// The `done` lines of one chain in the order its links ran, followed through `next_uuid` from the link
/// no other line names (the lines themselves may be written out of order: a link's successor can start,
/// and log, before the link's own outcome line is written). Every line must be on the path.
fn in_chain_order(done: &[Json]) -> Vec<Json> {
    let named: Vec<&str> = done.iter().map(|l| field(l, "next_uuid")).collect();
    let mut next = done
        .iter()
        .find(|l| !named.contains(&field(l, "uuid")))
        .cloned();
    let mut path = Vec::new();
    while let Some(line) = next {
        let following = field(&line, "next_uuid").to_owned();
        path.push(line);
        next = done.iter().find(|l| field(l, "uuid") == following).cloned();
    }
    assert_eq!(
        path.len(),
        done.len(),
        "one chain, every link on it: {done:?}"
    );
    path
}

#[test]
fn a_bus_chain_of_three_deferred_jobs_runs_in_order_on_defer_worker() {
    let w = world();
    // The second link has a queue of its own; the others take the chain's (chainQueue).
    let first = dispatch_chain(
        &w,
        &[
            "chain_a",
            "chain_b@chain_two",
            "chain_c",
            "--queue=chain_one",
        ],
    );
    let mut worker = w.worker(
        &["--queue=chain_one,chain_two", "--stop-when-empty"],
        LOG_ALL,
    );
    assert!(worker.wait(Duration::from_secs(30)).success());
    let done = in_chain_order(&worker.outcomes("done"));
    assert_eq!(
        fields(&done, "action"),
        ["chain_a", "chain_b", "chain_c"],
        "{}",
        worker.log_text()
    );
    assert_eq!(
        fields(&done, "queue"),
        ["chain_one", "chain_two", "chain_one"]
    );
    assert_eq!(field(&done[0], "uuid"), first);
    for pair in done.windows(2) {
        assert_eq!(
            field(&pair[0], "next_uuid"),
            field(&pair[1], "uuid"),
            "each link ran the payload its predecessor pushed"
        );
    }
    assert_eq!(field(&done[2], "next_uuid"), "", "the last link has none");
    assert!(w.failed().is_empty());
    w.assert_no_keys("every link done and deleted");
}

#[test]
fn the_fixture_chain_no_longer_loses_its_links() {
    let w = world();
    // Laravel 8.83's DeferredJob on `whatsapp` chaining two links with no queue of their own and no
    // chainQueue: they go to the connection's default queue.
    w.rpush("whatsapp", &fixture("foreign_chain.json"));
    let mut worker = w.worker(&["--queue=whatsapp,default", "--stop-when-empty"], LOG_ALL);
    assert!(worker.wait(Duration::from_secs(30)).success());
    let done = in_chain_order(&worker.outcomes("done"));
    assert_eq!(
        fields(&done, "action"),
        [
            "whatsapp_notification",
            "email_notification",
            "analytics_tracking"
        ],
        "{}",
        worker.log_text()
    );
    assert_eq!(fields(&done, "queue"), ["whatsapp", "default", "default"]);
    w.assert_no_keys("the whole chain ran");
}

#[test]
fn a_mixed_chain_completes_with_php_running_the_foreign_link() {
    let w = world();
    // a runs here (its next link is a DeferredJob); b is handed to PHP before it runs (its next link is
    // foreign); PHP runs b and dispatches the marker, which defer-worker hands to PHP too; PHP runs it
    // and dispatches c, which runs here.
    let first = dispatch_chain(
        &w,
        &["chain_a", "chain_b", "marker:m", "chain_c", "--queue=mixed"],
    );
    let _php = php_worker(&w);
    let worker = w.worker(&["--queue=mixed", "--handoff-queue=php"], LOG_ALL);
    worker.wait_for(Duration::from_secs(60), "chain_c done", |logs| {
        logs.iter()
            .any(|l| l["outcome"] == "done" && field(l, "action") == "chain_c")
    });
    let done = worker.outcomes("done");
    assert_eq!(fields(&done, "action"), ["chain_a", "chain_c"]);
    assert_eq!(field(&done[0], "uuid"), first);
    let handed = worker.outcomes("handed_off");
    assert_eq!(
        fields(&handed, "name"),
        ["App\\Jobs\\DeferredJob", "App\\Jobs\\ChainMarker"],
        "{}",
        worker.log_text()
    );
    assert_eq!(field(&handed[0], "action"), "chain_b");
    assert_eq!(
        field(&handed[0], "uuid"),
        field(&done[0], "next_uuid"),
        "PHP got the link defer-worker built"
    );
    assert!(w.wait_until(Duration::from_secs(10), || w.list("done").len() == 2));
    assert_eq!(
        w.list("done"),
        [field(&handed[0], "uuid").to_owned(), "marker:m".to_owned()],
        "PHP ran b, then the marker it dispatched from the chain defer-worker carried"
    );
    assert!(w.failed().is_empty());
}

#[test]
fn a_chain_with_catch_callbacks_is_left_to_php_link_by_link() {
    let w = world();
    dispatch_chain(&w, &["chain_a", "chain_b", "--queue=caught", "--catch"]);
    let _php = php_worker(&w);
    let worker = w.worker(&["--queue=caught", "--handoff-queue=php"], LOG_ALL);
    // The last link too: its failure would run the catch callbacks, which only PHP can.
    assert!(
        w.wait_until(Duration::from_secs(60), || w.list("done").len() == 2),
        "PHP ran both links; log:\n{}",
        worker.log_text()
    );
    let handed = worker.outcomes("handed_off");
    assert_eq!(fields(&handed, "action"), ["chain_a", "chain_b"]);
    assert!(
        handed
            .iter()
            .all(|l| field(l, "reason") == "the chain has catch callbacks (PHP closures)"),
        "{handed:?}"
    );
    assert!(worker.outcomes("done").is_empty(), "none ran here");
    assert!(w.failed().is_empty());
}
