//! `defer-worker monitor` (placeholder: being written).

use std::process::ExitCode;

/// Arguments of `defer-worker monitor`.
#[derive(Debug, clap::Args)]
pub struct MonitorArgs {}

pub async fn run(_args: &MonitorArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`monitor` is not implemented yet")
}
