//! Order lines on both of the app's `order_details` schemas (docs/restrosaas.md §9.21): the migration's
//! `product_*` columns and the code's `item_*` columns. The family is read from the catalogue of real
//! MariaDB, PostgreSQL and SQLite, once per pool; a table with neither is a permanent error naming the
//! table and the columns. End to end, real Laravel dispatches the app's WhatsApp and e-mail actions for
//! a two-line order on each schema and `defer-worker work` runs them: the text the Cloud API stub
//! receives lists both lines and is byte for byte the same on both schemas and the same as the app's
//! formatter (re-created in PHP) on the `item_*` one; the mails the SMTP server receives are the same.

use std::time::Duration;

use defer_worker::actions::ActionError;
use defer_worker::app::{AppDataError, AppSection, LineFamily, LinePrice, SqlValue};
use defer_worker::laravel::failed_jobs::FailedJob;
use serde_json::Value as Json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

use crate::actions_cache::world;
use crate::actions_e2e::{text_of, via};
use crate::actions_email::{make_certs, Smtp};
use crate::actions_whatsapp::{ok, php_text};
use crate::app_data::{app_data, load_fixture_app, sql};
use crate::support::{DbKind, World};

/// The code's columns, as `helper::createorder` (unit `price`) and the web checkout (`item_price`)
/// write them; portable SQL for the three databases.
const ITEM_TABLE: &str = "CREATE TABLE order_details (id INT PRIMARY KEY, vendor_id INT NULL, \
     order_id INT NOT NULL, item_id INT NULL, item_name VARCHAR(255) NULL, item_image VARCHAR(255) NULL, \
     price DOUBLE PRECISION NULL, item_price DOUBLE PRECISION NULL, variants_id VARCHAR(255) NULL, \
     variants_name VARCHAR(255) NULL, variants_price DOUBLE PRECISION NULL, extras_id TEXT NULL, \
     extras_name TEXT NULL, extras_price TEXT NULL, qty INT NOT NULL DEFAULT 1, \
     created_at TIMESTAMP NULL, updated_at TIMESTAMP NULL)";

/// Order 1's two lines as `helper::createorder` writes them: 2 × 4500 and one variant at 1500.
const ITEM_ROWS: &str = "INSERT INTO order_details (id, vendor_id, order_id, item_id, item_name, \
     item_image, price, item_price, variants_id, variants_name, variants_price, extras_id, extras_name, \
     extras_price, qty) VALUES \
     (1, 1, 1, 11, 'Poulet braisé', 'poulet.png', 4500, NULL, '', '', 0, '', '', '', 2), \
     (2, 1, 1, 12, 'Attiéké', 'attieke.png', 1000, NULL, '7', 'Grande portion', 1500, '', '', '', 1)";

/// The migration's columns (`2022_12_10_051230_create_order_details_table`).
const PRODUCT_TABLE: &str =
    "CREATE TABLE order_details (id INT PRIMARY KEY, vendor_id INT NOT NULL, \
     user_id INT NULL, session_id TEXT NULL, order_id INT NOT NULL, product_id INT NOT NULL, \
     product_name VARCHAR(255) NOT NULL, product_slug VARCHAR(255) NOT NULL, \
     product_image VARCHAR(255) NOT NULL, attribute VARCHAR(255) NULL, variation_id INT NULL, \
     variation_name VARCHAR(255) NULL, product_price DOUBLE PRECISION NOT NULL, \
     product_tax DOUBLE PRECISION NOT NULL, qty INT NOT NULL DEFAULT 1, created_at TIMESTAMP NULL, \
     updated_at TIMESTAMP NULL)";

/// The same two lines in the migration's columns (`product_price` is the unit price).
const PRODUCT_ROWS: &str = "INSERT INTO order_details (id, vendor_id, order_id, product_id, \
     product_name, product_slug, product_image, variation_id, variation_name, product_price, \
     product_tax, qty) VALUES \
     (1, 1, 1, 11, 'Poulet braisé', 'poulet-braise', 'poulet.png', NULL, NULL, 4500, 0, 2), \
     (2, 1, 1, 12, 'Attiéké', 'attieke', 'attieke.png', 7, 'Grande portion', 1500, 0, 1)";

