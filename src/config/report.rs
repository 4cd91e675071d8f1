//! What `defer-worker config` prints and what every command checks at start: the catalogue of settings
//! the app uses (under their Laravel names, with Laravel's defaults), the values derived from them (Redis
//! key prefix, failed_jobs database, mail transport, WhatsApp URL, cache store), and validation.
//!
//! Pure: no connection is opened, and every value shown or quoted in a problem goes through
//! [`mask`] first.

use std::fmt;
use std::path::Path;

use serde::Serialize;
use sha1::{Digest, Sha1};

use super::catalogue::{kind_of, mask, KeyDef, Kind, CACHE, CATALOGUE, DB, MAIL, REDIS, WHATSAPP};
use super::settings::{Settings, Source};
use crate::laravel::cache_store::LaravelLine;
use crate::laravel::database::DbConfig;
use crate::laravel::encrypter::Encrypter;
use crate::laravel::redis_config::{laravel_slug, RedisConfig, RedisConfigError};

/// A setting that cannot be used. Names the key and where its value came from; the value is masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigProblem {
    pub key: String,
    /// The masked value, `None` when the problem is not about one value.
    pub value: Option<String>,
    /// Where the value came from (`.env:12`, `process environment`…).
    pub source: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}={v:?} ({}): {}", self.key, self.source, self.message),
            None => write!(f, "{} ({}): {}", self.key, self.source, self.message),
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub key: String,
    /// Masked; `None` when unset or null.
    pub value: Option<String>,
    /// `.env:12`, `process environment`, `default`, `derived from …`, `unset`, `null (.env:3)`.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    pub name: String,
    pub rows: Vec<Row>,
}

/// The resolved configuration, grouped, with the problems and notes found on the way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub groups: Vec<Group>,
    pub problems: Vec<ConfigProblem>,
    /// Settings that work but probably do not do what the operator wants.
    pub notes: Vec<String>,
}

impl Report {
    /// Builds the report; `embedded_failed_db` is the SQLite file used when no database is configured.
    pub fn build(settings: &Settings, embedded_failed_db: &Path) -> Report {
        let mut report = Report::default();
        let mut derived: Vec<(&str, Row)> = Vec::new();
        derive(settings, embedded_failed_db, &mut report, &mut derived);
        for def in CATALOGUE {
            let row = catalogue_row(settings, def);
            report.group(def.group).rows.push(row);
        }
        for (group, row) in derived {
            report.group(group).rows.push(row);
        }
        // One problem per key: the catalogue's checks first, then what only the derivations found.
        let mut all = problems(settings);
        for p in std::mem::take(&mut report.problems) {
            if !all.iter().any(|o| o.key == p.key) {
                all.push(p);
            }
        }
        report.problems = all;
        report
    }

    /// The group called `name`, created at the end when missing.
    pub fn group(&mut self, name: &str) -> &mut Group {
        let i = match self.groups.iter().position(|g| g.name == name) {
            Some(i) => i,
            None => {
                self.groups.push(Group {
                    name: name.to_owned(),
                    rows: Vec::new(),
                });
                self.groups.len() - 1
            }
        };
        &mut self.groups[i]
    }

    /// The row for `key` in any group.
    pub fn row(&self, key: &str) -> Option<&Row> {
        self.groups
            .iter()
            .flat_map(|g| &g.rows)
            .find(|r| r.key == key)
    }
}

fn catalogue_row(settings: &Settings, def: &KeyDef) -> Row {
    match settings.get(def.key) {
        Some(r) => match r.value {
            Some(v) => Row {
                key: def.key.to_owned(),
                value: Some(mask(def.key, def.kind, &v)),
                source: r.source.to_string(),
            },
            None => Row {
                key: def.key.to_owned(),
                value: None,
                source: format!("null ({})", r.source),
            },
        },
        None => Row {
            key: def.key.to_owned(),
            value: def.default.map(|d| mask(def.key, def.kind, d)),
            source: if def.default.is_some() {
                Source::Default.to_string()
            } else {
                "unset".to_owned()
            },
        },
    }
}

fn derived_row(key: &str, value: impl Into<String>, from: &str) -> Row {
    Row {
        key: key.to_owned(),
        value: Some(value.into()),
        source: format!("derived from {from}"),
    }
}

/// Laravel's `env($key, $default)` over the settings.
fn env_or(settings: &Settings, key: &str, default: &str) -> String {
    match settings.get(key) {
        Some(r) => r.value.unwrap_or_default(),
        None => default.to_owned(),
    }
}

