//! The repository cites only what it contains. Walking `src/`, `docs/`, `README.md`, `fixtures/`,
//! `deploy/`, `scripts/` and `tests/`, every line must:
//! - name none of the research notes that live outside the repository;
//! - write each section reference as `<file>.md §N.M`, naming a file of the repository that has a
//!   heading numbered `N.M` (a bare section number is allowed only inside `docs/laravel-queue.md` and
//!   `docs/restrosaas.md`, where it means one of their own headings);
//! - in Markdown files, link (`[text](path)`) only to relative paths that exist.
//!
//! Headings are Markdown headings whose first word is the number: `## 5. The worker's retry rules`,
//! `### 5.3 Processing one job`. This file is skipped by the walk (its checks hold bad examples), and its
//! forbidden names are built from pieces so that it does not contain them.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::support::repo;

const SECTION: char = '\u{a7}';

/// What is walked, relative to the repository root.
const ROOTS: &[&str] = &[
    "src",
    "docs",
    "README.md",
    "fixtures",
    "deploy",
    "scripts",
    "tests",
];
/// Directory names never entered.
const SKIP_DIRS: &[&str] = &["target", ".git"];
/// Documents in which a bare section number refers to their own headings.
const SELF_REFERENCING: &[&str] = &["docs/laravel-queue.md", "docs/restrosaas.md"];
/// This file: its unit checks hold the very strings the walk rejects.
const THIS_FILE: &str = "tests/doc_refs.rs";

/// Names of the documents outside the repository, and the old ways of citing them.
fn forbidden() -> Vec<String> {
    vec![
        ["..", "shared"].join("/"),
        ["/work", "shared"].join("/"),
        ["restrosaas", "facts"].join("-"),
        ["laravel", "queue", "spec"].join("-"),
        ["laravel", "11", "13"].join("-"),
        format!("spec {SECTION}"),
        format!("facts {SECTION}"),
    ]
}

/// The numbered headings of the repository's Markdown files, read on first use.
struct Headings {
    root: PathBuf,
    cache: HashMap<String, Option<BTreeSet<String>>>,
}

impl Headings {
    fn new(root: &Path) -> Self {
        Headings {
            root: root.to_owned(),
            cache: HashMap::new(),
        }
    }

    /// The section numbers of `rel` (a path from the repository root); `None` when there is no such file.
    fn of(&mut self, rel: &str) -> Option<&BTreeSet<String>> {
        let root = self.root.clone();
        self.cache
            .entry(rel.to_owned())
            .or_insert_with(|| {
                std::fs::read_to_string(root.join(rel))
                    .ok()
                    .map(|text| section_numbers(&text))
            })
            .as_ref()
    }
}

/// `## 5. Title` → `5`, `### 5.3 Title` → `5.3`, outside fenced code blocks.
fn section_numbers(markdown: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let rest = line.trim_start_matches('#');
        if !rest.starts_with(' ') {
            continue;
        }
        if let Some(word) = rest.split_whitespace().next() {
            if let Some(number) = section_number(word) {
                found.insert(number);
            }
        }
    }
    found
}

/// `5`, `5.`, `5.3`, `10.4` → the number without a trailing dot; anything else → `None`.
fn section_number(word: &str) -> Option<String> {
    let number = word.strip_suffix('.').unwrap_or(word);
    let ok = !number.is_empty()
        && number
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
    ok.then(|| number.to_owned())
}

/// The section number written right after a section sign: digits and inner dots (`5.3`, not `5.3.`).
fn number_after(text: &str) -> Option<String> {
    let raw: String = text
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let trimmed = raw.trim_end_matches('.');
    section_number(trimmed)
}

/// The word before a section sign, when it is a path: `docs/x.md §N` → `docs/x.md` (a closing backtick
/// around the path is allowed: `` `docs/x.md` §N ``).
fn path_before(text: &str) -> Option<&str> {
    let text = text.strip_suffix(' ')?;
    let text = text.strip_suffix('`').unwrap_or(text);
    let start = text
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_ascii_alphanumeric() || "/._-".contains(*c))
        .last()
        .map(|(i, _)| i)?;
    Some(&text[start..])
}

/// Every problem on the lines of `text`, read as the file `rel`: `rel:line: what`.
fn check_text(rel: &str, text: &str, headings: &mut Headings) -> Vec<String> {
    let forbidden = forbidden();
    let mut problems = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = format!("{rel}:{}", n + 1);
        for name in &forbidden {
            if line.contains(name.as_str()) {
                problems.push(format!(
                    "{at}: cites {name:?}, a document outside the repository"
                ));
            }
        }
        for (i, _) in line.match_indices(SECTION) {
            let after = &line[i + SECTION.len_utf8()..];
            let Some(number) = number_after(after) else {
                continue;
            };
            let cited = format!("{SECTION}{number}");
            match path_before(&line[..i]) {
                Some(path) if path.ends_with(".md") => match headings.of(path) {
                    None => problems.push(format!("{at}: {path} {cited}: no such file")),
                    Some(sections) if !sections.contains(&number) => problems.push(format!(
                        "{at}: {path} {cited}: {path} has no heading numbered {number}"
                    )),
                    Some(_) => {}
                },
                _ if SELF_REFERENCING.contains(&rel) => {
                    if !headings.of(rel).is_some_and(|s| s.contains(&number)) {
                        problems.push(format!(
                            "{at}: {cited}: this document has no heading numbered {number}"
                        ));
                    }
                }
                _ => problems.push(format!(
                    "{at}: {cited} does not name its document: write it as docs/<name>.md {cited}"
                )),
            }
        }
    }
    problems
}

