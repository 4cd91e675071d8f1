//! The `email` action against a real SMTP server process (`tests/smtp/server.py`, Debian's
//! python3-aiosmtpd) with STARTTLS or implicit TLS on a certificate made by `openssl` for this test and
//! AUTH, and real MariaDB loaded with `fixtures/app`: the received mails' headers (UTF-8 sender name,
//! recipient, subject, MIME multipart/alternative) and both bodies as Python's e-mail parser reads them;
//! SMTP 4xx → retry and 5xx → permanent without an address in the message; the sent-ledger making a
//! retry send only the mail that failed; the vendor's `settings.mail_*` route; log mode.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use defer_worker::actions::email::{EmailAction, EmailOptions, MailSettings};
use defer_worker::actions::ledger::Ledger;
use defer_worker::actions::{ActionError, JobMeta};
use defer_worker::app::{AppData, AppSection};
use defer_worker::deferred::DeferredJob;
use defer_worker::laravel::redis_config::RedisConfig;
use defer_worker::php::{Key, Value};
use serde_json::Value as Json;

use crate::support::{repo, DbKind, World};

const USER: &str = "mailer";
const PASSWORD: &str = "s3cret-pass";

/// A CA and a server certificate for 127.0.0.1 / localhost signed by it, made with the openssl CLI.
pub(crate) struct Certs {
    pub(crate) ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub(crate) fn make_certs(dir: &Path) -> Certs {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca_args = vec!["req", "-x509"];
    ca_args.extend(ec);
    ca_args.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=defer-worker test CA",
    ]);
    openssl(dir, &ca_args);
    let mut csr_args = vec!["req"];
    csr_args.extend(ec);
    csr_args.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(dir, &csr_args);
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n\
         subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
    Certs {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    }
}

/// The SMTP server process; killed (by its own pid) and reaped on drop.
pub(crate) struct Smtp {
    child: Child,
    _stdin: ChildStdin,
    pub(crate) port: u16,
    maildir: PathBuf,
    rules: PathBuf,
}

impl Smtp {
    /// `tls`: starttls | implicit; `extra`: more server flags.
    pub(crate) fn start(dir: &Path, certs: &Certs, tls: &str, extra: &[&str]) -> Smtp {
        let maildir = dir.join(format!("mail-{}", uuid::Uuid::new_v4().simple()));
        let rules = maildir.with_extension("rules.json");
        let auth = format!("{USER}:{PASSWORD}");
        let mut child = Command::new("/usr/bin/python3")
            .arg(repo().join("tests/smtp/server.py"))
            .args(["--maildir", maildir.to_str().unwrap(), "--tls", tls])
            .args([
                "--cert",
                certs.cert.to_str().unwrap(),
                "--key",
                certs.key.to_str().unwrap(),
            ])
            .args(["--auth", &auth, "--rules", rules.to_str().unwrap()])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tests/smtp/server.py (apt-get install python3-aiosmtpd)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(port) = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
        else {
            let _ = child.kill();
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("SMTP server did not start: {line:?}\n{err}");
        };
        let stdin = child.stdin.take().unwrap();
        Smtp {
            child,
            _stdin: stdin,
            port,
            maildir,
            rules,
        }
    }

    /// Replies the server gives at RCPT TO for these addresses (the rest get 250).
    fn reject(&self, rcpt: &[(&str, &str)]) {
        let map: serde_json::Map<String, Json> = rcpt
            .iter()
            .map(|(a, r)| (a.to_string(), Json::from(*r)))
            .collect();
        std::fs::write(&self.rules, serde_json::json!({ "rcpt": map }).to_string()).unwrap();
    }

