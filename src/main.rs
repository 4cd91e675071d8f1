//! The `defer-worker` binary: parse the command line, set up logging, build the command's settings once,
//! run the subcommand with them, exit.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use defer_worker::cli::{Cli, Command};
use defer_worker::config::Settings;
use defer_worker::logging;
use defer_worker::ops;
use defer_worker::util::runtime;

/// musl's allocator serialises threads on one lock; the static (musl) release binary uses mimalloc.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let options = logging::Options {
        format: cli.log_format.into(),
        filter: std::env::var(logging::FILTER_VAR).ok(),
        colour: logging::colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        ),
        capacity: match logging::capacity(std::env::var(logging::BUFFER_VAR).ok().as_deref()) {
            Ok(bytes) => bytes,
            Err(err) => {
                eprintln!("defer-worker: {err}");
                return ExitCode::FAILURE;
            }
        },
    };
    let (log, guard) = match logging::init(&options) {
        Ok(started) => started,
        Err(err) => {
            eprintln!("defer-worker: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = run(&cli, &log);
    // Every line logged so far is written before the error, and before the process ends.
    drop(guard);
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("defer-worker: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli, log: &logging::Handle) -> anyhow::Result<ExitCode> {
    if let Command::Decode(args) = &cli.command {
        // Runs anywhere, without the async runtime or a config file.
        let settings = Settings::load_env_only(cli.env_file.as_deref())?;
        return ops::decode::run(args, &settings);
    }
    let settings = ops::settings::load(cli.env_file.as_deref(), cli.config.as_deref())?;
    // `check` (and `work --check`) run on the default runtime and report a bad `--threads` as a
    // failed `options` check, with the rest; only `work` refuses it here, before its runtime starts.
    let threads = match &cli.command {
        Command::Work(args) if !args.check => ops::work::threads(args, settings.file())?,
        _ => runtime::DEFAULT_THREADS,
    };
    runtime::build(threads)
        .context("cannot start the async runtime")?
        .block_on(subcommand(&cli.command, &settings, log))
}

async fn subcommand(
    command: &Command,
    settings: &Settings,
    log: &logging::Handle,
) -> anyhow::Result<ExitCode> {
    // Every command but `config` and `check` (which report the problems themselves) refuses bad
    // settings at start.
    let reports = match command {
        Command::Config(_) | Command::Check(_) => true,
        Command::Work(args) => args.check,
        _ => false,
    };
    if !reports {
        ops::report::ensure_valid(settings)?;
    }
    match command {
        Command::Work(args) if args.check => ops::check::run(args, false, settings).await,
        Command::Check(args) => ops::check::run(&args.work, args.json, settings).await,
        Command::Work(args) => ops::work::run(args, settings, log).await,
        Command::Config(args) => ops::config_cmd::run(args, settings).await,
        Command::Failed(args) => ops::failed::run(args, settings).await,
        Command::Monitor(args) => ops::monitor::run(args, settings).await,
        Command::Clear(args) => ops::clear::run(args, settings).await,
        Command::Dispatch(args) => ops::dispatch::run(args, settings).await,
        Command::Restart(args) => ops::restart::run(args, settings).await,
        Command::Pause(args) => ops::pause::pause(args, settings).await,
        Command::Resume(args) => ops::pause::resume(args, settings).await,
        Command::Paused(args) => ops::pause::paused(args, settings).await,
        Command::Console(args) => ops::console::run(args, settings, log).await,
        Command::Decode(_) => unreachable!("decode runs without the async runtime"),
    }
}