/// What both lines must read as in the app's default `item_message`.
const LINES: &str =
    "🔵 2 X Poulet braisé  - XOF 9,000.00\n🔵 1 X Attiéké (Grande portion) - XOF 1,500.00\n";

/// Replaces the fixture's `order_details` (a table of this test's own database) with `table` + `rows`.
fn order_details(w: &World, table: &str, rows: &str) {
    sql(w, "DROP TABLE order_details");
    sql(w, table);
    if !rows.is_empty() {
        sql(w, rows);
    }
}

async fn detection_on(db: DbKind) {
    let w = World::new(db);
    load_fixture_app(&w);
    let section = AppSection::default();

    // The fixture's table has both families: the code's is read first.
    let app = app_data(&w, &section, &[]).await;
    let both = app.order_columns().await.expect("detected").clone();
    assert_eq!(both.families(), [LineFamily::Item, LineFamily::Product]);
    assert_eq!(both.table(), "order_details");

    // The migration's schema. The pool that already looked keeps its answer (one catalogue read per
    // pool, not per job); a new pool reads the catalogue again.
    order_details(&w, PRODUCT_TABLE, PRODUCT_ROWS);
    assert_eq!(app.order_columns().await.expect("cached"), &both);
    let app = app_data(&w, &section, &[]).await;
    let b = app.order(1).await.expect("lookup").expect("order 1");
    let columns = app.order_columns().await.expect("detected");
    assert_eq!(columns.families(), [LineFamily::Product], "{db:?}");
    assert_eq!(columns.to_string(), "order_details: product_* columns");
    let names: Vec<_> = b.items.iter().filter_map(|l| l.name.text()).collect();
    assert_eq!(names, ["Poulet braisé", "Attiéké"], "{db:?}");
    assert_eq!(b.items[0].qty, SqlValue::Int(2));
    assert_eq!(b.items[0].price, LinePrice::Unit(SqlValue::Float(4500.0)));
    assert_eq!(b.items[0].variant, None);
    assert_eq!(
        b.items[1].variant,
        Some(SqlValue::Text("Grande portion".into()))
    );
    assert_eq!(b.items[1].price, LinePrice::Unit(SqlValue::Float(1500.0)));

    // The code's schema: the same lines, the variant priced by its own column.
    order_details(&w, ITEM_TABLE, ITEM_ROWS);
    let app = app_data(&w, &section, &[]).await;
    let c = app.order(1).await.expect("lookup").expect("order 1");
    assert_eq!(
        app.order_columns().await.expect("detected").families(),
        [LineFamily::Item]
    );
    for (i, (line, product)) in c.items.iter().zip(&b.items).enumerate() {
        let read = |l: &defer_worker::app::OrderLine| {
            (
                l.name.clone(),
                l.qty.clone(),
                l.variant.clone(),
                l.price.clone(),
            )
        };
        assert_eq!(read(line), read(product), "line {i} on {db:?}");
    }

    // Neither family: every order lookup fails, permanently, naming the table and the columns.
    order_details(
        &w,
        "CREATE TABLE order_details (id INT PRIMARY KEY, order_id INT NOT NULL, name VARCHAR(255) NULL, qty INT NULL)",
        "",
    );
    let app = app_data(&w, &section, &[]).await;
    let err = app.order(1).await.expect_err("no family");
    assert!(matches!(err, AppDataError::Columns { .. }), "{err:?}");
    let msg = err.to_string();
    for part in [
        "`order_details`",
        "item_name with price or item_price",
        "product_name with product_price",
        "it has: id, order_id, name, qty",
    ] {
        assert!(msg.contains(part), "{part:?} in {msg}");
    }
    assert!(matches!(
        ActionError::from(err),
        ActionError::Permanent { .. }
    ));
    // The order that does not exist is still just not found: the table is only read for an order.
    assert!(app.order(123_456).await.expect("lookup").is_none());
    // What shows no lines still reads the order.
    let summary = app.order_without_lines(1).await.expect("lookup");
    assert_eq!(
        summary.map(|b| (b.order.str("order_number"), b.items.len())),
        Some((Some("PITS1001".to_owned()), 0))
    );

    // No such table: permanent too, saying so.
    sql(&w, "DROP TABLE order_details");
    let app = app_data(&w, &section, &[]).await;
    let err = app.order(1).await.expect_err("no table");
    assert!(
        err.is_missing_table() && err.to_string().contains("`order_details` does not exist"),
        "{err}"
    );
}

