//! The `jobs` table's statements for each dialect (MySQL/MariaDB, PostgreSQL, SQLite), and whether the
//! server takes `SKIP LOCKED`: the SQL side of [`super::database_queue`], which runs them.

use super::database::DbKind;

/// The statements, written once with `?` and rewritten for the dialect at construction.
#[derive(Debug)]
pub(super) struct Sql {
    /// Opens pop's and release's transactions: SQLite takes its write lock at once (`IMMEDIATE`), so
    /// two connections never both read and then deadlock upgrading to write ("database is locked").
    pub(super) begin: &'static str,
    pub(super) select_next: String,
    pub(super) reserve: String,
    pub(super) delete: String,
    pub(super) insert: String,
    pub(super) extend: String,
    pub(super) next_due: String,
    pub(super) stats: String,
    pub(super) head: String,
    pub(super) clear: String,
}

impl Sql {
    pub(super) fn new(kind: DbKind, table: &str, lock: &str) -> Sql {
        let t = match kind {
            DbKind::MySql => format!("`{table}`"),
            DbKind::Postgres | DbKind::Sqlite => format!("\"{table}\""),
        };
        // Unsigned columns on MySQL would not decode as i64.
        let int = |c: &str| match kind {
            DbKind::MySql => format!("CAST({c} AS SIGNED)"),
            DbKind::Postgres => format!("CAST({c} AS BIGINT)"),
            DbKind::Sqlite => format!("CAST({c} AS INTEGER)"),
        };
        let dialect = |sql: String| match kind {
            DbKind::Postgres => numbered(&sql),
            _ => sql,
        };
        Sql {
            begin: match kind {
                DbKind::Sqlite => "BEGIN IMMEDIATE",
                DbKind::MySql | DbKind::Postgres => "BEGIN",
            },
            select_next: dialect(format!(
                "SELECT {} AS id, {} AS attempts, payload FROM {t} WHERE queue = ? AND \
                 ((reserved_at IS NULL AND available_at <= ?) OR (reserved_at <= ?)) \
                 ORDER BY id ASC LIMIT ?{lock}",
                int("id"),
                int("attempts")
            )),
            reserve: dialect(format!(
                "UPDATE {t} SET reserved_at = ?, attempts = ? WHERE id = ? AND attempts = ?"
            )),
            delete: dialect(format!("DELETE FROM {t} WHERE id = ? AND reserved_at = ?")),
            insert: dialect(format!(
                "INSERT INTO {t} (queue, payload, attempts, reserved_at, available_at, created_at) \
                 VALUES (?, ?, ?, NULL, ?, ?)"
            )),
            extend: dialect(format!(
                "UPDATE {t} SET reserved_at = ? WHERE id = ? AND reserved_at = ?"
            )),
            next_due: dialect(format!(
                "SELECT (SELECT {} FROM {t} WHERE queue = ? AND reserved_at IS NULL) AS available, \
                 (SELECT {} FROM {t} WHERE queue = ? AND reserved_at IS NOT NULL) AS reserved",
                int("MIN(available_at)"),
                int("MIN(reserved_at)")
            )),
            stats: dialect(format!(
                // `delayed` is a reserved word on MySQL and MariaDB (INSERT DELAYED).
                "SELECT {} AS ready, {} AS delayed_count, {} AS reserved, \
                 {} AS delayed_min, {} AS reserved_min FROM {t} WHERE queue = ?",
                int("SUM(CASE WHEN reserved_at IS NULL AND available_at <= ? THEN 1 ELSE 0 END)"),
                int("SUM(CASE WHEN reserved_at IS NULL AND available_at > ? THEN 1 ELSE 0 END)"),
                int("SUM(CASE WHEN reserved_at IS NOT NULL THEN 1 ELSE 0 END)"),
                int("MIN(CASE WHEN reserved_at IS NULL AND available_at > ? THEN available_at END)"),
                int("MIN(reserved_at)")
            )),
            head: dialect(format!(
                "SELECT payload FROM {t} WHERE queue = ? AND reserved_at IS NULL AND available_at <= ? \
                 ORDER BY id ASC LIMIT 1"
            )),
            clear: dialect(format!("DELETE FROM {t} WHERE queue = ?")),
        }
    }
}

/// `?` → `$1`, `$2`… for PostgreSQL (no statement here has a `?` inside a literal).
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether the server takes `FOR UPDATE SKIP LOCKED`, by `SELECT VERSION()` as Laravel decides it.
pub(super) fn has_skip_locked(kind: DbKind, version: &str) -> bool {
    let numbers = |v: &str| -> Vec<u32> {
        v.split(|c: char| !c.is_ascii_digit())
            .filter(|p| !p.is_empty())
            .take(3)
            .filter_map(|p| p.parse().ok())
            .collect()
    };
    match kind {
        DbKind::MySql if version.contains("MariaDB") => {
            let v = version.trim_start_matches("5.5.5-");
            numbers(v) >= vec![10, 6, 0]
        }
        DbKind::MySql => numbers(version) >= vec![8, 0, 1],
        // "PostgreSQL 15.4 (Debian …)"
        DbKind::Postgres => numbers(version) >= vec![9, 5],
        DbKind::Sqlite => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_locked_where_laravel_uses_it() {
        assert!(has_skip_locked(DbKind::MySql, "10.11.19-MariaDB-0+deb12u1"));
        assert!(has_skip_locked(DbKind::MySql, "5.5.5-10.6.2-MariaDB-log"));
        assert!(!has_skip_locked(DbKind::MySql, "10.5.9-MariaDB"));
        assert!(has_skip_locked(DbKind::MySql, "8.0.36"));
        assert!(!has_skip_locked(DbKind::MySql, "5.7.44-log"));
        assert!(has_skip_locked(
            DbKind::Postgres,
            "PostgreSQL 15.4 (Debian 15.4-1) on x86_64"
        ));
        assert!(!has_skip_locked(DbKind::Postgres, "PostgreSQL 9.4.26"));
    }

    #[test]
    fn postgres_placeholders_are_numbered() {
        assert_eq!(
            numbered("a = ? AND b = ? OR c = ?"),
            "a = $1 AND b = $2 OR c = $3"
        );
        let sql = Sql::new(DbKind::Postgres, "jobs", " FOR UPDATE SKIP LOCKED");
        assert!(
            sql.select_next.contains("queue = $1"),
            "{}",
            sql.select_next
        );
        assert!(sql.select_next.ends_with("LIMIT $4 FOR UPDATE SKIP LOCKED"));
    }
}
