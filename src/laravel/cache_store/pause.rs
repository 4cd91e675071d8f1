//! Queue pause flags in the app's cache store, as Laravel 12.40+ and 13.x keep them
//! (docs/laravel-queue.md §8.3): `QueueManager::pause` writes `illuminate:queue:paused:{connection}:{queue}` = `true` forever,
//! `pauseFor` the same with a TTL, `resume` forgets it; 13.x's `pauseAll` writes
//! `illuminate:queues:paused` = `true`, which pauses every queue of every connection until `resumeAll`
//! forgets it. A queue is paused when either entry is truthy (`isPaused`, `getPausedQueues`).
//!
//! The entries go through the store's own `put`/`forever`/`forget`/`get`/`many`, so the key prefix and
//! the value's bytes are the ones PHP's `Cache::get` reads, on the redis, file and database stores.
//!
//! This file reads and writes the flags. It must not decide what a worker does with them (the worker
//! does), nor parse a `connection:queue` argument (the command does).

use std::collections::BTreeSet;
use std::time::Duration;

use super::{CacheStore, CacheStoreError};
use crate::php::Value;

/// The key of one queue's flag, before `{connection}:{queue}`.
pub const PAUSED_PREFIX: &str = "illuminate:queue:paused:";
/// Laravel 13.x's flag that pauses every queue on every connection.
pub const ALL_PAUSED_KEY: &str = "illuminate:queues:paused";

/// `illuminate:queue:paused:{connection}:{queue}`.
pub fn paused_key(connection: &str, queue: &str) -> String {
    format!("{PAUSED_PREFIX}{connection}:{queue}")
}

impl CacheStore {
    /// Pauses `queue` of `connection`: `QueueManager::pause` (`None`, until resumed) or `pauseFor`
    /// (`Some(ttl)`, whole seconds, a part of a second rounded up). A zero TTL forgets the flag, as
    /// `Cache::put` with a TTL of 0 does.
    pub async fn pause(
        &self,
        connection: &str,
        queue: &str,
        ttl: Option<Duration>,
    ) -> Result<(), CacheStoreError> {
        self.set_flag(&paused_key(connection, queue), ttl).await
    }

    /// `QueueManager::resume`: true when the queue had a flag.
    pub async fn resume(&self, connection: &str, queue: &str) -> Result<bool, CacheStoreError> {
        self.forget(&paused_key(connection, queue)).await
    }

    /// `QueueManager::isPaused` (13.x): the global flag, else the queue's own.
    pub async fn is_paused(&self, connection: &str, queue: &str) -> Result<bool, CacheStoreError> {
        Ok(self
            .paused_queues(connection, &[queue])
            .await?
            .contains(queue))
    }

    /// `QueueManager::getPausedQueues` (13.x), in one round trip on Redis: the queues of `queues` that
    /// are paused, all of them while the global flag is set.
    pub async fn paused_queues<S: AsRef<str>>(
        &self,
        connection: &str,
        queues: &[S],
    ) -> Result<BTreeSet<String>, CacheStoreError> {
        let mut keys = vec![ALL_PAUSED_KEY.to_owned()];
        keys.extend(queues.iter().map(|q| paused_key(connection, q.as_ref())));
        let values = self.many(&keys).await?;
        let truthy = |v: &Option<Value>| v.as_ref().is_some_and(Value::truthy);
        let all = truthy(&values[0]);
        Ok(queues
            .iter()
            .zip(&values[1..])
            .filter(|(_, v)| all || truthy(v))
            .map(|(q, _)| q.as_ref().to_owned())
            .collect())
    }

    /// `QueueManager::pauseAll` (13.x; with `Some(ttl)`, a `pauseFor` of every queue, which Laravel's
    /// own command does not offer).
    pub async fn pause_all(&self, ttl: Option<Duration>) -> Result<(), CacheStoreError> {
        self.set_flag(ALL_PAUSED_KEY, ttl).await
    }

    /// `QueueManager::resumeAll` (13.x): queues paused one by one stay paused. True when the flag was set.
    pub async fn resume_all(&self) -> Result<bool, CacheStoreError> {
        self.forget(ALL_PAUSED_KEY).await
    }

    /// Whether the global flag is set.
    pub async fn all_paused(&self) -> Result<bool, CacheStoreError> {
        Ok(self.get(ALL_PAUSED_KEY).await?.is_some_and(|v| v.truthy()))
    }

