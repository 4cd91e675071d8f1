//! `defer-worker config` (placeholder: being written).

use std::process::ExitCode;

/// Arguments of `defer-worker config`.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {}

pub async fn run(_args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`config` is not implemented yet")
}
