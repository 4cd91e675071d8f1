//! Queue pause (docs/laravel-queue.md §8.3) against real Redis and real Laravel 8.83's cache: the flags
//! `defer-worker pause` writes are the ones PHP's `Cache::get` reads (redis, file and database stores),
//! a running `defer-worker work` takes no job from a paused queue while it drains the others, `resume`
//! and `--for` end the pause, SIGUSR2/SIGCONT pause the whole worker, an unreadable flag neither stops
//! the worker nor resumes a queue, and `/metrics`, `/ready` and `monitor` show what is paused.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value as Json;

use crate::ops_restart::{dw, php_cache, with_store, world};
use crate::support::{DbKind, WorkerProc, World};

const ALL_LOG: &str = "[actions.\"*\"]\nkind = \"log\"\n";
const WAIT: Duration = Duration::from_secs(30);

/// Whether `l` is the worker's line for a pause change: `status` paused/resumed, of `queue` (a queue
/// flag) or of the whole worker (`None`, SIGUSR2/SIGCONT).
fn is_change(l: &Json, status: &str, queue: Option<&str>) -> bool {
    l["status"] == status
        && match queue {
            Some(q) => l["queue"] == q,
            None => {
                l["queue"].is_null()
                    && l["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("worker "))
            }
        }
}

/// Position of the first line `pred` holds for; panics with the log when there is none.
fn index_of(worker: &WorkerProc, what: &str, pred: impl Fn(&Json) -> bool) -> usize {
    worker
        .logs()
        .iter()
        .position(pred)
        .unwrap_or_else(|| panic!("no line for {what}; log:\n{}", worker.log_text()))
}

/// Positions of the `done` lines of `uuids`.
fn done_positions(worker: &WorkerProc, uuids: &[String]) -> Vec<usize> {
    worker
        .logs()
        .iter()
        .enumerate()
        .filter(|(_, l)| l["outcome"] == "done" && uuids.iter().any(|u| l["uuid"] == u.as_str()))
        .map(|(i, _)| i)
        .collect()
}

fn all_done(worker: &WorkerProc, uuids: &[String]) -> bool {
    let done: HashSet<String> = worker.uuids("done").into_iter().collect();
    uuids.iter().all(|u| done.contains(u))
}

fn wait_started(worker: &WorkerProc) {
    worker.wait_for(WAIT, "worker started", |l| {
        l.iter().any(|l| l["message"] == "worker started")
    });
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
}

/// A plain HTTP/1.1 GET; returns the status code and the body.
fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to --http");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("read");
    let (head, body) = reply.split_once("\r\n\r\n").expect("headers");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    (status, body.to_owned())
}

fn php_get(w: &World, key: &str) -> String {
    php_cache(w, &["get", key]).trim().to_owned()
}

fn paused_json(w: &World, queues: &[&str]) -> Json {
    let mut args = vec!["paused", "--json"];
    args.extend_from_slice(queues);
    serde_json::from_slice(&dw(w, &args, &[]).stdout).expect("paused --json")
}

