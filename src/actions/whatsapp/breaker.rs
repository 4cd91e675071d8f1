//! A circuit breaker per sender: when Meta answers a code that stops the whole sender (190 token,
//! 368 policy block, 131031 account locked, 131048 spam rate limit), nothing more is sent from it for
//! a cool-down; the jobs it meets meanwhile are handed back unchanged (no attempt used), then one
//! probe goes out: accepted, the breaker closes; the same code, it opens again for another cool-down.
//!
//! A sender is the phone-number id plus a fingerprint of the token (8 hex digits of its SHA-256),
//! never the token: a new token is a new sender, so a 190 that has no cool-down (the default) stays
//! open until the token changes, which is a restart with the new `WHATSAPP_API_TOKEN`.
//!
//! Per process and in memory (as the rate limiter): each worker process probes on its own. Uses
//! tokio's clock, so tests drive it with `tokio::time::pause()`. Decides only; the action logs the
//! transitions it reports and carries the hand-back out.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::errors::BREAKER_CODES;

/// A job held while the breaker stays open with no cool-down (190 by default) comes back this late.
pub const UNTIL_RESTART_HOLD: Duration = Duration::from_secs(60);
/// Longest hold of a job while a probe is out (at most the code's cool-down).
const PROBE_HOLD: Duration = Duration::from_secs(5);

/// `breaker = { cooldown_s = { 368 = 3600, … } }` in the action's TOML table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerOptions {
    /// Seconds the breaker stays open after each code before a probe; codes not listed keep
    /// [`default_cooldown`]. 0 means no probe: open until the token changes or the worker restarts.
    pub cooldown_s: BTreeMap<String, u64>,
}

/// The cool-down of `code` when `cooldown_s` does not set it (`None`: until restart).
pub fn default_cooldown(code: i64) -> Option<Duration> {
    match code {
        190 => None,
        131048 => Some(Duration::from_secs(15 * 60)),
        _ => Some(Duration::from_secs(60 * 60)),
    }
}

impl BreakerOptions {
    /// Checks the keys: each must be a breaker code.
    pub fn validate(&self) -> Result<(), String> {
        for key in self.cooldown_s.keys() {
            let known = key.parse::<i64>().is_ok_and(|c| BREAKER_CODES.contains(&c));
            if !known {
                return Err(format!(
                    "breaker.cooldown_s.{key}: not a code the breaker opens on (190, 368, 131031, 131048)"
                ));
            }
        }
        Ok(())
    }

    /// How long the breaker stays open after `code` (`None`: until the token changes or a restart).
    pub fn cooldown(&self, code: i64) -> Option<Duration> {
        match self.cooldown_s.get(&code.to_string()) {
            Some(0) => None,
            Some(secs) => Some(Duration::from_secs(*secs)),
            None => default_cooldown(code),
        }
    }
}

/// One sender: phone-number id and token fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sender {
    pub phone_number_id: String,
    pub token_fingerprint: String,
}

impl Sender {
    pub fn new(phone_number_id: &str, token: &str) -> Sender {
        let digest = Sha256::digest(token.as_bytes());
        let token_fingerprint = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        Sender {
            phone_number_id: phone_number_id.to_owned(),
            token_fingerprint,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Circuit {
    Closed,
    /// `until` `None`: no probe (until the token changes or a restart).
    Open {
        code: i64,
        until: Option<Instant>,
        cooldown: Option<Duration>,
    },
    /// One probe is out since `since`.
    Probing {
        code: i64,
        since: Instant,
        cooldown: Option<Duration>,
    },
}

/// What the caller may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Closed: send.
    Send,
    /// The cool-down is over and this send is the one probe.
    Probe { code: i64 },
    /// Open (or a probe is out): send nothing, hand the job back due in `after`.
    Hold { code: i64, after: Duration },
}

/// What a send ended with, for the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Meta answered and did not stop the sender (accepted, or refused this one message).
    Passed,
    /// Meta answered a breaker code.
    Tripped(i64),
    /// No answer that says either (a timeout, a 5xx, throttling).
    Unclear,
}

/// A transition worth a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    None,
    Opened {
        code: i64,
        cooldown: Option<Duration>,
    },
    Closed,
}

/// One sender's state as `/metrics`, `/ready` and `monitor` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerState {
    pub sender: Sender,
    pub open: bool,
    /// The code that opened it, while open.
    pub code: Option<i64>,
    /// Seconds to the next probe while open (`None`: no probe until the token changes or a restart).
    pub probe_in_s: Option<u64>,
}

/// The breakers of every sender, shared by the actions of one worker. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Breakers {
    circuits: Arc<Mutex<HashMap<Sender, Circuit>>>,
}

