//! The `whatsapp` action kind: the restaurant's new-order WhatsApp message (or an approved template)
//! sent through the WhatsApp Cloud API and recorded in `whatsapp_messages_log`. `docs/whatsapp.md` is
//! the user's guide. Files: [`action`](WhatsappAction) (the job's flow and gating), `message` (the text
//! as the app builds it), `format` (PHP's number/currency formatting), `phone`, `client` (the HTTP call
//! and bodies), `errors` (Meta's codes → retry, hand back or fail), `ratelimit`, `breaker` (the
//! per-sender circuit breaker), `versions` (Graph API versions and their end dates), `log` (the log
//! table), `options`.
//!
//! Where the app is inconsistent (docs/restrosaas.md §9), decided here:
//! - recipient (docs/restrosaas.md §9.7): the vendor's `settings.contact`, else `users.mobile` (the app's
//!   working number);
//!   `recipient = "customer"` uses `orders.mobile` / `user_mobile` / `customers.phone`;
//! - text (docs/restrosaas.md §9.8, docs/restrosaas.md §9.10): `helper::whatsappmessage` (the vendor's template),
//!   not `formatOrderMessage`,
//!   which reads columns that do not exist; empty templates get the app's new-vendor defaults; the
//!   vendor's own settings row drives the currency format (docs/restrosaas.md §9.14); `%0a` → newline;
//! - transport (docs/restrosaas.md §9.9): text bodies as `WhatsAppService` (no `recipient_type`, `preview_url` false),
//!   template bodies as `WhatsAppBusinessService`; `WHATSAPP_ENABLED` / `WHATSAPP_DEMO_MODE` as the
//!   Business service and listeners honour them; a missing token fails the job ("not configured");
//! - phone (docs/restrosaas.md §9.12): `+` and `00` are international; Côte d'Ivoire keeps its national `0`;
//! - retries (docs/restrosaas.md §9.16): Meta's throttling / transient codes, 5xx, timeouts and connection
//!   errors are
//!   retried with the worker's backoff (or `Retry-After`), everything else fails at once;
//! - log (docs/restrosaas.md §9.17): `error_code` and `sent_at` are filled; a retried send updates its failed row.

mod action;
pub mod breaker;
mod client;
mod errors;
pub mod format;
mod log;
pub mod message;
mod options;
pub mod phone;
mod ratelimit;
pub mod versions;

pub use action::WhatsappAction;
pub use breaker::{BreakerOptions, BreakerState, Breakers, Sender};
pub use client::{template_body, text_body, CloudApi, Sent};
pub use errors::{from_response, is_retryable, parse_retry_after, SendError};
pub use log::{LogEntry, MessageLog, Outcome, Recorded};
pub use message::{vendor_message, MessageContext, OrderRows};
pub use options::{
    MessageKind, OnMissingRecipient, Recipient, TemplateOptions, WhatsappOptions, WhatsappSettings,
};
pub use phone::{normalize, PhoneError, TrunkZero};
pub use ratelimit::{Limiter, RateLimitOptions};
