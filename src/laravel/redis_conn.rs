//! The one place that opens connections to the queue's Redis: a single server (a reconnecting
//! [`ConnectionManager`]) or a Redis Cluster ([`ClusterConnection`], which follows `MOVED`/`ASK`
//! redirections and refreshes its slot map after a failover), behind one [`RedisConn`] type that
//! every command and script runs on unchanged.
//!
//! This module only connects; it knows no keys.

use std::time::Duration;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisError, RedisFuture, Value};

use super::redis_config::RedisConfig;

/// How long to wait for a TCP/TLS connection to Redis.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to the queue's Redis, single server or cluster. Cheap to clone: clones share it.
#[derive(Clone)]
pub enum RedisConn {
    /// A single server, reconnecting.
    Single(ConnectionManager),
    /// A single server, one connection that is not re-established (for blocking commands).
    Plain(MultiplexedConnection),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

impl RedisConn {
    /// Opens a shared, reconnecting connection; each command is bounded by `response_timeout`.
    pub async fn open(
        cfg: &RedisConfig,
        response_timeout: Duration,
    ) -> Result<RedisConn, RedisError> {
        if cfg.is_cluster() {
            return cluster(cfg, Some(response_timeout))
                .await
                .map(RedisConn::Cluster);
        }
        let client = redis::Client::open(cfg.url.as_str())?;
        // Few, short retries: the callers' own loops back off and retry for longer.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(CONNECT_TIMEOUT)
            .set_response_timeout(response_timeout)
            .set_number_of_retries(1)
            .set_max_delay(1_000);
        ConnectionManager::new_with_config(client, config)
            .await
            .map(RedisConn::Single)
    }

    /// Opens a connection of its own for blocking commands (BLPOP), without a response timeout:
    /// the caller bounds the wait. On a single server one plain connection; on a cluster a
    /// cluster connection of its own, so a blocked node connection never stalls other commands.
    pub async fn open_blocking(cfg: &RedisConfig) -> Result<RedisConn, RedisError> {
        if cfg.is_cluster() {
            return cluster(cfg, None).await.map(RedisConn::Cluster);
        }
        let client = redis::Client::open(cfg.url.as_str())?;
        let config = AsyncConnectionConfig::new().set_connection_timeout(CONNECT_TIMEOUT);
        // Not reconnecting: a dead blocking connection is dropped by the caller and a new one opened.
        client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map(RedisConn::Plain)
    }
}

async fn cluster(
    cfg: &RedisConfig,
    response_timeout: Option<Duration>,
) -> Result<ClusterConnection, RedisError> {
    let mut builder = ClusterClientBuilder::new(cfg.cluster_nodes.iter().map(String::as_str))
        .connection_timeout(CONNECT_TIMEOUT)
        // Redirections (MOVED/ASK) and a failover's CLUSTERDOWN/TRYAGAIN are retried this often,
        // with backoff, before an error reaches the caller.
        .retries(8)
        .min_retry_wait(50)
        .max_retry_wait(2_000);
    if let Some(t) = response_timeout {
        builder = builder.response_timeout(t);
    }
    builder.build()?.get_async_connection().await
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(c) => c.req_packed_command(cmd),
            RedisConn::Plain(c) => c.req_packed_command(cmd),
            RedisConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(c) => c.req_packed_commands(cmd, offset, count),
            RedisConn::Plain(c) => c.req_packed_commands(cmd, offset, count),
            RedisConn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(c) => c.get_db(),
            RedisConn::Plain(c) => c.get_db(),
            RedisConn::Cluster(c) => c.get_db(),
        }
    }
}

impl From<ConnectionManager> for RedisConn {
    fn from(conn: ConnectionManager) -> RedisConn {
        RedisConn::Single(conn)
    }
}
