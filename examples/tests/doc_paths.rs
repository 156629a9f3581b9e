//! Docs name only files that exist: every repository path (`ocf-ref/src/…`, `docs/src/…`, …)
//! and every capitalised markdown note mentioned in a markdown file or a Rust comment of the workspace must be
//! there. A doc that cites a design note nobody can open is a doc that lies.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap_or_else(|e| panic!("the workspace root: {e}"))
}

/// The workspace's own text files (markdown and Rust), skipping build output and VCS data.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "target" || name == "corpus" {
            continue;
        }
        if path.is_dir() {
            files(&path, out);
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("md") || e.eq_ignore_ascii_case("rs"))
        {
            out.push(path);
        }
    }
}

/// The prefixes that make a token a repository path.
const PREFIXES: [&str; 7] = [
    "ocf-api/",
    "ocf-ref/",
    "docs/",
    "examples/",
    "benches/",
    "scripts/",
    ".ci/",
];

/// Candidate file references in `text`: repository paths, and bare capitalised note names
/// (a README, an ALGORITHM or a DESIGN note).
fn references(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for raw in text.split(|c: char| c.is_whitespace() || "`\"'()[]{}<>,;|".contains(c)) {
        let token = raw.trim_end_matches(['.', ':', '!', '?']);
        let token = token.split([':', '#']).next().unwrap_or_default();
        if token.contains("..") || token.contains('$') || token.contains('…') || token.contains('*')
        {
            continue;
        }
        let is_path = PREFIXES.iter().any(|p| token.starts_with(p))
            && token.len() > 4
            && !token.ends_with('/');
        let stem = token.strip_suffix(".md").unwrap_or_default();
        let is_note = !stem.is_empty()
            && !token.contains('/')
            && stem
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == '_' || c == '-');
        if is_path || is_note {
            out.push(token.to_owned());
        }
    }
    out
}

/// The comment text of a Rust file (doc comments and line comments), or all of a markdown
/// file.
fn prose(path: &Path, text: &str) -> String {
    if path.extension().is_some_and(|e| e == "md") {
        return text.to_owned();
    }
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_file_a_doc_names_exists() {
    let root = root();
    let mut all = Vec::new();
    files(&root, &mut all);
    assert!(
        all.len() > 50,
        "found only {} files under {}",
        all.len(),
        root.display()
    );
    let names: BTreeSet<String> = all
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    let mut missing = Vec::new();
    for file in &all {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for r in references(&prose(file, &text)) {
            let exists = if r.contains('/') {
                root.join(&r).exists()
            } else {
                names.contains(&r)
            };
            if !exists {
                missing.push(format!(
                    "{} names {r}",
                    file.strip_prefix(&root).unwrap_or(file).display()
                ));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs name files that do not exist:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn the_reference_finder_sees_paths_and_notes() {
    let found = references(
        "see `ocf-ref/src/membership/ALGORITHM.md`, DESIGN.md and (docs/src/cli.md#x); not a/b.rs",
    );
    assert_eq!(
        found,
        vec![
            "ocf-ref/src/membership/ALGORITHM.md",
            "DESIGN.md",
            "docs/src/cli.md"
        ]
    );
}
