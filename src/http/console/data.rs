//! What the pages and the API read: each queue's depth and pause flag, failed_jobs, failures per hour.
//! Every store read is bounded by [`STORE_TIMEOUT`]; an error is a message for the page (details in
//! the log), never a panic.

use chrono::{NaiveDateTime, TimeZone, Utc};
use futures::future::join_all;
use serde::Serialize;

use super::Ctx;
use crate::fleet::{list_workers, read_history, Bucket, History, Span, WorkerInfo};
use crate::http::STORE_TIMEOUT;
use crate::laravel::failed_jobs::FailedJobRow;
use crate::metrics::QueueDepth;
use crate::util::clock::unix_now;

/// One queue now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueRow {
    pub queue: String,
    pub ready: u64,
    pub delayed: u64,
    pub reserved: u64,
    /// Laravel's `size()`: ready + delayed + reserved.
    pub size: u64,
    /// Seconds since the next ready job was pushed (0 when none is ready); null when its payload has
    /// no `createdAt` (Laravel before 12).
    pub oldest_ready_age: Option<f64>,
    /// Whether a pause flag holds it; null when the cache store cannot be read or is `array`.
    pub paused: Option<bool>,
}

/// The queues the console shows: the ones this process was given, in order.
pub fn queue_names(ctx: &Ctx<'_>) -> Vec<String> {
    let mut names = ctx.state.queues.clone();
    if !names.contains(&ctx.state.default_queue) {
        names.push(ctx.state.default_queue.clone());
    }
    names
}

/// Every queue's row; Err names what could not be read.
pub async fn queues(ctx: &Ctx<'_>) -> Result<Vec<QueueRow>, String> {
    let names = queue_names(ctx);
    let now = unix_now();
    let stats = join_all(
        names
            .iter()
            .map(|q| tokio::time::timeout(STORE_TIMEOUT, ctx.state.queue.stats(q))),
    )
    .await;
    let paused = match &ctx.console.pause {
        None => None,
        Some(store) => {
            match tokio::time::timeout(
                STORE_TIMEOUT,
                store.paused_queues(&ctx.console.connection, &names),
            )
            .await
            {
                Ok(Ok(set)) => Some(set),
                Ok(Err(error)) => {
                    tracing::warn!(%error, "console: cannot read the pause flags");
                    None
                }
                Err(_) => {
                    tracing::warn!("console: the cache store did not answer in time");
                    None
                }
            }
        }
    };
    let mut rows = Vec::with_capacity(names.len());
    for (name, result) in names.iter().zip(stats) {
        let stats = match result {
            Ok(Ok(s)) => s,
            Ok(Err(error)) => {
                tracing::warn!(%error, queue = %name, "console: cannot read queue");
                return Err(format!("cannot read queue {name} (see the log)"));
            }
            Err(_) => {
                return Err(format!(
                    "queue {name}: the queue store did not answer in time"
                ))
            }
        };
        let depth = QueueDepth::from_stats(name, &stats, now);
        rows.push(QueueRow {
            queue: name.clone(),
            ready: depth.ready,
            delayed: depth.delayed,
            reserved: depth.reserved,
            size: stats.size(),
            oldest_ready_age: depth.oldest_ready_age,
            paused: paused.as_ref().map(|p| p.contains(name)),
        });
    }
    Ok(rows)
}

/// Every failed_jobs row, newest first.
pub async fn failed_rows(ctx: &Ctx<'_>) -> Result<Vec<FailedJobRow>, String> {
    match tokio::time::timeout(STORE_TIMEOUT, ctx.state.failed.all()).await {
        Ok(Ok(rows)) => Ok(rows),
        Ok(Err(error)) => {
            tracing::warn!(%error, "console: cannot read failed_jobs");
            Err("cannot read failed_jobs (see the log)".to_owned())
        }
        Err(_) => Err("the failed_jobs database did not answer in time".to_owned()),
    }
}

/// The fleet's workers; Err when the registry is off or cannot be read.
pub async fn workers(ctx: &Ctx<'_>) -> Result<Vec<WorkerInfo>, String> {
    let fleet = ctx.state.fleet.as_ref().ok_or(FLEET_OFF)?;
    match tokio::time::timeout(STORE_TIMEOUT, list_workers(&fleet.store)).await {
        Ok(Ok(w)) => Ok(w),
        Ok(Err(error)) => {
            tracing::warn!(%error, "console: cannot read the fleet registry");
            Err("cannot read the fleet registry (see the log)".to_owned())
        }
        Err(_) => Err("the fleet registry did not answer in time".to_owned()),
    }
}

const FLEET_OFF: &str = "the fleet registry is off (no usable Redis for it at start)";

