//! The restaurant's new-order text, built from the order rows exactly as the app's
//! `helper::whatsappmessage` builds it (docs/restrosaas.md §4.7): the vendor's `settings.item_message`
//! per order line (plus one line per extra), the tax lines, then `settings.whatsapp_message` with its
//! `{placeholders}` replaced in the app's order, amounts through `helper::currency_formate`
//! (docs/restrosaas.md §4.9).
//!
//! Decisions where the app cannot work as written (docs/restrosaas.md §9), each reproduced by the PHP re-creation in
//! `fixtures/app/php/whatsapp_message.php`:
//! - an empty or NULL `whatsapp_message` / `item_message` uses the text `helper::vendor_register`
//!   stores for new vendors (the app would send an empty message);
//! - the settings are the vendor's own row (`settings.vendor_id = orders.vendor_id`), else the app's
//!   fallback settings object (`helper::appdata` in a worker would not find the vendor's row);
//! - a column the code reads that the database lacks (no migration creates it) is replaced by the one
//!   that exists: `order_notes` → `notes`, `discount_amount` → `offer_amount`, `postal_code` →
//!   `pincode` (`sub_total` → `subtotal`, `delivery_charge` → `delivery_fee`, `grand_total` → `total`
//!   for forks); when the column exists its value is used, NULL included, as the app does;
//! - `customer_name` / `mobile` empty (orders from before their 2025-11 migration) →
//!   `user_name` / `user_mobile`;
//! - the app's text is URL-ish (`%0a` for newlines, for a wa.me link): `%0a` becomes `\n` and `\r`
//!   is dropped, nothing else is decoded;
//! - a non-numeric quantity or price counts as 0 (PHP 8 would throw a TypeError and send nothing).
//!
//! Pure: rows in, text out. No database, no logging.

use crate::app::{OrderLine, Row};

use super::format::{line_total, Currency, PhpScalar};

/// The vendor template `helper::vendor_register` writes for new vendors (LF line endings).
pub const DEFAULT_WHATSAPP_MESSAGE: &str = "Hi,
I would like to place an order 👇
*{delivery_type}* Order No: {order_no}
---------------------------
{item_variable}
---------------------------
👉Subtotal : {sub_total}
{total_tax}
👉Delivery charge : {delivery_charge}
👉Discount : - {discount_amount}
---------------------------
📃 Total : {grand_total}
---------------------------
📄 Comment : {notes}

✅ Customer Info

Customer name : {customer_name}
Customer phone : {customer_mobile}

📍 Delivery Details

Address : {address}, {building}, {landmark}, {postal_code}

---------------------------
Date : {date}
Time : {time}
---------------------------
💳 Payment type :
{payment_type}

{store_name} will confirm your order upon receiving the message.

Track your order 👇
{track_order_url}

Click here for next order 👇
{store_url}";

/// The per-line template `helper::vendor_register` writes for new vendors.
pub const DEFAULT_ITEM_MESSAGE: &str = "🔵 {qty} X {item_name} {variantsdata} - {item_price}";

/// The rows one message is built from.
#[derive(Debug, Clone, Copy)]
pub struct OrderRows<'a> {
    /// The `orders` row.
    pub order: &'a Row,
    /// Its `order_details` rows, in id order, on either of the table's column families.
    pub items: &'a [OrderLine],
    /// The vendor's `users` row (`name`, `slug`, `mobile`).
    pub vendor: &'a Row,
    /// The vendor's `settings` row, if there is one.
    pub settings: Option<&'a Row>,
    /// `payments.payment_name` for `orders.payment_type` and the vendor, if found.
    pub payment_name: Option<&'a str>,
}

/// What does not come from the rows.
#[derive(Debug, Clone)]
pub struct MessageContext {
    /// `APP_URL`, the root of the track and store URLs.
    pub app_url: String,
    /// `trans('labels.delivery')` / `trans('labels.pickup')` (both locales say `Delivery` / `Pickup`).
    pub delivery_label: String,
    pub pickup_label: String,
}

