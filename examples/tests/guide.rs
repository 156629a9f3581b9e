//! The guide in `docs/` stays whole: every chapter named in `SUMMARY.md` exists, every chapter
//! on disk is named there, and every relative link between chapters resolves. (CI does not
//! install mdBook, which would check the same; `mdbook build docs` works where it is installed.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn docs_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/src")
}

/// The targets of markdown links `[text](target)` in `text`, without anchors.
fn link_targets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("](") {
        rest = &rest[start + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = rest[..end].split('#').next().unwrap_or_default().trim();
        if !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:") {
            out.push(target.to_owned());
        }
        rest = &rest[end..];
    }
    out
}

#[test]
fn summary_and_chapters_match() {
    let src = docs_src();
    let summary = std::fs::read_to_string(src.join("SUMMARY.md")).unwrap();
    let named: BTreeSet<String> = link_targets(&summary).into_iter().collect();
    assert!(named.len() >= 5, "SUMMARY.md names only {named:?}");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&src)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            std::path::Path::new(n)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("md"))
                && n != "SUMMARY.md"
        })
        .collect();
    for name in &named {
        assert!(
            on_disk.contains(name),
            "SUMMARY.md names {name}, which does not exist"
        );
    }
    for name in &on_disk {
        assert!(named.contains(name), "{name} is not in SUMMARY.md");
    }
}

#[test]
fn relative_links_resolve() {
    let src = docs_src();
    let mut broken = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap().filter_map(Result::ok) {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for target in link_targets(&text) {
            if !src.join(&target).exists() {
                broken.push(format!("{} -> {target}", path.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links: {broken:#?}");
}

#[test]
fn link_parser_finds_links_and_skips_urls() {
    let t = "see [a](a.md#x) and [b](https://x.org) and [c](../c.md)";
    assert_eq!(link_targets(t), vec!["a.md", "../c.md"]);
}
