//! The app's new-order mails (`helper::create_order_invoice`, docs/restrosaas.md §5.1): the fields its
//! `customerorderemail` / `vendororderemail` views show, gathered from an [`OrderBundle`] and formatted
//! as the app formats them, and the minijinja templates that turn them into an HTML body and a text
//! alternative (shipped in `templates/email/`, overridable per file from a directory).
//!
//! Pure: no I/O after [`Templates::load`], no logging, no sending. Recipient addresses are handed back
//! to the caller ([`Invoice`]) and never end up in an error message.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use minijinja::Environment;
use serde::Serialize;

use crate::actions::whatsapp::format::{line_total, Currency, PhpScalar};
use crate::app::{fallback_settings, OrderBundle, OrderLine, Row};

use super::date;

/// Which of the two mails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailKind {
    /// `customerorderemail`, to the customer.
    Customer,
    /// `vendororderemail`, to the restaurant.
    Vendor,
}

impl MailKind {
    /// In the app's order: the customer's mail first.
    pub const ALL: [MailKind; 2] = [MailKind::Customer, MailKind::Vendor];

    /// The step name in the idempotency ledger.
    pub fn step(self) -> &'static str {
        match self {
            MailKind::Customer => "email:customer",
            MailKind::Vendor => "email:vendor",
        }
    }

    /// For logs and error messages.
    pub fn label(self) -> &'static str {
        match self {
            MailKind::Customer => "customer",
            MailKind::Vendor => "vendor",
        }
    }

    fn template(self) -> &'static str {
        match self {
            MailKind::Customer => "customer_order",
            MailKind::Vendor => "vendor_order",
        }
    }
}

/// A recipient.
#[derive(Clone, PartialEq, Eq)]
pub struct Addressee {
    pub name: String,
    pub email: String,
}

impl std::fmt::Debug for Addressee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Addresses stay out of logs and panics above debug.
        f.write_str("Addressee(..)")
    }
}

/// What the templates see.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvoiceFields {
    /// The HTML `<title>`: the subject.
    pub title: String,
    pub customer_name: String,
    pub company_name: String,
    pub order_number: String,
    /// `orders.order_type` (the app passes it; its views do not show it).
    pub order_type: String,
    /// `helper::date_format(delivery_date)`: the vendor's `settings.date_format`.
    pub delivery_date: String,
    /// `orders.delivery_time` as stored.
    pub delivery_time: String,
    /// `helper::currency_formate(grand_total)` with the vendor's settings.
    pub grand_total: String,
    pub track_url: String,
    /// Every `orders` column, as text (for custom templates).
    pub order: BTreeMap<String, String>,
    /// The `order_details` rows, as text, every column by its own name.
    pub items: Vec<BTreeMap<String, String>>,
    /// The same lines with the same names on both of the app's `order_details` schemas
    /// (docs/restrosaas.md §7.2), for custom templates (the app's own views show no lines).
    pub lines: Vec<MailLine>,
    /// The vendor's `name`, `email`, `slug`, `mobile` (never its password or tokens).
    pub vendor: BTreeMap<&'static str, String>,
}

/// One order line for the templates, whichever column family its table has.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MailLine {
    pub name: String,
    pub quantity: String,
    /// The variant's name, empty without one.
    pub variant: String,
    /// The line's total (quantity included), formatted as the app formats money.
    pub total: String,
}

impl MailLine {
    fn new(line: &OrderLine, currency: &Currency) -> MailLine {
        let text = |v: &crate::app::SqlValue| PhpScalar::from_sql(Some(v)).to_php_string();
        MailLine {
            name: text(&line.name),
            quantity: text(&line.qty),
            variant: line.variant.as_ref().map(text).unwrap_or_default(),
            total: currency.format_f64(line_total(line)),
        }
    }
}

/// The fields plus who gets which mail.
#[derive(Debug, Clone, PartialEq)]
pub struct Invoice {
    pub fields: InvoiceFields,
    /// `orders.customer_email` (else `user_email`, else `customers.email`), with the customer's name.
    pub customer: Option<Addressee>,
    /// The vendor's `users.email`, with `users.name`.
    pub vendor: Option<Addressee>,
}

impl Invoice {
    pub fn recipient(&self, kind: MailKind) -> Option<&Addressee> {
        match kind {
            MailKind::Customer => self.customer.as_ref(),
            MailKind::Vendor => self.vendor.as_ref(),
        }
    }
}

fn text_row(row: &Row) -> BTreeMap<String, String> {
    row.0
        .iter()
        .map(|(k, v)| (k.clone(), v.text().unwrap_or_default()))
        .collect()
}

