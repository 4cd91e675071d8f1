//! Order lines on either of the app's two `order_details` schemas (docs/restrosaas.md §7.2): the code's
//! `item_*` family (`item_name`, `price` = the unit price `helper::createorder` writes, `item_price` =
//! the line total the web checkout writes, `variants_*`, `extras_*`) and the migration's `product_*`
//! family (`product_name`, `product_price` = the unit price, `variation_*`). Which one a table has is
//! read once from the database's catalogue (information_schema, or SQLite's `pragma_table_info`) and
//! kept by the caller per pool; each row then becomes an [`OrderLine`] with the same meaning on both.
//!
//! It keeps the values as the database gave them: PHP's conversions (`(float)`, `(string)`) are the
//! message builders' business. It must not run a query other than the catalogue read.

use std::fmt;

use crate::laravel::database::Db;

use super::query::{self, AppDataError};
use super::row::{Row, SqlValue};

/// The table the lines come from when the configured `order_items` statement does not name one.
pub const DEFAULT_LINES_TABLE: &str = "order_details";

/// One of the app's column families for order lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFamily {
    /// The code's: `item_name`, `price` (unit) or `item_price` (line total), `variants_*`, `extras_*`.
    Item,
    /// The migration's: `product_name`, `product_price` (unit), `variation_id`, `variation_name`.
    Product,
}

impl LineFamily {
    /// The columns that make a table hold this family: a name, and one of the price columns.
    fn required(self) -> (&'static str, &'static [&'static str]) {
        match self {
            LineFamily::Item => ("item_name", &["price", "item_price"]),
            LineFamily::Product => ("product_name", &["product_price"]),
        }
    }

    fn columns(self) -> FamilyColumns {
        match self {
            LineFamily::Item => FamilyColumns {
                name: "item_name",
                unit: Some("price"),
                total: Some("item_price"),
                variant_id: "variants_id",
                variant_name: "variants_name",
                variant_price: Some("variants_price"),
                extras: Some(["extras_id", "extras_name", "extras_price"]),
            },
            LineFamily::Product => FamilyColumns {
                name: "product_name",
                unit: Some("product_price"),
                total: None,
                variant_id: "variation_id",
                variant_name: "variation_name",
                variant_price: None,
                extras: None,
            },
        }
    }
}

impl fmt::Display for LineFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LineFamily::Item => "item_*",
            LineFamily::Product => "product_*",
        })
    }
}

/// What each family calls each part of a line.
struct FamilyColumns {
    name: &'static str,
    unit: Option<&'static str>,
    total: Option<&'static str>,
    variant_id: &'static str,
    variant_name: &'static str,
    variant_price: Option<&'static str>,
    extras: Option<[&'static str; 3]>,
}

/// The price of a line as the table holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum LinePrice {
    /// A unit price: the line costs quantity × this (`price`, `product_price`, `variants_price`).
    Unit(SqlValue),
    /// The line's total, quantity included (`item_price` as the web checkout writes it).
    Total(SqlValue),
}

/// An order line's extras: three `|`-separated lists aligned by index, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Extras {
    pub ids: SqlValue,
    pub names: SqlValue,
    pub prices: SqlValue,
}

/// One order line, whichever family its table has.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderLine {
    pub name: SqlValue,
    pub qty: SqlValue,
    /// The variant's name, when the line has a variant (its id is not empty, PHP's `!= ""`).
    pub variant: Option<SqlValue>,
    pub price: LinePrice,
    /// When `extras_id` is not empty.
    pub extras: Option<Extras>,
    /// The row as read, every column (for custom mail templates).
    pub row: Row,
}

/// The order-line columns a table has: its families, first the one read first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineColumns {
    table: String,
    families: Vec<LineFamily>,
    /// Per part, the columns the table has, in reading order.
    name: Vec<&'static str>,
    unit: Vec<&'static str>,
    total: Vec<&'static str>,
    variant_id: Vec<&'static str>,
    variant_name: Vec<&'static str>,
    variant_price: Vec<&'static str>,
    extras: Option<[&'static str; 3]>,
}

