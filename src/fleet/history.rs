//! The fleet's history: per queue and action, jobs per outcome (done, failed, released, handed off,
//! handed back, left reserved, lease lost), and the sum of their run times, in minute buckets kept 24 hours and hour buckets kept
//! 7 days; per queue, the wait (the oldest ready job's age) sampled once a minute, the largest sample
//! kept per bucket.
//!
//! Each bucket is one hash, `<prefix>{defer_worker}:history:m:<start>` (or `:h:`), expiring at its end
//! plus its retention (`EXPIREAT`, so every writer sets the same expiry). Its fields are JSON arrays:
//! `["done","<queue>","<action>"]` (likewise every other [`JobOutcome`]: `failed`, `released`,
//! `handed_off`, `handed_back`, `left_reserved`, `lease_lost`),
//! `["run_time","<queue>","<action>"]` (seconds, a float) and `["wait","<queue>"]` (seconds), so no
//! queue or action name can be mistaken for a separator.
//!
//! The worker never writes here per job: [`Recorder`] diffs the process's
//! [`Metrics`](crate::metrics::Metrics) totals against what it last flushed, and the beat adds the
//! difference to the bucket of the minute it flushes in (a count lands at most one beat late).
//! A failed flush leaves the difference for the next one.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use redis::Pipeline;
use serde::Serialize;

use super::store::{FleetError, FleetStore, Keys};
use crate::metrics::{JobOutcome, JobTotals};
use crate::util::clock;

const MINUTE: i64 = 60;
const HOUR: i64 = 3600;
/// Minute buckets are kept this long after their minute ends.
pub const MINUTES_KEPT: i64 = 24 * HOUR;
/// Hour buckets are kept this long after their hour ends.
pub const HOURS_KEPT: i64 = 7 * 24 * HOUR;

const RUN_TIME: &str = "run_time";
const WAIT: &str = "wait";

/// How far back [`read_history`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Span {
    /// The last 60 minute buckets.
    Hour,
    /// The last 1440 minute buckets.
    Day,
    /// The last 168 hour buckets.
    Week,
}

impl Span {
    /// Bucket length and how many buckets, the current one included.
    fn buckets(self) -> (i64, i64) {
        match self {
            Span::Hour => (MINUTE, 60),
            Span::Day => (MINUTE, 24 * 60),
            Span::Week => (HOUR, 7 * 24),
        }
    }
}

impl FromStr for Span {
    type Err = String;

    /// `hour`/`1h`, `day`/`24h`, `week`/`7d`.
    fn from_str(s: &str) -> Result<Span, String> {
        match s {
            "hour" | "1h" => Ok(Span::Hour),
            "day" | "24h" => Ok(Span::Day),
            "week" | "7d" => Ok(Span::Week),
            _ => Err(format!(
                "history span {s:?}: expected hour (1h), day (24h) or week (7d)"
            )),
        }
    }
}

/// One queue/action pair in one bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SeriesCounts {
    pub queue: String,
    pub action: String,
    pub done: u64,
    pub failed: u64,
    pub released: u64,
    pub handed_off: u64,
    pub handed_back: u64,
    pub left_reserved: u64,
    pub lease_lost: u64,
    /// Sum of the run times (pop to settle), seconds.
    pub run_time_secs: f64,
}

impl SeriesCounts {
    fn count_mut(&mut self, stat: &str) -> Option<&mut u64> {
        Some(match stat {
            "done" => &mut self.done,
            "failed" => &mut self.failed,
            "released" => &mut self.released,
            "handed_off" => &mut self.handed_off,
            "handed_back" => &mut self.handed_back,
            "left_reserved" => &mut self.left_reserved,
            "lease_lost" => &mut self.lease_lost,
            _ => return None,
        })
    }
}

/// One minute or hour of the whole fleet.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Bucket {
    /// Unix second the bucket starts at.
    pub start: i64,
    /// Sorted by queue, then action; pairs with nothing in this bucket are absent.
    pub series: Vec<SeriesCounts>,
    /// Per queue, the largest oldest-ready-job age sampled in the bucket, seconds.
    pub wait: BTreeMap<String, f64>,
}

/// The buckets of one [`Span`], oldest first, every bucket present (empty ones too).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct History {
    pub span: Span,
    pub bucket_secs: i64,
    pub buckets: Vec<Bucket>,
}

