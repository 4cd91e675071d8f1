//! One database row keyed by column name, with PHP-like reads: the app's columns are loosely typed
//! (prices in DOUBLE or DECIMAL or text, flags in INT or VARCHAR), so readers ask for the type they want.

use std::collections::BTreeMap;

/// A column value as the database returned it.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
}

impl SqlValue {
    /// The value as text, as PHP's string conversion gives it (`Null` → `None`).
    pub fn text(&self) -> Option<String> {
        match self {
            SqlValue::Null => None,
            SqlValue::Int(i) => Some(i.to_string()),
            SqlValue::Float(f) => Some(crate::php::format_float(*f)),
            SqlValue::Text(s) => Some(s.clone()),
            SqlValue::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        }
    }

    /// The value as an integer: numbers, and text that is a whole number (`" 12 "` is not).
    pub fn int(&self) -> Option<i64> {
        match self {
            SqlValue::Int(i) => Some(*i),
            SqlValue::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(*f as i64),
            SqlValue::Text(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// The value as a float: numbers, and numeric text (DECIMAL columns arrive as text).
    pub fn float(&self) -> Option<f64> {
        match self {
            SqlValue::Int(i) => Some(*i as f64),
            SqlValue::Float(f) => Some(*f),
            SqlValue::Text(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

/// One row: column name → value. Columns the query did not return are simply absent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row(pub BTreeMap<String, SqlValue>);

impl Row {
    pub fn get(&self, column: &str) -> Option<&SqlValue> {
        self.0.get(column)
    }

    /// Whether the query returned this column (even as NULL).
    pub fn has(&self, column: &str) -> bool {
        self.0.contains_key(column)
    }

    /// Text of a non-NULL column.
    pub fn str(&self, column: &str) -> Option<String> {
        self.get(column).and_then(SqlValue::text)
    }

    /// Text of a non-NULL, non-empty column (PHP's `!empty()` for strings, minus `"0"`).
    pub fn non_empty(&self, column: &str) -> Option<String> {
        self.str(column).filter(|s| !s.is_empty())
    }

    pub fn int(&self, column: &str) -> Option<i64> {
        self.get(column).and_then(SqlValue::int)
    }

    pub fn float(&self, column: &str) -> Option<f64> {
        self.get(column).and_then(SqlValue::float)
    }

    /// Builds a row from pairs; for tests and fixtures.
    pub fn from_pairs<I, K>(pairs: I) -> Row
    where
        I: IntoIterator<Item = (K, SqlValue)>,
        K: Into<String>,
    {
        Row(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loosely_typed_columns_read_as_asked() {
        let row = Row::from_pairs([
            ("price", SqlValue::Text("12.50".into())),
            ("qty", SqlValue::Int(2)),
            ("note", SqlValue::Null),
            ("empty", SqlValue::Text(String::new())),
        ]);
        assert_eq!(row.float("price"), Some(12.5));
        assert_eq!(row.int("qty"), Some(2));
        assert_eq!(row.str("qty").as_deref(), Some("2"));
        assert_eq!(row.str("note"), None);
        assert!(row.has("note"));
        assert!(!row.has("missing"));
        assert_eq!(row.non_empty("empty"), None);
        assert_eq!(row.int("price"), None);
    }
}
