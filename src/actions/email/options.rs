//! The `email` kind's settings: the per-action TOML keys ([`EmailOptions`]), the app's `MAIL_*`
//! environment ([`MailSettings`], Laravel's names and `config/mail.php` defaults, docs/restrosaas.md §5.4),
//! and a vendor's `settings.mail_*` columns (`helper::emailconfigration`), all turned into one
//! [`MailRoute`]: how to send (SMTP server, or log only) and from whom.
//!
//! Reading and checking only; errors name the key or column to fix, never a password. Nothing here
//! connects or logs.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::app::Row;
use crate::config::Settings;

/// What to do when an order has no (valid) address for one of the mails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnMissingRecipient {
    /// Log a warning and send the other mail (the app's `create_order_invoice` swallows the error).
    #[default]
    Skip,
    /// Fail the job permanently (visible in failed_jobs), after sending the other mail.
    Fail,
}

/// `[actions.<name>] kind = "email"`: the keys allowed besides `kind`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailOptions {
    /// Send the customer's mail (`customerorderemail`). Default true.
    pub customer: bool,
    /// Send the vendor's mail (`vendororderemail`). Default true.
    pub vendor: bool,
    /// Subject of both mails; the app's is `Order Invoice`.
    pub subject: String,
    /// A directory whose `customer_order.html`, `customer_order.txt`, `vendor_order.html` and
    /// `vendor_order.txt` (minijinja) replace the shipped ones (`templates/email/`); a file missing
    /// there keeps the shipped version.
    pub templates: Option<PathBuf>,
    /// A PEM file of extra root certificates for the SMTP server (private CA, tests). The system's
    /// web PKI roots stay trusted; certificate and host-name checks are never switched off.
    pub ca_file: Option<PathBuf>,
    /// Use the vendor's `settings.mail_*` columns (with vendor 1's row as fallback) when they exist
    /// and name a host, as the app's `helper::emailconfigration`. Default true.
    pub vendor_smtp: bool,
    /// The order-tracking link; `{app_url}` (`APP_URL`), `{slug}` (the vendor's `users.slug`) and
    /// `{order_number}`. Default: the app's `URL::to(slug/track-order/order_number)`.
    pub track_url: String,
    /// SMTP connect and command timeout, seconds.
    pub timeout_secs: u64,
    /// Most open SMTP connections kept per server.
    pub pool_size: u32,
    /// `skip` (default) or `fail`.
    pub on_missing_recipient: OnMissingRecipient,
}

impl Default for EmailOptions {
    fn default() -> Self {
        EmailOptions {
            customer: true,
            vendor: true,
            subject: "Order Invoice".into(),
            templates: None,
            ca_file: None,
            vendor_smtp: true,
            track_url: "{app_url}/{slug}/track-order/{order_number}".into(),
            timeout_secs: 30,
            pool_size: 4,
            on_missing_recipient: OnMissingRecipient::Skip,
        }
    }
}

impl EmailOptions {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.max(1))
    }

    /// Checks what serde cannot; the message names the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.subject.trim().is_empty() {
            bail!("subject is empty");
        }
        if self.pool_size == 0 {
            bail!("pool_size must be at least 1");
        }
        if !self.customer && !self.vendor {
            bail!("customer = false and vendor = false: the action would send nothing (use kind = \"log\")");
        }
        Ok(())
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encryption {
    /// Plain connection, upgraded with STARTTLS (required, not opportunistic).
    StartTls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Implicit,
    /// No TLS at all.
    None,
}

impl Encryption {
    /// `MAIL_ENCRYPTION` / `settings.mail_encryption`: `tls` → STARTTLS, except on port 465 where
    /// Laravel 10 picks `smtps`; `ssl` (or `smtps`) → implicit TLS; `null`/empty/`none` → none.
    pub fn parse(value: Option<&str>, port: u16) -> Option<Encryption> {
        let v = value.map(|v| v.trim().to_ascii_lowercase());
        match v.as_deref() {
            None | Some("" | "null" | "(null)" | "none" | "false") => Some(Encryption::None),
            Some("tls" | "starttls") if port == 465 => Some(Encryption::Implicit),
            Some("tls" | "starttls") => Some(Encryption::StartTls),
            Some("ssl" | "smtps") => Some(Encryption::Implicit),
            Some(_) => None,
        }
    }
}

/// One SMTP server and login: the key of the transport cache.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SmtpServer {
    pub host: String,
    pub port: u16,
    pub encryption: Encryption,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpServer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("encryption", &self.encryption)
            .field("auth", &self.username.is_some())
            .finish()
    }
}

impl fmt::Display for SmtpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.encryption {
            Encryption::StartTls => "smtp+starttls",
            Encryption::Implicit => "smtps",
            Encryption::None => "smtp",
        };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

/// Where a mail goes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Smtp(SmtpServer),
    /// `MAIL_MAILER=log` or `array`: render, log, send nothing, succeed.
    Log(String),
}

