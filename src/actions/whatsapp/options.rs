//! The `whatsapp` kind's settings: the per-action TOML keys ([`WhatsappOptions`]) and the app's
//! `WHATSAPP_*` environment ([`WhatsappSettings`], Laravel's names and defaults from
//! `config/whatsapp.php`, docs/restrosaas.md §4.1).
//!
//! Reading and checking only; errors name the key to fix. Nothing here connects or logs.

use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

use super::breaker::BreakerOptions;
use super::phone::TrunkZero;
use super::ratelimit::RateLimitOptions;
use super::versions::DEFAULT_API_URL;

/// Which kind of WhatsApp message to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// The vendor's new-order text (free text: only delivered inside the 24-hour window).
    #[default]
    Text,
    /// An approved template (`[actions.<name>.template]`), deliverable at any time.
    Template,
}

/// Who receives the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Recipient {
    /// The restaurant: `settings.contact`, else the vendor's `users.mobile` (the app's path E / A).
    #[default]
    Vendor,
    /// The customer: `orders.mobile`, else `orders.user_mobile`.
    Customer,
}

/// What to do when the recipient has no usable number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnMissingRecipient {
    /// Fail the job (visible in failed_jobs).
    #[default]
    Fail,
    /// Log a warning and complete the job.
    Skip,
}

/// `template = { ... }`: an approved template and its body parameters.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TemplateOptions {
    /// Template name; default `WHATSAPP_TEMPLATE_NEW_ORDER`, else `new_order_notification`.
    pub name: Option<String>,
    /// Language code; default `fr` (the app's `whatsapp.templates.new_order.language`).
    pub language: Option<String>,
    /// The body's `{{1}}`, `{{2}}`… in order, each a text with the order's `{placeholders}`, e.g.
    /// `["{customer_name}", "{order_no}", "{grand_total}"]`. Must match the approved template.
    pub parameters: Vec<String>,
}

/// `[actions.<name>] kind = "whatsapp"`: the keys allowed besides `kind`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WhatsappOptions {
    /// `text` (default) or `template`.
    pub message: MessageKind,
    pub template: TemplateOptions,
    /// `vendor` (default) or `customer`.
    pub recipient: Recipient,
    /// `fail` (default) or `skip`.
    pub on_missing_recipient: OnMissingRecipient,
    /// `message_type` written to the log table (the app's `order_notification`).
    pub message_type: String,
    /// Text messages: let WhatsApp preview the first URL (the app's WhatsAppService sends `false`).
    pub preview_url: bool,
    /// The log table; empty to write none.
    pub log_table: String,
    /// `auto`, `replace` or `keep`: the leading 0 of national numbers (see `phone`).
    pub trunk_zero: TrunkZero,
    /// `trans('labels.delivery')` / `trans('labels.pickup')` for `{delivery_type}`.
    pub delivery_label: String,
    pub pickup_label: String,
    pub rate_limit: RateLimitOptions,
    /// The per-sender circuit breaker's cool-downs (`breaker = { cooldown_s = { 368 = 3600 } }`).
    pub breaker: BreakerOptions,
}

impl Default for WhatsappOptions {
    fn default() -> Self {
        WhatsappOptions {
            message: MessageKind::Text,
            template: TemplateOptions::default(),
            recipient: Recipient::Vendor,
            on_missing_recipient: OnMissingRecipient::Fail,
            message_type: "order_notification".into(),
            preview_url: false,
            log_table: "whatsapp_messages_log".into(),
            trunk_zero: TrunkZero::Auto,
            delivery_label: "Delivery".into(),
            pickup_label: "Pickup".into(),
            rate_limit: RateLimitOptions::default(),
            breaker: BreakerOptions::default(),
        }
    }
}