/// `{app_url}/{slug}/track-order/{order_number}` with empty parts collapsed, as `URL::to` trims them.
fn track_url(template: &str, app_url: &str, slug: &str, order_number: &str) -> String {
    let url = template
        .replace("{app_url}", app_url.trim_end_matches('/'))
        .replace("{slug}", slug.trim_matches('/'))
        .replace("{order_number}", order_number);
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url.as_str()),
    };
    let mut rest = rest.to_owned();
    while rest.contains("//") {
        rest = rest.replace("//", "/");
    }
    format!("{scheme}{rest}")
}

/// Gathers the mails' fields from the order (`customer` is the `customers` row of
/// `orders.customer_id`, looked up by the caller when the order itself names no customer).
pub fn invoice(
    bundle: &OrderBundle,
    customer: Option<&Row>,
    app_url: &str,
    track_template: &str,
    title: &str,
) -> Invoice {
    let order = &bundle.order;
    let user = &bundle.vendor.user;
    let fallback = fallback_settings();
    let settings = bundle.vendor.settings.as_ref();
    let first = |cols: &[(&Row, &str)]| cols.iter().find_map(|(row, c)| row.non_empty(c));
    let none = Row::default();
    let cust = customer.unwrap_or(&none);
    let customer_name = first(&[
        (order, "customer_name"),
        (order, "user_name"),
        (cust, "name"),
    ]);
    let customer_email = first(&[
        (order, "customer_email"),
        (order, "user_email"),
        (cust, "email"),
    ]);
    let company_name = user.non_empty("name").unwrap_or_default();

    // Decision (docs/restrosaas.md §9.20): the views label these "Date" and "Time"; an order without a
    // delivery date/time
    // (the simplified checkouts) shows when it was placed instead of PHP's 1970-01-01.
    let created = order.non_empty("created_at").and_then(|c| date::parse(&c));
    let date_format = settings
        .and_then(|s| s.non_empty("date_format"))
        .or_else(|| fallback.non_empty("date_format"))
        .unwrap_or_else(|| "Y-m-d".into());
    let delivery_date = match order.non_empty("delivery_date") {
        Some(d) => date::parse(&d).map_or(d, |t| date::php_date(&date_format, t)),
        None => created.map_or_else(String::new, |t| date::php_date(&date_format, t)),
    };
    let delivery_time = order
        .non_empty("delivery_time")
        .or_else(|| created.map(|t| t.format("%H:%M:%S").to_string()))
        .unwrap_or_default();
    let currency = Currency::from_settings(settings);
    // `total` for forks without `grand_total`, as the WhatsApp text reads it.
    let total_column = ["grand_total", "total"]
        .into_iter()
        .find(|c| order.has(c))
        .unwrap_or("grand_total");
    let grand_total = currency.format(&PhpScalar::from_sql(order.get(total_column)));
    let order_number = order.non_empty("order_number").unwrap_or_default();
    let slug = user.non_empty("slug").unwrap_or_default();

    let vendor_map = ["name", "email", "slug", "mobile"]
        .into_iter()
        .map(|c| (c, user.str(c).unwrap_or_default()))
        .collect();
    let fields = InvoiceFields {
        title: title.to_owned(),
        customer_name: customer_name.clone().unwrap_or_default(),
        company_name: company_name.clone(),
        order_type: order.str("order_type").unwrap_or_default(),
        delivery_date,
        delivery_time,
        grand_total,
        track_url: track_url(track_template, app_url, &slug, &order_number),
        order_number,
        order: text_row(order),
        items: bundle.items.iter().map(|l| text_row(&l.row)).collect(),
        lines: bundle
            .items
            .iter()
            .map(|l| MailLine::new(l, &currency))
            .collect(),
        vendor: vendor_map,
    };
    Invoice {
        customer: customer_email.map(|email| Addressee {
            name: customer_name.unwrap_or_default(),
            email,
        }),
        vendor: user.non_empty("email").map(|email| Addressee {
            name: company_name,
            email,
        }),
        fields,
    }
}

/// The two bodies of one mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub html: String,
    pub text: String,
}

const SHIPPED: [(&str, &str); 4] = [
    (
        "customer_order.html",
        include_str!("../../../templates/email/customer_order.html"),
    ),
    (
        "customer_order.txt",
        include_str!("../../../templates/email/customer_order.txt"),
    ),
    (
        "vendor_order.html",
        include_str!("../../../templates/email/vendor_order.html"),
    ),
    (
        "vendor_order.txt",
        include_str!("../../../templates/email/vendor_order.txt"),
    ),
];