impl LineColumns {
    /// The families `columns` (the table's, any order) hold: `item_*` first when it has both (the
    /// columns the app's code reads), the other then fills NULL or empty values. A table with
    /// neither is an error naming the table and the columns looked for.
    pub fn detect(table: &str, columns: &[String]) -> Result<LineColumns, AppDataError> {
        let has = |c: &str| columns.iter().any(|x| x.eq_ignore_ascii_case(c));
        let families: Vec<LineFamily> = [LineFamily::Item, LineFamily::Product]
            .into_iter()
            .filter(|f| {
                let (name, prices) = f.required();
                has(name) && prices.iter().any(|p| has(p))
            })
            .collect();
        if families.is_empty() {
            return Err(AppDataError::Columns {
                table: table.to_owned(),
                found: columns.join(", "),
            });
        }
        let parts: Vec<FamilyColumns> = families.iter().map(|f| f.columns()).collect();
        let pick = |part: fn(&FamilyColumns) -> Option<&'static str>| -> Vec<&'static str> {
            parts.iter().filter_map(part).filter(|c| has(c)).collect()
        };
        Ok(LineColumns {
            table: table.to_owned(),
            name: pick(|p| Some(p.name)),
            unit: pick(|p| p.unit),
            total: pick(|p| p.total),
            variant_id: pick(|p| Some(p.variant_id)),
            variant_name: pick(|p| Some(p.variant_name)),
            variant_price: pick(|p| p.variant_price),
            extras: parts
                .iter()
                .filter_map(|p| p.extras)
                .find(|e| e.iter().all(|c| has(c))),
            families,
        })
    }

    /// The table these columns were read from.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The family read first.
    pub fn family(&self) -> LineFamily {
        self.families[0]
    }

    /// Every family the table has, in reading order.
    pub fn families(&self) -> &[LineFamily] {
        &self.families
    }

    /// A row of the table as an [`OrderLine`].
    pub fn line(&self, row: Row) -> OrderLine {
        let variant = pick(&row, &self.variant_id)
            .text()
            .filter(|id| !id.is_empty())
            .map(|_| pick(&row, &self.variant_name));
        let price = match self.variant_price.first() {
            // The app's formatter prices a variant line by its `variants_price`, NULL included.
            Some(col) if variant.is_some() => {
                LinePrice::Unit(row.get(col).cloned().unwrap_or(SqlValue::Null))
            }
            _ => match (pick_set(&row, &self.unit), pick_set(&row, &self.total)) {
                (Some(unit), _) => LinePrice::Unit(unit),
                (None, Some(total)) => LinePrice::Total(total),
                (None, None) => LinePrice::Unit(pick(&row, &self.unit)),
            },
        };
        let extras = self.extras.and_then(|[ids, names, prices]| {
            let value = |c: &str| row.get(c).cloned().unwrap_or(SqlValue::Null);
            row.non_empty(ids).map(|_| Extras {
                ids: value(ids),
                names: value(names),
                prices: value(prices),
            })
        });
        OrderLine {
            name: pick(&row, &self.name),
            qty: row.get("qty").cloned().unwrap_or(SqlValue::Null),
            variant,
            price,
            extras,
            row,
        }
    }
}

impl fmt::Display for LineColumns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let families: Vec<String> = self.families.iter().map(ToString::to_string).collect();
        write!(f, "{}: {} columns", self.table, families.join(" then "))
    }
}

/// The first of `columns` in `row` that is neither NULL nor empty, else the first the row has as it
/// is (so a one-family table reads exactly as the app reads it), else NULL.
fn pick(row: &Row, columns: &[&str]) -> SqlValue {
    pick_set(row, columns)
        .or_else(|| columns.iter().find_map(|c| row.get(c).cloned()))
        .unwrap_or(SqlValue::Null)
}

/// The first of `columns` in `row` that is neither NULL nor empty.
fn pick_set(row: &Row, columns: &[&str]) -> Option<SqlValue> {
    columns
        .iter()
        .find(|c| row.non_empty(c).is_some())
        .and_then(|c| row.get(c).cloned())
}

