//! Running one configured SQL statement on the app's database: `?` placeholders (rewritten to `$1…` for
//! PostgreSQL), parameters bound by type, rows decoded by column name, and errors sorted into what the
//! worker should do: the database is unreachable (retry later) or the statement is wrong for this database
//! (a missing table or column, bad SQL: retrying will not help).
//!
//! It must not build SQL from data: values always travel as bound parameters.

use crate::laravel::database::Db;

use super::decode;
use super::row::{Row, SqlValue};

/// Why a lookup did not give an answer. Messages name the query (its key under `[app.queries]`) and
/// the database's code, never a parameter value or a password.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AppDataError {
    /// The database could not be reached or is overloaded (connect refused, pool timeout, server gone,
    /// too many connections, deadlock, lock timeout, authentication): worth retrying.
    #[error("app database unavailable for the `{query}` lookup: {reason}")]
    Unavailable { query: String, reason: String },
    /// The statement itself failed (syntax, missing table or column, bad cast): the configured SQL does
    /// not fit this database.
    #[error("app query `{query}` failed: {reason}")]
    Query {
        query: String,
        reason: String,
        /// The table or column the database says is missing (`42S02`, `42P01`, `no such table`, …).
        missing_table: bool,
    },
    /// The order lines table has neither of the app's column families (docs/restrosaas.md §7.2).
    #[error(
        "table `{table}` has neither the app's code's order-line columns (item_name with price or item_price) \
         nor its migration's (product_name with product_price); it has: {found}"
    )]
    Columns { table: String, found: String },
}

impl AppDataError {
    /// True when the database says the table (or view) does not exist: callers of optional lookups
    /// (a log table, a fork without `customers`) treat that as "no row".
    pub fn is_missing_table(&self) -> bool {
        matches!(
            self,
            AppDataError::Query {
                missing_table: true,
                ..
            }
        )
    }

    /// True for [`AppDataError::Unavailable`].
    pub fn is_unavailable(&self) -> bool {
        matches!(self, AppDataError::Unavailable { .. })
    }
}

