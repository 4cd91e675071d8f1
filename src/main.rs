//! The `defer-worker` binary: parse the command line, set up logging, run the subcommand, exit.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use defer_worker::cli::{Cli, Command, DecodeArgs, LogFormat};
use defer_worker::config::{self, FileConfig};
use defer_worker::laravel::encrypter::Encrypter;
use defer_worker::ops;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let result = config::load_env_file(cli.env_file.as_deref()).and_then(|()| match &cli.command {
        Command::Decode(args) => decode(args),
        command => FileConfig::load(cli.config.as_deref()).and_then(|file| {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?
                .block_on(run(command, &file))
        }),
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("defer-worker: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: &Command, file: &FileConfig) -> anyhow::Result<ExitCode> {
    // Every command but `config` (which reports the problems itself) refuses bad settings at start.
    if !matches!(command, Command::Config(_)) {
        config::ensure_valid()?;
    }
    match command {
        Command::Work(args) => ops::work::run(args, file).await,
        Command::Config(args) => ops::config_cmd::run(args).await,
        Command::Failed(args) => ops::failed::run(args).await,
        Command::Monitor(args) => ops::monitor::run(args).await,
        Command::Clear(args) => ops::clear::run(args).await,
        Command::Dispatch(args) => ops::dispatch::run(args).await,
        Command::Restart(args) => ops::restart::run(args).await,
        Command::Decode(_) => unreachable!("decode runs without the async runtime"),
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DEFER_WORKER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
    }
}

fn decode(args: &DecodeArgs) -> anyhow::Result<ExitCode> {
    let (name, raw) = match args.file.as_deref() {
        None => ("<stdin>".to_owned(), read_stdin()?),
        Some(p) if p.as_os_str() == "-" => ("<stdin>".to_owned(), read_stdin()?),
        Some(p) => (
            p.display().to_string(),
            std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
        ),
    };
    // redis-cli --raw and editors add a final newline that is not part of the payload.
    let raw = raw.strip_suffix(b"\n").unwrap_or(&raw);
    let previous = config::env("APP_PREVIOUS_KEYS");
    let encrypter = Encrypter::from_keys(args.app_key.as_deref(), previous.as_deref())?;
    let json = ops::decode::decode(raw, &encrypter, &args.class).with_context(|| name.clone())?;
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(ExitCode::SUCCESS)
}

fn read_stdin() -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .context("cannot read standard input")?;
    Ok(buf)
}
