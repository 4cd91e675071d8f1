//! Where the queue's Redis lives and which key prefix Laravel puts in front of every key, computed
//! from the same environment variables a Laravel 8/10 app reads in `config/database.php`.
//!
//! This module only turns settings into a [`RedisConfig`]; it must not open connections, and it
//! must never print a password (the `Display`/`Debug` impls mask it).

use std::fmt;

use super::slug::{self, laravel_slug};
use crate::util::url::{self, mask_password};

/// Connection URL and key prefix for the queue's Redis connection.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://`, `rediss://` or `redis+unix://` URL, with user, password and database number.
    pub url: String,
    /// Prepended to every key, like phpredis's `OPT_PREFIX` (e.g. `restrosaas_database_`).
    pub prefix: String,
    /// Redis Cluster seed nodes (`redis://…` URLs sharing the user, password and TLS of `url`), as
    /// Laravel's `clusters.default` list declares them. Empty: a single server at `url`.
    pub cluster_nodes: Vec<String>,
}

/// A setting that cannot be turned into a connection URL. Names the variable to fix; never
/// contains a password.
#[derive(Debug, thiserror::Error)]
pub enum RedisConfigError {
    /// A single variable holds a value we cannot use.
    #[error("{var}={value:?} is not valid: {reason}")]
    Invalid {
        var: &'static str,
        value: String,
        reason: &'static str,
    },
    /// A combination of settings that cannot work together (e.g. a cluster with `REDIS_DB=3`).
    #[error("{var}: {reason}")]
    Conflict { var: &'static str, reason: String },
    /// `REDIS_URL` cannot be parsed; the URL is shown with its password masked.
    #[error("REDIS_URL {masked} is not a valid Redis URL: {reason}")]
    BadUrl { masked: String, reason: String },
}

impl RedisConfig {
    /// Builds the configuration from Laravel-named settings, looked up through `get`:
    /// `REDIS_URL`, `REDIS_HOST` (127.0.0.1), `REDIS_PORT` (6379), `REDIS_USERNAME`,
    /// `REDIS_PASSWORD`, `REDIS_DB` (0), `REDIS_SCHEME` (`tls` for TLS), `REDIS_PREFIX`, else
    /// `slug(APP_NAME or "laravel", '_') + "_database_"` as the Laravel 8/10 skeleton computes it.
    ///
    /// As in Laravel's `ConfigurationUrlParser`, the parts present in `REDIS_URL` override the
    /// separate variables and the missing parts fall back to them. `get` hands values over after
    /// Laravel's `env()` conversion (`config::Settings` applies it, once); they are used as given.
    pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Result<RedisConfig, RedisConfigError> {
        let env = get;

        let mut parts = Parts {
            tls: false,
            host: env("REDIS_HOST").unwrap_or_else(|| "127.0.0.1".to_owned()),
            port: env("REDIS_PORT").unwrap_or_else(|| "6379".to_owned()),
            username: env("REDIS_USERNAME"),
            password: env("REDIS_PASSWORD"),
            database: env("REDIS_DB").unwrap_or_else(|| "0".to_owned()),
            insecure: false,
        };
        if let Some(scheme) = env("REDIS_SCHEME") {
            parts.tls = parse_scheme(&scheme).ok_or(RedisConfigError::Invalid {
                var: "REDIS_SCHEME",
                value: scheme,
                reason: "expected tcp, tls, redis or rediss",
            })?;
        }
        if let Some(url) = env("REDIS_URL").filter(|u| !u.is_empty()) {
            apply_url(&mut parts, &url)?;
        }

        let cluster_nodes = cluster_nodes(&env, &parts)?;

        let prefix = match env("REDIS_PREFIX") {
            Some(prefix) => prefix,
            None => {
                let app_name = env("APP_NAME").unwrap_or_else(|| "laravel".to_owned());
                if !slug::transliterates(&app_name) {
                    tracing::warn!(
                        app_name = %app_name,
                        "APP_NAME has characters we cannot transliterate like Laravel's Str::slug; \
                         the derived Redis prefix may differ from PHP's, set REDIS_PREFIX to be sure"
                    );
                }
                format!("{}_database_", laravel_slug(&app_name, '_'))
            }
        };

        Ok(RedisConfig {
            url: parts.into_url()?,
            prefix,
            cluster_nodes,
        })
    }

