//! The layering rule of `src/lib.rs`, held: every `crate::<module>` (and `super::` climbing to the crate
//! root) in `src/` must name a module listed before the file's own module in lib.rs's numbered list.
//! An upward import fails the test with the file, the line and the two layers.

use std::path::{Path, PathBuf};

/// One import that points up.
#[derive(Debug, PartialEq, Eq)]
struct Violation {
    file: String,
    line: usize,
    from: String,
    to: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: `{}` uses `{}`, a layer above it (src/lib.rs lists the order)",
            self.file, self.line, self.from, self.to
        )
    }
}

/// The numbered list of lib.rs's doc comment: `//! 3. [`php`]: …`, lowest first.
fn layers(lib_rs: &str) -> Vec<String> {
    lib_rs
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .filter_map(|l| {
            let l = l.trim_start();
            let (number, rest) = l.split_once(". [`")?;
            number.parse::<u32>().ok()?;
            Some(rest.split_once('`')?.0.to_owned())
        })
        .collect()
}

/// The module path of a file under `src/` (`ops/failed/retry.rs` → `[ops, failed, retry]`).
fn module_path(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// Code without comments (string literals holding `//` are kept: only whole-line and trailing
/// comments outside quotes are removed).
fn strip_comment(line: &str) -> &str {
    let mut in_str = false;
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_str => i += 1,
            b'"' => in_str = !in_str,
            b'/' if !in_str && bytes.get(i + 1) == Some(&b'/') => return &line[..i],
            _ => {}
        }
        i += 1;
    }
    line
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level modules `text` refers to, with their line numbers: `crate::x`, `$crate::x`,
/// `crate::{x::…, y}` (over several lines), and `super::` chains that climb to the crate root.
fn references(path: &[String], text: &str) -> Vec<(usize, String)> {
    let code: Vec<&str> = text.lines().map(strip_comment).collect();
    let mut out = Vec::new();
    for (i, line) in code.iter().enumerate() {
        let mut rest = *line;
        while let Some(at) = rest.find("crate::") {
            let before = &rest[..at];
            let after = &rest[at + "crate::".len()..];
            rest = after;
            if before.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            if let Some(group) = after.strip_prefix('{') {
                // The group may span lines: collect to its closing brace.
                let mut body = group.to_owned();
                let mut j = i;
                while body.matches('{').count() >= body.matches('}').count() && j + 1 < code.len() {
                    j += 1;
                    body.push_str(code[j]);
                }
                let mut depth = 0;
                let mut item_start = true;
                for (k, c) in body.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => item_start = true,
                        c if item_start && !c.is_whitespace() => {
                            out.push((i + 1, ident_at(&body[k..]).to_owned()));
                            item_start = false;
                        }
                        _ => {}
                    }
                }
            } else {
                out.push((i + 1, ident_at(after).to_owned()));
            }
        }
        // `super::super::x` from a module at depth d reaches the crate root after d supers.
        let mut rest = *line;
        while let Some(at) = rest.find("super::") {
            let before = &rest[..at];
            let mut after = &rest[at..];
            rest = &rest[at + "super::".len()..];
            if before.ends_with("super::")
                || before.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            {
                continue;
            }
            let mut climbs = 0;
            while let Some(r) = after.strip_prefix("super::") {
                climbs += 1;
                after = r;
            }
            // A file's own module is path[..len]; `super` from `a/b/c.rs` ([a, b, c]) is `a::b`.
            if climbs >= path.len() {
                out.push((i + 1, ident_at(after).to_owned()));
            }
        }
    }
    out
}

