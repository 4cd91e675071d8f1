//! The `email` action: one `email_notification` job → load the order → the app's two new-order mails
//! (`helper::create_order_invoice`: the customer's, then the vendor's, both "Order Invoice") → send each
//! over the vendor's SMTP route → tell the worker what happened ([`ActionError`]).
//!
//! Decisions where the app is inconsistent (docs/restrosaas.md §5, docs/restrosaas.md §9):
//! - **Route.** The vendor's `settings.mail_*` when those columns exist and `mail_host` is set
//!   (`helper::emailconfigration`), else vendor 1's row the same way, else the `.env` `MAIL_*`
//!   (docs/restrosaas.md §9.13:
//!   no migration creates the columns, so on the stock schema it is always `MAIL_*`). A vendor route
//!   takes the whole transport from the row, never mixing in `MAIL_PASSWORD`.
//! - **Independent mails.** The app sends both inside one try/catch, so a failed customer mail skips the
//!   vendor's and nothing is ever retried. Here each mail is tried on its own; the job's outcome is a
//!   retry when any mail can be retried, else permanent when any failed, else success. A connection-level
//!   failure (no SMTP reply code) stops the run: the other mail would hit the same server.
//! - **Exactly the missing mails on retry.** A mail accepted by the server is recorded in the [`Ledger`]
//!   under the job's uuid (`email:customer`, `email:vendor`) and skipped by later attempts. Still
//!   at-least-once: a crash, or a Redis failure, between the server's `250` and the mark resends it.
//! - **Recipients.** Customer: `orders.customer_email` / `customer_name`, else `user_email` /
//!   `user_name`, else the `customers` row of `customer_id`. Vendor: `users.email` / `users.name`. A
//!   missing or invalid address skips that mail with a warning (`on_missing_recipient = "fail"` fails).
//! - **Formatting.** The vendor's own `settings` row (or the app's fallback settings) for the currency and
//!   date format, not `helper::appdata`'s host-dependent row (docs/restrosaas.md §9.14). No delivery date →
//!   `created_at`.
//! - **Non-SMTP mailers.** `MAIL_MAILER=log` / `array` (and `mail_driver` log/array) render and log the
//!   mails, send nothing and succeed; other mailers are refused at start.
//!
//! A non-numeric `order_id` (`test_order_1`) completes with a log line, as the app's DeferredJob; a
//! numeric one without an order fails permanently ("Order N not found"). Never logs an address above
//! debug.

use crate::actions::ledger::Ledger;
use crate::actions::{order_of, permanent, ActionError, JobMeta};
use crate::app::{AppData, OrderBundle, Row, FALLBACK_VENDOR};
use crate::deferred::DeferredJob;

use super::options::{
    vendor_route, EmailOptions, MailRoute, MailSettings, OnMissingRecipient, Transport,
};
use super::render::{invoice, Invoice, MailKind, Templates};
use super::smtp::{build_message, Mailer, SendError};

/// The `email` action, built once at worker start.
#[derive(Debug)]
pub struct EmailAction {
    opts: EmailOptions,
    settings: MailSettings,
    templates: Templates,
    mailer: Mailer,
    app: Option<AppData>,
    ledger: Option<Ledger>,
}

/// One mail that did not go out.
struct Failure {
    kind: MailKind,
    error: SendError,
}

impl EmailAction {
    /// Reads the templates and the CA file and sets up the SMTP pools for `settings` (the `MAIL_*`
    /// keys, `APP_URL`, `APP_NAME`). `app` is the app's database (required); `ledger` makes retries skip
    /// mails already accepted (without it a retry resends them).
    pub fn with_settings(
        opts: &EmailOptions,
        settings: MailSettings,
        app: Option<AppData>,
        ledger: Option<Ledger>,
    ) -> anyhow::Result<Self> {
        opts.validate()?;
        if app.is_none() {
            anyhow::bail!(
                "the email action reads orders from the app's database: set DB_CONNECTION and DB_* \
                 (or DATABASE_URL)"
            );
        }
        let templates = Templates::load(opts.templates.as_deref())?;
        let mailer = Mailer::new(opts.ca_file.as_deref(), opts.timeout(), opts.pool_size)?;
        if ledger.is_none() {
            tracing::warn!(
                "email action without a sent-ledger: a retried job resends mails already sent"
            );
        }
        Ok(EmailAction {
            opts: opts.clone(),
            settings,
            templates,
            mailer,
            app,
            ledger,
        })
    }

