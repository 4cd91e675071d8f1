//! The app's tables and the columns the native actions read from them (docs/restrosaas.md §7), on the
//! connection the lookups use (`[app] database_url`, else DB_*), and which order-line column family
//! will be read. A lookup whose SQL `[app.queries]` changes is run as configured and not checked here.

use super::database::missing;
use super::model::Checks;
use crate::app::line::table_columns;
use crate::app::{AppData, AppQueries, AppSection};
use crate::config::Settings;

/// One table a lookup reads.
struct Use {
    table: &'static str,
    /// Its key under `[app.queries]`.
    lookup: &'static str,
    columns: &'static [&'static str],
    /// The actions work without it (fewer details, or no log row).
    optional: bool,
}

const USES: &[Use] = &[
    Use {
        table: "orders",
        lookup: "order",
        columns: &["id", "vendor_id", "order_number", "grand_total"],
        optional: false,
    },
    Use {
        table: "order_details",
        lookup: "order_items",
        columns: &["order_id", "qty"],
        optional: false,
    },
    Use {
        table: "users",
        lookup: "vendor",
        columns: &["id", "name", "email", "mobile"],
        optional: false,
    },
    Use {
        table: "settings",
        lookup: "settings",
        columns: &["vendor_id", "currency", "whatsapp_message", "contact"],
        optional: false,
    },
    Use {
        table: "payments",
        lookup: "payment",
        columns: &["vendor_id", "payment_type", "payment_name"],
        optional: true,
    },
    Use {
        table: "customers",
        lookup: "customer",
        columns: &["id"],
        optional: true,
    },
    Use {
        table: "restaurants",
        lookup: "restaurant",
        columns: &["user_id"],
        optional: true,
    },
];

/// Returns whether the app's database is configured (the app's actions run natively only then).
pub(super) async fn check(c: &mut Checks, settings: &Settings) -> bool {
    let section = match AppSection::from_file(settings.file()) {
        Ok(s) => s,
        Err(e) => {
            c.fail("app.config", e.to_string(), "fix [app] in the config file");
            return false;
        }
    };
    let app = match AppData::from_lookup(&section, &settings.lookup()).await {
        Ok(Some(app)) => app,
        Ok(None) => {
            c.warn(
                "app.database",
                "no app database (DB_* or [app] database_url): the app's actions are handed to PHP",
                None,
            );
            return false;
        }
        Err(e) => {
            let fix = c.set("the DB_* key named (or [app] database_url)", "");
            c.fail("app.database", format!("{e:#}"), fix);
            return false;
        }
    };
    let defaults = AppQueries::default();
    for u in USES {
        let name = format!("app.{}", u.table);
        if query(&section.queries, u.lookup) != query(&defaults, u.lookup) {
            c.pass(
                &name,
                format!(
                    "[app.queries] {} is the config file's own SQL: not checked",
                    u.lookup
                ),
            );
            continue;
        }
        let cols = match table_columns(app.db(), u.table).await {
            Ok(cols) => cols,
            Err(e) => {
                c.fail(
                    &name,
                    e.to_string(),
                    "see the error: the database or its user's rights",
                );
                return true;
            }
        };
        let missing = missing(&cols, u.columns);
        let problem = if cols.is_empty() {
            Some(format!(
                "the table `{}` does not exist in {}",
                u.table,
                app.describe()
            ))
        } else if !missing.is_empty() {
            Some(format!(
                "`{}` has no column {}",
                u.table,
                missing.join(", ")
            ))
        } else {
            None
        };
        match problem {
            Some(p) if u.optional => c.warn(&name, format!("{p}: the messages leave it out"), None),
            Some(p) => c.fail(
                &name,
                p,
                format!(
                    "run the app's migrations (`php artisan migrate`), or point [app.queries] {} at \
                     the table that holds it",
                    u.lookup
                ),
            ),
            None => c.pass(&name, format!("`{}`: {}", u.table, u.columns.join(", "))),
        }
    }
    lines(c, &app).await;
    match app.has_table("whatsapp_messages_log").await {
        Ok(true) => c.pass(
            "app.whatsapp_messages_log",
            "present: each send is recorded",
        ),
        Ok(false) => c.warn(
            "app.whatsapp_messages_log",
            "missing: sends are not recorded (the app's migration 2025_10_23_003335 creates it)",
            None,
        ),
        Err(e) => c.fail("app.whatsapp_messages_log", e.to_string(), "see the error"),
    }
    true
}

/// The order-line column family the actions will read, from the table `[app.queries] order_items`
/// names (docs/restrosaas.md §7.2).
async fn lines(c: &mut Checks, app: &AppData) {
    match app.order_columns().await {
        Ok(lc) => {
            let also = match lc.families() {
                [_, other] => format!(", then {other} where it is empty"),
                _ => String::new(),
            };
            c.pass(
                "app.order_lines",
                format!("`{}`: the {} column family{also}", lc.table(), lc.family()),
            );
        }
        Err(e) => c.fail(
            "app.order_lines",
            e.to_string(),
            "point [app.queries] order_items at the app's order lines (item_name + price, or \
             product_name + product_price)",
        ),
    }
}

fn query<'a>(q: &'a AppQueries, lookup: &str) -> &'a str {
    match lookup {
        "order" => &q.order,
        "order_items" => &q.order_items,
        "vendor" => &q.vendor,
        "settings" => &q.settings,
        "payment" => &q.payment,
        "customer" => &q.customer,
        _ => &q.restaurant,
    }
}
