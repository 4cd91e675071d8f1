//! The text Laravel stores in `failed_jobs.exception`: a PHP-shaped exception rendered the way PHP's
//! `Throwable::__toString` renders it, so a row written by defer-worker reads like one written by PHP.
//!
//! This module only builds and formats text. It must not pretend to be PHP: `file`/`line` name the
//! place in defer-worker's own sources that raised the failure (`defer-worker/src/…`), and the stack
//! trace is the bare `#0 {main}` PHP prints for a top-level throw (we have no PHP frames to show).
//!
//! Layout, recorded from PHP 8.2.36 (`php -r 'echo (string) new RuntimeException("boom", 0, new
//! LogicException("inner"));'`):
//!
//! ```text
//! LogicException: inner in Command line code:1
//! Stack trace:
//! #0 {main}
//!
//! Next RuntimeException: boom in Command line code:1
//! Stack trace:
//! #0 {main}
//! ```
//!
//! With an empty message the `: <message>` part is left out (`Exception in Command line code:1`).

use std::fmt;
use std::panic::Location;

/// Laravel 10's exception for a job that ran out of attempts (or whose `retryUntil` passed).
pub const MAX_ATTEMPTS_EXCEEDED: &str = "Illuminate\\Queue\\MaxAttemptsExceededException";
/// Laravel 10.10+'s exception for a job that exceeded its timeout (a subclass of the one above).
pub const TIMEOUT_EXCEEDED: &str = "Illuminate\\Queue\\TimeoutExceededException";
/// Ours: the payload cannot be read (not JSON, not a DeferredJob, cannot be decrypted or unserialized).
pub const INVALID_PAYLOAD: &str = "DeferWorker\\InvalidPayloadException";
/// Ours: the action reported a failure (permanent, or a retryable one with no attempts left).
pub const ACTION_FAILED: &str = "DeferWorker\\ActionFailedException";
/// Ours: the action panicked; the message is the panic message.
pub const ACTION_PANICKED: &str = "DeferWorker\\ActionPanickedException";

/// Prefix put in front of the Rust source path in [`PhpException::file`], so nobody looks for the
/// file in the Laravel app.
const FILE_PREFIX: &str = "defer-worker/";

/// A PHP-style exception: class, message, origin and an optional previous exception.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhpException {
    /// Fully qualified PHP class name, e.g. `Illuminate\Queue\MaxAttemptsExceededException`.
    pub class: String,
    pub message: String,
    /// Where the failure was raised: `defer-worker/<rust source path>` for our own exceptions.
    pub file: String,
    pub line: u32,
    /// The exception that caused this one (PHP's `getPrevious()`).
    pub previous: Option<Box<PhpException>>,
}

impl PhpException {
    /// An exception raised at the caller's location (`defer-worker/src/…:<line>`).
    #[track_caller]
    pub fn new(class: impl Into<String>, message: impl Into<String>) -> Self {
        let at = Location::caller();
        PhpException {
            class: class.into(),
            message: message.into(),
            file: format!("{FILE_PREFIX}{}", at.file()),
            line: at.line(),
            previous: None,
        }
    }

    /// Laravel 10's "too many attempts" failure for the job named `display_name`.
    #[track_caller]
    pub fn max_attempts_exceeded(display_name: &str) -> Self {
        Self::new(
            MAX_ATTEMPTS_EXCEEDED,
            format!("{display_name} has been attempted too many times."),
        )
    }

    /// Laravel 10's timeout failure for the job named `display_name`.
    #[track_caller]
    pub fn timed_out(display_name: &str) -> Self {
        Self::new(TIMEOUT_EXCEEDED, format!("{display_name} has timed out."))
    }

    /// Ours: the payload could not be read; `reason` says why.
    #[track_caller]
    pub fn invalid_payload(reason: impl Into<String>) -> Self {
        Self::new(INVALID_PAYLOAD, reason)
    }

    /// Ours: the action failed for good; `message` is the action's error.
    #[track_caller]
    pub fn action_failed(message: impl Into<String>) -> Self {
        Self::new(ACTION_FAILED, message)
    }

    /// Ours: the action panicked; `message` is the panic message.
    #[track_caller]
    pub fn action_panicked(message: impl Into<String>) -> Self {
        Self::new(ACTION_PANICKED, message)
    }

    /// The same exception with `previous` as its cause (appended at the innermost end of the chain
    /// if this one already has a cause).
    pub fn with_previous(mut self, previous: PhpException) -> Self {
        self.previous = Some(Box::new(match self.previous.take() {
            Some(existing) => existing.with_previous(previous),
            None => previous,
        }));
        self
    }

    /// One line for logs: `<Class>: <message>` (just the class when the message is empty), without
    /// origin, trace or previous exceptions.
    pub fn headline(&self) -> String {
        if self.message.is_empty() {
            self.class.clone()
        } else {
            format!("{}: {}", self.class, self.message)
        }
    }