#[tokio::test]
async fn families_are_detected_on_mariadb() {
    detection_on(DbKind::MySql).await;
}

#[tokio::test]
async fn families_are_detected_on_postgresql() {
    detection_on(DbKind::Postgres).await;
}

#[tokio::test]
async fn families_are_detected_on_sqlite() {
    detection_on(DbKind::Sqlite).await;
}

/// What one schema gives end to end: the jobs' uuids and outcomes, the WhatsApp texts, the PHP
/// formatter's text for the same rows (on the code's schema, the one it reads), and the mails (without
/// their Date and Message-ID).
struct Sent {
    whatsapp: String,
    email: String,
    analytics: String,
    done: Vec<String>,
    failed: Vec<FailedJob>,
    /// The start-up report: the family detected, or why there is none.
    report: String,
    texts: Vec<String>,
    php: Option<String>,
    mails: Vec<Json>,
}

impl Sent {
    /// Every job done, one message sent: its text.
    fn text(&self) -> &str {
        let mut expected = vec![
            self.whatsapp.clone(),
            self.email.clone(),
            self.analytics.clone(),
        ];
        expected.sort();
        assert_eq!(self.done, expected, "failed: {:?}", self.failed);
        assert_eq!(self.texts.len(), 1, "one WhatsApp message");
        &self.texts[0]
    }
}

