//! sqlx rows → [`Row`]s by column name, each column decoded from its type info at run time, because the
//! lookups are `SELECT *` over tables whose columns differ between forks of the app.
//!
//! Values come out as PHP's PDO (PHP 8.1+, native types) hands them to the app: integers and booleans as
//! integers, DOUBLE/REAL as floats, DECIMAL/NUMERIC as text (exact), dates and times as text
//! (`Y-m-d`, `H:i:s`, `Y-m-d H:i:s`), text as text, binary columns as bytes, NULL as `Null`. A value that
//! cannot be decoded becomes its raw bytes, never an error: one odd column must not fail a lookup.
//! This module must not run queries.

use std::fmt::Write as _;

use sqlx::mysql::MySqlRow;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Column, Decode, Row as _, TypeInfo, ValueRef};

use super::row::{Row, SqlValue};

const DATE: &str = "%Y-%m-%d";
const TIME: &str = "%H:%M:%S%.f";
const DATETIME: &str = "%Y-%m-%d %H:%M:%S%.f";

/// A MySQL/MariaDB row.
pub(crate) fn mysql_row(row: &MySqlRow) -> Row {
    Row(row
        .columns()
        .iter()
        .map(|c| (c.name().to_owned(), mysql_value(row, c.ordinal())))
        .collect())
}

/// A PostgreSQL row.
pub(crate) fn pg_row(row: &PgRow) -> Row {
    Row(row
        .columns()
        .iter()
        .map(|c| (c.name().to_owned(), pg_value(row, c.ordinal())))
        .collect())
}

/// A SQLite row: SQLite types values, not columns, so the storage class of each value decides.
pub(crate) fn sqlite_row(row: &SqliteRow) -> Row {
    Row(row
        .columns()
        .iter()
        .map(|c| (c.name().to_owned(), sqlite_value(row, c.ordinal())))
        .collect())
}

/// Decodes column `i` of `row` as `T`, ignoring sqlx's type-compatibility check (we chose `T` from the
/// type info ourselves, and e.g. DECIMAL is sent as text).
macro_rules! decode {
    ($row:expr, $i:expr, $db:ty, $t:ty) => {
        $row.try_get_raw($i)
            .ok()
            .and_then(|v| <$t as Decode<'_, $db>>::decode(v).ok())
    };
}

fn mysql_value(row: &MySqlRow, i: usize) -> SqlValue {
    use sqlx::MySql;
    let Ok(raw) = row.try_get_raw(i) else {
        return SqlValue::Null;
    };
    if raw.is_null() {
        return SqlValue::Null;
    }
    let ty = raw.type_info().name().to_owned();
    let bytes = || decode!(row, i, MySql, &[u8]).map(<[u8]>::to_vec);
    let value = match ty.as_str() {
        "BOOLEAN" | "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" | "YEAR" => {
            decode!(row, i, MySql, i64).map(SqlValue::Int)
        }
        t if t.ends_with(" UNSIGNED") => decode!(row, i, MySql, u64).map(|u| {
            i64::try_from(u).map_or_else(|_| SqlValue::Text(u.to_string()), SqlValue::Int)
        }),
        "FLOAT" => decode!(row, i, MySql, f32).map(|f| SqlValue::Float(f32_as_php(f))),
        "DOUBLE" => decode!(row, i, MySql, f64).map(SqlValue::Float),
        "DATE" => Some(SqlValue::Text(
            decode!(row, i, MySql, chrono::NaiveDate)
                .map_or_else(|| "0000-00-00".to_owned(), |d| d.format(DATE).to_string()),
        )),
        "DATETIME" | "TIMESTAMP" => Some(SqlValue::Text(
            decode!(row, i, MySql, chrono::NaiveDateTime).map_or_else(
                || "0000-00-00 00:00:00".to_owned(),
                |d| d.format(DATETIME).to_string(),
            ),
        )),
        "TIME" => decode!(row, i, MySql, sqlx::mysql::types::MySqlTime).map(|t| {
            let mut s = String::new();
            // Not `t.is_negative()`: sqlx 0.8.6 returns the positive flag there.
            if t.sign().is_negative() {
                s.push('-');
            }
            let _ = write!(s, "{:02}:{:02}:{:02}", t.hours(), t.minutes(), t.seconds());
            if t.microseconds() != 0 {
                let _ = write!(s, ".{:06}", t.microseconds());
            }
            SqlValue::Text(s)
        }),
        "BIT" => bytes().map(|b| {
            SqlValue::Int(
                b.iter()
                    .fold(0i64, |acc, byte| acc.wrapping_shl(8) | i64::from(*byte)),
            )
        }),
        "BINARY" | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB" | "GEOMETRY" => {
            bytes().map(SqlValue::Bytes)
        }
        // DECIMAL (exact, as text like PDO), CHAR/VARCHAR/TEXT, ENUM, SET, JSON.
        _ => decode!(row, i, MySql, &str).map(|s| SqlValue::Text(s.to_owned())),
    };
    value
        .or_else(|| bytes().map(SqlValue::Bytes))
        .unwrap_or(SqlValue::Null)
}

