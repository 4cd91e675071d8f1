//! The TOML config file (`defer-worker.toml`): the worker's settings, the action table, per-queue
//! settings, and an optional `[env]` table of Laravel-named settings that sit below the app's `.env`.
//!
//! Only reads files; connecting is the caller's business. Errors name the file, the key and the line.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::de::{DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use super::DEFAULT_FILE;

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
    pub threads: Option<usize>,
    pub handoff_queue: Option<String>,
    pub class: Option<String>,
    pub drain_timeout: Option<u64>,
    pub failed_db: Option<PathBuf>,
}

/// `[limits]`: bounds on what one payload and one action may take (docs/security.md). Unset keys keep
/// the worker's defaults; values are checked at start.
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
    /// `[actions.<name>] kind = "..."`; the name `"*"` sets the kind of actions not listed. Kept raw:
    /// the actions module reads it through [`FileConfig::section`].
    #[serde(default)]
    pub actions: toml::Table,
    #[serde(default)]
    pub queues: BTreeMap<String, QueueSection>,
    #[serde(default)]
    pub limits: LimitsSection,
    /// `[app]`: where the app's data is read (`database_url`) and the lookups' SQL (`[app.queries]`).
    /// Kept raw: the app module reads it through [`FileConfig::section`].
    #[serde(default)]
    pub app: toml::Table,
    /// `[env]`: Laravel-named settings (`REDIS_HOST = "10.0.0.5"`), used when neither the process
    /// environment nor the app's `.env` sets them.
    #[serde(default)]
    pub env: BTreeMap<String, EnvScalar>,
    /// The file this was read from (`None`: no file).
    #[serde(skip)]
    pub path: Option<PathBuf>,
    /// The file's text, so a section read later reports the file's own line numbers.
    #[serde(skip)]
    text: String,
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
    /// Reads `path`, or `defer-worker.toml` in the working directory when no path is given and it
    /// exists; no file at all is the empty configuration.
    pub fn load(path: Option<&Path>) -> anyhow::Result<FileConfig> {
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
        let mut file: FileConfig = toml::from_str(text)?;
        file.text = text.to_owned();
        Ok(file)
    }

    /// The table `name` (`actions`, `app`) deserialized as `T` by the module that owns it; `T`'s
    /// default when the file has no such table. Errors carry the file's line and column.
    pub fn section<T: DeserializeOwned + Default>(&self, name: &str) -> Result<T, toml::de::Error> {
        if self.text.is_empty() {
            return Ok(T::default());
        }
        let found = Section::<T> {
            name,
            found: std::marker::PhantomData,
        }
        .deserialize(toml::Deserializer::new(&self.text))?;
        Ok(found.unwrap_or_default())
    }

    /// Where the file's tables came from, for messages: its path, or the default name.
    pub fn display_path(&self) -> String {
        self.path
            .as_deref()
            .unwrap_or(Path::new(DEFAULT_FILE))
            .display()
            .to_string()
    }
}

/// Reads one top-level table of a TOML document and skips the others.
struct Section<'n, T> {
    name: &'n str,
    found: std::marker::PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Section<'_, T> {
    type Value = Option<T>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Section<'_, T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML document")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<T>, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == self.name {
                found = Some(map.next_value::<T>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_read_by_their_owners_with_the_files_lines() {
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Owned {
            size: Option<u32>,
        }
        let c = FileConfig::parse("[worker]\nconcurrency = 2\n[owned]\nsize = 3\n");
        let err = c.unwrap_err().to_string();
        assert!(
            err.contains("owned"),
            "the file still rejects unknown tables: {err}"
        );
        let c = FileConfig::parse("[worker]\nconcurrency = 2\n[app]\nsize = 3\n").unwrap();
        assert_eq!(c.section::<Owned>("app").unwrap().size, Some(3));
        assert_eq!(c.section::<Owned>("actions").unwrap().size, None);
        assert_eq!(
            FileConfig::default().section::<Owned>("app").unwrap().size,
            None
        );
        let c = FileConfig::parse("[worker]\nconcurrency = 2\n[app]\nsizes = 3\n").unwrap();
        let err = c.section::<Owned>("app").unwrap_err().to_string();
        assert!(err.contains("sizes") && err.contains("line 4"), "{err}");
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