fn derive(
    settings: &Settings,
    embedded_failed_db: &Path,
    report: &mut Report,
    rows: &mut Vec<(&'static str, Row)>,
) {
    let lookup = |k: &str| settings.env(k);
    let app_name = settings
        .env("APP_NAME")
        .unwrap_or_else(|| "laravel".to_owned());

    match RedisConfig::from_env(&lookup) {
        Ok(cfg) => {
            let from = if settings.env("REDIS_PREFIX").is_some() {
                "REDIS_PREFIX"
            } else {
                "APP_NAME"
            };
            rows.push((
                REDIS,
                derived_row("redis.url", cfg.masked_url(), "REDIS_URL, REDIS_HOST…"),
            ));
            rows.push((REDIS, derived_row("redis.prefix", cfg.prefix.clone(), from)));
            rows.push((
                REDIS,
                derived_row(
                    "redis.cluster",
                    if cfg.is_cluster() {
                        format!("yes, {} seed node(s)", cfg.cluster_nodes.len())
                    } else {
                        "no (single server)".to_owned()
                    },
                    "REDIS_CLUSTER_NODES, REDIS_CLUSTER",
                ),
            ));
            let queue = env_or(settings, "REDIS_QUEUE", "default");
            let queue_key = format!("{}queues:{queue}", cfg.prefix);
            if cfg.is_cluster() && crate::laravel::redis_config::hash_tag(&queue_key).is_none() {
                report.problems.push(problem_for(
                    settings,
                    "REDIS_QUEUE",
                    format!(
                        "on Redis Cluster every queue name needs a {{hash tag}} so its keys share a slot: \
                         REDIS_QUEUE={queue:?} has none; use e.g. {{{queue}}} in the app and in work --queue"
                    ),
                ));
            }
            rows.push((
                REDIS,
                derived_row("redis.queue_key", queue_key, "the prefix and REDIS_QUEUE"),
            ));
        }
        Err(err) => report.problems.push(redis_problem(settings, &err)),
    }
    let connection = env_or(settings, "QUEUE_CONNECTION", "sync");
    if connection != "redis" {
        report.notes.push(format!(
            "QUEUE_CONNECTION={connection:?}: the app does not push jobs to Redis, so no worker (PHP or this one) \
             sees them; set QUEUE_CONNECTION=redis in the app"
        ));
    }

    match DbConfig::from_env(&lookup, embedded_failed_db) {
        Ok(cfg) => {
            let what = if cfg.is_embedded() {
                format!("{} (embedded: no DB_* setting)", cfg.masked_url())
            } else {
                cfg.masked_url().to_owned()
            };
            rows.push((
                DB,
                derived_row("failed_jobs.database", what, "DB_CONNECTION, DB_*"),
            ));
            rows.push((
                DB,
                derived_row(
                    "failed_jobs.table",
                    cfg.table.clone(),
                    "Laravel's queue.failed.table",
                ),
            ));
        }
        Err(err) => report.problems.push(problem_for(
            settings,
            db_error_key(&err.to_string()),
            format!("invalid database settings for failed_jobs: {err}"),
        )),
    }
    let failed_driver = env_or(settings, "QUEUE_FAILED_DRIVER", "database-uuids");
    if failed_driver != "database-uuids" {
        report.notes.push(format!(
            "QUEUE_FAILED_DRIVER={failed_driver:?}: defer-worker writes failed jobs as database-uuids does"
        ));
    }

    // Mail: Laravel 10's MailManager + Symfony's EsmtpTransport (docs/restrosaas.md §5.3).
    let mailer = env_or(settings, "MAIL_MAILER", "smtp");
    let host = env_or(settings, "MAIL_HOST", "smtp.mailgun.org");
    let port_text = env_or(settings, "MAIL_PORT", "587");
    let encryption = env_or(settings, "MAIL_ENCRYPTION", "tls").to_ascii_lowercase();
    let transport = if mailer != "smtp" {
        format!("{mailer} (not SMTP)")
    } else if let Ok(port) = port_text.trim().parse::<u16>() {
        if encryption == "ssl" && port != 465 {
            report.notes.push(format!(
                "MAIL_ENCRYPTION=ssl with MAIL_PORT={port}: Laravel 10 uses implicit TLS only on port 465; \
                 this port gets STARTTLS"
            ));
        }
        if port == 465 {
            format!("smtps://{host}:{port} (implicit TLS)")
        } else {
            format!("smtp://{host}:{port} (STARTTLS)")
        }
    } else {
        "unknown: MAIL_PORT is not a port".to_owned()
    };
    rows.push((
        MAIL,
        derived_row(
            "mail.transport",
            transport,
            "MAIL_MAILER, MAIL_HOST, MAIL_PORT, MAIL_ENCRYPTION",
        ),
    ));
    let from_name = env_or(settings, "MAIL_FROM_NAME", "Example");
    let from_address = env_or(settings, "MAIL_FROM_ADDRESS", "hello@example.com");
    rows.push((
        MAIL,
        derived_row(
            "mail.from",
            format!("{from_name} <{from_address}>"),
            "MAIL_FROM_NAME, MAIL_FROM_ADDRESS",
        ),
    ));

    // WhatsApp: `{api_url}/{phone_number_id}/messages`, as WhatsAppService builds it.
    let api_url = env_or(
        settings,
        "WHATSAPP_API_URL",
        "https://graph.facebook.com/v18.0",
    );
    let phone_id = env_or(settings, "WHATSAPP_PHONE_NUMBER_ID", "");
    rows.push((
        WHATSAPP,
        derived_row(
            "whatsapp.messages_url",
            format!("{}/{phone_id}/messages", api_url.trim_end_matches('/')),
            "WHATSAPP_API_URL, WHATSAPP_PHONE_NUMBER_ID",
        ),
    ));
    let enabled = env_or(settings, "WHATSAPP_ENABLED", "true") == "true";
    if enabled && (phone_id.is_empty() || settings.env("WHATSAPP_API_TOKEN").is_none()) {
        report.notes.push(
            "WHATSAPP_ENABLED is true but WHATSAPP_PHONE_NUMBER_ID or WHATSAPP_API_TOKEN is empty: \
             messages cannot be sent"
                .to_owned(),
        );
    }

    // Cache store of the restart signal (docs/laravel-queue.md §8.1).
    let line = settings
        .env("DEFER_WORKER_LARAVEL")
        .and_then(|v| LaravelLine::parse(&v))
        .unwrap_or(LaravelLine::V8To10);
    let (first, second) = match line {
        LaravelLine::V8To10 => ("CACHE_DRIVER", "CACHE_STORE"),
        LaravelLine::V11Plus => ("CACHE_STORE", "CACHE_DRIVER"),
    };
    let (driver, driver_from) = match (settings.env(first), settings.env(second)) {
        (Some(d), _) => (d, first),
        (None, Some(d)) => (d, second),
        (None, None) => ("file".to_owned(), "the default"),
    };
    let (prefix, prefix_from) = match settings.env("CACHE_PREFIX") {
        Some(p) => (p, "CACHE_PREFIX"),
        None => {
            let suffix = match line {
                LaravelLine::V8To10 => "_cache",
                LaravelLine::V11Plus => "_cache_",
            };
            (
                format!("{}{suffix}", laravel_slug(&app_name, '_')),
                "APP_NAME",
            )
        }
    };
    let queue_on_cluster = RedisConfig::from_env(&lookup).is_ok_and(|c| c.is_cluster());
    if queue_on_cluster && driver.eq_ignore_ascii_case("redis") {
        report.notes.push(format!(
            "{driver_from}=redis with the queue on Redis Cluster: the redis cache store (restart \
             signal, cache actions) still connects to the single server REDIS_HOST/REDIS_PORT, \
             database REDIS_CACHE_DB; point those at a standalone Redis or use the file or database store"
        ));
    }
    rows.push((
        CACHE,
        derived_row("cache.store", driver.clone(), driver_from),
    ));
    rows.push((
        CACHE,
        derived_row("cache.prefix", prefix.clone(), prefix_from),
    ));
    const RESTART: &str = "illuminate:queue:restart";
    let restart = match driver.to_ascii_lowercase().as_str() {
        "file" => {
            let storage = settings
                .env("APP_STORAGE_PATH")
                .or_else(|| settings.env("LARAVEL_STORAGE_PATH"))
                .unwrap_or_else(|| "storage".to_owned());
            let hash: String = Sha1::digest(RESTART.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!(
                "{}",
                Path::new(&storage)
                    .join("framework/cache/data")
                    .join(&hash[0..2])
                    .join(&hash[2..4])
                    .join(&hash)
                    .display()
            )
        }
        "redis" => {
            let redis_prefix = RedisConfig::from_env(&lookup)
                .map(|c| c.prefix)
                .unwrap_or_default();
            let sep = if line == LaravelLine::V8To10 && !prefix.is_empty() {
                ":"
            } else {
                ""
            };
            format!(
                "{redis_prefix}{prefix}{sep}{RESTART} on Redis database {}",
                env_or(settings, "REDIS_CACHE_DB", "1")
            )
        }
        "database" => format!(
            "row {prefix}{RESTART} of table {}",
            env_or(settings, "DB_CACHE_TABLE", "cache")
        ),
        "array" => {
            report.notes.push(format!(
                "{driver_from}=array: queue:restart cannot reach any worker (the array store is per process)"
            ));
            "nowhere (array store)".to_owned()
        }
        other => format!("{other} store (not readable by defer-worker)"),
    };
    rows.push((
        CACHE,
        derived_row(
            "cache.restart_signal",
            restart,
            "the cache store and prefix",
        ),
    ));

    if let Some(tz) = settings.env("APP_TIMEZONE").filter(|tz| tz != "UTC") {
        report.notes.push(format!(
            "APP_TIMEZONE={tz:?}: defer-worker writes failed_at in this zone, while the app's config/app.php \
             hard-codes UTC"
        ));
    }
}

fn redis_problem(settings: &Settings, err: &RedisConfigError) -> ConfigProblem {
    let key = match err {
        RedisConfigError::Invalid { var, .. } | RedisConfigError::Conflict { var, .. } => var,
        RedisConfigError::BadUrl { .. } => "REDIS_URL",
    };
    problem_for(settings, key, format!("invalid Redis settings: {err}"))
}

/// The variable a `DbConfigError` message is about.
fn db_error_key(message: &str) -> &'static str {
    [
        "DATABASE_URL",
        "DB_URL",
        "DB_PORT",
        "DB_DATABASE",
        "DB_CONNECTION",
    ]
    .into_iter()
    .find(|k| message.contains(k))
    .unwrap_or("DB_CONNECTION")
}

fn problem_for(settings: &Settings, key: &str, message: String) -> ConfigProblem {
    let resolved = settings.get(key);
    ConfigProblem {
        key: key.to_owned(),
        value: resolved
            .as_ref()
            .and_then(|r| r.value.as_deref())
            .map(|v| mask(key, kind_of(key), v)),
        source: resolved
            .map(|r| r.source.to_string())
            .unwrap_or_else(|| Source::Default.to_string()),
        message,
    }
}

/// Checks one value against its kind; `Err` says what is expected.
fn check(kind: Kind, key: &str, value: &str) -> Result<(), String> {
    let v = value.trim();
    match kind {
        Kind::Port => v
            .parse::<u16>()
            .map(drop)
            .map_err(|_| "expected a port number (0-65535)".to_owned()),
        Kind::Uint => v
            .parse::<u64>()
            .map(drop)
            .map_err(|_| "expected a whole number ≥ 0".to_owned()),
        Kind::Seconds => v
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(drop)
            .ok_or_else(|| "expected a positive number of seconds (e.g. 30 or 2.5)".to_owned()),
        Kind::Digits => (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .then_some(())
            .ok_or_else(|| "expected digits only (e.g. 225)".to_owned()),
        Kind::Bool => matches!(v, "true" | "false" | "1" | "0" | "")
            .then_some(())
            .ok_or_else(|| "expected true or false".to_owned()),
        Kind::OneOf(allowed) => allowed
            .contains(&v.to_ascii_lowercase().as_str())
            .then_some(())
            .ok_or_else(|| {
                format!(
                    "expected one of: {}",
                    allowed
                        .iter()
                        .filter(|a| !a.is_empty())
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }),
        Kind::Timezone => v
            .parse::<chrono_tz::Tz>()
            .map(drop)
            .map_err(|_| "not a known time zone (e.g. UTC, Africa/Abidjan)".to_owned()),
        Kind::AppKey => {
            let result = if key == "APP_KEY" {
                Encrypter::from_keys(Some(v), None)
            } else {
                Encrypter::from_keys(None, Some(v))
            };
            result.map(drop).map_err(|e| e.to_string())
        }
        Kind::HttpUrl => (v.starts_with("https://") || v.starts_with("http://"))
            .then_some(())
            .ok_or_else(|| "expected an http:// or https:// URL".to_owned()),
        Kind::Text | Kind::Secret | Kind::Url | Kind::Personal => Ok(()),
    }
}

/// Every problem of the catalogue's settings (the derived values' own errors included).
pub fn problems(settings: &Settings) -> Vec<ConfigProblem> {
    let mut out = Vec::new();
    for def in CATALOGUE {
        let Some(resolved) = settings.get(def.key) else {
            continue;
        };
        let Some(value) = resolved.value.as_deref() else {
            continue;
        };
        if value.is_empty() && !matches!(def.kind, Kind::OneOf(_)) {
            continue;
        }
        if let Err(message) = check(def.kind, def.key, value) {
            out.push(ConfigProblem {
                key: def.key.to_owned(),
                value: Some(mask(def.key, def.kind, value)),
                source: resolved.source.to_string(),
                message,
            });
        }
    }
    let lookup = |k: &str| settings.env(k);
    if let Err(err) = RedisConfig::from_env(&lookup) {
        let p = redis_problem(settings, &err);
        if !out.iter().any(|o| o.key == p.key) {
            out.push(p);
        }
    }
    out
}

/// `Ok` when [`problems`] finds none.
pub fn validate(settings: &Settings) -> Result<(), Vec<ConfigProblem>> {
    let found = problems(settings);
    if found.is_empty() {
        Ok(())
    } else {
        Err(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::catalogue::Kind;
    use crate::config::dotenv::DotEnv;
    use crate::config::file::FileConfig;
    use std::collections::HashMap;

    fn settings(dotenv: &str) -> Settings {
        let env = DotEnv::parse(dotenv, Path::new("/app/.env"), &|_| None).unwrap();
        Settings::from_parts(HashMap::new(), Some(env), &FileConfig::default())
    }

    #[test]
    fn masks_secrets_and_url_passwords() {
        assert_eq!(mask("DB_PASSWORD", Kind::Text, "pw"), "***");
        assert_eq!(mask("ANY_TOKEN", Kind::Text, "t"), "***");
        assert_eq!(mask("X", Kind::Personal, "+2250700000000"), "***");
        assert_eq!(
            mask("REDIS_URL", Kind::Url, "redis://u:p@h:1/0"),
            "redis://u:***@h:1/0"
        );
        assert_eq!(
            mask("REDIS_URL", Kind::Url, "redis://h:1/0"),
            "redis://h:1/0"
        );
        assert_eq!(mask("DB_PASSWORD", Kind::Secret, ""), "");
    }

    #[test]
    fn problems_name_key_and_line() {
        let s = settings(
            "REDIS_PORT=abc\nDB_CONNECTION=oracle\nAPP_KEY=base64:AAAA\nAPP_TIMEZONE=Mars/Base\nWHATSAPP_ENABLED=yes\n",
        );
        let found = validate(&s).unwrap_err();
        let shown: Vec<String> = found.iter().map(ToString::to_string).collect();
        for (key, line) in [
            ("REDIS_PORT", 1),
            ("DB_CONNECTION", 2),
            ("APP_KEY", 3),
            ("APP_TIMEZONE", 4),
            ("WHATSAPP_ENABLED", 5),
        ] {
            let p = found
                .iter()
                .find(|p| p.key == key)
                .unwrap_or_else(|| panic!("{key}: {shown:?}"));
            assert_eq!(p.source, format!("/app/.env:{line}"), "{p}");
        }
        assert!(!shown.iter().any(|s| s.contains("AAAA")), "{shown:?}");
    }

    #[test]
    fn good_settings_have_no_problems_and_derive_values() {
        let s = settings(
            "APP_NAME=\"E-menu\"\nREDIS_PASSWORD=null\nMAIL_PORT=465\nCACHE_DRIVER=redis\n",
        );
        assert_eq!(validate(&s), Ok(()));
        let r = Report::build(&s, Path::new("failed.sqlite"));
        let value = |k: &str| r.row(k).and_then(|row| row.value.clone());
        assert_eq!(value("redis.prefix").as_deref(), Some("e_menu_database_"));
        assert_eq!(
            value("redis.url").as_deref(),
            Some("redis://127.0.0.1:6379/0")
        );
        assert_eq!(
            value("mail.transport").as_deref(),
            Some("smtps://smtp.mailgun.org:465 (implicit TLS)")
        );
        assert_eq!(value("cache.prefix").as_deref(), Some("e_menu_cache"));
        assert_eq!(
            value("cache.restart_signal").as_deref(),
            Some("e_menu_database_e_menu_cache:illuminate:queue:restart on Redis database 1")
        );
        assert_eq!(
            r.row("REDIS_PASSWORD").map(|row| row.source.as_str()),
            Some("null (/app/.env:2)")
        );
        assert!(r
            .row("failed_jobs.database")
            .and_then(|row| row.value.clone())
            .unwrap()
            .contains("embedded"));
    }
}
