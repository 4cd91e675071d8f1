//! SMTP with the app's `MAIL_*` settings, as the email action connects: TCP, EHLO, STARTTLS or implicit
//! TLS with the certificate checked (against the action's `ca_file` too), AUTH, then QUIT. No mail is
//! sent, and no login or password is printed.

use super::model::Checks;
use crate::actions::email::{EmailOptions, MailSettings, Mailer, Transport};
use crate::actions::{ActionKind, Origin, Plan};
use crate::config::Settings;

/// `app`: the app's database is configured (without it the app's own actions go to PHP).
pub(super) async fn check(c: &mut Checks, settings: &Settings, app: bool) {
    let Some(opts) = email_options(settings, app) else {
        c.pass("smtp", "no action sends mail here: SMTP not used");
        return;
    };
    let mail = match MailSettings::from_settings(settings) {
        Ok(m) => m,
        Err(e) => {
            let fix = c.set("the MAIL_* key named", "");
            c.fail("smtp", format!("{e:#}"), fix);
            return;
        }
    };
    let server = match mail.route.transport {
        Transport::Log(why) => {
            c.pass("smtp", format!("{why}: mails are logged, not sent"));
            return;
        }
        Transport::Smtp(server) => server,
    };
    let mailer = match Mailer::new(opts.ca_file.as_deref(), opts.timeout(), 1) {
        Ok(m) => m,
        Err(e) => {
            c.fail(
                "smtp",
                format!("{e:#}"),
                "fix ca_file in [actions.email_notification]",
            );
            return;
        }
    };
    let login = if server.username.is_some() {
        "AUTH as MAIL_USERNAME"
    } else {
        "no AUTH (MAIL_USERNAME unset)"
    };
    match mailer.test_connection(&server).await {
        Ok(()) => c.pass(
            "smtp",
            format!(
                "{server}: connected, EHLO, TLS as MAIL_ENCRYPTION asks, {login}; no mail sent"
            ),
        ),
        Err(e) => {
            let fix = if is_auth(&e.message) {
                c.set(
                    "MAIL_USERNAME and MAIL_PASSWORD",
                    "to the SMTP login the server accepts",
                )
            } else if e.message.contains("TLS") {
                c.set(
                    "MAIL_ENCRYPTION (tls: STARTTLS, ssl: implicit TLS) and MAIL_HOST",
                    "so the server's certificate matches the host (or add its CA as ca_file)",
                )
            } else {
                c.set("MAIL_HOST and MAIL_PORT", "to the app's SMTP server")
            };
            c.fail("smtp", e.message, fix);
        }
    }
}

/// The options of the first action that sends mail, if any will: one the config file sets, or the
/// app's own when its database is configured.
fn email_options(settings: &Settings, app: bool) -> Option<EmailOptions> {
    let plan = Plan::from_file(settings.file()).ok()?;
    let found = plan.by_name.values().find_map(|(kind, origin)| match kind {
        ActionKind::Email(o) if app || *origin == Origin::Config => Some(o.clone()),
        _ => None,
    });
    found.or(match plan.unlisted {
        ActionKind::Email(o) => Some(o),
        _ => None,
    })
}

/// A refused login (RFC 4954: 530 needed, 534 too weak, 535 invalid, 454 temporary) or no mechanism
/// in common.
fn is_auth(message: &str) -> bool {
    ["error 530", "error 534", "error 535", "error 454"]
        .iter()
        .any(|c| message.contains(c))
        || message.contains("authentication")
}
