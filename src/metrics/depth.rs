//! [`QueueDepth`]: one queue's gauges at scrape time (how many jobs are ready, delayed and reserved,
//! and how overdue the oldest of each is), computed from a [`QueueStats`] snapshot the HTTP layer read.
//!
//! Pure: it must not talk to a store, and reads a payload only for its `createdAt`.

use crate::laravel::payload::Payload;
use crate::laravel::queue::QueueStats;

/// One queue as read from Redis at scrape time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueueDepth {
    /// Queue name without prefix.
    pub queue: String,
    /// Jobs in the ready list.
    pub ready: u64,
    /// Jobs in `:delayed` (not yet due, or due and not yet migrated).
    pub delayed: u64,
    /// Jobs in `:reserved` (running, or left by a worker that died).
    pub reserved: u64,
    /// Seconds since the next ready job was pushed: 0 when the list is empty, from the payload's
    /// `createdAt` when it has one (Laravel 12), otherwise unknown (Laravel 8/10 write no push time).
    pub oldest_ready_age: Option<f64>,
    /// Seconds the earliest delayed job is past due (0 when none is): nobody is migrating it.
    pub delayed_overdue: f64,
    /// Seconds the oldest reservation is past its expiry (0 when none is): its worker is gone.
    pub reservation_overdue: f64,
}

impl QueueDepth {
    /// Builds the gauges of `queue` from one [`QueueStats`] snapshot taken at unix time `now`.
    pub fn from_stats(queue: &str, stats: &QueueStats, now: i64) -> QueueDepth {
        let overdue = |at: Option<i64>| at.map_or(0.0, |at| (now.saturating_sub(at)).max(0) as f64);
        let oldest_ready_age = match &stats.head {
            None => Some(0.0),
            Some(raw) => Payload::parse(raw)
                .ok()
                .and_then(|p| p.envelope().created_at)
                .map(|at| (now.saturating_sub(at)).max(0) as f64),
        };
        QueueDepth {
            queue: queue.to_owned(),
            ready: stats.ready,
            delayed: stats.delayed,
            reserved: stats.reserved,
            oldest_ready_age,
            delayed_overdue: overdue(stats.next_delayed_at),
            reservation_overdue: overdue(stats.first_reservation_expires_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    #[test]
    fn depth_from_stats() {
        let stats = QueueStats {
            ready: 2,
            delayed: 1,
            reserved: 1,
            head: Some(br#"{"uuid":"u","createdAt":900,"attempts":0}"#.to_vec()),
            next_delayed_at: Some(990),
            first_reservation_expires_at: Some(1010),
        };
        let d = QueueDepth::from_stats("q", &stats, 1000);
        assert_eq!(d.oldest_ready_age, Some(100.0));
        assert_eq!(d.delayed_overdue, 10.0);
        assert_eq!(d.reservation_overdue, 0.0);
        let laravel10 = QueueStats {
            head: Some(br#"{"uuid":"u","attempts":0}"#.to_vec()),
            ..stats.clone()
        };
        assert_eq!(
            QueueDepth::from_stats("q", &laravel10, 1000).oldest_ready_age,
            None
        );
        let empty = QueueDepth::from_stats("q", &QueueStats::default(), 1000);
        assert_eq!(empty.oldest_ready_age, Some(0.0));
        assert_eq!(empty.delayed_overdue, 0.0);

        let text = Metrics::new().render(&[d]);
        assert!(text.contains("defer_worker_queue_jobs{queue=\"q\",state=\"ready\"} 2\n"));
        assert!(text.contains("defer_worker_queue_jobs{queue=\"q\",state=\"reserved\"} 1\n"));
        assert!(text.contains("defer_worker_queue_oldest_ready_age_seconds{queue=\"q\"} 100\n"));
        assert!(text.contains("defer_worker_queue_delayed_overdue_seconds{queue=\"q\"} 10\n"));
    }
}
