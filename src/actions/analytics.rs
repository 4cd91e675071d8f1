//! `analytics_tracking`: what the app's DashboardNotificationService does with an order event, done in
//! the app's cache store (docs/restrosaas.md §6.1, docs/restrosaas.md §10.3). The app's own handler only sleeps.
//!
//! Three payload shapes reach it:
//! - `['order_id' => N]` (OptimizedOrderController, the test command): the order is looked up for its
//!   vendor and `grand_total`, the `new_order` delta is applied to `realtime_metrics_{vendor}` (TTL 300 s,
//!   PHP-serialized array), and the derived dashboard keys of the vendor are forgotten so PHP rebuilds
//!   them. A non-numeric id (`"test_order_1"`) is logged and completed, as the app does; a numeric id
//!   with no order is a permanent failure "Order N not found".
//! - `['vendor_id' => V, 'event' => E, 'data' => [...]]` (DashboardNotificationService, after it has
//!   already applied E's delta itself): the derived keys are forgotten; the delta is applied again only
//!   with `apply_event_deltas = true` (for producers that defer instead of updating).
//! - `['action' => 'dashboard_view', ...]` and anything else: logged, completed.
//!
//! Forgets run before the delta, and the delta is one atomic update ([`CacheStore::update`]), so a retry
//! after a failure never counts an order twice. PHP's own `updateRealTimeMetrics` is a plain
//! `Cache::get` + `Cache::put` with no lock: two PHP requests at once lose one update; our update takes a
//! per-key lock in-process and, on Redis, a WATCH transaction against every other writer.
//! This action never writes the app's database and never logs the payload above debug level.

use serde::Deserialize;

use super::{ActionError, JobMeta};
use crate::app::AppData;
use crate::deferred::{DeferredJob, IdArg};
use crate::laravel::cache_store::{CacheStore, CacheStoreError};
use crate::php::{Key, Value};

mod metrics;

pub use metrics::{apply_event, EVENTS};

/// `realtime_metrics_{vendor}`'s TTL in DashboardNotificationService.
pub const METRICS_TTL: i64 = 300;

/// The keys derived from a vendor's orders (docs/restrosaas.md §6.2): `{vendor}` is the vendor id, `{date}`
/// today (`Y-m-d`, UTC as the app's config/app.php fixes).
pub const DEFAULT_FORGET: &[&str] = &[
    "bi_dashboard_{vendor}_today",
    "bi_dashboard_{vendor}_week",
    "bi_dashboard_{vendor}_month",
    "bi_dashboard_{vendor}_year",
    "widgets_{vendor}_today",
    "widgets_{vendor}_week",
    "widgets_{vendor}_month",
    "widgets_{vendor}_year",
    "widgets_{vendor}_{date}",
    "dashboard_snapshot_{vendor}",
    "vendor_{vendor}_order_stats_today",
    "vendor_{vendor}_order_stats_week",
    "vendor_{vendor}_order_stats_month",
    "vendor_{vendor}_order_stats_all",
    "vendor_{vendor}_order_stats",
    "vendor_{vendor}_dashboard_stats",
    "daily_stats_{vendor}_{date}",
];

/// `[actions.<name>] kind = "analytics"`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalyticsOptions {
    /// TTL of `realtime_metrics_{vendor}` in seconds (default 300, the app's).
    pub metrics_ttl: Option<i64>,
    /// Also apply the delta of `vendor_id` + `event` payloads (default false: their producer already did).
    pub apply_event_deltas: bool,
    /// The keys to forget per event, with `{vendor}` and `{date}`; default [`DEFAULT_FORGET`].
    pub forget: Option<Vec<String>>,
}

/// The analytics action, built once at worker start.
#[derive(Debug, Clone)]
pub struct AnalyticsAction {
    app: AppData,
    store: CacheStore,
    ttl: i64,
    apply_event_deltas: bool,
    forget: Vec<String>,
}

/// Reads `data[key]` as an id (int, numeric string, whole float): [`DeferredJob::id`].
pub(crate) fn id_arg(job: &DeferredJob, key: &str) -> IdArg {
    job.id(key)
}

