//! `defer-worker monitor` and `defer-worker clear` against real Redis and Laravel 8.83's
//! `queue:monitor` and `queue:clear`: the numbers match what was pushed, delayed and reserved, and
//! clear empties all four keys of a queue with the count artisan prints.

use std::collections::HashMap;
use std::process::{Command, Output};

use defer_worker::laravel::queue::QueueStats;
use defer_worker::laravel::redis_config::RedisConfig;
use defer_worker::laravel::redis_queue::RedisQueue;
use serde_json::Value as Json;

use crate::support::{fixture, now_f64, DbKind, World};

fn dw(w: &World, args: &[&str], extra: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_defer-worker"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(w.env())
        .envs(extra.iter().copied())
        .output()
        .expect("run defer-worker")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Runtime::new().expect("runtime").block_on(f)
}

async fn queue(w: &World) -> RedisQueue {
    let env: HashMap<String, String> = w.env().into_iter().collect();
    let cfg = RedisConfig::from_env(&|k: &str| env.get(k).cloned()).expect("redis config");
    RedisQueue::connect(&cfg).await.expect("redis")
}

/// `ready` jobs on `q`, `delayed` on `q:delayed` (due in 60 s), and `reserved` of the ready ones
/// reserved for 90 s, all dispatched by the real app helpers.
fn fill(w: &World, q: &str, ready: usize, delayed: usize, reserved: usize) {
    if ready > 0 {
        w.dispatch("cache_warming", r#"{"vendor_id":7}"#, q, ready);
    }
    for p in w.lrange(&w.key(q)).into_iter().take(delayed) {
        // The app's later() bug sends every delayed job to `default`; put these where asked.
        let due = now_f64() as i64 + 60;
        let _: () = redis::cmd("ZADD")
            .arg(w.key(&format!("{q}:delayed")))
            .arg(due)
            .arg(p)
            .query(&mut w.redis())
            .unwrap();
    }
    if delayed > 0 {
        let _: () = redis::cmd("LTRIM")
            .arg(w.key(q))
            .arg(delayed)
            .arg(-1)
            .query(&mut w.redis())
            .unwrap();
    }
    if reserved > 0 {
        block_on(async { queue(w).await.pop(q, 90, reserved).await.expect("pop") });
    }
}

#[test]
fn stats_is_one_snapshot_of_the_queue_keys() {
    let w = World::new(DbKind::Sqlite);
    fill(&w, "s", 5, 1, 2);
    let stats: QueueStats = block_on(async { queue(&w).await.stats("s").await.expect("stats") });
    let now = now_f64() as i64;
    assert_eq!(
        (stats.ready, stats.delayed, stats.reserved),
        (2, 1, 2),
        "{stats:?}"
    );
    assert_eq!(stats.size(), 5);
    assert_eq!(
        stats.head.as_deref(),
        w.lrange(&w.key("s")).first().map(Vec::as_slice)
    );
    let due = stats.next_delayed_at.unwrap() - now;
    assert!((58..=61).contains(&due), "{due}");
    let expires = stats.first_reservation_expires_at.unwrap() - now;
    assert!((88..=91).contains(&expires), "{expires}");
    let empty = block_on(async { queue(&w).await.stats("none").await.expect("stats") });
    assert_eq!(empty, QueueStats::default());
}

#[test]
fn monitor_reports_what_was_pushed_delayed_and_reserved_like_queue_monitor() {
    let w = World::new(DbKind::Sqlite);
    fill(&w, "whatsapp", 3, 0, 0);
    fill(&w, "default", 6, 2, 1);
    // A Laravel 12 payload carries createdAt: the ready head's age comes from it.
    w.rpush("modern", &fixture("l12_whatsapp.json"));
    let created: Json = serde_json::from_slice(&fixture("l12_whatsapp.json")).unwrap();
    let created = created["createdAt"].as_i64().expect("createdAt");

    let out = dw(
        &w,
        &[
            "monitor",
            "whatsapp,redis:default,modern,empty",
            "--max=5",
            "--json",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "default is over --max: exit 1");
    let doc: Json = serde_json::from_str(&stdout(&out)).unwrap();
    let q = |name: &str| {
        doc.as_array()
            .unwrap()
            .iter()
            .find(|l| l["queue"] == name)
            .unwrap_or_else(|| panic!("{name} in {doc}"))
            .clone()
    };
    let (wa, de, mo, em) = (q("whatsapp"), q("default"), q("modern"), q("empty"));
    assert_eq!(
        (
            wa["ready"].as_u64(),
            wa["size"].as_u64(),
            wa["status"].as_str()
        ),
        (Some(3), Some(3), Some("OK"))
    );
    assert_eq!(
        (
            de["ready"].as_u64(),
            de["delayed"].as_u64(),
            de["reserved"].as_u64(),
            de["size"].as_u64()
        ),
        (Some(3), Some(2), Some(1), Some(6))
    );
    assert_eq!(de["status"], "ALERT");
    assert_eq!(de["connection"], "redis");
    let due = de["next_delayed_due_in_secs"].as_i64().unwrap();
    assert!((57..=61).contains(&due), "{due}");
    let expires = de["oldest_reservation_expires_in_secs"].as_i64().unwrap();
    assert!((87..=91).contains(&expires), "{expires}");
    assert_eq!(
        de["oldest_ready_age_secs"],
        Json::Null,
        "8.83 payloads have no createdAt"
    );
    let age = mo["oldest_ready_age_secs"].as_i64().unwrap();
    let want = now_f64() as i64 - created;
    assert!((want - 2..=want + 2).contains(&age), "{age} vs {want}");
    assert_eq!(
        (em["size"].as_u64(), em["status"].as_str()),
        (Some(0), Some("OK"))
    );

    // Laravel's own monitor sees the same sizes and statuses.
    let php = w.php(&["queue:monitor", "whatsapp,default,modern,empty", "--max=5"]);
    let php_rows: Vec<Vec<String>> = php
        .lines()
        .filter(|l| l.starts_with("| "))
        .skip(1)
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect();
    assert_eq!(php_rows.len(), 4, "{php}");
    for row in &php_rows {
        let ours = q(&row[1]);
        assert_eq!(ours["size"].to_string(), row[2], "{php}");
        assert_eq!(ours["status"].as_str().unwrap(), row[3], "{php}");
    }

    // The table, and exit 0 under a higher threshold.
    let out = dw(&w, &["monitor", "whatsapp,default", "--max=1000"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.contains("| redis      | default  | 3     | 2       | 1        | 6    | ?"),
        "{text}"
    );
    assert!(!text.contains("ALERT"), "{text}");
    // A connection we cannot read is refused, not silently read from our Redis.
    let bad = dw(&w, &["monitor", "sqs:default"], &[]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("sqs driver"));
    // The app's database connection is the jobs table (empty here), not Redis.
    let db = dw(&w, &["monitor", "database:default", "--json"], &[]);
    assert_eq!(
        db.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&db.stderr)
    );
    let doc: serde_json::Value = serde_json::from_str(&stdout(&db)).expect("json");
    assert_eq!(doc[0]["connection"], "database");
    assert_eq!(doc[0]["size"], 0);
}

#[test]
fn clear_empties_all_four_keys_and_counts_like_queue_clear() {
    let w = World::new(DbKind::Sqlite);
    fill(&w, "ours", 6, 2, 1);
    fill(&w, "theirs", 6, 2, 1);
    let keys_of = |q: &str| -> Vec<String> {
        let mut k: Vec<String> = w
            .keys()
            .into_iter()
            .filter(|k| k.contains(&format!("queues:{q}")))
            .collect();
        k.sort();
        k
    };
    assert_eq!(keys_of("ours").len(), 4, "ready, delayed, reserved, notify");

    // Production (APP_ENV unset, as Laravel's config defaults it): refused without --force.
    let refused = dw(&w, &["clear", "--queue=ours"], &[]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    assert_eq!(keys_of("ours").len(), 4, "nothing deleted");

    let out = dw(&w, &["clear", "--queue=ours", "--force"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let php = w.php(&["queue:clear", "--queue=theirs", "--force"]);
    assert_eq!(stdout(&out).trim(), "Cleared 6 jobs from the [ours] queue");
    assert_eq!(php.trim(), "Cleared 6 jobs from the [theirs] queue");
    assert_eq!(keys_of("ours"), Vec::<String>::new());
    assert_eq!(keys_of("theirs"), Vec::<String>::new());

    // Outside production no --force is needed; the default queue is REDIS_QUEUE.
    fill(&w, "default", 2, 0, 0);
    fill(&w, "other", 1, 0, 0);
    let out = dw(&w, &["clear"], &[("APP_ENV", "local")]);
    assert_eq!(
        stdout(&out).trim(),
        "Cleared 2 jobs from the [default] queue"
    );
    let out = dw(
        &w,
        &["clear", "redis"],
        &[("APP_ENV", "local"), ("REDIS_QUEUE", "other")],
    );
    assert_eq!(stdout(&out).trim(), "Cleared 1 jobs from the [other] queue");
    w.assert_no_keys("both cleared");
    let bad = dw(&w, &["clear", "sqs", "--force"], &[]);
    assert_eq!(bad.status.code(), Some(1));
}