/// The table the configured lines statement reads (`… FROM <table> …`), unquoted; else
/// [`DEFAULT_LINES_TABLE`].
pub fn table_of(sql: &str) -> String {
    let words: Vec<&str> = sql.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[0].eq_ignore_ascii_case("from"))
        .map(|w| {
            let name = w[1].trim_end_matches([';', ')', ',']);
            // `schema.table` → `table`; quotes of any dialect off.
            let last = name.rsplit('.').next().unwrap_or(name);
            last.trim_matches(['`', '"', '[', ']']).to_owned()
        })
        .filter(|t| !t.is_empty() && !t.starts_with('('))
        .unwrap_or_else(|| DEFAULT_LINES_TABLE.to_owned())
}

/// The columns of `table` from the database's catalogue; empty when there is no such table or view.
pub(crate) async fn table_columns(db: &Db, table: &str) -> Result<Vec<String>, AppDataError> {
    let sql = match db {
        Db::MySql(_) => "SELECT column_name AS name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? ORDER BY ordinal_position",
        Db::Postgres(_) => "SELECT CAST(column_name AS TEXT) AS name FROM information_schema.columns WHERE table_schema = ANY (current_schemas(false)) AND table_name = ? ORDER BY ordinal_position",
        Db::Sqlite(_) => "SELECT name FROM pragma_table_info(?)",
    };
    let rows = query::fetch_all(
        db,
        "order_items columns",
        &query::prepare(db, sql),
        &[SqlValue::Text(table.to_owned())],
    )
    .await?;
    let mut names: Vec<String> = rows.iter().filter_map(|r| r.str("name")).collect();
    names.dedup();
    Ok(names)
}

