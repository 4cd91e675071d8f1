//! Logging through the real binary: what reaches a log file (no escape codes, every line written by the
//! time the process has exited, on an error exit too), `--log-format laravel` (the lines of Laravel
//! 11.27+'s `queue:work --json`, docs/laravel-queue.md §12), and the non-blocking writer dropping and
//! counting lines when stderr stops being read, instead of holding up jobs.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value as Json;

use crate::support::{DbKind, World};

const LOG_ALL: &str = "[actions.\"*\"]\nkind = \"log\"\n";

/// Runs the worker to completion with stderr to a file; returns the file's text.
fn run_to_file(w: &World, cmd: &mut Command) -> (std::process::ExitStatus, String) {
    let path = w
        .dir
        .path()
        .join(format!("stderr-{}.log", uuid::Uuid::new_v4()));
    let file = std::fs::File::create(&path).unwrap();
    let status = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .status()
        .expect("run defer-worker");
    (status, std::fs::read_to_string(&path).unwrap())
}

#[test]
fn a_text_log_written_to_a_file_has_no_escape_codes_and_ends_with_the_last_line() {
    let w = World::new(DbKind::Sqlite);
    let sent = w.dispatch("analytics_tracking", r#"{"order_id":1}"#, "logfile", 20);
    let mut cmd = w.worker_command("text", &["--queue=logfile", "--stop-when-empty"], LOG_ALL);
    // No NO_COLOR: a file alone must be enough to turn colours off.
    let (status, text) = run_to_file(&w, &mut cmd);
    assert!(status.success(), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "escape codes in a log file:\n{text}"
    );
    for uuid in &sent {
        let line = text
            .lines()
            .find(|l| l.contains(uuid.as_str()))
            .unwrap_or_else(|| panic!("no line for {uuid}:\n{text}"));
        assert!(line.contains("job done"), "{line}");
        assert!(line.contains("queue=logfile"), "{line}");
        assert!(line.contains("action=\"analytics_tracking\""), "{line}");
        assert!(line.contains(" ms="), "{line}");
    }
    // One line per job at info: the `log` kind's own line is debug.
    assert_eq!(
        text.lines().filter(|l| l.contains("uuid=")).count(),
        sent.len(),
        "{text}"
    );
    assert!(
        text.trim_end()
            .lines()
            .last()
            .unwrap()
            .contains("worker stopped"),
        "the last line logged is in the file when the process has exited:\n{text}"
    );
}

#[test]
fn on_an_error_exit_the_lines_logged_before_it_are_in_the_file_before_the_error() {
    let w = World::new(DbKind::Sqlite);
    let mut cmd = w.worker_command(
        "text",
        &["--queue=errexit", "--connection=nowhere"],
        LOG_ALL,
    );
    // Logged at start through the writer (a warning), then the command fails.
    cmd.env("DEFER_WORKER_LOG", "info,[=");
    cmd.env("NO_COLOR", "1");
    let (status, text) = run_to_file(&w, &mut cmd);
    assert!(!status.success(), "{text}");
    let warning = text
        .find("DEFER_WORKER_LOG=\"info,[=\" is not a log filter")
        .unwrap_or_else(|| panic!("the start-up warning was lost:\n{text}"));
    let error = text.find("nowhere").unwrap_or_else(|| panic!("{text}"));
    assert!(warning < error, "{text}");
}

/// Every line logged in a job shows the job's fields as a `job{…}` span would: under the usual filters
/// (no span is made; the fields come from the job's task) and under a filter on the span's fields (a
/// real span, by which the filter picks the jobs whose debug lines pass), in `text` and in `json`.
#[test]
fn every_line_of_a_job_shows_its_fields_and_a_filter_on_them_picks_the_jobs() {
    let w = World::new(DbKind::Sqlite);
    for (format, filter) in [
        ("text", "debug"),
        ("text", "info,[job{queue=spanpick}]=debug"),
        ("json", "debug"),
    ] {
        let picked = w.dispatch("analytics_tracking", r#"{"order_id":1}"#, "spanpick", 2);
        let other = w.dispatch("analytics_tracking", r#"{"order_id":1}"#, "spanother", 2);
        let mut cmd = w.worker_command(
            format,
            &["--queue=spanpick,spanother", "--stop-when-empty"],
            LOG_ALL,
        );
        cmd.env("DEFER_WORKER_LOG", filter);
        let (status, text) = run_to_file(&w, &mut cmd);
        assert!(status.success(), "{text}");
        let jobs = picked.iter().map(|u| ("spanpick", u));
        for (queue, uuid) in jobs.chain(other.iter().map(|u| ("spanother", u))) {
            let debug_wanted = filter == "debug" || queue == "spanpick";
            let ours: Vec<&str> = text.lines().filter(|l| l.contains(uuid.as_str())).collect();
            let debug_lines = ours
                .iter()
                .filter(|l| l.contains("deferred job logged"))
                .count();
            assert_eq!(
                debug_lines,
                usize::from(debug_wanted),
                "{filter} {queue}:\n{text}"
            );
            let done = ours
                .iter()
                .find(|l| l.contains("job done"))
                .unwrap_or_else(|| panic!("{text}"));
            if format == "text" {
                let prefix = format!(
                    r#"job{{queue={queue} connection=redis uuid="{uuid}" name="App\\Jobs\\DeferredJob" attempt=1 action="analytics_tracking"}}: "#
                );
                for line in &ours {
                    assert!(line.contains(&prefix), "{filter}: {prefix}\n{line}");
                }
            } else {
                let line: Json = serde_json::from_str(done).unwrap();
                assert_eq!(
                    line["span"],
                    serde_json::json!({"queue": queue, "connection": "redis", "uuid": uuid,
                        "name": "App\\Jobs\\DeferredJob", "attempt": 1, "action": "analytics_tracking"}),
                    "{done}"
                );
            }
        }
    }
}

/// `Y-m-d\TH:i:s.uP`, as PHP's worker writes it.
fn php_timestamp(line: &Json) -> chrono::DateTime<chrono::FixedOffset> {
    let ts = line["timestamp"].as_str().expect("timestamp");
    assert_eq!(ts.len(), 32, "{ts}");
    chrono::DateTime::parse_from_str(ts, "%Y-%m-%dT%H:%M:%S%.6f%:z").expect("Y-m-d\\TH:i:s.uP")
}

#[test]
fn the_laravel_format_writes_queue_work_json_lines_for_each_job() {
    let w = World::new(DbKind::Sqlite);
    let sent = w.dispatch("analytics_tracking", r#"{"order_id":1}"#, "lara", 3);
    // A payload that cannot be read: a `failed` line with the exception.
    w.rpush("lara", br#"{"uuid":"0b6e-broken","displayName":"App\\Jobs\\DeferredJob","job":"Illuminate\\Queue\\CallQueuedHandler@call","data":{"commandName":"App\\Jobs\\DeferredJob","command":"O:3:\"Nope"},"attempts":0}"#);
    let mut cmd = w.worker_command("laravel", &["--queue=lara", "--stop-when-empty"], LOG_ALL);
    let (status, text) = run_to_file(&w, &mut cmd);
    assert!(status.success(), "{text}");
    let lines: Vec<Json> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    for uuid in &sent {
        let of_job: Vec<&Json> = lines.iter().filter(|l| l["uuid"] == **uuid).collect();
        assert_eq!(
            of_job.len(),
            2,
            "starting and success for {uuid}: {of_job:?}"
        );
        let keys = |l: &Json| l.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            keys(of_job[0]),
            [
                "level",
                "id",
                "uuid",
                "connection",
                "queue",
                "job",
                "status",
                "attempts",
                "timestamp"
            ]
        );
        assert_eq!(
            keys(of_job[1]),
            [
                "level",
                "id",
                "uuid",
                "connection",
                "queue",
                "job",
                "status",
                "result",
                "attempts",
                "timestamp",
                "duration"
            ]
        );
        for (line, status) in of_job.iter().zip(["starting", "success"]) {
            assert_eq!(line["level"], "info");
            assert_eq!(line["status"], status);
            assert_eq!(line["connection"], "redis");
            assert_eq!(line["queue"], "lara");
            assert_eq!(line["job"], "App\\Jobs\\DeferredJob");
            assert_eq!(line["attempts"], 1);
            assert_eq!(
                line["id"].as_str().unwrap().len(),
                32,
                "Laravel's Str::random(32) job id"
            );
            assert_eq!(php_timestamp(line).offset().local_minus_utc(), 0);
        }
        assert_eq!(of_job[1]["result"], "deleted");
        assert!(of_job[1]["duration"].as_f64().unwrap() >= 0.0);
        assert!(php_timestamp(of_job[0]) <= php_timestamp(of_job[1]));
    }
    let failed = lines
        .iter()
        .find(|l| l["uuid"] == "0b6e-broken")
        .unwrap_or_else(|| panic!("no line for the broken payload:\n{text}"));
    assert_eq!(failed["level"], "warning");
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["result"], "failed");
    assert!(
        failed["exception"].as_str().unwrap().contains('\\'),
        "{failed}"
    );
    assert!(!failed["message"].as_str().unwrap().is_empty(), "{failed}");
    // Other events: the same family, never a `status`.
    let started = lines
        .iter()
        .find(|l| l["message"] == "worker started")
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(started["level"], "info");
    assert!(started.get("status").is_none());
    php_timestamp(started);
}

fn scrape(port: u16) -> Option<String> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    Some(buf)
}

fn dropped(metrics: &str) -> Option<u64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("defer_worker_log_lines_dropped_total "))
        .and_then(|v| v.parse().ok())
}

