//! What defer-worker does with each DeferredJob action, chosen per action name in the config file.
//!
//! An action only runs: it never sees the queue and cannot ack, release or fail its own job. It reports
//! an [`ActionError`] that says what the worker should do (retry later, or give up), and the worker
//! applies Laravel's rules to it. Kinds: the app's four actions run natively (`whatsapp`, `email`,
//! `analytics`, `cache_warming`); `log` (dry runs, shadow mode), `fail`, `warn` (what the app's
//! DeferredJob does with an action it does not know) and `forward`, which is not run here at all: the
//! worker hands such jobs to a PHP worker unchanged.
//!
//! The config file says which kind handles which action ([`ActionKind`]); at worker start [`Actions::build`]
//! turns that table into runners holding their HTTP clients, SMTP pools and database handles.

pub mod analytics;
pub mod cache_warming;
pub mod email;
pub mod ledger;
mod log;
pub mod whatsapp;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use crate::app::AppData;
use crate::deferred::DeferredJob;
use crate::laravel::cache_store::CacheStore;
use analytics::{AnalyticsAction, AnalyticsOptions};
use cache_warming::{CacheWarmingAction, CacheWarmingOptions};
use email::{EmailAction, EmailOptions};
use ledger::Ledger;
use whatsapp::{WhatsappAction, WhatsappOptions};

/// How an action name is handled: `[actions.<name>] kind = "..."` and the kind's own keys.
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
    /// Complete with a warning, as the app's DeferredJob does with an action it does not know. The
    /// default for actions the config does not list.
    Warn,
    /// The restaurant's new-order WhatsApp message (docs/whatsapp.md).
    Whatsapp(WhatsappOptions),
    /// The app's new-order invoice mails (docs/email.md).
    Email(EmailOptions),
    /// The app's dashboard metrics in its cache store.
    Analytics(AnalyticsOptions),
    /// Forgets the vendor's cached keys so the app rebuilds them.
    CacheWarming(CacheWarmingOptions),
}

impl ActionKind {
    /// The kind's name as the config file writes it.
    pub fn name(&self) -> &'static str {
        match self {
            ActionKind::Log { .. } => "log",
            ActionKind::Forward => "forward",
            ActionKind::Fail { .. } => "fail",
            ActionKind::Warn => "warn",
            ActionKind::Whatsapp(_) => "whatsapp",
            ActionKind::Email(_) => "email",
            ActionKind::Analytics(_) => "analytics",
            ActionKind::CacheWarming(_) => "cache_warming",
        }
    }
}

fn default_fail_message() -> String {
    "action is configured to fail".to_owned()
}

fn default_true() -> bool {
    true
}

/// The app's action names, which get [`app_default`] kinds when the config file does not say otherwise.
pub const APP_ACTIONS: [&str; 4] = [
    "whatsapp_notification",
    "email_notification",
    "analytics_tracking",
    "cache_warming",
];

/// The native kind that runs one of the app's actions by default.
pub fn app_default(action: &str) -> Option<ActionKind> {
    Some(match action {
        "whatsapp_notification" => ActionKind::Whatsapp(WhatsappOptions::default()),
        "email_notification" => ActionKind::Email(EmailOptions::default()),
        "analytics_tracking" => ActionKind::Analytics(AnalyticsOptions::default()),
        "cache_warming" => ActionKind::CacheWarming(CacheWarmingOptions::default()),
        _ => return None,
    })
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
    /// 1 on the first run.
    pub attempt: i64,
}

/// What the native kinds are built from: the app's database, its cache store, the sent-ledger.
#[derive(Debug, Clone, Default)]
pub struct Deps {
    pub app: Option<AppData>,
    pub cache: Option<CacheStore>,
    pub ledger: Option<Ledger>,
}

/// Where an entry of the action table came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `[actions.<name>]` in the config file: a kind that cannot be built stops the start.
    Config,
    /// One of [`APP_ACTIONS`], not in the file: a kind that cannot be built falls back to `forward`.
    Default,
}

