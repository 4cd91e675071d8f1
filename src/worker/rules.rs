//! Laravel's Worker rules (docs/laravel-queue.md §5.3), as pure functions of the job's numbers and the clock.
//!
//! Kept apart from any I/O so each rule can be checked against that section line by line. `attempt` is always
//! Laravel's `attempts()`: the 1-based number of the attempt now running (the stored count + 1).

/// The job's retry settings, read from the payload with the worker's options as fallbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `maxTries` ?? `--tries`; 0 = unlimited.
    pub max_tries: i64,
    /// `retryUntil` (UNIX seconds); when set it replaces the tries check entirely.
    pub retry_until: Option<i64>,
    /// `failOnTimeout`.
    pub fail_on_timeout: bool,
}

/// Before running (markJobAsFailedIfAlreadyExceedsMaxAttempts): may this attempt run at all?
pub fn may_run(limits: &Limits, attempt: i64, now: i64) -> bool {
    match limits.retry_until {
        Some(until) => now <= until,
        None => limits.max_tries == 0 || attempt <= limits.max_tries,
    }
}

/// After a retryable error (markJobAsFailedIfWillExceedMaxAttempts): is this the last attempt?
pub fn out_of_attempts(limits: &Limits, attempt: i64, now: i64) -> bool {
    match limits.retry_until {
        Some(until) => until <= now,
        None => limits.max_tries > 0 && attempt >= limits.max_tries,
    }
}

/// After a timeout: fail when out of attempts or when the job asks to fail on timeout.
pub fn fail_after_timeout(limits: &Limits, attempt: i64, now: i64) -> bool {
    limits.fail_on_timeout || out_of_attempts(limits, attempt, now)
}

/// calculateBackoff: the job's backoff for this attempt, else `--backoff` indexed the same way.
pub fn backoff(job_backoff: Option<u64>, worker_backoff: &str, attempt: i64) -> u64 {
    job_backoff.unwrap_or_else(|| crate::laravel::payload::backoff_at(worker_backoff, attempt))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn tries(n: i64) -> Limits {
        Limits {
            max_tries: n,
            retry_until: None,
            fail_on_timeout: false,
        }
    }

    #[test]
    fn tries_bound_the_attempts() {
        assert!(may_run(&tries(3), 3, NOW));
        assert!(!may_run(&tries(3), 4, NOW));
        assert!(may_run(&tries(0), 1000, NOW), "0 means unlimited");
        assert!(!out_of_attempts(&tries(3), 2, NOW));
        assert!(out_of_attempts(&tries(3), 3, NOW));
        assert!(!out_of_attempts(&tries(0), 99, NOW));
        assert!(
            out_of_attempts(&tries(1), 1, NOW),
            "--tries=1 (the default) fails on the first error"
        );
    }

    #[test]
    fn retry_until_replaces_the_tries_check() {
        let l = Limits {
            max_tries: 1,
            retry_until: Some(NOW + 10),
            fail_on_timeout: false,
        };
        assert!(
            may_run(&l, 50, NOW),
            "attempts do not matter while retryUntil is ahead"
        );
        assert!(!out_of_attempts(&l, 50, NOW));
        let past = Limits {
            retry_until: Some(NOW - 1),
            ..l
        };
        assert!(
            !may_run(&past, 1, NOW),
            "a retryUntil in the past fails even the first attempt"
        );
        assert!(out_of_attempts(
            &Limits {
                retry_until: Some(NOW),
                ..l
            },
            1,
            NOW
        ));
    }

    #[test]
    fn timeouts_fail_when_asked_or_out_of_attempts() {
        assert!(!fail_after_timeout(&tries(3), 1, NOW));
        assert!(fail_after_timeout(&tries(3), 3, NOW));
        assert!(fail_after_timeout(
            &Limits {
                fail_on_timeout: true,
                ..tries(3)
            },
            1,
            NOW
        ));
    }

    #[test]
    fn backoff_prefers_the_job_then_the_worker_list() {
        assert_eq!(backoff(Some(7), "1,2", 1), 7);
        assert_eq!(backoff(None, "1,2,30", 2), 2);
        assert_eq!(backoff(None, "1,2,30", 9), 30);
        assert_eq!(backoff(None, "0", 1), 0);
    }
}
