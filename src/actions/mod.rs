//! What defer-worker does with each DeferredJob action, chosen per action name in the config file.
//!
//! An action only runs: it never sees the queue and cannot ack, release or fail its own job. It reports
//! an [`ActionError`] that says what the worker should do (retry later, or give up), and the worker
//! applies Laravel's rules to it. Kinds: the app's four actions run natively (`whatsapp`, `email`,
//! `analytics`, `cache_warming`); `log` (dry runs, shadow mode), `fail`, `warn` (what the app's
//! DeferredJob does with an action it does not know) and `forward`, which is not run here at all: the
//! worker hands such jobs to a PHP worker unchanged.
//!
//! The config file says which kind handles which action ([`ActionKind`], [`Plan`]); at worker start
//! [`Actions::build`] turns that table into runners holding their HTTP clients, SMTP pools and database
//! handles.

pub mod analytics;
pub mod cache_warming;
pub mod email;
mod error;
mod handler;
mod kind;
pub mod ledger;
mod log;
mod plan;
pub mod whatsapp;

pub use error::{order_of, permanent, ActionError, JobMeta};
pub use handler::{Actions, Deps, Handler};
pub use kind::{app_default, ActionKind, APP_ACTIONS};
pub use plan::{Origin, Plan};
