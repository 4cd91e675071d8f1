//! The action kinds a config file can name (`[actions.<name>] kind = "..."`) with their own keys, and the
//! native kind of each of the app's four actions. Data only: building and running a kind is
//! [`super::handler`]'s business.

use serde::Deserialize;

use super::analytics::AnalyticsOptions;
use super::cache_warming::CacheWarmingOptions;
use super::email::EmailOptions;
use super::whatsapp::WhatsappOptions;

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