impl Breakers {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<Sender, Circuit>) -> T) -> T {
        let mut map = self.circuits.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut map)
    }

    /// Whether `sender` is open and not yet due for a probe: `Some(hold)` to hand the job back at once
    /// without any other work; changes nothing.
    pub fn holding(&self, sender: &Sender) -> Option<Admit> {
        match self.admit_at(sender, Duration::MAX, false) {
            hold @ Admit::Hold { .. } => Some(hold),
            _ => None,
        }
    }

    /// Asks to send from `sender`. A probe out for longer than `probe_grace` (the request's timeout)
    /// is taken as lost and another probe is let through.
    pub fn admit(&self, sender: &Sender, probe_grace: Duration) -> Admit {
        self.admit_at(sender, probe_grace, true)
    }

    fn admit_at(&self, sender: &Sender, probe_grace: Duration, take: bool) -> Admit {
        let now = Instant::now();
        self.with(|map| {
            let circuit = map.get(sender).copied().unwrap_or(Circuit::Closed);
            let (code, cooldown) = match circuit {
                Circuit::Closed => return Admit::Send,
                Circuit::Open {
                    code, until: None, ..
                } => {
                    return Admit::Hold {
                        code,
                        after: UNTIL_RESTART_HOLD,
                    }
                }
                Circuit::Open {
                    code,
                    until: Some(until),
                    ..
                } if until > now => {
                    return Admit::Hold {
                        code,
                        after: until - now,
                    }
                }
                Circuit::Probing {
                    code,
                    since,
                    cooldown,
                } if now.saturating_duration_since(since) < probe_grace => {
                    let after = cooldown.map_or(PROBE_HOLD, |c| c.min(PROBE_HOLD));
                    return Admit::Hold { code, after };
                }
                Circuit::Open { code, cooldown, .. } | Circuit::Probing { code, cooldown, .. } => {
                    (code, cooldown)
                }
            };
            if take {
                map.insert(
                    sender.clone(),
                    Circuit::Probing {
                        code,
                        since: now,
                        cooldown,
                    },
                );
            }
            Admit::Probe { code }
        })
    }

    /// Records how a send from `sender` ended; `cooldown` is the tripping code's (`None`: until
    /// restart). Returns the transition, for the caller's log line.
    pub fn record(
        &self,
        sender: &Sender,
        verdict: Verdict,
        cooldown: impl Fn(i64) -> Option<Duration>,
    ) -> Change {
        let now = Instant::now();
        self.with(|map| {
            let circuit = map.get(sender).copied().unwrap_or(Circuit::Closed);
            match (verdict, circuit) {
                (Verdict::Tripped(code), Circuit::Open { code: was, .. }) if was == code => {
                    // A send that left before the breaker opened: already counted.
                    Change::None
                }
                (Verdict::Tripped(code), _) => {
                    let cooldown = cooldown(code);
                    map.insert(
                        sender.clone(),
                        Circuit::Open {
                            code,
                            until: cooldown.map(|c| now + c),
                            cooldown,
                        },
                    );
                    Change::Opened { code, cooldown }
                }
                (Verdict::Passed, Circuit::Probing { .. }) => {
                    map.insert(sender.clone(), Circuit::Closed);
                    Change::Closed
                }
                // Closed already, or a send that left before the breaker opened: only the probe
                // closes it.
                (Verdict::Passed, _) => Change::None,
                (Verdict::Unclear, Circuit::Probing { code, cooldown, .. }) => {
                    // The probe told nothing: wait another cool-down before the next one.
                    map.insert(
                        sender.clone(),
                        Circuit::Open {
                            code,
                            until: cooldown.map(|c| now + c),
                            cooldown,
                        },
                    );
                    Change::None
                }
                (Verdict::Unclear, _) => Change::None,
            }
        })
    }

    /// Every known sender's state (see [`Breakers::seen`]), sorted by phone-number id.
    pub fn states(&self) -> Vec<BreakerState> {
        let now = Instant::now();
        let mut out: Vec<BreakerState> = self.with(|map| {
            map.iter()
                .map(|(sender, circuit)| {
                    let (open, code, probe_in_s) = match *circuit {
                        Circuit::Closed => (false, None, None),
                        Circuit::Open { code, until, .. } => (
                            true,
                            Some(code),
                            until.map(|u| u.saturating_duration_since(now).as_secs()),
                        ),
                        Circuit::Probing { code, .. } => (true, Some(code), Some(0)),
                    };
                    BreakerState {
                        sender: sender.clone(),
                        open,
                        code,
                        probe_in_s,
                    }
                })
                .collect()
        });
        out.sort_by(|a, b| a.sender.phone_number_id.cmp(&b.sender.phone_number_id));
        out
    }

    /// Lists `sender` (closed) in [`Breakers::states`] before anything happened to it, so its gauge
    /// reads 0 from the start.
    pub fn seen(&self, sender: &Sender) {
        self.with(|map| {
            map.entry(sender.clone()).or_insert(Circuit::Closed);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(30);

    fn opts(pairs: &[(&str, u64)]) -> BreakerOptions {
        BreakerOptions {
            cooldown_s: pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn opens_holds_probes_once_and_closes_or_reopens() {
        let b = Breakers::default();
        let s = Sender::new("1055", "token-a");
        let o = opts(&[("368", 10)]);
        assert_eq!(b.admit(&s, GRACE), Admit::Send);
        let change = b.record(&s, Verdict::Tripped(368), |c| o.cooldown(c));
        assert_eq!(
            change,
            Change::Opened {
                code: 368,
                cooldown: Some(Duration::from_secs(10))
            }
        );
        // Sends that were already out come back: neither the same code nor an acceptance changes it.
        assert_eq!(
            b.record(&s, Verdict::Tripped(368), |c| o.cooldown(c)),
            Change::None
        );
        assert_eq!(
            b.record(&s, Verdict::Passed, |c| o.cooldown(c)),
            Change::None
        );
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(
            b.admit(&s, GRACE),
            Admit::Hold {
                code: 368,
                after: Duration::from_secs(6)
            }
        );
        assert!(b.holding(&s).is_some());
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(b.holding(&s).is_none(), "due for a probe");
        assert_eq!(b.admit(&s, GRACE), Admit::Probe { code: 368 });
        // One probe only: the others wait while it is out.
        assert!(matches!(b.admit(&s, GRACE), Admit::Hold { code: 368, .. }));
        assert_eq!(
            b.record(&s, Verdict::Tripped(368), |c| o.cooldown(c)),
            Change::Opened {
                code: 368,
                cooldown: Some(Duration::from_secs(10))
            },
            "the probe met the block again: reopened"
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(b.admit(&s, GRACE), Admit::Probe { code: 368 });
        assert_eq!(
            b.record(&s, Verdict::Passed, |c| o.cooldown(c)),
            Change::Closed
        );
        assert_eq!(b.admit(&s, GRACE), Admit::Send);
        let states = b.states();
        assert_eq!(states.len(), 1);
        assert!(!states[0].open && states[0].code.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_190_has_no_probe_by_default_and_a_new_token_is_another_sender() {
        let b = Breakers::default();
        let old = Sender::new("1055", "old-token");
        let o = BreakerOptions::default();
        b.record(&old, Verdict::Tripped(190), |c| o.cooldown(c));
        tokio::time::advance(Duration::from_secs(30 * 24 * 3600)).await;
        assert_eq!(
            b.admit(&old, GRACE),
            Admit::Hold {
                code: 190,
                after: UNTIL_RESTART_HOLD
            }
        );
        let state = &b.states()[0];
        assert!(state.open && state.code == Some(190) && state.probe_in_s.is_none());
        assert!(!format!("{state:?}").contains("old-token"));
        let new = Sender::new("1055", "new-token");
        assert_ne!(old, new);
        assert_eq!(b.admit(&new, GRACE), Admit::Send);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_probe_is_replaced_and_an_unclear_one_waits_another_cooldown() {
        let b = Breakers::default();
        let s = Sender::new("1", "t");
        let o = opts(&[("131048", 5)]);
        b.record(&s, Verdict::Tripped(131048), |c| o.cooldown(c));
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(b.admit(&s, GRACE), Admit::Probe { code: 131048 });
        tokio::time::advance(GRACE).await;
        assert_eq!(
            b.admit(&s, GRACE),
            Admit::Probe { code: 131048 },
            "no answer within the grace"
        );
        assert_eq!(
            b.record(&s, Verdict::Unclear, |c| o.cooldown(c)),
            Change::None
        );
        assert_eq!(
            b.admit(&s, GRACE),
            Admit::Hold {
                code: 131048,
                after: Duration::from_secs(5)
            }
        );
    }

    #[test]
    fn cooldowns_are_per_code_and_checked() {
        let o = opts(&[("190", 2), ("368", 0)]);
        assert_eq!(o.cooldown(190), Some(Duration::from_secs(2)));
        assert_eq!(o.cooldown(368), None);
        assert_eq!(o.cooldown(131048), Some(Duration::from_secs(900)));
        assert!(o.validate().is_ok());
        let err = opts(&[("131026", 5)]).validate().unwrap_err();
        assert!(err.contains("breaker.cooldown_s.131026"), "{err}");
        let parsed: BreakerOptions = toml::from_str("cooldown_s = { 368 = 1, 190 = 2 }").unwrap();
        assert_eq!(parsed, opts(&[("368", 1), ("190", 2)]));
    }
}
