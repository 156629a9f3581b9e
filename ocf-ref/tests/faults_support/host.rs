//! What a namespace test needs from its host, and what it must leave behind: nothing.
//! Shared by the fault test and the fencer's partition test (`tests/fencing_partition.rs`
//! includes this file by `#[path]`).

use std::path::Path;
use std::process::Command;

/// True when the test can run: root, network namespaces and `ip`. Otherwise a loud skip, or a
/// failure when `CI` is set.
pub fn can_run(test: &str) -> bool {
    let mut missing = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        missing.push("root (it creates network namespaces)");
    }
    let unshare = Command::new("unshare")
        .args(["--net", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !unshare {
        missing.push("network namespaces (`unshare --net true` failed)");
    }
    let ip = Command::new("ip")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ip {
        missing.push("`ip` (iproute2)");
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "\n!!!!!!!! {test} SKIPPED: needs {} !!!!!!!!\n",
        missing.join(" and ")
    );
    assert!(
        std::env::var_os("CI").is_none(),
        "{msg}CI is set, so a skipped fault test is a failure"
    );
    eprintln!("{msg}");
    false
}

/// What the run left behind: namespaces among `namespaces` that still exist, and processes
/// whose command line names `dir` (every node and recorder of the run has its config there).
pub fn leftovers(namespaces: &[String], dir: &Path) -> Vec<String> {
    let mut left = Vec::new();
    let listed = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    for line in listed.lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        if namespaces.iter().any(|n| n == name) {
            left.push(format!("namespace {name}"));
        }
    }
    let pgrep = Command::new("pgrep")
        .args(["-a", "-f"])
        .arg(dir)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    left.extend(pgrep.lines().map(|l| format!("process {l}")));
    if dir.exists() {
        left.push(format!("directory {}", dir.display()));
    }
    left
}
