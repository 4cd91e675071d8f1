//! The TOML config file (`defer-worker.toml`): the worker's settings, the action table, per-queue
//! settings, and an optional `[env]` table of Laravel-named settings that sit below the app's `.env`.
//!
//! Only reads files; connecting is the caller's business. Errors name the file, the key and the line.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use crate::actions::{ActionKind, Plan};
use crate::app::AppSection;

/// The default config file, read when present in the working directory.
pub const DEFAULT_FILE: &str = "defer-worker.toml";

/// The `[worker]` table: the same settings as `work`'s flags.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSection {
    pub queue: Option<String>,
    pub connection: Option<String>,
    pub tries: Option<i64>,
    pub backoff: Option<String>,
    pub timeout: Option<u64>,
    pub sleep: Option<f64>,
    pub rest: Option<f64>,
    pub retry_after: Option<u64>,
    pub concurrency: Option<usize>,
    pub handoff_queue: Option<String>,
    pub class: Option<String>,
    pub drain_timeout: Option<u64>,
    pub failed_db: Option<PathBuf>,
}

/// `[limits]`: bounds on what one payload and one action may take (docs/security.md). Unset keys keep
/// their defaults ([`crate::worker::options::WorkerOptions::default`]); values are checked at start.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Largest payload read, in bytes; a larger one goes to failed_jobs unparsed.
    pub max_payload_bytes: Option<usize>,
    /// Deepest nesting of arrays and objects in the PHP-serialized command.
    pub max_depth: Option<usize>,
    /// Most array elements and object properties in one command, in total.
    pub max_elements: Option<usize>,
    /// `[limits.actions] whatsapp_notification = 8`: jobs of that action running at once.
    #[serde(default)]
    pub actions: BTreeMap<String, usize>,
}

/// `[queues.<name>]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSection {
    pub retry_after: Option<u64>,
}

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub worker: WorkerSection,
    /// `[actions.<name>] kind = "..."`; the name `"*"` sets the kind of actions not listed.
    #[serde(default)]
    pub actions: BTreeMap<String, ActionKind>,
    #[serde(default)]
    pub queues: BTreeMap<String, QueueSection>,
    #[serde(default)]
    pub limits: LimitsSection,
    /// `[app]`: where the app's data is read (`database_url`) and the lookups' SQL (`[app.queries]`).
    #[serde(default)]
    pub app: AppSection,
    /// `[env]`: Laravel-named settings (`REDIS_HOST = "10.0.0.5"`), used when neither the process
    /// environment nor the app's `.env` sets them.
    #[serde(default)]
    pub env: BTreeMap<String, EnvScalar>,
    /// The file this was read from (`None`: no file).
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

/// A value of the `[env]` table: TOML strings, numbers and booleans, read as the text `.env` would hold.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum EnvScalar {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl fmt::Display for EnvScalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvScalar::Str(s) => f.write_str(s),
            EnvScalar::Int(i) => write!(f, "{i}"),
            EnvScalar::Float(x) => write!(f, "{x}"),
            EnvScalar::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl FileConfig {
    /// Reads `path`, or `defer-worker.toml` in the working directory when no path is given and it exists.
    ///
    /// The result also becomes the file layer of [`super::env()`] and of `defer-worker config` (its `[env]`
    /// table and its path), since every command loads the file once at start.
    pub fn load(path: Option<&Path>) -> anyhow::Result<FileConfig> {
        let file = Self::read(path)?;
        super::install_file(&file);
        Ok(file)
    }

    /// Like [`FileConfig::load`], without touching the process-wide settings.
    pub fn read(path: Option<&Path>) -> anyhow::Result<FileConfig> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None if Path::new(DEFAULT_FILE).exists() => PathBuf::from(DEFAULT_FILE),
            None => return Ok(FileConfig::default()),
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let mut file = Self::parse(&text)
            .with_context(|| format!("invalid config file {}", path.display()))?;
        file.path = Some(path);
        Ok(file)
    }

    pub fn parse(text: &str) -> anyhow::Result<FileConfig> {
        Ok(toml::from_str(text)?)
    }

    /// The action table completed with the app's defaults; with no `"*"` entry unlisted actions get
    /// `warn`, as the app's DeferredJob does.
    pub fn actions(&self) -> Plan {
        Plan::new(&self.actions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_worker_actions_and_queues() {
        let c = FileConfig::parse(
            r#"
            [worker]
            queue = "whatsapp,default"
            concurrency = 32
            [actions.whatsapp_notification]
            kind = "log"
            [actions."*"]
            kind = "fail"
            message = "unknown action"
            [queues.whatsapp]
            retry_after = 30
            "#,
        )
        .unwrap();
        assert_eq!(c.worker.concurrency, Some(32));
        assert_eq!(c.queues["whatsapp"].retry_after, Some(30));
        let a = c.actions();
        assert_eq!(
            a.kind_of("whatsapp_notification"),
            &ActionKind::Log { sleep_ms: 0 }
        );
        assert!(matches!(a.kind_of("other"), ActionKind::Fail { .. }));
        assert_eq!(
            FileConfig::default().actions().kind_of("x"),
            &ActionKind::Warn
        );
    }

    #[test]
    fn limits_section_with_per_action_concurrency() {
        let c = FileConfig::parse(
            "[limits]\nmax_payload_bytes = 2048\nmax_depth = 64\n[limits.actions]\nwhatsapp_notification = 8\n",
        )
        .unwrap();
        assert_eq!(c.limits.max_payload_bytes, Some(2048));
        assert_eq!(c.limits.max_depth, Some(64));
        assert_eq!(c.limits.max_elements, None);
        assert_eq!(c.limits.actions["whatsapp_notification"], 8);
        let err = FileConfig::parse("[limits]\nmax_payload = 3\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("max_payload") && err.contains("line 2"),
            "{err}"
        );
    }

    #[test]
    fn app_section_sets_queries_and_rejects_unknown_ones() {
        let c = FileConfig::parse(
            "[app]\ndatabase_url = \"mysql://ro@db/app\"\n[app.queries]\nvendor = \"SELECT * FROM vendors WHERE id = ?\"\n",
        )
        .unwrap();
        assert_eq!(c.app.queries.vendor, "SELECT * FROM vendors WHERE id = ?");
        assert_eq!(c.app.queries.order, "SELECT * FROM orders WHERE id = ?");
        let err = FileConfig::parse("[app.queries]\nvendors = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("vendors") && err.contains("line 2"), "{err}");
    }

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let err = FileConfig::parse("[worker]\nconcurency = 3\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("concurency") && err.contains("line 2"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_explicit_file_names_the_path() {
        let err = FileConfig::load(Some(Path::new("/nonexistent/dw.toml"))).unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/dw.toml"));
    }
}