/// Blade's `{{ }}`: `htmlspecialchars` (`& < > " '`) in HTML templates, so a URL keeps its slashes;
/// `none` prints nothing. Text templates and `|safe` values are written as they are.
fn blade_formatter(
    out: &mut minijinja::Output<'_>,
    state: &minijinja::State<'_, '_>,
    value: &minijinja::Value,
) -> Result<(), minijinja::Error> {
    let html = matches!(state.auto_escape(), minijinja::AutoEscape::Html);
    if value.is_none() || value.is_undefined() {
        return Ok(());
    }
    if !html || value.is_safe() {
        return minijinja::escape_formatter(out, state, value);
    }
    let raw = value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned);
    let mut escaped = String::with_capacity(raw.len() + 8);
    for c in raw.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#039;"),
            c => escaped.push(c),
        }
    }
    out.write_str(&escaped)
        .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string()))
}

/// The four compiled templates. `.html` ones are HTML-escaped, `.txt` ones are not.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    /// Template name → where it came from (`shipped` or a path), for logs.
    origin: BTreeMap<&'static str, String>,
}

impl Templates {
    /// The shipped templates, each replaced by `<dir>/<name>` when that file exists. Syntax errors
    /// name the file and line.
    pub fn load(dir: Option<&Path>) -> anyhow::Result<Templates> {
        if let Some(d) = dir {
            if !d.is_dir() {
                bail!("templates = {:?}: not a directory", d.display().to_string());
            }
        }
        let mut env = Environment::new();
        env.set_keep_trailing_newline(true);
        env.set_formatter(blade_formatter);
        let mut origin = BTreeMap::new();
        for (name, shipped) in SHIPPED {
            let (source, from) = match dir.map(|d| d.join(name)).filter(|p| p.is_file()) {
                Some(path) => (
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read template {}", path.display()))?,
                    path.display().to_string(),
                ),
                None => (shipped.to_owned(), "shipped".to_owned()),
            };
            env.add_template_owned(name, source)
                .map_err(|e| anyhow::anyhow!("template {from} ({name}): {e:#}"))?;
            origin.insert(name, from);
        }
        Ok(Templates { env, origin })
    }