    /// The accepted mails, in arrival order: the server's JSON record (envelope, TLS, login and the
    /// message as Python's e-mail parser reads it) plus the raw `.eml`.
    pub(crate) fn mails(&self) -> Vec<(Json, String)> {
        let Ok(dir) = std::fs::read_dir(&self.maildir) else {
            return Vec::new();
        };
        let mut names: Vec<PathBuf> = dir
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|p| {
                let json = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
                let eml = String::from_utf8_lossy(&std::fs::read(p.with_extension("eml")).unwrap())
                    .into_owned();
                (json, eml)
            })
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One test's database (schema + seed), Redis prefix, certificates and app data.
struct Stage {
    world: World,
    app: AppData,
    ledger: Ledger,
    certs: Certs,
}

impl Stage {
    async fn new() -> Stage {
        let world = World::new(DbKind::MySql);
        let out = Command::new(repo().join("fixtures/app/load.sh"))
            .args(["mysql", &world.db_name])
            .output()
            .expect("run fixtures/app/load.sh");
        assert!(
            out.status.success(),
            "load.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env: HashMap<String, String> = world.env().into_iter().collect();
        let app = AppData::from_lookup(&AppSection::default(), &|k| env.get(k).cloned())
            .await
            .expect("valid DB settings")
            .expect("an app database");
        let redis = RedisConfig::from_env(&|k| env.get(k).cloned()).expect("redis settings");
        let ledger = Ledger::connect(&redis).await.expect("redis");
        let certs = make_certs(world.dir.path());
        Stage {
            world,
            app,
            ledger,
            certs,
        }
    }

    fn smtp(&self, tls: &str, extra: &[&str]) -> Smtp {
        Smtp::start(self.world.dir.path(), &self.certs, tls, extra)
    }

    fn sql(&self, sql: &str) {
        let out = Command::new("mysql")
            .args([
                "--default-character-set=utf8mb4",
                "-h127.0.0.1",
                "-uroot",
                &self.world.db_name,
                "-e",
                sql,
            ])
            .output()
            .expect("mysql");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The app's MAIL_* for `smtp`, plus `extra`.
    fn settings(&self, smtp: &Smtp, encryption: &str, extra: &[(&str, &str)]) -> MailSettings {
        let mut env: HashMap<String, String> = [
            ("MAIL_MAILER", "smtp".to_owned()),
            ("MAIL_HOST", "127.0.0.1".to_owned()),
            ("MAIL_PORT", smtp.port.to_string()),
            ("MAIL_ENCRYPTION", encryption.to_owned()),
            ("MAIL_USERNAME", USER.to_owned()),
            ("MAIL_PASSWORD", PASSWORD.to_owned()),
            ("MAIL_FROM_ADDRESS", "noreply@restro.test".to_owned()),
            ("MAIL_FROM_NAME", "RestroSaaS Bestellungen ☕".to_owned()),
            ("APP_URL", "https://restro.test/".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (k, v) in extra {
            env.insert(k.to_string(), v.to_string());
        }
        MailSettings::from_lookup(&|k| env.get(k).cloned()).expect("valid MAIL_*")
    }

    fn action(&self, opts: EmailOptions, settings: MailSettings) -> EmailAction {
        EmailAction::with_settings(
            &opts,
            settings,
            Some(self.app.clone()),
            Some(self.ledger.clone()),
        )
        .expect("email action")
    }

    fn opts(&self) -> EmailOptions {
        EmailOptions {
            ca_file: Some(self.certs.ca.clone()),
            ..EmailOptions::default()
        }
    }
}

fn job(order_id: Value) -> DeferredJob {
    DeferredJob {
        action: "email_notification".into(),
        data: Value::Array(vec![(Key::Str(b"order_id".to_vec()), order_id)]),
    }
}

fn meta(uuid: &str, attempt: i64) -> JobMeta<'_> {
    JobMeta {
        uuid,
        id: "1",
        queue: "emails",
        attempt,
    }
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn s<'a>(j: &'a Json, path: &[&str]) -> &'a str {
    let mut v = j;
    for p in path {
        v = &v[*p];
    }
    v.as_str().unwrap_or_else(|| panic!("{path:?} in {j:#}"))
}

#[tokio::test]
async fn starttls_and_auth_deliver_both_invoice_mails_with_utf8_headers_and_bodies() {
    let st = Stage::new().await;
    let smtp = st.smtp("starttls", &[]);
    let action = st.action(st.opts(), st.settings(&smtp, "tls", &[]));
    let uuid = new_uuid();
    action
        .run(&job(Value::Int(2)), meta(&uuid, 1))
        .await
        .expect("sent");

    let mails = smtp.mails();
    assert_eq!(mails.len(), 2, "customer and vendor mail");
    let (customer, raw_customer) = &mails[0];
    let (vendor, _) = &mails[1];
    for (m, _) in &mails {
        assert_eq!(m["tls"], Json::Bool(true), "STARTTLS before MAIL: {m:#}");
        assert_eq!(s(m, &["auth_user"]), "mailer via PLAIN");
        assert_eq!(s(m, &["mail_from"]), "noreply@restro.test");
        assert_eq!(
            s(m, &["message", "from"]),
            "RestroSaaS Bestellungen ☕ <noreply@restro.test>"
        );
        assert_eq!(s(m, &["message", "subject"]), "Order Invoice");
        assert_eq!(s(m, &["message", "content_type"]), "multipart/alternative");
        assert_eq!(s(m, &["message", "mime_version"]), "1.0");
        assert_eq!(
            m["message"]["part_types"],
            serde_json::json!(["multipart/alternative", "text/plain", "text/html"])
        );
        assert!(s(m, &["message", "message_id"]).starts_with('<'), "{m:#}");
    }
    // Non-ASCII header words travel RFC 2047-encoded, never as raw 8-bit.
    let from_line = raw_customer
        .lines()
        .find(|l| l.starts_with("From: "))
        .unwrap();
    assert!(
        from_line.contains("=?utf-8?") && from_line.contains("<noreply@restro.test>"),
        "{from_line}"
    );
    assert!(
        raw_customer.lines().all(|l| l.is_ascii()),
        "7-bit clean:\n{raw_customer}"
    );

    // Customer: customerorderemail's fields, vendor 2's formats (€ right, no space, comma decimals, d.m.Y).
    assert_eq!(customer["rcpt_tos"], serde_json::json!(["zoe@example.com"]));
    assert_eq!(
        s(customer, &["message", "to"]),
        "Zoë Ångström-Müller <zoe@example.com>"
    );
    let text = s(customer, &["message", "text"]);
    for want in [
        "Dear Zoë Ångström-Müller,",
        "We are pleased to confirm that we have received your order and it is currently being processed.",
        "Order Number : #CM-0042\nDate : 16.11.2025\nTime : 12:15:00\nTotal Amount : 35,65€",
        "Track Order: https://restro.test/cafe-muller/track-order/CM-0042",
        "Thank you for choosing Café Müller & Söhne.",
        "Sincerely,\nCafé Müller & Söhne",
    ] {
        assert!(text.contains(want), "customer text lacks {want:?}:\n{text}");
    }
    let html = s(customer, &["message", "html"]);
    for want in [
        "<title>Order Invoice</title>",
        "Dear <b>Zoë Ångström-Müller</b>,",
        "Order Number : <b>#CM-0042</b><br>",
        "Date : <b>16.11.2025</b><br>",
        "Time : <b>12:15:00</b><br>",
        "Total Amount : <b>35,65€</b><br>",
        "<a href=\"https://restro.test/cafe-muller/track-order/CM-0042\">Track Order</a>",
        "Thank you for choosing <b>Café Müller &amp; Söhne</b>.",
    ] {
        assert!(html.contains(want), "customer html lacks {want:?}:\n{html}");
    }

    // Vendor: vendororderemail's fields, no track link.
    assert_eq!(
        vendor["rcpt_tos"],
        serde_json::json!(["kontakt@cafe-mueller.test"])
    );
    assert_eq!(
        s(vendor, &["message", "to"]),
        "Café Müller & Söhne <kontakt@cafe-mueller.test>"
    );
    let text = s(vendor, &["message", "text"]);
    assert!(text.starts_with("Dear Café Müller & Söhne,\n"), "{text}");
    assert!(
        text.contains("We are writing to confirm that you have received new order."),
        "{text}"
    );
    assert!(text.contains(
        "Order Number : #CM-0042\nDate : 16.11.2025\nTime : 12:15:00\nTotal Amount : 35,65€"
    ));
    let html = s(vendor, &["message", "html"]);
    assert!(
        html.contains("Dear <b>Café Müller &amp; Söhne</b>,"),
        "{html}"
    );
    assert!(
        !html.contains("Track Order") && !text.contains("track-order"),
        "{html}"
    );

    assert_eq!(
        st.ledger.steps(&uuid).await.unwrap(),
        ["email:customer", "email:vendor"],
        "both mails recorded under the job's uuid"
    );
    assert_eq!(action.transports(), 1);
}

#[tokio::test]
async fn utf8_subject_login_mechanism_and_customer_from_the_customers_table() {
    let st = Stage::new().await;
    // Only LOGIN offered: lettre must fall back from PLAIN.
    let smtp = st.smtp("starttls", &["--auth-exclude", "PLAIN"]);
    let opts = EmailOptions {
        subject: "Commande reçue ✓ — Bestellbestätigung 🍕".into(),
        vendor: false,
        ..st.opts()
    };
    let action = st.action(opts, st.settings(&smtp, "tls", &[]));
    // Order 6 names no customer itself: customers.id = 3 does.
    action
        .run(&job(Value::Str(b"6".to_vec())), meta(&new_uuid(), 1))
        .await
        .expect("sent");
    let mails = smtp.mails();
    assert_eq!(
        mails.len(),
        1,
        "vendor = false sends only the customer's mail"
    );
    let (m, raw) = &mails[0];
    assert_eq!(s(m, &["auth_user"]), "mailer via LOGIN");
    assert_eq!(
        s(m, &["message", "subject"]),
        "Commande reçue ✓ — Bestellbestätigung 🍕"
    );
    let subject_line = raw.lines().find(|l| l.starts_with("Subject: ")).unwrap();
    assert!(subject_line.contains("=?utf-8?"), "{subject_line}");
    assert_eq!(
        s(m, &["message", "to"]),
        "Lukas Bäcker <lukas.baecker@example.com>"
    );
    let text = s(m, &["message", "text"]);
    // grand_total 2.675 → PHP's number_format rounds to 2,68.
    assert!(
        text.contains("Dear Lukas Bäcker,") && text.contains("Total Amount : 2,68€"),
        "{text}"
    );
    assert!(s(m, &["message", "html"])
        .contains("<title>Commande reçue ✓ — Bestellbestätigung 🍕</title>"));
}

#[tokio::test]
async fn implicit_tls_with_ssl_encryption() {
    let st = Stage::new().await;
    let smtp = st.smtp("implicit", &[]);
    let action = st.action(st.opts(), st.settings(&smtp, "ssl", &[]));
    action
        .run(&job(Value::Int(1)), meta(&new_uuid(), 1))
        .await
        .expect("sent");
    let mails = smtp.mails();
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[0].0["tls"], Json::Bool(true));
    assert_eq!(s(&mails[0].0, &["auth_user"]), "mailer via PLAIN");
    // Vendor 1: the app's default formats (XOF left with a space, '.' decimals, Y-m-d).
    let text = s(&mails[0].0, &["message", "text"]);
    assert!(
        text.contains("Date : 2025-11-15\nTime : 19:30:00\nTotal Amount : XOF 12,500.50"),
        "{text}"
    );
    assert_eq!(
        s(&mails[1].0, &["message", "to"]),
        "Chez Awa <contact@chez-awa.test>"
    );
}

#[tokio::test]
async fn certificates_are_checked_unless_the_ca_is_trusted() {
    let st = Stage::new().await;
    let smtp = st.smtp("starttls", &[]);
    let opts = EmailOptions {
        ca_file: None,
        ..EmailOptions::default()
    };
    let action = st.action(opts, st.settings(&smtp, "tls", &[]));
    let err = action
        .run(&job(Value::Int(2)), meta(&new_uuid(), 1))
        .await
        .unwrap_err();
    let ActionError::Retry { message, .. } = &err else {
        panic!("a TLS failure is retried: {err:?}")
    };
    assert!(
        message.contains(&format!("smtp+starttls://127.0.0.1:{}", smtp.port)),
        "{message}"
    );
    assert!(
        message.contains("invalid peer certificate: UnknownIssuer"),
        "{message}"
    );
    assert!(!message.contains('@'), "no address in {message}");
    assert!(
        smtp.mails().is_empty(),
        "nothing goes out over an untrusted certificate"
    );
}

#[tokio::test]
async fn smtp_4xx_retries_and_5xx_fails_with_the_code_and_no_address() {
    let st = Stage::new().await;
    let smtp = st.smtp("starttls", &[]);
    let action = st.action(st.opts(), st.settings(&smtp, "tls", &[]));

    smtp.reject(&[(
        "kontakt@cafe-mueller.test",
        "451 4.3.0 <kontakt@cafe-mueller.test> Try again later",
    )]);
    let err = action
        .run(&job(Value::Int(2)), meta(&new_uuid(), 1))
        .await
        .unwrap_err();
    let ActionError::Retry { message, after } = &err else {
        panic!("4xx is transient: {err:?}")
    };
    assert_eq!(*after, None, "the job's own backoff applies");
    assert!(
        message.contains("vendor mail of order 2: SMTP transient error 451"),
        "{message}"
    );
    assert!(
        message.contains("4.3.0 <address> Try again later"),
        "{message}"
    );
    assert!(message.contains("(already sent: customer)"), "{message}");
    assert!(
        !message.contains("cafe-mueller") && !message.contains(PASSWORD),
        "{message}"
    );

    smtp.reject(&[(
        "zoe@example.com",
        "550 5.1.1 <zoe@example.com>: Recipient address rejected",
    )]);
    let err = action
        .run(&job(Value::Int(2)), meta(&new_uuid(), 1))
        .await
        .unwrap_err();
    let ActionError::Permanent { message } = &err else {
        panic!("5xx is permanent: {err:?}")
    };
    assert!(
        message.contains("customer mail of order 2: SMTP permanent error 550"),
        "{message}"
    );
    assert!(
        !message.contains("zoe") && !message.contains("example.com"),
        "{message}"
    );
    assert!(
        message.contains("(already sent: vendor)"),
        "the vendor mail still went: {message}"
    );

    let received: Vec<Json> = smtp
        .mails()
        .into_iter()
        .map(|(m, _)| m["rcpt_tos"].clone())
        .collect();
    assert_eq!(
        received,
        [
            serde_json::json!(["zoe@example.com"]),
            serde_json::json!(["kontakt@cafe-mueller.test"])
        ]
    );
}

#[tokio::test]
async fn a_retry_sends_only_the_mail_that_failed() {
    let st = Stage::new().await;
    let smtp = st.smtp("starttls", &[]);
    let action = st.action(st.opts(), st.settings(&smtp, "tls", &[]));
    let uuid = new_uuid();

    smtp.reject(&[(
        "kontakt@cafe-mueller.test",
        "452 4.2.2 Mailbox full, try later",
    )]);
    let first = action.run(&job(Value::Int(2)), meta(&uuid, 1)).await;
    assert!(matches!(first, Err(ActionError::Retry { .. })), "{first:?}");
    assert_eq!(smtp.mails().len(), 1, "the customer's mail went out");
    assert_eq!(st.ledger.steps(&uuid).await.unwrap(), ["email:customer"]);

    smtp.reject(&[]);
    action
        .run(&job(Value::Int(2)), meta(&uuid, 2))
        .await
        .expect("second attempt");
    let rcpts: Vec<Json> = smtp
        .mails()
        .into_iter()
        .map(|(m, _)| m["rcpt_tos"].clone())
        .collect();
    assert_eq!(
        rcpts,
        [
            serde_json::json!(["zoe@example.com"]),
            serde_json::json!(["kontakt@cafe-mueller.test"])
        ],
        "the retry sent the vendor's mail only"
    );

    action
        .run(&job(Value::Int(2)), meta(&uuid, 3))
        .await
        .expect("nothing left");
    assert_eq!(
        smtp.mails().len(),
        2,
        "a third run of the same job sends nothing"
    );
    let ttl: i64 = redis::cmd("TTL")
        .arg(st.ledger.key(&uuid))
        .query(&mut st.world.redis())
        .unwrap();
    assert!(
        ttl > 6 * 24 * 3600 && ttl <= 7 * 24 * 3600,
        "7-day expiry, got {ttl}"
    );
    assert!(st
        .ledger
        .key(&uuid)
        .starts_with(&format!("{}defer_worker:sent:", st.world.prefix)));
}

#[tokio::test]
async fn vendor_smtp_columns_route_the_vendors_mails() {
    let st = Stage::new().await;
    let sql = std::fs::read_to_string(repo().join("fixtures/app/schema/mysql-extra-settings.sql"))
        .unwrap();
    st.sql(&sql);
    let app_server = st.smtp("starttls", &[]);
    let vendor_server = st.smtp("implicit", &[]);
    st.sql(&format!(
        "UPDATE settings SET mail_driver = 'smtp', mail_host = '127.0.0.1', mail_port = '{}', \
         mail_encryption = 'ssl', mail_username = '{USER}', mail_password = '{PASSWORD}', \
         mail_fromaddress = 'bestellung@cafe-mueller.test', mail_fromname = 'Café Müller' WHERE vendor_id = 2",
        vendor_server.port
    ));
    let action = st.action(st.opts(), st.settings(&app_server, "tls", &[]));

    action
        .run(&job(Value::Int(2)), meta(&new_uuid(), 1))
        .await
        .expect("vendor 2");
    let mails = vendor_server.mails();
    assert_eq!(mails.len(), 2, "vendor 2's own server");
    assert_eq!(
        s(&mails[0].0, &["message", "from"]),
        "Café Müller <bestellung@cafe-mueller.test>"
    );
    assert!(app_server.mails().is_empty());

    // Vendor 3 has no settings row and vendor 1's mail_host is empty: the app's MAIL_*.
    action
        .run(&job(Value::Int(4)), meta(&new_uuid(), 1))
        .await
        .expect("vendor 3");
    let mails = app_server.mails();
    assert_eq!(mails.len(), 2);
    assert_eq!(
        s(&mails[0].0, &["message", "to"]),
        "فاطمة الزهراء <fatima@example.com>"
    );
    assert_eq!(
        s(&mails[1].0, &["message", "to"]),
        "مطعم الشام 🍕 <info@al-sham.test>"
    );
    assert_eq!(
        action.transports(),
        2,
        "one cached transport per distinct server"
    );

    // A vendor driver the action cannot speak fails the job, naming the column.
    st.sql("UPDATE settings SET mail_driver = 'sendmail' WHERE vendor_id = 2");
    let err = action
        .run(&job(Value::Int(3)), meta(&new_uuid(), 1))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ActionError::Permanent { message } if message.contains("settings.mail_driver of vendor 2")),
        "{err:?}"
    );
}

#[tokio::test]
async fn log_mailer_non_numeric_ids_and_missing_orders() {
    let st = Stage::new().await;
    let smtp = st.smtp("starttls", &[]);
    let action = st.action(
        st.opts(),
        st.settings(&smtp, "tls", &[("MAIL_MAILER", "log")]),
    );
    action
        .run(&job(Value::Int(2)), meta(&new_uuid(), 1))
        .await
        .expect("logged");
    action
        .run(
            &job(Value::Str(b"test_order_1".to_vec())),
            meta(&new_uuid(), 1),
        )
        .await
        .expect("the app's test command completes");
    assert!(smtp.mails().is_empty(), "MAIL_MAILER=log sends nothing");

    let err = action
        .run(&job(Value::Int(999)), meta(&new_uuid(), 1))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ActionError::Permanent {
            message: "Order 999 not found".into()
        }
    );
}