/// Reads the fleet's history over `span`, ending with the current bucket, in one pipeline.
pub async fn read_history(store: &FleetStore, span: Span) -> Result<History, FleetError> {
    let (len, count) = span.buckets();
    let last = clock::unix_now().div_euclid(len) * len;
    let starts: Vec<i64> = (0..count).rev().map(|i| last - i * len).collect();
    let key = |start| match span {
        Span::Week => store.keys.hour(start),
        Span::Hour | Span::Day => store.keys.minute(start),
    };
    let mut pipe = redis::pipe();
    for &start in &starts {
        pipe.hgetall(key(start));
    }
    let mut conn = store.conn.clone();
    let hashes: Vec<Vec<(String, String)>> =
        pipe.query_async(&mut conn)
            .await
            .map_err(|source| FleetError::Command {
                op: "HGETALL",
                key: key(last),
                source,
            })?;
    let buckets = starts
        .into_iter()
        .zip(hashes)
        .map(|(start, fields)| parse_bucket(start, fields))
        .collect();
    Ok(History {
        span,
        bucket_secs: len,
        buckets,
    })
}

/// A bucket from its hash; fields it does not know (a later version's) are skipped.
fn parse_bucket(start: i64, fields: Vec<(String, String)>) -> Bucket {
    let mut series: BTreeMap<(String, String), SeriesCounts> = BTreeMap::new();
    let mut wait = BTreeMap::new();
    for (field, value) in fields {
        let Ok(parts) = serde_json::from_str::<Vec<String>>(&field) else {
            continue;
        };
        match parts.as_slice() {
            [stat, queue] if stat == WAIT => {
                if let Ok(v) = value.parse::<f64>() {
                    wait.insert(queue.clone(), v);
                }
            }
            [stat, queue, action] => {
                let s = series
                    .entry((queue.clone(), action.clone()))
                    .or_insert_with(|| SeriesCounts {
                        queue: queue.clone(),
                        action: action.clone(),
                        ..SeriesCounts::default()
                    });
                if stat == RUN_TIME {
                    s.run_time_secs += value.parse::<f64>().unwrap_or(0.0);
                } else if let Some(c) = s.count_mut(stat) {
                    *c += value.parse::<u64>().unwrap_or(0);
                }
            }
            _ => {}
        }
    }
    Bucket {
        start,
        series: series.into_values().collect(),
        wait,
    }
}

fn field(parts: &[&str]) -> String {
    serde_json::to_string(parts).expect("strings serialize")
}

/// The minute and hour buckets holding unix second `now`, with the unix seconds they expire at.
fn buckets_at(keys: &Keys, now: i64) -> [(String, i64); 2] {
    let minute = now.div_euclid(MINUTE) * MINUTE;
    let hour = now.div_euclid(HOUR) * HOUR;
    [
        (keys.minute(minute), minute + MINUTE + MINUTES_KEPT),
        (keys.hour(hour), hour + HOUR + HOURS_KEPT),
    ]
}

/// This process's counts not yet in Redis: the [`Metrics`](crate::metrics::Metrics) totals minus
/// those of the last successful flush.
#[derive(Debug, Default)]
pub struct Recorder {
    flushed: HashMap<(String, String), JobTotals>,
}

impl Recorder {
    /// Adds to `pipe` what `totals` hold beyond the last committed flush, into the buckets of `now`.
    /// Returns whether anything was added; [`Recorder::commit`] the same totals once `pipe` succeeded.
    pub fn stage(&self, pipe: &mut Pipeline, keys: &Keys, now: i64, totals: &[JobTotals]) -> bool {
        let buckets = buckets_at(keys, now);
        let mut any = false;
        for t in totals {
            let before = self.flushed.get(&(t.queue.clone(), t.action.clone()));
            let mut changed = false;
            for (i, outcome) in JobOutcome::ALL.iter().enumerate() {
                let delta = t.outcomes[i] - before.map_or(0, |b| b.outcomes[i]);
                if delta == 0 {
                    continue;
                }
                changed = true;
                let f = field(&[outcome.as_str(), &t.queue, &t.action]);
                for (key, _) in &buckets {
                    pipe.hincr(key, &f, delta).ignore();
                }
            }
            if changed {
                let secs = t.run_time_secs - before.map_or(0.0, |b| b.run_time_secs);
                let f = field(&[RUN_TIME, &t.queue, &t.action]);
                for (key, _) in &buckets {
                    pipe.cmd("HINCRBYFLOAT").arg(key).arg(&f).arg(secs).ignore();
                }
                any = true;
            }
        }
        if any {
            for (key, at) in &buckets {
                pipe.expire_at(key, *at).ignore();
            }
        }
        any
    }

    /// Records `totals` as flushed.
    pub fn commit(&mut self, totals: Vec<JobTotals>) {
        for t in totals {
            self.flushed.insert((t.queue.clone(), t.action.clone()), t);
        }
    }
}

