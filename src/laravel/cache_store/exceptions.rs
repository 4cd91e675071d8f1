//! The maxExceptions counter, `job-exceptions:<uuid>` in the app's cache store (docs/laravel-queue.md §5.5,
//! docs/laravel-queue.md §8.4), kept exactly as `Worker::markJobAsFailedIfWillExceedMaxExceptions` keeps it: when the
//! entry is missing or falsy, 0 is put there for one day; then it is incremented. PHP workers and this
//! one bump the same entry, so a job's exceptions count wherever its attempts ran.
//!
//! This file only counts. It must not decide that a job fails (the worker compares the count with the
//! payload's `maxExceptions`), nor change the entry's lifetime once it is there.

use super::{CacheStore, CacheStoreError};
use crate::php::Value;

/// The key, before the uuid.
pub const JOB_EXCEPTIONS_PREFIX: &str = "job-exceptions:";
/// `Carbon::now()->addDay()`: the lifetime of a fresh counter.
const LIFETIME_SECS: i64 = 86_400;

impl CacheStore {
    /// Counts one more exception of the job `uuid`; returns the count. `None` when the store's
    /// increment answered false (the database store lost the entry in between), which PHP's
    /// `$maxExceptions <= false` reads as "not yet".
    pub async fn count_job_exception(&self, uuid: &str) -> Result<Option<i64>, CacheStoreError> {
        let key = format!("{JOB_EXCEPTIONS_PREFIX}{uuid}");
        if !self.get(&key).await?.is_some_and(|v| v.truthy()) {
            self.put(&key, &Value::Int(0), LIFETIME_SECS).await?;
        }
        self.increment(&key, 1).await
    }

    /// Forgets the counter of `uuid`, as the worker does when it fails the job for it.
    pub async fn forget_job_exceptions(&self, uuid: &str) -> Result<bool, CacheStoreError> {
        self.forget(&format!("{JOB_EXCEPTIONS_PREFIX}{uuid}")).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::Mutex;

    use super::super::store::Backend;
    use super::*;

    #[tokio::test]
    async fn counts_from_one_for_a_day_and_forgets() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("framework/cache/data");
        let store = CacheStore {
            backend: Backend::File { dir: dir.clone() },
            locks: Arc::new(std::array::from_fn(|_| Mutex::new(()))),
        };
        let before = crate::util::clock::unix_now();
        assert_eq!(store.count_job_exception("u-1").await.unwrap(), Some(1));
        let path = super::super::file::path(&dir, "job-exceptions:u-1");
        let content = std::fs::read_to_string(&path).unwrap();
        let expiry: i64 = content[..10].parse().unwrap();
        assert!(
            (before + LIFETIME_SECS..=before + LIFETIME_SECS + 2).contains(&expiry),
            "one day: {content}"
        );
        assert_eq!(&content[10..], "i:1;");
        assert_eq!(store.count_job_exception("u-1").await.unwrap(), Some(2));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap()[..10]
                .parse::<i64>()
                .unwrap(),
            expiry,
            "the increment keeps the lifetime"
        );
        assert!(store.forget_job_exceptions("u-1").await.unwrap());
        assert_eq!(store.count_job_exception("u-1").await.unwrap(), Some(1));
    }
}
