#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `ocf explain` on real `ocf node` processes: one is killed with SIGKILL, the cluster fencer
//! fences it (the spy agent), and every survivor explains the incident the same way, naming
//! the victim, the detection, the view change, the fence attempt and the node-death event;
//! the record survives a restart of a survivor's daemon.

#[path = "nodes_support/mod.rs"]
mod nodes_support;

use std::process::Command;
use std::time::{Duration, Instant};

use nodes_support::{Layout, Nodes, OCF};
use ocf_fencing::{Fencer, HistoryFilter};
use serde_json::Value;

fn explain(nodes: &Nodes, which: &[usize], args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(OCF);
    cmd.arg("explain").args(args);
    for &i in which {
        cmd.arg("--config").arg(&nodes.nodes[i].config);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn wait_fenced(nodes: &Nodes, at: usize, target: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let filter = HistoryFilter::all().target(target.parse().unwrap());
        if let Ok(records) = nodes.nodes[at].fencer().history(&filter).await
            && records.iter().any(ocf_fencing::FenceRecord::succeeded)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{target} never fenced\n{}",
            nodes.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn every_survivor_explains_the_lost_node_the_same_way_even_after_a_restart() {
    let mut nodes = Nodes::start(
        3,
        &Layout {
            with_device: vec![1, 2, 3],
            delay_s: 0,
            ..Layout::default()
        },
    );
    nodes.wait_for_view(&[0, 1, 2]).await;
    nodes.nodes[2].kill9();
    wait_fenced(&nodes, 0, "n3").await;
    // The node-death event follows the record's close.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (code, out, err) = explain(&nodes, &[0, 1], &["--last", "--json"]);
    assert_eq!(code, 0, "{err}\n{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["disagree"], serde_json::json!([]), "{v:#}");
    let e = &v["explanation"];
    assert_eq!(e["target"], "n3", "{e:#}");
    assert!(
        e["incident"].as_str().unwrap().starts_with("n3@left-view-"),
        "{e:#}"
    );
    assert!(
        e["detection"]["evidence"].as_str().unwrap().contains("n3"),
        "{e:#}"
    );
    assert_eq!(e["view_change"]["left"], serde_json::json!(["n3"]), "{e:#}");
    assert_eq!(e["view_change"]["threshold"], 2, "{e:#}");
    assert_eq!(
        e["installed"].as_object().unwrap().len(),
        2,
        "both survivors: {e:#}"
    );
    let attempts = e["fence"]["record"]["levels"][0]["attempts"]
        .as_array()
        .unwrap();
    assert_eq!(attempts.len(), 1, "{e:#}");
    assert_eq!(attempts[0]["device"], "pdu1");
    assert_eq!(e["node_death"]["target"], "n3", "{e:#}");
    assert_eq!(e["node_death"]["cause"]["how"], "fenced", "{e:#}");
    assert_eq!(
        nodes.calls().len(),
        1,
        "one agent call: {:?}",
        nodes.calls()
    );

    // Named, and in text, the same incident.
    let incident = e["incident"].as_str().unwrap().to_owned();
    let (code, text, err) = explain(&nodes, &[1], &[&incident]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains(&format!("incident {incident}")), "{text}");
    assert!(text.contains("node death: n3"), "{text}");
    println!("ocf explain {incident}:\n{text}");
    let (code, _, err) = explain(&nodes, &[1], &["n9@left-view-1.1.1"]);
    assert_ne!(code, 0);
    assert!(err.contains("knows no incident"), "{err}");

    // n1's daemon restarts: its own notes come back from its state directory.
    nodes.nodes[0].kill9();
    nodes.spawn(0);
    nodes.wait_for_view(&[0, 1]).await;
    let (code, out, err) = explain(&nodes, &[0], &[&incident, "--json"]);
    assert_eq!(code, 0, "{err}\n{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let again = &v["explanation"];
    assert_eq!(again["view_change"], e["view_change"], "{again:#}");
    assert_eq!(again["node_death"], e["node_death"], "{again:#}");
}

/// `ocf fence request --json` reports the fence's progress on stderr as JSON lines (started,
/// finished, with the attempts) while stdout holds only the record.
#[tokio::test]
async fn a_fence_request_reports_its_progress_on_stderr_only() {
    let nodes = Nodes::start(
        3,
        &Layout {
            with_device: vec![1, 2, 3],
            delay_s: 1,
            ..Layout::default()
        },
    );
    nodes.wait_for_view(&[0, 1, 2]).await;
    let out = Command::new(OCF)
        .args([
            "fence", "request", "n3", "--action", "off", "--json", "--config",
        ])
        .arg(&nodes.nodes[0].config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}\n{}", nodes.logs());
    let record: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["target"], "n3");
    let lines: Vec<Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &Value| v["progress"] == "fence")
        .collect();
    let messages: Vec<&str> = lines
        .iter()
        .map(|v| v["message"].as_str().unwrap())
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("finished")),
        "{messages:?}\n{stderr}"
    );
    assert!(
        lines.iter().all(|v| v["deadline_ms"] == 120_000),
        "{lines:?}"
    );
}
