//! The configuration file (`defer-worker.toml`) and the process environment, read under Laravel's names.
//!
//! Only reads files; connecting is the caller's business. Errors name the file and the key to fix.
//! Precedence for `work`: command-line flags > environment > file > Laravel's defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use crate::actions::{ActionKind, Actions};

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
}

impl FileConfig {
    /// Reads `path`, or `defer-worker.toml` in the working directory when no path is given and it exists.
    pub fn load(path: Option<&Path>) -> anyhow::Result<FileConfig> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None if Path::new(DEFAULT_FILE).exists() => PathBuf::from(DEFAULT_FILE),
            None => return Ok(FileConfig::default()),
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<FileConfig> {
        Ok(toml::from_str(text)?)
    }

    /// The action table; with no `"*"` entry, unlisted actions are forwarded to PHP.
    pub fn actions(&self) -> Actions {
        let mut by_name = self.actions.clone();
        let unlisted = by_name.remove("*").unwrap_or(ActionKind::Forward);
        Actions::new(by_name, unlisted)
    }
}

/// Loads the app's `.env` (placeholder: only checks the file exists; Laravel's parsing rules come next).
pub fn load_env_file(path: Option<&Path>) -> anyhow::Result<()> {
    if let Some(p) = path {
        anyhow::ensure!(p.exists(), "--env {}: no such file", p.display());
    }
    Ok(())
}

/// A lookup of Laravel-named settings (`APP_KEY`, `REDIS_HOST`…) in the process environment; empty values
/// count as unset.
pub fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
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
            &ActionKind::Forward
        );
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