impl Default for MessageContext {
    fn default() -> Self {
        MessageContext {
            app_url: "http://localhost".into(),
            delivery_label: "Delivery".into(),
            pickup_label: "Pickup".into(),
        }
    }
}

/// PHP's `str_replace(array, array, subject)`: each pair in turn over the result of the previous one.
pub fn expand(template: &str, pairs: &[(&str, String)]) -> String {
    let mut out = template.to_owned();
    for (search, replace) in pairs {
        if !search.is_empty() && out.contains(search) {
            out = out.replace(search, replace);
        }
    }
    out
}

/// The app's `%0a` newlines back to `\n`, without `\r`.
pub fn unescape(text: &str) -> String {
    text.replace("%0a", "\n").replace('\r', "")
}

fn scalar(row: &Row, column: &str) -> PhpScalar {
    PhpScalar::from_sql(row.get(column))
}

/// The first of `columns` the row has (NULL included): a fallback only for a missing column.
fn first_present(row: &Row, columns: &[&str]) -> PhpScalar {
    columns
        .iter()
        .find(|c| row.has(c))
        .map_or(PhpScalar::Null, |c| scalar(row, c))
}

/// The first of `columns` with non-empty text (texts), else "".
fn first_text(row: &Row, columns: &[&str]) -> String {
    columns
        .iter()
        .map(|c| scalar(row, c).to_php_string())
        .find(|s| !s.is_empty())
        .unwrap_or_default()
}

/// PHP's `explode('|', (string)$x)`.
fn explode(value: &PhpScalar) -> Vec<String> {
    value
        .to_php_string()
        .split('|')
        .map(str::to_owned)
        .collect()
}

/// The `settings` text column, or the default when empty/NULL/absent.
fn template_or(settings: Option<&Row>, column: &str, default: &str) -> String {
    settings
        .and_then(|s| s.non_empty(column))
        .unwrap_or_else(|| default.to_owned())
}

/// Laravel's `URL::to($path)` on the root `app_url`.
fn url_to(app_url: &str, path: &str) -> String {
    let (path, query) = match path.find('?') {
        Some(i) => (&path[..i], &path[i..]),
        None => (path, ""),
    };
    let root = app_url.trim_end_matches('/');
    let url = format!("{root}/{}", path.trim_matches('/'));
    format!("{}{query}", url.trim_matches('/'))
}

/// `{item_variable}`: one line per order line and per extra, each preceded by `%0a`.
fn item_lines(rows: &OrderRows<'_>, currency: &Currency) -> String {
    let item_message = template_or(rows.settings, "item_message", DEFAULT_ITEM_MESSAGE);
    let php = |v: &crate::app::SqlValue| PhpScalar::from_sql(Some(v));
    let mut lines = vec![String::new()];
    for item in rows.items {
        let variants = item.variant.as_ref().map_or_else(String::new, |name| {
            format!("({})", php(name).to_php_string())
        });
        lines.push(expand(
            &item_message,
            &[
                ("{qty}", php(&item.qty).to_php_string()),
                ("{item_name}", php(&item.name).to_php_string()),
                ("{variantsdata}", variants),
                ("{item_price}", currency.format_f64(line_total(item))),
            ],
        ));
        if let Some(extras) = &item.extras {
            let ids = explode(&php(&extras.ids));
            let names = explode(&php(&extras.names));
            let prices = explode(&php(&extras.prices));
            for k in 0..ids.len() {
                let name = names.get(k).map_or("", String::as_str);
                let price = prices
                    .get(k)
                    .map_or(PhpScalar::Null, |p| PhpScalar::Str(p.clone()));
                lines.push(format!("👉{name}:{}", currency.format(&price)));
            }
        }
    }
    lines.join("|").replace('|', "%0a")
}

