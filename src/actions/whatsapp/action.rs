//! The `whatsapp` action: one `whatsapp_notification` job → load the order → build the restaurant's
//! new-order text (or the configured template) → pace it → send it through the Cloud API → record it in
//! `whatsapp_messages_log` → tell the worker what happened ([`ActionError`]).
//!
//! Gating as the app (docs/restrosaas.md §4.10, docs/restrosaas.md §10.1): `WHATSAPP_ENABLED=false` completes
//! without sending
//! (the app's listeners return early); `WHATSAPP_NOTIFY_RESTAURANT_ON_ORDER=false` (vendor messages) or
//! `WHATSAPP_AUTO_NOTIFY_ORDER_CREATED=false` (customer messages) likewise; `WHATSAPP_DEMO_MODE=true`
//! builds everything, sends nothing, writes no log row and succeeds (as `WhatsAppBusinessService`).
//! A non-numeric `order_id` (the app's `test_order_1`) completes with a log line, as the app's
//! DeferredJob; a numeric one without an order fails permanently ("Order N not found").
//!
//! Decisions (docs/restrosaas.md §9.9): text bodies are `WhatsAppService::sendMessage`'s (no `recipient_type`,
//! `preview_url` false), template bodies `WhatsAppBusinessService::sendTemplateMessage`'s; a text over
//! 4096 characters is cut to 4093 + `...` on a character boundary; a missing token or phone-number id
//! fails the job permanently ("WhatsApp API not configured: …", the Business service's status).
//!
//! **Not twice for one job.** A message Meta accepted (HTTP 200) is recorded in the sent-[`Ledger`]
//! under the job's uuid (`whatsapp:vendor` / `whatsapp:customer`), and a later run of the same job (a
//! retry, a re-run after kill -9, `queue:retry` within the ledger's 7 days) completes without sending.
//! The ledger, not `whatsapp_messages_log`: the app's table has no column for the job's uuid, lives in
//! the app's database (which may be the thing that is down) and is optional (`log_table = ""`).
//! Still at-least-once: a crash or a Redis failure between Meta's 200 and the mark, or a timeout after
//! Meta accepted the message, sends it again on the next attempt. The job's uuid goes out as
//! `biz_opaque_callback_data`, which Meta echoes in the status webhooks, so a duplicate can be told.
//!
//! **Handed back, not failed** ([`ActionError::HandBack`], no attempt used): while the sender's
//! circuit breaker is open ([`super::breaker`]: Meta's 190, 368, 131031, 131048), nothing is sent and
//! the job waits for the next probe; Meta's pair rate limit (131056) and our own per-recipient pacing
//! delay only that recipient's job. A 200 whose `message_status` is `held_for_quality_assessment`
//! is accepted (Meta may still drop it) and logged with its wamid.
//! Never logs a phone number, the text or the token above debug.

use std::time::Duration;

use anyhow::Context;

use crate::actions::ledger::Ledger;
use crate::actions::{order_of, permanent, ActionError, JobMeta};
use crate::app::{AppData, OrderBundle};
use crate::deferred::DeferredJob;

use super::breaker::{Admit, Breakers, Change, Sender, Verdict};
use super::client::{self, CloudApi};
use super::errors::{breaker_remedy, SendError, PAIR_RATE_LIMIT};
use super::log::{LogEntry, MessageLog, Outcome, Recorded};
use super::message::{self, MessageContext, OrderRows};
use super::options::{
    MessageKind, OnMissingRecipient, Recipient, WhatsappOptions, WhatsappSettings,
};
use super::phone;
use super::ratelimit::Limiter;

/// Meta's pair rate limit lets about one message every 6 s reach the same user.
const PAIR_SPACING: Duration = Duration::from_secs(6);

/// The `whatsapp` action, built once at worker start.
#[derive(Debug)]
pub struct WhatsappAction {
    opts: WhatsappOptions,
    settings: WhatsappSettings,
    api: Option<CloudApi>,
    limiter: Limiter,
    log: MessageLog,
    app: Option<AppData>,
    ctx: MessageContext,
    ledger: Option<Ledger>,
    breakers: Breakers,
    /// The sender the breaker knows this action's API by (no API: none).
    sender: Option<Sender>,
}