    /// True when the queue's Redis is a Redis Cluster (`REDIS_CLUSTER_NODES` is set).
    pub fn is_cluster(&self) -> bool {
        !self.cluster_nodes.is_empty()
    }

    /// The URL with any password replaced by `***`, for logs and error messages; for a cluster,
    /// `cluster[<seed>, …]`.
    pub fn masked_url(&self) -> String {
        if self.is_cluster() {
            let nodes: Vec<String> = self
                .cluster_nodes
                .iter()
                .map(|n| mask_password(n))
                .collect();
            format!("cluster[{}]", nodes.join(", "))
        } else {
            mask_password(&self.url)
        }
    }
}

/// The seed nodes of a Redis Cluster, from `REDIS_CLUSTER_NODES` (`host:port` or `redis://` /
/// `rediss://` URLs, comma or space separated). They are what Laravel's
/// `config/database.php` lists under `redis.clusters.default`; each inherits the user,
/// password and TLS of the single-server settings (`REDIS_USERNAME`, `REDIS_PASSWORD`,
/// `REDIS_SCHEME`), as Laravel merges the same `options` into every cluster node.
///
/// `REDIS_CLUSTER` is Laravel's `options.cluster`: `redis` (the default) is Redis Cluster itself;
/// `predis` means predis's client-side sharding, which is not Redis Cluster and is refused.
fn cluster_nodes(
    env: &dyn Fn(&str) -> Option<String>,
    parts: &Parts,
) -> Result<Vec<String>, RedisConfigError> {
    let Some(list) = env("REDIS_CLUSTER_NODES").filter(|l| !l.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    if let Some(mode) = env("REDIS_CLUSTER").filter(|m| !m.eq_ignore_ascii_case("redis")) {
        return Err(RedisConfigError::Invalid {
            var: "REDIS_CLUSTER",
            value: mode,
            reason: "with REDIS_CLUSTER_NODES only `redis` (native Redis Cluster) is supported; \
                     predis client-side sharding is not",
        });
    }
    if parts.database != "0" {
        return Err(RedisConfigError::Conflict {
            var: "REDIS_DB",
            reason: format!(
                "Redis Cluster has only database 0, but REDIS_DB={} (unset it with REDIS_CLUSTER_NODES)",
                parts.database
            ),
        });
    }
    let mut nodes = Vec::new();
    for node in list
        .split([',', ' '])
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        let mut p = parts.clone();
        p.database = "0".to_owned();
        if node.contains("://") {
            apply_url(&mut p, node).map_err(|_| RedisConfigError::Invalid {
                var: "REDIS_CLUSTER_NODES",
                value: mask_password(node),
                reason: "expected host:port or a redis:// / rediss:// URL",
            })?;
        } else {
            let (host, port) = node
                .rsplit_once(':')
                .ok_or_else(|| RedisConfigError::Invalid {
                    var: "REDIS_CLUSTER_NODES",
                    value: node.to_owned(),
                    reason: "expected host:port",
                })?;
            p.host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            p.port = port.to_owned();
        }
        if p.host.starts_with('/') {
            return Err(RedisConfigError::Invalid {
                var: "REDIS_CLUSTER_NODES",
                value: node.to_owned(),
                reason: "cluster nodes are TCP host:port, not Unix sockets",
            });
        }
        let url = p.into_url().map_err(|e| match e {
            RedisConfigError::Invalid { value, reason, .. } => RedisConfigError::Invalid {
                var: "REDIS_CLUSTER_NODES",
                value,
                reason,
            },
            other => other,
        })?;
        nodes.push(url);
    }
    Ok(nodes)
}

/// The hash tag of a Redis key as Redis Cluster computes the slot from it: the text between the
/// first `{` and the first `}` after it, when not empty. Keys with the same tag share a slot.
pub fn hash_tag(key: &str) -> Option<&str> {
    let open = key.find('{')?;
    let rest = &key[open + 1..];
    let close = rest.find('}')?;
    (close > 0).then(|| &rest[..close])
}

impl fmt::Display for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (prefix {:?})", self.masked_url(), self.prefix)
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.masked_url())
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// `Some(true)` for a TLS scheme, `Some(false)` for plain TCP, `None` if unknown.
fn parse_scheme(scheme: &str) -> Option<bool> {
    match scheme.to_ascii_lowercase().as_str() {
        "tls" | "rediss" => Some(true),
        "tcp" | "redis" => Some(false),
        _ => None,
    }
}

