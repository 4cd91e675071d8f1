//! `cache_warming` (`['vendor_id' => V]`, 5 s delay, on queue `default` because of the app's `later()`
//! bug): forgets the vendor's cached menu, vendor and dashboard keys so PHP rebuilds them on the next
//! request (docs/restrosaas.md §6.3, docs/restrosaas.md §10.4). The app's own handler only sleeps.
//!
//! Forget, not recompute, on purpose: the app's warm-up code (`CacheOptimizationService::warmupVendorCache`)
//! cannot run against the migrated schema (a missing `products` model and relation, missing columns), and
//! the values PHP caches are Eloquent `toArray()` shapes of models and relations that a copy in Rust would
//! have to follow release by release. A forgotten key is always correct: PHP's `Cache::remember` refills it.
//!
//! A missing or non-numeric `vendor_id` is logged and completed, as the app's handler does. This action
//! reads no database and never logs the payload above debug level.

use serde::Deserialize;

use super::analytics::{cache_error, id_arg};
use super::{ActionError, JobMeta};
use crate::deferred::{DeferredJob, IdArg};
use crate::laravel::cache_store::CacheStore;

/// The vendor keys of docs/restrosaas.md §6.3 (`{vendor}` = the id): CacheOptimizationService's warm-up keys
/// and every
/// `popular_products_{n}` its invalidation knows, CategoryRepository's menu keys, the settings key.
pub const DEFAULT_KEYS: &[&str] = &[
    "vendor_{vendor}_categories_with_products",
    "vendor_{vendor}_popular_products_5",
    "vendor_{vendor}_popular_products_10",
    "vendor_{vendor}_popular_products_15",
    "vendor_{vendor}_popular_products_20",
    "vendor_{vendor}_popular_products_25",
    "vendor_{vendor}_popular_products_30",
    "vendor_{vendor}_popular_products_35",
    "vendor_{vendor}_popular_products_40",
    "vendor_{vendor}_popular_products_45",
    "vendor_{vendor}_popular_products_50",
    "vendor_{vendor}_info",
    "vendor_{vendor}_dashboard_stats",
    "vendor_{vendor}_active_promocodes",
    "vendor_{vendor}_categories_with_items",
    "vendor_{vendor}_active_categories",
    "vendor_{vendor}_settings",
];

/// `[actions.<name>] kind = "cache_warming"`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheWarmingOptions {
    /// The keys to forget, with `{vendor}`; default [`DEFAULT_KEYS`].
    pub keys: Option<Vec<String>>,
    /// Keys forgotten in addition to `keys` (e.g. a fork's own `about_page_{vendor}`).
    pub extra_keys: Vec<String>,
}

/// The cache-warming action, built once at worker start.
#[derive(Debug, Clone)]
pub struct CacheWarmingAction {
    store: CacheStore,
    keys: Vec<String>,
}

impl CacheWarmingAction {
    /// `store`: the app's cache store; required (`CACHE_DRIVER=array` has nothing to forget).
    pub async fn new(
        opts: &CacheWarmingOptions,
        store: Option<CacheStore>,
    ) -> anyhow::Result<Self> {
        let store = store.ok_or_else(|| {
            anyhow::anyhow!("the cache_warming action forgets keys in the app's cache store, but CACHE_DRIVER=array keeps it inside each PHP process: set CACHE_DRIVER to redis, file or database as the app does")
        })?;
        let mut keys = opts
            .keys
            .clone()
            .unwrap_or_else(|| DEFAULT_KEYS.iter().map(|s| (*s).to_owned()).collect());
        keys.extend(opts.extra_keys.iter().cloned());
        anyhow::ensure!(
            keys.iter().all(|k| k.contains("{vendor}")),
            "every cache_warming key must contain {{vendor}}, or it would be forgotten for every vendor"
        );
        Ok(CacheWarmingAction { store, keys })
    }

    /// The keys forgotten for `vendor`.
    pub fn keys_for(&self, vendor: i64) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| k.replace("{vendor}", &vendor.to_string()))
            .collect()
    }

    pub async fn run(&self, job: &DeferredJob, meta: JobMeta<'_>) -> Result<(), ActionError> {
        tracing::debug!(queue = meta.queue, data = ?job.data, "cache_warming data");
        let vendor = match id_arg(job, "vendor_id") {
            IdArg::Id(v) => v,
            IdArg::Missing | IdArg::NotNumeric(_) => {
                tracing::info!("cache_warming: no numeric vendor_id, nothing to warm");
                return Ok(());
            }
        };
        let keys = self.keys_for(vendor);
        let forgotten = self.store.forget_many(&keys).await.map_err(cache_error)?;
        tracing::info!(
            vendor_id = vendor,
            forgotten,
            keys = keys.len(),
            "cache warmed: vendor keys forgotten for PHP to rebuild"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_and_keys() {
        let o: CacheWarmingOptions =
            toml::from_str("extra_keys = [\"about_page_{vendor}\"]\n").expect("valid");
        assert_eq!(o.extra_keys, ["about_page_{vendor}"]);
        assert!(toml::from_str::<CacheWarmingOptions>("key = []\n").is_err());
        assert!(DEFAULT_KEYS
            .iter()
            .all(|k| k.starts_with("vendor_{vendor}_")));
    }
}
