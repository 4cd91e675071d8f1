//! The catalogue of Laravel-named settings the app uses: group, Laravel's default, how each value is
//! checked, and how it is masked. Data only; the `config` command's report (in `ops`) builds on it.
//!
//! Secrets (`*_PASSWORD`, `*_KEY(S)`, `*_TOKEN`, `*_SECRET`, passwords inside URLs) and personal data (the
//! test phone number) must only leave through [`mask`].

use crate::util::url;

/// How a value is checked and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// Shown as `***` when set.
    Secret,
    /// A URL whose password is masked.
    Url,
    /// Personal data (a phone number): shown as `***`.
    Personal,
    Port,
    /// A whole number ≥ 0.
    Uint,
    /// A positive number of seconds, fractions allowed (`2.5`).
    Seconds,
    /// Digits only (a country calling code).
    Digits,
    Bool,
    /// One of the listed values (case-insensitive).
    OneOf(&'static [&'static str]),
    Timezone,
    /// APP_KEY / APP_PREVIOUS_KEYS: 16- or 32-byte keys.
    AppKey,
    /// `http://` or `https://`.
    HttpUrl,
}

/// One setting of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct KeyDef {
    pub group: &'static str,
    pub key: &'static str,
    /// Laravel's default in the app's config files (`None`: null / derived).
    pub default: Option<&'static str>,
    pub kind: Kind,
    pub about: &'static str,
}

pub(crate) const APP: &str = "app";
pub(crate) const REDIS: &str = "redis / queue";
pub(crate) const DB: &str = "database (failed_jobs)";
pub(crate) const MAIL: &str = "mail";
pub(crate) const WHATSAPP: &str = "whatsapp";
pub(crate) const CACHE: &str = "cache";

const CONNECTIONS: &[&str] = &["mysql", "mariadb", "pgsql", "sqlite"];
const MAILERS: &[&str] = &[
    "smtp",
    "sendmail",
    "mailgun",
    "ses",
    "ses-v2",
    "postmark",
    "resend",
    "log",
    "array",
    "failover",
    "roundrobin",
];
const ENCRYPTIONS: &[&str] = &["tls", "ssl", ""];
const STORES: &[&str] = &[
    "apc",
    "array",
    "database",
    "file",
    "memcached",
    "redis",
    "dynamodb",
    "octane",
    "null",
];
const QUEUE_CONNECTIONS: &[&str] = &[
    "sync",
    "database",
    "whatsapp",
    "analytics",
    "emails",
    "cache",
    "beanstalkd",
    "sqs",
    "redis",
    "null",
];

const fn def(
    group: &'static str,
    key: &'static str,
    default: Option<&'static str>,
    kind: Kind,
    about: &'static str,
) -> KeyDef {
    KeyDef {
        group,
        key,
        default,
        kind,
        about,
    }
}

