//! The queue's Redis: connection, AUTH/ACL user, TLS, server version; on Redis Cluster the hash tags;
//! each queue under the prefix in use; and the classic silent misconfiguration, a wrong `REDIS_PREFIX`:
//! a bounded SCAN (never KEYS) for the same queues under other prefixes, named with their jobs.
//!
//! Reads only. Returns what the later checks need (the queue handle, a few payloads to try APP_KEY on).

use std::collections::BTreeMap;
use std::time::Duration;

use super::model::Checks;
use crate::config::Settings;
use crate::laravel::connection::{Connection, Driver};
use crate::laravel::redis_config::{hash_tag, RedisConfig};
use crate::laravel::redis_conn::RedisConn;
use crate::laravel::redis_queue::RedisQueue;
use crate::ops::connect;
use crate::worker::WorkerOptions;

const TIMEOUT: Duration = Duration::from_secs(5);
/// SCAN COUNT per call, and the calls made at most: about 100 000 keys looked at.
const SCAN_COUNT: usize = 1000;
const SCAN_CALLS: usize = 100;
/// Payloads read from the head of each queue for the APP_KEY check.
const SAMPLES: isize = 20;
/// The sets next to a queue's ready list (`:notify` holds tokens, not jobs).
const SUFFIXES: [&str; 3] = ["", ":delayed", ":reserved"];

/// What the later checks use.
pub(super) struct Reached {
    pub queue: RedisQueue,
    /// Up to [`SAMPLES`] payloads from the head of each worked queue: (queue, payload).
    pub samples: Vec<(String, Vec<u8>)>,
}

pub(super) async fn check(
    c: &mut Checks,
    settings: &Settings,
    conn: &Connection,
    options: &WorkerOptions,
) -> Option<Reached> {
    let cfg = match connect::redis_config(settings) {
        Ok(cfg) => cfg,
        Err(e) => {
            let fix = c.set("the REDIS_* key named", "to a usable value");
            c.fail("redis.settings", format!("{e:#}"), fix);
            return None;
        }
    };
    let mut raw = match RedisConn::open(&cfg, TIMEOUT).await {
        Ok(raw) => raw,
        Err(e) => {
            connect_failure(c, &cfg, &e);
            return None;
        }
    };
    let version = server_version(&mut raw).await;
    let user: Option<String> = redis::cmd("ACL")
        .arg("WHOAMI")
        .query_async(&mut raw)
        .await
        .ok();
    let tls = if uses_tls(&cfg) { "TLS" } else { "no TLS" };
    let cluster = if cfg.is_cluster() { ", cluster" } else { "" };
    c.pass(
        "redis.connect",
        format!(
            "{}: Redis {version}, {tls}{cluster}, user {}",
            cfg.masked_url(),
            user.as_deref().unwrap_or("default (no ACL)")
        ),
    );
    if conn.driver != Driver::Redis {
        // The database driver uses Redis only for the sent-ledger.
        return None;
    }
    let queue = match RedisQueue::connect(&cfg).await {
        Ok(q) => q,
        Err(e) => {
            let fix = c.set(
                "REDIS_HOST and REDIS_PORT (or REDIS_URL)",
                "to the app's Redis",
            );
            c.fail("redis.connect", format!("{e}"), fix);
            return None;
        }
    };
    if queue.is_cluster() {
        hash_tags(c, &queue, options);
    }
    let from = if settings.env("REDIS_PREFIX").is_some() {
        "REDIS_PREFIX"
    } else {
        "derived from APP_NAME"
    };
    let mut ours = 0;
    let mut samples = Vec::new();
    for q in &options.queues {
        let name = format!("redis.queue {q}");
        match queue.stats(q).await {
            Ok(s) => {
                let total = s.ready + s.delayed + s.reserved;
                ours += total;
                let what = if total == 0 {
                    " (empty now: a queue nobody pushes to looks the same)"
                } else {
                    ""
                };
                c.pass(
                    &name,
                    format!(
                        "{}: {} ready, {} delayed, {} reserved{what}",
                        queue.key(q),
                        s.ready,
                        s.delayed,
                        s.reserved
                    ),
                );
            }
            Err(e) => c.fail(&name, e.to_string(), "see the error: the key or the server"),
        }
        if let Ok(list) = redis::cmd("LRANGE")
            .arg(queue.key(q))
            .arg(0)
            .arg(SAMPLES - 1)
            .query_async::<Vec<Vec<u8>>>(&mut raw)
            .await
        {
            samples.extend(list.into_iter().map(|p| (q.clone(), p)));
        }
    }
    if cfg.is_cluster() {
        c.warn(
            "redis.prefix",
            format!(
                "prefix {:?} ({from}); other prefixes not scanned: SCAN is per node on a cluster",
                cfg.prefix
            ),
            None,
        );
    } else {
        let scan = scan_other_prefixes(&mut raw, &cfg.prefix, &options.queues).await;
        prefix_line(c, &cfg.prefix, from, ours, &scan);
    }
    Some(Reached { queue, samples })
}

