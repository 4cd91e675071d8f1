//! Configuration: Laravel-named settings from the process environment, the app's `.env` and the
//! `[env]` table of `defer-worker.toml`, plus the TOML file's worker, queue and limits tables (its
//! `[actions]` and `[app]` tables are kept raw for the modules that own them).
//!
//! Precedence, highest first: command-line flags > process environment > the app's `.env` (`--env PATH`,
//! default `./.env` when present) > `defer-worker.toml` (`--config PATH`) > defaults. [`Settings::load`]
//! builds the one [`Settings`] value of a command at start; callers pass it (or what they take from it)
//! down. There is no process-wide copy.
//!
//! The lowest layer that reads settings: it imports no other module of ours but `util`. Only reads
//! files; connecting is the caller's business, and nothing here logs a value. Errors name the file, the
//! line and the key to fix.

pub mod catalogue;
pub mod dotenv;
pub mod file;
pub mod settings;
pub mod timezone;

pub use dotenv::{DotEnv, DotEnvError};
pub use file::{EnvScalar, FileConfig, LimitsSection, QueueSection, WorkerSection};
pub use settings::{laravel_env, Resolved, Settings, Source};
pub use timezone::app_timezone;

/// The default config file, read when present in the working directory.
pub const DEFAULT_FILE: &str = "defer-worker.toml";
/// The app's `.env`, read when present in the working directory.
pub const DEFAULT_ENV_FILE: &str = ".env";
