//! The `config` command's report and the start-up check of every command: the catalogue of settings
//! the app uses (under their Laravel names, with Laravel's defaults), the values derived from them (Redis
//! key prefix, failed_jobs database, mail transport, WhatsApp URL, cache store), and validation.
//!
//! Pure: no connection is opened, and every value shown or quoted in a problem is masked.

mod cache;
mod check;
mod model;
mod queue;
mod services;

pub use check::{ensure_valid, problems, validate};
pub use model::{ConfigProblem, Group, Report, Row};