/// The action table as configured, before anything is connected.
#[derive(Debug, Clone)]
pub struct Plan {
    pub by_name: BTreeMap<String, (ActionKind, Origin)>,
    /// For actions not listed (`[actions."*"]`; `warn` by default).
    pub unlisted: ActionKind,
}

impl Plan {
    /// The file's table. `"*"` sets the kind of every action the table does not list, the app's four
    /// included (`"*" = { kind = "log" }` is a dry run of everything). Without `"*"`, the app's actions
    /// not listed get their native kinds ([`APP_ACTIONS`]) and any other action `warn`.
    pub fn new(table: &BTreeMap<String, ActionKind>) -> Plan {
        let mut by_name: BTreeMap<_, _> = table
            .iter()
            .filter(|(name, _)| name.as_str() != "*")
            .map(|(name, kind)| (name.clone(), (kind.clone(), Origin::Config)))
            .collect();
        let unlisted = match table.get("*") {
            Some(kind) => kind.clone(),
            None => {
                for name in APP_ACTIONS {
                    if let (false, Some(kind)) = (by_name.contains_key(name), app_default(name)) {
                        by_name.insert(name.to_owned(), (kind, Origin::Default));
                    }
                }
                ActionKind::Warn
            }
        };
        Plan { by_name, unlisted }
    }

    /// The kind that handles `action`.
    pub fn kind_of(&self, action: &str) -> &ActionKind {
        self.by_name
            .get(action)
            .map(|(kind, _)| kind)
            .unwrap_or(&self.unlisted)
    }

    /// Whether some action uses `email` or `whatsapp` (the kinds that need the sent-ledger).
    pub fn uses_ledger(&self) -> bool {
        self.by_name
            .values()
            .map(|(k, _)| k)
            .chain([&self.unlisted])
            .any(|k| matches!(k, ActionKind::Email(_) | ActionKind::Whatsapp(_)))
    }
}

/// A built kind, ready to run jobs. Cheap to clone.
#[derive(Debug, Clone)]
pub enum Handler {
    Log { sleep_ms: u64 },
    Forward,
    Fail { message: String, permanent: bool },
    Warn,
    Whatsapp(Arc<WhatsappAction>),
    Email(Arc<EmailAction>),
    Analytics(Arc<AnalyticsAction>),
    CacheWarming(Arc<CacheWarmingAction>),
}

impl Handler {
    /// Builds `kind` on `deps`; errors say which dependency is missing.
    pub async fn build(kind: &ActionKind, deps: &Deps) -> anyhow::Result<Handler> {
        Ok(match kind {
            ActionKind::Log { sleep_ms } => Handler::Log {
                sleep_ms: *sleep_ms,
            },
            ActionKind::Forward => Handler::Forward,
            ActionKind::Fail { message, permanent } => Handler::Fail {
                message: message.clone(),
                permanent: *permanent,
            },
            ActionKind::Warn => Handler::Warn,
            ActionKind::Whatsapp(o) => Handler::Whatsapp(Arc::new(
                WhatsappAction::new(o, deps.app.clone(), deps.ledger.clone()).await?,
            )),
            ActionKind::Email(o) => Handler::Email(Arc::new(
                EmailAction::new(o, deps.app.clone(), deps.ledger.clone()).await?,
            )),
            ActionKind::Analytics(o) => Handler::Analytics(Arc::new(
                AnalyticsAction::new(o, deps.app.clone(), deps.cache.clone()).await?,
            )),
            ActionKind::CacheWarming(o) => Handler::CacheWarming(Arc::new(
                CacheWarmingAction::new(o, deps.cache.clone()).await?,
            )),
        })
    }