    /// The SMTP transports cached so far (one per distinct server and login).
    pub fn transports(&self) -> usize {
        self.mailer.cached()
    }

    /// Runs one `email_notification` job.
    pub async fn run(&self, job: &DeferredJob, meta: JobMeta<'_>) -> Result<(), ActionError> {
        let Some(id) = job.order_id() else {
            tracing::info!(
                action = %job.action,
                "order_id is not a numeric order id: no mail to send, completed as the app does"
            );
            tracing::debug!(order_id = ?job.get("order_id"), "non-numeric order_id");
            return Ok(());
        };
        let (app, bundle) = order_of(self.app.as_ref(), id).await?;
        let customer = self.customer_row(app, &bundle).await?;
        let invoice = invoice(
            &bundle,
            customer.as_ref(),
            &self.settings.app_url,
            &self.opts.track_url,
            &self.opts.subject,
        );
        let route = self.route(app, &bundle).await?;

        let mut failures: Vec<Failure> = Vec::new();
        let mut sent: Vec<&'static str> = Vec::new();
        for kind in MailKind::ALL {
            let wanted = match kind {
                MailKind::Customer => self.opts.customer,
                MailKind::Vendor => self.opts.vendor,
            };
            if !wanted {
                continue;
            }
            if let Some(ledger) = self.ledger.as_ref().filter(|_| !meta.uuid.is_empty()) {
                if ledger.done(meta.uuid, kind.step()).await? {
                    tracing::info!(
                        order_id = id,
                        mail = kind.label(),
                        "mail already sent by an earlier attempt: skipped"
                    );
                    sent.push(kind.label());
                    continue;
                }
            }
            match self.send_one(id, kind, &invoice, &route).await {
                Ok(true) => {
                    sent.push(kind.label());
                    self.mark(meta.uuid, kind, id).await;
                }
                Ok(false) => {}
                Err(error) => {
                    let stop = error.connection;
                    failures.push(Failure { kind, error });
                    if stop {
                        break;
                    }
                }
            }
        }
        self.outcome(id, failures, &sent)
    }