/// The fleet's job history over `span`; Err when the registry is off or cannot be read.
pub async fn history(ctx: &Ctx<'_>, span: Span) -> Result<History, String> {
    let fleet = ctx.state.fleet.as_ref().ok_or(FLEET_OFF)?;
    match tokio::time::timeout(STORE_TIMEOUT, read_history(&fleet.store, span)).await {
        Ok(Ok(h)) => Ok(h),
        Ok(Err(error)) => {
            tracing::warn!(%error, "console: cannot read the fleet history");
            Err("cannot read the fleet history (see the log)".to_owned())
        }
        Err(_) => Err("the fleet history did not answer in time".to_owned()),
    }
}

/// One bar of a throughput chart: jobs finished (done, failed, released, handed off) and their mean
/// run time in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Throughput {
    pub start: i64,
    pub jobs: u64,
    pub mean_ms: f64,
}

/// `buckets` folded `per` at a time (60 minute buckets make an hour), oldest first.
pub fn throughput(buckets: &[Bucket], per: usize) -> Vec<Throughput> {
    buckets
        .chunks(per.max(1))
        .map(|chunk| {
            let (mut jobs, mut secs) = (0u64, 0.0f64);
            for s in chunk.iter().flat_map(|b| &b.series) {
                jobs += s.done + s.failed + s.released + s.handed_off;
                secs += s.run_time_secs;
            }
            Throughput {
                start: chunk.first().map_or(0, |b| b.start),
                jobs,
                mean_ms: if jobs > 0 {
                    secs * 1000.0 / jobs as f64
                } else {
                    0.0
                },
            }
        })
        .collect()
}

/// `HH:MM` of a unix second in the app timezone.
pub fn clock_label(at: i64, tz: chrono_tz::Tz) -> String {
    Utc.timestamp_opt(at, 0)
        .single()
        .map(|t| t.with_timezone(&tz).format("%H:%M").to_string())
        .unwrap_or_default()
}

/// Failed jobs per hour over the last 24 hours, oldest first: (the hour's start, `HH:MM` in the app timezone, count).
pub fn failures_per_hour(rows: &[FailedJobRow], tz: chrono_tz::Tz, now: i64) -> Vec<(String, u64)> {
    let this_hour = now - now.rem_euclid(3600);
    let first = this_hour - 23 * 3600;
    let mut counts = vec![0u64; 24];
    for row in rows {
        let Ok(naive) = NaiveDateTime::parse_from_str(&row.job.failed_at, "%Y-%m-%d %H:%M:%S")
        else {
            continue;
        };
        let Some(at) = tz.from_local_datetime(&naive).earliest() else {
            continue;
        };
        let t = at.timestamp();
        if t >= first && t < this_hour + 3600 {
            counts[((t - first) / 3600) as usize] += 1;
        }
    }
    counts
        .into_iter()
        .enumerate()
        .map(|(i, n)| (clock_label(first + i as i64 * 3600, tz), n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::laravel::failed_jobs::FailedJob;

    fn row(at: &str) -> FailedJobRow {
        FailedJobRow {
            id: 1,
            job: FailedJob {
                uuid: "u".into(),
                connection: "redis".into(),
                queue: "q".into(),
                payload: "{}".into(),
                exception: "e".into(),
                failed_at: at.into(),
            },
        }
    }

    #[test]
    fn throughput_folds_buckets() {
        use crate::fleet::SeriesCounts;
        let bucket = |start, done, secs| Bucket {
            start,
            series: vec![SeriesCounts {
                done,
                run_time_secs: secs,
                ..Default::default()
            }],
            ..Default::default()
        };
        let hours = throughput(
            &[bucket(0, 2, 1.0), bucket(60, 2, 0.0), bucket(120, 0, 0.0)],
            2,
        );
        assert_eq!(
            hours[0],
            Throughput {
                start: 0,
                jobs: 4,
                mean_ms: 250.0
            }
        );
        assert_eq!(
            hours[1],
            Throughput {
                start: 120,
                jobs: 0,
                mean_ms: 0.0
            }
        );
    }

    #[test]
    fn failures_land_in_their_hour() {
        // 2026-12-06 18:30:00 UTC.
        let now = 1_796_581_800;
        let rows = [
            row("2026-12-06 18:05:00"),
            row("2026-12-06 18:59:59"),
            row("2026-12-06 17:10:00"),
            row("2026-12-05 19:00:00"),
            row("2026-12-05 18:59:59"),
            row("not a date"),
        ];
        let hours = failures_per_hour(&rows, chrono_tz::UTC, now);
        assert_eq!(hours.len(), 24);
        assert_eq!(hours[23], ("18:00".to_owned(), 2));
        assert_eq!(hours[22], ("17:00".to_owned(), 1));
        assert_eq!(hours[0], ("19:00".to_owned(), 1));
        assert_eq!(hours.iter().map(|(_, n)| n).sum::<u64>(), 4);
        // failed_at is in the app's timezone: Kolkata is UTC+5:30, so 00:05 there is 18:35 UTC.
        let ist = failures_per_hour(&[row("2026-12-07 00:05:00")], chrono_tz::Asia::Kolkata, now);
        assert_eq!(ist[23], ("23:30".to_owned(), 1));
    }
}
