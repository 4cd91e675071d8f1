//! `defer-worker check` (and `work --check`): a preflight before replacing `php artisan queue:work`.
//! It reads the settings `work` reads and tries each thing the worker will use, one file per service,
//! each writing [`Check`] lines: ✓ passed, ! works but deserves a look, ✗ will not work (with what to
//! change: the key, the file, the command). Checks read and never change the app's data: the only
//! writes are a cache probe key written and forgotten, and an SMTP session that sends no mail.

mod app;
mod cache;
mod command;
mod database;
mod jobs;
mod model;
mod redis;
mod smtp;
mod whatsapp;

pub use command::{run, CheckArgs};
pub use model::{Check, Checks, Status};
