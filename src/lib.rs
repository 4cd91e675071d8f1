//! defer-worker: a drop-in Rust replacement for Laravel's `php artisan queue:work`, built for the
//! RestroSaaS app's `App\Jobs\DeferredJob`.
//!
//! Layout (dependencies point down the list, never up):
//! - [`php`]: the PHP `serialize()` format: value tree, `unserialize`, `serialize`. Pure.
//! - [`laravel`]: Laravel's wire formats and stores: payload envelope, encrypter, Redis queue, failed_jobs.
//! - [`deferred`]: `App\Jobs\DeferredJob` → typed `DeferredJob { action, data }`.
//! - [`actions`]: what each action kind does; never sees the queue.
//! - [`worker`]: the only place tying queue, actions and failed jobs together.
//! - [`ops`]: subcommands that are not the worker (`decode`, …).
//! - [`config`]: CLI + environment + TOML → one validated configuration.
//! - [`util`]: one home per helper (the clock); imports nothing of ours.

pub mod actions;
pub mod app;
pub mod cli;
pub mod config;
pub mod deferred;
pub mod http;
pub mod laravel;
pub mod metrics;
pub mod ops;
pub mod php;
pub mod util;
pub mod worker;
