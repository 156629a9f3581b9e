//! `ocf demo` end to end, as the README's main job runs it: real `ocf node` processes on
//! loopback (and the in-process fast path), the real `ocf:heartbeat:Dummy` and `fence_dummy`
//! when installed; after each run, no node process, socket or scratch file is left, also when
//! the demo is interrupted with SIGINT in the middle.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

const OCF: &str = env!("CARGO_BIN_EXE_ocf");

/// The scratch directory the demo named in its first progress line.
fn scratch_of(progress: &str) -> Option<PathBuf> {
    let at = progress.find("(scratch ")? + "(scratch ".len();
    let rest = &progress[at..];
    Some(PathBuf::from(&rest[..rest.find(')')?]))
}

/// Every process whose command line names `dir` (the nodes' configs live there).
fn processes_in(dir: &std::path::Path) -> Vec<String> {
    let needle = dir.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(&needle) {
            found.push(format!("{}: {cmd}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

fn assert_nothing_left(stderr: &str) {
    let first = stderr
        .lines()
        .find_map(|l| {
            let v: Value = serde_json::from_str(l).ok()?;
            scratch_of(v["message"].as_str()?)
        })
        .unwrap_or_else(|| panic!("no scratch directory named on stderr:\n{stderr}"));
    assert!(!first.exists(), "{} was left behind", first.display());
    let left = processes_in(&first);
    assert!(left.is_empty(), "processes left: {left:?}");
}

fn demo(args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(OCF)
        .arg("demo")
        .arg("--json")
        .args(args)
        .output()
        .expect("run ocf demo");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("demo printed no JSON ({e}); stderr:\n{stderr}"));
    (out.status.code().unwrap_or(-1), json, stderr)
}

fn check_failover(json: &Value, nodes: u64, steps: &[&str]) {
    assert_eq!(json["ok"], true, "demo failed: {json:#}");
    assert_eq!(json["nodes"], nodes);
    assert_eq!(json["fence_actions"], 1, "fenced once: {json:#}");
    let timeline = json["timeline"].as_array().unwrap();
    let names: Vec<&str> = timeline
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(names, steps);
    let ms: Vec<u64> = timeline.iter().map(|e| e["ms"].as_u64().unwrap()).collect();
    assert!(ms.windows(2).all(|w| w[0] <= w[1]), "times go back: {ms:?}");
    let killed = json["killed_node"].as_u64().unwrap();
    let recovered = json["recovered_on"].as_u64().unwrap();
    assert_ne!(killed, recovered, "recovered on the dead node");
    if std::path::Path::new("/usr/lib/ocf/resource.d/heartbeat/Dummy").exists() {
        assert_eq!(json["agent"], "ocf:heartbeat:Dummy");
    }
    if std::path::Path::new("/usr/sbin/fence_dummy").exists() {
        assert_eq!(json["fence_device"], "fence_dummy");
    }
}

/// The incident's record, as every survivor told it: the victim, the evidence, the fence
/// attempt, the node-death event and the restart.
fn check_explain(json: &Value) {
    let e = &json["explain"];
    let victim = format!("n{}", json["killed_node"]);
    assert_eq!(e["target"], victim.as_str(), "{e:#}");
    assert!(
        e["detection"]["evidence"]
            .as_str()
            .is_some_and(|t| t.contains(&victim)),
        "{e:#}"
    );
    let attempts = e["fence"]["record"]["levels"][0]["attempts"]
        .as_array()
        .unwrap();
    assert_eq!(attempts.len(), 1, "{e:#}");
    assert_eq!(e["node_death"]["target"], victim.as_str(), "{e:#}");
    let recoveries = e["recoveries"].as_array().unwrap();
    assert_eq!(recoveries.len(), 1, "{e:#}");
    assert_eq!(
        recoveries[0]["node"],
        format!("n{}", json["recovered_on"]).as_str()
    );
    assert_eq!(recoveries[0]["exit_code"], 0);
    let survivors = json["nodes"].as_u64().unwrap() - 1;
    assert_eq!(
        e["installed"].as_object().unwrap().len() as u64,
        survivors,
        "every survivor's install time: {e:#}"
    );
}

const PROCESS_STEPS: [&str; 6] = [
    "killed",
    "detected",
    "view_installed",
    "fenced",
    "node_death",
    "restarted",
];

#[test]
fn three_node_processes_fail_over_once_and_leave_nothing() {
    let (code, json, stderr) = demo(&[]);
    assert_eq!(code, 0, "exit code; stderr:\n{stderr}");
    assert_eq!(json["mode"], "processes");
    check_failover(&json, 3, &PROCESS_STEPS);
    check_explain(&json);
    assert_nothing_left(&stderr);
}

#[test]
fn five_node_processes_fail_over_once_and_leave_nothing() {
    let (code, json, stderr) = demo(&["--nodes", "5"]);
    assert_eq!(code, 0, "exit code; stderr:\n{stderr}");
    check_failover(&json, 5, &PROCESS_STEPS);
    check_explain(&json);
    assert_nothing_left(&stderr);
}

#[test]
fn the_in_process_fast_path_fails_over_once() {
    let (code, json, stderr) = demo(&["--in-process"]);
    assert_eq!(code, 0, "exit code; stderr:\n{stderr}");
    assert_eq!(json["mode"], "in_process");
    check_failover(
        &json,
        3,
        &[
            "killed",
            "detected",
            "view_installed",
            "fenced",
            "restarted",
        ],
    );
}

/// SIGINT in the middle (once the nodes run): every node is stopped and reaped, the scratch
/// directory removed, exit 130, and stdout holds no report.
#[test]
fn sigint_in_the_middle_leaves_nothing_behind() {
    let mut child = Command::new(OCF)
        .args(["demo", "--json", "--nodes", "5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufReader::new(stderr).lines();
    let mut seen = String::new();
    let mut scratch = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if let Some(p) = serde_json::from_str::<Value>(&line)
            .ok()
            .and_then(|v| scratch_of(v["message"].as_str()?))
        {
            scratch = Some(p);
        }
        // The nodes are up: the demo waits for quorum or has formed.
        if line.contains("waiting for quorum") || line.contains("formed") {
            break;
        }
    }
    let scratch = scratch.unwrap_or_else(|| panic!("no scratch named:\n{seen}"));
    assert!(
        !processes_in(&scratch).is_empty(),
        "no node runs before the SIGINT:\n{seen}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    for line in lines {
        seen.push_str(&line.unwrap());
        seen.push('\n');
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "stderr:\n{seen}");
    assert!(out.stdout.is_empty(), "a report after an interrupt");
    assert!(seen.contains("interrupted"), "{seen}");
    assert!(!scratch.exists(), "{} was left behind", scratch.display());
    let left = processes_in(&scratch);
    assert!(left.is_empty(), "processes left: {left:?}");
}

#[test]
fn two_nodes_are_refused_with_a_reason() {
    let out = Command::new(OCF)
        .args(["demo", "--nodes", "2"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("at least 3 nodes"), "{stderr}");
}
