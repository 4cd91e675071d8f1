//! Configuration: Laravel-named settings from the process environment, the app's `.env` and the
//! `[env]` table of `defer-worker.toml`, plus the TOML file's worker, queue and action tables.
//!
//! Precedence, highest first: command-line flags > process environment > the app's `.env` (`--env PATH`,
//! default `./.env` when present) > `defer-worker.toml` (`--config PATH`) > defaults. [`env()`] is the
//! lookup every command uses; [`validate`] checks the settings at start; [`report`] builds what
//! `defer-worker config` prints.
//!
//! Only reads files; connecting is the caller's business, and nothing here logs a value. Errors name the
//! file, the line and the key to fix.

pub mod catalogue;
pub mod dotenv;
pub mod file;
pub mod report;
pub mod settings;

use std::path::Path;
use std::sync::{Arc, RwLock};

pub use dotenv::{DotEnv, DotEnvError};
pub use file::{EnvScalar, FileConfig, QueueSection, WorkerSection};
pub use report::{ConfigProblem, Report};
pub use settings::{laravel_env, Resolved, Settings, Source};

/// The default config file, read when present in the working directory.
pub const DEFAULT_FILE: &str = "defer-worker.toml";
/// The app's `.env`, read when present in the working directory.
pub const DEFAULT_ENV_FILE: &str = ".env";

/// The process-wide layers below the process environment, and the settings built from them.
struct Installed {
    dotenv: Option<DotEnv>,
    file: FileConfig,
    settings: Arc<Settings>,
}

static INSTALLED: RwLock<Option<Installed>> = RwLock::new(None);

fn rebuild(update: impl FnOnce(&mut Option<DotEnv>, &mut FileConfig)) {
    let mut installed = INSTALLED.write().unwrap_or_else(|e| e.into_inner());
    let (mut dotenv, mut file) = match installed.take() {
        Some(i) => (i.dotenv, i.file),
        None => (None, FileConfig::default()),
    };
    update(&mut dotenv, &mut file);
    let settings = Arc::new(Settings::live(dotenv.clone(), &file));
    *installed = Some(Installed {
        dotenv,
        file,
        settings,
    });
}

/// Makes `file` the config-file layer of [`env()`] (called by [`FileConfig::load`]).
pub(crate) fn install_file(file: &FileConfig) {
    rebuild(|_, f| *f = file.clone());
}

/// Makes `dotenv` the `.env` layer of [`env()`] (`None` removes it).
pub fn install_dotenv(dotenv: Option<DotEnv>) {
    rebuild(|d, _| *d = dotenv);
}

/// The process-wide settings: the live process environment over the installed `.env` and file layers.
pub fn settings() -> Arc<Settings> {
    if let Some(i) = INSTALLED.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return Arc::clone(&i.settings);
    }
    Arc::new(Settings::live(None, &FileConfig::default()))
}

/// Loads the app's `.env` with Laravel's rules and installs it below the process environment. An
/// explicit `path` must exist; without one, `./.env` is read when present.
pub fn load_env_file(path: Option<&Path>) -> anyhow::Result<()> {
    let path = match path {
        Some(p) => {
            anyhow::ensure!(p.exists(), "--env {}: no such file", p.display());
            p
        }
        None if Path::new(DEFAULT_ENV_FILE).is_file() => Path::new(DEFAULT_ENV_FILE),
        None => return Ok(()),
    };
    let process = |k: &str| std::env::var_os(k).map(|v| v.to_string_lossy().into_owned());
    let dotenv = DotEnv::read(path, &process)?;
    install_dotenv(Some(dotenv));
    Ok(())
}

/// A lookup of Laravel-named settings (`APP_KEY`, `REDIS_HOST`…): the process environment, else the
/// app's `.env`, else the config file's `[env]` table, with Laravel's `env()` conversions. `null` and
/// empty values count as unset.
pub fn env(key: &str) -> Option<String> {
    settings().env(key)
}

/// Checks the process-wide settings; each problem names the key and where its value came from.
/// Commands call it at start and refuse to run on `Err`.
pub fn validate() -> Result<(), Vec<ConfigProblem>> {
    report::validate(&settings())
}

/// [`validate`] as one error listing every problem, for `?` in a command.
pub fn ensure_valid() -> anyhow::Result<()> {
    validate().map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
        anyhow::anyhow!("invalid configuration:\n{}", lines.join("\n"))
    })
}