    /// Where each template came from.
    pub fn origin(&self) -> &BTreeMap<&'static str, String> {
        &self.origin
    }

    /// Both bodies of `kind`'s mail. The error names the template and the problem.
    pub fn render(&self, kind: MailKind, fields: &InvoiceFields) -> Result<Rendered, String> {
        let ctx = minijinja::Value::from_serialize(fields);
        let one = |ext: &str| {
            let name = format!("{}.{ext}", kind.template());
            self.env
                .get_template(&name)
                .and_then(|t| t.render(&ctx))
                .map_err(|e| format!("template {name} failed to render: {e}"))
        };
        Ok(Rendered {
            html: one("html")?,
            text: one("txt")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{LineColumns, SqlValue, VendorBundle};

    fn text(s: &str) -> SqlValue {
        SqlValue::Text(s.into())
    }

    fn bundle(settings: Option<Row>) -> OrderBundle {
        OrderBundle {
            order: Row::from_pairs([
                ("order_number", text("CM-0042")),
                ("customer_name", text("Zoë <Ångström> & Co")),
                ("customer_email", text("zoe@example.com")),
                ("user_name", text("")),
                ("grand_total", SqlValue::Float(1234.5)),
                ("delivery_date", text("2025-11-16")),
                ("delivery_time", text("12:15:00")),
                ("created_at", text("2025-11-15 10:05:00")),
                ("order_type", SqlValue::Int(1)),
            ]),
            items: vec![LineColumns::detect(
                "order_details",
                &["item_name".into(), "price".into()],
            )
            .expect("the code's family")
            .line(Row::from_pairs([
                ("item_name", text("Käsespätzle")),
                ("price", text("9.50")),
                ("qty", SqlValue::Int(2)),
            ]))],
            vendor: VendorBundle {
                id: 2,
                user: Row::from_pairs([
                    ("name", text("Café Müller & Söhne")),
                    ("email", text("kontakt@cafe-mueller.test")),
                    ("slug", text("cafe-muller")),
                    ("password", text("hash")),
                ]),
                settings,
            },
        }
    }

    fn vendor2_settings() -> Row {
        Row::from_pairs([
            ("currency", text("€")),
            ("currency_position", text("right")),
            ("currency_space", text("0")),
            ("decimal_separator", SqlValue::Int(2)),
            ("currency_formate", SqlValue::Int(2)),
            ("date_format", text("d.m.Y")),
        ])
    }

    const TRACK: &str = "{app_url}/{slug}/track-order/{order_number}";

    #[test]
    fn fields_are_formatted_as_the_app_formats_them() {
        let inv = invoice(
            &bundle(Some(vendor2_settings())),
            None,
            "https://shop.test/",
            TRACK,
            "Order Invoice",
        );
        let f = &inv.fields;
        assert_eq!(f.grand_total, "1.234,50€");
        assert_eq!(f.delivery_date, "16.11.2025");
        assert_eq!(f.delivery_time, "12:15:00");
        assert_eq!(
            f.track_url,
            "https://shop.test/cafe-muller/track-order/CM-0042"
        );
        assert_eq!(f.customer_name, "Zoë <Ångström> & Co");
        assert_eq!(f.order_type, "1");
        assert_eq!(f.items[0]["item_name"], "Käsespätzle");
        assert_eq!(
            f.lines,
            [MailLine {
                name: "Käsespätzle".into(),
                quantity: "2".into(),
                variant: String::new(),
                total: "19,00€".into(),
            }]
        );
        assert!(
            !f.vendor.values().any(|v| v == "hash"),
            "no password in the context"
        );
        assert_eq!(
            inv.customer.as_ref().map(|a| a.email.as_str()),
            Some("zoe@example.com")
        );
        assert_eq!(
            inv.vendor.as_ref().map(|a| a.name.as_str()),
            Some("Café Müller & Söhne")
        );

        // No settings row: the app's fallback object (XOF left, 2 decimals, Y-m-d).
        let inv = invoice(
            &bundle(None),
            None,
            "http://localhost",
            TRACK,
            "Order Invoice",
        );
        assert_eq!(inv.fields.grand_total, "XOF 1,234.50");
        assert_eq!(inv.fields.delivery_date, "2025-11-16");
    }

    #[test]
    fn missing_parts_fall_back() {
        let mut b = bundle(None);
        for c in [
            "customer_name",
            "customer_email",
            "delivery_date",
            "delivery_time",
        ] {
            b.order.0.insert(c.into(), SqlValue::Null);
        }
        b.vendor.user.0.remove("slug");
        let cust = Row::from_pairs([
            ("name", text("Lukas Bäcker")),
            ("email", text("l@example.com")),
        ]);
        let inv = invoice(&b, Some(&cust), "http://localhost", TRACK, "T");
        assert_eq!(
            inv.customer.as_ref().map(|a| a.name.as_str()),
            Some("Lukas Bäcker")
        );
        assert_eq!(inv.fields.delivery_date, "2025-11-15");
        assert_eq!(inv.fields.delivery_time, "10:05:00");
        assert_eq!(inv.fields.track_url, "http://localhost/track-order/CM-0042");
        let inv = invoice(&b, None, "http://localhost", TRACK, "T");
        assert_eq!(inv.customer, None);
    }

    #[test]
    fn shipped_templates_render_both_bodies_escaping_only_html() {
        let t = Templates::load(None).unwrap();
        let inv = invoice(
            &bundle(Some(vendor2_settings())),
            None,
            "https://shop.test",
            TRACK,
            "Order Invoice",
        );
        let c = t.render(MailKind::Customer, &inv.fields).unwrap();
        assert!(
            c.html
                .contains("Dear <b>Zoë &lt;Ångström&gt; &amp; Co</b>,"),
            "{}",
            c.html
        );
        assert!(
            c.html.contains("Order Number : <b>#CM-0042</b><br>"),
            "{}",
            c.html
        );
        assert!(c.html.contains(
            "<a href=\"https://shop.test/cafe-muller/track-order/CM-0042\">Track Order</a>"
        ));
        assert!(c
            .html
            .contains("Thank you for choosing <b>Café Müller &amp; Söhne</b>."));
        assert!(c.text.contains("Dear Zoë <Ångström> & Co,"), "{}", c.text);
        assert!(c.text.contains("Total Amount : 1.234,50€"));
        let v = t.render(MailKind::Vendor, &inv.fields).unwrap();
        assert!(v
            .html
            .contains("We are writing to confirm that you have received new order."));
        assert!(!v.html.contains("Track Order"));
        assert!(
            v.text.contains("Date : 16.11.2025\nTime : 12:15:00"),
            "{}",
            v.text
        );
    }

    #[test]
    fn a_template_directory_overrides_per_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("vendor_order.txt"),
            "Neue Bestellung {{ order_number }} für {{ company_name }}\n",
        )
        .unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        let inv = invoice(&bundle(None), None, "http://localhost", TRACK, "T");
        let v = t.render(MailKind::Vendor, &inv.fields).unwrap();
        assert_eq!(v.text, "Neue Bestellung CM-0042 für Café Müller & Söhne\n");
        assert!(
            v.html.contains("Dear <b>Café Müller &amp; Söhne</b>"),
            "html stays shipped"
        );
        assert_eq!(t.origin()["customer_order.html"], "shipped");

        std::fs::write(dir.path().join("customer_order.html"), "{% if %}").unwrap();
        let err = Templates::load(Some(dir.path())).unwrap_err().to_string();
        assert!(
            err.contains("customer_order.html") && err.contains("syntax error"),
            "{err}"
        );
        let err = Templates::load(Some(&dir.path().join("nope")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a directory"), "{err}");
    }
}