/// `pause`, `pause --for`, `resume`, `--all` and `paused` on one store, each checked with PHP's cache.
fn our_flags_are_the_ones_phps_cache_reads(driver: &str, db: DbKind) {
    let (w, _db1) = world(driver, db);
    let emails = "illuminate:queue:paused:redis:emails";
    assert_eq!(php_get(&w, emails), "null");

    let out = String::from_utf8(dw(&w, &["pause", "redis:emails"], &[]).stdout).unwrap();
    assert!(
        out.contains("queue [redis:emails] has been paused until resumed") && out.contains(driver),
        "{out}"
    );
    assert_eq!(php_get(&w, emails), "true", "{driver}: PHP sees our pause");

    // A bare name is the default connection; --for is pauseFor, with its TTL in the store.
    dw(&w, &["pause", "default", "--for", "60"], &[]);
    let default = "illuminate:queue:paused:redis:default";
    assert_eq!(php_get(&w, default), "true");
    let physical = with_store(&w, |s| async move { s.physical_key(default) });
    match driver {
        "redis" => {
            let mut c = redis::Client::open("redis://127.0.0.1:6379/1")
                .and_then(|c| c.get_connection())
                .expect("redis db 1");
            let ttl: i64 = redis::cmd("TTL").arg(&physical).query(&mut c).expect("TTL");
            assert!((55..=60).contains(&ttl), "TTL {ttl} of {physical}");
            let forever: i64 = redis::cmd("TTL")
                .arg(with_store(&w, |s| async move { s.physical_key(emails) }))
                .query(&mut c)
                .expect("TTL");
            assert_eq!(forever, -1, "pause without --for is forever");
        }
        "file" => {
            let content = std::fs::read_to_string(&physical).expect("cache file");
            let expiry: i64 = content[..10].parse().expect("expiry");
            let now = chrono::Utc::now().timestamp();
            assert!((now + 55..=now + 60).contains(&expiry), "{content}");
            assert_eq!(&content[10..], "b:1;");
        }
        _ => {}
    }

    // PHP writes a flag as Laravel 12's `queue:pause` does; `paused` reads it.
    php_cache(
        &w,
        &["forever", "illuminate:queue:paused:redis:cache", "true"],
    );
    let listed = paused_json(&w, &["redis:emails", "redis:cache", "analytics"]);
    let flags: Vec<(String, bool)> = listed["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .map(|q| {
            (
                q["queue"].as_str().unwrap().to_owned(),
                q["paused"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        flags,
        [
            ("emails".into(), true),
            ("cache".into(), true),
            ("analytics".into(), false)
        ]
    );
    assert_eq!(listed["all_paused"], false);

    let out = String::from_utf8(dw(&w, &["resume", "redis:emails"], &[]).stdout).unwrap();
    assert!(out.contains("[redis:emails] has been resumed ("), "{out}");
    assert_eq!(php_get(&w, emails), "null", "{driver}: PHP sees the resume");
    let out = String::from_utf8(dw(&w, &["resume", "redis:emails"], &[]).stdout).unwrap();
    assert!(out.contains("(it was not paused)"), "{out}");

    // Laravel 13's pauseAll flag pauses every queue, and resumeAll forgets only it.
    dw(&w, &["pause", "--all"], &[]);
    assert_eq!(php_get(&w, "illuminate:queues:paused"), "true");
    let listed = paused_json(&w, &["redis:emails", "whatsapp:whatsapp"]);
    assert_eq!(listed["all_paused"], true);
    assert!(
        listed["queues"]
            .as_array()
            .unwrap()
            .iter()
            .all(|q| q["paused"] == true),
        "{listed}"
    );
    dw(&w, &["resume", "--all"], &[]);
    assert_eq!(php_get(&w, "illuminate:queues:paused"), "null");
    assert_eq!(php_get(&w, "illuminate:queue:paused:redis:cache"), "true");
}

#[test]
fn pause_flags_are_phps_redis_store() {
    our_flags_are_the_ones_phps_cache_reads("redis", DbKind::Sqlite);
}

#[test]
fn pause_flags_are_phps_file_store() {
    our_flags_are_the_ones_phps_cache_reads("file", DbKind::Sqlite);
}

#[test]
fn pause_flags_are_phps_database_store_sqlite() {
    our_flags_are_the_ones_phps_cache_reads("database", DbKind::Sqlite);
}

#[test]
fn pause_flags_are_phps_database_store_mariadb() {
    our_flags_are_the_ones_phps_cache_reads("database", DbKind::MySql);
}

#[test]
fn pause_flags_are_phps_database_store_postgres() {
    our_flags_are_the_ones_phps_cache_reads("database", DbKind::Postgres);
}

#[test]
fn bad_pause_arguments_are_refused_naming_them() {
    let (w, _db1) = world("file", DbKind::Sqlite);
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_defer-worker"))
            .args(args)
            .env_clear()
            .envs(w.env())
            .output()
            .expect("run")
    };
    let out = run(&["pause", "sqs:emails"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sqs:emails"),
        "{out:?}"
    );
    let out = run(&["pause", ":emails"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("empty connection"),
        "{out:?}"
    );
    let out = run(&["pause", "emails", "--for", "0"]);
    assert!(
        !out.status.success(),
        "--for 0 would forget the flag, not pause"
    );
    let out = run(&["pause"]);
    assert!(!out.status.success(), "a queue or --all is required");
    assert_eq!(
        php_get(&w, "illuminate:queue:paused:redis:emails"),
        "null",
        "nothing was written"
    );
}

/// Paused while the worker runs: the paused queue (first in priority) keeps its jobs while the next
/// one drains; `/metrics`, `/ready` and `monitor` say so; `resume` drains it.
#[test]
fn a_paused_queue_waits_while_the_others_drain_and_resume_drains_it() {
    let (w, _db1) = world("redis", DbKind::Sqlite);
    let addr = free_addr();
    let worker = w.worker(
        &[
            "--queue=emails,default",
            "--concurrency=2",
            &format!("--http={addr}"),
        ],
        ALL_LOG,
    );
    wait_started(&worker);
    let paused_at = crate::support::now_f64();
    dw(&w, &["pause", "redis:emails"], &[]);
    worker.wait_for(WAIT, "the worker to see the pause", |l| {
        l.iter().any(|l| is_change(l, "paused", Some("emails")))
    });
    let seen = index_of(&worker, "the pause", |l| {
        is_change(l, "paused", Some("emails"))
    });
    let latency = crate::support::log_time(&worker.logs()[seen]) - paused_at;
    eprintln!("pause seen by the worker {latency:.3} s after `defer-worker pause` started");

    let held = w.dispatch("email_notification", r#"{"order_id":1}"#, "emails", 5);
    let served = w.dispatch("analytics_tracking", r#"{"order_id":1}"#, "default", 5);
    worker.wait_for(WAIT, "default to drain", |_| all_done(&worker, &served));
    assert_eq!(
        w.queue_len("emails"),
        5,
        "no job of the paused queue was taken"
    );
    assert!(done_positions(&worker, &held).is_empty());

    let (status, metrics) = http_get(addr, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("\ndefer_worker_queue_paused{queue=\"emails\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\ndefer_worker_queue_paused{queue=\"default\"} 0\n"),
        "{metrics}"
    );
    assert!(metrics.contains("\ndefer_worker_paused 0\n"), "{metrics}");
    assert_eq!(
        http_get(addr, "/ready"),
        (200, "ready\npaused queues: emails\n".to_owned())
    );
    let monitor: Json =
        serde_json::from_slice(&dw(&w, &["monitor", "emails,default", "--json"], &[]).stdout)
            .expect("monitor --json");
    assert_eq!(
        (monitor[0]["queue"].as_str(), &monitor[0]["paused"]),
        (Some("emails"), &Json::Bool(true))
    );
    assert_eq!(monitor[1]["paused"], false);

    dw(&w, &["resume", "redis:emails"], &[]);
    worker.wait_for(WAIT, "emails to drain after resume", |_| {
        all_done(&worker, &held)
    });
    let resumed = index_of(&worker, "the resume", |l| {
        is_change(l, "resumed", Some("emails"))
    });
    assert!(done_positions(&worker, &held).iter().all(|&i| i > resumed));
    assert_eq!(http_get(addr, "/ready"), (200, "ready\n".to_owned()));
    assert_eq!(w.queue_len("emails"), 0);
}

/// `pause --for 2` (file store): the queue's jobs run only after the flag expired, with no `resume`.
#[test]
fn pause_for_resumes_by_itself() {
    let (w, _db1) = world("file", DbKind::Sqlite);
    let worker = w.worker(&["--queue=emails"], ALL_LOG);
    wait_started(&worker);
    dw(&w, &["pause", "redis:emails", "--for", "2"], &[]);
    worker.wait_for(WAIT, "the worker to see the pause", |l| {
        l.iter().any(|l| is_change(l, "paused", Some("emails")))
    });
    let held = w.dispatch("email_notification", r#"{"order_id":1}"#, "emails", 3);
    worker.wait_for(WAIT, "the jobs to run once the pause expired", |_| {
        all_done(&worker, &held)
    });
    let resumed = index_of(&worker, "the end of the pause", |l| {
        is_change(l, "resumed", Some("emails"))
    });
    assert!(
        done_positions(&worker, &held).iter().all(|&i| i > resumed),
        "a job ran while the queue was paused; log:\n{}",
        worker.log_text()
    );
    assert_eq!(
        php_get(&w, "illuminate:queue:paused:redis:emails"),
        "null",
        "the flag expired"
    );
}

/// SIGUSR2 while the only slot is busy and jobs wait: the running job finishes, and the slot it frees
/// takes none of the waiting jobs until SIGCONT.
#[test]
fn sigusr2_pauses_the_worker_and_sigcont_resumes_it() {
    let (w, _db1) = world("file", DbKind::Sqlite);
    let config = "[actions.\"*\"]\nkind = \"log\"\nsleep_ms = 1500\n";
    let worker = w.worker(&["--queue=default", "--concurrency=1"], config);
    wait_started(&worker);
    let running = w.dispatch("analytics_tracking", r#"{"order_id":1}"#, "default", 1);
    worker.wait_for(WAIT, "the first job to run", |_| {
        w.zrange(&w.key("default:reserved")).len() == 1
    });
    let held = w.dispatch("analytics_tracking", r#"{"order_id":2}"#, "default", 2);
    worker.signal("USR2");
    worker.wait_for(WAIT, "the worker to pause", |l| {
        l.iter().any(|l| is_change(l, "paused", None))
    });
    worker.wait_for(WAIT, "the running job to finish while paused", |_| {
        all_done(&worker, &running)
    });
    // An unpaused worker reserves the next job within milliseconds of the slot freeing; a second
    // of looking at the list shows that nothing was taken.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        w.lrange(&w.key("default")).len(),
        2,
        "log:\n{}",
        worker.log_text()
    );
    assert!(w.zrange(&w.key("default:reserved")).is_empty());
    assert!(done_positions(&worker, &held).is_empty());

    worker.signal("CONT");
    worker.wait_for(WAIT, "the held jobs to run after SIGCONT", |_| {
        all_done(&worker, &held)
    });
    let resumed = index_of(&worker, "SIGCONT", |l| is_change(l, "resumed", None));
    assert!(done_positions(&worker, &held).iter().all(|&i| i > resumed));
}

/// A flag PHP could not have written makes the batch unreadable: the worker logs it with the key,
/// keeps the last state (emails stays paused, default is served) and recovers once it is gone.
#[test]
fn an_unreadable_flag_is_logged_and_the_last_state_kept() {
    let (w, _db1) = world("redis", DbKind::Sqlite);
    let worker = w.worker(&["--queue=emails,default"], ALL_LOG);
    wait_started(&worker);
    dw(&w, &["pause", "redis:emails"], &[]);
    worker.wait_for(WAIT, "the pause", |l| {
        l.iter().any(|l| is_change(l, "paused", Some("emails")))
    });

    let bad = with_store(&w, |s| async move {
        s.physical_key("illuminate:queue:paused:redis:default")
    });
    let mut db1 = redis::Client::open("redis://127.0.0.1:6379/1")
        .and_then(|c| c.get_connection())
        .expect("redis db 1");
    let _: () = redis::cmd("SET")
        .arg(&bad)
        .arg("garbage")
        .query(&mut db1)
        .expect("SET");
    worker.wait_for(WAIT, "the warning naming the key", |l| {
        l.iter().any(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("cannot read the queue pause flags"))
                && l["error"].as_str().is_some_and(|e| e.contains(&bad))
        })
    });
    let held = w.dispatch("email_notification", r#"{"order_id":1}"#, "emails", 3);
    let served = w.dispatch("analytics_tracking", r#"{"order_id":1}"#, "default", 3);
    worker.wait_for(WAIT, "default to drain", |_| all_done(&worker, &served));
    assert_eq!(
        w.queue_len("emails"),
        3,
        "emails stayed paused through the outage"
    );

    let _: () = redis::cmd("DEL").arg(&bad).query(&mut db1).expect("DEL");
    dw(&w, &["resume", "redis:emails"], &[]);
    worker.wait_for(WAIT, "emails to drain", |_| all_done(&worker, &held));
    index_of(&worker, "the recovery", |l| {
        l["message"] == "the pause flags can be read again"
    });
}
