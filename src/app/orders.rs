//! The lookups the actions need, as configurable SQL over the app's own database: an order with its lines,
//! its vendor (a `users` row) and the vendor's `settings` row; plus payments, customers and restaurants
//! for the message builders. The defaults fit docs/restrosaas.md §7 and read `SELECT *`, so a fork with
//! fewer or more columns still works (missing columns are absent from the [`Row`], not errors).
//!
//! Settings live in the TOML config file (`[app]`, `[app.queries]`) and the DB_* variables; a separate
//! (e.g. read-only) connection may serve the lookups. This module reads and, for the actions' own log
//! tables only, writes through [`AppData::execute`]; it never changes the app's orders.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use serde::Deserialize;

use super::line::{self, LineColumns, OrderLine};
use super::query::{self, AppDataError};
use super::row::{Row, SqlValue};
use crate::config::FileConfig;
use crate::laravel::database::{Db, DbConfig};

/// `[app.queries]`: one statement per lookup, with positional `?` placeholders (rewritten to `$1`… on
/// PostgreSQL). Each returns rows by column name; extra columns are fine, missing ones are absent.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppQueries {
    /// `?` = the order id.
    pub order: String,
    /// `?` = the order id; the order's lines (`order_details`), in order.
    pub order_items: String,
    /// `?` = the vendor id; the vendor's `users` row.
    pub vendor: String,
    /// `?` = the vendor id; the vendor's `settings` row (the first, if several).
    pub settings: String,
    /// `?, ?` = the vendor id and `orders.payment_type`; the `payments` row (its `payment_name`).
    pub payment: String,
    /// `?` = `orders.customer_id`; the `customers` row.
    pub customer: String,
    /// `?` = the vendor id; the vendor's `restaurants` row (`restaurants.user_id`).
    pub restaurant: String,
}

impl Default for AppQueries {
    fn default() -> Self {
        AppQueries {
            order: "SELECT * FROM orders WHERE id = ?".into(),
            order_items: "SELECT * FROM order_details WHERE order_id = ? ORDER BY id".into(),
            vendor: "SELECT * FROM users WHERE id = ?".into(),
            settings: "SELECT * FROM settings WHERE vendor_id = ? ORDER BY id LIMIT 1".into(),
            payment:
                "SELECT * FROM payments WHERE vendor_id = ? AND payment_type = ? ORDER BY id LIMIT 1"
                    .into(),
            customer: "SELECT * FROM customers WHERE id = ?".into(),
            restaurant: "SELECT * FROM restaurants WHERE user_id = ? ORDER BY id LIMIT 1".into(),
        }
    }
}

/// `[app]` in the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppSection {
    /// A separate connection for the lookups (e.g. a read-only user or a replica), in `DATABASE_URL`
    /// form (`mysql://user:pass@host:3306/db`, `pgsql://…`, `sqlite:/path`). Default: the app's DB_*.
    pub database_url: Option<String>,
    /// Connections per pool for the lookups and the log writes (default 16): jobs in flight beyond it
    /// wait for a connection.
    pub max_connections: Option<u32>,
    pub queries: AppQueries,
}

impl AppSection {
    /// The `[app]` table of `file` (defaults without one). Errors carry the file's line.
    pub fn from_file(file: &FileConfig) -> Result<AppSection, toml::de::Error> {
        file.section("app")
    }
}

/// Default of `[app] max_connections`.
pub const APP_MAX_CONNECTIONS: u32 = 16;

/// An order with what the actions need around it.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBundle {
    pub order: Row,
    /// The `order_details` rows, read through the table's column family ([`AppData::order_columns`]).
    pub items: Vec<OrderLine>,
    pub vendor: VendorBundle,
}

/// A vendor: its `users` row and its `settings` row.
#[derive(Debug, Clone, PartialEq)]
pub struct VendorBundle {
    pub id: i64,
    /// The `users` row; empty (no columns) when an order points at a vendor that does not exist.
    pub user: Row,
    /// The vendor's own `settings` row, if it has one (see [`AppData::settings_or_default`]).
    pub settings: Option<Row>,
}

impl VendorBundle {
    /// False when no `users` row matched the id (the order's vendor was deleted).
    pub fn exists(&self) -> bool {
        !self.user.0.is_empty()
    }
}