/// Relative Markdown links of `text` (the file `rel`) whose target does not exist. Links to web pages,
/// mail addresses and anchors of the same page are not checked, nor anything inside fenced code.
fn check_links(rel: &str, text: &str, root: &Path) -> Vec<String> {
    let dir = Path::new(rel).parent().unwrap_or(Path::new(""));
    let mut problems = Vec::new();
    let mut fenced = false;
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        for (i, _) in line.match_indices("](") {
            let rest = &line[i + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = rest[..end].split_whitespace().next().unwrap_or("");
            if target.is_empty()
                || target.starts_with('#')
                || target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with("mailto:")
            {
                continue;
            }
            let path = target.split('#').next().unwrap_or(target);
            if !root.join(dir).join(path).exists() {
                problems.push(format!(
                    "{rel}:{}: link to {target}: {} does not exist",
                    n + 1,
                    dir.join(path).display()
                ));
            }
        }
    }
    problems
}

/// Every file under the roots, as paths from the repository root with `/` separators.
fn walk(root: &Path) -> Vec<String> {
    fn visit(root: &Path, rel: &Path, out: &mut Vec<String>) {
        let path = root.join(rel);
        if path.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(&path)
                .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
                .map(|e| e.expect("directory entry").file_name())
                .collect();
            entries.sort();
            for name in entries {
                if SKIP_DIRS.iter().any(|s| name == *s) {
                    continue;
                }
                visit(root, &rel.join(name), out);
            }
        } else if path.is_file() {
            let text = rel.to_string_lossy().replace('\\', "/");
            out.push(text);
        }
    }
    let mut out = Vec::new();
    for r in ROOTS {
        visit(root, Path::new(r), &mut out);
    }
    out
}

#[test]
fn the_repository_cites_only_what_it_contains() {
    let root = repo();
    let mut headings = Headings::new(&root);
    let files = walk(&root);
    let mut problems = Vec::new();
    let mut read = 0;
    for rel in &files {
        if rel == THIS_FILE {
            continue;
        }
        // Binary files (and anything else that is not UTF-8) hold no references.
        let Ok(text) = std::fs::read_to_string(root.join(rel)) else {
            continue;
        };
        read += 1;
        problems.extend(check_text(rel, &text, &mut headings));
        if rel.ends_with(".md") {
            problems.extend(check_links(rel, &text, &root));
        }
    }
    // A walk that found nothing would pass too: make sure it saw the code and the references.
    assert!(read > 100, "only {read} text files found under {ROOTS:?}");
    for doc in SELF_REFERENCING {
        assert!(files.iter().any(|f| f == doc), "{doc} was not walked");
        let n = headings.of(doc).map_or(0, BTreeSet::len);
        assert!(n >= 10, "{doc} has {n} numbered headings");
    }
    assert!(
        problems.is_empty(),
        "{} reference problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The checks themselves reject what they must, and accept what they must.
#[test]
fn the_checks_catch_bad_references() {
    let root = repo();
    let mut headings = Headings::new(&root);
    let s = SECTION;
    let mut check = |rel: &str, text: &str| check_text(rel, text, &mut headings);

    // Outside documents, by name and by the old citation forms.
    for name in forbidden() {
        let line = format!("see {name} for the details");
        assert_eq!(check("src/x.rs", &line).len(), 1, "{line}");
    }
    // A section that exists, one that does not, a file that does not.
    assert!(check("src/x.rs", &format!("// docs/laravel-queue.md {s}5.3")).is_empty());
    assert!(check("src/x.rs", &format!("// (docs/restrosaas.md {s}9.12):")).is_empty());
    assert!(check("src/x.rs", &format!("`docs/restrosaas.md` {s}2.")).is_empty());
    let missing = check("src/x.rs", &format!("// docs/laravel-queue.md {s}99.9"));
    assert_eq!(missing.len(), 1);
    assert!(missing[0].starts_with("src/x.rs:1: "), "{missing:?}");
    assert!(
        missing[0].contains("no heading numbered 99.9"),
        "{missing:?}"
    );
    let no_file = check("x.sql", &format!("-- docs/no-such-document.md {s}1"));
    assert_eq!(no_file.len(), 1);
    assert!(no_file[0].contains("no such file"), "{no_file:?}");
    // A bare number: only the two references may cite themselves, and only existing headings.
    let bare = check("src/x.rs", &format!("ok\n// decided here ({s}8.7)"));
    assert_eq!(bare.len(), 1);
    assert!(bare[0].starts_with("src/x.rs:2: "), "{bare:?}");
    assert!(check("docs/laravel-queue.md", &format!("see {s}5.3")).is_empty());
    assert_eq!(
        check("docs/restrosaas.md", &format!("see {s}42.1")).len(),
        1
    );
    assert_eq!(check("docs/whatsapp.md", &format!("see {s}5.3")).len(), 1);
    // A section sign without a number is not a reference.
    assert!(check("src/x.rs", &format!("the {s} sign")).is_empty());

    // Links.
    let links = |text: &str| check_links("docs/x.md", text, &root);
    assert!(links("[guide](whatsapp.md) and [limits](security.md#limits)").is_empty());
    assert!(links("[web](https://example.com/a.md) [top](#section)").is_empty());
    assert_eq!(links("[gone](no-such-document.md)").len(), 1);
    assert_eq!(
        links("[up](../README.md) [up](../no-such-file.md)").len(),
        1
    );
    assert!(links("```\n[not a link](nowhere.md)\n```").is_empty());
    assert_eq!(
        check_links("README.md", "[x](docs/no-such-document.md)", &root).len(),
        1
    );

    // Headings.
    let numbers = section_numbers(
        "# Title\n## 1. One\n### 1.2 Two\n#### 10.3.1 Deep\n## Notes\n```\n## 9. fenced\n```\n",
    );
    let want: BTreeSet<String> = ["1", "1.2", "10.3.1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(numbers, want);
}
