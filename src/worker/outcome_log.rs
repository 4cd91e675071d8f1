//! The one line a job's outcome gets in the log: `outcome` and the fields every such line carries
//! (id, uuid, name, action, attempt, ms), then what that outcome adds, at the level it deserves.

use std::time::Duration;

use super::job::{JobInfo, Outcome};
use super::settle::Settled;

/// One outcome line: `outcome` and the job's fields every outcome line carries, then the rest.
macro_rules! outcome_line {
    ($level:ident, $info:expr, $ms:expr, $outcome:literal, $($rest:tt)+) => {
        tracing::$level!(
            outcome = $outcome,
            id = $info.id.as_str(),
            uuid = $info.uuid.as_str(),
            name = $info.name.as_str(),
            action = $info.action.as_str(),
            attempt = $info.attempt,
            ms = $ms,
            $($rest)+
        )
    };
}

pub(super) fn log_outcome(outcome: &Outcome, settled: Settled, info: &JobInfo, took: Duration) {
    let ms = took.as_secs_f64() * 1000.0;
    match (outcome, settled) {
        (_, Settled::LeftReserved) => {
            outcome_line!(
                error,
                info,
                ms,
                "left_reserved",
                "job left reserved: stores unreachable"
            )
        }
        (_, Settled::LeaseLost) => outcome_line!(
            warn,
            info,
            ms,
            "lease_lost",
            "job not settled: another worker took it back while it ran (lease lost)"
        ),
        (Outcome::Done, _) => outcome_line!(info, info, ms, "done", "job done"),
        (Outcome::Chained { next }, _) => outcome_line!(
            info,
            info,
            ms,
            "done",
            next_uuid = next.payload.uuid.as_str(),
            next_queue = next.queue.as_str(),
            "job done"
        ),
        (Outcome::Release { delay, reason }, _) => {
            outcome_line!(warn, info, ms, "released", delay, reason = %reason, "job released")
        }
        (Outcome::Fail { exception }, _) => outcome_line!(
            error,
            info,
            ms,
            "failed",
            exception = %format_args!("{}: {}", exception.class, exception.message),
            "job failed"
        ),
        (Outcome::HandBack { delay, reason }, _) => outcome_line!(
            warn,
            info,
            ms,
            "handed_back",
            delay,
            reason = %reason,
            "job handed back unchanged, no attempt used"
        ),
        (Outcome::Handoff { to, reason }, _) => {
            outcome_line!(info, info, ms, "handed_off", to = %to, reason, "job handed off")
        }
    }
}
