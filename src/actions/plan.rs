//! The action table as the config file sets it, before anything is connected: which kind handles which
//! action name, and whether the entry came from the file or from the app's defaults.

use std::collections::BTreeMap;

use crate::config::FileConfig;

use super::kind::{app_default, ActionKind, APP_ACTIONS};

/// Where an entry of the action table came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `[actions.<name>]` in the config file: a kind that cannot be built stops the start.
    Config,
    /// One of [`APP_ACTIONS`], not in the file: a kind that cannot be built falls back to `forward`.
    Default,
}

/// The action table as configured, before anything is connected.
#[derive(Debug, Clone)]
pub struct Plan {
    pub by_name: BTreeMap<String, (ActionKind, Origin)>,
    /// For actions not listed (`[actions."*"]`; `warn` by default).
    pub unlisted: ActionKind,
}

impl Plan {
    /// The file's table. `"*"` sets the kind of every action the table does not list, the app's four
    /// included (`"*" = { kind = "log" }` is a dry run of everything). Without `"*"`, the app's actions
    /// not listed get their native kinds ([`APP_ACTIONS`]) and any other action `warn`.
    pub fn new(table: &BTreeMap<String, ActionKind>) -> Plan {
        let mut by_name: BTreeMap<_, _> = table
            .iter()
            .filter(|(name, _)| name.as_str() != "*")
            .map(|(name, kind)| (name.clone(), (kind.clone(), Origin::Config)))
            .collect();
        let unlisted = match table.get("*") {
            Some(kind) => kind.clone(),
            None => {
                for name in APP_ACTIONS {
                    if let (false, Some(kind)) = (by_name.contains_key(name), app_default(name)) {
                        by_name.insert(name.to_owned(), (kind, Origin::Default));
                    }
                }
                ActionKind::Warn
            }
        };
        Plan { by_name, unlisted }
    }

    /// The kind that handles `action`.
    pub fn kind_of(&self, action: &str) -> &ActionKind {
        self.by_name
            .get(action)
            .map(|(kind, _)| kind)
            .unwrap_or(&self.unlisted)
    }

    /// Whether some action uses `email` or `whatsapp` (the kinds that need the sent-ledger).
    pub fn uses_ledger(&self) -> bool {
        self.by_name
            .values()
            .map(|(k, _)| k)
            .chain([&self.unlisted])
            .any(|k| matches!(k, ActionKind::Email(_) | ActionKind::Whatsapp(_)))
    }
}

impl Plan {
    /// The `[actions]` table of `file` (the app's defaults without one). Errors carry the file's line.
    pub fn from_file(file: &FileConfig) -> Result<Plan, toml::de::Error> {
        let table: BTreeMap<String, ActionKind> = file.section("actions")?;
        Ok(Plan::new(&table))
    }

    /// Whether the file sets `[actions."*"]`.
    pub fn file_sets_unlisted(file: &FileConfig) -> bool {
        file.actions.contains_key("*")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_worker_actions_and_queues() {
        let c = FileConfig::parse(
            r#"
            [worker]
            queue = "whatsapp,default"
            concurrency = 32
            [actions.whatsapp_notification]
            kind = "log"
            [actions."*"]
            kind = "fail"
            message = "unknown action"
            [queues.whatsapp]
            retry_after = 30
            "#,
        )
        .unwrap();
        assert_eq!(c.worker.concurrency, Some(32));
        assert_eq!(c.queues["whatsapp"].retry_after, Some(30));
        let a = Plan::from_file(&c).unwrap();
        assert_eq!(
            a.kind_of("whatsapp_notification"),
            &ActionKind::Log { sleep_ms: 0 }
        );
        assert!(matches!(a.kind_of("other"), ActionKind::Fail { .. }));
        assert_eq!(
            Plan::from_file(&FileConfig::default())
                .unwrap()
                .kind_of("x"),
            &ActionKind::Warn
        );
    }
}
