//! `laravel::redis_queue` against a real Redis at 127.0.0.1:6379, and against Laravel 8.83's own
//! `Illuminate\Queue\RedisQueue` (Debian's php-laravel-framework + phpredis) via
//! `tests/php/redis_queue.php`. Every test uses its own random key prefix and deletes its keys on
//! drop, even when it panics.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use defer_worker::laravel::redis_config::RedisConfig;
use defer_worker::laravel::redis_queue::{RedisJob, RedisQueue};
use redis::AsyncCommands;
use serde_json::Value as Json;

const REDIS_URL: &str = "redis://127.0.0.1:6379/0";
const LARAVEL_AUTOLOAD: &str = "/usr/share/php/Illuminate/autoload.php";

/// One test's view of Redis: our queue under a unique prefix, plus a raw connection to check
/// the real key names with plain commands.
struct Ctx {
    prefix: String,
    queue: RedisQueue,
    raw: redis::aio::MultiplexedConnection,
}

impl Ctx {
    async fn new() -> Ctx {
        let prefix = format!("dwtest_{}_", uuid::Uuid::new_v4().simple());
        let cfg = RedisConfig {
            url: REDIS_URL.to_owned(),
            prefix: prefix.clone(),
            cluster_nodes: Vec::new(),
        };
        let queue = RedisQueue::connect(&cfg)
            .await
            .expect("Redis at 127.0.0.1:6379");
        let raw = redis::Client::open(REDIS_URL)
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("raw connection");
        Ctx { prefix, queue, raw }
    }

    /// The physical key name, built by hand so the test does not trust `RedisQueue::key`.
    fn k(&self, suffix: &str) -> String {
        format!("{}queues:{suffix}", self.prefix)
    }

    async fn llen(&self, suffix: &str) -> i64 {
        self.raw.clone().llen(self.k(suffix)).await.expect("LLEN")
    }

    async fn lrange(&self, suffix: &str) -> Vec<Vec<u8>> {
        self.raw
            .clone()
            .lrange(self.k(suffix), 0, -1)
            .await
            .expect("LRANGE")
    }

    async fn zcard(&self, suffix: &str) -> i64 {
        self.raw.clone().zcard(self.k(suffix)).await.expect("ZCARD")
    }

    async fn zscore(&self, suffix: &str, member: &[u8]) -> Option<f64> {
        self.raw
            .clone()
            .zscore(self.k(suffix), member)
            .await
            .expect("ZSCORE")
    }

    async fn pop_one(&self, queue: &str, retry_after: u64) -> RedisJob {
        let mut jobs = self.queue.pop(queue, retry_after, 1).await.expect("pop");
        assert_eq!(jobs.len(), 1, "expected exactly one job on {queue}");
        jobs.remove(0)
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        // Synchronous so it also runs while unwinding from a failed assertion.
        let Ok(client) = redis::Client::open(REDIS_URL) else {
            return;
        };
        let Ok(mut conn) = client.get_connection() else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query(&mut conn)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}

fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    i64::try_from(secs).expect("sane clock")
}

