//! What can go wrong talking to the queue's Redis ([`QueueError`]), for the queue operations and the
//! notify waits alike, each naming the operation and the key.
//!
//! This module only describes errors. It must not retry or log; callers decide from
//! [`QueueError::is_retryable`].
//!
//! Retryable: the connection failed or timed out, or the server said "not now": `BUSY` (a script
//! running), `LOADING`, a failover (`MASTERDOWN`, `CLUSTERDOWN`, `TRYAGAIN`, `READONLY`,
//! `NOREPLICAS`, `MOVED`/`ASK` the cluster client could not follow within its own retries). Not
//! retryable: a script error, `WRONGTYPE`, `CROSSSLOT`, `OOM`, `NOSCRIPT`, a queue without a hash tag
//! on a cluster, a reply the protocol does not allow: the same request fails the same way again.

use redis::RedisError;

/// What went wrong talking to Redis. [`QueueError::is_connection`] tells the caller whether to
/// back off and retry (the connection) or to treat it as a bug or misconfiguration.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The first connection could not be established.
    #[error("cannot connect to Redis at {endpoint}: {source}")]
    Connect {
        endpoint: String,
        #[source]
        source: RedisError,
    },
    /// The connection failed or timed out during an operation; retrying later may succeed.
    #[error("Redis connection failed during {op} on {key}: {source}")]
    Connection {
        op: &'static str,
        key: String,
        #[source]
        source: RedisError,
    },
    /// A Lua script was rejected or raised an error (e.g. a key of the wrong type).
    #[error("Redis script {script}.lua failed on {key}: {source}")]
    Script {
        script: &'static str,
        key: String,
        #[source]
        source: RedisError,
    },
    /// A plain command was rejected (e.g. WRONGTYPE).
    #[error("Redis {op} on {key} failed: {source}")]
    Command {
        op: &'static str,
        key: String,
        #[source]
        source: RedisError,
    },
    /// On Redis Cluster, a queue whose keys would not share one slot.
    #[error(
        "queue {queue:?} cannot be used on Redis Cluster: its key {key} has no {{hash tag}}, so \
         its ready list, :delayed, :reserved and :notify may live on different nodes and the \
         queue's scripts would fail with CROSSSLOT; name the queue with a hash tag, e.g. \
         \"{{{queue}}}\", in the app (onQueue / REDIS_QUEUE) and in work --queue"
    )]
    NoHashTag { queue: String, key: String },
    /// On Redis Cluster, an operation over two queues whose keys are in different slots.
    #[error(
        "queues {from:?} and {to:?} have different hash tags, so on Redis Cluster they may live \
         on different nodes and cannot be changed in one script; give them the same {{tag}}"
    )]
    CrossSlot { from: String, to: String },
    /// Redis answered something the protocol does not allow.
    #[error("unexpected Redis reply to {op} on {key}: {detail}")]
    Reply {
        op: &'static str,
        key: String,
        detail: String,
    },
}

impl QueueError {
    /// True when the same request may succeed later (see the module doc): back off and try again.
    pub fn is_retryable(&self) -> bool {
        match self {
            QueueError::Connect { .. } | QueueError::Connection { .. } => true,
            QueueError::Script { source, .. } | QueueError::Command { source, .. } => {
                is_transient(source)
            }
            QueueError::NoHashTag { .. }
            | QueueError::CrossSlot { .. }
            | QueueError::Reply { .. } => false,
        }
    }

    /// True when the connection (not the request) failed.
    pub fn is_connection(&self) -> bool {
        matches!(
            self,
            QueueError::Connect { .. } | QueueError::Connection { .. }
        )
    }

    pub(super) fn script(script: &'static str, key: &str, source: RedisError) -> QueueError {
        if is_connection_error(&source) {
            QueueError::Connection {
                op: script,
                key: key.to_owned(),
                source,
            }
        } else {
            QueueError::Script {
                script,
                key: key.to_owned(),
                source,
            }
        }
    }

    pub(super) fn command(op: &'static str, key: &str, source: RedisError) -> QueueError {
        if is_connection_error(&source) {
            QueueError::Connection {
                op,
                key: key.to_owned(),
                source,
            }
        } else {
            QueueError::Command {
                op,
                key: key.to_owned(),
                source,
            }
        }
    }
}