#[derive(Clone)]
struct Parts {
    tls: bool,
    host: String,
    port: String,
    username: Option<String>,
    password: Option<String>,
    database: String,
    insecure: bool,
}

impl Parts {
    fn into_url(self) -> Result<String, RedisConfigError> {
        if self.host.is_empty() {
            return Err(RedisConfigError::Invalid {
                var: "REDIS_HOST",
                value: self.host,
                reason: "the host is empty",
            });
        }
        let port: u16 = self.port.parse().map_err(|_| RedisConfigError::Invalid {
            var: "REDIS_PORT",
            value: self.port.clone(),
            reason: "expected a port number",
        })?;
        let database: i64 = self
            .database
            .parse()
            .map_err(|_| RedisConfigError::Invalid {
                var: "REDIS_DB",
                value: self.database.clone(),
                reason: "expected a database number",
            })?;
        // phpredis sends AUTH only when a password is set; so does the redis crate.
        let password = self.password.filter(|p| !p.is_empty());
        let username = self.username.filter(|u| !u.is_empty());

        if self.host.starts_with('/') {
            // phpredis treats a host starting with '/' as a Unix socket path.
            let mut url = format!("redis+unix://{}?db={database}", self.host);
            if let Some(user) = &username {
                url.push_str(&format!("&user={}", url::encode(user)));
            }
            if let Some(pass) = &password {
                url.push_str(&format!("&pass={}", url::encode(pass)));
            }
            return Ok(url);
        }

        let scheme = if self.tls { "rediss" } else { "redis" };
        let auth = match (&username, &password) {
            (Some(u), Some(p)) => format!("{}:{}@", url::encode(u), url::encode(p)),
            (None, Some(p)) => format!(":{}@", url::encode(p)),
            (Some(u), None) => format!("{}@", url::encode(u)),
            (None, None) => String::new(),
        };
        let host = if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]", self.host)
        } else {
            self.host
        };
        let fragment = if self.tls && self.insecure {
            "#insecure"
        } else {
            ""
        };
        Ok(format!(
            "{scheme}://{auth}{host}:{port}/{database}{fragment}"
        ))
    }
}