/// The vendor whose settings row the app falls back to (`helper::emailconfigration` for an empty id;
/// the migration seeds its row).
pub const FALLBACK_VENDOR: i64 = 1;

/// The app's data for the actions. Cheap to clone.
#[derive(Clone)]
pub struct AppData {
    inner: Arc<Inner>,
}

struct Inner {
    read: Db,
    write: Db,
    /// The configured statements, prepared for `read`'s dialect, by lookup name.
    sql: HashMap<&'static str, String>,
    target: String,
    /// The table the `order_items` statement reads, and its column family once known: one catalogue
    /// read per pool, not per job.
    lines_table: String,
    lines: tokio::sync::OnceCell<LineColumns>,
}

impl std::fmt::Debug for AppData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppData")
            .field("database", &self.inner.target)
            .finish_non_exhaustive()
    }
}

impl AppData {
    /// Lookups and writes on `db`.
    pub fn new(db: Db, queries: &AppQueries) -> AppData {
        Self::with_pools(db.clone(), db, queries, String::new())
    }

    /// Lookups on `read`, writes ([`AppData::execute`]) on `write`.
    pub fn with_pools(read: Db, write: Db, queries: &AppQueries, target: String) -> AppData {
        let q = queries;
        let sql = [
            ("order", &q.order),
            ("order_items", &q.order_items),
            ("vendor", &q.vendor),
            ("settings", &q.settings),
            ("payment", &q.payment),
            ("customer", &q.customer),
            ("restaurant", &q.restaurant),
        ]
        .into_iter()
        .map(|(name, s)| (name, query::prepare(&read, s)))
        .collect();
        AppData {
            inner: Arc::new(Inner {
                read,
                write,
                sql,
                target,
                lines_table: line::table_of(&queries.order_items),
                lines: tokio::sync::OnceCell::new(),
            }),
        }
    }

