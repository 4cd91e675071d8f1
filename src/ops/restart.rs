//! `defer-worker restart`: what `php artisan queue:restart` does. Writes the current UNIX time under
//! `illuminate:queue:restart` in the app's default cache store ([`crate::laravel::cache_store`]); every
//! worker, PHP's or ours, compares that value with the one it read at start and, when it changed, finishes
//! its current jobs and exits (a supervisor then starts it again with new code or settings).
//!
//! It only writes that one key and prints where; it never stops a process itself.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::config::Settings;
use crate::laravel::cache_store::{CacheStore, CacheStoreError};

const EXAMPLES: &str = "\
Examples:
  # The app's defaults (CACHE_DRIVER=file): run from the app's base directory, or point at its storage
  defer-worker restart --storage=/var/www/restrosaas/storage

  # Redis cache store: <REDIS_PREFIX><CACHE_PREFIX>:illuminate:queue:restart on REDIS_CACHE_DB (1)
  CACHE_DRIVER=redis APP_NAME=RestroSaaS defer-worker restart

  # Database cache store (table `cache` in the app's database)
  CACHE_DRIVER=database DB_CONNECTION=mysql DB_DATABASE=restro_saas defer-worker restart

Settings (Laravel's names): CACHE_DRIVER (8/10) or CACHE_STORE (11+), default file; CACHE_PREFIX (default \
slug(APP_NAME)_cache); REDIS_* and REDIS_CACHE_DB for redis; DB_* or DATABASE_URL and DB_CACHE_TABLE for \
database; APP_STORAGE_PATH (or LARAVEL_STORAGE_PATH, default ./storage) for file; DEFER_WORKER_LARAVEL \
(8-13, default 10) for version-dependent key details. Run it as the user the app runs as, so PHP can \
still overwrite the file store's entry.";

/// Arguments of `defer-worker restart`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct RestartArgs {
    /// The app's storage directory, for the file store (overrides APP_STORAGE_PATH).
    #[arg(long, value_name = "PATH")]
    pub storage: Option<PathBuf>,
    /// The app's Laravel major version (overrides DEFER_WORKER_LARAVEL; 8-10 vs 11+ differ in the Redis key).
    #[arg(long, value_name = "VERSION")]
    pub laravel: Option<String>,
}

pub async fn run(args: &RestartArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let storage = args.storage.as_ref().map(|p| p.display().to_string());
    let lookup = |key: &str| match key {
        "APP_STORAGE_PATH" if storage.is_some() => storage.clone(),
        "DEFER_WORKER_LARAVEL" if args.laravel.is_some() => args.laravel.clone(),
        _ => settings.env(key),
    };
    let store = CacheStore::from_lookup(&lookup)
        .await
        .context("cannot open the app's cache store")?
        .ok_or_else(|| CacheStoreError::NotShared {
            driver: "array".to_owned(),
        })?;
    let now = crate::util::clock::unix_now();
    store.signal_restart(now).await.with_context(|| {
        format!(
            "cannot write the restart signal to the {}",
            store.describe()
        )
    })?;
    println!(
        "Broadcasting queue restart signal: {now} written to the {}",
        store.describe()
    );
    Ok(ExitCode::SUCCESS)
}
