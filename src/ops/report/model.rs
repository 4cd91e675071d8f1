//! What `defer-worker config` prints: rows grouped as the app's config files group them, with the notes
//! and problems found; and [`Derivation`], the context each part of the report writes into.
//!
//! Pure: no connection is opened, and every value shown or quoted in a problem goes through
//! [`mask`] first.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::config::catalogue::{kind_of, mask, KeyDef, CATALOGUE};
use crate::config::{Settings, Source};

/// A setting that cannot be used. Names the key and where its value came from; the value is masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigProblem {
    pub key: String,
    /// The masked value, `None` when the problem is not about one value.
    pub value: Option<String>,
    /// Where the value came from (`.env:12`, `process environment`…).
    pub source: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}={v:?} ({}): {}", self.key, self.source, self.message),
            None => write!(f, "{} ({}): {}", self.key, self.source, self.message),
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub key: String,
    /// Masked; `None` when unset or null.
    pub value: Option<String>,
    /// `.env:12`, `process environment`, `default`, `derived from …`, `unset`, `null (.env:3)`.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    pub name: String,
    pub rows: Vec<Row>,
}

/// The resolved configuration, grouped, with the problems and notes found on the way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub groups: Vec<Group>,
    pub problems: Vec<ConfigProblem>,
    /// Settings that work but probably do not do what the operator wants.
    pub notes: Vec<String>,
}

impl Report {
    /// Builds the report; `embedded_failed_db` is the SQLite file used when no database is configured.
    pub fn build(settings: &Settings, embedded_failed_db: &Path) -> Report {
        let mut d = Derivation {
            settings,
            report: Report::default(),
            rows: Vec::new(),
        };
        super::queue::derive(&mut d, embedded_failed_db);
        super::services::derive(&mut d);
        super::cache::derive(&mut d);
        let Derivation {
            mut report, rows, ..
        } = d;
        for def in CATALOGUE {
            let row = catalogue_row(settings, def);
            report.group(def.group).rows.push(row);
        }
        for (group, row) in rows {
            report.group(group).rows.push(row);
        }
        // One problem per key: the catalogue's checks first, then what only the derivations found.
        let mut all = super::check::problems(settings);
        for p in std::mem::take(&mut report.problems) {
            if !all.iter().any(|o| o.key == p.key) {
                all.push(p);
            }
        }
        report.problems = all;
        report
    }

    /// The group called `name`, created at the end when missing.
    pub fn group(&mut self, name: &str) -> &mut Group {
        let i = match self.groups.iter().position(|g| g.name == name) {
            Some(i) => i,
            None => {
                self.groups.push(Group {
                    name: name.to_owned(),
                    rows: Vec::new(),
                });
                self.groups.len() - 1
            }
        };
        &mut self.groups[i]
    }

    /// The row for `key` in any group.
    pub fn row(&self, key: &str) -> Option<&Row> {
        self.groups
            .iter()
            .flat_map(|g| &g.rows)
            .find(|r| r.key == key)
    }
}

/// What the parts of the report write into while deriving values from the settings.
pub(super) struct Derivation<'a> {
    pub settings: &'a Settings,
    pub report: Report,
    /// Derived rows, placed after the catalogue's rows of their group.
    pub rows: Vec<(&'static str, Row)>,
}

impl Derivation<'_> {
    /// A derived row of `group`.
    pub fn row(&mut self, group: &'static str, key: &str, value: impl Into<String>, from: &str) {
        self.rows.push((
            group,
            Row {
                key: key.to_owned(),
                value: Some(value.into()),
                source: format!("derived from {from}"),
            },
        ));
    }

    pub fn note(&mut self, note: String) {
        self.report.notes.push(note);
    }

    /// A problem with `key`, quoting its masked value and where it came from.
    pub fn problem(&mut self, key: &str, message: String) {
        let p = problem_for(self.settings, key, message);
        self.report.problems.push(p);
    }

    /// Laravel's `env($key)`: `None` when unset, null or empty.
    pub fn env(&self, key: &str) -> Option<String> {
        self.settings.env(key)
    }

    /// Laravel's `env($key, $default)`.
    pub fn env_or(&self, key: &str, default: &str) -> String {
        match self.settings.get(key) {
            Some(r) => r.value.unwrap_or_default(),
            None => default.to_owned(),
        }
    }
}

fn catalogue_row(settings: &Settings, def: &KeyDef) -> Row {
    match settings.get(def.key) {
        Some(r) => match r.value {
            Some(v) => Row {
                key: def.key.to_owned(),
                value: Some(mask(def.key, def.kind, &v)),
                source: r.source.to_string(),
            },
            None => Row {
                key: def.key.to_owned(),
                value: None,
                source: format!("null ({})", r.source),
            },
        },
        None => Row {
            key: def.key.to_owned(),
            value: def.default.map(|d| mask(def.key, def.kind, d)),
            source: if def.default.is_some() {
                Source::Default.to_string()
            } else {
                "unset".to_owned()
            },
        },
    }
}

/// A problem with `key`: its masked value and where it came from.
pub(super) fn problem_for(settings: &Settings, key: &str, message: String) -> ConfigProblem {
    let resolved = settings.get(key);
    ConfigProblem {
        key: key.to_owned(),
        value: resolved
            .as_ref()
            .and_then(|r| r.value.as_deref())
            .map(|v| mask(key, kind_of(key), v)),
        source: resolved
            .map(|r| r.source.to_string())
            .unwrap_or_else(|| Source::Default.to_string()),
        message,
    }
}
