//! The app's `.env` file, read with the rules of vlucas/phpdotenv 5 (what Laravel 10 loads at boot).
//!
//! - `KEY=value`, `export KEY=value`, `"KEY"=value`; names are `[A-Za-z0-9_.]+`; a line holding only a name
//!   (no `=`) unsets it. Blank lines and lines starting with `#` are skipped.
//! - Unquoted values end at `#` (a comment) and must not contain whitespace; `${VAR}` is expanded.
//! - `'single'` quotes are literal. `"double"` quotes take `\"`, `\\`, `\$`, `\f`, `\n`, `\r`, `\t`, `\v`,
//!   expand `${VAR}` and may span several lines.
//! - `${VAR}` takes the process environment's value first (Laravel's repository is immutable), else the
//!   value an earlier line of the file gave; an unknown variable stays as written, as in phpdotenv.
//!
//! This module only parses text: it must not read the process environment itself (the caller passes a
//! lookup) and does not apply Laravel's `env()` conversions (`null`, `true`…), which belong to the
//! settings layer. Errors name the file and line, and never quote a value (it may be a secret).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// One `KEY=value` line (or multi-line entry) of the file.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    /// The value after quoting and expansion; `None` for a bare `KEY` line, which unsets the key.
    pub value: Option<String>,
    /// 1-based line where the entry starts.
    pub line: usize,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may be secrets: only their length is shown.
        write!(
            f,
            "Entry {{ key: {:?}, line: {}, value: {} }}",
            self.key,
            self.line,
            match &self.value {
                Some(v) => format!("<{} bytes>", v.len()),
                None => "unset".to_owned(),
            }
        )
    }
}

/// A parsed `.env` file: its path and entries in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotEnv {
    path: PathBuf,
    entries: Vec<Entry>,
}

/// A line phpdotenv would refuse (Laravel then fails to boot).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {reason}", path.display())]
pub struct DotEnvError {
    pub path: PathBuf,
    pub line: usize,
    pub reason: String,
}

/// Why the `.env` file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read the .env file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Parse(#[from] DotEnvError),
}

impl DotEnv {
    /// Reads and parses `path`; `process` looks up the process environment for `${VAR}` expansion.
    pub fn read(
        path: &Path,
        process: &dyn Fn(&str) -> Option<String>,
    ) -> Result<DotEnv, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(DotEnv::parse(&text, path, process)?)
    }

    /// Parses `text` as the file `path` (used in messages only).
    pub fn parse(
        text: &str,
        path: &Path,
        process: &dyn Fn(&str) -> Option<String>,
    ) -> Result<DotEnv, DotEnvError> {
        let err = |line: usize, reason: String| DotEnvError {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let mut loaded: HashMap<String, String> = HashMap::new();
        let mut entries = Vec::new();
        for (line, raw) in join_multiline(text) {
            let (name, value) = match raw.split_once('=') {
                Some((n, v)) => (php_trim(n), Some(php_trim(v))),
                None => (php_trim(&raw), None),
            };
            if name.is_empty() {
                return Err(err(
                    line,
                    "a line starts with `=`: the name is missing".into(),
                ));
            }
            let key = parse_name(name).ok_or_else(|| {
                err(
                    line,
                    format!("invalid name {name:?}: names are letters, digits, `_` and `.`"),
                )
            })?;
            let value = match value {
                None => None,
                Some(v) => {
                    let parsed = parse_value(v)
                        .map_err(|reason| err(line, format!("{reason} in the value of {key}")))?;
                    Some(
                        parsed.resolve(&|name: &str| {
                            process(name).or_else(|| loaded.get(name).cloned())
                        }),
                    )
                }
            };
            match &value {
                // A variable set by the process environment keeps that value for later expansions.
                Some(v) => {
                    loaded.insert(key.clone(), v.clone());
                }
                None => {
                    loaded.remove(&key);
                }
            }
            entries.push(Entry { key, value, line });
        }
        Ok(DotEnv {
            path: path.to_path_buf(),
            entries,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The last entry for `key` (a later line wins, as in phpdotenv).
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| e.key == key)
    }
}

/// PHP's `trim()` default characters.
fn php_trim(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\n', '\r', '\0', '\x0B'])
}

/// Splits the text into lines and joins the lines of a multi-line double-quoted value, as phpdotenv's
/// `Lines::process` does; comment and blank lines are dropped. Yields (first line number, entry text).
fn join_multiline(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut buffer: Vec<&str> = Vec::new();
    let mut start = 0;
    for (i, line) in split_lines(text).into_iter().enumerate() {
        let started = looks_like_multiline_start(line);
        if started {
            // A new start inside an open value is phpdotenv's behaviour too: the buffer keeps growing.
            if buffer.is_empty() {
                start = i + 1;
            }
        }
        if started || !buffer.is_empty() {
            buffer.push(line);
            if looks_like_multiline_stop(line, started) {
                out.push((start, buffer.join("\n")));
                buffer.clear();
            }
            continue;
        }
        let trimmed = php_trim(line);
        if !trimmed.is_empty() && !trimmed.starts_with('#') {
            out.push((i + 1, line.to_owned()));
        }
    }
    if !buffer.is_empty() {
        // Never closed: phpdotenv drops it silently; we report it as a missing quote on its first line.
        out.push((start, buffer.join("\n")));
    }
    out
}

fn split_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find(['\n', '\r']) {
        lines.push(&rest[..pos]);
        let skip = if rest[pos..].starts_with("\r\n") {
            2
        } else {
            1
        };
        rest = &rest[pos + skip..];
    }
    lines.push(rest);
    lines
}