    /// The `customers` row, only when the order itself names no customer (a fork without the table
    /// counts as no row).
    async fn customer_row(
        &self,
        app: &AppData,
        bundle: &OrderBundle,
    ) -> Result<Option<Row>, ActionError> {
        let o = &bundle.order;
        let named = ["customer_email", "user_email"]
            .iter()
            .any(|c| o.non_empty(c).is_some())
            && ["customer_name", "user_name"]
                .iter()
                .any(|c| o.non_empty(c).is_some());
        let Some(cid) = o
            .int("customer_id")
            .filter(|_| self.opts.customer && !named)
        else {
            return Ok(None);
        };
        match app.customer(cid).await {
            Ok(row) => Ok(row),
            Err(e) if e.is_missing_table() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The vendor's route, else vendor 1's, else `MAIL_*` (see the module doc).
    async fn route(&self, app: &AppData, bundle: &OrderBundle) -> Result<MailRoute, ActionError> {
        let env = &self.settings;
        if !self.opts.vendor_smtp {
            return Ok(env.route.clone());
        }
        let vendor = bundle.vendor.id;
        let own = bundle.vendor.settings.as_ref();
        if let Some(row) = own {
            if !row.has("mail_host") {
                // The columns do not exist (the stock schema): no vendor has its own SMTP.
                return Ok(env.route.clone());
            }
            if let Some(route) =
                vendor_route(vendor, row, env).map_err(|e| permanent(e.to_string()))?
            {
                return Ok(route);
            }
        }
        if vendor != FALLBACK_VENDOR {
            if let Some(row) = app.settings(FALLBACK_VENDOR).await? {
                if let Some(route) = vendor_route(FALLBACK_VENDOR, &row, env)
                    .map_err(|e| permanent(e.to_string()))?
                {
                    return Ok(route);
                }
            }
        }
        Ok(env.route.clone())
    }

    /// Renders and sends one mail: `Ok(true)` sent (or logged), `Ok(false)` skipped (no recipient).
    async fn send_one(
        &self,
        id: i64,
        kind: MailKind,
        invoice: &Invoice,
        route: &MailRoute,
    ) -> Result<bool, SendError> {
        let Some(to) = invoice.recipient(kind) else {
            return self.missing(id, kind, "has no e-mail address");
        };
        let body = self
            .templates
            .render(kind, &invoice.fields)
            .map_err(|message| SendError {
                retry: false,
                connection: false,
                message,
            })?;
        let server = match &route.transport {
            Transport::Smtp(server) => server,
            Transport::Log(why) => {
                tracing::info!(order_id = id, mail = kind.label(), route = %why, subject = %self.opts.subject, "mail logged, not sent");
                tracing::debug!(to = %to.email, text = %body.text, "logged mail");
                return Ok(true);
            }
        };
        if to.email.trim().parse::<lettre::Address>().is_err() {
            return self.missing(id, kind, "has an invalid e-mail address");
        }
        let message = build_message(&route.from, to, &self.opts.subject, body)?;
        self.mailer.send(server, message).await?;
        tracing::info!(order_id = id, mail = kind.label(), server = %server, route = %route.source, "mail sent");
        tracing::debug!(to = %to.email, "mail recipient");
        Ok(true)
    }

    fn missing(&self, id: i64, kind: MailKind, what: &str) -> Result<bool, SendError> {
        let who = match kind {
            MailKind::Customer => "the customer",
            MailKind::Vendor => "the vendor",
        };
        match self.opts.on_missing_recipient {
            OnMissingRecipient::Skip => {
                tracing::warn!(
                    order_id = id,
                    mail = kind.label(),
                    "{who} {what}: mail not sent"
                );
                Ok(false)
            }
            OnMissingRecipient::Fail => Err(SendError {
                retry: false,
                connection: false,
                message: format!("{who} {what}"),
            }),
        }
    }

    async fn mark(&self, uuid: &str, kind: MailKind, id: i64) {
        let Some(ledger) = self.ledger.as_ref().filter(|_| !uuid.is_empty()) else {
            return;
        };
        if let Err(error) = ledger.mark(uuid, kind.step()).await {
            // The mail is out; a retry of this job may send it again (at-least-once).
            tracing::warn!(order_id = id, mail = kind.label(), error = %error, "mail sent but not recorded in the sent-ledger");
        }
    }

    fn outcome(
        &self,
        id: i64,
        failures: Vec<Failure>,
        sent: &[&'static str],
    ) -> Result<(), ActionError> {
        if failures.is_empty() {
            return Ok(());
        }
        let retry = failures.iter().any(|f| f.error.retry);
        let mut message = failures
            .iter()
            .map(|f| format!("{} mail of order {id}: {}", f.kind.label(), f.error.message))
            .collect::<Vec<_>>()
            .join("; ");
        if !sent.is_empty() {
            message.push_str(&format!(" (already sent: {})", sent.join(", ")));
        }
        for f in &failures {
            tracing::warn!(order_id = id, mail = f.kind.label(), retry = f.error.retry, error = %f.error.message, "mail not sent");
        }
        Err(if retry {
            ActionError::Retry {
                message,
                after: None,
            }
        } else {
            ActionError::Permanent { message }
        })
    }
}