/// A cache store error as the worker should treat it.
pub(crate) fn cache_error(e: CacheStoreError) -> ActionError {
    if e.is_transient() {
        ActionError::Retry {
            message: format!("cache store: {e}"),
            after: None,
        }
    } else {
        ActionError::Permanent {
            message: format!("cache store: {e}"),
        }
    }
}

/// Today as the app's keys write it (UTC: the app's config/app.php hard-codes the time zone).
pub(crate) fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

impl AnalyticsAction {
    /// `app`: the app's data (for `order_id` payloads); `store`: the app's cache store. Both are
    /// required: with no database (DB_*) or with `CACHE_DRIVER=array` there is nothing to update.
    pub async fn new(
        opts: &AnalyticsOptions,
        app: Option<AppData>,
        store: Option<CacheStore>,
    ) -> anyhow::Result<Self> {
        let app = app.ok_or_else(|| {
            anyhow::anyhow!("the analytics action reads orders from the app's database: set DB_CONNECTION and DB_* (or DATABASE_URL), or [app] database_url")
        })?;
        let store = store.ok_or_else(|| {
            anyhow::anyhow!("the analytics action writes the app's cache store, but CACHE_DRIVER=array keeps it inside each PHP process: set CACHE_DRIVER to redis, file or database as the app does")
        })?;
        let ttl = opts.metrics_ttl.unwrap_or(METRICS_TTL);
        anyhow::ensure!(
            ttl > 0,
            "metrics_ttl = {ttl} is not valid: expected seconds > 0"
        );
        let forget = opts
            .forget
            .clone()
            .unwrap_or_else(|| DEFAULT_FORGET.iter().map(|s| (*s).to_owned()).collect());
        Ok(AnalyticsAction {
            app,
            store,
            ttl,
            apply_event_deltas: opts.apply_event_deltas,
            forget,
        })
    }

    pub async fn run(&self, job: &DeferredJob, meta: JobMeta<'_>) -> Result<(), ActionError> {
        tracing::debug!(queue = meta.queue, data = ?job.data, "analytics_tracking data");
        match id_arg(job, "order_id") {
            IdArg::Id(order_id) => return self.track_order(order_id).await,
            IdArg::NotNumeric(_) => {
                tracing::info!(
                    "analytics_tracking: order_id is not numeric (a test order), nothing to track"
                );
                return Ok(());
            }
            IdArg::Missing => {}
        }
        let event = job.get("event").and_then(Value::as_str);
        match (id_arg(job, "vendor_id"), event) {
            (IdArg::Id(vendor), Some(event)) => self.track_event(vendor, event, job).await,
            _ => {
                let kind = job
                    .get("action")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown");
                tracing::info!(
                    kind,
                    "analytics_tracking: nothing to update for this payload, completed"
                );
                Ok(())
            }
        }
    }

    async fn track_order(&self, order_id: i64) -> Result<(), ActionError> {
        let bundle = self
            .app
            .order_without_lines(order_id)
            .await?
            .ok_or_else(|| ActionError::Permanent {
                message: format!("Order {order_id} not found"),
            })?;
        let vendor = bundle.vendor.id;
        let total = bundle
            .order
            .get("grand_total")
            .cloned()
            .map_or(Value::Int(0), sql_to_php);
        let data = Value::Array(vec![(Key::Str(b"order_total".to_vec()), total)]);
        self.invalidate(vendor).await?;
        self.apply(vendor, "new_order", &data).await?;
        tracing::info!(
            order_id,
            vendor_id = vendor,
            "analytics tracked: new order counted"
        );
        Ok(())
    }

    async fn track_event(
        &self,
        vendor: i64,
        event: &str,
        job: &DeferredJob,
    ) -> Result<(), ActionError> {
        self.invalidate(vendor).await?;
        let empty = Value::Array(Vec::new());
        let data = job.get("data").unwrap_or(&empty);
        if self.apply_event_deltas && EVENTS.contains(&event) {
            self.apply(vendor, event, data).await?;
        }
        tracing::info!(
            vendor_id = vendor,
            event,
            "analytics tracked: dashboard caches invalidated"
        );
        Ok(())
    }

