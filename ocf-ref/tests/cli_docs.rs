//! The guide's CLI chapter keeps up with the binary: every subcommand `ocf --help` lists (and
//! the subcommands of `ocf ra` and `ocf fence`) is documented in `docs/src/cli.md`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

/// The subcommand names in a clap help text's `Commands:` section, without `help`.
fn subcommands(args: &[&str]) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_ocf"))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_subcommand_is_in_the_cli_chapter() {
    let chapter = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/src/cli.md"),
    )
    .unwrap();
    let top = subcommands(&[]);
    assert!(top.len() >= 6, "ocf --help lists {top:?}");
    let mut missing = Vec::new();
    for command in &top {
        let nested = subcommands(&[command]);
        let names: Vec<String> = if nested.is_empty() {
            vec![format!("`ocf {command}")]
        } else {
            nested
                .iter()
                .map(|n| format!("`ocf {command} {n}"))
                .collect()
        };
        missing.extend(names.into_iter().filter(|n| !chapter.contains(n.as_str())));
    }
    assert!(
        missing.is_empty(),
        "docs/src/cli.md does not document {missing:?}"
    );
}