fn job(id: &str) -> Vec<u8> {
    format!(r#"{{"uuid":"u-{id}","displayName":"App\\Jobs\\DeferredJob","id":"{id}","data":{{"list":[1,2]}},"attempts":0}}"#)
        .into_bytes()
}

fn json(bytes: &[u8]) -> Json {
    serde_json::from_slice(bytes).expect("valid JSON")
}

#[tokio::test]
async fn pop_on_empty_queue_returns_nothing() {
    let c = Ctx::new().await;
    assert!(c.queue.pop("default", 90, 5).await.expect("pop").is_empty());
    assert_eq!(c.zcard("default:reserved").await, 0);
}

#[tokio::test]
async fn push_then_pop_reserves_a_copy_with_attempts_plus_one_under_the_prefix() {
    let c = Ctx::new().await;
    assert_eq!(c.queue.key("default"), c.k("default"));
    let payload = job("a1");
    c.queue.push_raw("default", &payload).await.expect("push");
    // The prefix is applied to the real keys.
    assert_eq!(c.lrange("default").await, vec![payload.clone()]);
    assert_eq!(c.lrange("default:notify").await, vec![b"1".to_vec()]);

    let before = now();
    let popped = c.pop_one("default", 90).await;
    assert_eq!(popped.queue, "default");
    assert_eq!(popped.original, payload, "original bytes must be untouched");
    assert_eq!(popped.invalid, None);
    let reserved = json(&popped.reserved);
    assert_eq!(reserved["attempts"], 1);
    assert_eq!(reserved["id"], "a1");
    assert_eq!(json(&popped.original)["attempts"], 0);

    let score = c
        .zscore("default:reserved", &popped.reserved)
        .await
        .expect("reserved member");
    assert!(
        (score as i64 - (before + 90)).abs() <= 1,
        "score {score}, now {before}"
    );
    assert_eq!(c.llen("default").await, 0);
    assert_eq!(c.llen("default:notify").await, 0, "notify token drained");
}

#[tokio::test]
async fn pop_max_takes_jobs_in_fifo_order() {
    let c = Ctx::new().await;
    for i in 0..5 {
        c.queue
            .push_raw("q", &job(&format!("j{i}")))
            .await
            .expect("push");
    }
    let jobs = c.queue.pop("q", 60, 3).await.expect("pop");
    let ids: Vec<Json> = jobs
        .iter()
        .map(|j| json(&j.original)["id"].clone())
        .collect();
    assert_eq!(ids, vec!["j0", "j1", "j2"]);
    assert_eq!(c.llen("q").await, 2);
    assert_eq!(c.llen("q:notify").await, 2);
    assert_eq!(c.zcard("q:reserved").await, 3);
}

#[tokio::test]
async fn invalid_payloads_are_flagged_and_kept_in_reserved() {
    let c = Ctx::new().await;
    let not_json = b"{not json".to_vec();
    let no_attempts = br#"{"id":"x","data":{}}"#.to_vec();
    let text_attempts = br#"{"id":"y","attempts":"0"}"#.to_vec();
    for p in [&not_json, &no_attempts, &text_attempts] {
        c.queue.push_raw("q", p).await.expect("push");
    }
    c.queue.push_raw("q", &job("good")).await.expect("push");

    let jobs = c.queue.pop("q", 60, 10).await.expect("pop");
    assert_eq!(jobs.len(), 4);
    let reasons: Vec<Option<String>> = jobs.iter().map(|j| j.invalid.clone()).collect();
    assert!(
        reasons[0]
            .as_deref()
            .is_some_and(|r| r.contains("not valid JSON")),
        "{reasons:?}"
    );
    assert!(
        reasons[1]
            .as_deref()
            .is_some_and(|r| r.contains("attempts")),
        "{reasons:?}"
    );
    assert!(
        reasons[2]
            .as_deref()
            .is_some_and(|r| r.contains("attempts")),
        "{reasons:?}"
    );
    assert_eq!(reasons[3], None);
    for (j, original) in jobs.iter().zip([&not_json, &no_attempts, &text_attempts]) {
        assert_eq!(&j.original, original);
        assert_eq!(
            &j.reserved, original,
            "an invalid payload is reserved as it is"
        );
        assert!(
            c.zscore("q:reserved", original).await.is_some(),
            "nothing lost"
        );
    }
    assert_eq!(json(&jobs[3].reserved)["attempts"], 1);
    assert_eq!(c.llen("q:notify").await, 0);

    // The worker records it as failed, then deletes it.
    assert!(c
        .queue
        .delete_reserved("q", &not_json)
        .await
        .expect("delete"));
    assert_eq!(c.zscore("q:reserved", &not_json).await, None);
}

#[tokio::test]
async fn release_goes_through_delayed_and_migrate_brings_due_jobs_back() {
    let c = Ctx::new().await;
    c.queue.push_raw("q", &job("now")).await.expect("push");
    c.queue.push_raw("q", &job("later")).await.expect("push");
    let due = c.pop_one("q", 60).await;
    let not_due = c.pop_one("q", 60).await;

    let t = now();
    assert!(c
        .queue
        .release("q", &due.reserved, 0)
        .await
        .expect("release"));
    assert!(c
        .queue
        .release("q", &not_due.reserved, 100)
        .await
        .expect("release"));
    assert_eq!(c.zcard("q:reserved").await, 0);
    let score = c
        .zscore("q:delayed", &not_due.reserved)
        .await
        .expect("in delayed");
    assert!(
        (score as i64 - (t + 100)).abs() <= 1,
        "score {score}, now {t}"
    );
    assert!(c.zscore("q:delayed", &due.reserved).await.is_some());
    assert_eq!(
        c.llen("q").await,
        0,
        "a release with delay 0 is not ready before migrate"
    );

    assert_eq!(c.queue.migrate("q", -1).await.expect("migrate"), 1);
    assert_eq!(
        c.lrange("q").await,
        vec![due.reserved.clone()],
        "the reserved bytes come back"
    );
    assert_eq!(c.llen("q:notify").await, 1);
    assert!(
        c.zscore("q:delayed", &not_due.reserved).await.is_some(),
        "not yet due stays"
    );

    // The second attempt sees attempts 1 in the original and reserves attempts 2.
    let again = c.pop_one("q", 60).await;
    assert_eq!(again.original, due.reserved);
    assert_eq!(json(&again.reserved)["attempts"], 2);
}

#[tokio::test]
async fn migrate_moves_expired_reservations_oldest_first_within_the_limit() {
    let c = Ctx::new().await;
    c.queue.push_raw("q", &job("r")).await.expect("push");
    let expired = c.pop_one("q", 0).await;
    let t = now();
    for i in 1..=5 {
        c.queue
            .later_raw("q", &job(&format!("d{i}")), t - 100 + i)
            .await
            .expect("later");
    }
    c.queue
        .later_raw("q", &job("future"), t + 1000)
        .await
        .expect("later");
    assert_eq!(
        c.zscore("q:delayed", &job("d3")).await,
        Some((t - 97) as f64)
    );

    // limit 2 applies to each set: two delayed (oldest first), then the expired reservation.
    assert_eq!(c.queue.migrate("q", 2).await.expect("migrate"), 3);
    assert_eq!(
        c.lrange("q").await,
        vec![job("d1"), job("d2"), expired.reserved.clone()]
    );
    assert_eq!(c.llen("q:notify").await, 3);
    assert_eq!(c.zcard("q:reserved").await, 0);
    assert_eq!(c.zcard("q:delayed").await, 4);

    assert_eq!(c.queue.migrate("q", -1).await.expect("migrate"), 3);
    assert_eq!(c.zcard("q:delayed").await, 1, "only the future job is left");
    assert_eq!(c.llen("q").await, 6);
}

#[tokio::test]
async fn extend_reservation_keeps_a_held_job_out_of_migration() {
    let c = Ctx::new().await;
    c.queue.push_raw("q", &job("x")).await.expect("push");
    let p = c.pop_one("q", 1).await;
    let until = now() + 3600;
    assert!(c
        .queue
        .extend_reservation("q", &p.reserved, until)
        .await
        .expect("extend"));
    assert_eq!(
        c.zscore("q:reserved", &p.reserved).await,
        Some(until as f64)
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    c.queue.migrate("q", -1).await.expect("migrate");
    assert_eq!(
        c.llen("q").await,
        0,
        "an extended reservation is not migrated back"
    );
    assert!(c
        .queue
        .delete_reserved("q", &p.reserved)
        .await
        .expect("delete"));
    assert!(
        !c.queue
            .extend_reservation("q", &p.reserved, until)
            .await
            .expect("extend"),
        "extending a job that is no longer reserved does not re-add it"
    );
    assert_eq!(c.zcard("q:reserved").await, 0);
}

/// `lua/extend.lua`, a running job's lease: the exact member only, forward only, and nothing once
/// the reservation ran out and another worker popped the job (its own member, attempts + 1).
#[tokio::test]
async fn the_extend_script_keeps_only_our_exact_member_and_only_moves_it_forward() {
    let c = Ctx::new().await;
    c.queue.push_raw("q", &job("x")).await.expect("push");
    let ours = c.pop_one("q", 2).await;
    let popped_until = ours.reserved_until;
    assert_eq!(
        c.zscore("q:reserved", &ours.reserved).await,
        Some(popped_until as f64)
    );
    let extend = |until: i64| c.queue.extend_reservation("q", &ours.reserved, until);
    assert!(
        extend(popped_until).await.expect("extend"),
        "same score: still ours"
    );
    assert!(extend(popped_until - 10).await.expect("extend"));
    assert_eq!(
        c.zscore("q:reserved", &ours.reserved).await,
        Some(popped_until as f64),
        "never backwards"
    );
    assert!(extend(popped_until + 100).await.expect("extend"));
    assert_eq!(
        c.zscore("q:reserved", &ours.reserved).await,
        Some((popped_until + 100) as f64)
    );

    // Our reservation runs out; a migration and another worker's pop take the job.
    let mut raw = c.raw.clone();
    let _: () = raw
        .zadd(c.k("q:reserved"), &ours.reserved, now() - 1)
        .await
        .expect("ZADD");
    assert_eq!(c.queue.migrate("q", -1).await.expect("migrate"), 1);
    let theirs = c.pop_one("q", 90).await;
    assert_ne!(theirs.reserved, ours.reserved, "attempts 2: another member");
    assert!(!extend(now() + 100).await.expect("extend"), "lost");
    assert_eq!(c.zcard("q:reserved").await, 1, "nothing added back");
    assert_eq!(
        c.zscore("q:reserved", &theirs.reserved).await,
        Some(theirs.reserved_until as f64),
        "theirs untouched"
    );
    assert_eq!(c.llen("q").await, 0);
}

#[tokio::test]
async fn migrate_moves_more_than_one_chunk() {
    let c = Ctx::new().await;
    let t = now();
    for i in 0..250 {
        c.queue
            .later_raw("q", &job(&format!("m{i:03}")), t - 10)
            .await
            .expect("later");
    }
    assert_eq!(c.queue.migrate("q", -1).await.expect("migrate"), 250);
    assert_eq!(c.llen("q").await, 250);
    assert_eq!(c.llen("q:notify").await, 250);
    assert_eq!(c.zcard("q:delayed").await, 0);
}

#[tokio::test]
async fn stale_reservations_are_not_released_handed_off_or_deleted_twice() {
    let c = Ctx::new().await;
    c.queue.push_raw("q", &job("s")).await.expect("push");
    let popped = c.pop_one("q", 0).await;
    // The reservation expires and another worker's migrate re-queues the job.
    assert_eq!(c.queue.migrate("q", -1).await.expect("migrate"), 1);

    assert!(!c
        .queue
        .release("q", &popped.reserved, 0)
        .await
        .expect("release"));
    assert_eq!(
        c.zcard("q:delayed").await,
        0,
        "release must not duplicate the job"
    );
    assert!(!c
        .queue
        .handoff("q", &popped.reserved, "php", &popped.original)
        .await
        .expect("handoff"));
    assert_eq!(c.llen("php").await, 0, "handoff must not duplicate the job");
    assert_eq!(c.llen("php:notify").await, 0);
    assert!(!c
        .queue
        .delete_reserved("q", &popped.reserved)
        .await
        .expect("delete"));
    assert_eq!(
        c.lrange("q").await,
        vec![popped.reserved.clone()],
        "exactly one copy remains"
    );
}

#[tokio::test]
async fn handoff_moves_the_exact_payload_to_the_other_queue() {
    let c = Ctx::new().await;
    c.queue.push_raw("rust", &job("h")).await.expect("push");
    let popped = c.pop_one("rust", 60).await;
    assert!(c
        .queue
        .handoff("rust", &popped.reserved, "php", &popped.original)
        .await
        .expect("handoff"));
    assert_eq!(c.zcard("rust:reserved").await, 0);
    assert_eq!(c.lrange("php").await, vec![popped.original.clone()]);
    assert_eq!(c.lrange("php:notify").await, vec![b"1".to_vec()]);
    assert_eq!(
        json(&c.lrange("php").await[0])["attempts"],
        0,
        "no attempt consumed"
    );
}

#[tokio::test]
async fn hand_back_delays_the_original_payload_so_no_attempt_is_used() {
    let c = Ctx::new().await;
    c.queue.push_raw("q", &job("held")).await.expect("push");
    let popped = c.pop_one("q", 60).await;
    assert_eq!(json(&popped.reserved)["attempts"], 1);
    let t = now();
    assert!(c
        .queue
        .hand_back("q", &popped.reserved, &popped.original, 7)
        .await
        .expect("hand back"));
    assert_eq!(c.zcard("q:reserved").await, 0);
    assert_eq!(c.zscore("q:delayed", &popped.reserved).await, None);
    let score = c
        .zscore("q:delayed", &popped.original)
        .await
        .expect("the original in :delayed");
    assert!(
        (score as i64 - (t + 7)).abs() <= 1,
        "score {score}, now {t}"
    );
    // A stale reservation is not handed back twice.
    assert!(!c
        .queue
        .hand_back("q", &popped.reserved, &popped.original, 0)
        .await
        .expect("hand back"));
    assert_eq!(c.zcard("q:delayed").await, 1);
    // Due again, it is popped as the same first attempt.
    let mut conn = c.raw.clone();
    let _: () = redis::cmd("ZADD")
        .arg(c.k("q:delayed"))
        .arg("XX")
        .arg(0)
        .arg(&popped.original)
        .query_async(&mut conn)
        .await
        .expect("make it due");
    assert_eq!(c.queue.migrate("q", -1).await.expect("migrate"), 1);
    let again = c.pop_one("q", 60).await;
    assert_eq!(again.original, popped.original);
    assert_eq!(json(&again.reserved)["attempts"], 1);
}

#[tokio::test]
async fn size_counts_ready_delayed_and_reserved_and_clear_deletes_everything() {
    let c = Ctx::new().await;
    c.queue.push_raw("q", &job("1")).await.expect("push");
    c.queue.push_raw("q", &job("2")).await.expect("push");
    c.queue
        .later_raw("q", &job("3"), now() + 60)
        .await
        .expect("later");
    c.pop_one("q", 60).await;
    assert_eq!(c.queue.size("q").await.expect("size"), 3);
    assert_eq!(c.queue.size("other").await.expect("size"), 0);

    assert_eq!(c.queue.clear("q").await.expect("clear"), 3);
    let exists: i64 = c
        .raw
        .clone()
        .exists(vec![
            c.k("q"),
            c.k("q:delayed"),
            c.k("q:reserved"),
            c.k("q:notify"),
        ])
        .await
        .expect("EXISTS");
    assert_eq!(exists, 0);
    assert_eq!(c.queue.size("q").await.expect("size"), 0);
}

#[tokio::test]
async fn next_due_is_the_earliest_delayed_or_reserved_score() {
    let c = Ctx::new().await;
    assert_eq!(c.queue.next_due("q").await.expect("next_due"), None);
    let t = now();
    c.queue
        .later_raw("q", &job("d"), t + 500)
        .await
        .expect("later");
    assert_eq!(
        c.queue.next_due("q").await.expect("next_due"),
        Some(t + 500)
    );
    c.queue.push_raw("q", &job("r")).await.expect("push");
    let before = now();
    c.pop_one("q", 30).await;
    let due = c
        .queue
        .next_due("q")
        .await
        .expect("next_due")
        .expect("some");
    assert!((due - (before + 30)).abs() <= 1, "due {due}, now {before}");
}

#[tokio::test]
async fn block_for_notify_wakes_quickly_when_a_job_is_pushed() {
    let c = Ctx::new().await;
    let pusher = c.queue.clone();
    let handle = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let pushed_at = Instant::now();
        pusher.push_raw("wake", &job("w")).await.expect("push");
        pushed_at
    });
    let queues = vec!["idle".to_owned(), "wake".to_owned()];
    let got = c
        .queue
        .block_for_notify(&queues, Duration::from_secs(5))
        .await
        .expect("block");
    let woke_at = Instant::now();
    let pushed_at = handle.await.expect("pusher");
    assert_eq!(got.as_deref(), Some("wake"));
    let latency = woke_at.saturating_duration_since(pushed_at);
    assert!(
        latency < Duration::from_millis(200),
        "woke {latency:?} after the push"
    );
    assert_eq!(c.llen("wake:notify").await, 0, "the token was consumed");
    assert_eq!(c.llen("wake").await, 1, "the job itself is left for pop");
}

