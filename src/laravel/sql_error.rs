//! Which database errors a retry can fix, on MySQL/MariaDB, PostgreSQL and SQLite: the connection or
//! the pool failed, or the server said "not now" (a deadlock, a lock wait or statement timeout, a
//! serialization failure, a shutdown or too many connections). Everything else (a syntax error, a
//! missing table or column, a constraint, a value that does not decode) fails the same way again.
//!
//! It also recognises a missing table ([`is_missing_table`]), which the start-up checks turn into an
//! error naming the migration to run.
//!
//! This module only classifies. It must not retry, log, or look at a statement.

use sqlx::error::DatabaseError;
use sqlx::mysql::MySqlDatabaseError;
use sqlx::postgres::PgDatabaseError;
use sqlx::sqlite::SqliteError;

/// True when the same statement may succeed if sent again a little later.
pub fn is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => is_transient_server_error(db.as_ref()),
        _ => false,
    }
}

/// True when the statement failed because its table does not exist: MySQL/MariaDB 1146
/// (`ER_NO_SUCH_TABLE`), PostgreSQL `42P01` (`undefined_table`), SQLite's "no such table".
pub fn is_missing_table(err: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = err else {
        return false;
    };
    if let Some(e) = db.try_downcast_ref::<MySqlDatabaseError>() {
        return e.number() == 1146;
    }
    if let Some(e) = db.try_downcast_ref::<PgDatabaseError>() {
        return e.code() == "42P01";
    }
    db.try_downcast_ref::<SqliteError>().is_some() && db.message().starts_with("no such table")
}

fn is_transient_server_error(db: &dyn DatabaseError) -> bool {
    if let Some(e) = db.try_downcast_ref::<MySqlDatabaseError>() {
        return mysql_transient(e.number()) || e.code().is_some_and(sqlstate_transient);
    }
    if let Some(e) = db.try_downcast_ref::<PgDatabaseError>() {
        return sqlstate_transient(e.code());
    }
    if db.try_downcast_ref::<SqliteError>().is_some() {
        // The extended result code, in decimal.
        return db
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(sqlite_transient);
    }
    false
}

/// MySQL/MariaDB error numbers that mean "not now".
fn mysql_transient(number: u16) -> bool {
    matches!(
        number,
        1040 // ER_CON_COUNT_ERROR: too many connections
            | 1053 // ER_SERVER_SHUTDOWN
            | 1077 // ER_NORMAL_SHUTDOWN
            | 1158
            ..=1161 // ER_NET_READ_ERROR … ER_NET_WRITE_INTERRUPTED
            | 1205 // ER_LOCK_WAIT_TIMEOUT
            | 1213 // ER_LOCK_DEADLOCK
            | 1317 // ER_QUERY_INTERRUPTED
            | 1927 // ER_CONNECTION_KILLED (MariaDB)
            | 1969 // ER_STATEMENT_TIMEOUT (MariaDB max_statement_time)
            | 3024 // ER_QUERY_TIMEOUT (MySQL max_execution_time)
            | 4031 // ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8)
    )
}

/// SQLSTATEs that mean "not now", on PostgreSQL and MySQL alike.
fn sqlstate_transient(sqlstate: &str) -> bool {
    sqlstate.starts_with("08") // connection exception
        || matches!(
            sqlstate,
            "40001" // serialization_failure (MySQL: deadlock)
                | "40P01" // deadlock_detected
                | "55P03" // lock_not_available (lock_timeout)
                | "57014" // query_canceled (statement_timeout)
                | "57P01" // admin_shutdown
                | "57P02" // crash_shutdown
                | "57P03" // cannot_connect_now (starting up, recovering)
                | "53300" // too_many_connections
        )
}

/// SQLite result codes (primary part of the extended code) that mean "not now".
fn sqlite_transient(extended: i32) -> bool {
    matches!(
        extended & 0xff,
        5 // SQLITE_BUSY: another connection holds the write lock
            | 6 // SQLITE_LOCKED: a table is locked within this database
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
    use sqlx::{Connection, SqliteConnection};

    #[test]
    fn connection_and_pool_failures_are_transient() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(is_transient(&sqlx::Error::Io(refused)));
        assert!(is_transient(&sqlx::Error::PoolTimedOut));
        assert!(is_transient(&sqlx::Error::Protocol(
            "unexpected EOF".into()
        )));
        assert!(is_transient(&sqlx::Error::WorkerCrashed));
        assert!(!is_transient(&sqlx::Error::PoolClosed), "closed on purpose");
        assert!(!is_transient(&sqlx::Error::RowNotFound));
        assert!(!is_transient(&sqlx::Error::ColumnNotFound(
            "attempts".into()
        )));
    }

    #[test]
    fn mysql_numbers_and_sqlstates() {
        for n in [1205, 1213, 1040, 1053, 1927, 1969, 3024] {
            assert!(mysql_transient(n), "{n}");
        }
        // Syntax error, missing table, unknown column, duplicate key, access denied.
        for n in [1064, 1146, 1054, 1062, 1045] {
            assert!(!mysql_transient(n), "{n}");
        }
        for s in [
            "40001", "40P01", "55P03", "57014", "57P01", "08006", "08S01", "53300",
        ] {
            assert!(sqlstate_transient(s), "{s}");
        }
        // Syntax error, undefined table, unique violation, MySQL's catch-all.
        for s in ["42601", "42P01", "42S02", "23505", "HY000"] {
            assert!(!sqlstate_transient(s), "{s}");
        }
    }

    #[tokio::test]
    async fn real_sqlite_errors() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("db.sqlite");
        let opts = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .busy_timeout(std::time::Duration::ZERO);
        let pool = SqlitePoolOptions::new()
            .connect_with(opts.clone())
            .await
            .expect("sqlite");

        // No such table; a syntax error.
        for (sql, missing) in [("SELECT id FROM jobs", true), ("SELEC 1", false)] {
            let err = sqlx::query(sql).execute(&pool).await.expect_err(sql);
            assert!(!is_transient(&err), "{sql}: {err}");
            assert_eq!(is_missing_table(&err), missing, "{sql}: {err}");
        }

        // One connection holds the write lock; another one's write is refused with SQLITE_BUSY.
        let mut holder = SqliteConnection::connect_with(&opts).await.expect("conn");
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut holder)
            .await
            .expect("lock");
        let busy = sqlx::query("CREATE TABLE t (id INTEGER)")
            .execute(&pool)
            .await
            .expect_err("database is locked");
        assert!(is_transient(&busy), "{busy}");
    }
}
