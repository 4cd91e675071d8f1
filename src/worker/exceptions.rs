//! maxExceptions (docs/laravel-queue.md §5.5): a job whose payload sets `maxExceptions` fails once that
//! many of its attempts have ended in an exception (a retryable error or a timeout of the action),
//! counted in the app's cache store under `job-exceptions:<uuid>` with PHP's key and lifetimes, so PHP
//! workers and this one count together.
//!
//! It must not decide anything else about the job ([`super::job`] applies the attempts rules beside it),
//! nor fail a job because the store could not be reached: then the exception is not counted (logged),
//! and the job is released as it would have been.

use crate::laravel::cache_store::CacheStore;
use crate::laravel::payload::Payload;

/// The counter, in the app's cache store; `None` when the app's store is `array`, which another
/// process cannot see (PHP's workers then count per process, and this one does not count).
#[derive(Debug, Clone, Default)]
pub struct ExceptionCounter {
    store: Option<CacheStore>,
}

impl ExceptionCounter {
    pub fn new(store: Option<CacheStore>) -> Self {
        ExceptionCounter { store }
    }

    /// Counts an exception of the job when its payload has a `uuid` and a `maxExceptions`; true when
    /// it has now had `maxExceptions` of them and must fail (its counter is then forgotten).
    pub async fn exceeded(&self, payload: &Payload<'_>) -> bool {
        let (Some(store), Some(uuid), Some(max)) = (
            &self.store,
            payload.uuid(),
            payload.envelope().max_exceptions,
        ) else {
            return false;
        };
        match store.count_job_exception(uuid).await {
            Ok(Some(count)) if max <= count => {
                if let Err(err) = store.forget_job_exceptions(uuid).await {
                    tracing::warn!(error = %err, "cannot forget the job's maxExceptions counter; it expires within a day");
                }
                true
            }
            Ok(count) => {
                tracing::debug!(?count, max_exceptions = max, "exception counted");
                false
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot count the exception towards maxExceptions; the job is released as if under it");
                false
            }
        }
    }
}