#[test]
fn when_nobody_reads_stderr_jobs_go_on_and_the_dropped_lines_are_counted_and_reported() {
    let w = World::new(DbKind::Sqlite);
    let jobs = 3_000;
    w.dispatch("analytics_tracking", r#"{"order_id":1}"#, "stalled", jobs);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let http = format!("--http=127.0.0.1:{port}");
    let mut child = w
        .worker_command("json", &["--queue=stalled", &http], LOG_ALL)
        // Several lines per job: far more than the pipe (64 KiB) and the 1 MiB buffer hold.
        .env("DEFER_WORKER_LOG", "debug,sqlx=warn,hyper=warn,redis=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start defer-worker");
    let left = w.wait_until_empty("stalled", Duration::from_secs(120));
    let metrics = w
        .wait_until(Duration::from_secs(10), || scrape(port).is_some())
        .then(|| scrape(port).unwrap());
    // Stop it, and read what it writes until it has exited: what it held, and the notice.
    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut text = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(left, 0, "every job ran while nobody read stderr");
    assert!(stopped.success() && status.success(), "{status}");
    let metrics = metrics.expect("/metrics answered");
    let n = dropped(&metrics).unwrap_or_else(|| panic!("no dropped-lines counter:\n{metrics}"));
    assert!(n > 0, "{metrics}");
    let reported: u64 = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Json>(l).ok())
        .filter_map(|l| l["lines_dropped"].as_u64())
        .sum();
    assert!(
        reported >= n,
        "the log reports {reported} dropped lines, /metrics {n}"
    );
    // Every line that was written is whole.
    assert!(text
        .lines()
        .all(|l| serde_json::from_str::<Json>(l).is_ok()));
}