/// Adds to `pipe` one wait sample of `queue` (seconds) to the buckets of `now`, keeping the largest.
pub fn stage_wait(pipe: &mut Pipeline, keys: &Keys, now: i64, queue: &str, secs: f64) {
    let buckets = buckets_at(keys, now);
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(include_str!("lua/wait_max.lua"))
        .arg(buckets.len())
        .arg(&buckets[0].0)
        .arg(&buckets[1].0)
        .arg(field(&[WAIT, queue]))
        .arg(secs)
        .arg(buckets[0].1)
        .arg(buckets[1].1);
    pipe.add_command(cmd).ignore();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(done: u64, failed: u64, secs: f64) -> JobTotals {
        JobTotals {
            queue: "q:1".into(),
            action: "a b".into(),
            outcomes: [done, 0, failed, 0, 0, 0, 0],
            run_time_secs: secs,
        }
    }

    fn commands(pipe: &Pipeline) -> Vec<String> {
        pipe.cmd_iter()
            .map(|c| {
                c.args_iter()
                    .map(|a| match a {
                        redis::Arg::Simple(b) => String::from_utf8_lossy(b).into_owned(),
                        redis::Arg::Cursor => "<cursor>".into(),
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    #[test]
    fn stages_only_what_was_not_flushed() {
        let keys = Keys::new("p_");
        let mut rec = Recorder::default();
        let mut pipe = redis::pipe();
        assert!(rec.stage(&mut pipe, &keys, 3_725, &[totals(3, 1, 0.5)]));
        let cmds = commands(&pipe);
        assert!(cmds.contains(
            &r#"HINCRBY p_{defer_worker}:history:m:3720 ["done","q:1","a b"] 3"#.to_owned()
        ));
        assert!(cmds.contains(
            &r#"HINCRBY p_{defer_worker}:history:h:3600 ["failed","q:1","a b"] 1"#.to_owned()
        ));
        assert!(cmds.contains(&"EXPIREAT p_{defer_worker}:history:m:3720 90180".to_owned()));
        assert!(cmds.contains(&"EXPIREAT p_{defer_worker}:history:h:3600 612000".to_owned()));
        rec.commit(vec![totals(3, 1, 0.5)]);

        // Nothing new: nothing staged.
        let mut pipe = redis::pipe();
        assert!(!rec.stage(&mut pipe, &keys, 3_790, &[totals(3, 1, 0.5)]));
        assert!(commands(&pipe).is_empty());

        // Two more done: only the difference, into the new minute.
        let mut pipe = redis::pipe();
        assert!(rec.stage(&mut pipe, &keys, 3_790, &[totals(5, 1, 0.75)]));
        let cmds = commands(&pipe);
        assert!(cmds.contains(
            &r#"HINCRBY p_{defer_worker}:history:m:3780 ["done","q:1","a b"] 2"#.to_owned()
        ));
        assert!(!cmds.iter().any(|c| c.contains("failed")));
        assert!(cmds.contains(
            &r#"HINCRBYFLOAT p_{defer_worker}:history:m:3780 ["run_time","q:1","a b"] 0.25"#
                .to_owned()
        ));
    }

    #[test]
    fn parses_a_bucket_and_skips_unknown_fields() {
        let b = parse_bucket(
            60,
            vec![
                (r#"["done","q","a"]"#.into(), "4".into()),
                (r#"["run_time","q","a"]"#.into(), "1.5".into()),
                (r#"["handed_off","q","b"]"#.into(), "1".into()),
                (r#"["wait","q"]"#.into(), "12".into()),
                (r#"["later","q","a"]"#.into(), "9".into()),
                ("not json".into(), "1".into()),
            ],
        );
        assert_eq!(b.start, 60);
        assert_eq!(b.series.len(), 2);
        assert_eq!(
            (
                b.series[0].action.as_str(),
                b.series[0].done,
                b.series[0].run_time_secs
            ),
            ("a", 4, 1.5)
        );
        assert_eq!(b.series[1].handed_off, 1);
        assert_eq!(b.wait.get("q"), Some(&12.0));
    }

    #[test]
    fn span_names() {
        assert_eq!("1h".parse::<Span>(), Ok(Span::Hour));
        assert_eq!("day".parse::<Span>(), Ok(Span::Day));
        assert_eq!("7d".parse::<Span>(), Ok(Span::Week));
        assert!("month".parse::<Span>().unwrap_err().contains("month"));
        assert_eq!(Span::Day.buckets(), (60, 1440));
    }
}