fn pg_value(row: &PgRow, i: usize) -> SqlValue {
    use sqlx::Postgres;
    let Ok(raw) = row.try_get_raw(i) else {
        return SqlValue::Null;
    };
    if raw.is_null() {
        return SqlValue::Null;
    }
    let ty = raw.type_info().name().to_owned();
    let bytes = || decode!(row, i, Postgres, &[u8]).map(<[u8]>::to_vec);
    let value = match ty.as_str() {
        "BOOL" => decode!(row, i, Postgres, bool).map(|b| SqlValue::Int(i64::from(b))),
        "INT2" => decode!(row, i, Postgres, i16).map(|n| SqlValue::Int(n.into())),
        "INT4" => decode!(row, i, Postgres, i32).map(|n| SqlValue::Int(n.into())),
        "INT8" => decode!(row, i, Postgres, i64).map(SqlValue::Int),
        "OID" => {
            decode!(row, i, Postgres, sqlx::postgres::types::Oid).map(|o| SqlValue::Int(o.0.into()))
        }
        "FLOAT4" => decode!(row, i, Postgres, f32).map(|f| SqlValue::Float(f32_as_php(f))),
        "FLOAT8" => decode!(row, i, Postgres, f64).map(SqlValue::Float),
        "NUMERIC" => bytes().and_then(|b| pg_numeric(&b)).map(SqlValue::Text),
        "DATE" => decode!(row, i, Postgres, chrono::NaiveDate)
            .map(|d| SqlValue::Text(d.format(DATE).to_string())),
        "TIME" => decode!(row, i, Postgres, chrono::NaiveTime)
            .map(|t| SqlValue::Text(t.format(TIME).to_string())),
        "TIMESTAMP" => decode!(row, i, Postgres, chrono::NaiveDateTime)
            .map(|d| SqlValue::Text(d.format(DATETIME).to_string())),
        // Shown in UTC: the session time zone is not known here.
        "TIMESTAMPTZ" => decode!(row, i, Postgres, chrono::DateTime<chrono::Utc>)
            .map(|d| SqlValue::Text(d.naive_utc().format(DATETIME).to_string())),
        "BYTEA" => bytes().map(SqlValue::Bytes),
        // Binary JSONB is a version byte (1) followed by the JSON text.
        "JSONB" => bytes().map(|b| {
            SqlValue::Text(String::from_utf8_lossy(b.get(1..).unwrap_or_default()).into_owned())
        }),
        "UUID" => bytes()
            .and_then(|b| uuid::Uuid::from_slice(&b).ok())
            .map(|u| SqlValue::Text(u.hyphenated().to_string())),
        // TEXT, VARCHAR, BPCHAR, NAME, JSON, user enums: their binary form is the UTF-8 text.
        _ => decode!(row, i, Postgres, &str).map(|s| SqlValue::Text(s.to_owned())),
    };
    value
        .or_else(|| bytes().map(SqlValue::Bytes))
        .unwrap_or(SqlValue::Null)
}