/// `{total_tax}`: one line per `|`-separated tax, each preceded by `%0a`.
fn tax_lines(order: &Row, currency: &Currency) -> String {
    let taxes = explode(&scalar(order, "tax"));
    let names = explode(&scalar(order, "tax_name"));
    let mut lines = vec![String::new()];
    for (k, tax) in taxes.iter().enumerate() {
        let name = names.get(k).map_or("", String::as_str);
        let amount = PhpScalar::Float(super::format::floatval(tax));
        lines.push(format!("👉{name} : {}", currency.format(&amount)));
    }
    lines.join("|").replace('|', "%0a")
}

/// The placeholders of `settings.whatsapp_message`, in the app's replacement order, with the app's
/// raw values (`%0a` newlines inside the two list placeholders).
pub fn placeholders(rows: &OrderRows<'_>, ctx: &MessageContext) -> Vec<(&'static str, String)> {
    let order = rows.order;
    let currency = Currency::from_settings(rows.settings);
    let money = |columns: &[&str]| currency.format(&first_present(order, columns));
    let order_number = scalar(order, "order_number").to_php_string();
    let slug = scalar(rows.vendor, "slug").to_php_string();
    let delivery_type = if scalar(order, "order_type").loose_eq_int(1) {
        ctx.delivery_label.clone()
    } else {
        ctx.pickup_label.clone()
    };
    vec![
        ("{delivery_type}", delivery_type),
        ("{order_no}", order_number.clone()),
        ("{item_variable}", item_lines(rows, &currency)),
        ("{sub_total}", money(&["sub_total", "subtotal"])),
        ("{total_tax}", tax_lines(order, &currency)),
        (
            "{delivery_charge}",
            money(&["delivery_charge", "delivery_fee"]),
        ),
        (
            "{discount_amount}",
            money(&["discount_amount", "offer_amount"]),
        ),
        ("{grand_total}", money(&["grand_total", "total"])),
        (
            "{notes}",
            first_present(order, &["order_notes", "notes"]).to_php_string(),
        ),
        (
            "{customer_name}",
            first_text(order, &["customer_name", "user_name"]),
        ),
        (
            "{customer_mobile}",
            first_text(order, &["mobile", "user_mobile"]),
        ),
        ("{address}", scalar(order, "address").to_php_string()),
        ("{building}", scalar(order, "building").to_php_string()),
        ("{landmark}", scalar(order, "landmark").to_php_string()),
        (
            "{postal_code}",
            first_present(order, &["postal_code", "pincode"]).to_php_string(),
        ),
        ("{date}", scalar(order, "delivery_date").to_php_string()),
        ("{time}", scalar(order, "delivery_time").to_php_string()),
        (
            "{payment_type}",
            rows.payment_name.unwrap_or_default().to_owned(),
        ),
        ("{store_name}", scalar(rows.vendor, "name").to_php_string()),
        (
            "{track_order_url}",
            url_to(&ctx.app_url, &format!("{slug}/track-order/{order_number}")),
        ),
        ("{store_url}", url_to(&ctx.app_url, &slug)),
    ]
}

/// The restaurant's new-order text, ready to send.
pub fn vendor_message(rows: &OrderRows<'_>, ctx: &MessageContext) -> String {
    let template = template_or(rows.settings, "whatsapp_message", DEFAULT_WHATSAPP_MESSAGE);
    let text = expand(&template.replace('\n', "%0a"), &placeholders(rows, ctx));
    unescape(&text)
}

