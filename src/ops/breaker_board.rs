//! The WhatsApp circuit breakers where other processes can see them: `work` writes each open sender's
//! state into the app's cache store (the store `queue:restart` uses) every [`PUBLISH_EVERY`], with a
//! short TTL so a stopped worker's entry goes away by itself, and forgets it once the breaker closes;
//! `monitor` reads the entry of `WHATSAPP_PHONE_NUMBER_ID`.
//!
//! Key: `defer_worker:whatsapp_breaker:<phone-number id>`; value: a PHP string holding JSON
//! (`{"code":190,"probe_in_s":null,"token":"1a2b3c4d"}`: the token's fingerprint, never the token).
//! A store error is logged once per outage and never stops the worker.

use std::time::Duration;

use serde_json::{json, Value as Json};
use tokio_util::sync::CancellationToken;

use crate::actions::whatsapp::Breakers;
use crate::laravel::cache_store::CacheStore;
use crate::php::Value;

/// How often `work` writes the open breakers.
pub const PUBLISH_EVERY: Duration = Duration::from_secs(2);
/// Lifetime of an entry: a few missed writes (a stopped worker) and it is gone.
const TTL_SECS: i64 = 10;

/// The cache key of `phone_number_id`'s breaker.
pub fn key(phone_number_id: &str) -> String {
    format!("defer_worker:whatsapp_breaker:{phone_number_id}")
}

/// Writes the open breakers until `stop`; forgets a sender's entry when its breaker closes.
pub async fn publish(store: CacheStore, breakers: Breakers, stop: CancellationToken) {
    let mut failing = false;
    loop {
        let mut result = Ok(());
        for b in breakers.states() {
            let k = key(&b.sender.phone_number_id);
            let written = if b.open {
                let doc = json!({
                    "code": b.code,
                    "probe_in_s": b.probe_in_s,
                    "token": b.sender.token_fingerprint,
                });
                store
                    .put(&k, &Value::Str(doc.to_string().into_bytes()), TTL_SECS)
                    .await
            } else {
                store.forget(&k).await.map(drop)
            };
            if let Err(e) = written {
                result = Err(e);
                break;
            }
        }
        match result {
            Ok(()) => failing = false,
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(%error, "cannot publish the WhatsApp circuit breakers for `monitor`; will keep trying");
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(PUBLISH_EVERY) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// The published state of `phone_number_id`'s breaker: `None` when no worker reports it open.
pub async fn read(store: &CacheStore, phone_number_id: &str) -> anyhow::Result<Option<Json>> {
    let k = key(phone_number_id);
    let Some(value) = store.get(&k).await? else {
        return Ok(None);
    };
    let Value::Str(bytes) = value else {
        anyhow::bail!("{}: not a breaker entry", store.describe_key(&k));
    };
    Ok(Some(serde_json::from_slice(&bytes).map_err(|e| {
        anyhow::anyhow!("{}: not a breaker entry: {e}", store.describe_key(&k))
    })?))
}

/// The line `monitor` prints for a sender.
pub fn line(phone_number_id: &str, state: Option<&Json>) -> String {
    match state {
        None => format!("WhatsApp sender {phone_number_id}: circuit breaker closed"),
        Some(s) => {
            let probe = match s["probe_in_s"].as_u64() {
                Some(n) => format!("probe in {n}s"),
                None => "no probe until the token changes or the worker restarts".to_owned(),
            };
            format!(
                "WhatsApp sender {phone_number_id}: circuit breaker OPEN (Meta error {}), {probe}",
                s["code"]
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_open_or_closed() {
        assert_eq!(
            line("1055", None),
            "WhatsApp sender 1055: circuit breaker closed"
        );
        let s = json!({"code": 368, "probe_in_s": 42, "token": "1a2b3c4d"});
        assert_eq!(
            line("1055", Some(&s)),
            "WhatsApp sender 1055: circuit breaker OPEN (Meta error 368), probe in 42s"
        );
        let s = json!({"code": 190, "probe_in_s": null});
        assert!(line("1055", Some(&s))
            .ends_with("no probe until the token changes or the worker restarts"));
    }
}