/// The app's WhatsApp settings, under Laravel's names.
#[derive(Clone, PartialEq)]
pub struct WhatsappSettings {
    /// `WHATSAPP_API_URL` ([`DEFAULT_API_URL`]; the app's own default, v18.0, has expired).
    pub api_url: String,
    /// `WHATSAPP_API_TOKEN` (empty: not configured).
    pub api_token: String,
    /// `WHATSAPP_PHONE_NUMBER_ID` (empty: not configured).
    pub phone_number_id: String,
    /// `WHATSAPP_TIMEOUT` in seconds (30).
    pub timeout: Duration,
    /// `WHATSAPP_DEFAULT_COUNTRY_CODE` (225).
    pub default_country_code: String,
    /// `WHATSAPP_ENABLED` (true).
    pub enabled: bool,
    /// `WHATSAPP_DEMO_MODE` (false).
    pub demo_mode: bool,
    /// `WHATSAPP_NOTIFY_RESTAURANT_ON_ORDER` (true): gate of vendor messages.
    pub notify_restaurant_on_order: bool,
    /// `WHATSAPP_AUTO_NOTIFY_ORDER_CREATED` (true): gate of customer messages.
    pub notify_customer_on_order: bool,
    /// `WHATSAPP_TEMPLATE_NEW_ORDER` (`new_order_notification`).
    pub template_new_order: String,
    /// `APP_URL` (`http://localhost`).
    pub app_url: String,
    /// `APP_TIMEZONE` (UTC), for the log table's timestamps.
    pub timezone: chrono_tz::Tz,
    /// `WHATSAPP_ALLOW_EXPIRED_API_VERSION` (false): start even when the URL's version has expired.
    pub allow_expired_api_version: bool,
}

impl std::fmt::Debug for WhatsappSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhatsappSettings")
            .field("api_url", &self.api_url)
            .field(
                "api_token",
                &if self.api_token.is_empty() { "" } else { "***" },
            )
            .field("phone_number_id", &self.phone_number_id)
            .field("timeout", &self.timeout)
            .field("default_country_code", &self.default_country_code)
            .field("enabled", &self.enabled)
            .field("demo_mode", &self.demo_mode)
            .finish_non_exhaustive()
    }
}

/// Laravel `env()` + PHP truthiness: `false`, `0` and empty are false.
fn flag(get: &dyn Fn(&str) -> Option<String>, key: &str, default: bool) -> bool {
    match get(key) {
        None => default,
        Some(v) => !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "false" | "(false)"
        ),
    }
}