    /// The kind's name as the config file writes it (for logs and metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            Handler::Log { .. } => "log",
            Handler::Forward => "forward",
            Handler::Fail { .. } => "fail",
            Handler::Warn => "warn",
            Handler::Whatsapp(_) => "whatsapp",
            Handler::Email(_) => "email",
            Handler::Analytics(_) => "analytics",
            Handler::CacheWarming(_) => "cache_warming",
        }
    }

    pub fn is_forward(&self) -> bool {
        matches!(self, Handler::Forward)
    }

    /// Runs one job (not for `forward`, which the worker hands off instead).
    pub async fn run(&self, job: &DeferredJob, meta: JobMeta<'_>) -> Result<(), ActionError> {
        match self {
            Handler::Log { sleep_ms } => {
                if *sleep_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(*sleep_ms)).await;
                }
                log::run(job, meta);
                Ok(())
            }
            Handler::Warn => {
                log::unknown(job, meta);
                Ok(())
            }
            Handler::Fail { message, permanent } if *permanent => Err(ActionError::Permanent {
                message: message.clone(),
            }),
            Handler::Fail { message, .. } => Err(ActionError::Retry {
                message: message.clone(),
                after: None,
            }),
            Handler::Forward => Err(ActionError::Permanent {
                message: "forward is handled by the worker's hand-off, not run".into(),
            }),
            Handler::Whatsapp(a) => a.run(job, meta).await,
            Handler::Email(a) => a.run(job, meta).await,
            Handler::Analytics(a) => a.run(job, meta).await,
            Handler::CacheWarming(a) => a.run(job, meta).await,
        }
    }
}

/// The built action table: one handler per action name, and one for the rest.
#[derive(Debug, Clone)]
pub struct Actions {
    by_name: BTreeMap<String, Handler>,
    unlisted: Handler,
}

impl Actions {
    /// Builds every kind of `plan`. A kind the config file asked for and that cannot be built stops the
    /// start, naming `[actions.<name>]`; one of the app's defaults falls back to `forward` with a warning
    /// (so a worker with no database configured still starts and leaves those actions to PHP).
    pub async fn build(plan: &Plan, deps: &Deps) -> anyhow::Result<Actions> {
        let mut by_name = BTreeMap::new();
        for (name, (kind, origin)) in &plan.by_name {
            let handler = match (Handler::build(kind, deps).await, origin) {
                (Ok(h), _) => h,
                (Err(e), Origin::Config) => {
                    return Err(e).with_context(|| format!("[actions.{name}] cannot be set up"))
                }
                (Err(e), Origin::Default) => {
                    tracing::warn!(
                        action = %name,
                        "{name} is handed to PHP (forward): its default kind cannot run here: {e:#}. \
                         Set [actions.{name}] in the config file to choose"
                    );
                    Handler::Forward
                }
            };
            by_name.insert(name.clone(), handler);
        }
        let unlisted = Handler::build(&plan.unlisted, deps)
            .await
            .context("[actions.\"*\"] cannot be set up")?;
        Ok(Actions { by_name, unlisted })
    }

    /// A table of ready handlers (tests, and callers that build their own).
    pub fn new(by_name: BTreeMap<String, Handler>, unlisted: Handler) -> Self {
        Self { by_name, unlisted }
    }

    /// The handler for `action`.
    pub fn handler(&self, action: &str) -> &Handler {
        self.by_name.get(action).unwrap_or(&self.unlisted)
    }

    /// `(action name, kind)` for each listed action, then `("*", kind)`: what the start-up log shows.
    pub fn summary(&self) -> Vec<(&str, &'static str)> {
        self.by_name
            .iter()
            .map(|(n, h)| (n.as_str(), h.kind()))
            .chain([("*", self.unlisted.kind())])
            .collect()
    }
}

