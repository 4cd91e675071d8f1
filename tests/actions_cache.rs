//! The app's cache store as the analytics and cache-warming actions use it, against real Laravel 8.83
//! (`tests/php/cache_values.php`: the harness app's `Cache` facade on the redis and file stores): values
//! we write are what PHP's `Cache::get` returns (types included), values PHP writes are what we read,
//! TTLs are Laravel's; `analytics_tracking` for a seeded MariaDB order applies the `new_order` delta (twice
//! = two orders, also under concurrent jobs from two store instances) and forgets the dashboard keys;
//! `cache_warming` forgets exactly its listed `vendor_{id}_*` keys and leaves every other key.

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;

use defer_worker::actions::analytics::{AnalyticsAction, AnalyticsOptions};
use defer_worker::actions::cache_warming::{CacheWarmingAction, CacheWarmingOptions, DEFAULT_KEYS};
use defer_worker::actions::{ActionError, JobMeta};
use defer_worker::app::{AppData, AppSection};
use defer_worker::deferred::DeferredJob;
use defer_worker::laravel::cache_store::CacheStore;
use defer_worker::php::{self, Key, Value};

use crate::app_data::load_fixture_app;
use crate::support::{repo, DbKind, World};

const META: JobMeta<'static> = JobMeta {
    uuid: "test-uuid",
    id: "1",
    queue: "analytics",
    attempt: 1,
};

/// A world whose PHP and defer-worker share the cache store `driver`; the guard deletes the world's keys
/// on Redis DB 1 (the `cache` connection), which `World` does not clean.
pub(crate) fn world(driver: &str, db: DbKind) -> (World, Db1Keys) {
    let mut w = World::new(db);
    let storage = w.dir.path().join("storage").display().to_string();
    w.extra.push(("CACHE_DRIVER".into(), driver.into()));
    w.extra.push(("APP_STORAGE_PATH".into(), storage));
    let guard = Db1Keys(w.prefix.clone());
    if driver == "database" {
        // Creates the `cache` table the way Laravel's cache migration does.
        assert_eq!(php(&w, &["get", "anything"]).trim(), "N;");
    }
    (w, guard)
}

pub(crate) struct Db1Keys(String);

impl Drop for Db1Keys {
    fn drop(&mut self) {
        if let Ok(mut c) =
            redis::Client::open("redis://127.0.0.1:6379/1").and_then(|c| c.get_connection())
        {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}*", self.0))
                .query(&mut c)
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut c);
            }
        }
    }
}