fn sqlite_value(row: &SqliteRow, i: usize) -> SqlValue {
    use sqlx::Sqlite;
    let Ok(raw) = row.try_get_raw(i) else {
        return SqlValue::Null;
    };
    if raw.is_null() {
        return SqlValue::Null;
    }
    let ty = raw.type_info().name().to_owned();
    let value = match ty.as_str() {
        "INTEGER" | "BOOLEAN" => decode!(row, i, Sqlite, i64).map(SqlValue::Int),
        "REAL" => decode!(row, i, Sqlite, f64).map(SqlValue::Float),
        "BLOB" => decode!(row, i, Sqlite, Vec<u8>).map(SqlValue::Bytes),
        _ => decode!(row, i, Sqlite, String).map(SqlValue::Text),
    };
    value
        .or_else(|| decode!(row, i, Sqlite, Vec<u8>).map(SqlValue::Bytes))
        .unwrap_or(SqlValue::Null)
}

/// A FLOAT (single precision) as PHP sees it: the shortest decimal of the `f32`, not its exact `f64`
/// widening (`1.1`, not `1.100000023841858`).
fn f32_as_php(f: f32) -> f64 {
    f.to_string().parse().unwrap_or(f64::from(f))
}

/// PostgreSQL's binary NUMERIC (`ndigits, weight, sign, dscale`, then base-10000 digits) as the text
/// PostgreSQL itself prints, with exactly `dscale` decimals (`3.50`, `-0.0100`, `NaN`).
fn pg_numeric(buf: &[u8]) -> Option<String> {
    let word =
        |at: usize| -> Option<u16> { Some(u16::from_be_bytes([*buf.get(at)?, *buf.get(at + 1)?])) };
    let ndigits = usize::from(word(0)?);
    let weight = i32::from(word(2)? as i16);
    let sign = word(4)?;
    let dscale = usize::from(word(6)?);
    match sign {
        0xC000 => return Some("NaN".into()),
        0xD000 => return Some("Infinity".into()),
        0xF000 => return Some("-Infinity".into()),
        _ => {}
    }
    let digits: Vec<u16> = (0..ndigits)
        .map(|k| word(8 + 2 * k))
        .collect::<Option<_>>()?;
    let digit = |pos: i32| -> u16 {
        usize::try_from(pos)
            .ok()
            .and_then(|p| digits.get(p).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for pos in 0..=weight {
            if pos == 0 {
                let _ = write!(out, "{}", digit(0));
            } else {
                let _ = write!(out, "{:04}", digit(pos));
            }
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut pos = weight + 1;
        while frac.len() < dscale {
            let _ = write!(frac, "{:04}", digit(pos));
            pos += 1;
        }
        frac.truncate(dscale);
        out.push('.');
        out.push_str(&frac);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(ndigits: u16, weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut b = Vec::new();
        for w in [ndigits, weight as u16, sign, dscale] {
            b.extend_from_slice(&w.to_be_bytes());
        }
        for d in digits {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b
    }

    #[test]
    fn pg_numeric_prints_like_postgres() {
        // 3.50: digits [3, 5000], weight 0, dscale 2.
        assert_eq!(
            pg_numeric(&numeric(2, 0, 0, 2, &[3, 5000])).as_deref(),
            Some("3.50")
        );
        // 12345678.9 = [1234, 5678, 9000], weight 1.
        assert_eq!(
            pg_numeric(&numeric(3, 1, 0, 1, &[1234, 5678, 9000])).as_deref(),
            Some("12345678.9")
        );
        // -0.0100: [100] at weight -1, dscale 4.
        assert_eq!(
            pg_numeric(&numeric(1, -1, 0x4000, 4, &[100])).as_deref(),
            Some("-0.0100")
        );
        // 0 with scale 2, and 10000 (trailing zero groups are not sent).
        assert_eq!(
            pg_numeric(&numeric(0, 0, 0, 2, &[])).as_deref(),
            Some("0.00")
        );
        assert_eq!(
            pg_numeric(&numeric(1, 1, 0, 0, &[1])).as_deref(),
            Some("10000")
        );
        assert_eq!(
            pg_numeric(&numeric(0, 0, 0xC000, 0, &[])).as_deref(),
            Some("NaN")
        );
        assert_eq!(pg_numeric(&[0, 1]), None);
    }

    #[test]
    fn single_precision_reads_as_its_shortest_decimal() {
        assert_eq!(f32_as_php(1.1), 1.1);
        assert_eq!(f32_as_php(4.5), 4.5);
    }
}
