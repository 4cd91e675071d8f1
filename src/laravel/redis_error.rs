//! What can go wrong talking to the queue's Redis ([`QueueError`]), for the queue operations and the
//! notify waits alike, each naming the operation and the key.
//!
//! This module only describes errors. It must not retry or log; callers decide from
//! [`QueueError::is_connection`].

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
    /// True when the connection (not the request) failed: back off and try again.
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