/// Every upward reference among `files` (paths relative to `src/`, texts), given the layer order.
fn check(order: &[String], files: &[(String, String)]) -> (Vec<Violation>, Vec<String>) {
    let rank = |m: &str| order.iter().position(|o| o == m);
    let mut violations = Vec::new();
    let mut unlisted = Vec::new();
    for (rel, text) in files {
        if rel == "lib.rs" || rel == "main.rs" {
            continue;
        }
        let path = module_path(rel);
        let own = &path[0];
        let Some(own_rank) = rank(own) else {
            unlisted.push(format!(
                "src/{rel}: module `{own}` is not in src/lib.rs's layer list"
            ));
            continue;
        };
        for (line, to) in references(&path, text) {
            if &to == own || to == "self" || to.is_empty() {
                continue;
            }
            match rank(&to) {
                Some(r) if r < own_rank => {}
                Some(_) => violations.push(Violation {
                    file: format!("src/{rel}"),
                    line,
                    from: own.clone(),
                    to,
                }),
                None => unlisted.push(format!(
                    "src/{rel}:{line}: `crate::{to}` is not in src/lib.rs's layer list"
                )),
            }
        }
    }
    (violations, unlisted)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn imports_point_down_the_layers_of_lib_rs() {
    let src = crate::support::repo().join("src");
    let order = layers(&std::fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs"));
    assert!(
        order.len() >= 10,
        "lib.rs's layer list not found: {order:?}"
    );
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    let files: Vec<(String, String)> = paths
        .iter()
        .map(|p| {
            let rel = p
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (rel, std::fs::read_to_string(p).expect("read source"))
        })
        .collect();
    // Every declared module is in the list, and every file was read.
    let lib = &files.iter().find(|(r, _)| r == "lib.rs").unwrap().1;
    for m in lib.lines().filter_map(|l| l.strip_prefix("pub mod ")) {
        let m = m.trim_end_matches(';');
        assert!(
            order.iter().any(|o| o == m),
            "`{m}` is missing from lib.rs's layer list"
        );
    }
    assert!(files.len() > 80, "only {} files under src/", files.len());
    let (violations, unlisted) = check(&order, &files);
    let shown: Vec<String> = violations.iter().map(ToString::to_string).collect();
    assert!(
        shown.is_empty(),
        "imports that point up:\n{}",
        shown.join("\n")
    );
    assert!(unlisted.is_empty(), "{}", unlisted.join("\n"));
}

#[test]
fn an_upward_import_is_named_with_its_file_and_line() {
    let order: Vec<String> = ["util", "config", "laravel", "worker", "ops"]
        .map(String::from)
        .to_vec();
    let files = vec![
        (
            "config/file.rs".to_owned(),
            "//! uses crate::ops in a comment only\nuse crate::util::url;\nuse crate::worker::Worker;\n"
                .to_owned(),
        ),
        (
            "laravel/queue.rs".to_owned(),
            "use crate::{\n    config::Settings,\n    ops::connect,\n};\nlet u = \"redis://x\"; // crate::ops\n"
                .to_owned(),
        ),
        // `super::super` from laravel/cache_store/x.rs is `laravel`; from ops.rs one `super` is the root.
        (
            "laravel/cache_store/x.rs".to_owned(),
            "use super::super::queue;\n".to_owned(),
        ),
        ("util/mod.rs".to_owned(), "pub fn f() { super::config::g() }\n".to_owned()),
        ("worker/job.rs".to_owned(), "use crate::nope::X;\n".to_owned()),
    ];
    let (violations, unlisted) = check(&order, &files);
    assert_eq!(
        violations,
        vec![
            Violation {
                file: "src/config/file.rs".into(),
                line: 3,
                from: "config".into(),
                to: "worker".into()
            },
            Violation {
                file: "src/laravel/queue.rs".into(),
                line: 1,
                from: "laravel".into(),
                to: "ops".into()
            },
            Violation {
                file: "src/util/mod.rs".into(),
                line: 1,
                from: "util".into(),
                to: "config".into()
            },
        ]
    );
    assert_eq!(
        violations[0].to_string(),
        "src/config/file.rs:3: `config` uses `worker`, a layer above it (src/lib.rs lists the order)"
    );
    assert_eq!(
        unlisted,
        vec!["src/worker/job.rs:1: `crate::nope` is not in src/lib.rs's layer list"]
    );
    assert_eq!(
        layers("//! Layers:\n//! 1. [`util`]: a\n//!    more\n//! 2. [`config`]: b\n"),
        ["util", "config"]
    );
}