impl WhatsappAction {
    /// Builds the HTTP client for `settings` (the `WHATSAPP_*` keys, `APP_URL`, `APP_TIMEZONE`).
    /// `app` is the app's database (orders, and the log table); without it the action cannot run
    /// unless `WHATSAPP_ENABLED=false`. `ledger` keeps a re-run job from sending again (without it a
    /// retried job resends a message Meta already accepted).
    pub async fn new(
        opts: &WhatsappOptions,
        settings: WhatsappSettings,
        app: Option<AppData>,
        ledger: Option<Ledger>,
    ) -> anyhow::Result<Self> {
        let action = Self::with_settings(opts, settings, app)?;
        Ok(match ledger {
            Some(l) => action.with_ledger(l),
            None => {
                if action.settings.enabled && !action.settings.demo_mode {
                    tracing::warn!(
                        "whatsapp action without a sent-ledger: a retried job resends messages already sent"
                    );
                }
                action
            }
        })
    }

    /// The same action recording its sends in `ledger` and skipping those already recorded.
    pub fn with_ledger(mut self, ledger: Ledger) -> Self {
        self.ledger = Some(ledger);
        self
    }

    /// The same action sharing `breakers` (one per worker: `/metrics` and `/ready` read it).
    pub fn with_breakers(mut self, breakers: Breakers) -> Self {
        if let Some(sender) = &self.sender {
            breakers.seen(sender);
        }
        self.breakers = breakers;
        self
    }