/// The sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    pub address: String,
    pub name: String,
}

/// Transport and sender for one vendor's mails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRoute {
    pub transport: Transport,
    pub from: Sender,
    /// Where it came from, for logs: `MAIL_*` or `settings.mail_* of vendor N`.
    pub source: String,
}

/// The app's `MAIL_*` settings (Laravel's `config/mail.php` defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailSettings {
    pub route: MailRoute,
    /// `APP_URL` (`http://localhost` when unset, as `config/app.php`), base of the track link.
    pub app_url: String,
}

const SUPPORTED: &str = "smtp, log or array";

impl MailSettings {
    /// From the settings. An explicit `MAIL_ENCRYPTION=null` (or empty) means no TLS, as in Laravel,
    /// while an unset one means the default `tls`.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<MailSettings> {
        Self::from_lookup(&|k: &str| {
            settings
                .get(k)
                .map(|r| r.value.unwrap_or_else(|| "null".to_owned()))
        })
    }

    /// From any lookup of Laravel-named values: `None` is unset, `Some("null")` or `Some("")` an
    /// explicitly empty value.
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<MailSettings> {
        let set = |k: &str| get(k).filter(|v| !v.is_empty() && v != "null");
        let text = |k: &str, default: &str| set(k).unwrap_or_else(|| default.to_owned());
        let mailer = text("MAIL_MAILER", "smtp").to_ascii_lowercase();
        let transport = match mailer.as_str() {
            "smtp" => {
                let port = match set("MAIL_PORT") {
                    None => 587,
                    Some(p) => p
                        .trim()
                        .parse::<u16>()
                        .ok()
                        .filter(|p| *p > 0)
                        .with_context(|| format!("MAIL_PORT={p:?} is not a TCP port (1-65535)"))?,
                };
                let encryption = get("MAIL_ENCRYPTION").unwrap_or_else(|| "tls".into());
                let encryption = Encryption::parse(Some(&encryption), port).with_context(|| {
                    format!("MAIL_ENCRYPTION={encryption:?} is not tls (STARTTLS), ssl (implicit TLS) or null")
                })?;
                Transport::Smtp(SmtpServer {
                    host: text("MAIL_HOST", "smtp.mailgun.org"),
                    port,
                    encryption,
                    username: set("MAIL_USERNAME"),
                    password: set("MAIL_PASSWORD"),
                })
            }
            "log" | "array" => Transport::Log(format!("MAIL_MAILER={mailer}")),
            other => bail!(
                "MAIL_MAILER={other:?} is not supported by the email action ({SUPPORTED}); \
                 map email_notification to kind = \"forward\" to let PHP send it"
            ),
        };
        let name = set("MAIL_FROM_NAME")
            .or_else(|| set("APP_NAME"))
            .unwrap_or_else(|| "Example".into());
        Ok(MailSettings {
            route: MailRoute {
                transport,
                from: Sender {
                    address: text("MAIL_FROM_ADDRESS", "hello@example.com"),
                    name,
                },
                source: "MAIL_*".into(),
            },
            app_url: text("APP_URL", "http://localhost"),
        })
    }
}

/// A vendor's `settings.mail_*` that cannot be used. The job fails permanently with this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("settings.{column} of vendor {vendor} is not usable: {reason}")]
pub struct VendorMailError {
    pub vendor: i64,
    pub column: &'static str,
    pub reason: String,
}

