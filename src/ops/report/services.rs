//! The report's mail and WhatsApp part: the SMTP transport and sender Laravel 10 would use, and the
//! Cloud API URL the app's WhatsAppService builds, with its Graph API version's end date.

use super::model::Derivation;
use crate::actions::whatsapp::versions;
use crate::config::catalogue::{MAIL, WHATSAPP};
use crate::util::clock::unix_now;

pub(super) fn derive(d: &mut Derivation<'_>) {
    mail(d);
    whatsapp(d);
}

/// Laravel 10's MailManager + Symfony's EsmtpTransport (docs/restrosaas.md §5.3).
fn mail(d: &mut Derivation<'_>) {
    let mailer = d.env_or("MAIL_MAILER", "smtp");
    let host = d.env_or("MAIL_HOST", "smtp.mailgun.org");
    let port_text = d.env_or("MAIL_PORT", "587");
    let encryption = d.env_or("MAIL_ENCRYPTION", "tls").to_ascii_lowercase();
    let transport = if mailer != "smtp" {
        format!("{mailer} (not SMTP)")
    } else if let Ok(port) = port_text.trim().parse::<u16>() {
        if encryption == "ssl" && port != 465 {
            d.note(format!(
                "MAIL_ENCRYPTION=ssl with MAIL_PORT={port}: Laravel 10 uses implicit TLS only on port 465; \
                 this port gets STARTTLS"
            ));
        }
        if port == 465 {
            format!("smtps://{host}:{port} (implicit TLS)")
        } else {
            format!("smtp://{host}:{port} (STARTTLS)")
        }
    } else {
        "unknown: MAIL_PORT is not a port".to_owned()
    };
    d.row(
        MAIL,
        "mail.transport",
        transport,
        "MAIL_MAILER, MAIL_HOST, MAIL_PORT, MAIL_ENCRYPTION",
    );
    let from_name = d.env_or("MAIL_FROM_NAME", "Example");
    let from_address = d.env_or("MAIL_FROM_ADDRESS", "hello@example.com");
    d.row(
        MAIL,
        "mail.from",
        format!("{from_name} <{from_address}>"),
        "MAIL_FROM_NAME, MAIL_FROM_ADDRESS",
    );
}

/// `{api_url}/{phone_number_id}/messages`, as WhatsAppService builds it.
fn whatsapp(d: &mut Derivation<'_>) {
    let api_url = d.env_or("WHATSAPP_API_URL", versions::DEFAULT_API_URL);
    let phone_id = d.env_or("WHATSAPP_PHONE_NUMBER_ID", "");
    d.row(
        WHATSAPP,
        "whatsapp.messages_url",
        format!("{}/{phone_id}/messages", api_url.trim_end_matches('/')),
        "WHATSAPP_API_URL, WHATSAPP_PHONE_NUMBER_ID",
    );
    let today = chrono::DateTime::from_timestamp(unix_now(), 0)
        .unwrap_or_default()
        .date_naive();
    let version = versions::version_of(&api_url);
    d.row(
        WHATSAPP,
        "whatsapp.api_version",
        versions::end_date_text(version.as_deref(), today),
        "WHATSAPP_API_URL",
    );
    let allow = matches!(
        d.env_or("WHATSAPP_ALLOW_EXPIRED_API_VERSION", "false")
            .as_str(),
        "true" | "1"
    );
    match versions::check(&api_url, allow, today) {
        Ok(None) => {}
        Ok(Some(line)) => d.note(line),
        Err(e) => d.note(format!("`work` refuses to start: {e}")),
    }
    let enabled = d.env_or("WHATSAPP_ENABLED", "true") == "true";
    if enabled && (phone_id.is_empty() || d.env("WHATSAPP_API_TOKEN").is_none()) {
        d.note(
            "WHATSAPP_ENABLED is true but WHATSAPP_PHONE_NUMBER_ID or WHATSAPP_API_TOKEN is empty: \
             messages cannot be sent"
                .to_owned(),
        );
    }
}
