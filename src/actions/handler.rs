//! The built action table: each kind of the [`Plan`] turned, at worker start, into a [`Handler`] holding
//! its HTTP client, SMTP pool and database handles, from the [`Deps`] the caller connected. Running a
//! handler returns an [`ActionError`]; it never touches the queue.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::app::AppData;
use crate::config::Settings;
use crate::deferred::DeferredJob;
use crate::laravel::cache_store::CacheStore;

use super::analytics::AnalyticsAction;
use super::cache_warming::CacheWarmingAction;
use super::email::{EmailAction, MailSettings};
use super::error::{ActionError, JobMeta};
use super::kind::ActionKind;
use super::ledger::Ledger;
use super::log;
use super::plan::{Origin, Plan};
use super::whatsapp::{Breakers, WhatsappAction, WhatsappSettings};

/// What the native kinds are built from: the settings (`WHATSAPP_*`, `MAIL_*`, `APP_*`), the app's
/// database, its cache store, the sent-ledger, the WhatsApp senders' circuit breakers.
#[derive(Debug, Clone, Default)]
pub struct Deps {
    pub settings: Settings,
    pub app: Option<AppData>,
    pub cache: Option<CacheStore>,
    pub ledger: Option<Ledger>,
    /// Shared by every `whatsapp` action of the worker; `/metrics` and `/ready` read the same.
    pub breakers: Breakers,
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
            ActionKind::Whatsapp(o) => {
                let settings = WhatsappSettings::from_lookup(&deps.settings.lookup())?;
                Handler::Whatsapp(Arc::new(
                    WhatsappAction::new(o, settings, deps.app.clone(), deps.ledger.clone())
                        .await?
                        .with_breakers(deps.breakers.clone()),
                ))
            }
            ActionKind::Email(o) => Handler::Email(Arc::new(EmailAction::with_settings(
                o,
                MailSettings::from_settings(&deps.settings)?,
                deps.app.clone(),
                deps.ledger.clone(),
            )?)),
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
