//! Where the app's SQL database is (failed_jobs, the `jobs` table, the app's own rows), found from the
//! same settings a Laravel 8/10 app reads in `config/database.php`, plus an embedded SQLite file when the
//! app's database is not set.
//!
//! Settings in, a [`DbConfig`] out: no I/O. It must never print a password (`Display`/`Debug` and every
//! error mask it).

use std::fmt;
use std::path::Path;

use crate::util::url;

/// Laravel's table for failed jobs (`config/queue.php` `failed.table`).
pub const DEFAULT_TABLE: &str = "failed_jobs";

/// SQL dialect of the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    /// MySQL or MariaDB (`DB_CONNECTION=mysql|mariadb`).
    MySql,
    /// PostgreSQL (`DB_CONNECTION=pgsql`).
    Postgres,
    /// SQLite (`DB_CONNECTION=sqlite`, or the embedded file).
    Sqlite,
}

impl DbKind {
    fn scheme(self) -> &'static str {
        match self {
            DbKind::MySql => "mysql",
            DbKind::Postgres => "postgres",
            DbKind::Sqlite => "sqlite",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            DbKind::Postgres => 5432,
            _ => 3306,
        }
    }
}

/// Where the failed_jobs table lives. `Display` and `Debug` mask the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DbConfig {
    pub kind: DbKind,
    /// sqlx connection URL (`mysql://`, `postgres://`, `sqlite://`), password included.
    pub url: String,
    /// Table name, `failed_jobs` unless the caller changes it.
    pub table: String,
    /// `url` with the password replaced by `***`.
    masked: String,
    /// True for the embedded SQLite file used when the app's database is not configured.
    embedded: bool,
}

/// A database setting we cannot use. Names the variable to fix; never contains a password.
#[derive(Debug, thiserror::Error)]
pub enum DbConfigError {
    #[error("DB_CONNECTION={0} is not supported (mysql, mariadb, pgsql, sqlite)")]
    UnsupportedConnection(String),
    #[error("{var}={value:?} is not valid: {reason}")]
    Invalid {
        var: &'static str,
        value: String,
        reason: &'static str,
    },
    /// The URL is shown with its password masked.
    #[error("{var} {masked} is not a valid database URL: {reason}")]
    BadUrl {
        var: &'static str,
        masked: String,
        reason: &'static str,
    },
    #[error("DB_CONNECTION=sqlite needs DB_DATABASE, the path of the SQLite file")]
    MissingSqlitePath,
    #[error("the SQLite path {0:?} is not valid UTF-8")]
    NonUtf8Path(String),
}

/// A Laravel-style URL split into parts (`DATABASE_URL` / `DB_URL`). Parts absent from the URL are
/// `None` and fall back to the `DB_*` variables, as in Laravel's `ConfigurationUrlParser`.
#[derive(Default)]
struct UrlParts {
    kind: Option<DbKind>,
    user: Option<String>,
    password: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    database: Option<String>,
    query: Option<String>,
}

