//! What a Redis queue holds, read for the worker's waits and the operator commands: its size, the
//! next due time, a consistent snapshot of counts and heads, and `clear`. The keys and scripts are
//! [`super::redis_queue`]'s.

use super::queue::QueueStats;
use super::redis_error::QueueError;
use super::redis_queue::RedisQueue;

/// The head of a sorted set read with `ZRANGE key 0 0 WITHSCORES`.
type Head = Vec<(Vec<u8>, f64)>;

/// The score of a head, in whole seconds. Laravel writes integer scores; `as` saturates anything
/// odd instead of panicking.
fn lowest(head: &Head) -> Option<i64> {
    head.first().map(|(_, score)| score.floor() as i64)
}

/// Adds the heads of `:delayed` and `:reserved` (with their scores) to `pipe`.
fn heads<'a>(pipe: &'a mut redis::Pipeline, key: &str) -> &'a mut redis::Pipeline {
    for set in ["delayed", "reserved"] {
        pipe.cmd("ZRANGE")
            .arg(format!("{key}:{set}"))
            .arg(0)
            .arg(0)
            .arg("WITHSCORES");
    }
    pipe
}

impl RedisQueue {
    /// Ready + delayed + reserved jobs, like `RedisQueue::size`.
    pub async fn size(&self, queue: &str) -> Result<u64, QueueError> {
        let key = self.queue_key(queue)?;
        self.scripts
            .size
            .key(&key)
            .key(format!("{key}:delayed"))
            .key(format!("{key}:reserved"))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| QueueError::script("size", &key, e))
    }

    /// Deletes all of a queue's keys and returns how many jobs there were, like `clear`.
    pub async fn clear(&self, queue: &str) -> Result<u64, QueueError> {
        let key = self.queue_key(queue)?;
        self.scripts
            .clear
            .key(&key)
            .key(format!("{key}:delayed"))
            .key(format!("{key}:reserved"))
            .key(format!("{key}:notify"))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| QueueError::script("clear", &key, e))
    }

    /// The earliest score in `:delayed` and `:reserved`: when the next delayed job becomes due
    /// or the next reservation expires, so a worker knows how long it may block. None if both
    /// are empty. The time may already be past.
    pub async fn next_due(&self, queue: &str) -> Result<Option<i64>, QueueError> {
        let key = self.queue_key(queue)?;
        let (delayed, reserved): (Head, Head) = heads(&mut redis::pipe(), &key)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| QueueError::command("ZRANGE", &key, e))?;
        Ok([lowest(&delayed), lowest(&reserved)]
            .into_iter()
            .flatten()
            .min())
    }

    /// Ready, delayed and reserved counts of `queue` with the head of each, read in one MULTI so
    /// they are one consistent snapshot (Laravel 12's `pendingSize`, `delayedSize`, `reservedSize`
    /// and `creationTimeOfOldestPendingJob` together). For `defer-worker monitor`.
    pub async fn stats(&self, queue: &str) -> Result<QueueStats, QueueError> {
        let key = self.queue_key(queue)?;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("LLEN")
            .arg(&key)
            .cmd("ZCARD")
            .arg(format!("{key}:delayed"))
            .cmd("ZCARD")
            .arg(format!("{key}:reserved"))
            .cmd("LINDEX")
            .arg(&key)
            .arg(0);
        let (ready, delayed, reserved, head, first_delayed, first_reserved): (
            u64,
            u64,
            u64,
            Option<Vec<u8>>,
            Head,
            Head,
        ) = heads(&mut pipe, &key)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| QueueError::command("MULTI", &key, e))?;
        Ok(QueueStats {
            ready,
            delayed,
            reserved,
            head,
            next_delayed_at: lowest(&first_delayed),
            first_reservation_expires_at: lowest(&first_reserved),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lowest_score_is_the_first_in_whole_seconds() {
        assert_eq!(
            lowest(&vec![(b"a".to_vec(), 1700000000.9)]),
            Some(1700000000)
        );
        assert_eq!(lowest(&Vec::new()), None);
        assert_eq!(
            lowest(&vec![(b"a".to_vec(), f64::INFINITY)]),
            Some(i64::MAX)
        );
    }
}
