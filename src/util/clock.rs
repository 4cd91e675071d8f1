//! The wall clock, the one place that reads it: UNIX seconds as Laravel's `Carbon::now()->getTimestamp()`
//! (PHP's `time()`) gives them, for queue scores, `available_at`, cache expiries and metrics.
//!
//! It must not read anything but the system clock, and nothing here may sleep or measure run times
//! (those use tokio's monotonic clock, which `tokio::time::pause()` controls in tests).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time since the UNIX epoch by the local clock; zero for a clock set before 1970.
pub fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

/// Whole UNIX seconds now, as PHP's `time()`: what Laravel writes in queue scores and table columns.
pub fn unix_now() -> i64 {
    i64::try_from(since_epoch().as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_now_is_whole_seconds_of_the_system_clock() {
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        let now = unix_now();
        let after = since_epoch().as_secs();
        assert!(
            (before as i64..=after as i64).contains(&now),
            "{before} <= {now} <= {after}"
        );
        // 2023-11-14: a clock that reads milliseconds or 1970 would fail here.
        assert!(now > 1_700_000_000 && now < 10_000_000_000, "{now}");
    }
}