impl DbConfig {
    /// Builds the configuration from Laravel-named settings, looked up through `get`:
    /// `DB_CONNECTION` (mysql|mariadb|pgsql|sqlite), `DB_HOST` (127.0.0.1), `DB_PORT` (3306/5432),
    /// `DB_DATABASE` (forge; for sqlite the file path), `DB_USERNAME` (forge), `DB_PASSWORD`,
    /// `DB_SOCKET` (MySQL), or `DATABASE_URL` / `DB_URL` (`mysql://`, `mariadb://`, `pgsql://`,
    /// `postgres(ql)://`, `sqlite:`), whose parts override the `DB_*` values and whose scheme
    /// overrides `DB_CONNECTION`. Defaults are Laravel 10's `config/database.php`.
    ///
    /// `DB_CONNECTION` defaults to mysql, as in Laravel, when only `DB_HOST` or `DB_DATABASE` is
    /// set. When none of `DB_CONNECTION`, `DATABASE_URL`, `DB_URL`, `DB_HOST`, `DB_DATABASE` is set,
    /// the result is the embedded SQLite file `default_sqlite_path` (created on connect if missing).
    pub fn from_env(
        get: &dyn Fn(&str) -> Option<String>,
        default_sqlite_path: &Path,
    ) -> Result<DbConfig, DbConfigError> {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        let url_var = ["DATABASE_URL", "DB_URL"]
            .into_iter()
            .find_map(|var| get(var).map(|v| (var, v)));
        let connection = get("DB_CONNECTION");
        if connection.is_none()
            && url_var.is_none()
            && get("DB_HOST").is_none()
            && get("DB_DATABASE").is_none()
        {
            let path = default_sqlite_path.to_str().ok_or_else(|| {
                DbConfigError::NonUtf8Path(default_sqlite_path.display().to_string())
            })?;
            let mut cfg = DbConfig::sqlite(path, true);
            cfg.embedded = true;
            return Ok(cfg);
        }
        let mut kind = match connection.as_deref().map(|c| c.trim().to_ascii_lowercase()) {
            None => DbKind::MySql,
            Some(c) => match c.as_str() {
                "mysql" | "mariadb" => DbKind::MySql,
                "pgsql" => DbKind::Postgres,
                "sqlite" => DbKind::Sqlite,
                _ => {
                    return Err(DbConfigError::UnsupportedConnection(
                        connection.unwrap_or_default(),
                    ))
                }
            },
        };
        let url = match &url_var {
            Some((var, value)) => parse_url(var, value)?,
            None => UrlParts::default(),
        };
        if let Some(k) = url.kind {
            kind = k;
        }
        if kind == DbKind::Sqlite {
            let path = url.database.or_else(|| get("DB_DATABASE"));
            return Ok(DbConfig::sqlite(
                &path.ok_or(DbConfigError::MissingSqlitePath)?,
                false,
            ));
        }
        let port = match (url.port, get("DB_PORT")) {
            (Some(p), _) => p,
            (None, Some(p)) => p.trim().parse().map_err(|_| DbConfigError::Invalid {
                var: "DB_PORT",
                value: p.clone(),
                reason: "expected a port number (1-65535)",
            })?,
            (None, None) => kind.default_port(),
        };
        let host = url
            .host
            .or_else(|| get("DB_HOST"))
            .unwrap_or_else(|| "127.0.0.1".into());
        let user = url
            .user
            .or_else(|| get("DB_USERNAME"))
            .unwrap_or_else(|| "forge".into());
        let password = url
            .password
            .or_else(|| get("DB_PASSWORD"))
            .unwrap_or_default();
        let database = url
            .database
            .or_else(|| get("DB_DATABASE"))
            .unwrap_or_else(|| "forge".into());
        let mut query: Vec<String> = url.query.into_iter().collect();
        if kind == DbKind::MySql {
            if let Some(socket) = get("DB_SOCKET") {
                query.push(format!("socket={}", url::encode(&socket)));
            }
        }
        let build = |pass: &str| {
            let mut s = format!("{}://{}", kind.scheme(), url::encode(&user));
            if !pass.is_empty() {
                s.push(':');
                s.push_str(pass);
            }
            let host = if host.contains(':') && !host.starts_with('[') {
                format!("[{host}]")
            } else {
                host.clone()
            };
            s.push_str(&format!("@{host}:{port}/{}", url::encode(&database)));
            if !query.is_empty() {
                s.push('?');
                s.push_str(&query.join("&"));
            }
            s
        };
        Ok(DbConfig {
            kind,
            url: build(&url::encode(&password)),
            table: DEFAULT_TABLE.into(),
            masked: build(if password.is_empty() { "" } else { "***" }),
            embedded: false,
        })
    }

    fn sqlite(path: &str, create: bool) -> DbConfig {
        let mut url = format!("sqlite://{}", url::encode_path(path));
        if create {
            url.push_str("?mode=rwc");
        }
        DbConfig {
            kind: DbKind::Sqlite,
            masked: url.clone(),
            url,
            table: DEFAULT_TABLE.into(),
            embedded: false,
        }
    }

    /// True for the embedded SQLite file (the app's database is not configured); the caller should
    /// create the table itself, since no Laravel migration will.
    pub fn is_embedded(&self) -> bool {
        self.embedded
    }

    /// The URL with the password replaced by `***`.
    pub fn masked_url(&self) -> &str {
        &self.masked
    }
}

impl fmt::Display for DbConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked)?;
        if self.embedded {
            f.write_str(" (embedded)")?;
        }
        Ok(())
    }
}

impl fmt::Debug for DbConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbConfig")
            .field("kind", &self.kind)
            .field("url", &self.masked)
            .field("table", &self.table)
            .field("embedded", &self.embedded)
            .finish()
    }
}