fn is_connection_error(err: &RedisError) -> bool {
    err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_unrecoverable_error()
}

/// A reply that says "not now" rather than "never": the server is busy, loading or failing over.
fn is_transient(err: &RedisError) -> bool {
    use redis::ErrorKind;
    is_connection_error(err)
        || matches!(
            err.kind(),
            ErrorKind::BusyLoadingError
                | ErrorKind::TryAgain
                | ErrorKind::MasterDown
                | ErrorKind::ClusterDown
                | ErrorKind::Moved
                | ErrorKind::Ask
                | ErrorKind::ReadOnly
                | ErrorKind::ClusterConnectionNotFound
                | ErrorKind::MasterNameNotFoundBySentinel
                | ErrorKind::NoValidReplicasFoundBySentinel
        )
        || matches!(err.code(), Some("BUSY" | "NOREPLICAS"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error the client makes of a server's error reply, parsed from the wire.
    fn reply(line: &str) -> RedisError {
        redis::parse_redis_value(format!("-{line}\r\n").as_bytes())
            .and_then(redis::Value::extract_error)
            .expect_err("an error reply")
    }

    fn script(source: RedisError) -> QueueError {
        QueueError::script("pop", "queues:q", source)
    }

    #[test]
    fn busy_loading_and_failover_replies_are_retryable() {
        for line in [
            "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
            "LOADING Redis is loading the dataset in memory",
            "TRYAGAIN Multiple keys request during rehashing of slot",
            "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
            "CLUSTERDOWN The cluster is down",
            "MOVED 3999 127.0.0.1:6381",
            "ASK 3999 127.0.0.1:6381",
            "READONLY You can't write against a read only replica.",
            "NOREPLICAS Not enough good replicas to write.",
        ] {
            let err = script(reply(line));
            assert!(err.is_retryable(), "{line}: {err}");
            assert!(!err.is_connection(), "{line}: the connection is fine");
        }
    }

    #[test]
    fn script_and_data_errors_are_not_retryable() {
        for line in [
            "ERR Error running script (call to f_0123): @user_script:12: user_script:12: attempt to compare nil with number",
            "WRONGTYPE Operation against a key holding the wrong kind of value",
            "CROSSSLOT Keys in request don't hash to the same slot",
            "OOM command not allowed when used memory > 'maxmemory'.",
            "NOSCRIPT No matching script. Please use EVAL.",
            "EXECABORT Transaction discarded because of previous errors.",
            "NOPERM this user has no permissions to run the 'evalsha' command",
        ] {
            let err = script(reply(line));
            assert!(!err.is_retryable(), "{line}: {err}");
            let err = QueueError::command("ZREM", "queues:q:reserved", reply(line));
            assert!(!err.is_retryable(), "{line}: {err}");
        }
    }

    #[test]
    fn connection_failures_and_timeouts_are_retryable() {
        for kind in [
            std::io::ErrorKind::ConnectionRefused,
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::BrokenPipe,
            std::io::ErrorKind::TimedOut,
        ] {
            let err = script(RedisError::from(std::io::Error::from(kind)));
            assert!(matches!(err, QueueError::Connection { .. }), "{kind:?}");
            assert!(err.is_retryable() && err.is_connection(), "{kind:?}");
        }
        let dropped = RedisError::from((redis::ErrorKind::ClusterConnectionNotFound, "no node"));
        assert!(QueueError::command("BLPOP", "k", dropped).is_retryable());
    }

    #[test]
    fn our_own_refusals_are_not_retryable() {
        let no_tag = QueueError::NoHashTag {
            queue: "q".into(),
            key: "queues:q".into(),
        };
        let cross = QueueError::CrossSlot {
            from: "{a}".into(),
            to: "{b}".into(),
        };
        let reply = QueueError::Reply {
            op: "pop",
            key: "queues:q".into(),
            detail: "4 items, not a multiple of 3".into(),
        };
        for err in [no_tag, cross, reply] {
            assert!(!err.is_retryable(), "{err}");
        }
    }
}
