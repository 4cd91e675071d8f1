//! `defer-worker failed` (placeholder: being written).

use std::process::ExitCode;

/// Arguments of `defer-worker failed`.
#[derive(Debug, clap::Args)]
pub struct FailedArgs {}

pub async fn run(_args: &FailedArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`failed` is not implemented yet")
}