    /// The ledger step of this action's message for one job.
    fn step(&self) -> &'static str {
        match self.opts.recipient {
            Recipient::Vendor => "whatsapp:vendor",
            Recipient::Customer => "whatsapp:customer",
        }
    }

    /// [`WhatsappAction::new`] with the settings given.
    pub fn with_settings(
        opts: &WhatsappOptions,
        settings: WhatsappSettings,
        app: Option<AppData>,
    ) -> anyhow::Result<Self> {
        opts.rate_limit.validate().map_err(anyhow::Error::msg)?;
        opts.breaker.validate().map_err(anyhow::Error::msg)?;
        if settings.enabled && app.is_none() {
            anyhow::bail!(
                "the whatsapp action reads orders from the app's database: set DB_CONNECTION and DB_* \
                 (or DATABASE_URL), or WHATSAPP_ENABLED=false"
            );
        }
        if opts.message == MessageKind::Template && opts.template.name.as_deref() == Some("") {
            anyhow::bail!("template.name is empty");
        }
        let api = match settings.missing_api_setting() {
            None => Some(
                CloudApi::new(
                    &settings.api_url,
                    &settings.phone_number_id,
                    &settings.api_token,
                    settings.timeout,
                )
                .context("cannot build the WhatsApp HTTP client")?,
            ),
            Some(key) => {
                if settings.enabled && !settings.demo_mode {
                    tracing::warn!(
                        key,
                        "WhatsApp API not configured: whatsapp jobs will fail until {key} is set"
                    );
                }
                None
            }
        };
        let ctx = MessageContext {
            app_url: settings.app_url.clone(),
            delivery_label: opts.delivery_label.clone(),
            pickup_label: opts.pickup_label.clone(),
        };
        let sender = api
            .as_ref()
            .map(|a| Sender::new(a.phone_number_id(), &settings.api_token));
        let breakers = Breakers::default();
        if let Some(s) = &sender {
            breakers.seen(s);
        }
        Ok(WhatsappAction {
            breakers,
            sender,
            limiter: Limiter::new(&opts.rate_limit),
            log: MessageLog::new(app.clone(), &opts.log_table, settings.timezone),
            opts: opts.clone(),
            settings,
            api,
            app,
            ctx,
            ledger: None,
        })
    }

    /// Runs one `whatsapp_notification` job.
    pub async fn run(&self, job: &DeferredJob, meta: JobMeta<'_>) -> Result<(), ActionError> {
        let id = match job.order_id() {
            Some(id) => id,
            None => {
                tracing::info!(
                    action = %job.action,
                    "order_id is not a numeric order id: nothing to send, completed as the app does"
                );
                tracing::debug!(order_id = ?job.get("order_id"), "non-numeric order_id");
                return Ok(());
            }
        };
        if !self.settings.enabled {
            tracing::info!(
                order_id = id,
                "WHATSAPP_ENABLED is false: WhatsApp message not sent"
            );
            return Ok(());
        }
        let gate = match self.opts.recipient {
            Recipient::Vendor => self.settings.notify_restaurant_on_order,
            Recipient::Customer => self.settings.notify_customer_on_order,
        };
        if !gate {
            tracing::info!(order_id = id, recipient = ?self.opts.recipient, "notification switched off: WhatsApp message not sent");
            return Ok(());
        }
        if !self.settings.demo_mode {
            if let Some(ledger) = self.ledger.as_ref().filter(|_| !meta.uuid.is_empty()) {
                if ledger.done(meta.uuid, self.step()).await? {
                    tracing::info!(
                        order_id = id,
                        "WhatsApp message already sent by an earlier run of this job: not sent again"
                    );
                    return Ok(());
                }
            }
        }
        if !self.settings.demo_mode {
            if let Some(Admit::Hold { code, after }) =
                self.sender.as_ref().and_then(|s| self.breakers.holding(s))
            {
                return Err(self.held(code, after));
            }
        }
        let (app, bundle) = order_of(self.app.as_ref(), id).await?;
        let payment_name = self.payment_name(app, &bundle).await?;
        let rows = OrderRows {
            order: &bundle.order,
            items: &bundle.items,
            vendor: &bundle.vendor.user,
            settings: bundle.vendor.settings.as_ref(),
            payment_name: payment_name.as_deref(),
        };
        let Some(to) = self.recipient(app, &bundle).await? else {
            let what = match self.opts.recipient {
                Recipient::Vendor => format!(
                    "vendor {} has no usable WhatsApp number (settings.contact, users.mobile)",
                    bundle.vendor.id
                ),
                Recipient::Customer => "the customer has no usable WhatsApp number (orders.mobile, orders.user_mobile, customers.phone)".to_owned(),
            };
            return match self.opts.on_missing_recipient {
                OnMissingRecipient::Fail => Err(permanent(format!("Order {id}: {what}"))),
                OnMissingRecipient::Skip => {
                    tracing::warn!(order_id = id, "{what}: WhatsApp message not sent");
                    Ok(())
                }
            };
        };
        let mut body = self.body(&rows, &to);
        if !meta.uuid.is_empty() {
            // Echoed in the status webhooks: ties a delivery to its job (and a resend to the first).
            body["biz_opaque_callback_data"] = serde_json::Value::from(meta.uuid);
        }
        if self.settings.demo_mode {
            tracing::info!(order_id = id, to = %phone::masked(&to), "WHATSAPP_DEMO_MODE: WhatsApp message not sent");
            tracing::debug!(body = %body, "demo message");
            return Ok(());
        }
        let Some(api) = &self.api else {
            let key = self
                .settings
                .missing_api_setting()
                .unwrap_or("WHATSAPP_API_TOKEN");
            return Err(permanent(format!(
                "WhatsApp API not configured: {key} is empty"
            )));
        };
        if let Err(delay) = self.limiter.acquire(api.phone_number_id(), &to).await {
            return Err(ActionError::HandBack {
                message: format!(
                    "WhatsApp rate limit: the next slot for this sender/recipient is in {:.1}s",
                    delay.as_secs_f64()
                ),
                after: delay.max(Duration::from_secs(1)),
            });
        }
        let sender = self.sender.as_ref();
        if let Some(sender) = sender {
            match self
                .breakers
                .admit(sender, self.settings.timeout + Duration::from_secs(5))
            {
                Admit::Send => {}
                Admit::Probe { code } => tracing::info!(
                    sender = %sender.phone_number_id,
                    code,
                    order_id = id,
                    "WhatsApp circuit breaker: cool-down over, this message is the probe"
                ),
                Admit::Hold { code, after } => return Err(self.held(code, after)),
            }
        }
        let result = api.send(&body).await;
        if let Some(sender) = sender {
            self.judge(sender, &result);
        }
        if result.is_ok() {
            self.mark(meta.uuid, id).await;
        }
        let outcome = match &result {
            Ok(sent) => Outcome::Sent {
                wamid: sent.wamid.clone(),
            },
            Err(e) => Outcome::Failed {
                error: e.error.clone(),
                code: e.code.clone(),
            },
        };
        let (restaurant_id, customer_id) = match self.opts.recipient {
            Recipient::Vendor => (Some(bundle.vendor.id), None),
            Recipient::Customer => (None, bundle.order.int("customer_id")),
        };
        let entry = LogEntry {
            order_id: Some(id),
            restaurant_id,
            customer_id,
            phone: &to,
            message_type: &self.opts.message_type,
            outcome,
            attempt: meta.attempt,
        };
        match self.log.record(&entry).await {
            Ok(Recorded::Skipped) | Ok(Recorded::Inserted) | Ok(Recorded::Updated) => {}
            Err(error) => {
                tracing::warn!(order_id = id, error = %error, "cannot record the WhatsApp message in {}", self.opts.log_table);
            }
        }
        match result {
            Ok(sent) => {
                let wamid = sent.wamid.as_deref().unwrap_or("");
                match sent.message_status.as_deref() {
                    Some("held_for_quality_assessment") => tracing::warn!(
                        order_id = id,
                        to = %phone::masked(&to),
                        wamid,
                        message_status = "held_for_quality_assessment",
                        "WhatsApp message accepted but held for Meta's quality assessment: it may                          still be dropped (see its status webhook)"
                    ),
                    status => {
                        tracing::info!(order_id = id, to = %phone::masked(&to), wamid, message_status = status.unwrap_or(""), "WhatsApp message sent")
                    }
                }
                Ok(())
            }
            Err(e) => {
                tracing::warn!(order_id = id, code = %e.code, retry = e.retry, "WhatsApp message failed");
                Err(self.verdict_error(e, &to))
            }
        }
    }

    /// Tells the breaker how a send ended, and logs what it changed.
    fn judge(&self, sender: &Sender, result: &Result<client::Sent, SendError>) {
        let verdict = match result {
            Ok(_) => Verdict::Passed,
            Err(e) => match e.breaker_code() {
                Some(code) => Verdict::Tripped(code),
                None if e.retry => Verdict::Unclear,
                None => Verdict::Passed,
            },
        };
        match self
            .breakers
            .record(sender, verdict, |c| self.opts.breaker.cooldown(c))
        {
            Change::None => {}
            Change::Opened { code, cooldown } => {
                let next = match cooldown {
                    Some(c) => format!("one probe in {}s", c.as_secs()),
                    None => "no probe until the token changes or the worker restarts".to_owned(),
                };
                tracing::error!(
                    sender = %sender.phone_number_id,
                    code,
                    cooldown_s = cooldown.map(|c| c.as_secs()),
                    "WhatsApp circuit breaker open for sender {} after Meta error {code}: nothing is                      sent from it and its jobs are handed back unchanged; {next}. To do: {}",
                    sender.phone_number_id,
                    breaker_remedy(code)
                );
            }
            Change::Closed => tracing::info!(
                sender = %sender.phone_number_id,
                "WhatsApp circuit breaker closed: the probe was accepted, sending again"
            ),
        }
    }

    /// What the worker does about a failed send: hand the job back for a breaker code or the pair
    /// rate limit (this recipient waits; no attempt used), else Meta's retry-or-fail.
    fn verdict_error(&self, e: SendError, to: &str) -> ActionError {
        if let Some(code) = e.breaker_code() {
            let after = self
                .opts
                .breaker
                .cooldown(code)
                .unwrap_or(super::breaker::UNTIL_RESTART_HOLD);
            return ActionError::HandBack {
                message: format!(
                    "{}; handed back until the circuit breaker's probe",
                    e.message
                ),
                after,
            };
        }
        if e.meta_code() == Some(PAIR_RATE_LIMIT) {
            let after = e.after.unwrap_or(PAIR_SPACING).max(PAIR_SPACING);
            self.limiter.push_back(to, after);
            return ActionError::HandBack {
                message: format!(
                    "{}; only this recipient waits {}s",
                    e.message,
                    after.as_secs()
                ),
                after,
            };
        }
        e.into()
    }

    /// The hand-back of a job met while the sender's breaker is open.
    fn held(&self, code: i64, after: Duration) -> ActionError {
        let sender = self
            .sender
            .as_ref()
            .map_or("", |s| s.phone_number_id.as_str());
        ActionError::HandBack {
            message: format!(
                "WhatsApp circuit breaker open for sender {sender} (Meta error {code}): not sent,                  handed back unchanged for {}s",
                after.as_secs_f64().ceil()
            ),
            after,
        }
    }

    /// Records the accepted message; a failure only widens the at-least-once window (logged).
    async fn mark(&self, uuid: &str, id: i64) {
        let Some(ledger) = self.ledger.as_ref().filter(|_| !uuid.is_empty()) else {
            return;
        };
        if let Err(error) = ledger.mark(uuid, self.step()).await {
            tracing::warn!(order_id = id, error = %error, "WhatsApp message sent but not recorded in the sent-ledger: a retry of this job would send it again");
        }
    }

    /// `payments.payment_name` for the order's `payment_type` (`helper::getpayment`).
    async fn payment_name(
        &self,
        app: &AppData,
        bundle: &OrderBundle,
    ) -> Result<Option<String>, ActionError> {
        let Some(payment_type) = bundle.order.str("payment_type") else {
            return Ok(None);
        };
        Ok(app
            .payment(bundle.vendor.id, &payment_type)
            .await?
            .and_then(|row| row.str("payment_name")))
    }

    /// The first candidate number that normalises.
    async fn recipient(
        &self,
        app: &AppData,
        bundle: &OrderBundle,
    ) -> Result<Option<String>, ActionError> {
        let mut candidates: Vec<String> = Vec::new();
        match self.opts.recipient {
            Recipient::Vendor => {
                if let Some(s) = &bundle.vendor.settings {
                    candidates.extend(s.str("contact"));
                }
                candidates.extend(bundle.vendor.user.str("mobile"));
            }
            Recipient::Customer => {
                candidates.extend(bundle.order.str("mobile"));
                candidates.extend(bundle.order.str("user_mobile"));
                if let Some(cid) = bundle.order.int("customer_id") {
                    match app.customer(cid).await {
                        Ok(row) => candidates.extend(row.and_then(|r| r.str("phone"))),
                        Err(e) if e.is_missing_table() => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Ok(candidates.iter().find_map(|raw| {
            phone::normalize(
                raw,
                &self.settings.default_country_code,
                self.opts.trunk_zero,
            )
            .ok()
        }))
    }

    /// The JSON body for `to`.
    fn body(&self, rows: &OrderRows<'_>, to: &str) -> serde_json::Value {
        match self.opts.message {
            MessageKind::Text => {
                let text = client::truncate(message::vendor_message(rows, &self.ctx));
                client::text_body(to, &text, self.opts.preview_url)
            }
            MessageKind::Template => {
                let values = message::parameter_values(rows, &self.ctx);
                let params: Vec<String> = self
                    .opts
                    .template
                    .parameters
                    .iter()
                    .map(|p| message::parameter(p, &values))
                    .collect();
                let name = self
                    .opts
                    .template
                    .name
                    .clone()
                    .unwrap_or_else(|| self.settings.template_new_order.clone());
                let language = self.opts.template.language.as_deref().unwrap_or("fr");
                client::template_body(to, &name, language, &params)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_action_can_be_shared_between_jobs() {
        fn shared<T: Send + Sync + 'static>() {}
        shared::<WhatsappAction>();
    }
}
