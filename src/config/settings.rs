//! Laravel-named settings (`APP_KEY`, `REDIS_HOST`…) resolved through the layers, highest first:
//! command-line flags > process environment > the app's `.env` > the `[env]` table of `defer-worker.toml`.
//! Defaults are not a layer here: each consumer applies Laravel's own (see `report` for the catalogue).
//!
//! Values go through Laravel's `env()` conversions: `true`/`(true)` → `true`, `false`/`(false)` →
//! `false`, `empty`/`(empty)` → the empty string, `null`/`(null)` → unset (a value of `None`), and one pair
//! of surrounding quotes is removed, once, here: consumers use values as given. [`Settings::load`] reads
//! the process environment once, at start; it must never log values.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use super::dotenv::DotEnv;
use super::file::FileConfig;
use super::{DEFAULT_ENV_FILE, DEFAULT_FILE};

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag.
    Flag,
    /// The process environment.
    Process,
    /// A line of the app's `.env`.
    DotEnv { path: PathBuf, line: usize },
    /// The `[env]` table (or another table) of the TOML config file.
    ConfigFile(PathBuf),
    /// Laravel's (or defer-worker's) default.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag => f.write_str("command-line flag"),
            Source::Process => f.write_str("process environment"),
            Source::DotEnv { path, line } => write!(f, "{}:{line}", path.display()),
            Source::ConfigFile(path) => write!(f, "{}", path.display()),
            Source::Default => f.write_str("default"),
        }
    }
}

/// A setting's value after Laravel's `env()` conversions, and its source. `value: None` means the source
/// set it to `null`.
#[derive(Clone, PartialEq, Eq)]
pub struct Resolved {
    pub value: Option<String>,
    pub source: Source,
}

impl fmt::Debug for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may be secrets.
        let shown = match &self.value {
            Some(v) => format!("<{} bytes>", v.len()),
            None => "null".to_owned(),
        };
        write!(f, "Resolved {{ value: {shown}, source: {} }}", self.source)
    }
}

/// The layers, ready for lookups. Cheap to share behind an `Arc`. The default has no layer at all: every
/// key is unset.
#[derive(Clone, Default)]
pub struct Settings {
    flags: BTreeMap<String, String>,
    process: HashMap<String, String>,
    dotenv: Option<DotEnv>,
    file: FileConfig,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("flags", &self.flags.keys().collect::<Vec<_>>())
            .field("dotenv", &self.dotenv.as_ref().map(DotEnv::path))
            .field("file", &self.file.path)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// The settings of a command: the process environment as it is now, the app's `.env` (`env_file`,
    /// which must exist; else `./.env` when present) and the config file (`config_file`, which must
    /// exist; else `./defer-worker.toml` when present).
    pub fn load(env_file: Option<&Path>, config_file: Option<&Path>) -> anyhow::Result<Settings> {
        let process = process_environment();
        let dotenv = read_dotenv(env_file, &process)?;
        let file = FileConfig::load(config_file)?;
        Ok(Settings::from_parts(process, dotenv, &file))
    }

    /// Like [`Settings::load`] without a config file (`decode`, which must work anywhere).
    pub fn load_env_only(env_file: Option<&Path>) -> anyhow::Result<Settings> {
        let process = process_environment();
        let dotenv = read_dotenv(env_file, &process)?;
        Ok(Settings::from_parts(
            process,
            dotenv,
            &FileConfig::default(),
        ))
    }

    /// From fixed layers: `process` stands for the process environment.
    pub fn from_parts(
        process: HashMap<String, String>,
        dotenv: Option<DotEnv>,
        file: &FileConfig,
    ) -> Settings {
        Settings {
            flags: BTreeMap::new(),
            process,
            dotenv,
            file: file.clone(),
        }
    }

    /// Adds a command-line value for a Laravel-named key (it beats every other layer).
    pub fn with_flag(mut self, key: &str, value: impl Into<String>) -> Settings {
        self.flags.insert(key.to_owned(), value.into());
        self
    }

    pub fn dotenv(&self) -> Option<&DotEnv> {
        self.dotenv.as_ref()
    }

    pub fn file(&self) -> &FileConfig {
        &self.file
    }

    /// The raw process value of `key` (present even when empty).
    pub fn process_value(&self, key: &str) -> Option<String> {
        self.process.get(key).cloned()
    }

    /// The highest layer that sets `key`, with Laravel's conversions applied; `None` when no layer does.
    pub fn get(&self, key: &str) -> Option<Resolved> {
        if let Some(v) = self.flags.get(key) {
            return Some(Resolved {
                value: Some(v.clone()),
                source: Source::Flag,
            });
        }
        if let Some(v) = self.process_value(key) {
            return Some(Resolved {
                value: laravel_env(&v),
                source: Source::Process,
            });
        }
        if let Some(env) = &self.dotenv {
            // A bare `KEY` line unsets the key: lower layers apply again.
            if let Some(entry) = env.get(key).filter(|e| e.value.is_some()) {
                return Some(Resolved {
                    value: entry.value.as_deref().and_then(laravel_env),
                    source: Source::DotEnv {
                        path: env.path().to_path_buf(),
                        line: entry.line,
                    },
                });
            }
        }
        if let Some(v) = self.file.env.get(key) {
            let path = self
                .file
                .path
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_FILE));
            return Some(Resolved {
                value: laravel_env(&v.to_string()),
                source: Source::ConfigFile(path),
            });
        }
        None
    }

    /// What `config::env` returns: the value, with `null` and the empty string counted as unset, but
    /// for the keys whose empty value the app's config uses as given ([`EMPTY_IS_A_VALUE`]).
    pub fn env(&self, key: &str) -> Option<String> {
        let value = self.get(key)?.value;
        if EMPTY_IS_A_VALUE.contains(&key) {
            value
        } else {
            value.filter(|v| !v.is_empty())
        }
    }

    /// [`Settings::env`] as the lookup function the library's constructors take
    /// (`RedisConfig::from_env(&settings.lookup())`).
    pub fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        move |key| self.env(key)
    }

    /// Where the config file's worker/queue/action tables came from.
    pub fn file_source(&self) -> Source {
        match &self.file.path {
            Some(p) => Source::ConfigFile(p.clone()),
            None => Source::ConfigFile(Path::new(DEFAULT_FILE).to_path_buf()),
        }
    }
}

