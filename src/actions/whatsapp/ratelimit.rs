//! Pacing sends so bursts do not earn Meta's throttling errors: a token bucket per sender phone-number
//! id (Cloud API throughput, 80 messages/s by default, error 130429 when exceeded) and a minimum spacing
//! per recipient (Meta's pair rate limit, about one message every 6 s to the same user, error 131056).
//!
//! The bucket is kept as a GCRA "theoretical arrival time", so a reservation is O(1) and needs no timer.
//! A send that would have to wait longer than `max_wait` is not reserved: the caller releases the job
//! with that delay instead of holding a worker slot. Limits are per process (N workers → N × rate).
//! Uses tokio's clock, so tests drive it with `tokio::time::pause()`. Never logs a recipient.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

/// `rate_limit = { ... }` in the action's TOML table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitOptions {
    /// Messages per second per sender phone-number id (Meta's default throughput is 80).
    pub per_second: f64,
    /// How many messages may leave at once before the rate applies.
    pub burst: u32,
    /// Minimum time between two messages to the same recipient, in ms (0: no spacing).
    pub per_recipient_ms: u64,
    /// Longest wait inside a job, in ms; a longer one releases the job with that delay instead.
    pub max_wait_ms: u64,
}

impl Default for RateLimitOptions {
    fn default() -> Self {
        RateLimitOptions {
            per_second: 80.0,
            burst: 80,
            per_recipient_ms: 6_000,
            max_wait_ms: 10_000,
        }
    }
}

impl RateLimitOptions {
    /// Checks the values; errors name the key.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.per_second.is_finite() && self.per_second > 0.0) {
            return Err(format!(
                "rate_limit.per_second must be a positive number, not {}",
                self.per_second
            ));
        }
        if self.burst == 0 {
            return Err("rate_limit.burst must be at least 1".into());
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct State {
    /// Sender phone-number id → theoretical arrival time of its next message.
    senders: HashMap<String, Instant>,
    /// Recipient → earliest time of its next message.
    recipients: HashMap<String, Instant>,
    /// Recipient → end of a wait Meta imposed (131056): refused until then, never waited for in a job.
    held: HashMap<String, Instant>,
}

/// The limiter shared by every job of one action.
#[derive(Debug)]
pub struct Limiter {
    interval: Duration,
    tolerance: Duration,
    spacing: Duration,
    max_wait: Duration,
    state: Mutex<State>,
}

impl Limiter {
    pub fn new(opts: &RateLimitOptions) -> Limiter {
        let interval = Duration::from_secs_f64(1.0 / opts.per_second);
        Limiter {
            interval,
            tolerance: interval * (opts.burst.max(1) - 1),
            spacing: Duration::from_millis(opts.per_recipient_ms),
            max_wait: Duration::from_millis(opts.max_wait_ms),
            state: Mutex::new(State::default()),
        }
    }

    /// Reserves a slot for one message: `Ok(wait)` to sleep before sending, or `Err(delay)` when the
    /// wait would exceed `max_wait` (nothing reserved: release the job with that delay).
    pub fn reserve(&self, sender: &str, recipient: &str) -> Result<Duration, Duration> {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(until) = state.held.get(recipient).copied() {
            if until > now {
                return Err(until - now);
            }
            state.held.remove(recipient);
        }
        let tat = state.senders.get(sender).copied().unwrap_or(now).max(now);
        let bucket_at = tat.checked_sub(self.tolerance).unwrap_or(now).max(now);
        let recipient_at = state
            .recipients
            .get(recipient)
            .copied()
            .unwrap_or(now)
            .max(now);
        let start = bucket_at.max(recipient_at);
        let wait = start - now;
        if wait > self.max_wait {
            return Err(wait);
        }
        state
            .senders
            .insert(sender.to_owned(), tat.max(start) + self.interval);
        if !self.spacing.is_zero() {
            if state.recipients.len() >= 10_000 {
                state.recipients.retain(|_, at| *at > now);
            }
            state
                .recipients
                .insert(recipient.to_owned(), start + self.spacing);
        }
        Ok(wait)
    }

    /// Refuses `recipient` for `by` from now (Meta answered its pair rate limit): its jobs are released
    /// with the rest of the wait instead of waiting in a worker slot; the sender's bucket and every
    /// other recipient are untouched.
    pub fn push_back(&self, recipient: &str, by: Duration) {
        let now = Instant::now();
        let at = now + by;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.held.len() >= 10_000 {
            state.held.retain(|_, until| *until > now);
        }
        let slot = state.held.entry(recipient.to_owned()).or_insert(at);
        *slot = (*slot).max(at);
    }

    /// [`Limiter::reserve`], then sleeps until the slot.
    pub async fn acquire(&self, sender: &str, recipient: &str) -> Result<Duration, Duration> {
        let wait = self.reserve(sender, recipient)?;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: f64, burst: u32, spacing_ms: u64, max_wait_ms: u64) -> Limiter {
        Limiter::new(&RateLimitOptions {
            per_second,
            burst,
            per_recipient_ms: spacing_ms,
            max_wait_ms,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_allows_a_burst_then_paces_at_the_rate() {
        let l = limiter(10.0, 3, 0, 60_000);
        let waits: Vec<Duration> = (0..6)
            .map(|i| l.reserve("phone-1", &format!("r{i}")).unwrap())
            .collect();
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 0, 0, 100, 200, 300]);
        // Another sender id has its own bucket.
        assert_eq!(l.reserve("phone-2", "r0").unwrap(), Duration::ZERO);
        // Time refills the bucket.
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(l.reserve("phone-1", "r9").unwrap(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn same_recipient_is_spaced_and_long_waits_are_refused() {
        let l = limiter(80.0, 80, 6_000, 10_000);
        assert_eq!(l.reserve("p", "alice").unwrap(), Duration::ZERO);
        assert_eq!(l.reserve("p", "bob").unwrap(), Duration::ZERO);
        assert_eq!(l.reserve("p", "alice").unwrap(), Duration::from_secs(6));
        // The third one would wait 12 s > max_wait: refused, nothing reserved.
        assert_eq!(
            l.reserve("p", "alice").unwrap_err(),
            Duration::from_secs(12)
        );
        assert_eq!(
            l.reserve("p", "alice").unwrap_err(),
            Duration::from_secs(12)
        );
        let started = Instant::now();
        tokio::time::advance(Duration::from_secs(7)).await;
        assert_eq!(
            l.acquire("p", "alice").await.unwrap(),
            Duration::from_secs(5)
        );
        assert_eq!(Instant::now() - started, Duration::from_secs(12));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pushed_back_recipient_waits_and_the_others_do_not() {
        // 6 s is within max_wait, yet refused: a held recipient never waits in a job.
        let l = limiter(80.0, 80, 0, 10_000);
        l.push_back("alice", Duration::from_secs(6));
        assert_eq!(l.reserve("p", "alice").unwrap_err(), Duration::from_secs(6));
        assert_eq!(l.reserve("p", "bob").unwrap(), Duration::ZERO);
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(l.reserve("p", "alice").unwrap(), Duration::ZERO);
    }
}