/// The route of a vendor's `settings` row (`helper::emailconfigration`): `Ok(None)` when the row has
/// no `mail_host` column or it is empty (then the caller falls back). The whole transport comes from
/// the row (never the row's host with `MAIL_PASSWORD`); the sender falls back to `env` per field.
pub fn vendor_route(
    vendor: i64,
    row: &Row,
    env: &MailSettings,
) -> Result<Option<MailRoute>, VendorMailError> {
    let get = |c: &str| {
        row.non_empty(c)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let Some(host) = get("mail_host") else {
        return Ok(None);
    };
    let err = |column, reason: String| VendorMailError {
        vendor,
        column,
        reason,
    };
    let driver = get("mail_driver")
        .unwrap_or_else(|| "smtp".into())
        .to_ascii_lowercase();
    let source = format!("settings.mail_* of vendor {vendor}");
    let transport = match driver.as_str() {
        "smtp" => {
            let raw_enc = get("mail_encryption");
            let port = match get("mail_port") {
                Some(p) => p
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| err("mail_port", format!("{p:?} is not a TCP port")))?,
                None if matches!(raw_enc.as_deref(), Some("ssl" | "smtps")) => 465,
                None => 587,
            };
            let encryption = Encryption::parse(raw_enc.as_deref(), port).ok_or_else(|| {
                err(
                    "mail_encryption",
                    format!("{:?} is not tls, ssl or empty", raw_enc.unwrap_or_default()),
                )
            })?;
            Transport::Smtp(SmtpServer {
                host,
                port,
                encryption,
                username: get("mail_username"),
                password: get("mail_password"),
            })
        }
        "log" | "array" => Transport::Log(source.clone()),
        other => {
            return Err(err(
                "mail_driver",
                format!("{other:?} is not supported ({SUPPORTED})"),
            ))
        }
    };
    Ok(Some(MailRoute {
        transport,
        from: Sender {
            address: get("mail_fromaddress").unwrap_or_else(|| env.route.from.address.clone()),
            name: get("mail_fromname").unwrap_or_else(|| env.route.from.name.clone()),
        },
        source,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::SqlValue;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    fn smtp(s: &MailSettings) -> &SmtpServer {
        match &s.route.transport {
            Transport::Smtp(s) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn env_defaults_are_laravels() {
        let s = MailSettings::from_lookup(&lookup(&[])).unwrap();
        let srv = smtp(&s);
        assert_eq!(
            (srv.host.as_str(), srv.port, srv.encryption),
            ("smtp.mailgun.org", 587, Encryption::StartTls)
        );
        assert_eq!(s.route.from.address, "hello@example.com");
        assert_eq!(s.route.from.name, "Example");
        assert_eq!(s.app_url, "http://localhost");
        let s = MailSettings::from_lookup(&lookup(&[("APP_NAME", "RestroSaaS")])).unwrap();
        assert_eq!(s.route.from.name, "RestroSaaS");
    }

    #[test]
    fn encryption_follows_laravel() {
        let enc =
            |v: &[(&str, &str)]| smtp(&MailSettings::from_lookup(&lookup(v)).unwrap()).encryption;
        assert_eq!(enc(&[("MAIL_ENCRYPTION", "tls")]), Encryption::StartTls);
        assert_eq!(
            enc(&[("MAIL_ENCRYPTION", "tls"), ("MAIL_PORT", "465")]),
            Encryption::Implicit
        );
        assert_eq!(enc(&[("MAIL_ENCRYPTION", "ssl")]), Encryption::Implicit);
        assert_eq!(enc(&[("MAIL_ENCRYPTION", "null")]), Encryption::None);
        assert_eq!(enc(&[("MAIL_ENCRYPTION", "")]), Encryption::None);
        let err = MailSettings::from_lookup(&lookup(&[("MAIL_ENCRYPTION", "rot13")])).unwrap_err();
        assert!(err.to_string().contains("MAIL_ENCRYPTION"), "{err}");
        let err = MailSettings::from_lookup(&lookup(&[("MAIL_PORT", "99999")])).unwrap_err();
        assert!(err.to_string().contains("MAIL_PORT"), "{err}");
    }

    #[test]
    fn mailers_other_than_smtp_and_log_are_refused() {
        let s = MailSettings::from_lookup(&lookup(&[("MAIL_MAILER", "log")])).unwrap();
        assert!(matches!(s.route.transport, Transport::Log(_)));
        let err = MailSettings::from_lookup(&lookup(&[("MAIL_MAILER", "ses")])).unwrap_err();
        assert!(err.to_string().contains("MAIL_MAILER=\"ses\""), "{err}");
    }

    #[test]
    fn vendor_columns_replace_the_transport_and_fill_the_sender() {
        let env = MailSettings::from_lookup(&lookup(&[
            ("MAIL_PASSWORD", "env-secret"),
            ("MAIL_FROM_NAME", "RestroSaaS"),
        ]))
        .unwrap();
        let text = |s: &str| SqlValue::Text(s.into());
        let row = Row::from_pairs([
            ("mail_driver", text("smtp")),
            ("mail_host", text("mail.vendor.test")),
            ("mail_port", text("")),
            ("mail_encryption", text("ssl")),
            ("mail_username", text("v")),
            ("mail_password", SqlValue::Null),
            ("mail_fromaddress", text("shop@vendor.test")),
            ("mail_fromname", SqlValue::Null),
        ]);
        let route = vendor_route(2, &row, &env).unwrap().expect("host set");
        let Transport::Smtp(srv) = &route.transport else {
            panic!("{route:?}")
        };
        assert_eq!((srv.port, srv.encryption), (465, Encryption::Implicit));
        assert_eq!(
            srv.password, None,
            "never the env password on a vendor host"
        );
        assert_eq!(route.from.address, "shop@vendor.test");
        assert_eq!(route.from.name, "RestroSaaS");
        assert!(!format!("{srv:?}").contains("secret"));

        let no_host = Row::from_pairs([("mail_host", SqlValue::Null)]);
        assert_eq!(vendor_route(2, &no_host, &env).unwrap(), None);
        assert_eq!(vendor_route(2, &Row::default(), &env).unwrap(), None);

        let bad = Row::from_pairs([("mail_host", text("h")), ("mail_driver", text("sendmail"))]);
        let err = vendor_route(7, &bad, &env).unwrap_err();
        assert!(
            err.to_string().contains("settings.mail_driver of vendor 7"),
            "{err}"
        );
    }
}