fn uses_tls(cfg: &RedisConfig) -> bool {
    let tls = |u: &str| u.starts_with("rediss://");
    tls(&cfg.url) || cfg.cluster_nodes.iter().any(|n| tls(n))
}

async fn server_version(raw: &mut RedisConn) -> String {
    let info: Result<String, _> = redis::cmd("INFO").arg("server").query_async(raw).await;
    info.ok()
        .and_then(|i| {
            i.lines()
                .find_map(|l| l.strip_prefix("redis_version:"))
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_else(|| "(version unknown)".to_owned())
}

/// The first connection failed: which setting to change, by the kind of failure.
fn connect_failure(c: &mut Checks, cfg: &RedisConfig, e: &redis::RedisError) {
    let text = e.to_string();
    let detail = format!("{}: {text}", cfg.masked_url());
    let auth = e.kind() == redis::ErrorKind::AuthenticationFailed
        || ["WRONGPASS", "NOAUTH", "AUTH"]
            .iter()
            .any(|w| text.contains(w));
    if auth {
        let fix = c.set(
            "REDIS_PASSWORD",
            "(and REDIS_USERNAME for an ACL user) to the password the server expects (requirepass or ACL)",
        );
        c.fail("redis.auth", detail, fix);
    } else if uses_tls(cfg) && e.kind() == redis::ErrorKind::IoError {
        let fix = c.set(
            "REDIS_SCHEME (or the rediss:// of REDIS_URL)",
            "to match the server: its certificate must be valid for REDIS_HOST; tcp if it has no TLS",
        );
        c.fail("redis.tls", detail, fix);
    } else {
        let fix = c.set(
            "REDIS_HOST and REDIS_PORT (or REDIS_URL)",
            "to the app's Redis",
        );
        c.fail("redis.connect", detail, fix);
    }
}

/// On Redis Cluster every queue (and its hand-off queue) needs a `{hash tag}` in its keys.
fn hash_tags(c: &mut Checks, queue: &RedisQueue, options: &WorkerOptions) {
    for q in &options.queues {
        let handoff = options.handoff_queue_for(q);
        match queue.check_queue(q) {
            Err(e) => c.fail(
                &format!("redis.hash_tag {q}"),
                e.to_string(),
                "name the queue with a {hash tag} in the app and in --queue",
            ),
            Ok(()) if hash_tag(&queue.key(q)) != hash_tag(&queue.key(&handoff)) => c.fail(
                &format!("redis.hash_tag {q}"),
                format!("its hand-off queue {handoff:?} has another hash tag"),
                "--handoff-queue '{queue}-php' (or worker.handoff_queue) keeps the queue's {tag}",
            ),
            Ok(()) => c.pass(
                &format!("redis.hash_tag {q}"),
                format!("{} and its hand-off queue share a slot", queue.key(q)),
            ),
        }
    }
}

/// Jobs of the worked queues found under prefixes other than ours.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Scan {
    /// prefix → (queue → jobs: ready + delayed + reserved).
    pub others: BTreeMap<String, BTreeMap<String, u64>>,
    pub keys_seen: usize,
    pub complete: bool,
}

async fn scan_other_prefixes(raw: &mut RedisConn, ours: &str, queues: &[String]) -> Scan {
    let mut scan = Scan::default();
    let mut cursor: u64 = 0;
    for _ in 0..SCAN_CALLS {
        let Ok((next, keys)) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("*queues:*")
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .query_async::<(u64, Vec<String>)>(raw)
            .await
        else {
            break;
        };
        scan.keys_seen += keys.len();
        for key in keys {
            let Some((prefix, q)) = split_queue_key(&key, queues) else {
                continue;
            };
            if prefix == ours {
                continue;
            }
            let jobs = size(raw, &key).await;
            if jobs > 0 {
                *scan
                    .others
                    .entry(prefix.to_owned())
                    .or_default()
                    .entry(q.to_owned())
                    .or_default() += jobs;
            }
        }
        cursor = next;
        if cursor == 0 {
            scan.complete = true;
            break;
        }
    }
    scan
}

/// `<prefix>queues:<queue>[:delayed|:reserved]` for one of `queues` → (prefix, queue).
pub(super) fn split_queue_key<'a>(
    key: &'a str,
    queues: &'a [String],
) -> Option<(&'a str, &'a str)> {
    queues.iter().find_map(|q| {
        SUFFIXES.iter().find_map(|suffix| {
            let tail = format!("queues:{q}{suffix}");
            key.strip_suffix(tail.as_str())
                .map(|prefix| (prefix, q.as_str()))
        })
    })
}

