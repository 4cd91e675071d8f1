//! The Redis-bound limit of the benchmark (`deploy/bench/bench.py`): drains a Redis queue sending
//! exactly what `defer-worker work` sends per job, through the same library calls, and nothing else:
//! the batched pop script for every free slot (at most `POP_BATCH` per round trip), the migrate scripts
//! every `MIGRATE_EVERY` and before an empty look (the worker's own constants, `worker::daemon`), and one
//! delete (`ZREM`) per job from a task of its own, with up to the given concurrency held at once, on
//! the worker's runtime (`util::runtime`, as many threads as the worker's default). No payload is
//! decoded, no action runs, nothing is logged or counted, so the jobs/s it reaches is what Redis and
//! the client library allow on this machine.
//!
//!   cargo run --release --example redis_limit -- bench 64
//!
//! Arguments: the queue (default `default`), the concurrency (default 64) and the runtime's threads
//! (default: the worker's, `util::runtime::DEFAULT_THREADS`). Redis is found from the
//! environment as the worker finds it (`REDIS_URL`, `REDIS_HOST`, `REDIS_PORT`, `REDIS_PREFIX`, …).
//! Stops when the queue is empty and no job is held; prints the jobs drained.

use std::sync::Arc;
use std::time::Instant;

use defer_worker::laravel::queue::Queue;
use defer_worker::laravel::redis_config::RedisConfig;
use defer_worker::laravel::redis_queue::RedisQueue;
use defer_worker::util::runtime;
use defer_worker::worker::daemon::{MIGRATE_EVERY, MIGRATE_LIMIT, POP_BATCH};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Laravel's default `retry_after` for the Redis connection, as the worker uses it.
const RETRY_AFTER: u64 = 90;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let queue = args.next().unwrap_or_else(|| "default".to_owned());
    let concurrency: usize = match args.next() {
        Some(n) => n.parse().map_err(|e| format!("concurrency {n:?}: {e}"))?,
        None => 64,
    };
    let threads: usize = match args.next() {
        Some(n) => n.parse().map_err(|e| format!("threads {n:?}: {e}"))?,
        None => runtime::DEFAULT_THREADS,
    };
    runtime::build(threads)?.block_on(drain(queue, concurrency))
}

async fn drain(queue: String, concurrency: usize) -> Result<(), Box<dyn std::error::Error>> {
    let config = RedisConfig::from_env(&|key| std::env::var(key).ok())?;
    let redis = Queue::Redis(RedisQueue::connect(&config).await?);
    let slots = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut held = JoinSet::new();
    let mut last_migrate: Option<Instant> = None;
    let mut drained = 0u64;
    loop {
        let mut permits = vec![Arc::clone(&slots).acquire_owned().await?];
        while permits.len() < POP_BATCH.min(concurrency) {
            match Arc::clone(&slots).try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        let mut jobs = Vec::new();
        for force in [false, true] {
            if force || last_migrate.is_none_or(|t| t.elapsed() >= MIGRATE_EVERY) {
                redis.migrate(&queue, MIGRATE_LIMIT).await?;
                last_migrate = Some(Instant::now());
            }
            jobs = redis.pop(&queue, RETRY_AFTER, permits.len()).await?;
            if !jobs.is_empty() {
                break;
            }
        }
        if jobs.is_empty() {
            drop(permits);
            // Wait for the held jobs: what they settle is all there is left to look at.
            while let Some(done) = held.join_next().await {
                done??;
            }
            if redis.size(&queue).await? == 0 {
                break;
            }
            continue;
        }
        drained += jobs.len() as u64;
        for (job, permit) in jobs.into_iter().zip(permits) {
            let redis = redis.clone();
            held.spawn(async move {
                redis.delete_reserved(&job).await?;
                drop(permit);
                Ok::<_, defer_worker::laravel::queue::DriverError>(())
            });
        }
        // Reap what has finished so the set does not grow with the whole drain.
        while let Some(done) = held.try_join_next() {
            done??;
        }
    }
    println!("{drained} jobs drained from {queue}");
    Ok(())
}