fn looks_like_multiline_start(line: &str) -> bool {
    line.contains("=\"") && !looks_like_multiline_stop(line, true)
}

/// Counts the `"` not preceded by a backslash (after removing `\\` pairs), like phpdotenv's regex
/// `(?=([^\\]"))`: a quote at the very start of the line does not count.
fn looks_like_multiline_stop(line: &str, started: bool) -> bool {
    if line == "\"" {
        return true;
    }
    let s = line.replace("\\\\", "");
    let b = s.as_bytes();
    let count = (1..b.len())
        .filter(|&i| b[i] == b'"' && b[i - 1] != b'\\')
        .count();
    if started {
        count > 1
    } else {
        count >= 1
    }
}

fn parse_name(name: &str) -> Option<String> {
    let mut name = name;
    if name.len() > 8 && name.starts_with("export") && name[6..].starts_with(char::is_whitespace) {
        name = name[6..].trim_start();
    }
    if name.len() >= 3
        && ((name.starts_with('"') && name.ends_with('"'))
            || (name.starts_with('\'') && name.ends_with('\'')))
    {
        name = &name[1..name.len() - 1];
    }
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.');
    valid.then(|| name.to_owned())
}

/// A value with quotes and escapes processed and the byte offsets where `${VAR}` may start.
struct Parsed {
    chars: String,
    vars: Vec<usize>,
}

