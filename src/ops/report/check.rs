//! The start-up check every command runs: each catalogue value against its kind, and the Redis
//! settings as a whole. Each problem names the key and where its value came from; values are masked.

use super::model::{problem_for, ConfigProblem};
use crate::config::catalogue::{mask, Kind, CATALOGUE};
use crate::config::{timezone, Settings};
use crate::laravel::encrypter::Encrypter;
use crate::laravel::redis_config::{RedisConfig, RedisConfigError};

/// The problem a Redis setting error is, named after the variable at fault.
pub(super) fn redis_problem(settings: &Settings, err: &RedisConfigError) -> ConfigProblem {
    let key = match err {
        RedisConfigError::Invalid { var, .. } | RedisConfigError::Conflict { var, .. } => var,
        RedisConfigError::BadUrl { .. } => "REDIS_URL",
    };
    problem_for(settings, key, format!("invalid Redis settings: {err}"))
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
        Kind::Timezone => timezone::parse(v).map(drop),
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
    let lookup = settings.lookup();
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

/// [`validate`] as one error listing every problem, for `?` in a command.
pub fn ensure_valid(settings: &Settings) -> anyhow::Result<()> {
    validate(settings).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
        anyhow::anyhow!("invalid configuration:\n{}", lines.join("\n"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::catalogue::Kind;
    use crate::config::dotenv::DotEnv;
    use crate::config::file::FileConfig;
    use crate::ops::report::Report;
    use std::collections::HashMap;
    use std::path::Path;

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