    /// Forgets the vendor's derived keys.
    async fn invalidate(&self, vendor: i64) -> Result<(), ActionError> {
        let date = today();
        let keys: Vec<String> = self
            .forget
            .iter()
            .map(|k| {
                k.replace("{vendor}", &vendor.to_string())
                    .replace("{date}", &date)
            })
            .collect();
        self.store.forget_many(&keys).await.map_err(cache_error)?;
        Ok(())
    }

    async fn apply(&self, vendor: i64, event: &str, data: &Value) -> Result<(), ActionError> {
        let now = chrono::Utc::now().format("%H:%M:%S").to_string();
        self.store
            .update(&format!("realtime_metrics_{vendor}"), self.ttl, |old| {
                apply_event(old, event, data, &now)
            })
            .await
            .map_err(cache_error)?;
        Ok(())
    }
}

/// A database value as PDO hands it to PHP.
fn sql_to_php(v: crate::app::SqlValue) -> Value {
    use crate::app::SqlValue;
    match v {
        SqlValue::Null => Value::Null,
        SqlValue::Int(i) => Value::Int(i),
        SqlValue::Float(f) => Value::Float(f),
        SqlValue::Text(s) => Value::Str(s.into_bytes()),
        SqlValue::Bytes(b) => Value::Str(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(data: Vec<(&str, Value)>) -> DeferredJob {
        DeferredJob {
            action: "analytics_tracking".into(),
            data: Value::Array(
                data.into_iter()
                    .map(|(k, v)| (Key::Str(k.as_bytes().to_vec()), v))
                    .collect(),
            ),
        }
    }

    #[test]
    fn ids_are_read_as_php_finds_them() {
        let s = |t: &str| Value::Str(t.as_bytes().to_vec());
        assert_eq!(
            id_arg(&job(vec![("order_id", Value::Int(7))]), "order_id"),
            IdArg::Id(7)
        );
        assert_eq!(
            id_arg(&job(vec![("order_id", s("42"))]), "order_id"),
            IdArg::Id(42)
        );
        assert_eq!(
            id_arg(&job(vec![("order_id", s(" 42 "))]), "order_id"),
            IdArg::Id(42)
        );
        assert_eq!(
            id_arg(&job(vec![("order_id", Value::Float(3.0))]), "order_id"),
            IdArg::Id(3)
        );
        assert_eq!(
            id_arg(&job(vec![("order_id", s("test_order_1"))]), "order_id"),
            IdArg::NotNumeric("test_order_1".into())
        );
        assert_eq!(
            id_arg(&job(vec![("order_id", s("inf"))]), "order_id"),
            IdArg::NotNumeric("inf".into())
        );
        assert_eq!(id_arg(&job(vec![]), "order_id"), IdArg::Missing);
        assert_eq!(
            id_arg(&job(vec![("order_id", Value::Null)]), "order_id"),
            IdArg::Missing
        );
    }

    /// The options sit inside the lead's internally tagged `ActionKind` (`kind = "analytics"`): the tag is
    /// consumed there, so `deny_unknown_fields` still names a misspelt key.
    #[test]
    fn options_work_inside_a_kind_tagged_enum() {
        #[derive(Debug, PartialEq, Eq, Deserialize)]
        #[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
        enum Kind {
            Analytics(AnalyticsOptions),
            CacheWarming(crate::actions::cache_warming::CacheWarmingOptions),
        }
        let k: Kind = toml::from_str("kind = \"analytics\"\nmetrics_ttl = 60\n").unwrap();
        assert_eq!(
            k,
            Kind::Analytics(AnalyticsOptions {
                metrics_ttl: Some(60),
                ..AnalyticsOptions::default()
            })
        );
        let k: Kind = toml::from_str("kind = \"cache_warming\"\n").unwrap();
        assert_eq!(k, Kind::CacheWarming(Default::default()));
        let err = toml::from_str::<Kind>("kind = \"analytics\"\nmetric_ttl = 60\n").unwrap_err();
        assert!(err.to_string().contains("metric_ttl"), "{err}");
    }

    #[test]
    fn options_reject_unknown_keys() {
        let o: AnalyticsOptions =
            toml::from_str("metrics_ttl = 60\napply_event_deltas = true\n").unwrap();
        assert_eq!(o.metrics_ttl, Some(60));
        assert!(o.apply_event_deltas);
        assert!(toml::from_str::<AnalyticsOptions>("ttl = 60\n").is_err());
    }
}