/// The process environment, read once (values that are not UTF-8 are read lossily).
fn process_environment() -> HashMap<String, String> {
    std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect()
}

/// The app's `.env` with Laravel's rules (`${VAR}` expanded from the process environment first). An
/// explicit `path` must exist; without one, `./.env` is read when present.
fn read_dotenv(
    path: Option<&Path>,
    process: &HashMap<String, String>,
) -> anyhow::Result<Option<DotEnv>> {
    let path = match path {
        Some(p) => {
            anyhow::ensure!(p.exists(), "--env {}: no such file", p.display());
            p
        }
        None if Path::new(DEFAULT_ENV_FILE).is_file() => Path::new(DEFAULT_ENV_FILE),
        None => return Ok(None),
    };
    Ok(Some(DotEnv::read(path, &|k| process.get(k).cloned())?))
}

/// Keys whose empty value (`REDIS_PREFIX=` or `REDIS_PREFIX=(empty)`) is a value, not "unset": Laravel's
/// `env('REDIS_PREFIX', default)` gives the empty string then, not the default, so the app's keys have
/// no prefix. For the other keys an empty value reads as unset (an empty password is no password).
pub const EMPTY_IS_A_VALUE: &[&str] = &["REDIS_PREFIX", "CACHE_PREFIX"];

/// Laravel's `Env::get` conversions of a raw value; `None` for `null`.
pub fn laravel_env(raw: &str) -> Option<String> {
    match raw.to_ascii_lowercase().as_str() {
        "true" | "(true)" => return Some("true".to_owned()),
        "false" | "(false)" => return Some("false".to_owned()),
        "empty" | "(empty)" => return Some(String::new()),
        "null" | "(null)" => return None,
        _ => {}
    }
    let b = raw.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[0] == b[b.len() - 1] {
        return Some(raw[1..raw.len() - 1].to_owned());
    }
    Some(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_follow_laravel_env() {
        assert_eq!(laravel_env("null"), None);
        assert_eq!(laravel_env("(NULL)"), None);
        assert_eq!(laravel_env("(true)").as_deref(), Some("true"));
        assert_eq!(laravel_env("FALSE").as_deref(), Some("false"));
        assert_eq!(laravel_env("empty").as_deref(), Some(""));
        assert_eq!(laravel_env("\"quoted\"").as_deref(), Some("quoted"));
        assert_eq!(laravel_env("'x'").as_deref(), Some("x"));
        assert_eq!(laravel_env("\"").as_deref(), Some("\""));
        assert_eq!(laravel_env("plain").as_deref(), Some("plain"));
    }

    #[test]
    fn layers_in_order_and_null_hides_lower_layers() {
        let dotenv = DotEnv::parse(
            "A=dotenv\nB=dotenv\nC=null\nD\n",
            Path::new("/app/.env"),
            &|_| None,
        )
        .unwrap();
        let file =
            FileConfig::parse("[env]\nA = \"file\"\nB = \"file\"\nD = 5\nE = true\n").unwrap();
        let process = HashMap::from([("A".to_owned(), "process".to_owned())]);
        let s = Settings::from_parts(process, Some(dotenv), &file).with_flag("F", "flag");
        let a = s.get("A").unwrap();
        assert_eq!(
            (a.value.as_deref(), a.source),
            (Some("process"), Source::Process)
        );
        let b = s.get("B").unwrap();
        assert_eq!(b.value.as_deref(), Some("dotenv"));
        assert_eq!(b.source.to_string(), "/app/.env:2");
        let c = s.get("C").unwrap();
        assert_eq!(c.value, None);
        assert_eq!(s.env("C"), None);
        // A bare name in .env unsets it there; the file's value applies.
        assert_eq!(s.env("D").as_deref(), Some("5"));
        assert_eq!(s.env("E").as_deref(), Some("true"));
        assert_eq!(s.get("F").unwrap().source, Source::Flag);
        assert!(s.get("MISSING").is_none());
    }

    #[test]
    fn an_empty_prefix_is_the_empty_prefix_and_other_empty_values_are_unset() {
        let dotenv = DotEnv::parse(
            "REDIS_PREFIX=\nCACHE_PREFIX=(empty)\nREDIS_PASSWORD=\nMAIL_FROM_NAME=(empty)\n",
            Path::new("/app/.env"),
            &|_| None,
        )
        .unwrap();
        let s = Settings::from_parts(HashMap::new(), Some(dotenv), &FileConfig::default());
        assert_eq!(s.env("REDIS_PREFIX").as_deref(), Some(""));
        assert_eq!(s.env("CACHE_PREFIX").as_deref(), Some(""));
        assert_eq!(s.env("REDIS_PASSWORD"), None);
        assert_eq!(s.env("MAIL_FROM_NAME"), None);
        // `null` still unsets a prefix: Laravel's default applies.
        let null = DotEnv::parse("REDIS_PREFIX=null\n", Path::new("/app/.env"), &|_| None).unwrap();
        let s = Settings::from_parts(HashMap::new(), Some(null), &FileConfig::default());
        assert_eq!(s.env("REDIS_PREFIX"), None);
    }
}