/// `?` → `$1`, `$2`, … outside quoted strings, identifiers and comments (PostgreSQL's placeholders).
pub fn to_dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' | '`' => {
                out.push(c);
                // A doubled quote inside is an escaped quote: leaving and re-entering gives the same text.
                for d in chars.by_ref() {
                    out.push(d);
                    if d == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                out.push(c);
                let mut prev = ' ';
                for d in chars.by_ref() {
                    out.push(d);
                    if prev == '*' && d == '/' {
                        break;
                    }
                    prev = d;
                }
            }
            '?' => {
                n += 1;
                out.push_str(&format!("${n}"));
            }
            _ => out.push(c),
        }
    }
    out
}

/// The statement as the database wants it (`?` kept for MySQL and SQLite).
pub(crate) fn prepare(db: &Db, sql: &str) -> String {
    match db {
        Db::Postgres(_) => to_dollar_placeholders(sql),
        _ => sql.to_owned(),
    }
}

macro_rules! bind_all {
    ($query:expr, $params:expr) => {{
        let mut q = $query;
        for p in $params {
            q = match p {
                SqlValue::Null => q.bind(None::<String>),
                SqlValue::Int(i) => q.bind(*i),
                SqlValue::Float(f) => q.bind(*f),
                SqlValue::Text(s) => q.bind(s.clone()),
                SqlValue::Bytes(b) => q.bind(b.clone()),
            };
        }
        q
    }};
}

/// Runs a SELECT (`sql` already prepared for `db`) and decodes every row. `name` is for errors.
pub(crate) async fn fetch_all(
    db: &Db,
    name: &str,
    sql: &str,
    params: &[SqlValue],
) -> Result<Vec<Row>, AppDataError> {
    let fail = |e| classify(name, e);
    Ok(match db {
        Db::MySql(pool) => bind_all!(sqlx::query(sql), params)
            .fetch_all(pool)
            .await
            .map_err(fail)?
            .iter()
            .map(decode::mysql_row)
            .collect(),
        Db::Postgres(pool) => bind_all!(sqlx::query(sql), params)
            .fetch_all(pool)
            .await
            .map_err(fail)?
            .iter()
            .map(decode::pg_row)
            .collect(),
        Db::Sqlite(pool) => bind_all!(sqlx::query(sql), params)
            .fetch_all(pool)
            .await
            .map_err(fail)?
            .iter()
            .map(decode::sqlite_row)
            .collect(),
    })
}

/// Runs an INSERT/UPDATE/DELETE (`sql` already prepared for `db`); returns the rows affected.
pub(crate) async fn execute(
    db: &Db,
    name: &str,
    sql: &str,
    params: &[SqlValue],
) -> Result<u64, AppDataError> {
    let fail = |e| classify(name, e);
    Ok(match db {
        Db::MySql(pool) => bind_all!(sqlx::query(sql), params)
            .execute(pool)
            .await
            .map_err(fail)?
            .rows_affected(),
        Db::Postgres(pool) => bind_all!(sqlx::query(sql), params)
            .execute(pool)
            .await
            .map_err(fail)?
            .rows_affected(),
        Db::Sqlite(pool) => bind_all!(sqlx::query(sql), params)
            .execute(pool)
            .await
            .map_err(fail)?
            .rows_affected(),
    })
}

/// Sorts a sqlx error into retry-later or the-statement-is-wrong.
pub(crate) fn classify(name: &str, e: sqlx::Error) -> AppDataError {
    let unavailable = |reason: String| AppDataError::Unavailable {
        query: name.to_owned(),
        reason,
    };
    match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => unavailable(e.to_string()),
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            // MySQL's SQLSTATE is often the generic HY000: its error number says more.
            let number = db
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .map(|m| m.number().to_string());
            let reason = match (&number, code.is_empty()) {
                (Some(n), _) => format!("{} ({n}, SQLSTATE {code})", db.message()),
                (None, true) => db.message().to_owned(),
                (None, false) => format!("{} ({code})", db.message()),
            };
            let codes = [Some(code.as_str()), number.as_deref()];
            if codes
                .iter()
                .flatten()
                .any(|c| transient_code(c, db.message()))
            {
                return unavailable(reason);
            }
            let missing_table = codes
                .iter()
                .flatten()
                .any(|c| missing_table_code(c, db.message()));
            AppDataError::Query {
                query: name.to_owned(),
                reason,
                missing_table,
            }
        }
        _ => AppDataError::Query {
            query: name.to_owned(),
            reason: e.to_string(),
            missing_table: false,
        },
    }
}

/// SQLSTATE classes 08 (connection), 28 (authorization), 40 (rollback: deadlock, serialization), 53
/// (resources), 57 (operator intervention: shutdown), 58 (system); MySQL's server errors of the same
/// kinds (their SQLSTATE is the generic HY000); SQLite's BUSY and LOCKED.
fn transient_code(code: &str, message: &str) -> bool {
    const MYSQL: [&str; 11] = [
        "1040", "1044", "1045", "1049", "1053", "1205", "1213", "1317", "2002", "2006", "2013",
    ];
    let class = code.get(..2).unwrap_or_default();
    matches!(class, "08" | "28" | "40" | "53" | "57" | "58")
        || MYSQL.contains(&code)
        || matches!(code, "5" | "6" | "261" | "262" | "517")
        || message.contains("database is locked")
}

fn missing_table_code(code: &str, message: &str) -> bool {
    matches!(code, "42S02" | "42P01" | "1146")
        || message.starts_with("no such table")
        || (code == "1" && message.contains("no such table"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_numbered_outside_quotes_and_comments() {
        assert_eq!(
            to_dollar_placeholders("SELECT * FROM t WHERE a = ? AND b = ?"),
            "SELECT * FROM t WHERE a = $1 AND b = $2"
        );
        assert_eq!(
            to_dollar_placeholders(
                "SELECT '?', \"q?\" FROM t -- why?\nWHERE a = ? /* ? */ AND b='it''s?' AND c=?"
            ),
            "SELECT '?', \"q?\" FROM t -- why?\nWHERE a = $1 /* ? */ AND b='it''s?' AND c=$2"
        );
    }

    #[test]
    fn transient_and_missing_table_codes() {
        assert!(transient_code("08006", ""));
        assert!(transient_code("1213", ""));
        assert!(transient_code("5", "database is locked"));
        assert!(!transient_code("42S02", ""));
        assert!(missing_table_code("42P01", ""));
        assert!(missing_table_code("1", "no such table: orders"));
        assert!(!missing_table_code("42S22", "Unknown column"));
    }
}
