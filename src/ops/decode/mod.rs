//! `defer-worker decode`: one payload, as stored in Redis or in `failed_jobs.payload`, to one JSON document.
//!
//! The envelope keys are printed as they are (all of them, unknown ones included, in their order) except
//! `data.command`, which is replaced by the decoded `command` (see [`crate::php::to_json`] for the
//! conventions) and `deferred`, the `{action, data}` of a DeferredJob or null for a foreign job.
//! The conversion itself is [`crate::admin::decode`] (shared with `failed show` and the console), which
//! imports only the pure layers (php, laravel, deferred) so the `decode` fuzz target compiles it in by path.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Settings;
use crate::laravel::encrypter::Encrypter;
use anyhow::Context;

pub use crate::admin::decode::{decode, DecodeError};

/// Arguments of `defer-worker decode`.
#[derive(Debug, clap::Args)]
pub struct DecodeArgs {
    /// The payload file; `-` or nothing reads standard input.
    pub file: Option<PathBuf>,
    /// APP_KEY for encrypted commands (default: the APP_KEY environment variable).
    #[arg(long, env = "APP_KEY", hide_env_values = true)]
    pub app_key: Option<String>,
    /// The DeferredJob class name.
    #[arg(long, default_value = crate::deferred::DEFAULT_CLASS)]
    pub class: String,
}

/// Prints the payload of `args.file` (or standard input) decoded; `APP_PREVIOUS_KEYS` from `settings`.
pub fn run(args: &DecodeArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
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
    let previous = settings.env("APP_PREVIOUS_KEYS");
    let encrypter = Encrypter::from_keys(args.app_key.as_deref(), previous.as_deref())?;
    let json = decode(raw, &encrypter, &args.class).with_context(|| name.clone())?;
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
