//! `defer-worker dispatch` (placeholder: being written).

use std::process::ExitCode;

/// Arguments of `defer-worker dispatch`.
#[derive(Debug, clap::Args)]
pub struct DispatchArgs {}

pub async fn run(_args: &DispatchArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`dispatch` is not implemented yet")
}