/// [`LineColumns::detect`] on `table`'s catalogue entry; a missing table is a permanent error that
/// says so.
pub(crate) async fn detect(db: &Db, table: &str) -> Result<LineColumns, AppDataError> {
    let columns = table_columns(db, table).await?;
    if columns.is_empty() {
        return Err(AppDataError::Query {
            query: "order_items".into(),
            reason: format!("the order lines table `{table}` does not exist"),
            missing_table: true,
        });
    }
    LineColumns::detect(table, &columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(names: &str) -> Vec<String> {
        names.split_whitespace().map(str::to_owned).collect()
    }

    fn text(s: &str) -> SqlValue {
        SqlValue::Text(s.into())
    }

    const MIGRATION: &str = "id vendor_id user_id session_id order_id product_id product_name product_slug product_image attribute variation_id variation_name product_price product_tax qty created_at updated_at";
    const CODE: &str = "id order_id item_id item_name item_image price item_price variants_id variants_name variants_price extras_id extras_name extras_price qty";

    #[test]
    fn each_schema_is_its_family() {
        let m = LineColumns::detect("order_details", &cols(MIGRATION)).unwrap();
        assert_eq!(m.families(), [LineFamily::Product]);
        assert_eq!(m.to_string(), "order_details: product_* columns");
        let c = LineColumns::detect("order_details", &cols(CODE)).unwrap();
        assert_eq!(c.family(), LineFamily::Item);
        let both = format!("{MIGRATION} {CODE}");
        let b = LineColumns::detect("order_details", &cols(&both)).unwrap();
        assert_eq!(b.families(), [LineFamily::Item, LineFamily::Product]);
        assert_eq!(
            b.to_string(),
            "order_details: item_* then product_* columns"
        );
    }

    #[test]
    fn neither_family_names_the_table_and_the_columns() {
        let err = LineColumns::detect("lignes", &cols("id order_id item_name qty")).unwrap_err();
        let msg = err.to_string();
        for part in [
            "`lignes`",
            "item_name",
            "price or item_price",
            "product_name",
            "product_price",
            "id, order_id, item_name, qty",
        ] {
            assert!(msg.contains(part), "{part} in {msg}");
        }
        assert!(!err.is_unavailable());
    }

    #[test]
    fn the_same_line_reads_the_same_on_both_schemas() {
        let code = LineColumns::detect("t", &cols(CODE)).unwrap();
        let migration = LineColumns::detect("t", &cols(MIGRATION)).unwrap();
        let a = code.line(Row::from_pairs([
            ("item_name", text("Poulet")),
            ("qty", SqlValue::Int(2)),
            ("price", text("4500.00")),
            ("item_price", SqlValue::Null),
            ("variants_id", text("")),
            ("extras_id", text("")),
        ]));
        let b = migration.line(Row::from_pairs([
            ("product_name", text("Poulet")),
            ("qty", SqlValue::Int(2)),
            ("product_price", text("4500.00")),
            ("variation_id", SqlValue::Null),
        ]));
        assert_eq!(
            (&a.name, &a.qty, &a.variant, &a.price, &a.extras),
            (&b.name, &b.qty, &b.variant, &b.price, &b.extras)
        );
        assert_eq!(a.price, LinePrice::Unit(text("4500.00")));
        // A variant: its own price on the code's schema, `product_price` on the migration's.
        let v = code.line(Row::from_pairs([
            ("variants_id", SqlValue::Int(7)),
            ("variants_name", text("Grande")),
            ("variants_price", SqlValue::Float(1500.0)),
            ("price", SqlValue::Float(1000.0)),
            ("extras_id", text("3|4")),
            ("extras_name", text("a|b")),
            ("extras_price", text("1|2")),
        ]));
        assert_eq!(v.variant, Some(text("Grande")));
        assert_eq!(v.price, LinePrice::Unit(SqlValue::Float(1500.0)));
        assert_eq!(v.extras.map(|e| e.prices), Some(text("1|2")));
        let w = migration.line(Row::from_pairs([
            ("variation_id", SqlValue::Int(7)),
            ("variation_name", text("Grande")),
            ("product_price", SqlValue::Float(1500.0)),
        ]));
        assert_eq!(w.variant, Some(text("Grande")));
        assert_eq!(w.price, LinePrice::Unit(SqlValue::Float(1500.0)));
    }

    #[test]
    fn web_checkout_lines_carry_their_total_in_item_price() {
        let code = LineColumns::detect("t", &cols(CODE)).unwrap();
        let line = code.line(Row::from_pairs([
            ("qty", SqlValue::Int(3)),
            ("price", SqlValue::Null),
            ("item_price", text("27.00")),
        ]));
        assert_eq!(line.price, LinePrice::Total(text("27.00")));
        let only_total = LineColumns::detect("t", &cols("item_name item_price qty")).unwrap();
        let line = only_total.line(Row::from_pairs([
            ("qty", SqlValue::Int(3)),
            ("item_price", SqlValue::Null),
        ]));
        assert_eq!(line.price, LinePrice::Unit(SqlValue::Null));
    }

    #[test]
    fn on_a_table_with_both_the_migrations_columns_fill_the_gaps() {
        let both = LineColumns::detect("t", &cols(&format!("{MIGRATION} {CODE}"))).unwrap();
        let line = both.line(Row::from_pairs([
            ("item_name", SqlValue::Null),
            ("product_name", text("Jus")),
            ("price", SqlValue::Null),
            ("item_price", SqlValue::Null),
            ("product_price", SqlValue::Float(2.5)),
            ("variants_id", text("")),
            ("variation_id", SqlValue::Null),
            ("qty", SqlValue::Int(1)),
        ]));
        assert_eq!(line.name, text("Jus"));
        assert_eq!(line.price, LinePrice::Unit(SqlValue::Float(2.5)));
        assert_eq!(line.variant, None);
    }

    #[test]
    fn the_table_comes_from_the_configured_statement() {
        assert_eq!(
            table_of("SELECT * FROM order_details WHERE order_id = ? ORDER BY id"),
            "order_details"
        );
        assert_eq!(
            table_of("select item_name from `shop`.`lignes` where order_id = ?"),
            "lignes"
        );
        assert_eq!(table_of("SELECT * FROM \"Lines\";"), "Lines");
        assert_eq!(table_of("SELECT * FROM (SELECT 1) x"), DEFAULT_LINES_TABLE);
        assert_eq!(table_of("SELECT 1"), DEFAULT_LINES_TABLE);
    }
}
