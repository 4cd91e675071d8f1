//! `defer-worker clear` (placeholder: being written).

use std::process::ExitCode;

/// Arguments of `defer-worker clear`.
#[derive(Debug, clap::Args)]
pub struct ClearArgs {}

pub async fn run(_args: &ClearArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`clear` is not implemented yet")
}
