//! `defer-worker dispatch`: pushes an `App\Jobs\DeferredJob` the way the app's `defer($action, $data)` does,
//! so PHP workers and ours run it like any other (payload built by [`crate::laravel::dispatch`]).
//!
//! One deliberate difference: with `--delay`, the job goes to the `:delayed` set of the queue asked for.
//! The app's `defer()` with a delay lands on the connection's default queue instead (it passes the queue
//! name where `Queue::later` expects data; docs/restrosaas.md §2.2); we print a note rather than copy the bug.
//! Never prints or logs the data.

use std::process::ExitCode;

use anyhow::Context;

use crate::config::Settings;
use crate::deferred::DEFAULT_CLASS;
use crate::laravel::dispatch::{self, CommandShape};
use crate::ops::connect;

const EXAMPLES: &str = "\
Examples:
  # What deferWhatsApp(['order_id' => 42]) pushes (queue whatsapp)
  defer-worker dispatch whatsapp_notification --data='{\"order_id\":42}' --queue=whatsapp

  # cache_warming in 5 s, on the queue `cache` (the app's defer() would put it on `default`)
  defer-worker dispatch cache_warming --data='{\"vendor_id\":7}' --queue=cache --delay=5

  # The Laravel 8 command shape (all Queueable properties), for an 8.x app
  defer-worker dispatch email_notification --data='{\"order_id\":42}' --queue=emails --laravel=8

Prints the payload's uuid. Redis settings come from the environment under Laravel's names (REDIS_URL or \
REDIS_HOST, REDIS_PORT, REDIS_PASSWORD, REDIS_DB, REDIS_PREFIX or APP_NAME).";

/// Laravel major version whose command shape to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    /// Laravel 8.x: every Queueable/InteractsWithQueue property is serialized.
    #[value(name = "8")]
    L8,
    /// Laravel 9.4+ (the app runs 10.x): only `action` and `data`.
    #[value(name = "10")]
    L10,
}

/// Arguments of `defer-worker dispatch`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct DispatchArgs {
    /// The DeferredJob action, e.g. whatsapp_notification, email_notification, analytics_tracking.
    pub action: String,
    /// The job's $data: a JSON object or array, decoded as PHP's json_decode($data, true).
    #[arg(long, default_value = "{}", value_name = "JSON")]
    pub data: String,
    /// Queue name (without the `queues:` prefix).
    #[arg(long, default_value = "default")]
    pub queue: String,
    /// Seconds before the job becomes available (0: pushed ready).
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub delay: u64,
    /// Laravel version whose serialized command to write.
    #[arg(long, value_enum, default_value = "10")]
    pub laravel: Shape,
    /// The job class name.
    #[arg(long, default_value = DEFAULT_CLASS)]
    pub class: String,
}

pub async fn run(args: &DispatchArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let json: serde_json::Value =
        serde_json::from_str(&args.data).context("--data is not valid JSON")?;
    let data = dispatch::data_from_json(&json).context("--data")?;
    let shape = match args.laravel {
        Shape::L8 => CommandShape::Laravel8,
        Shape::L10 => CommandShape::Laravel10,
    };
    let payload = dispatch::build(&args.class, &args.action, data, shape)
        .context("cannot build the payload")?;
    let (cfg, queue) = connect::redis_queue(settings).await?;
    if args.delay == 0 {
        queue
            .push_raw(&args.queue, &payload.bytes)
            .await
            .with_context(|| format!("cannot push to {}", queue.key(&args.queue)))?;
    } else {
        let now = crate::util::clock::unix_now();
        let due = now.saturating_add(i64::try_from(args.delay).unwrap_or(i64::MAX));
        queue
            .later_raw(&args.queue, &payload.bytes, due)
            .await
            .with_context(|| format!("cannot add to {}:delayed", queue.key(&args.queue)))?;
        eprintln!(
            "note: delayed {} s onto {}:delayed; the app's defer() with a delay would have put it on the \
             connection's default queue (its later() call passes the queue as data)",
            args.delay,
            queue.key(&args.queue)
        );
    }
    tracing::info!(
        uuid = %payload.uuid,
        action = %args.action,
        queue = %args.queue,
        delay = args.delay,
        redis = %cfg,
        "dispatched"
    );
    println!("{}", payload.uuid);
    Ok(ExitCode::SUCCESS)
}