/// Overrides `parts` with what `url` contains, like Laravel's `ConfigurationUrlParser`.
fn apply_url(parts: &mut Parts, url: &str) -> Result<(), RedisConfigError> {
    let bad = |reason: &str| RedisConfigError::BadUrl {
        masked: mask_password(url),
        reason: reason.to_owned(),
    };
    let u = url::split(url).map_err(bad)?;
    parts.tls =
        parse_scheme(u.scheme).ok_or_else(|| bad("scheme must be redis, rediss, tcp or tls"))?;
    match u.fragment {
        None => {}
        Some("insecure") => parts.insecure = true,
        Some(_) => return Err(bad("only #insecure is supported as a fragment")),
    }
    if let Some(user) = u.user.filter(|u| !u.is_empty()) {
        parts.username = Some(url::decode(user).map_err(|_| bad("bad %-escape in user"))?);
    }
    if let Some(pass) = u.password {
        parts.password = Some(url::decode(pass).map_err(|_| bad("bad %-escape in password"))?);
    }
    if !u.host.is_empty() {
        parts.host = url::decode(u.host).map_err(|_| bad("bad %-escape in host"))?;
    }
    if let Some(port) = u.port {
        parts.port = port.to_owned();
    }
    let db = u.path.trim_start_matches('/');
    if !db.is_empty() {
        parts.database = db.to_owned();
    }
    for pair in u.query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = url::decode(v).map_err(|_| bad("bad %-escape in query"))?;
        match k {
            "database" | "db" => parts.database = v,
            "password" => parts.password = Some(v),
            "username" => parts.username = Some(v),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<RedisConfig, RedisConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        // Values arrive through Laravel's env() conversion, applied once by the settings.
        RedisConfig::from_env(&|k| map.get(k).and_then(|v| crate::config::laravel_env(v)))
    }

    #[test]
    fn defaults_give_laravel_prefix_and_local_url() {
        let c = cfg(&[]).expect("defaults are valid");
        assert_eq!(c.url, "redis://127.0.0.1:6379/0");
        assert_eq!(c.prefix, "laravel_database_");

        let c = cfg(&[("APP_NAME", "RestroSaaS")]).expect("valid");
        assert_eq!(c.prefix, "restrosaas_database_");
        let c = cfg(&[("APP_NAME", "\"My App\"")]).expect("valid");
        assert_eq!(c.prefix, "my_app_database_");
    }

    #[test]
    fn redis_prefix_wins_even_when_empty() {
        let c = cfg(&[("APP_NAME", "X"), ("REDIS_PREFIX", "custom:")]).expect("valid");
        assert_eq!(c.prefix, "custom:");
        let c = cfg(&[("REDIS_PREFIX", "")]).expect("valid");
        assert_eq!(c.prefix, "");
        let c = cfg(&[("REDIS_PREFIX", "(empty)")]).expect("valid");
        assert_eq!(c.prefix, "");
        let c = cfg(&[("REDIS_PREFIX", "null")]).expect("valid");
        assert_eq!(c.prefix, "laravel_database_");
    }

    #[test]
    fn separate_variables_build_the_url() {
        let c = cfg(&[
            ("REDIS_HOST", "cache.internal"),
            ("REDIS_PORT", "6380"),
            ("REDIS_USERNAME", "app"),
            ("REDIS_PASSWORD", "p@ss:w/rd"),
            ("REDIS_DB", "3"),
            ("REDIS_SCHEME", "tls"),
        ])
        .expect("valid");
        assert_eq!(c.url, "rediss://app:p%40ss%3Aw%2Frd@cache.internal:6380/3");

        let c = cfg(&[("REDIS_PASSWORD", "null")]).expect("valid");
        assert_eq!(c.url, "redis://127.0.0.1:6379/0");
        let c = cfg(&[("REDIS_PASSWORD", "secret")]).expect("valid");
        assert_eq!(c.url, "redis://:secret@127.0.0.1:6379/0");
        let c = cfg(&[("REDIS_HOST", "::1")]).expect("valid");
        assert_eq!(c.url, "redis://[::1]:6379/0");
        let c = cfg(&[("REDIS_HOST", "/run/redis.sock"), ("REDIS_PASSWORD", "s")]).expect("valid");
        assert_eq!(c.url, "redis+unix:///run/redis.sock?db=0&pass=s");
    }

    #[test]
    fn url_parts_override_variables_and_missing_parts_fall_back() {
        let c = cfg(&[
            ("REDIS_URL", "rediss://user:pw@redis.example.com:7000/2"),
            ("REDIS_HOST", "ignored"),
            ("REDIS_DB", "5"),
        ])
        .expect("valid");
        assert_eq!(c.url, "rediss://user:pw@redis.example.com:7000/2");

        let c = cfg(&[
            ("REDIS_URL", "redis://redis.example.com"),
            ("REDIS_PASSWORD", "fromenv"),
            ("REDIS_PORT", "6390"),
            ("REDIS_DB", "4"),
        ])
        .expect("valid");
        assert_eq!(c.url, "redis://:fromenv@redis.example.com:6390/4");

        let c = cfg(&[("REDIS_URL", "tls://h:1/0?database=7#insecure")]).expect("valid");
        assert_eq!(c.url, "rediss://h:1/7#insecure");
    }

    #[test]
    fn a_value_quoted_twice_is_unquoted_once_as_laravel_does() {
        // .env: REDIS_PASSWORD='"null"'. phpdotenv keeps the inner quotes of a single-quoted value and
        // Laravel's env() removes one pair, so PHP authenticates with the 4-letter password `null`.
        // Converting a second time (as a consumer once did) read it as unset: no AUTH at all.
        use crate::config::{DotEnv, FileConfig, Settings};
        let text = "REDIS_PASSWORD='\"null\"'\nREDIS_PREFIX='\"(empty)\"'\n";
        let dotenv = DotEnv::parse(text, std::path::Path::new(".env"), &|_| None).unwrap();
        let settings = Settings::from_parts(HashMap::new(), Some(dotenv), &FileConfig::default());
        let c = RedisConfig::from_env(&settings.lookup()).expect("valid");
        assert_eq!(c.url, "redis://:null@127.0.0.1:6379/0");
        assert_eq!(c.prefix, "(empty)");
    }

    #[test]
    fn invalid_settings_name_the_variable_without_the_password() {
        let err = cfg(&[("REDIS_PORT", "abc")]).expect_err("bad port");
        assert!(err.to_string().contains("REDIS_PORT"), "{err}");
        let err = cfg(&[("REDIS_DB", "x")]).expect_err("bad db");
        assert!(err.to_string().contains("REDIS_DB"), "{err}");
        let err = cfg(&[("REDIS_URL", "http://u:topsecret@h/0")]).expect_err("bad scheme");
        let text = err.to_string();
        assert!(
            text.contains("REDIS_URL") && !text.contains("topsecret"),
            "{text}"
        );
    }

    #[test]
    fn cluster_nodes_inherit_auth_and_tls() {
        let c = cfg(&[
            (
                "REDIS_CLUSTER_NODES",
                "10.0.0.1:7000, 10.0.0.2:7001,rediss://h3:7002",
            ),
            ("REDIS_PASSWORD", "pw"),
        ])
        .expect("valid");
        assert!(c.is_cluster());
        assert_eq!(
            c.cluster_nodes,
            [
                "redis://:pw@10.0.0.1:7000/0",
                "redis://:pw@10.0.0.2:7001/0",
                "rediss://:pw@h3:7002/0"
            ]
        );
        assert!(!c.masked_url().contains("pw@"), "{}", c.masked_url());
        assert!(c.masked_url().starts_with("cluster["), "{}", c.masked_url());
        let c = cfg(&[("REDIS_CLUSTER", "redis")]).expect("valid");
        assert!(
            !c.is_cluster(),
            "REDIS_CLUSTER alone is Laravel's default option, not a cluster"
        );
    }

    #[test]
    fn cluster_refuses_predis_sharding_other_databases_and_bad_nodes() {
        let err = cfg(&[("REDIS_CLUSTER_NODES", "h:1"), ("REDIS_CLUSTER", "predis")])
            .expect_err("predis");
        assert!(err.to_string().contains("REDIS_CLUSTER="), "{err}");
        let err = cfg(&[("REDIS_CLUSTER_NODES", "h:1"), ("REDIS_DB", "2")]).expect_err("db");
        assert!(err.to_string().contains("REDIS_DB"), "{err}");
        let err = cfg(&[("REDIS_CLUSTER_NODES", "h")]).expect_err("no port");
        assert!(err.to_string().contains("REDIS_CLUSTER_NODES"), "{err}");
        let err = cfg(&[("REDIS_CLUSTER_NODES", "h:x")]).expect_err("bad port");
        assert!(err.to_string().contains("REDIS_CLUSTER_NODES"), "{err}");
    }

    #[test]
    fn hash_tags_follow_redis_rules() {
        assert_eq!(hash_tag("p_queues:{whatsapp}"), Some("whatsapp"));
        assert_eq!(hash_tag("p_queues:{whatsapp}:notify"), Some("whatsapp"));
        assert_eq!(hash_tag("p_queues:a{b}c{d}"), Some("b"));
        assert_eq!(hash_tag("p_queues:{}x{y}"), None);
        assert_eq!(hash_tag("p_queues:{open"), None);
        assert_eq!(hash_tag("p_queues:default"), None);
        assert_eq!(hash_tag("{app}queues:default"), Some("app"));
    }

    #[test]
    fn display_and_debug_never_show_the_password() {
        let c = cfg(&[("REDIS_USERNAME", "app"), ("REDIS_PASSWORD", "topsecret")]).expect("valid");
        assert!(c.url.contains("topsecret"));
        for text in [c.to_string(), format!("{c:?}"), c.masked_url()] {
            assert!(!text.contains("topsecret"), "{text}");
            assert!(text.contains("app:***@127.0.0.1"), "{text}");
        }
        let c = cfg(&[
            ("REDIS_HOST", "/tmp/r.sock"),
            ("REDIS_PASSWORD", "topsecret"),
        ])
        .expect("ok");
        assert!(!format!("{c} {c:?}").contains("topsecret"));
    }
}