/// Every Laravel-named setting defer-worker reads or reports, in display order.
#[rustfmt::skip]
pub const CATALOGUE: &[KeyDef] = &[
    def(APP, "APP_NAME", Some("laravel"), Kind::Text, "drives the Redis prefix, the cache prefix and MAIL_FROM_NAME"),
    def(APP, "APP_ENV", Some("production"), Kind::Text, "shown only"),
    def(APP, "APP_DEBUG", Some("false"), Kind::Bool, "shown only"),
    def(APP, "APP_URL", Some("http://localhost"), Kind::Text, "base of the app's track and store URLs"),
    def(APP, "APP_KEY", None, Kind::AppKey, "decrypts encrypted job commands (base64:… of 16 or 32 bytes)"),
    def(APP, "APP_PREVIOUS_KEYS", None, Kind::AppKey, "older keys tried after APP_KEY, comma separated"),
    def(APP, "APP_TIMEZONE", Some("UTC"), Kind::Timezone, "time zone of failed_jobs.failed_at (the app itself hard-codes UTC)"),
    def(REDIS, "QUEUE_CONNECTION", Some("sync"), Kind::OneOf(QUEUE_CONNECTIONS), "the app's default queue connection; must be redis for jobs to reach Redis"),
    def(REDIS, "REDIS_QUEUE", Some("default"), Kind::Text, "default queue name (work --queue wins)"),
    def(REDIS, "REDIS_QUEUE_RETRY_AFTER", Some("90"), Kind::Uint, "seconds before a reserved job is given to another worker"),
    def(REDIS, "REDIS_CLIENT", Some("phpredis"), Kind::OneOf(&["phpredis", "predis"]), "the app's client; same keys either way"),
    def(REDIS, "REDIS_URL", None, Kind::Url, "redis:// or rediss:// URL; its parts override the variables below"),
    def(REDIS, "REDIS_SCHEME", Some("tcp"), Kind::Text, "tls for TLS"),
    def(REDIS, "REDIS_HOST", Some("127.0.0.1"), Kind::Text, "host, or a Unix socket path starting with /"),
    def(REDIS, "REDIS_PORT", Some("6379"), Kind::Port, "port"),
    def(REDIS, "REDIS_USERNAME", None, Kind::Text, "ACL user"),
    def(REDIS, "REDIS_PASSWORD", None, Kind::Secret, "password (null: none)"),
    def(REDIS, "REDIS_DB", Some("0"), Kind::Uint, "database of the queue connection"),
    def(REDIS, "REDIS_CACHE_DB", Some("1"), Kind::Uint, "database of the redis cache store"),
    def(REDIS, "REDIS_CLUSTER", Some("redis"), Kind::OneOf(&["redis", "predis"]), "Laravel's options.cluster; with REDIS_CLUSTER_NODES only redis (native Redis Cluster) works"),
    def(REDIS, "REDIS_CLUSTER_NODES", None, Kind::Text, "Redis Cluster seed nodes (host:port, comma separated), Laravel's clusters.default; queue names then need a {hash tag}"),
    def(REDIS, "REDIS_PREFIX", None, Kind::Text, "key prefix; default slug(APP_NAME, '_') + _database_; empty (REDIS_PREFIX= or (empty)): no prefix"),
    def(DB, "QUEUE_FAILED_DRIVER", Some("database-uuids"), Kind::Text, "only database-uuids is written"),
    def(DB, "DB_CONNECTION", Some("mysql"), Kind::OneOf(CONNECTIONS), "mysql, mariadb, pgsql or sqlite"),
    def(DB, "DATABASE_URL", None, Kind::Url, "URL whose parts override DB_*"),
    def(DB, "DB_URL", None, Kind::Url, "same as DATABASE_URL"),
    def(DB, "DB_HOST", Some("127.0.0.1"), Kind::Text, "host"),
    def(DB, "DB_PORT", Some("3306"), Kind::Port, "port (5432 for pgsql)"),
    def(DB, "DB_DATABASE", Some("forge"), Kind::Text, "database, or the SQLite file"),
    def(DB, "DB_USERNAME", Some("forge"), Kind::Text, "user"),
    def(DB, "DB_PASSWORD", None, Kind::Secret, "password"),
    def(DB, "DB_SOCKET", None, Kind::Text, "MySQL Unix socket"),
    def(MAIL, "MAIL_MAILER", Some("smtp"), Kind::OneOf(MAILERS), "transport"),
    def(MAIL, "MAIL_HOST", Some("smtp.mailgun.org"), Kind::Text, "SMTP host"),
    def(MAIL, "MAIL_PORT", Some("587"), Kind::Port, "SMTP port (465: implicit TLS, else STARTTLS)"),
    def(MAIL, "MAIL_ENCRYPTION", Some("tls"), Kind::OneOf(ENCRYPTIONS), "tls or ssl"),
    def(MAIL, "MAIL_USERNAME", None, Kind::Text, "SMTP user"),
    def(MAIL, "MAIL_PASSWORD", None, Kind::Secret, "SMTP password"),
    def(MAIL, "MAIL_FROM_ADDRESS", Some("hello@example.com"), Kind::Text, "sender address"),
    def(MAIL, "MAIL_FROM_NAME", Some("Example"), Kind::Text, "sender name"),
    def(WHATSAPP, "WHATSAPP_API_URL", Some("https://graph.facebook.com/v25.0"), Kind::HttpUrl, "Graph API base URL (the app's default, v18.0, has expired)"),
    def(WHATSAPP, "WHATSAPP_ALLOW_EXPIRED_API_VERSION", Some("false"), Kind::Bool, "defer-worker: start even when the URL's Graph API version has expired"),
    def(WHATSAPP, "WHATSAPP_API_TOKEN", Some(""), Kind::Secret, "Bearer token"),
    def(WHATSAPP, "WHATSAPP_PHONE_NUMBER_ID", Some(""), Kind::Text, "sender phone number id (URL path segment)"),
    def(WHATSAPP, "WHATSAPP_BUSINESS_ACCOUNT_ID", Some(""), Kind::Text, "read by the app, never used"),
    def(WHATSAPP, "WHATSAPP_APP_SECRET", Some(""), Kind::Secret, "webhook HMAC secret"),
    def(WHATSAPP, "WHATSAPP_WEBHOOK_VERIFY_TOKEN", Some("emenu_whatsapp_2024"), Kind::Secret, "webhook verification token"),
    def(WHATSAPP, "WHATSAPP_WEBHOOK_URL", Some(""), Kind::Text, "unused by the app"),
    def(WHATSAPP, "WHATSAPP_DEFAULT_COUNTRY_CODE", Some("225"), Kind::Digits, "country code added to local numbers"),
    def(WHATSAPP, "WHATSAPP_TEST_PHONE", Some(""), Kind::Personal, "number for connection tests"),
    def(WHATSAPP, "WHATSAPP_TIMEOUT", Some("30"), Kind::Seconds, "HTTP timeout, seconds"),
    def(WHATSAPP, "WHATSAPP_ENABLED", Some("true"), Kind::Bool, "master switch"),
    def(WHATSAPP, "WHATSAPP_DEMO_MODE", Some("false"), Kind::Bool, "log instead of sending (WhatsAppBusinessService)"),
    def(WHATSAPP, "WHATSAPP_NOTIFY_RESTAURANT_ON_ORDER", Some("true"), Kind::Bool, "new-order message to the restaurant"),
    def(WHATSAPP, "WHATSAPP_NOTIFY_CUSTOMER_ON_PAYMENT", Some("true"), Kind::Bool, "payment confirmation to the customer"),
    def(WHATSAPP, "WHATSAPP_NOTIFY_CUSTOMER_ON_DELIVERY_UPDATE", Some("true"), Kind::Bool, "delivery updates to the customer"),
    def(WHATSAPP, "WHATSAPP_SEND_WELCOME_MESSAGE", Some("false"), Kind::Bool, "unused by the app"),
    def(WHATSAPP, "WHATSAPP_AUTO_NOTIFY_ORDER_CREATED", Some("true"), Kind::Bool, "admin status messages"),
    def(WHATSAPP, "WHATSAPP_AUTO_NOTIFY_ORDER_ACCEPTED", Some("true"), Kind::Bool, "admin status messages"),
    def(WHATSAPP, "WHATSAPP_AUTO_NOTIFY_ORDER_PREPARING", Some("true"), Kind::Bool, "admin status messages"),
    def(WHATSAPP, "WHATSAPP_AUTO_NOTIFY_ORDER_READY", Some("true"), Kind::Bool, "admin status messages"),
    def(WHATSAPP, "WHATSAPP_AUTO_NOTIFY_ORDER_ON_WAY", Some("true"), Kind::Bool, "admin status messages"),
    def(WHATSAPP, "WHATSAPP_AUTO_NOTIFY_ORDER_DELIVERED", Some("true"), Kind::Bool, "admin status messages"),
    def(WHATSAPP, "WHATSAPP_AUTO_NOTIFY_ORDER_CANCELLED", Some("true"), Kind::Bool, "admin status messages"),
    def(WHATSAPP, "WHATSAPP_AUTO_NOTIFY_PAYMENT_PENDING", Some("false"), Kind::Bool, "admin status messages"),
    def(WHATSAPP, "WHATSAPP_TEMPLATE_NEW_ORDER", Some("new_order_notification"), Kind::Text, "approved template name for `message = \"template\"`"),
    def(WHATSAPP, "WHATSAPP_DEFAULT_LANGUAGE", Some("fr"), Kind::Text, "declared, unused by the app"),
    def(CACHE, "CACHE_DRIVER", Some("file"), Kind::OneOf(STORES), "default cache store (Laravel 8/10 name); holds the restart signal"),
    def(CACHE, "CACHE_STORE", None, Kind::OneOf(STORES), "Laravel 11+ name of CACHE_DRIVER"),
    def(CACHE, "CACHE_PREFIX", None, Kind::Text, "default slug(APP_NAME, '_') + _cache; empty: no cache prefix"),
    def(CACHE, "DB_CACHE_TABLE", Some("cache"), Kind::Text, "table of the database store"),
    def(CACHE, "APP_STORAGE_PATH", Some("storage"), Kind::Text, "the app's storage directory, for the file store"),
    def(CACHE, "DEFER_WORKER_LARAVEL", Some("10"), Kind::Uint, "the app's Laravel major version (cache key details)"),
];

/// True for keys whose values are secrets.
pub fn is_secret(key: &str) -> bool {
    ["_PASSWORD", "_KEY", "_KEYS", "_TOKEN", "_SECRET"]
        .iter()
        .any(|s| key.ends_with(s))
}

/// `value` as it may be shown for `key`.
pub fn mask(key: &str, kind: Kind, value: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    match kind {
        Kind::Secret | Kind::AppKey | Kind::Personal => "***".to_owned(),
        _ if is_secret(key) => "***".to_owned(),
        _ if value.contains("://") => url::mask_password(value),
        _ => value.to_owned(),
    }
}

/// The kind of `key` (`Text` for keys outside the catalogue).
pub fn kind_of(key: &str) -> Kind {
    CATALOGUE
        .iter()
        .find(|d| d.key == key)
        .map(|d| d.kind)
        .unwrap_or(Kind::Text)
}
