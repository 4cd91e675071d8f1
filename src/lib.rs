//! defer-worker: a drop-in Rust replacement for Laravel's `php artisan queue:work`, built for the
//! RestroSaaS app's `App\Jobs\DeferredJob`.
//!
//! Layers, lowest first. A module may use (`crate::…`, `super::…`) only itself and the modules listed
//! before it; `tests/layers.rs` reads this list and fails on any import that points up, naming the file
//! and the line. The binary (`main.rs`) sits on top of them all.
//!
//! 1. [`util`]: small helpers with one home each: URL parsing, percent coding and masking, the clock.
//! 2. [`config`]: the settings of a command (flags, environment, the app's `.env`, the TOML file), built
//!    once at start and passed down; it imports no module that reads settings.
//! 3. [`php`]: the PHP `serialize()` format and PHP's `json_encode`. Pure.
//! 4. [`logging`]: where log lines go (a non-blocking writer) and their formats (`text`, `json`,
//!    `laravel`); set up once by `main`.
//! 5. [`laravel`]: Laravel's wire formats and stores: payload envelope, encrypter, Redis and database
//!    queues, failed_jobs, the cache store.
//! 6. [`deferred`]: `App\Jobs\DeferredJob` → typed `DeferredJob { action, data }`.
//! 7. [`app`]: the app's own rows (orders, vendors, settings) for the actions.
//! 8. [`actions`]: what each action kind does; never sees the queue.
//! 9. [`metrics`]: counters and histograms the worker records and `/metrics` renders.
//! 10. [`worker`]: the only place tying queue, actions and failed jobs together.
//! 11. [`http`]: `/metrics`, `/health`, `/ready`, `/stats`.
//! 12. [`ops`]: the subcommands, and the wiring of `work`.
//! 13. [`cli`]: the command line.

pub mod actions;
pub mod app;
pub mod cli;
pub mod config;
pub mod deferred;
pub mod http;
pub mod laravel;
pub mod logging;
pub mod metrics;
pub mod ops;
pub mod php;
pub mod util;
pub mod worker;