    /// From the app's DB_* settings (or `DATABASE_URL`), looked up through `get`, as `failed_jobs` finds
    /// them, and `[app]`. `None` when no app database is configured at all. Connections open lazily, so
    /// the worker starts while the database is down (each lookup then fails with a retryable error).
    /// Errors name the setting; never a password.
    pub async fn from_lookup(
        section: &AppSection,
        get: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Option<AppData>> {
        let unused = Path::new("unused-app-data.sqlite");
        let app = DbConfig::from_env(get, unused).context("the app database (DB_*)")?;
        let app = (!app.is_embedded()).then_some(app);
        let lookups = match section.database_url.as_deref().filter(|u| !u.is_empty()) {
            Some(url) => {
                let only_url = |k: &str| (k == "DATABASE_URL").then(|| url.to_owned());
                Some(DbConfig::from_env(&only_url, unused).context("[app] database_url")?)
            }
            None => None,
        };
        let (read_cfg, write_cfg) = match (lookups, app) {
            (None, None) => return Ok(None),
            (Some(r), None) => (r.clone(), r),
            (None, Some(a)) => (a.clone(), a),
            (Some(r), Some(a)) => (r, a),
        };
        let pool = section.max_connections.unwrap_or(APP_MAX_CONNECTIONS);
        let read = Db::connect_lazy_sized(&read_cfg, pool)
            .await
            .with_context(|| format!("the app database {read_cfg}"))?;
        let write = if write_cfg == read_cfg {
            read.clone()
        } else {
            Db::connect_lazy_sized(&write_cfg, pool)
                .await
                .with_context(|| format!("the app database {write_cfg}"))?
        };
        Ok(Some(Self::with_pools(
            read,
            write,
            &section.queries,
            read_cfg.to_string(),
        )))
    }

    /// The database the lookups read, password masked (for logs).
    pub fn describe(&self) -> &str {
        &self.inner.target
    }

    /// The pool the lookups read.
    pub fn db(&self) -> &Db {
        &self.inner.read
    }

    /// The order, its lines, its vendor and the vendor's settings; `None` when no order has this id.
    pub async fn order(&self, order_id: i64) -> Result<Option<OrderBundle>, AppDataError> {
        let Some(mut bundle) = self.order_without_lines(order_id).await? else {
            return Ok(None);
        };
        let columns = self.order_columns().await?;
        bundle.items = self
            .lookup("order_items", &[SqlValue::Int(order_id)])
            .await?
            .into_iter()
            .map(|row| columns.line(row))
            .collect();
        Ok(Some(bundle))
    }

    /// [`AppData::order`] with `items` left empty, neither the lines nor their table's columns read:
    /// for actions that show no lines, so that an odd lines table does not stop them.
    pub async fn order_without_lines(
        &self,
        order_id: i64,
    ) -> Result<Option<OrderBundle>, AppDataError> {
        let Some(order) = self.one("order", &[SqlValue::Int(order_id)]).await? else {
            return Ok(None);
        };
        let vendor_id = order.int("vendor_id").unwrap_or(0);
        let vendor = match self.vendor(vendor_id).await? {
            Some(v) => v,
            None => VendorBundle {
                id: vendor_id,
                user: Row::default(),
                settings: self.settings(vendor_id).await?,
            },
        };
        Ok(Some(OrderBundle {
            order,
            items: Vec::new(),
            vendor,
        }))
    }

    /// The order-line column family of the table the `order_items` statement reads
    /// (docs/restrosaas.md §7.2), read from the catalogue on the first call and kept for this pool's
    /// life (restart the worker after migrating the table). An unreachable database is retried on the
    /// next call; a table with neither family is [`AppDataError::Columns`].
    pub async fn order_columns(&self) -> Result<&LineColumns, AppDataError> {
        self.inner
            .lines
            .get_or_try_init(|| line::detect(&self.inner.read, &self.inner.lines_table))
            .await
    }

    /// The vendor's `users` row and `settings` row; `None` when no user has this id.
    pub async fn vendor(&self, vendor_id: i64) -> Result<Option<VendorBundle>, AppDataError> {
        let Some(user) = self.one("vendor", &[SqlValue::Int(vendor_id)]).await? else {
            return Ok(None);
        };
        Ok(Some(VendorBundle {
            id: vendor_id,
            user,
            settings: self.settings(vendor_id).await?,
        }))
    }

    /// The vendor's own `settings` row.
    pub async fn settings(&self, vendor_id: i64) -> Result<Option<Row>, AppDataError> {
        self.one("settings", &[SqlValue::Int(vendor_id)]).await
    }

    /// The vendor's `settings` row, else vendor 1's ([`FALLBACK_VENDOR`], the row the app's migration
    /// seeds and `helper::emailconfigration` falls back to), else `None` (then the app's
    /// [`fallback_settings`] apply).
    pub async fn settings_or_default(&self, vendor_id: i64) -> Result<Option<Row>, AppDataError> {
        if let Some(row) = self.settings(vendor_id).await? {
            return Ok(Some(row));
        }
        if vendor_id == FALLBACK_VENDOR {
            return Ok(None);
        }
        self.settings(FALLBACK_VENDOR).await
    }

    /// `payments` of the vendor whose `payment_type` is the order's (`helper::getpayment`).
    pub async fn payment(
        &self,
        vendor_id: i64,
        payment_type: &str,
    ) -> Result<Option<Row>, AppDataError> {
        self.one(
            "payment",
            &[
                SqlValue::Int(vendor_id),
                SqlValue::Text(payment_type.to_owned()),
            ],
        )
        .await
    }

    /// The `customers` row of `orders.customer_id`.
    pub async fn customer(&self, customer_id: i64) -> Result<Option<Row>, AppDataError> {
        self.one("customer", &[SqlValue::Int(customer_id)]).await
    }

    /// The vendor's `restaurants` row.
    pub async fn restaurant(&self, vendor_id: i64) -> Result<Option<Row>, AppDataError> {
        self.one("restaurant", &[SqlValue::Int(vendor_id)]).await
    }

    /// Any SELECT on the lookup connection, `?` placeholders; `name` appears in errors.
    pub async fn fetch_all(
        &self,
        name: &str,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<Vec<Row>, AppDataError> {
        let db = &self.inner.read;
        query::fetch_all(db, name, &query::prepare(db, sql), params).await
    }

    /// An INSERT/UPDATE on the app's own connection (DB_*, not `[app] database_url`), `?` placeholders;
    /// for the actions' log tables (`whatsapp_messages_log`). On PostgreSQL parameters are typed
    /// (text for [`SqlValue::Text`] and `Null`): write `NULL`, `CURRENT_TIMESTAMP` or a `CAST` in the SQL
    /// for other column types.
    pub async fn execute(
        &self,
        name: &str,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<u64, AppDataError> {
        let db = &self.inner.write;
        query::execute(db, name, &query::prepare(db, sql), params).await
    }

    /// Whether `table` exists on the app's own (write) connection.
    pub async fn has_table(&self, table: &str) -> Result<bool, AppDataError> {
        let db = &self.inner.write;
        let sql = match db {
            Db::MySql(_) => "SELECT 1 AS x FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?",
            Db::Postgres(_) => "SELECT 1 AS x FROM information_schema.tables WHERE table_schema = ANY (current_schemas(false)) AND table_name = ?",
            Db::Sqlite(_) => "SELECT 1 AS x FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?",
        };
        let rows = query::fetch_all(
            db,
            "has_table",
            &query::prepare(db, sql),
            &[SqlValue::Text(table.to_owned())],
        )
        .await?;
        Ok(!rows.is_empty())
    }

    async fn lookup(&self, name: &str, params: &[SqlValue]) -> Result<Vec<Row>, AppDataError> {
        let sql = self.inner.sql.get(name).map(String::as_str).unwrap_or("");
        query::fetch_all(&self.inner.read, name, sql, params).await
    }

    async fn one(&self, name: &str, params: &[SqlValue]) -> Result<Option<Row>, AppDataError> {
        Ok(self.lookup(name, params).await?.into_iter().next())
    }
}

/// The settings the app uses when it finds no row (`helper::appdata` → `getFallbackSettings`,
/// docs/restrosaas.md §4.9): XOF on the left with a space, `.` decimals, 2 decimals, UTC, `Y-m-d`, `H:i`.
pub fn fallback_settings() -> Row {
    let text = |s: &str| SqlValue::Text(s.to_owned());
    Row::from_pairs([
        ("currency", text("XOF")),
        ("currency_position", text("left")),
        ("currency_space", SqlValue::Int(1)),
        ("decimal_separator", SqlValue::Int(1)),
        ("currency_formate", SqlValue::Int(2)),
        ("timezone", text("UTC")),
        ("date_format", text("Y-m-d")),
        ("time_format", text("H:i")),
        ("language", text("fr")),
        ("contact", text("")),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_section_sets_queries_and_rejects_unknown_ones() {
        let c = FileConfig::parse(
            "[app]\ndatabase_url = \"mysql://ro@db/app\"\n[app.queries]\nvendor = \"SELECT * FROM vendors WHERE id = ?\"\n",
        )
        .unwrap();
        let app = AppSection::from_file(&c).unwrap();
        assert_eq!(app.queries.vendor, "SELECT * FROM vendors WHERE id = ?");
        assert_eq!(app.queries.order, "SELECT * FROM orders WHERE id = ?");
        let file = FileConfig::parse("[app.queries]\nvendors = \"x\"\n").unwrap();
        let err = AppSection::from_file(&file).unwrap_err().to_string();
        assert!(err.contains("vendors") && err.contains("line 2"), "{err}");
    }

    #[test]
    fn queries_have_defaults_and_reject_unknown_keys() {
        let s: AppSection = toml::from_str(
            "database_url = \"mysql://ro@db/app\"\n[queries]\norder = \"SELECT * FROM commandes WHERE id = ?\"\n",
        )
        .expect("valid");
        assert_eq!(s.queries.order, "SELECT * FROM commandes WHERE id = ?");
        assert_eq!(s.queries.vendor, AppQueries::default().vendor);
        assert_eq!(s.database_url.as_deref(), Some("mysql://ro@db/app"));
        let err = toml::from_str::<AppSection>("[queries]\norders = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("orders"), "{err}");
    }

    #[tokio::test]
    async fn no_database_configured_means_no_app_data() {
        let none = AppData::from_lookup(&AppSection::default(), &|_| None)
            .await
            .expect("valid");
        assert!(none.is_none());
        let err = AppData::from_lookup(
            &AppSection {
                database_url: Some("oracle://u:secret@h/db".into()),
                ..AppSection::default()
            },
            &|_| None,
        )
        .await
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("[app] database_url") && !text.contains("secret"),
            "{text}"
        );
    }

    #[test]
    fn fallback_settings_are_the_apps_defaults() {
        let s = fallback_settings();
        assert_eq!(s.str("currency").as_deref(), Some("XOF"));
        assert_eq!(s.int("currency_formate"), Some(2));
    }
}