/// Values for template-message parameters: the placeholders above (newlines restored) plus
/// `{order_number}` (the config templates' name for `{order_no}`), `{order_id}` and `{store_mobile}`.
pub fn parameter_values(rows: &OrderRows<'_>, ctx: &MessageContext) -> Vec<(&'static str, String)> {
    let mut values: Vec<(&'static str, String)> = placeholders(rows, ctx)
        .into_iter()
        .map(|(k, v)| (k, unescape(&v)))
        .collect();
    values.push((
        "{order_number}",
        scalar(rows.order, "order_number").to_php_string(),
    ));
    values.push(("{order_id}", scalar(rows.order, "id").to_php_string()));
    values.push((
        "{store_mobile}",
        scalar(rows.vendor, "mobile").to_php_string(),
    ));
    values
}

/// One template parameter: placeholders expanded, flattened to one line (Meta refuses newlines, tabs
/// and long runs of spaces in parameters), never empty (Meta refuses empty parameters).
pub fn parameter(template: &str, values: &[(&'static str, String)]) -> String {
    let text = expand(template, values);
    let flat = text
        .split('\n')
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    if flat.is_empty() {
        "-".into()
    } else {
        flat
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{LineColumns, SqlValue};

    fn text(s: &str) -> SqlValue {
        SqlValue::Text(s.into())
    }

    /// The rows as lines of a table with `columns`.
    fn lines(columns: &str, rows: Vec<Row>) -> Vec<OrderLine> {
        let columns: Vec<String> = columns.split_whitespace().map(str::to_owned).collect();
        let detected = LineColumns::detect("order_details", &columns).expect("a family");
        rows.into_iter().map(|r| detected.line(r)).collect()
    }

    const CODE_COLUMNS: &str =
        "item_name qty price item_price variants_id variants_name variants_price extras_id extras_name extras_price";

    #[test]
    fn default_templates_and_fallback_settings() {
        let order = Row::from_pairs([
            ("id", SqlValue::Int(7)),
            ("order_number", text("PITS1001")),
            ("order_type", SqlValue::Int(1)),
            ("sub_total", SqlValue::Float(25.0)),
            ("tax", text("2.50")),
            ("delivery_charge", SqlValue::Float(3.0)),
            ("offer_amount", SqlValue::Float(1.0)),
            ("grand_total", SqlValue::Float(29.5)),
            ("customer_name", text("Awa")),
            ("mobile", text("0708091011")),
            ("address", text("Rue 12")),
            ("pincode", text("01 BP 1")),
            ("delivery_date", text("2025-11-15")),
            ("delivery_time", text("14:30:00")),
        ]);
        let items = lines(
            CODE_COLUMNS,
            vec![
                Row::from_pairs([
                    ("item_name", text("Attiéké")),
                    ("qty", SqlValue::Int(2)),
                    ("price", SqlValue::Float(10.0)),
                    ("variants_id", text("")),
                    ("extras_id", text("3|4")),
                    ("extras_name", text("Piment|Oignon")),
                    ("extras_price", text("0.5|1")),
                ]),
                Row::from_pairs([
                    ("item_name", text("Jus")),
                    ("qty", SqlValue::Int(1)),
                    ("price", SqlValue::Float(9.0)),
                    ("variants_id", SqlValue::Int(5)),
                    ("variants_name", text("Grand")),
                    ("variants_price", text("4.5")),
                ]),
            ],
        );
        let vendor = Row::from_pairs([("name", text("Chez Awa")), ("slug", text("chez-awa"))]);
        let rows = OrderRows {
            order: &order,
            items: &items,
            vendor: &vendor,
            settings: None,
            payment_name: Some("Cash On Delivery"),
        };
        let ctx = MessageContext {
            app_url: "https://resto.example/".into(),
            ..MessageContext::default()
        };
        let msg = vendor_message(&rows, &ctx);
        let expected = "Hi,\nI would like to place an order 👇\n*Delivery* Order No: PITS1001\n---------------------------\n\n🔵 2 X Attiéké  - XOF 20.00\n👉Piment:XOF 0.50\n👉Oignon:XOF 1.00\n🔵 1 X Jus (Grand) - XOF 4.50\n---------------------------\n👉Subtotal : XOF 25.00\n\n👉 : XOF 2.50\n👉Delivery charge : XOF 3.00\n👉Discount : - XOF 1.00\n---------------------------\n📃 Total : XOF 29.50\n---------------------------\n📄 Comment : \n\n✅ Customer Info\n\nCustomer name : Awa\nCustomer phone : 0708091011\n\n📍 Delivery Details\n\nAddress : Rue 12, , , 01 BP 1\n\n---------------------------\nDate : 2025-11-15\nTime : 14:30:00\n---------------------------\n💳 Payment type :\nCash On Delivery\n\nChez Awa will confirm your order upon receiving the message.\n\nTrack your order 👇\nhttps://resto.example/chez-awa/track-order/PITS1001\n\nClick here for next order 👇\nhttps://resto.example/chez-awa";
        assert_eq!(msg, expected);
    }

    #[test]
    fn item_lines_read_the_same_on_the_migrations_schema() {
        let code = lines(
            CODE_COLUMNS,
            vec![
                Row::from_pairs([
                    ("item_name", text("Poulet braisé")),
                    ("qty", SqlValue::Int(2)),
                    ("price", text("4500.00")),
                    ("item_price", SqlValue::Null),
                    ("variants_id", text("")),
                    ("extras_id", text("")),
                ]),
                Row::from_pairs([
                    ("item_name", text("Jus")),
                    ("qty", SqlValue::Int(1)),
                    ("price", SqlValue::Float(900.0)),
                    ("variants_id", SqlValue::Int(5)),
                    ("variants_name", text("Grand")),
                    ("variants_price", SqlValue::Float(1500.0)),
                    ("extras_id", SqlValue::Null),
                ]),
            ],
        );
        let migration = lines(
            "product_name qty product_price variation_id variation_name",
            vec![
                Row::from_pairs([
                    ("product_name", text("Poulet braisé")),
                    ("qty", SqlValue::Int(2)),
                    ("product_price", SqlValue::Float(4500.0)),
                    ("variation_id", SqlValue::Null),
                ]),
                Row::from_pairs([
                    ("product_name", text("Jus")),
                    ("qty", SqlValue::Int(1)),
                    ("product_price", SqlValue::Float(1500.0)),
                    ("variation_id", SqlValue::Int(5)),
                    ("variation_name", text("Grand")),
                ]),
            ],
        );
        let vendor = Row::default();
        let order = Row::default();
        let render = |items: &[OrderLine]| {
            let rows = OrderRows {
                order: &order,
                items,
                vendor: &vendor,
                settings: None,
                payment_name: None,
            };
            unescape(&item_lines(&rows, &Currency::from_settings(None)))
        };
        assert_eq!(
            render(&code),
            "\n🔵 2 X Poulet braisé  - XOF 9,000.00\n🔵 1 X Jus (Grand) - XOF 1,500.00"
        );
        assert_eq!(render(&migration), render(&code));
    }

    #[test]
    fn vendor_templates_replace_in_order_and_keep_user_text() {
        let order = Row::from_pairs([
            ("order_number", text("A|B")),
            ("order_type", text("2")),
            ("customer_name", text("{order_no} 100%0a")),
        ]);
        let settings = Row::from_pairs([
            (
                "whatsapp_message",
                text("{delivery_type}\r\n{customer_name}|{order_no}"),
            ),
            ("item_message", text("")),
        ]);
        let vendor = Row::default();
        let rows = OrderRows {
            order: &order,
            items: &[],
            vendor: &vendor,
            settings: Some(&settings),
            payment_name: None,
        };
        // `{order_no}` is replaced before `{customer_name}`, so a name holding `{order_no}` stays
        // literal; `|` outside the item and tax lists is kept; `%0a` anywhere becomes a newline.
        let msg = vendor_message(&rows, &MessageContext::default());
        assert_eq!(msg, "Pickup\n{order_no} 100\n|A|B");
    }

    #[test]
    fn template_parameters_are_single_lines() {
        let values = vec![(
            "{item_variable}",
            "\n🔵 2 X A  - XOF 1.00\n👉x:XOF 0.00".to_owned(),
        )];
        assert_eq!(
            parameter("{item_variable}", &values),
            "🔵 2 X A - XOF 1.00, 👉x:XOF 0.00"
        );
        assert_eq!(parameter("{nothing}", &[]), "{nothing}");
        assert_eq!(parameter(" ", &[]), "-");
        assert_eq!(url_to("http://h/", ""), "http://h");
    }
}
