//! Laravel's `DatabaseStore`: table `cache(key, value, expiration)`, key = `<CACHE_PREFIX><key>` with no
//! separator, value `serialize()`d (base64 on PostgreSQL when it holds a NUL byte, which PostgreSQL text
//! cannot store), expiration a UNIX time (`forever` = now + ten years).
//!
//! Only the statements; the table is the app's (created by its `cache:table` migration), never created here.

use crate::laravel::database::{on_pool, Db, DbKind};

/// `DatabaseStore::forever` = `put($key, $value, 315360000)` (ten years).
pub(super) const FOREVER_SECS: i64 = 315_360_000;

/// The stored value as `DatabaseStore::serialize` writes it on `kind`.
pub(super) fn encode(kind: DbKind, serialized: &[u8]) -> String {
    if kind == DbKind::Postgres && serialized.contains(&0) {
        use base64::Engine;
        return base64::engine::general_purpose::STANDARD.encode(serialized);
    }
    String::from_utf8_lossy(serialized).into_owned()
}

/// `DatabaseStore::unserialize`'s first step: on PostgreSQL a value with neither `:` nor `;` is base64.
pub(super) fn decode(kind: DbKind, value: String) -> Result<Vec<u8>, String> {
    if kind == DbKind::Postgres && !value.contains([':', ';']) {
        use base64::Engine;
        return base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .map_err(|e| format!("neither serialized nor base64: {e}"));
    }
    Ok(value.into_bytes())
}

pub(super) async fn get(
    db: &Db,
    table: &str,
    key: &str,
) -> Result<Option<(String, i64)>, sqlx::Error> {
    use sqlx::Row;
    let d = Dialect::of(db);
    let sql = format!(
        "SELECT {q}value{q}, CAST({q}expiration{q} AS {int}) FROM {} WHERE {q}key{q} = {} LIMIT 1",
        quote(table, d.quote),
        d.mark(1),
        q = d.quote,
        int = d.int,
    );
    on_pool!(db, pool => sqlx::query(&sql)
        .bind(key)
        .fetch_optional(pool)
        .await?
        .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?)))
        .transpose())
}

/// `DatabaseStore::many`'s one `whereIn` query: (key, value, expiration) of the rows among `keys`.
pub(super) async fn get_many(
    db: &Db,
    table: &str,
    keys: &[String],
) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    use sqlx::Row;
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let d = Dialect::of(db);
    let marks = (1..=keys.len()).map(|i| d.mark(i)).collect::<Vec<_>>();
    let sql = format!(
        "SELECT {q}key{q}, {q}value{q}, CAST({q}expiration{q} AS {int}) FROM {} WHERE {q}key{q} IN ({})",
        quote(table, d.quote),
        marks.join(", "),
        q = d.quote,
        int = d.int,
    );
    on_pool!(db, pool => {
        let mut query = sqlx::query(&sql);
        for k in keys {
            query = query.bind(k.as_str());
        }
        query
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    })
}

/// Insert or update in one statement (Laravel 8/10 try an insert and update on a duplicate-key error).
pub(super) async fn put(
    db: &Db,
    table: &str,
    key: &str,
    value: &str,
    expiration: i64,
) -> Result<(), sqlx::Error> {
    let d = Dialect::of(db);
    let q = d.quote;
    let upsert = match db {
        Db::MySql(_) => "ON DUPLICATE KEY UPDATE `value` = VALUES(`value`), `expiration` = VALUES(`expiration`)",
        Db::Postgres(_) | Db::Sqlite(_) => "ON CONFLICT (\"key\") DO UPDATE SET \"value\" = EXCLUDED.\"value\", \"expiration\" = EXCLUDED.\"expiration\"",
    };
    let sql = format!(
        "INSERT INTO {} ({q}key{q}, {q}value{q}, {q}expiration{q}) VALUES ({}, {}, {}) {upsert}",
        quote(table, q),
        d.mark(1),
        d.mark(2),
        d.mark(3),
    );
    on_pool!(db, pool => sqlx::query(&sql)
        .bind(key)
        .bind(value)
        .bind(expiration)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(())
}

/// `DatabaseStore::incrementOrDecrement`: in one transaction, reads the row's value with a row lock
/// (no lock clause on SQLite, whose transactions lock the file) and, when `f` turns it into a new
/// stored value, writes that back without touching the expiration (an expired row is updated too, as
/// Laravel does). `Ok(None)`: no row, or `f` refused the value (Laravel returns false for both).
pub(super) async fn update_value<T>(
    db: &Db,
    table: &str,
    key: &str,
    f: impl FnOnce(String) -> Option<(String, T)>,
) -> Result<Option<T>, sqlx::Error> {
    let d = Dialect::of(db);
    let q = d.quote;
    let lock = if matches!(db, Db::Sqlite(_)) {
        ""
    } else {
        " FOR UPDATE"
    };
    let select = format!(
        "SELECT {q}value{q} FROM {} WHERE {q}key{q} = {} LIMIT 1{lock}",
        quote(table, q),
        d.mark(1),
    );
    let update = format!(
        "UPDATE {} SET {q}value{q} = {} WHERE {q}key{q} = {}",
        quote(table, q),
        d.mark(1),
        d.mark(2),
    );
    on_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let current: Option<String> = sqlx::query_scalar(&select)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
        let Some((stored, result)) = current.and_then(f) else {
            tx.rollback().await?;
            return Ok(None);
        };
        sqlx::query(&update)
            .bind(stored)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(result))
    })
}

/// `DatabaseStore::forget` for several keys; returns how many rows went.
pub(super) async fn delete(db: &Db, table: &str, keys: &[String]) -> Result<u64, sqlx::Error> {
    if keys.is_empty() {
        return Ok(0);
    }
    let d = Dialect::of(db);
    let marks = (1..=keys.len()).map(|i| d.mark(i)).collect::<Vec<_>>();
    let sql = format!(
        "DELETE FROM {} WHERE {q}key{q} IN ({})",
        quote(table, d.quote),
        marks.join(", "),
        q = d.quote,
    );
    on_pool!(db, pool => {
        let mut query = sqlx::query(&sql);
        for k in keys {
            query = query.bind(k.as_str());
        }
        Ok(query.execute(pool).await?.rows_affected())
    })
}

/// What differs between the three servers in these statements.
struct Dialect {
    quote: char,
    /// `$1` placeholders (PostgreSQL) instead of `?`.
    dollar: bool,
    /// The integer type of the CAST.
    int: &'static str,
}

impl Dialect {
    fn of(db: &Db) -> Dialect {
        let (quote, dollar, int) = match db {
            Db::MySql(_) => ('`', false, "SIGNED"),
            Db::Postgres(_) => ('"', true, "BIGINT"),
            Db::Sqlite(_) => ('"', false, "INTEGER"),
        };
        Dialect { quote, dollar, int }
    }

    /// The placeholder of the `i`-th parameter (1-based).
    fn mark(&self, i: usize) -> String {
        if self.dollar {
            format!("${i}")
        } else {
            "?".to_owned()
        }
    }
}

/// `schema.table` → `q schema q . q table q`; the name was checked to hold no quote character.
fn quote(table: &str, q: char) -> String {
    table
        .split('.')
        .map(|part| format!("{q}{part}{q}"))
        .collect::<Vec<_>>()
        .join(".")
}