/// Runs `tests/php/cache_values.php` with the world's environment; returns stdout.
fn php(w: &World, args: &[&str]) -> String {
    let out = Command::new("php")
        .arg(repo().join("tests/php/cache_values.php"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(w.env())
        .output()
        .expect("run php");
    assert!(
        out.status.success(),
        "php cache_values.php {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// `Cache::get(key)` in PHP, as a value.
pub(crate) fn php_get(w: &World, key: &str) -> Value {
    let text = php(w, &["get", key]);
    php::unserialize(text.trim_end_matches('\n').as_bytes()).expect("PHP serialize output")
}

pub(crate) fn php_put(w: &World, key: &str, ttl: i64, value: &Value) {
    let ser = String::from_utf8(php::serialize(value)).expect("utf-8 value");
    php(w, &["put", key, &ttl.to_string(), &ser]);
}

/// Which of `keys` PHP's `Cache::has` sees.
pub(crate) fn php_has(w: &World, keys: &[String]) -> Vec<bool> {
    let mut args = vec!["has"];
    args.extend(keys.iter().map(String::as_str));
    php(w, &args).lines().map(|l| l == "1").collect()
}

async fn store(w: &World) -> CacheStore {
    let env: HashMap<String, String> = w.env().into_iter().collect();
    CacheStore::from_lookup(&|k| env.get(k).cloned())
        .await
        .expect("cache settings")
        .expect("a shared store")
}

async fn app_data(w: &World) -> AppData {
    let env: HashMap<String, String> = w.env().into_iter().collect();
    AppData::from_lookup(&AppSection::default(), &|k| env.get(k).cloned())
        .await
        .expect("settings")
        .expect("database")
}

fn s(text: &str) -> Value {
    Value::Str(text.as_bytes().to_vec())
}

fn arr(pairs: Vec<(&str, Value)>) -> Value {
    Value::Array(
        pairs
            .into_iter()
            .map(|(k, v)| (Key::Str(k.as_bytes().to_vec()), v))
            .collect(),
    )
}

fn job(action: &str, data: Value) -> DeferredJob {
    DeferredJob {
        action: action.into(),
        data,
    }
}

/// Ours → PHP and PHP → ours, with Laravel's value encoding and TTL rules.
async fn values_both_ways(driver: &str) {
    let db = if driver == "database" {
        DbKind::Postgres
    } else {
        DbKind::Sqlite
    };
    let (w, _g) = world(driver, db);
    let store = store(&w).await;
    let nested = arr(vec![
        ("active_orders", Value::Int(3)),
        ("pending_revenue", Value::Float(12500.5)),
        ("name", s("Café Müller & Söhne 🍕")),
        (
            "flags",
            Value::Array(vec![
                (Key::Int(0), Value::Bool(true)),
                (Key::Int(1), Value::Null),
            ]),
        ),
    ]);
    store.put("dw_nested", &nested, 300).await.expect("put");
    assert_eq!(php_get(&w, "dw_nested"), nested);
    store.put("dw_text", &s("12a"), 300).await.expect("put");
    assert_eq!(php_get(&w, "dw_text"), s("12a"));
    store
        .put("dw_int", &Value::Int(42), 300)
        .await
        .expect("put");
    store
        .put("dw_float", &Value::Float(0.1 + 0.2), 300)
        .await
        .expect("put");
    if driver == "redis" {
        // RedisStore keeps numbers raw and hands them back as strings.
        assert_eq!(php_get(&w, "dw_int"), s("42"));
        assert_eq!(php_get(&w, "dw_float"), s("0.3"));
        assert_eq!(store.get("dw_int").await.expect("get"), Some(s("42")));
    } else {
        assert_eq!(php_get(&w, "dw_int"), Value::Int(42));
        assert_eq!(php_get(&w, "dw_float"), Value::Float(0.1 + 0.2));
    }
    // A TTL of 0 forgets, as Repository::put does.
    store.put("dw_text", &s("x"), 0).await.expect("put 0");
    assert_eq!(php_get(&w, "dw_text"), Value::Null);

    // PHP → ours.
    php_put(&w, "php_nested", 600, &nested);
    assert_eq!(
        store.get("php_nested").await.expect("get"),
        Some(nested.clone())
    );
    php_put(&w, "php_int", 600, &Value::Int(7));
    let expected = if driver == "redis" {
        s("7")
    } else {
        Value::Int(7)
    };
    assert_eq!(store.get("php_int").await.expect("get"), Some(expected));
    assert_eq!(store.get("never_written").await.expect("get"), None);

    // The TTL as each store keeps it.
    let before = chrono::Utc::now().timestamp();
    store.put("dw_ttl", &Value::Int(1), 120).await.expect("put");
    let after = chrono::Utc::now().timestamp();
    if driver == "redis" {
        let mut c = redis::Client::open("redis://127.0.0.1:6379/1")
            .expect("url")
            .get_connection()
            .expect("redis");
        let key = format!("{}restrosaas_cache:dw_ttl", w.prefix);
        let ttl: i64 = redis::cmd("TTL").arg(&key).query(&mut c).expect("TTL");
        assert!((1..=120).contains(&ttl), "TTL of {key}: {ttl}");
    } else if driver == "file" {
        let path = store.physical_key("dw_ttl");
        let content = std::fs::read(&path).expect("cache file");
        let expiry: i64 = std::str::from_utf8(&content[..10])
            .expect("digits")
            .parse()
            .expect("expiry");
        assert!((before + 120..=after + 120).contains(&expiry), "{expiry}");
        assert_eq!(&content[10..], b"i:1;");
        // An expired entry is absent for both.
        std::fs::write(&path, b"1000000000i:1;").expect("write");
        assert_eq!(store.get("dw_ttl").await.expect("get"), None);
        assert_eq!(php_get(&w, "dw_ttl"), Value::Null);
    }

    assert!(store.forget("php_nested").await.expect("forget"));
    assert!(!store.forget("php_nested").await.expect("forget again"));
    assert_eq!(php_get(&w, "php_nested"), Value::Null);
}

#[tokio::test]
async fn values_both_ways_redis_store() {
    values_both_ways("redis").await;
}

#[tokio::test]
async fn values_both_ways_file_store() {
    values_both_ways("file").await;
}

#[tokio::test]
async fn values_both_ways_database_store() {
    values_both_ways("database").await;
}

/// `analytics_tracking` `{order_id}` for seeded order 2 (vendor 2, grand_total 35.65), twice.
async fn analytics_counts_each_order(driver: &str) {
    let (w, _g) = world(driver, DbKind::MySql);
    load_fixture_app(&w);
    let action = AnalyticsAction::new(
        &AnalyticsOptions::default(),
        Some(app_data(&w).await),
        Some(store(&w).await),
    )
    .await
    .expect("action");
    // What PHP cached before: the vendor's dashboard keys, the metrics PHP's service wrote, and keys of
    // other vendors / other kinds that must stay.
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let derived: Vec<String> = [
        "bi_dashboard_2_today",
        "bi_dashboard_2_year",
        "widgets_2_week",
        "dashboard_snapshot_2",
        "vendor_2_order_stats_all",
        "vendor_2_dashboard_stats",
    ]
    .iter()
    .map(|k| (*k).to_owned())
    .chain([
        format!("widgets_2_{today}"),
        format!("daily_stats_2_{today}"),
    ])
    .collect();
    let kept: Vec<String> = [
        "bi_dashboard_3_today",
        "vendor_2_info",
        "dashboard_snapshot_22",
    ]
    .iter()
    .map(|k| (*k).to_owned())
    .collect();
    for k in derived.iter().chain(&kept) {
        php_put(&w, k, 3600, &arr(vec![("cached", Value::Bool(true))]));
    }
    php_put(
        &w,
        "realtime_metrics_2",
        300,
        &arr(vec![
            ("active_orders", Value::Int(4)),
            ("today_orders", Value::Int(9)),
            ("server_status", s("online")),
        ]),
    );

    let order = job("analytics_tracking", arr(vec![("order_id", Value::Int(2))]));
    action.run(&order, META).await.expect("first run");
    // The order id as a numeric string (a form post) is the same order.
    let order_str = job("analytics_tracking", arr(vec![("order_id", s("2"))]));
    action.run(&order_str, META).await.expect("second run");

    let m = php_get(&w, "realtime_metrics_2");
    assert_eq!(m.get("active_orders"), Some(&Value::Int(6)), "{m:?}");
    assert_eq!(m.get("today_orders"), Some(&Value::Int(11)));
    assert_eq!(m.get("pending_revenue"), Some(&Value::Float(71.3)));
    assert_eq!(
        m.get("server_status"),
        Some(&s("online")),
        "PHP's other keys stay"
    );
    let hms = m
        .get("last_order_time")
        .and_then(Value::as_str)
        .expect("time");
    assert!(
        chrono::NaiveTime::parse_from_str(hms, "%H:%M:%S").is_ok(),
        "{hms}"
    );
    assert!(
        php_has(&w, &derived).iter().all(|h| !h),
        "derived keys forgotten"
    );
    assert!(php_has(&w, &kept).iter().all(|h| *h), "other keys kept");

    // The test command's order id: logged, completed, nothing written.
    let test_order = job(
        "analytics_tracking",
        arr(vec![("order_id", s("test_order_1"))]),
    );
    action
        .run(&test_order, META)
        .await
        .expect("non-numeric id completes");
    assert_eq!(
        php_get(&w, "realtime_metrics_2").get("today_orders"),
        Some(&Value::Int(11))
    );
    // A numeric id with no order fails for good.
    let missing = job(
        "analytics_tracking",
        arr(vec![("order_id", Value::Int(999))]),
    );
    assert_eq!(
        action.run(&missing, META).await.unwrap_err(),
        ActionError::Permanent {
            message: "Order 999 not found".into()
        }
    );
}

#[tokio::test]
async fn analytics_new_order_twice_counts_two_orders_redis_store() {
    analytics_counts_each_order("redis").await;
}

#[tokio::test]
async fn analytics_new_order_twice_counts_two_orders_file_store() {
    analytics_counts_each_order("file").await;
}

/// 30 jobs at once, from two store instances (two worker processes' worth of connections): no update
/// is lost. On Redis the second instance is a different connection, so only WATCH keeps them apart.
async fn concurrent_jobs_lose_no_update(driver: &str) {
    let (w, _g) = world(driver, DbKind::MySql);
    load_fixture_app(&w);
    let app = app_data(&w).await;
    let opts = AnalyticsOptions::default();
    let mut actions = vec![
        AnalyticsAction::new(&opts, Some(app.clone()), Some(store(&w).await))
            .await
            .expect("action"),
    ];
    if driver == "redis" {
        actions.push(
            AnalyticsAction::new(&opts, Some(app), Some(store(&w).await))
                .await
                .expect("action"),
        );
    }
    let actions = Arc::new(actions);
    let mut tasks = Vec::new();
    for i in 0..30 {
        let actions = actions.clone();
        tasks.push(tokio::spawn(async move {
            let order = job("analytics_tracking", arr(vec![("order_id", Value::Int(1))]));
            actions[i % actions.len()].run(&order, META).await
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("run");
    }
    let m = php_get(&w, "realtime_metrics_1");
    assert_eq!(m.get("today_orders"), Some(&Value::Int(30)), "{m:?}");
    assert_eq!(
        m.get("pending_revenue"),
        Some(&Value::Float(12500.5 * 30.0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_analytics_jobs_lose_no_update_redis_store() {
    concurrent_jobs_lose_no_update("redis").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_analytics_jobs_lose_no_update_file_store() {
    concurrent_jobs_lose_no_update("file").await;
}

/// DashboardNotificationService's `{vendor_id, event, data}`: it already applied the delta, so by default
/// only the dashboard keys go; with `apply_event_deltas` the delta is applied too.
#[tokio::test]
async fn event_payloads_invalidate_and_apply_only_when_asked() {
    let (w, _g) = world("redis", DbKind::MySql);
    load_fixture_app(&w);
    let metrics = arr(vec![
        ("active_orders", Value::Int(1)),
        ("pending_revenue", Value::Float(25.5)),
    ]);
    php_put(&w, "realtime_metrics_2", 300, &metrics);
    php_put(&w, "dashboard_snapshot_2", 1800, &Value::Int(1));
    let event = job(
        "analytics_tracking",
        arr(vec![
            ("vendor_id", Value::Int(2)),
            ("event", s("order_completed")),
            ("data", arr(vec![("order_total", Value::Float(25.5))])),
        ]),
    );
    let plain = AnalyticsAction::new(
        &AnalyticsOptions::default(),
        Some(app_data(&w).await),
        Some(store(&w).await),
    )
    .await
    .expect("action");
    plain.run(&event, META).await.expect("run");
    assert_eq!(php_get(&w, "realtime_metrics_2"), metrics);
    assert_eq!(php_has(&w, &["dashboard_snapshot_2".into()]), [false]);

    let applying = AnalyticsAction::new(
        &AnalyticsOptions {
            apply_event_deltas: true,
            ..AnalyticsOptions::default()
        },
        Some(app_data(&w).await),
        Some(store(&w).await),
    )
    .await
    .expect("action");
    applying.run(&event, META).await.expect("run");
    let m = php_get(&w, "realtime_metrics_2");
    assert_eq!(m.get("active_orders"), Some(&Value::Int(0)));
    assert_eq!(m.get("completed_orders"), Some(&Value::Int(1)));
    assert_eq!(m.get("today_revenue"), Some(&Value::Float(25.5)));
    assert_eq!(m.get("pending_revenue"), Some(&Value::Int(0)));
    // dashboard_view and other shapes: logged, nothing written.
    let view = job(
        "analytics_tracking",
        arr(vec![
            ("action", s("dashboard_view")),
            ("vendor_id", Value::Int(2)),
        ]),
    );
    applying.run(&view, META).await.expect("run");
    assert_eq!(php_get(&w, "realtime_metrics_2"), m);
}

/// The app database down: an order job is released for later, not failed.
#[tokio::test]
async fn analytics_with_the_database_down_is_a_retry() {
    let (w, _g) = world("file", DbKind::Sqlite);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
        .to_string();
    let env: HashMap<String, String> = w
        .env()
        .into_iter()
        .chain([
            ("DB_CONNECTION".to_owned(), "mysql".to_owned()),
            ("DB_PORT".to_owned(), port),
            ("DB_HOST".to_owned(), "127.0.0.1".to_owned()),
        ])
        .collect();
    let app = AppData::from_lookup(&AppSection::default(), &|k| env.get(k).cloned())
        .await
        .expect("lazy")
        .expect("configured");
    let action = AnalyticsAction::new(
        &AnalyticsOptions::default(),
        Some(app),
        Some(store(&w).await),
    )
    .await
    .expect("action");
    let order = job("analytics_tracking", arr(vec![("order_id", Value::Int(1))]));
    let err = action.run(&order, META).await.unwrap_err();
    assert!(matches!(err, ActionError::Retry { .. }), "{err:?}");
    assert_eq!(php_get(&w, "realtime_metrics_1"), Value::Null);
}

/// `cache_warming` `{vendor_id: "7"}` forgets every listed `vendor_7_*` key and nothing else.
async fn cache_warming_forgets_exactly(driver: &str) {
    let (w, _g) = world(driver, DbKind::Sqlite);
    let action = CacheWarmingAction::new(&CacheWarmingOptions::default(), Some(store(&w).await))
        .await
        .expect("action");
    let listed = action.keys_for(7);
    assert_eq!(listed.len(), DEFAULT_KEYS.len());
    let others: Vec<String> = [
        "vendor_70_info",
        "vendor_8_categories_with_products",
        "realtime_metrics_7",
        "about_page_7",
        "vendor_7_something_else",
        "system_languages",
    ]
    .iter()
    .map(|k| (*k).to_owned())
    .collect();
    for k in listed.iter().chain(&others) {
        php_put(&w, k, 3600, &arr(vec![("id", Value::Int(7))]));
    }
    assert!(php_has(&w, &listed).iter().all(|h| *h));

    let warm = job("cache_warming", arr(vec![("vendor_id", s("7"))]));
    action.run(&warm, META).await.expect("run");
    assert_eq!(
        php_has(&w, &listed),
        vec![false; listed.len()],
        "{listed:?}"
    );
    assert_eq!(php_has(&w, &others), vec![true; others.len()], "{others:?}");

    // No usable vendor id: completed, nothing touched.
    let bad = job("cache_warming", arr(vec![("vendor_id", s("abc"))]));
    action.run(&bad, META).await.expect("run");
    assert_eq!(php_has(&w, &others), vec![true; others.len()]);
}

#[tokio::test]
async fn cache_warming_forgets_exactly_the_listed_keys_redis_store() {
    cache_warming_forgets_exactly("redis").await;
}

#[tokio::test]
async fn cache_warming_forgets_exactly_the_listed_keys_file_store() {
    cache_warming_forgets_exactly("file").await;
}