/// Splits `scheme://user:pass@host:port/database?query` (or `sqlite:path`). User, password and
/// database are percent-decoded, like Laravel's `rawurldecode`.
fn parse_url(var: &'static str, value: &str) -> Result<UrlParts, DbConfigError> {
    let bad = |reason| DbConfigError::BadUrl {
        var,
        masked: url::mask_password(value),
        reason,
    };
    let (scheme, rest) = value.split_once(':').ok_or_else(|| bad("missing scheme"))?;
    let kind = match scheme.to_ascii_lowercase().as_str() {
        "mysql" | "mysql2" | "mariadb" => DbKind::MySql,
        "pgsql" | "postgres" | "postgresql" => DbKind::Postgres,
        "sqlite" | "sqlite3" => DbKind::Sqlite,
        _ => {
            return Err(bad(
                "unsupported scheme (mysql, mariadb, pgsql, postgres, postgresql, sqlite)",
            ))
        }
    };
    let decoded = |s: &str| -> Result<Option<String>, DbConfigError> {
        (!s.is_empty())
            .then(|| url::decode(s))
            .transpose()
            .map_err(bad)
    };
    if kind == DbKind::Sqlite {
        let path = rest.strip_prefix("//").unwrap_or(rest);
        let path = path.split('?').next().unwrap_or_default();
        return Ok(UrlParts {
            kind: Some(kind),
            database: decoded(path)?,
            ..UrlParts::default()
        });
    }
    if !rest.starts_with("//") {
        return Err(bad("expected scheme://host"));
    }
    let u = url::split(value).map_err(bad)?;
    let port = match u.port {
        None => None,
        Some(p) => Some(p.parse().map_err(|_| bad("invalid port"))?),
    };
    Ok(UrlParts {
        kind: Some(kind),
        user: u.user.map(decoded).transpose()?.flatten(),
        password: u.password.map(decoded).transpose()?.flatten(),
        host: (!u.host.is_empty()).then(|| u.host.to_owned()),
        port,
        database: decoded(u.path)?,
        query: u.query.filter(|q| !q.is_empty()).map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::mysql::MySqlConnectOptions;
    use sqlx::postgres::PgConnectOptions;
    use sqlx::sqlite::SqliteConnectOptions;
    use std::collections::HashMap;
    use std::str::FromStr;

    fn cfg(vars: &[(&str, &str)]) -> Result<DbConfig, DbConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        DbConfig::from_env(
            &|k| map.get(k).cloned(),
            Path::new("/var/lib/dw/failed.sqlite"),
        )
    }

    #[test]
    fn nothing_configured_is_the_embedded_sqlite_file() {
        let c = cfg(&[("REDIS_HOST", "x")]).unwrap();
        assert_eq!(c.kind, DbKind::Sqlite);
        assert!(c.is_embedded());
        assert_eq!(c.url, "sqlite:///var/lib/dw/failed.sqlite?mode=rwc");
        assert_eq!(c.table, "failed_jobs");
        // Empty values count as unset, like Laravel's env().
        assert!(cfg(&[("DB_CONNECTION", "")]).unwrap().is_embedded());
    }

    #[test]
    fn mysql_from_db_variables_with_laravel_defaults() {
        let c = cfg(&[
            ("DB_CONNECTION", "mysql"),
            ("DB_DATABASE", "restro_saas"),
            ("DB_USERNAME", "root"),
        ])
        .unwrap();
        assert_eq!(c.kind, DbKind::MySql);
        assert!(!c.is_embedded());
        assert_eq!(c.url, "mysql://root@127.0.0.1:3306/restro_saas");
        let d = cfg(&[("DB_CONNECTION", "mariadb")]).unwrap();
        assert_eq!(d.url, "mysql://forge@127.0.0.1:3306/forge");
        // Laravel's DB_CONNECTION default is mysql.
        let e = cfg(&[("DB_HOST", "db.internal")]).unwrap();
        assert_eq!(e.url, "mysql://forge@db.internal:3306/forge");
    }

    #[test]
    fn pgsql_from_db_variables() {
        let c = cfg(&[
            ("DB_CONNECTION", "pgsql"),
            ("DB_HOST", "10.0.0.5"),
            ("DB_DATABASE", "app"),
            ("DB_USERNAME", "postgres"),
            ("DB_PASSWORD", "p@ss/w:rd"),
        ])
        .unwrap();
        assert_eq!(c.kind, DbKind::Postgres);
        assert_eq!(
            c.url,
            "postgres://postgres:p%40ss%2Fw%3Ard@10.0.0.5:5432/app"
        );
        assert_eq!(c.masked_url(), "postgres://postgres:***@10.0.0.5:5432/app");
        // sqlx reads the password back exactly.
        let opts = PgConnectOptions::from_str(&c.url).unwrap();
        assert_eq!(opts.get_host(), "10.0.0.5");
        assert_eq!(opts.get_database(), Some("app"));
    }

    #[test]
    fn sqlite_from_db_database() {
        let c = cfg(&[
            ("DB_CONNECTION", "sqlite"),
            ("DB_DATABASE", "/srv/app/database/db sqlite"),
        ])
        .unwrap();
        assert_eq!(c.kind, DbKind::Sqlite);
        assert!(!c.is_embedded());
        assert_eq!(c.url, "sqlite:///srv/app/database/db%20sqlite");
        let opts = SqliteConnectOptions::from_str(&c.url).unwrap();
        assert_eq!(
            opts.get_filename(),
            Path::new("/srv/app/database/db sqlite")
        );
        assert!(matches!(
            cfg(&[("DB_CONNECTION", "sqlite")]),
            Err(DbConfigError::MissingSqlitePath)
        ));
    }

    #[test]
    fn url_forms_override_the_variables() {
        let c = cfg(&[
            ("DB_CONNECTION", "mysql"),
            ("DB_PASSWORD", "fromenv"),
            (
                "DATABASE_URL",
                "postgresql://u:s%40cret@pg.example:6543/shop?sslmode=require",
            ),
        ])
        .unwrap();
        assert_eq!(c.kind, DbKind::Postgres);
        assert_eq!(
            c.url,
            "postgres://u:s%40cret@pg.example:6543/shop?sslmode=require"
        );
        // Missing URL parts fall back to DB_*: here the password and the port.
        let d = cfg(&[("DB_URL", "mariadb://app@db/shop"), ("DB_PASSWORD", "pw")]).unwrap();
        assert_eq!(d.kind, DbKind::MySql);
        assert_eq!(d.url, "mysql://app:pw@db:3306/shop");
        let s = cfg(&[("DATABASE_URL", "sqlite:///tmp/x.sqlite")]).unwrap();
        assert_eq!(
            (s.kind, s.url.as_str()),
            (DbKind::Sqlite, "sqlite:///tmp/x.sqlite")
        );
        let p = cfg(&[("DATABASE_URL", "pgsql://[::1]:5433/db")]).unwrap();
        assert_eq!(p.url, "postgres://forge@[::1]:5433/db");
    }

    #[test]
    fn unsupported_connection_names_the_key() {
        let err = cfg(&[("DB_CONNECTION", "oracle")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "DB_CONNECTION=oracle is not supported (mysql, mariadb, pgsql, sqlite)"
        );
        let err = cfg(&[("DB_CONNECTION", "mysql"), ("DB_PORT", "33o6")]).unwrap_err();
        assert!(
            err.to_string().starts_with("DB_PORT=\"33o6\" is not valid"),
            "{err}"
        );
        let err = cfg(&[("DATABASE_URL", "oracle://u:topsecret@h/db")]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("DATABASE_URL oracle://u:***@h/db is not"),
            "{text}"
        );
        assert!(!text.contains("topsecret"));
    }

    #[test]
    fn password_is_masked_in_display_and_debug() {
        let c = cfg(&[
            ("DB_CONNECTION", "mysql"),
            ("DB_USERNAME", "root"),
            ("DB_PASSWORD", "hunter2-secret"),
        ])
        .unwrap();
        assert!(c.url.contains("hunter2-secret"));
        assert_eq!(c.to_string(), "mysql://root:***@127.0.0.1:3306/forge");
        let debug = format!("{c:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("root:***@"), "{debug}");
        let e = cfg(&[]).unwrap();
        assert!(e.to_string().ends_with(" (embedded)"));
    }

    #[test]
    fn mysql_socket_becomes_a_url_parameter() {
        let c = cfg(&[
            ("DB_CONNECTION", "mysql"),
            ("DB_SOCKET", "/run/mysqld/mysqld.sock"),
        ])
        .unwrap();
        assert_eq!(
            c.url,
            "mysql://forge@127.0.0.1:3306/forge?socket=%2Frun%2Fmysqld%2Fmysqld.sock"
        );
        assert!(MySqlConnectOptions::from_str(&c.url).is_ok());
    }
}
