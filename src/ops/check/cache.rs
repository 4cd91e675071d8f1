//! The app's cache store, which carries `queue:restart`'s signal, the maxExceptions counters and the
//! analytics and cache-warming actions' keys: the store the settings name, the restart signal read, and
//! a probe key written and forgotten (a file store's directory must be writable, a database store's
//! table present).

use super::model::Checks;
use crate::config::Settings;
use crate::laravel::cache_store::CacheStore;
use crate::php::Value;
use crate::util::clock;

/// Written for a minute, then forgotten at once.
const PROBE: &str = "defer-worker:check";

/// `connection` and `queues`: what `work` will take jobs from, whose pause flags are read.
pub(super) async fn check(
    c: &mut Checks,
    settings: &Settings,
    connection: &str,
    queues: &[String],
) {
    let store = match CacheStore::from_lookup(&settings.lookup()).await {
        Ok(Some(store)) => store,
        Ok(None) => {
            let fix = c.set(
                "CACHE_DRIVER",
                "to the store the app's PHP workers use (redis, file or database)",
            );
            c.warn(
                "cache.store",
                "CACHE_DRIVER=array: `queue:restart` cannot reach the worker, maxExceptions is not counted \
                 and the analytics actions are handed to PHP",
                Some(fix),
            );
            return;
        }
        Err(e) => {
            let fix = c.set("the CACHE_* key named", "");
            c.fail("cache.store", e.to_string(), fix);
            return;
        }
    };
    let signal = match store.restart_signal().await {
        Ok(None) => "no queue:restart signalled yet".to_owned(),
        Ok(Some(at)) => format!("last queue:restart at {at} (Unix time)"),
        Err(e) => {
            c.fail(
                "cache.store",
                format!("{}: {e}", store.describe()),
                "see the error: the store's connection, directory or table",
            );
            return;
        }
    };
    let probe = Value::Int(clock::unix_now());
    let written = match store.put(PROBE, &probe, 60).await {
        Ok(()) => store.forget(PROBE).await.map(drop),
        Err(e) => Err(e),
    };
    match written {
        Ok(()) => {
            c.pass(
                "cache.store",
                format!("{}: {signal}; a probe key written and forgotten", store.describe()),
            );
            paused(c, &store, connection, queues).await;
        }
        Err(e) => c.fail(
            "cache.store",
            format!("{} is readable ({signal}) but not writable: {e}", store.describe()),
            "give the worker's user write access to the store (the file store's directory, the database \
             store's table)",
        ),
    }
}

/// The queues paused with `queue:pause` (or `defer-worker pause`): the worker takes no job from them.
async fn paused(c: &mut Checks, store: &CacheStore, connection: &str, queues: &[String]) {
    match store.paused_queues(connection, queues).await {
        Ok(p) if p.is_empty() => c.pass(
            "cache.pause",
            format!("none of the queues is paused on connection {connection}"),
        ),
        Ok(p) => {
            let list: Vec<String> = p.iter().map(|q| format!("{connection}:{q}")).collect();
            c.warn(
                "cache.pause",
                format!(
                    "paused (queue:pause): {}; the worker takes no job from them until they are resumed",
                    list.join(", ")
                ),
                Some(format!("`defer-worker resume {}` when it is time", list.join(" "))),
            );
        }
        Err(e) => c.fail(
            "cache.pause",
            e.to_string(),
            "see the error: the store's connection",
        ),
    }
}
