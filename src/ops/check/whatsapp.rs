//! The WhatsApp Cloud API with the app's `WHATSAPP_*` settings: the token and the sender's phone-number
//! id, tried with a read-only `GET /{phone-number-id}?fields=…` (nothing is sent), and the Graph API
//! version the URL names, against Meta's table of end dates (`whatsapp::versions`). The token is never printed; the business number only masked.

use super::model::Checks;
use crate::actions::whatsapp::{phone, versions, CloudApi, WhatsappSettings};
use crate::actions::{ActionKind, Origin, Plan};
use crate::config::Settings;
use crate::util::clock;

const FIELDS: &str = "display_phone_number,verified_name,quality_rating";

/// `app`: the app's database is configured (without it the app's own actions go to PHP).
pub(super) async fn check(c: &mut Checks, settings: &Settings, app: bool) {
    if !sends_whatsapp(settings, app) {
        c.pass(
            "whatsapp",
            "no action sends WhatsApp messages here: the Cloud API is not used",
        );
        return;
    }
    let wa = match WhatsappSettings::from_lookup(&settings.lookup()) {
        Ok(wa) => wa,
        Err(e) => {
            let fix = c.set("the WHATSAPP_* key named", "");
            c.fail("whatsapp", format!("{e:#}"), fix);
            return;
        }
    };
    if !wa.enabled || wa.demo_mode {
        let why = if wa.enabled {
            "WHATSAPP_DEMO_MODE=true"
        } else {
            "WHATSAPP_ENABLED=false"
        };
        c.pass(
            "whatsapp",
            format!("{why}: no message is sent, the Cloud API is not called"),
        );
        return;
    }
    version(c, &wa);
    if let Some(key) = wa.missing_api_setting() {
        let fix = c.set(key, "(Meta's WhatsApp Manager → API setup)");
        c.fail(
            "whatsapp.api",
            format!("{key} is empty: no message can be sent"),
            fix,
        );
        return;
    }
    let api = match CloudApi::new(&wa.api_url, &wa.phone_number_id, &wa.api_token, wa.timeout) {
        Ok(api) => api,
        Err(e) => {
            c.fail(
                "whatsapp.api",
                format!("cannot build the HTTP client: {e}"),
                "see the error",
            );
            return;
        }
    };
    let url = format!(
        "GET {}/{}",
        wa.api_url.trim_end_matches('/'),
        wa.phone_number_id
    );
    match api.phone_number(FIELDS).await {
        Ok(node) => {
            let field = |k: &str| {
                node.get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or("?")
                    .to_owned()
            };
            c.pass(
                "whatsapp.api",
                format!(
                    "{url}: token accepted; {:?}, number {}, quality {}",
                    field("verified_name"),
                    phone::masked(&field("display_phone_number")),
                    field("quality_rating"),
                ),
            );
        }
        Err(e) => {
            let key = match e.code.as_str() {
                // OAuthException: the token is invalid or expired, or lacks the permission.
                "190" | "10" | "200" => "WHATSAPP_API_TOKEN",
                // The id is not a node this token can read.
                "100" | "803" | "33" => "WHATSAPP_PHONE_NUMBER_ID",
                _ => "WHATSAPP_API_URL",
            };
            let fix = c.set(
                key,
                "(Meta's WhatsApp Manager → API setup; a system user's permanent token)",
            );
            c.fail("whatsapp.api", format!("{url}: {}", e.message), fix);
        }
    }
}

/// An action of kind whatsapp the config file sets, or the app's own with its database configured.
fn sends_whatsapp(settings: &Settings, app: bool) -> bool {
    let Ok(plan) = Plan::from_file(settings.file()) else {
        return false;
    };
    let listed = plan.by_name.values().any(|(kind, origin)| {
        matches!(kind, ActionKind::Whatsapp(_)) && (app || *origin == Origin::Config)
    });
    listed || matches!(plan.unlisted, ActionKind::Whatsapp(_))
}

/// The Graph API version `WHATSAPP_API_URL` names, against Meta's table of end dates.
fn version(c: &mut Checks, wa: &WhatsappSettings) {
    let today = chrono::DateTime::from_timestamp(clock::unix_now(), 0)
        .unwrap_or_default()
        .date_naive();
    let version = versions::version_of(&wa.api_url);
    let text = versions::end_date_text(version.as_deref(), today);
    match versions::check(&wa.api_url, wa.allow_expired_api_version, today) {
        Ok(None) => c.pass(
            "whatsapp.version",
            format!(
                "Graph API {text} (WHATSAPP_API_URL; Meta's table of {})",
                versions::CHECKED
            ),
        ),
        Ok(Some(line)) => c.warn("whatsapp.version", line, None),
        Err(e) => {
            let fix = c.set(
                "WHATSAPP_API_URL",
                &format!("to {}", versions::DEFAULT_API_URL),
            );
            c.fail("whatsapp.version", e.to_string(), fix);
        }
    }
}