impl Parsed {
    fn resolve(self, lookup: &dyn Fn(&str) -> Option<String>) -> String {
        let mut s = self.chars;
        // From the end, so that earlier offsets stay valid.
        for &i in self.vars.iter().rev() {
            let Some(rest) = s.get(i..) else { continue };
            let Some(body) = rest.strip_prefix("${") else {
                continue;
            };
            let Some(end) = body.find('}') else { continue };
            let name = &body[..end];
            let valid = !name.is_empty()
                && name
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.');
            if !valid {
                continue;
            }
            if let Some(value) = lookup(name) {
                let len = 2 + end + 1;
                s.replace_range(i..i + len, &value);
            }
        }
        s
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Initial,
    Unquoted,
    SingleQuoted,
    DoubleQuoted,
    Escape,
    Whitespace,
    Comment,
}

/// phpdotenv's lexer: runs of newlines, runs of other whitespace, `\`, `'`, `"`, `#`, `$`, and runs of
/// anything else.
fn lex(value: &str) -> Vec<&str> {
    let mut tokens = Vec::new();
    let mut rest = value;
    while let Some(c) = rest.chars().next() {
        let len = match c {
            '\\' | '\'' | '"' | '#' | '$' => 1,
            '\r' | '\n' => rest
                .find(|c: char| c != '\r' && c != '\n')
                .unwrap_or(rest.len()),
            c if c.is_whitespace() => rest
                .find(|c: char| !c.is_whitespace() || c == '\r' || c == '\n')
                .unwrap_or(rest.len()),
            _ => rest
                .find(|c: char| c.is_whitespace() || matches!(c, '\\' | '\'' | '"' | '#' | '$'))
                .unwrap_or(rest.len()),
        };
        tokens.push(&rest[..len]);
        rest = &rest[len..];
    }
    tokens
}

fn is_space_token(token: &str) -> bool {
    token.chars().all(char::is_whitespace)
}

fn parse_value(value: &str) -> Result<Parsed, String> {
    let mut out = Parsed {
        chars: String::new(),
        vars: Vec::new(),
    };
    if php_trim(value).is_empty() {
        return Ok(out);
    }
    let mut state = State::Initial;
    for token in lex(value) {
        let (text, var, next): (&str, bool, State) = match state {
            State::Initial | State::Unquoted => match token {
                "'" if state == State::Initial => ("", false, State::SingleQuoted),
                "\"" if state == State::Initial => ("", false, State::DoubleQuoted),
                "#" => ("", false, State::Comment),
                "$" => (token, true, State::Unquoted),
                t if state == State::Unquoted && is_space_token(t) => {
                    ("", false, State::Whitespace)
                }
                t => (t, false, State::Unquoted),
            },
            State::SingleQuoted => match token {
                "'" => ("", false, State::Whitespace),
                t => (t, false, State::SingleQuoted),
            },
            State::DoubleQuoted => match token {
                "\"" => ("", false, State::Whitespace),
                "\\" => ("", false, State::Escape),
                "$" => (token, true, State::DoubleQuoted),
                t => (t, false, State::DoubleQuoted),
            },
            State::Escape => match token {
                "\"" | "\\" | "$" => (token, false, State::DoubleQuoted),
                t => {
                    let control = match t.as_bytes().first() {
                        Some(b'f') => '\x0C',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'v') => '\x0B',
                        _ => {
                            let shown: String = t.chars().take(1).collect();
                            return Err(format!(
                                "unexpected escape sequence `\\{}` (allowed: \\\" \\\\ \\$ \\f \\n \\r \\t \\v)",
                                shown.escape_debug()
                            ));
                        }
                    };
                    out.chars.push(control);
                    (&t[1..], false, State::DoubleQuoted)
                }
            },
            State::Whitespace => match token {
                "#" => ("", false, State::Comment),
                t if is_space_token(t) => ("", false, State::Whitespace),
                _ => {
                    return Err(
                        "unexpected whitespace (quote a value that contains spaces)".to_owned()
                    )
                }
            },
            State::Comment => ("", false, State::Comment),
        };
        if var {
            out.vars.push(out.chars.len());
        }
        out.chars.push_str(text);
        state = next;
    }
    match state {
        State::SingleQuoted | State::DoubleQuoted | State::Escape => {
            Err("missing closing quote".to_owned())
        }
        _ => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(text: &str, process: &[(&str, &str)]) -> Result<DotEnv, DotEnvError> {
        let process: HashMap<String, String> = process
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        DotEnv::parse(text, Path::new(".env"), &|k| process.get(k).cloned())
    }

    fn value(env: &DotEnv, key: &str) -> Option<String> {
        env.get(key).and_then(|e| e.value.clone())
    }

    #[test]
    fn quoting_comments_and_export() {
        let env = parse_with(
            "# comment\n\
             A=plain\n\
             export BB=exported\n\
             C='single ${A} \\n'\n\
             D=\"double \\\"q\\\" \\\\ \\$A tab\\there\"\n\
             E=value # trailing comment\n\
             F=val#ue\n\
             G=\n\
             H=\"\"\n\
             \"I\"=quoted-name\n\
             J = spaced\n",
            &[],
        )
        .unwrap();
        assert_eq!(value(&env, "A").as_deref(), Some("plain"));
        assert_eq!(value(&env, "BB").as_deref(), Some("exported"));
        assert_eq!(value(&env, "C").as_deref(), Some("single ${A} \\n"));
        assert_eq!(
            value(&env, "D").as_deref(),
            Some("double \"q\" \\ $A tab\there")
        );
        assert_eq!(value(&env, "E").as_deref(), Some("value"));
        assert_eq!(value(&env, "F").as_deref(), Some("val"));
        assert_eq!(value(&env, "G").as_deref(), Some(""));
        assert_eq!(value(&env, "H").as_deref(), Some(""));
        assert_eq!(value(&env, "I").as_deref(), Some("quoted-name"));
        assert_eq!(value(&env, "J").as_deref(), Some("spaced"));
        assert_eq!(env.get("E").map(|e| e.line), Some(6));
    }

    #[test]
    fn expansion_prefers_the_process_then_earlier_lines() {
        let env = parse_with(
            "APP_NAME=\"RestroSaaS\"\n\
             FROM=\"${APP_NAME}\"\n\
             URL=${APP_URL}/api\n\
             LATER=${DEFINED_LATER}\n\
             DEFINED_LATER=x\n\
             HOME_DIR=\"${HOME_X}/x\"\n",
            &[("APP_URL", "https://example.test"), ("HOME_X", "/home")],
        )
        .unwrap();
        assert_eq!(value(&env, "FROM").as_deref(), Some("RestroSaaS"));
        assert_eq!(
            value(&env, "URL").as_deref(),
            Some("https://example.test/api")
        );
        assert_eq!(value(&env, "LATER").as_deref(), Some("${DEFINED_LATER}"));
        assert_eq!(value(&env, "HOME_DIR").as_deref(), Some("/home/x"));

        let env = parse_with("APP_NAME=File\nFROM=${APP_NAME}\n", &[("APP_NAME", "Proc")]).unwrap();
        assert_eq!(value(&env, "FROM").as_deref(), Some("Proc"));
    }

    #[test]
    fn multi_line_double_quoted_values() {
        let env = parse_with("KEY=\"line one\nline two\n\"\nNEXT=1\r\nCRLF=2\r\n", &[]).unwrap();
        assert_eq!(value(&env, "KEY").as_deref(), Some("line one\nline two\n"));
        assert_eq!(value(&env, "NEXT").as_deref(), Some("1"));
        assert_eq!(env.get("NEXT").map(|e| e.line), Some(4));
        assert_eq!(value(&env, "CRLF").as_deref(), Some("2"));
    }

    #[test]
    fn a_later_line_wins_and_a_bare_name_unsets() {
        let env = parse_with("A=1\nA=2\nB=1\nB\n", &[]).unwrap();
        assert_eq!(value(&env, "A").as_deref(), Some("2"));
        assert_eq!(env.get("B").map(|e| e.value.is_none()), Some(true));
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let cases = [
            ("A=1\nB=two words\n", 2, "unexpected whitespace"),
            ("A=1\n\nC='open\n", 3, "missing closing quote"),
            ("D=\"bad \\q escape\"\n", 1, "unexpected escape"),
            ("A=1\nBAD-NAME=1\n", 2, "invalid name"),
            ("=1\n", 1, "name is missing"),
            (
                "A=1\nM=\"never closed\nstill open\n",
                2,
                "missing closing quote",
            ),
        ];
        for (text, line, reason) in cases {
            let err = parse_with(text, &[]).unwrap_err();
            assert_eq!(err.line, line, "{text:?}: {err}");
            let shown = err.to_string();
            assert!(shown.starts_with(&format!(".env:{line}: ")), "{shown}");
            assert!(shown.contains(reason), "{shown}");
        }
    }

    #[test]
    fn errors_do_not_quote_values() {
        let err = parse_with("SECRET=s3cr3t value\n", &[]).unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
        assert!(err.to_string().contains("SECRET"), "{err}");
    }
}
