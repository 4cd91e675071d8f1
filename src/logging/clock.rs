//! The time of a log line: now, in UTC, to the microsecond (`2026-12-07T04:17:18.123456`; each format
//! adds its own zone suffix). The date and time of day are formatted once a second per thread and
//! kept; a line pays for six digits.

use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `YYYY-MM-DDTHH:MM:SS` is 19 bytes, `.ffffff` 7 more.
const SECOND: usize = 19;
const LEN: usize = SECOND + 7;

thread_local! {
    /// The last second formatted on this thread, and its text.
    static LAST: Cell<(u64, [u8; SECOND])> = const { Cell::new((u64::MAX, [0; SECOND])) };
}

/// A formatted instant.
pub(super) struct Stamp([u8; LEN]);

impl Stamp {
    pub(super) fn now() -> Stamp {
        Stamp::at(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
        )
    }

    /// The instant `since_epoch` after 1970-01-01T00:00:00Z.
    pub(super) fn at(since_epoch: Duration) -> Stamp {
        let secs = since_epoch.as_secs();
        let (last, mut text) = LAST.get();
        if last != secs {
            let time = i64::try_from(secs)
                .ok()
                .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
                .unwrap_or_default();
            let formatted = time.format("%Y-%m-%dT%H:%M:%S").to_string();
            // Years past 9999 would not fit: such a clock is wrong anyway, keep what fits.
            let n = formatted.len().min(SECOND);
            text[..n].copy_from_slice(&formatted.as_bytes()[..n]);
            LAST.set((secs, text));
        }
        let mut out = [0; LEN];
        out[..SECOND].copy_from_slice(&text);
        out[SECOND] = b'.';
        let mut micros = since_epoch.subsec_micros();
        for digit in out[SECOND + 1..].iter_mut().rev() {
            // `micros % 10` is below 10: the cast keeps it whole.
            *digit = b'0' + (micros % 10) as u8;
            micros /= 10;
        }
        Stamp(out)
    }

    pub(super) fn as_str(&self) -> &str {
        // Only ASCII digits and punctuation were written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrono_says(d: Duration) -> String {
        let t =
            chrono::DateTime::from_timestamp(i64::try_from(d.as_secs()).unwrap(), d.subsec_nanos())
                .unwrap();
        t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
    }

    #[test]
    fn a_stamp_is_what_chrono_writes_across_seconds_days_and_years() {
        let instants = [
            Duration::new(0, 0),
            Duration::new(1_796_616_238, 123_456_789),
            // The same second again (the kept text), then the next one.
            Duration::new(1_796_616_238, 999_999_999),
            Duration::new(1_796_616_239, 1_000),
            // Midnight at the turn of a leap year, and the last microsecond before it.
            Duration::new(1_830_297_599, 999_999_000),
            Duration::new(1_830_297_600, 0),
        ];
        for d in instants {
            assert_eq!(Stamp::at(d).as_str(), chrono_says(d), "{d:?}");
        }
    }

    #[test]
    fn now_is_now() {
        let before = chrono::Utc::now();
        let stamp = Stamp::now();
        let parsed =
            chrono::NaiveDateTime::parse_from_str(stamp.as_str(), "%Y-%m-%dT%H:%M:%S%.6f").unwrap();
        let after = chrono::Utc::now();
        let parsed = parsed.and_utc();
        assert!(
            parsed >= before - chrono::Duration::microseconds(1) && parsed <= after,
            "{}",
            stamp.as_str()
        );
    }
}
