//! What defer-worker does with each DeferredJob action, chosen per action name in the config file.
//!
//! An action only runs: it never sees the queue and cannot ack, release or fail its own job. It reports
//! an [`ActionError`] that says what the worker should do (retry later, or give up), and the worker
//! applies Laravel's rules to it. This issue has the `log` kind (dry runs, shadow mode) and `fail`; the
//! `forward` kind is not run here at all: the worker hands such jobs to a PHP worker unchanged.

mod log;
pub mod whatsapp;
pub mod email;
pub mod ledger;
pub mod analytics;
pub mod cache_warming;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::deferred::DeferredJob;

/// How an action name is handled.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionKind {
    /// Log the job (action, data keys, and the data itself at debug level) and succeed, after
    /// `sleep_ms` (0 by default; the app's own handlers sleep 1000/600/400/300 ms to simulate work).
    Log {
        #[serde(default)]
        sleep_ms: u64,
    },
    /// Hand the job to a PHP worker through the hand-off queue, unchanged (no attempt consumed).
    Forward,
    /// Reject the job: to failed_jobs at once (`permanent = true`, the default), or released with the
    /// job's backoff until its tries run out (`permanent = false`), e.g. to hold an action whose
    /// downstream is known to be down.
    Fail {
        #[serde(default = "default_fail_message")]
        message: String,
        #[serde(default = "default_true")]
        permanent: bool,
    },
}

fn default_fail_message() -> String {
    "action is configured to fail".to_owned()
}

fn default_true() -> bool {
    true
}

/// What the worker should do about an action that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// Transient: release the job with its backoff (or `after`, when the action knows better).
    #[error("{message}")]
    Retry {
        message: String,
        after: Option<Duration>,
    },
    /// Will never succeed: fail the job now, whatever tries are left.
    #[error("{message}")]
    Permanent { message: String },
}

/// Facts about the job an action may log; never the payload itself.
#[derive(Debug, Clone, Copy)]
pub struct JobMeta<'a> {
    pub uuid: &'a str,
    pub id: &'a str,
    pub queue: &'a str,
    pub attempt: i64,
}

/// The per-action table from the config file, with the kind for actions it does not list.
#[derive(Debug, Clone)]
pub struct Actions {
    by_name: BTreeMap<String, ActionKind>,
    unlisted: ActionKind,
}

impl Actions {
    pub fn new(by_name: BTreeMap<String, ActionKind>, unlisted: ActionKind) -> Self {
        Self { by_name, unlisted }
    }

    /// The kind that handles `action`.
    pub fn kind_of(&self, action: &str) -> &ActionKind {
        self.by_name.get(action).unwrap_or(&self.unlisted)
    }

    /// Runs a job whose kind is not `forward`.
    pub async fn run(
        &self,
        kind: &ActionKind,
        job: &DeferredJob,
        meta: JobMeta<'_>,
    ) -> Result<(), ActionError> {
        match kind {
            ActionKind::Log { sleep_ms } => {
                if *sleep_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(*sleep_ms)).await;
                }
                log::run(job, meta);
                Ok(())
            }
            ActionKind::Fail {
                message,
                permanent: true,
            } => Err(ActionError::Permanent {
                message: message.clone(),
            }),
            ActionKind::Fail {
                message,
                permanent: false,
            } => Err(ActionError::Retry {
                message: message.clone(),
                after: None,
            }),
            ActionKind::Forward => Err(ActionError::Permanent {
                message: "forward is handled by the worker's hand-off, not run".into(),
            }),
        }
    }
}

impl Default for Actions {
    /// With no config file every action is forwarded to PHP: nothing is done in Rust that was not asked for.
    fn default() -> Self {
        Self::new(BTreeMap::new(), ActionKind::Forward)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::php::Value;

    fn job(action: &str) -> DeferredJob {
        DeferredJob {
            action: action.into(),
            data: Value::Array(vec![]),
        }
    }

    const META: JobMeta<'static> = JobMeta {
        uuid: "u",
        id: "i",
        queue: "q",
        attempt: 1,
    };

    #[tokio::test]
    async fn kinds_are_chosen_per_action_and_say_what_to_do() {
        let table: BTreeMap<String, ActionKind> = toml::from_str(
            r#"
            a = { kind = "log" }
            b = { kind = "fail", message = "nope" }
            c = { kind = "fail", permanent = false }
            "#,
        )
        .unwrap();
        let actions = Actions::new(table, ActionKind::Forward);
        assert_eq!(actions.kind_of("zzz"), &ActionKind::Forward);
        assert_eq!(actions.kind_of("a"), &ActionKind::Log { sleep_ms: 0 });
        assert_eq!(
            actions.run(actions.kind_of("a"), &job("a"), META).await,
            Ok(())
        );
        assert_eq!(
            actions.run(actions.kind_of("b"), &job("b"), META).await,
            Err(ActionError::Permanent {
                message: "nope".into()
            })
        );
        assert!(matches!(
            actions.run(actions.kind_of("c"), &job("c"), META).await,
            Err(ActionError::Retry { after: None, .. })
        ));
    }

    #[test]
    fn unknown_kinds_and_keys_are_rejected() {
        let err =
            toml::from_str::<BTreeMap<String, ActionKind>>("a = { kind = \"sms\" }").unwrap_err();
        assert!(err.to_string().contains("sms"), "{err}");
        let err = toml::from_str::<BTreeMap<String, ActionKind>>("a = { kind = \"log\", x = 1 }")
            .unwrap_err();
        assert!(err.to_string().contains('x'), "{err}");
    }
}
