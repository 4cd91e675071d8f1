//! The settings of a command, built once at start: the layers ([`Settings::load`]) and the config file's
//! tables that other modules own (`[actions]`, `[app]`), parsed now so that a mistake in any table stops
//! every command at start with the file's name and line, before anything connects.

use std::path::Path;

use anyhow::Context;

use crate::actions::Plan;
use crate::app::AppSection;
use crate::config::Settings;

/// The settings every command but `decode` runs with.
pub fn load(env_file: Option<&Path>, config_file: Option<&Path>) -> anyhow::Result<Settings> {
    let settings = Settings::load(env_file, config_file)?;
    let file = settings.file();
    let invalid = || format!("invalid config file {}", file.display_path());
    Plan::from_file(file).with_context(invalid)?;
    AppSection::from_file(file).with_context(invalid)?;
    Ok(settings)
}
