//! The job run-time histogram: per-bucket counts, sum and count, rendered cumulatively as
//! Prometheus expects.
//!
//! Pure counting: no lock, no clock, no formatting.

/// Upper bounds (seconds) of the job run-time histogram buckets; `+Inf` is implied. From 5 ms (a
/// log action) to two minutes (beyond `queue:work`'s default 60 s timeout).
pub const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// Run times of one queue/action pair.
#[derive(Debug, Default, Clone)]
pub(super) struct Histogram {
    /// Per-bucket (not cumulative) counts; observations above the last bound are only in `count`.
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    /// Counts one run of `secs` seconds.
    pub(super) fn observe(&mut self, secs: f64) {
        if let Some(i) = BUCKETS.iter().position(|&le| secs <= le) {
            self.buckets[i] += 1;
        }
        self.sum += secs;
        self.count += 1;
    }

    /// Each bound with the observations at or below it (`le`), lowest first; `+Inf` is [`Self::count`].
    pub(super) fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        BUCKETS.iter().zip(self.buckets).scan(0, |total, (&le, n)| {
            *total += n;
            Some((le, *total))
        })
    }

    pub(super) fn sum(&self) -> f64 {
        self.sum
    }

    pub(super) fn count(&self) -> u64 {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_slow_runs_only_count() {
        let mut h = Histogram::default();
        for secs in [0.003, 0.005, 0.3, 500.0] {
            h.observe(secs);
        }
        let at = |bound: f64| h.cumulative().find(|&(le, _)| le == bound).map(|(_, n)| n);
        assert_eq!(at(0.005), Some(2), "a bound includes runs equal to it");
        assert_eq!(at(0.25), Some(2));
        assert_eq!(at(0.5), Some(3));
        assert_eq!(at(120.0), Some(3));
        assert_eq!(h.count(), 4);
        assert_eq!(h.sum(), 500.308);
    }
}
