//! The app's data for the actions ([`AppData`]) against real MariaDB, PostgreSQL and SQLite loaded with
//! `fixtures/app` (RestroSaaS-shaped schema + seed rows): the seeded order, its lines, vendor and
//! settings come back by column name with PDO-like types and UTF-8 intact; missing columns are absent,
//! not errors; configured SQL is what runs (with `?` rewritten for PostgreSQL); a missing table is a
//! permanent failure naming the query; a database that is down is a retry; `[app] database_url` reads
//! through its own connection while writes stay on DB_*.

use std::collections::HashMap;
use std::process::Command;

use defer_worker::actions::ActionError;
use defer_worker::app::{AppData, AppDataError, AppQueries, AppSection, SqlValue};

use crate::support::{repo, DbKind, World};

/// Loads `fixtures/app` (schema + seed) into the world's private database.
pub fn load_fixture_app(w: &World) {
    let kind = match w.db {
        DbKind::MySql => "mysql",
        DbKind::Postgres => "pgsql",
        DbKind::Sqlite => "sqlite",
    };
    let out = Command::new(repo().join("fixtures/app/load.sh"))
        .args([kind, &w.db_name])
        .output()
        .expect("run fixtures/app/load.sh");
    assert!(
        out.status.success(),
        "load.sh {kind} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The world's environment as a lookup, with `extra` on top.
fn lookup(w: &World, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = w.env().into_iter().collect();
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env
}

pub(crate) async fn app_data(w: &World, section: &AppSection, extra: &[(&str, &str)]) -> AppData {
    let env = lookup(w, extra);
    AppData::from_lookup(section, &|k| env.get(k).cloned())
        .await
        .expect("valid settings")
        .expect("an app database is configured")
}

/// Runs SQL in the world's database through its own client.
pub(crate) fn sql(w: &World, statement: &str) {
    let out = match w.db {
        DbKind::MySql => Command::new("mysql")
            .args(["-h127.0.0.1", "-uroot", &w.db_name, "-e", statement])
            .output(),
        DbKind::Postgres => Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", &w.db_name])
            .args(["-v", "ON_ERROR_STOP=1", "-qc", statement])
            .output(),
        DbKind::Sqlite => Command::new("sqlite3")
            .args([&w.db_name, statement])
            .output(),
    }
    .expect("run the SQL client");
    assert!(
        out.status.success(),
        "{statement}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A TCP port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// What every database must give for the seed rows.
async fn seeded_lookups(db: DbKind) {
    let w = World::new(db);
    load_fixture_app(&w);
    let app = app_data(&w, &AppSection::default(), &[]).await;

    let b = app.order(2).await.expect("lookup").expect("order 2");
    let o = &b.order;
    assert_eq!(o.get("id"), Some(&SqlValue::Int(2)));
    assert_eq!(o.get("vendor_id"), Some(&SqlValue::Int(2)));
    assert_eq!(o.get("grand_total"), Some(&SqlValue::Float(35.65)));
    assert_eq!(o.str("order_number").as_deref(), Some("CM-0042"));
    assert_eq!(
        o.str("customer_name").as_deref(),
        Some("Zoë Ångström-Müller")
    );
    assert_eq!(o.str("order_notes").as_deref(), Some("Bitte klingeln 🔔"));
    assert_eq!(o.str("tax").as_deref(), Some("1.50|0.75"));
    assert_eq!(o.str("tax_name").as_deref(), Some("MwSt 7%|Service"));
    assert_eq!(o.str("delivery_date").as_deref(), Some("2025-11-16"));
    assert_eq!(o.str("delivery_time").as_deref(), Some("12:15:00"));
    assert_eq!(o.str("created_at").as_deref(), Some("2025-11-15 10:05:00"));
    assert_eq!(o.int("order_type"), Some(1));
    assert_eq!(o.float("subtotal"), Some(0.0));
    assert!(o.has("vendor_note") && o.str("vendor_note").is_none());
    if db != DbKind::Sqlite {
        // DECIMAL/NUMERIC is exact text, as PDO gives it.
        assert_eq!(o.get("subtotal"), Some(&SqlValue::Text("0.00".into())));
    }
    let names: Vec<_> = b
        .items
        .iter()
        .filter_map(|i| i.row.str("item_name"))
        .collect();
    assert_eq!(
        names,
        ["Käsespätzle", "Crème brûlée", "Formule Midi | Soir"]
    );
    assert_eq!(
        b.items[0].row.str("extras_name").as_deref(),
        Some("Röstzwiebeln|Speck 🥓")
    );
    assert_eq!(b.items[0].row.float("variants_price"), Some(11.0));
    assert_eq!(b.items[0].qty, SqlValue::Int(2));
    assert!(b.items[1].row.has("extras_id") && b.items[1].extras.is_none());
    assert!(b.vendor.exists());
    assert_eq!(b.vendor.id, 2);
    assert_eq!(
        b.vendor.user.str("name").as_deref(),
        Some("Café Müller & Söhne")
    );
    let s = b.vendor.settings.as_ref().expect("vendor 2 has settings");
    assert_eq!(s.str("currency").as_deref(), Some("€"));
    assert_eq!(s.str("currency_position").as_deref(), Some("right"));
    // A boolean column (BOOLEAN on PostgreSQL) reads as an integer, like PHP's `== 1` expects.
    assert_eq!(s.get("currency_space"), Some(&SqlValue::Int(0)));
    assert_eq!(s.int("decimal_separator"), Some(2));
    let template = s.str("whatsapp_message").expect("template");
    assert!(
        template.starts_with("Hallo {store_name}! 👋\n*{delivery_type}*"),
        "{template:?}"
    );

    // Vendor 3 has no settings row: its own lookup says so, the fallback is vendor 1's row.
    let b = app.order(4).await.expect("lookup").expect("order 4");
    assert_eq!(b.vendor.user.str("name").as_deref(), Some("مطعم الشام 🍕"));
    assert!(b.vendor.settings.is_none());
    let fallback = app
        .settings_or_default(3)
        .await
        .expect("lookup")
        .expect("row");
    assert_eq!(fallback.int("vendor_id"), Some(1));
    assert_eq!(fallback.str("currency").as_deref(), Some("XOF"));
    assert!(fallback.str("whatsapp_message").is_none());

    // Order 5's vendor (99) does not exist: the order still comes back, with an empty vendor.
    let b = app.order(5).await.expect("lookup").expect("order 5");
    assert_eq!(b.vendor.id, 99);
    assert!(!b.vendor.exists());
    assert!(b.vendor.settings.is_none());
    assert_eq!(b.items.len(), 1);

    assert!(app
        .order(7)
        .await
        .expect("lookup")
        .expect("order 7")
        .items
        .is_empty());
    assert!(app.order(123_456).await.expect("lookup").is_none());
    assert!(app.vendor(99).await.expect("lookup").is_none());

    let p = app.payment(2, "3").await.expect("lookup").expect("payment");
    assert_eq!(
        p.str("payment_name").as_deref(),
        Some("Stripe (Kreditkarte)")
    );
    let c = app.customer(3).await.expect("lookup").expect("customer");
    assert_eq!(c.str("name").as_deref(), Some("Lukas Bäcker"));
    let r = app
        .restaurant(3)
        .await
        .expect("lookup")
        .expect("restaurant");
    assert_eq!(r.str("restaurant_phone").as_deref(), Some("+97145550101"));
    if db != DbKind::Sqlite {
        assert_eq!(
            app.restaurant(2)
                .await
                .expect("lookup")
                .expect("row")
                .get("rating"),
            Some(&SqlValue::Text("4.50".into()))
        );
    }

    // Writes (the actions' log tables) and table checks.
    assert!(app.has_table("whatsapp_messages_log").await.expect("check"));
    assert!(!app.has_table("no_such_table").await.expect("check"));
    let n = app
        .execute(
            "whatsapp_log",
            "INSERT INTO whatsapp_messages_log (order_id, phone, message_type, message_id, status, error_code, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            &[
                SqlValue::Int(2),
                SqlValue::Text("4915123456789".into()),
                SqlValue::Text("order_notification".into()),
                SqlValue::Text("wamid.TEST==".into()),
                SqlValue::Text("sent".into()),
                SqlValue::Null,
            ],
        )
        .await
        .expect("insert");
    assert_eq!(n, 1);
    let rows = app
        .fetch_all(
            "read_log",
            "SELECT * FROM whatsapp_messages_log WHERE order_id = ? AND status = ?",
            &[SqlValue::Int(2), SqlValue::Text("sent".into())],
        )
        .await
        .expect("select");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].str("message_id").as_deref(), Some("wamid.TEST=="));
    assert!(rows[0].str("error_code").is_none());

    // A configured statement naming a table this database does not have: permanent, names the query.
    let bad = AppSection {
        queries: AppQueries {
            settings: "SELECT * FROM vendor_settings WHERE vendor_id = ?".into(),
            ..AppQueries::default()
        },
        ..AppSection::default()
    };
    let err = app_data(&w, &bad, &[]).await.order(2).await.unwrap_err();
    assert!(err.is_missing_table(), "{err:?}");
    let action: ActionError = err.into();
    match action {
        ActionError::Permanent { message } => {
            assert!(
                message.starts_with("app query `settings` failed"),
                "{message}"
            )
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

#[tokio::test]
async fn seeded_order_vendor_and_settings_on_mariadb() {
    seeded_lookups(DbKind::MySql).await;
}

#[tokio::test]
async fn seeded_order_vendor_and_settings_on_postgres() {
    seeded_lookups(DbKind::Postgres).await;
}

#[tokio::test]
async fn seeded_order_vendor_and_settings_on_sqlite() {
    seeded_lookups(DbKind::Sqlite).await;
}

/// The bare migrated `orders` (no tax_name / discount_amount / order_notes) and a fork without
/// customer columns: the lookup works and the columns are simply absent.
#[tokio::test]
async fn missing_columns_are_absent_not_errors() {
    let w = World::new(DbKind::MySql);
    load_fixture_app(&w);
    sql(
        &w,
        "ALTER TABLE orders DROP COLUMN tax_name, DROP COLUMN discount_amount, DROP COLUMN order_notes, \
         DROP COLUMN customer_name, DROP COLUMN mobile; ALTER TABLE settings DROP COLUMN item_message",
    );
    let app = app_data(&w, &AppSection::default(), &[]).await;
    let b = app.order(2).await.expect("lookup").expect("order 2");
    for gone in [
        "tax_name",
        "discount_amount",
        "order_notes",
        "customer_name",
        "mobile",
    ] {
        assert!(!b.order.has(gone), "{gone} should be absent");
        assert!(b.order.str(gone).is_none());
    }
    assert_eq!(b.order.float("grand_total"), Some(35.65));
    let s = b.vendor.settings.expect("settings");
    assert!(!s.has("item_message"));
    assert!(s.has("whatsapp_message"));
}

/// `[app.queries]` replaces the default statements, and on PostgreSQL its `?` placeholders work.
#[tokio::test]
async fn configured_sql_is_what_runs() {
    let w = World::new(DbKind::Postgres);
    load_fixture_app(&w);
    sql(
        &w,
        "CREATE VIEW shop_orders AS SELECT id AS order_id, vendor_id, order_number AS numero, grand_total FROM orders",
    );
    let section = AppSection {
        queries: AppQueries {
            order: "SELECT * FROM shop_orders WHERE order_id = ? AND numero <> '?'".into(),
            order_items: "SELECT item_name FROM order_details WHERE order_id = ? AND qty > 1"
                .into(),
            vendor: "SELECT id, name AS store FROM users WHERE id = ? AND type = 2".into(),
            ..AppQueries::default()
        },
        ..AppSection::default()
    };
    let app = app_data(&w, &section, &[]).await;
    let b = app.order(2).await.expect("lookup").expect("order 2");
    assert_eq!(b.order.str("numero").as_deref(), Some("CM-0042"));
    assert!(!b.order.has("order_number") && !b.order.has("id"));
    assert_eq!(b.items.len(), 1, "only the line with qty 2: {:?}", b.items);
    assert_eq!(b.items[0].row.0.len(), 1);
    assert_eq!(
        b.vendor.user.str("store").as_deref(),
        Some("Café Müller & Söhne")
    );
    // The configured vendor query filters type = 2: user 4 (a customer) is not a vendor.
    assert!(app.vendor(4).await.expect("lookup").is_none());
}

/// The worker starts while the app database is down; each lookup is then a retry, not a failure.
#[tokio::test]
async fn database_down_is_a_retry() {
    let w = World::new(DbKind::Sqlite);
    for (kind, user) in [("mysql", "root"), ("pgsql", "postgres")] {
        let port = closed_port().to_string();
        let app = app_data(
            &w,
            &AppSection::default(),
            &[
                ("DB_CONNECTION", kind),
                ("DB_HOST", "127.0.0.1"),
                ("DB_PORT", &port),
                ("DB_USERNAME", user),
                ("DB_DATABASE", "restro_saas"),
            ],
        )
        .await;
        let err = app.order(1).await.unwrap_err();
        assert!(err.is_unavailable(), "{kind}: {err:?}");
        match ActionError::from(err) {
            ActionError::Retry { message, after } => {
                assert!(
                    message.starts_with("app database unavailable for the `order` lookup"),
                    "{message}"
                );
                assert_eq!(after, None);
            }
            other => panic!("{kind}: expected a retry, got {other:?}"),
        }
    }
}

/// `[app] database_url` serves the lookups; writes stay on the app's own DB_* connection.
#[tokio::test]
async fn database_url_reads_through_its_own_connection() {
    let w = World::new(DbKind::MySql);
    load_fixture_app(&w);
    let port = closed_port().to_string();
    let section = AppSection {
        database_url: Some(format!("mysql://root@127.0.0.1:3306/{}", w.db_name)),
        ..AppSection::default()
    };
    // DB_* points at nothing: reads still work through database_url.
    let app = app_data(&w, &section, &[("DB_PORT", &port)]).await;
    let b = app.order(1).await.expect("lookup").expect("order 1");
    assert_eq!(b.order.str("order_number").as_deref(), Some("PITS1001"));
    let err = app
        .execute("whatsapp_log", "DELETE FROM whatsapp_messages_log", &[])
        .await
        .unwrap_err();
    assert!(matches!(err, AppDataError::Unavailable { .. }), "{err:?}");
}