/// LLEN or ZCARD, by the key's type (0 for anything else).
async fn size(raw: &mut RedisConn, key: &str) -> u64 {
    let kind: String = redis::cmd("TYPE")
        .arg(key)
        .query_async(raw)
        .await
        .unwrap_or_default();
    let cmd = match kind.as_str() {
        "list" => "LLEN",
        "zset" => "ZCARD",
        _ => return 0,
    };
    let mut c = redis::cmd(cmd);
    c.arg(key);
    let n: Result<u64, _> = c.query_async(raw).await;
    n.unwrap_or(0)
}

fn prefix_line(c: &mut Checks, prefix: &str, from: &str, ours: u64, scan: &Scan) {
    let seen = if scan.complete {
        format!("SCAN of {} queue key(s)", scan.keys_seen)
    } else {
        format!(
            "SCAN stopped after {} queue key(s); more keys not looked at",
            scan.keys_seen
        )
    };
    if scan.others.is_empty() {
        c.pass(
            "redis.prefix",
            format!(
                "prefix {prefix:?} ({from}); no job of these queues under another prefix ({seen})"
            ),
        );
        return;
    }
    let named: Vec<String> = scan
        .others
        .iter()
        .map(|(p, qs)| {
            let jobs: Vec<String> = qs.iter().map(|(q, n)| format!("queues:{q} {n}")).collect();
            format!("{p:?} ({})", jobs.join(", "))
        })
        .collect();
    let (best, _) = scan
        .others
        .iter()
        .max_by_key(|(_, qs)| qs.values().sum::<u64>())
        .expect("not empty");
    if ours == 0 {
        let fix = if scan.others.len() == 1 {
            c.set(
                &format!("REDIS_PREFIX={best}"),
                "(the prefix the app pushes with: its REDIS_PREFIX, else slug(APP_NAME)_database_)",
            )
        } else {
            c.set(
                "REDIS_PREFIX",
                &format!(
                    "to the prefix the app pushes with, one of those named ({best} has the most jobs)"
                ),
            )
        };
        c.fail(
            "redis.prefix",
            format!(
                "prefix {prefix:?} ({from}) has no job of these queues, but jobs wait under {} ({seen})",
                named.join(", ")
            ),
            fix,
        );
    } else {
        c.warn(
            "redis.prefix",
            format!(
                "prefix {prefix:?} ({from}) has jobs, and so does {} ({seen}): another app on this Redis, \
                 or jobs left under an old prefix",
                named.join(", ")
            ),
            None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_keys_split_into_prefix_and_queue() {
        let queues = vec!["whatsapp".to_owned(), "a:b".to_owned()];
        assert_eq!(
            split_queue_key("restro_database_queues:whatsapp", &queues),
            Some(("restro_database_", "whatsapp"))
        );
        assert_eq!(
            split_queue_key("x_queues:whatsapp:reserved", &queues),
            Some(("x_", "whatsapp"))
        );
        assert_eq!(
            split_queue_key("queues:a:b:delayed", &queues),
            Some(("", "a:b"))
        );
        assert_eq!(split_queue_key("x_queues:whatsapp:notify", &queues), None);
        assert_eq!(split_queue_key("x_queues:emails", &queues), None);
    }

    #[test]
    fn jobs_only_under_another_prefix_fail_naming_it() {
        let mut c = Checks {
            env_file: "/app/.env".into(),
            ..Checks::default()
        };
        let mut scan = Scan {
            complete: true,
            keys_seen: 4,
            ..Scan::default()
        };
        scan.others
            .entry("restrosaas_database_".into())
            .or_default()
            .insert("whatsapp".into(), 3);
        prefix_line(
            &mut c,
            "laravel_database_",
            "derived from APP_NAME",
            0,
            &scan,
        );
        let line = &c.lines[0];
        assert_eq!(line.status, super::super::Status::Fail);
        assert!(
            line.detail
                .contains("\"restrosaas_database_\" (queues:whatsapp 3)"),
            "{line:?}"
        );
        assert!(
            line.fix
                .as_deref()
                .unwrap()
                .starts_with("set REDIS_PREFIX=restrosaas_database_ in /app/.env"),
            "{line:?}"
        );
        prefix_line(&mut c, "laravel_database_", "REDIS_PREFIX", 2, &scan);
        assert_eq!(c.lines[1].status, super::super::Status::Warn);
    }
}