    async fn set_flag(&self, key: &str, ttl: Option<Duration>) -> Result<(), CacheStoreError> {
        match ttl {
            None => self.forever(key, &Value::Bool(true)).await,
            Some(ttl) => self.put(key, &Value::Bool(true), ttl_secs(ttl)).await,
        }
    }
}

/// A TTL in whole seconds for `Cache::put`, a part of a second rounded up (so 0.5 s still pauses).
fn ttl_secs(ttl: Duration) -> i64 {
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    i64::try_from(secs).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use tokio::sync::Mutex;

    use super::super::file;
    use super::super::store::Backend;
    use super::*;

    fn file_store(dir: &Path) -> CacheStore {
        CacheStore {
            backend: Backend::File {
                dir: dir.to_path_buf(),
            },
            locks: Arc::new(std::array::from_fn(|_| Mutex::new(()))),
        }
    }

    #[tokio::test]
    async fn pause_writes_true_forever_and_resume_forgets() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = file_store(tmp.path());
        assert!(!store.is_paused("redis", "emails").await.unwrap());
        store.pause("redis", "emails", None).await.unwrap();
        let path = file::path(tmp.path(), "illuminate:queue:paused:redis:emails");
        assert_eq!(std::fs::read(&path).unwrap(), b"9999999999b:1;");
        assert!(store.is_paused("redis", "emails").await.unwrap());
        assert!(!store.is_paused("redis", "default").await.unwrap());
        assert!(
            !store.is_paused("database", "emails").await.unwrap(),
            "the connection is part of the key"
        );
        assert!(store.resume("redis", "emails").await.unwrap());
        assert!(!path.exists());
        assert!(!store.resume("redis", "emails").await.unwrap());
    }

    #[tokio::test]
    async fn pause_for_expires_and_a_zero_ttl_forgets() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = file_store(tmp.path());
        let before = crate::util::clock::unix_now();
        store
            .pause("redis", "emails", Some(Duration::from_millis(1500)))
            .await
            .unwrap();
        let path = file::path(tmp.path(), "illuminate:queue:paused:redis:emails");
        let content = std::fs::read_to_string(&path).unwrap();
        let expiry: i64 = content[..10].parse().unwrap();
        assert!(
            (before + 2..=before + 3).contains(&expiry),
            "1.5 s rounds up to 2: {content}"
        );
        // An entry whose expiry has passed is not a pause.
        std::fs::write(&path, b"1000000000b:1;").unwrap();
        assert!(!store.is_paused("redis", "emails").await.unwrap());
        store.pause("redis", "emails", None).await.unwrap();
        store
            .pause("redis", "emails", Some(Duration::ZERO))
            .await
            .unwrap();
        assert!(!path.exists(), "put with a TTL of 0 forgets");
    }

    #[tokio::test]
    async fn paused_queues_batches_and_honours_the_global_flag() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = file_store(tmp.path());
        let queues = ["whatsapp", "emails", "default"];
        store.pause("redis", "emails", None).await.unwrap();
        let paused = store.paused_queues("redis", &queues).await.unwrap();
        assert_eq!(paused.into_iter().collect::<Vec<_>>(), ["emails"]);

        store.pause_all(None).await.unwrap();
        assert!(store.all_paused().await.unwrap());
        assert_eq!(
            std::fs::read(file::path(tmp.path(), "illuminate:queues:paused")).unwrap(),
            b"9999999999b:1;"
        );
        let paused = store.paused_queues("database", &queues).await.unwrap();
        assert_eq!(
            paused.len(),
            3,
            "every queue of every connection: {paused:?}"
        );

        assert!(store.resume_all().await.unwrap());
        let paused = store.paused_queues("redis", &queues).await.unwrap();
        assert_eq!(
            paused.into_iter().collect::<Vec<_>>(),
            ["emails"],
            "resumeAll leaves queues paused one by one"
        );

        // A falsy value (what a hand-written `Cache::forever(.., false)` leaves) is not a pause.
        store
            .forever(&paused_key("redis", "emails"), &Value::Bool(false))
            .await
            .unwrap();
        assert!(store
            .paused_queues("redis", &queues)
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn an_unreadable_flag_is_an_error_naming_its_file() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = file_store(tmp.path());
        let path = file::path(tmp.path(), "illuminate:queue:paused:redis:emails");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"9999999999garbage").unwrap();
        let err = store
            .paused_queues("redis", &["emails"])
            .await
            .expect_err("garbage");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
}
