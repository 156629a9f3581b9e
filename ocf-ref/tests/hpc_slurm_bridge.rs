//! `ocf slurm bridge` against a real Slurm (munged, slurmctld, one slurmd per node) and real
//! `ocf node` processes with a spy fence agent: a killed node is fenced once, then Slurm
//! shows it DOWN with ocf's reason, never before; an admin's DRAIN survives the node leaving
//! and rejoining; a bridge restarted while a node dies still sets it DOWN exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod nodes_support;
mod slurm_support;

use std::time::Duration;

use nodes_support::{Layout, Nodes, OCF};
use ocf_fencing::{Fencer, HistoryFilter};
use slurm_support::{BridgeProc, Slurm};

const WAIT: Duration = Duration::from_secs(60);

fn layout() -> Layout {
    Layout {
        with_device: vec![1, 2, 3],
        delay_s: 0,
        ..Layout::default()
    }
}

/// `SlurmdStartTime` of `node` as Slurm shows it (changes when a new slurmd registers).
fn slurmd_start_time(slurm: &Slurm, node: &str) -> Option<String> {
    let (_, out, _) = slurm.scontrol(&["-o", "show", "node", node]);
    out.split_whitespace()
        .find_map(|w| w.strip_prefix("SlurmdStartTime="))
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_is_fenced_once_then_down_in_slurm_then_resumed() {
    let mut nodes = Nodes::start(3, &layout());
    nodes.wait_for_view(&[0, 1, 2]).await;
    let mut slurm = Slurm::start(&["n1", "n2", "n3"], "");
    let bridge = BridgeProc::start(
        &nodes.nodes[0].config,
        &slurm.conf,
        &nodes.dir.path().join("bridge.json"),
        &nodes.dir.path().join("bridge.log"),
    );
    bridge.wait_caught_up(WAIT);

    nodes.nodes[2].kill9();
    slurm.kill9_slurmd("n3");
    let down = bridge.wait_action("n3", "down", WAIT);

    // Fenced once, by the spy, before anything reached Slurm.
    assert_eq!(
        nodes.calls(),
        vec![("reboot".to_owned(), "n3".to_owned())],
        "{}",
        nodes.logs()
    );
    let history = nodes.nodes[0]
        .fencer()
        .history(&HistoryFilter::all().target("n3".parse().unwrap()))
        .await
        .unwrap();
    let record = history
        .iter()
        .find(|r| r.succeeded())
        .expect("a fenced record");
    let incident = record.incident.as_ref().unwrap().to_string();
    assert!(incident.starts_with("n3@left-view-"), "{incident}");
    assert_eq!(down["incident"], incident.as_str());
    assert!(
        down["at_ms"].as_u64().unwrap() >= record.ended_ms.unwrap(),
        "Slurm was told at {} before fencing was confirmed at {:?}",
        down["at_ms"],
        record.ended_ms
    );
    let (state, reason) = slurm.node("n3").unwrap();
    assert!(state.starts_with("DOWN"), "{state}");
    assert_eq!(
        reason.as_deref(),
        Some(format!("ocf: fenced (reboot), incident {incident}").as_str())
    );

    // n3 comes back as a rebooted machine: its slurmd registers with Slurm, then its ocf node
    // rejoins and the bridge resumes the node it holds. (The other order, the ocf node back
    // before Slurm heard the new slurmd, is a race the bridge does not handle yet: resumed
    // early, the node is put DOWN again by Slurm as "unexpectedly rebooted".)
    let started_before = slurmd_start_time(&slurm, "n3");
    slurm.start_slurmd("n3", true);
    let deadline = std::time::Instant::now() + WAIT;
    while slurmd_start_time(&slurm, "n3") == started_before {
        assert!(
            std::time::Instant::now() < deadline,
            "n3's slurmd never registered again\n{}",
            slurm.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    nodes.spawn(2);
    nodes.wait_for_view(&[0, 1, 2]).await;
    bridge.wait_action("n3", "resume", WAIT);
    slurm.wait_node("n3", "out of DOWN", WAIT, |s, _| !s.starts_with("DOWN"));
    assert_eq!(
        bridge
            .actions("n3")
            .iter()
            .filter(|a| a["action"] == "down")
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_drain_survives_the_node_leaving_and_rejoining() {
    let mut nodes = Nodes::start(3, &layout());
    nodes.wait_for_view(&[0, 1, 2]).await;
    let slurm = Slurm::start(&["n1", "n2", "n3"], "");
    let (code, _, err) = slurm.scontrol(&["update", "NodeName=n2", "State=DRAIN", "Reason=maint"]);
    assert_eq!(code, 0, "{err}");
    let bridge = BridgeProc::start(
        &nodes.nodes[0].config,
        &slurm.conf,
        &nodes.dir.path().join("bridge.json"),
        &nodes.dir.path().join("bridge.log"),
    );
    bridge.wait_caught_up(WAIT);

    nodes.nodes[1].kill9();
    let kept = bridge.wait_action("n2", "kept", WAIT);
    assert!(kept["detail"].as_str().unwrap().contains("maint"), "{kept}");
    assert_eq!(nodes.calls(), vec![("reboot".to_owned(), "n2".to_owned())]);

    nodes.spawn(1);
    nodes.wait_for_view(&[0, 1, 2]).await;
    // Several of the bridge's ticks with n2 back in the view.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (state, reason) = slurm.node("n2").unwrap();
    assert!(state.contains("DRAIN"), "{state}");
    assert_eq!(reason.as_deref(), Some("maint"));
    let did: Vec<_> = bridge
        .actions("n2")
        .iter()
        .map(|a| a["action"].clone())
        .collect();
    assert_eq!(did, vec!["kept"], "{did:?}");

    // `ocf slurm holds` names the owners.
    let out = std::process::Command::new(OCF)
        .args(["slurm", "holds", "--json", "n[1-2]", "--slurm-conf"])
        .arg(&slurm.conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let holds: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(holds.len(), 2, "{holds:?}");
    assert_eq!(holds[0]["node"], "n1");
    assert_eq!(holds[0]["owner"], "free");
    assert_eq!(holds[1]["owner"], "other");
    assert_eq!(holds[1]["reason"], "maint");
    assert!(
        holds[1]["since"].as_str().unwrap().starts_with("root@"),
        "{holds:?}"
    );

    // `ocf node state` on n2: in the view, the admin's hold, the last fencing about it.
    let state = node_state(&nodes.nodes[1].config, Some(&slurm.conf));
    assert_eq!(state["node"], "n2");
    assert_eq!(state["in_view"], true, "{state}");
    assert_eq!(state["holds"].as_array().unwrap().len(), 1, "{state}");
    assert_eq!(state["holds"][0]["owner"], "other");
    assert_eq!(state["holds"][0]["reason"], "maint");
    assert_eq!(state["last_fence"]["action"], "reboot", "{state}");
    assert_eq!(state["last_fence"]["succeeded"], true);
    // A node whose daemon is gone: what cannot be known is said, not guessed.
    nodes.nodes[2].kill9();
    let state = node_state(&nodes.nodes[2].config, None);
    assert_eq!(state["in_view"], serde_json::Value::Null, "{state}");
    assert!(
        !state["unavailable"].as_array().unwrap().is_empty(),
        "{state}"
    );
}

fn node_state(config: &std::path::Path, slurm_conf: Option<&std::path::Path>) -> serde_json::Value {
    let mut cmd = std::process::Command::new(OCF);
    cmd.args(["node", "state", "--json", "--timeout", "2", "--config"])
        .arg(config)
        .env_remove("SLURM_CONF");
    if let Some(c) = slurm_conf {
        cmd.arg("--slurm-conf").arg(c);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_restarted_while_a_node_dies_sets_it_down_once() {
    let mut nodes = Nodes::start(3, &layout());
    nodes.wait_for_view(&[0, 1, 2]).await;
    let mut slurm = Slurm::start(&["n1", "n2", "n3"], "");
    let state = nodes.dir.path().join("bridge.json");
    let mut first = BridgeProc::start(
        &nodes.nodes[0].config,
        &slurm.conf,
        &state,
        &nodes.dir.path().join("bridge1.log"),
    );
    first.wait_caught_up(WAIT);
    first.kill9();

    nodes.nodes[2].kill9();
    slurm.kill9_slurmd("n3");
    // Fencing ends while no bridge runs.
    let fencer = nodes.nodes[0].fencer();
    let deadline = std::time::Instant::now() + WAIT;
    while !fencer
        .history(&HistoryFilter::all().target("n3".parse().unwrap()))
        .await
        .unwrap()
        .iter()
        .any(ocf_fencing::FenceRecord::succeeded)
    {
        assert!(std::time::Instant::now() < deadline, "{}", nodes.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        slurm.node("n3").map(|(s, _)| s.starts_with("DOWN")),
        Some(false)
    );

    let second = BridgeProc::start(
        &nodes.nodes[0].config,
        &slurm.conf,
        &state,
        &nodes.dir.path().join("bridge2.log"),
    );
    second.wait_action("n3", "down", WAIT);
    slurm.wait_node("n3", "DOWN by ocf", WAIT, |s, r| {
        s.starts_with("DOWN") && r.is_some_and(|r| r.starts_with("ocf: fenced"))
    });
    drop(second);

    // A third start finds it done: nothing applied again.
    let third = BridgeProc::start(
        &nodes.nodes[0].config,
        &slurm.conf,
        &state,
        &nodes.dir.path().join("bridge3.log"),
    );
    third.wait_caught_up(WAIT);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(third.actions("n3").is_empty(), "{:?}", third.actions("n3"));
    assert_eq!(nodes.calls().len(), 1);
}

/// Prints kill → DOWN with ocf (n3: ocf node and slurmd killed) beside Slurm alone (n2: only
/// its slurmd killed, SlurmdTimeout=10). A measurement, not a check: `--ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn measure_kill_to_down() {
    let mut nodes = Nodes::start(3, &layout());
    nodes.wait_for_view(&[0, 1, 2]).await;
    let mut slurm = Slurm::start(&["n1", "n2", "n3"], "");
    let bridge = BridgeProc::start(
        &nodes.nodes[0].config,
        &slurm.conf,
        &nodes.dir.path().join("bridge.json"),
        &nodes.dir.path().join("bridge.log"),
    );
    bridge.wait_caught_up(WAIT);
    let now_ms = || {
        u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap()
    };
    let killed = std::time::Instant::now();
    let killed_ms = now_ms();
    slurm.kill9_slurmd("n2");
    nodes.nodes[2].kill9();
    slurm.kill9_slurmd("n3");
    slurm.wait_node("n3", "DOWN by ocf", WAIT, |s, r| {
        s.starts_with("DOWN") && r.is_some_and(|r| r.starts_with("ocf: "))
    });
    let ocf_down = killed.elapsed();
    let down = bridge.wait_action("n3", "down", WAIT);
    let record = nodes.nodes[0]
        .fencer()
        .history(&HistoryFilter::all().target("n3".parse().unwrap()))
        .await
        .unwrap()
        .into_iter()
        .find(ocf_fencing::FenceRecord::succeeded)
        .unwrap();
    let ended = record.ended_ms.unwrap();
    slurm.wait_node("n2", "DOWN by Slurm", WAIT, |s, _| s.starts_with("DOWN"));
    let slurm_down = killed.elapsed();
    eprintln!(
        "kill -> DOWN with ocf: {} ms (kill -> fence confirmed {} ms, confirmed -> scontrol done {} ms); Slurm alone: {} ms",
        ocf_down.as_millis(),
        ended.saturating_sub(killed_ms),
        down["at_ms"].as_u64().unwrap().saturating_sub(ended),
        slurm_down.as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_node_stays_out_of_slurm_until_its_health_passes() {
    let mut nodes = Nodes::start(3, &layout());
    nodes.wait_for_view(&[0, 1, 2]).await;
    let mut slurm = Slurm::start(&["n1", "n2", "n3"], "");
    let health = nodes.dir.path().join("health");
    std::fs::create_dir(&health).unwrap();
    let param = format!("state={}/%n", health.display());
    let bridge = BridgeProc::start_with(
        &nodes.nodes[0].config,
        &slurm.conf,
        &nodes.dir.path().join("bridge.json"),
        &nodes.dir.path().join("bridge.log"),
        &[
            "--health-agent",
            "ocf:heartbeat:Dummy",
            "--health-param",
            &param,
        ],
    );
    bridge.wait_caught_up(WAIT);

    nodes.nodes[2].kill9();
    slurm.kill9_slurmd("n3");
    bridge.wait_action("n3", "down", WAIT);
    nodes.spawn(2);
    slurm.start_slurmd("n3", true);
    nodes.wait_for_view(&[0, 1, 2]).await;

    // Back in the view, but the real Dummy agent's monitor says "not running": it stays out.
    let failed = bridge.wait_action("n3", "health_failed", WAIT);
    assert!(
        failed["detail"]
            .as_str()
            .unwrap()
            .contains("OCF_NOT_RUNNING"),
        "{failed}"
    );
    let (state, reason) = slurm.wait_node("n3", "held by health", WAIT, |s, r| {
        s.starts_with("DOWN") && r.is_some_and(|r| r.starts_with("ocf: health failed"))
    });
    assert!(
        bridge.actions("n3").iter().all(|a| a["action"] != "resume"),
        "{state} {reason:?}"
    );
    let out = std::process::Command::new(OCF)
        .args(["slurm", "holds", "--json", "n3", "--slurm-conf"])
        .arg(&slurm.conf)
        .output()
        .unwrap();
    let hold: serde_json::Value =
        serde_json::from_str(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    assert_eq!(hold["owner"], "health", "{hold}");

    // The check passes: the node returns.
    std::fs::write(health.join("n3"), "").unwrap();
    bridge.wait_action("n3", "resume", WAIT);
    slurm.wait_node("n3", "out of DOWN", WAIT, |s, _| !s.starts_with("DOWN"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_death_while_slurmctld_is_down_reaches_slurm_when_it_is_back() {
    let mut nodes = Nodes::start(3, &layout());
    nodes.wait_for_view(&[0, 1, 2]).await;
    let mut slurm = Slurm::start(&["n1", "n2", "n3"], "");
    let bridge = BridgeProc::start(
        &nodes.nodes[0].config,
        &slurm.conf,
        &nodes.dir.path().join("bridge.json"),
        &nodes.dir.path().join("bridge.log"),
    );
    bridge.wait_caught_up(WAIT);

    slurm.stop_slurmctld();
    nodes.nodes[2].kill9();
    slurm.kill9_slurmd("n3");
    // scontrol cannot reach slurmctld: a typed error, and the death is kept.
    let error = bridge.wait_action("n3", "error", WAIT);
    assert!(
        error["detail"]
            .as_str()
            .unwrap()
            .contains("slurmctld does not answer"),
        "{error}"
    );
    slurm.start_slurmctld();
    bridge.wait_action("n3", "down", WAIT);
    slurm.wait_node("n3", "DOWN by ocf", WAIT, |s, r| {
        s.starts_with("DOWN") && r.is_some_and(|r| r.starts_with("ocf: fenced"))
    });
    assert_eq!(
        bridge
            .actions("n3")
            .iter()
            .filter(|a| a["action"] == "down")
            .count(),
        1
    );
    assert_eq!(nodes.calls(), vec![("reboot".to_owned(), "n3".to_owned())]);
}