impl WhatsappSettings {
    /// From any lookup of Laravel-named values (`None` or empty: unset).
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<WhatsappSettings> {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        let text = |k: &str, default: &str| get(k).unwrap_or_else(|| default.to_owned());
        let api_url = text("WHATSAPP_API_URL", DEFAULT_API_URL);
        if !(api_url.starts_with("http://") || api_url.starts_with("https://")) {
            bail!("WHATSAPP_API_URL={api_url:?} is not an http(s) URL");
        }
        let timeout = match get("WHATSAPP_TIMEOUT") {
            None => Duration::from_secs(30),
            Some(v) => {
                let secs: f64 = v
                    .trim()
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0)
                    .with_context(|| {
                        format!("WHATSAPP_TIMEOUT={v:?} is not a positive number of seconds")
                    })?;
                Duration::from_secs_f64(secs)
            }
        };
        let default_country_code = text("WHATSAPP_DEFAULT_COUNTRY_CODE", "225");
        if !default_country_code
            .trim_start_matches('+')
            .chars()
            .all(|c| c.is_ascii_digit())
        {
            bail!("WHATSAPP_DEFAULT_COUNTRY_CODE={default_country_code:?} is not a calling code (digits, e.g. 225)");
        }
        let timezone = crate::config::app_timezone(&get).map_err(anyhow::Error::msg)?;
        Ok(WhatsappSettings {
            api_url,
            api_token: text("WHATSAPP_API_TOKEN", ""),
            phone_number_id: text("WHATSAPP_PHONE_NUMBER_ID", ""),
            timeout,
            default_country_code: default_country_code.trim_start_matches('+').to_owned(),
            enabled: flag(&get, "WHATSAPP_ENABLED", true),
            demo_mode: flag(&get, "WHATSAPP_DEMO_MODE", false),
            notify_restaurant_on_order: flag(&get, "WHATSAPP_NOTIFY_RESTAURANT_ON_ORDER", true),
            notify_customer_on_order: flag(&get, "WHATSAPP_AUTO_NOTIFY_ORDER_CREATED", true),
            template_new_order: text("WHATSAPP_TEMPLATE_NEW_ORDER", "new_order_notification"),
            app_url: text("APP_URL", "http://localhost"),
            timezone,
            allow_expired_api_version: flag(&get, "WHATSAPP_ALLOW_EXPIRED_API_VERSION", false),
        })
    }

    /// The first missing API setting, if any.
    pub fn missing_api_setting(&self) -> Option<&'static str> {
        if self.api_token.is_empty() {
            Some("WHATSAPP_API_TOKEN")
        } else if self.phone_number_id.is_empty() {
            Some("WHATSAPP_PHONE_NUMBER_ID")
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> anyhow::Result<WhatsappSettings> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        WhatsappSettings::from_lookup(&|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_apps() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.api_url, "https://graph.facebook.com/v25.0");
        assert!(!s.allow_expired_api_version);
        assert_eq!(s.timeout, Duration::from_secs(30));
        assert_eq!(s.default_country_code, "225");
        assert!(s.enabled && !s.demo_mode && s.notify_restaurant_on_order);
        assert_eq!(s.missing_api_setting(), Some("WHATSAPP_API_TOKEN"));
        let s = settings(&[("WHATSAPP_ENABLED", "0"), ("WHATSAPP_DEMO_MODE", "true")]).unwrap();
        assert!(!s.enabled && s.demo_mode);
        let dbg = format!(
            "{:?}",
            settings(&[("WHATSAPP_API_TOKEN", "sekret")]).unwrap()
        );
        assert!(!dbg.contains("sekret"), "{dbg}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = settings(&[("WHATSAPP_TIMEOUT", "soon")]).unwrap_err();
        assert!(e.to_string().contains("WHATSAPP_TIMEOUT"), "{e}");
        let e = settings(&[("WHATSAPP_API_URL", "graph.facebook.com")]).unwrap_err();
        assert!(e.to_string().contains("WHATSAPP_API_URL"), "{e}");
        let e = settings(&[("WHATSAPP_DEFAULT_COUNTRY_CODE", "CI")]).unwrap_err();
        assert!(
            e.to_string().contains("WHATSAPP_DEFAULT_COUNTRY_CODE"),
            "{e}"
        );
    }

    #[test]
    fn toml_options_are_checked() {
        let o: WhatsappOptions = toml::from_str(
            r#"
            message = "template"
            recipient = "customer"
            template = { name = "order_ready", language = "en", parameters = ["{order_no}"] }
            rate_limit = { per_second = 20, per_recipient_ms = 0 }
            "#,
        )
        .unwrap();
        assert_eq!(o.message, MessageKind::Template);
        assert_eq!(o.template.parameters, vec!["{order_no}".to_owned()]);
        assert_eq!(o.rate_limit.per_second, 20.0);
        assert_eq!(o.rate_limit.burst, 80);
        assert_eq!(o.message_type, "order_notification");
        assert!(toml::from_str::<WhatsappOptions>("mesage = \"text\"").is_err());
    }

    /// The shape `ActionKind` will embed it in: `[actions.x] kind = "whatsapp" ...`.
    #[test]
    fn options_fit_an_internally_tagged_kind() {
        #[derive(Debug, Deserialize)]
        #[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
        enum Kind {
            Whatsapp(WhatsappOptions),
        }
        let Kind::Whatsapp(o) =
            toml::from_str("kind = \"whatsapp\"\nrecipient = \"customer\"").unwrap();
        assert_eq!(o.recipient, Recipient::Customer);
        let Kind::Whatsapp(o) = toml::from_str("kind = \"whatsapp\"").unwrap();
        assert_eq!(o, WhatsappOptions::default());
        let err = toml::from_str::<Kind>("kind = \"whatsapp\"\nrecipeint = \"x\"").unwrap_err();
        assert!(err.to_string().contains("recipeint"), "{err}");
    }
}