    /// PHP's `(string) $e`: the innermost previous exception first, each later one after a blank
    /// line and `Next `.
    pub fn to_php_string(&self) -> String {
        let mut chain: Vec<&PhpException> = Vec::new();
        let mut current = Some(self);
        while let Some(e) = current {
            chain.push(e);
            current = e.previous.as_deref();
        }
        let mut out = String::new();
        for (i, e) in chain.iter().rev().enumerate() {
            if i > 0 {
                out.push_str("\n\nNext ");
            }
            e.write_one(&mut out);
        }
        out
    }

    fn write_one(&self, out: &mut String) {
        out.push_str(&self.class);
        if !self.message.is_empty() {
            out.push_str(": ");
            out.push_str(&self.message);
        }
        out.push_str(" in ");
        out.push_str(&self.file);
        out.push(':');
        out.push_str(&self.line.to_string());
        out.push_str("\nStack trace:\n#0 {main}");
    }
}

impl fmt::Display for PhpException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_php_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Like PHP's `php -r`: file "Command line code", line 1.
    fn cli(class: &str, message: &str) -> PhpException {
        PhpException {
            class: class.into(),
            message: message.into(),
            file: "Command line code".into(),
            line: 1,
            previous: None,
        }
    }

    // Expected strings below were printed by PHP 8.2.36 CLI for the command quoted above each.

    #[test]
    fn single_exception_matches_php() {
        // php -r 'echo (string) new RuntimeException("boom");'
        assert_eq!(
            cli("RuntimeException", "boom").to_php_string(),
            "RuntimeException: boom in Command line code:1\nStack trace:\n#0 {main}"
        );
    }

    #[test]
    fn empty_message_omits_the_colon_part_like_php() {
        // php -r 'echo (string) new Exception("");'
        assert_eq!(
            cli("Exception", "").to_php_string(),
            "Exception in Command line code:1\nStack trace:\n#0 {main}"
        );
    }

    #[test]
    fn previous_is_printed_first_like_php() {
        // php -r 'echo (string) new RuntimeException("boom", 0, new LogicException("inner"));'
        let e = cli("RuntimeException", "boom").with_previous(cli("LogicException", "inner"));
        assert_eq!(
            e.to_php_string(),
            "LogicException: inner in Command line code:1\nStack trace:\n#0 {main}\n\n\
             Next RuntimeException: boom in Command line code:1\nStack trace:\n#0 {main}"
        );
    }

    #[test]
    fn three_level_chain_is_innermost_first_like_php() {
        // php -r 'echo (string) new RuntimeException("a", 0, new LogicException("b", 0, new Exception("")));'
        let e = cli("RuntimeException", "a")
            .with_previous(cli("LogicException", "b"))
            .with_previous(cli("Exception", ""));
        assert_eq!(
            e.to_php_string(),
            "Exception in Command line code:1\nStack trace:\n#0 {main}\n\n\
             Next LogicException: b in Command line code:1\nStack trace:\n#0 {main}\n\n\
             Next RuntimeException: a in Command line code:1\nStack trace:\n#0 {main}"
        );
    }

    #[test]
    fn laravel_10_texts() {
        let e = PhpException::max_attempts_exceeded("App\\Jobs\\DeferredJob");
        assert_eq!(e.class, "Illuminate\\Queue\\MaxAttemptsExceededException");
        assert_eq!(
            e.message,
            "App\\Jobs\\DeferredJob has been attempted too many times."
        );
        let t = PhpException::timed_out("App\\Jobs\\DeferredJob");
        assert_eq!(t.class, "Illuminate\\Queue\\TimeoutExceededException");
        assert_eq!(t.message, "App\\Jobs\\DeferredJob has timed out.");
        assert!(t.to_php_string().starts_with(
            "Illuminate\\Queue\\TimeoutExceededException: App\\Jobs\\DeferredJob has timed out. in defer-worker/"
        ));
    }

    #[test]
    fn headline_is_class_and_message_only() {
        assert_eq!(
            cli("RuntimeException", "boom").headline(),
            "RuntimeException: boom"
        );
        assert_eq!(cli("Exception", "").headline(), "Exception");
    }

    #[test]
    fn origin_is_the_rust_caller() {
        let line = line!() + 1;
        let e = PhpException::action_failed("nope");
        assert_eq!(e.file, concat!("defer-worker/", file!()));
        assert_eq!(e.line, line);
        assert_eq!(e.class, ACTION_FAILED);
        assert_eq!(
            e.to_string(),
            format!(
                "DeferWorker\\ActionFailedException: nope in defer-worker/{}:{line}\nStack trace:\n#0 {{main}}",
                file!()
            )
        );
    }
}
