//! `defer-worker restart` (placeholder: being written).

use std::process::ExitCode;

/// Arguments of `defer-worker restart`.
#[derive(Debug, clap::Args)]
pub struct RestartArgs {}

pub async fn run(_args: &RestartArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`restart` is not implemented yet")
}