impl Default for Actions {
    /// Every action logged as unknown: what the app's DeferredJob does with actions it does not know.
    fn default() -> Self {
        Self::new(BTreeMap::new(), Handler::Warn)
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

    fn table(text: &str) -> BTreeMap<String, ActionKind> {
        toml::from_str(text).unwrap()
    }

    #[tokio::test]
    async fn kinds_are_chosen_per_action_and_say_what_to_do() {
        let plan = Plan::new(&table(
            r#"
            a = { kind = "log" }
            b = { kind = "fail", message = "nope" }
            c = { kind = "fail", permanent = false }
            "*" = { kind = "forward" }
            "#,
        ));
        let actions = Actions::build(&plan, &Deps::default()).await.unwrap();
        assert!(actions.handler("zzz").is_forward());
        // "*" covers the app's actions too when they are not listed.
        assert!(actions.handler("whatsapp_notification").is_forward());
        assert_eq!(actions.handler("a").kind(), "log");
        assert_eq!(actions.handler("a").run(&job("a"), META).await, Ok(()));
        assert_eq!(
            actions.handler("b").run(&job("b"), META).await,
            Err(ActionError::Permanent {
                message: "nope".into()
            })
        );
        assert!(matches!(
            actions.handler("c").run(&job("c"), META).await,
            Err(ActionError::Retry { after: None, .. })
        ));
    }

    #[tokio::test]
    async fn an_empty_config_maps_the_apps_actions_and_warns_on_the_rest() {
        let plan = Plan::new(&BTreeMap::new());
        assert!(matches!(
            plan.kind_of("whatsapp_notification"),
            ActionKind::Whatsapp(_)
        ));
        assert!(matches!(
            plan.kind_of("email_notification"),
            ActionKind::Email(_)
        ));
        assert!(matches!(
            plan.kind_of("analytics_tracking"),
            ActionKind::Analytics(_)
        ));
        assert!(matches!(
            plan.kind_of("cache_warming"),
            ActionKind::CacheWarming(_)
        ));
        assert_eq!(plan.kind_of("analytics_export"), &ActionKind::Warn);
        assert!(plan.uses_ledger());
        // Without the app's database or cache store the defaults fall back to forward.
        let actions = Actions::build(&plan, &Deps::default()).await.unwrap();
        assert!(actions.handler("analytics_tracking").is_forward());
        assert!(actions.handler("cache_warming").is_forward());
        assert!(actions.handler("email_notification").is_forward());
        assert_eq!(actions.handler("something_new").kind(), "warn");
        assert_eq!(
            actions.handler("something_new").run(&job("x"), META).await,
            Ok(())
        );
    }

    #[tokio::test]
    async fn a_configured_kind_that_cannot_run_stops_the_start_naming_the_action() {
        let plan = Plan::new(&table("analytics_tracking = { kind = \"analytics\" }"));
        let err = Actions::build(&plan, &Deps::default()).await.unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("[actions.analytics_tracking]") && text.contains("DB_CONNECTION"),
            "{text}"
        );
    }

    #[test]
    fn native_kinds_take_their_own_keys_and_unknown_kinds_and_keys_are_rejected() {
        let t = table(
            r#"
            w = { kind = "whatsapp", message = "template", template = { name = "order_alert" } }
            c = { kind = "cache_warming", extra_keys = ["about_{vendor}"] }
            "#,
        );
        assert!(
            matches!(&t["w"], ActionKind::Whatsapp(o) if o.template.name.as_deref() == Some("order_alert"))
        );
        assert!(
            matches!(&t["c"], ActionKind::CacheWarming(o) if o.extra_keys == ["about_{vendor}"])
        );
        let err =
            toml::from_str::<BTreeMap<String, ActionKind>>("a = { kind = \"sms\" }").unwrap_err();
        assert!(err.to_string().contains("sms"), "{err}");
        let err = toml::from_str::<BTreeMap<String, ActionKind>>("a = { kind = \"log\", x = 1 }")
            .unwrap_err();
        assert!(err.to_string().contains('x'), "{err}");
        let err = toml::from_str::<BTreeMap<String, ActionKind>>(
            "a = { kind = \"cache_warming\", x = 1 }",
        )
        .unwrap_err();
        assert!(err.to_string().contains('x'), "{err}");
    }
}
