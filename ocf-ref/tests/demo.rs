//! `ocf demo` end to end, as the README's main job runs it: real UDP on loopback, the real
//! `ocf:heartbeat:Dummy` and `fence_dummy` when installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;

fn demo(args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ocf"))
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

fn check_failover(json: &Value, nodes: u64) {
    assert_eq!(json["ok"], true, "demo failed: {json:#}");
    assert_eq!(json["nodes"], nodes);
    assert_eq!(json["fence_actions"], 1, "fenced once: {json:#}");
    let timeline = json["timeline"].as_array().unwrap();
    let names: Vec<&str> = timeline
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "killed",
            "detected",
            "view_installed",
            "fenced",
            "restarted"
        ]
    );
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

#[test]
fn three_nodes_fail_over_once() {
    let (code, json, stderr) = demo(&[]);
    assert_eq!(code, 0, "exit code; stderr:\n{stderr}");
    check_failover(&json, 3);
}

#[test]
fn five_nodes_fail_over_once() {
    let (code, json, stderr) = demo(&["--nodes", "5"]);
    assert_eq!(code, 0, "exit code; stderr:\n{stderr}");
    check_failover(&json, 5);
}

#[test]
fn two_nodes_are_refused_with_a_reason() {
    let out = Command::new(env!("CARGO_BIN_EXE_ocf"))
        .args(["demo", "--nodes", "2"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("at least 3 nodes"), "{stderr}");
}