async fn run_order_on(table: &str, rows: &str) -> Sent {
    let (mut w, _db1) = world("redis", DbKind::MySql);
    load_fixture_app(&w);
    order_details(&w, table, rows);
    let certs = make_certs(w.dir.path());
    let smtp = Smtp::start(w.dir.path(), &certs, "starttls", &[]);
    let meta = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v25.0/109876543210/messages"))
        .respond_with(ok("wamid.HBgLMjI1MDcwNzAwMDAwMRUCABIYFDNBQjM"))
        .mount(&meta)
        .await;
    for (k, v) in [
        ("WHATSAPP_API_URL", format!("{}/v25.0", meta.uri())),
        ("WHATSAPP_API_TOKEN", "EAAG-lines-token".to_owned()),
        ("WHATSAPP_PHONE_NUMBER_ID", "109876543210".to_owned()),
        ("APP_URL", "https://resto.test".to_owned()),
        ("MAIL_MAILER", "smtp".to_owned()),
        ("MAIL_HOST", "127.0.0.1".to_owned()),
        ("MAIL_PORT", smtp.port.to_string()),
        ("MAIL_ENCRYPTION", "tls".to_owned()),
        ("MAIL_USERNAME", "mailer".to_owned()),
        ("MAIL_PASSWORD", "s3cret-pass".to_owned()),
        ("MAIL_FROM_ADDRESS", "noreply@restro.test".to_owned()),
        ("MAIL_FROM_NAME", "RestroSaaS".to_owned()),
    ] {
        w.extra.push((k.to_owned(), v));
    }
    let wa = via(&w, "deferWhatsApp", None, r#"{"order_id":1}"#);
    let mail = via(&w, "deferEmail", None, r#"{"order_id":1}"#);
    let analytics = via(&w, "deferAnalytics", None, r#"{"order_id":1}"#);

    let config = format!(
        "[actions.whatsapp_notification]\nkind = \"whatsapp\"\n\
         [actions.email_notification]\nkind = \"email\"\nca_file = \"{}\"\n",
        certs.ca.display()
    );
    let mut worker = w.worker(&["--queue=whatsapp,emails,analytics", "--tries=1"], &config);
    worker.wait_for(Duration::from_secs(60), "every job settled", |logs| {
        logs.iter()
            .filter(|l| l["outcome"] == "done" || l["outcome"] == "failed")
            .count()
            >= 3
    });
    // The start-up report names the family (or says why there is none).
    let is_report = |l: &&Json| {
        l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("order lines"))
    };
    worker.wait_for(Duration::from_secs(30), "the order-lines report", |logs| {
        logs.iter().any(|l| is_report(&l))
    });
    let report = worker
        .logs()
        .iter()
        .find(is_report)
        .map_or_else(String::new, |l| {
            let field = l["order_lines"].as_str().or(l["error"].as_str());
            field.unwrap_or_default().to_owned()
        });
    worker.signal("TERM");
    assert!(
        worker.wait(Duration::from_secs(20)).success(),
        "{}",
        worker.log_text()
    );
    let mut done = worker.uuids("done");
    done.sort();
    // (World::failed runs its own runtime: off this one's threads.)
    let failed = std::thread::scope(|s| s.spawn(|| w.failed()).join().expect("read failed_jobs"));
    let requests = meta.received_requests().await.unwrap_or_default();
    let mails = smtp
        .mails()
        .into_iter()
        .map(|(mut m, _)| {
            let message = m["message"].as_object_mut().expect("parsed message");
            message.remove("date");
            message.remove("message_id");
            m
        })
        .collect();
    Sent {
        whatsapp: wa,
        email: mail,
        analytics,
        done,
        failed,
        report,
        texts: requests.iter().map(text_of).collect(),
        php: (table == ITEM_TABLE).then(|| php_text(&w, 1)),
        mails,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_schemas_send_the_same_whatsapp_text_and_mails() {
    let item = run_order_on(ITEM_TABLE, ITEM_ROWS).await;
    assert_eq!(item.report, "order_details: item_* columns");
    assert!(item.text().contains(LINES), "{}", item.text());
    assert_eq!(
        Some(item.text()),
        item.php.as_deref(),
        "the app's formatter on the code's schema"
    );

    let product = run_order_on(PRODUCT_TABLE, PRODUCT_ROWS).await;
    assert_eq!(product.report, "order_details: product_* columns");
    assert!(product.text().contains(LINES), "{}", product.text());
    assert_eq!(product.text(), item.text(), "byte for byte on both schemas");

    assert_eq!(item.mails.len(), 2, "{:#?}", item.mails);
    let subjects: Vec<_> = item
        .mails
        .iter()
        .map(|m| m["message"]["subject"].clone())
        .collect();
    assert_eq!(subjects, ["Order Invoice", "Order Invoice"]);
    assert!(item.mails.iter().all(|m| m["message"]["html"]
        .as_str()
        .is_some_and(|h| h.contains("Order Number : <b>#PITS1001</b>")
            && h.contains("Total Amount : <b>XOF 12,500.50</b>"))));
    assert_eq!(product.mails, item.mails, "the same mails on both schemas");
}

/// A table with neither family: the WhatsApp and e-mail jobs fail at once into failed_jobs, the reason
/// naming the table and the columns looked for; nothing is sent; analytics, which shows no lines, is
/// done; the worker carries on and stops cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neither_family_fails_the_jobs_with_the_table_and_columns_named() {
    let sent = run_order_on(
        "CREATE TABLE order_details (id INT PRIMARY KEY, order_id INT NOT NULL, label VARCHAR(255) NULL, qty INT NULL)",
        "INSERT INTO order_details (id, order_id, label, qty) VALUES (1, 1, 'Poulet braisé', 2)",
    )
    .await;
    assert_eq!(sent.done, std::slice::from_ref(&sent.analytics));
    assert!(
        sent.report.contains("table `order_details` has neither"),
        "{}",
        sent.report
    );
    assert!(sent.texts.is_empty() && sent.mails.is_empty());
    let mut uuids: Vec<&str> = sent.failed.iter().map(|f| f.uuid.as_str()).collect();
    uuids.sort();
    let mut expected = vec![sent.whatsapp.as_str(), sent.email.as_str()];
    expected.sort();
    assert_eq!(uuids, expected, "both jobs in failed_jobs");
    for f in &sent.failed {
        assert!(
            f.exception.contains("table `order_details` has neither")
                && f.exception.contains("product_name with product_price")
                && f.exception.contains("it has: id, order_id, label, qty"),
            "{}",
            f.exception
        );
    }
}
