//! The lines a check writes ([`Check`]), the list they go into ([`Checks`]) and how it is printed: one
//! line per check (`✓`, `!`, `✗`, what was tried, and for a `✗` what to change), or one JSON document.
//!
//! Pure. Every text put into a line must already be masked (URLs through `util::url::mask_password`,
//! phone numbers through `whatsapp::phone::masked`); this module cannot tell a secret from a name.

use std::fmt::Write as _;

use serde::Serialize;

use crate::config::Settings;

/// How one check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// ✓ works.
    Pass,
    /// ! works, but probably not as the operator wants; does not fail the check.
    Warn,
    /// ✗ will not work.
    Fail,
}

impl Status {
    pub fn symbol(self) -> char {
        match self {
            Status::Pass => '✓',
            Status::Warn => '!',
            Status::Fail => '✗',
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked, dotted: `redis.connect`, `failed_jobs.table`, `smtp`…
    pub name: String,
    pub status: Status,
    /// What was tried and what came back.
    pub detail: String,
    /// For a ✗ (and some !): what to change.
    pub fix: Option<String>,
}

/// The report, in the order the checks ran, and where the settings came from (named in the fixes).
#[derive(Debug, Default)]
pub struct Checks {
    pub lines: Vec<Check>,
    /// `the app's .env (/path/.env)` or `the environment`: where a key is to be changed.
    pub env_file: String,
}

impl Checks {
    pub fn new(settings: &Settings) -> Checks {
        let env_file = match settings.dotenv() {
            Some(env) => format!("{}", env.path().display()),
            None => "the environment (no .env read)".to_owned(),
        };
        Checks {
            lines: Vec::new(),
            env_file,
        }
    }

    pub fn pass(&mut self, name: &str, detail: impl Into<String>) {
        self.push(name, Status::Pass, detail.into(), None);
    }

    pub fn warn(&mut self, name: &str, detail: impl Into<String>, fix: Option<String>) {
        self.push(name, Status::Warn, detail.into(), fix);
    }

    pub fn fail(&mut self, name: &str, detail: impl Into<String>, fix: impl Into<String>) {
        self.push(name, Status::Fail, detail.into(), Some(fix.into()));
    }

    fn push(&mut self, name: &str, status: Status, detail: String, fix: Option<String>) {
        self.lines.push(Check {
            name: name.to_owned(),
            status,
            detail,
            fix,
        });
    }

    /// "set KEY in <the .env file>".
    pub fn set(&self, key: &str, what: &str) -> String {
        format!("set {key} in {} {what}", self.env_file)
    }

    /// True when no check failed (warnings allowed).
    pub fn passed(&self) -> bool {
        !self.lines.iter().any(|c| c.status == Status::Fail)
    }

    pub fn count(&self, status: Status) -> usize {
        self.lines.iter().filter(|c| c.status == status).count()
    }

    /// One line per check, then a summary line.
    pub fn text(&self) -> String {
        let width = self
            .lines
            .iter()
            .map(|c| c.name.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for c in &self.lines {
            let _ = write!(out, "{} {:width$}  {}", c.status.symbol(), c.name, c.detail);
            if let Some(fix) = &c.fix {
                let _ = write!(out, " → {fix}");
            }
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "{} passed, {} warning(s), {} failed",
            self.count(Status::Pass),
            self.count(Status::Warn),
            self.count(Status::Fail)
        );
        out
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "ok": self.passed(),
            "env_file": self.env_file,
            "checks": self.lines,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_fails_the_report_and_prints_its_fix_a_warning_does_not() {
        let mut c = Checks {
            lines: Vec::new(),
            env_file: "/app/.env".into(),
        };
        c.pass("redis.connect", "redis://127.0.0.1:6379/0: Redis 7.0");
        c.warn("smtp", "MAIL_MAILER=log: nothing is sent", None);
        assert!(c.passed());
        let fix = c.set("REDIS_PASSWORD", "to the server's password");
        c.fail("redis.auth", "WRONGPASS", fix);
        assert!(!c.passed());
        let text = c.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("✓ redis.connect  redis://"), "{text}");
        assert!(
            lines[1].starts_with("! smtp           MAIL_MAILER=log"),
            "{text}"
        );
        assert_eq!(
            lines[2],
            "✗ redis.auth     WRONGPASS → set REDIS_PASSWORD in /app/.env to the server's password"
        );
        assert_eq!(lines[3], "1 passed, 1 warning(s), 1 failed");
        let json = c.json();
        assert_eq!(json["ok"], false);
        assert_eq!(json["checks"][2]["status"], "fail");
        assert_eq!(json["checks"][1]["fix"], serde_json::Value::Null);
    }
}