#[tokio::test]
async fn block_for_notify_returns_none_at_timeout() {
    let c = Ctx::new().await;
    let start = Instant::now();
    let got = c
        .queue
        .block_for_notify(&["nothing".to_owned()], Duration::from_millis(300))
        .await
        .expect("block");
    let waited = start.elapsed();
    assert_eq!(got, None);
    assert!(
        waited >= Duration::from_millis(250),
        "returned after {waited:?}"
    );
    assert!(waited < Duration::from_secs(3), "returned after {waited:?}");
    // The blocking connection is reused and still works.
    c.queue.push_raw("nothing", &job("n")).await.expect("push");
    let got = c
        .queue
        .block_for_notify(&["nothing".to_owned()], Duration::from_secs(1))
        .await;
    assert_eq!(got.expect("block").as_deref(), Some("nothing"));
}

#[tokio::test]
async fn block_for_notify_does_not_stall_other_commands() {
    let c = Ctx::new().await;
    let blocker = c.queue.clone();
    let waiting = tokio::spawn(async move {
        blocker
            .block_for_notify(&["quiet".to_owned()], Duration::from_secs(2))
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    c.queue.push_raw("busy", &job("b")).await.expect("push");
    assert_eq!(c.queue.size("busy").await.expect("size"), 1);
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(500),
        "commands waited {took:?} behind BLPOP"
    );
    assert!(!waiting.is_finished(), "the BLPOP should still be waiting");
    waiting.abort();
}

#[tokio::test]
async fn connecting_to_a_closed_port_is_a_connection_error_naming_the_endpoint() {
    let cfg = RedisConfig {
        url: "redis://:topsecret@127.0.0.1:1/0".to_owned(),
        prefix: "dwtest_closed_".to_owned(),
        cluster_nodes: Vec::new(),
    };
    let err = RedisQueue::connect(&cfg)
        .await
        .expect_err("nothing listens on port 1");
    assert!(err.is_connection(), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("127.0.0.1:1"), "{text}");
    assert!(!text.contains("topsecret"), "{text}");
}

#[tokio::test]
async fn block_for_notify_reports_the_first_queue_in_priority_order() {
    let c = Ctx::new().await;
    c.queue.push_raw("low", &job("l")).await.expect("push");
    c.queue.push_raw("high", &job("h")).await.expect("push");
    let queues = vec!["high".to_owned(), "low".to_owned()];
    let got = c
        .queue
        .block_for_notify(&queues, Duration::from_secs(1))
        .await
        .expect("block");
    assert_eq!(got.as_deref(), Some("high"));
    assert_eq!(
        c.llen("low:notify").await,
        1,
        "the lower-priority token is untouched"
    );
}

// ---- Interop with Laravel 8.83's own RedisQueue (phpredis) --------------------------------------

fn php_available() -> bool {
    // A missing Laravel is a failure, not a skip: .ci/run installs it.
    assert!(
        Path::new(LARAVEL_AUTOLOAD).exists(),
        "{LARAVEL_AUTOLOAD} not found: install php-cli php-laravel-framework php-redis (.ci/run does)"
    );
    true
}

/// Runs tests/php/redis_queue.php and returns its JSON output.
async fn php(prefix: &str, action: &str, queue: &str) -> Json {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/php/redis_queue.php");
    let out = tokio::process::Command::new("php")
        .arg(&script)
        .args([prefix, action, queue])
        .output()
        .await
        .expect("run php");
    assert!(
        out.status.success(),
        "php {action} failed: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "php {action} printed non-JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn json_str_bytes(v: &Json) -> Vec<u8> {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
        .as_bytes()
        .to_vec()
}

#[tokio::test]
async fn laravel_push_then_rust_pop_keeps_the_original_bytes() {
    if !php_available() {
        return;
    }
    let c = Ctx::new().await;
    let list = php(&c.prefix, "push", "interop").await;
    let pushed = json_str_bytes(&list[0]);
    assert_eq!(
        c.llen("interop:notify").await,
        1,
        "PHP wrote under the same prefixed keys"
    );

    let popped = c.pop_one("interop", 90).await;
    assert_eq!(popped.original, pushed);
    assert_eq!(popped.invalid, None);
    let original = json(&popped.original);
    let reserved = json(&popped.reserved);
    assert_eq!(original["displayName"], "App\\Jobs\\DeferredJob");
    assert_eq!(reserved["attempts"], 1);
    assert_eq!(
        reserved["data"]["command"], original["data"]["command"],
        "command survives cjson"
    );
    assert_eq!(c.llen("interop:notify").await, 0);
    assert!(c
        .queue
        .delete_reserved("interop", &popped.reserved)
        .await
        .expect("delete"));
}

#[tokio::test]
async fn rust_push_then_laravel_pop_sees_attempt_one() {
    if !php_available() {
        return;
    }
    let c = Ctx::new().await;
    let payload = job("from-rust");
    c.queue.push_raw("interop", &payload).await.expect("push");

    let got = php(&c.prefix, "pop", "interop").await;
    assert_eq!(json_str_bytes(&got["raw"]), payload);
    assert_eq!(got["attempts"], 1);
    assert_eq!(got["id"], "from-rust");
    assert_eq!(c.llen("interop").await, 0);
    assert_eq!(c.llen("interop:notify").await, 0);
    assert_eq!(
        c.zcard("interop:reserved").await,
        0,
        "PHP's delete found its reservation"
    );
}

#[tokio::test]
async fn rust_release_then_laravel_migrate_and_pop_gets_the_job_back() {
    if !php_available() {
        return;
    }
    let c = Ctx::new().await;
    c.queue
        .push_raw("interop", &job("rel"))
        .await
        .expect("push");
    let popped = c.pop_one("interop", 90).await;
    assert!(c
        .queue
        .release("interop", &popped.reserved, 0)
        .await
        .expect("release"));

    // Laravel's pop migrates :delayed first, then pops.
    let got = php(&c.prefix, "pop", "interop").await;
    assert_ne!(got, Json::Null, "PHP did not find the released job");
    assert_eq!(json_str_bytes(&got["raw"]), popped.reserved);
    assert_eq!(got["attempts"], 2);
    assert_eq!(c.zcard("interop:delayed").await, 0);
    assert_eq!(c.zcard("interop:reserved").await, 0);
}
