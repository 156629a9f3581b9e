//! The cluster fencer over Corosync: three corosync nodes in network namespaces on one bridge
//! (`corosync_support`), an `ocf node` with `backend = "corosync"` in each namespace (the
//! fencer's messages ride the CPG group `ocf-fence-<cluster>`; its authority is the lowest
//! member of the quorate view), a spy fence agent on every node (`nodes_support`):
//!
//! - two requesters on each node ask to fence n3 at once: one agent call, all six get the same
//!   record, the history is the same on all three nodes;
//! - a late request for n3, through the CLI without an incident id: answered from history, no
//!   second call;
//! - the node running the fence (its ocf node and its corosync) is killed mid-fence: the
//!   authority has another node run it again (two executions, one outcome for every requester
//!   still alive), the dead node is fenced once as lost, and once back it gets the history.

#![cfg(feature = "corosync")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod corosync_support;
mod nodes_support;

use std::path::PathBuf;
use std::time::Duration;

use nodes_support::{Backend, Layout, Nodes, OCF, Placement};
use ocf_fencing::{FenceAction, FenceEvent, FenceRecord, FenceRequest, Fencer};

const LIMIT: Duration = Duration::from_secs(60);

/// Corosync on three nodes and an `ocf node` beside each. Dropped in field order: the ocf
/// nodes, then corosync, the namespaces and the files.
struct Bed {
    nodes: Nodes,
    corosync: corosync_support::Cluster,
}

impl Bed {
    fn start(tag: &str, layout: &Layout) -> Self {
        let corosync = corosync_support::Cluster::start(tag, 3, 1000);
        corosync.wait_formed(3, LIMIT);
        let placement = Placement {
            cluster: format!("ocf{tag}"),
            namespaces: (1..=3).map(|id| Some(corosync.ns(id))).collect(),
            backend: Backend::Corosync,
        };
        let nodes = Nodes::start_in(&placement, layout);
        Self { nodes, corosync }
    }

    /// What a failure should show: the ocf nodes' logs.
    fn logs(&self) -> String {
        self.nodes.logs()
    }
}

fn request(target: &str, who: &str) -> FenceRequest {
    FenceRequest::new(
        target.parse().unwrap(),
        FenceAction::Reboot,
        who.parse().unwrap(),
    )
    .with_timeout(Duration::from_secs(40))
}

/// The leftovers of a bed whose namespaces start with `prefix` and files lie in `dirs`:
/// namespaces, processes naming a dir, the dirs themselves.
fn leftovers(prefix: &str, dirs: &[PathBuf]) -> Vec<String> {
    let mut left = Vec::new();
    let listed = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    left.extend(
        listed
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(|l| format!("namespace {l}")),
    );
    for dir in dirs {
        let pgrep = std::process::Command::new("pgrep")
            .args(["-a", "-f"])
            .arg(dir)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        left.extend(pgrep.lines().map(|l| format!("process {l}")));
        if dir.exists() {
            left.push(format!("directory {}", dir.display()));
        }
    }
    left
}

/// Starts a bed tagged `tag`, runs `body` on it, drops it and checks nothing is left.
async fn with_bed(tag: &str, layout: &Layout, body: impl AsyncFnOnce(&mut Bed)) {
    let prefix = format!("ocf{}{tag}", std::process::id());
    let dirs = {
        let mut bed = Bed::start(tag, layout);
        let dirs = vec![
            bed.nodes.dir.path().to_owned(),
            bed.corosync.dir.path().to_owned(),
        ];
        body(&mut bed).await;
        dirs
    };
    let left = leftovers(&prefix, &dirs);
    assert!(left.is_empty(), "left behind: {left:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_requesters_on_three_corosync_nodes_cause_one_agent_call() {
    if !corosync_support::can_run("six_requesters_on_three_corosync_nodes_cause_one_agent_call") {
        return;
    }
    let layout = Layout {
        with_device: vec![1, 2, 3],
        delay_s: 1,
        ..Layout::default()
    };
    with_bed("cf", &layout, async |bed: &mut Bed| {
        let view = bed.nodes.wait_for_view(&[0, 1, 2]).await;
        println!("corosync view {} on all three", view.id);
        let watch = bed.nodes.watch(1);
        let mut asks = Vec::new();
        for n in &bed.nodes.nodes {
            for who in ["ha", "hpc"] {
                let f = n.fencer();
                let r = request("n3", &format!("{who}@{}", n.name));
                asks.push(tokio::spawn(async move { f.fence(r).await }));
            }
        }
        let mut records: Vec<FenceRecord> = Vec::new();
        for a in asks {
            match a.await.unwrap() {
                Ok(r) => records.push(r),
                Err(e) => panic!("a requester failed: {e}\n{}", bed.logs()),
            }
        }
        let calls = bed.nodes.calls_by();
        assert_eq!(calls.len(), 1, "{calls:?}\n{records:#?}");
        let (action, plug, caller) = &calls[0];
        assert_eq!((action.as_str(), plug.as_str()), ("reboot", "n3"));
        assert_ne!(caller, "n3", "a node fenced itself");
        let first = &records[0];
        assert!(
            records.iter().all(|r| r.id == first.id && r.succeeded()),
            "{records:#?}"
        );
        let all = records.iter().max_by_key(|r| r.requesters.len()).unwrap();
        assert_eq!(all.requesters.len(), 6, "{all:#?}");
        assert_eq!(first.executions.len(), 1, "{first:#?}");
        assert_eq!(first.executions[0].node.as_str(), caller);
        println!(
            "incident {} of six requesters on three corosync nodes: {} device call(s), run by {caller}",
            first.id,
            calls.len()
        );

        // The same history on all three, and the node-death event once on n2's watcher.
        let history = bed
            .nodes
            .wait_for_same_history(&[0, 1, 2], |h| {
                h.iter().any(|r| r.id == first.id && r.requesters.len() == 6)
            })
            .await;
        assert_eq!(history.len(), 1, "{history:#?}");
        let events = watch
            .wait_for("the death of n3", |es| {
                es.iter()
                    .any(|e| matches!(e, FenceEvent::NodeDeath { death } if death.record == Some(first.id)))
            })
            .await;
        let deaths = events
            .iter()
            .filter(|e| matches!(e, FenceEvent::NodeDeath { .. }))
            .count();
        assert_eq!(deaths, 1, "{events:#?}");

        // A late request, through the CLI without an incident id: from history, no new call.
        let out = std::process::Command::new(OCF)
            .args([
                "fence",
                "request",
                "n3",
                "--requester",
                "late@n2",
                "--json",
                "--config",
            ])
            .arg(&bed.nodes.nodes[1].config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            bed.logs()
        );
        let late: FenceRecord = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(late.id, first.id, "{late:#?}");
        assert_eq!(bed.nodes.calls().len(), 1, "a late request shot again");
        println!(
            "a late request for n3 joined incident {}: still {} device call(s)",
            late.id,
            bed.nodes.calls().len()
        );
        // Its requester is in the record on every node.
        bed.nodes
            .wait_for_same_history(&[0, 1, 2], |h| {
                h.len() == 1 && h[0].requesters.iter().any(|r| r.as_str() == "late@n2")
            })
            .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_executing_node_dies_mid_fence_and_another_finishes() {
    if !corosync_support::can_run("the_executing_node_dies_mid_fence_and_another_finishes") {
        return;
    }
    // The spy on n2 and n3; n1 (the authority: the lowest member) is the target, so n2 runs
    // the fence first.
    let layout = Layout {
        with_device: vec![2, 3],
        delay_s: 4,
        ..Layout::default()
    };
    with_bed("ck", &layout, async |bed: &mut Bed| {
        bed.nodes.wait_for_view(&[0, 1, 2]).await;
        let watch = bed.nodes.watch(2);
        let mut asks = Vec::new();
        for n in &bed.nodes.nodes {
            let f = n.fencer();
            let r = request("n1", &format!("ha@{}", n.name));
            asks.push((n.name.clone(), tokio::spawn(async move { f.fence(r).await })));
        }
        // n2's spy is running: the whole node dies (its ocf node and its corosync).
        let deadline = std::time::Instant::now() + LIMIT;
        while bed.nodes.calls().is_empty() {
            assert!(std::time::Instant::now() < deadline, "no agent call\n{}", bed.logs());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            bed.nodes.calls_by(),
            vec![("reboot".to_owned(), "n1".to_owned(), "n2".to_owned())]
        );
        bed.nodes.nodes[1].kill9();
        bed.corosync.kill9(2);

        let mut outcome = None;
        for (who, a) in asks {
            let r = a.await.unwrap();
            if who == "n2" {
                assert!(r.is_err(), "n2's requester was answered by a dead node: {r:?}");
                continue;
            }
            let r = r.unwrap_or_else(|e| panic!("{who}: {e}\n{}", bed.logs()));
            assert!(r.succeeded(), "{r:#?}");
            let ran: Vec<&str> = r.executions.iter().map(|e| e.node.as_str()).collect();
            assert_eq!(ran, ["n2", "n3"], "{r:#?}");
            assert!(!r.executions[0].outcome.as_ref().is_some_and(ocf_fencing::FenceOutcome::is_success));
            let o = (r.id, r.outcome.clone());
            assert!(outcome.as_ref().is_none_or(|p| *p == o), "{who}: {r:#?}");
            outcome = Some(o);
        }
        let (id, _) = outcome.expect("n1 and n3 answered");
        // n2, lost from the quorate view, is fenced too: by n3, once.
        watch
            .wait_for("the deaths of n1 and n2", |es| {
                ["n1", "n2"].iter().all(|t| {
                    es.iter().any(|e| {
                        matches!(e, FenceEvent::NodeDeath { death } if death.target.as_str() == *t)
                    })
                })
            })
            .await;
        let history = bed
            .nodes
            .wait_for_same_history(&[0, 2], |h| {
                h.len() == 2 && h.iter().all(|r| r.outcome.is_some())
            })
            .await;
        let calls = bed.nodes.calls_by();
        let on = |t: &str| calls.iter().filter(|(_, p, _)| p == t).count();
        assert_eq!(on("n1"), 2, "one call by the dead executor, one by n3: {calls:?}");
        assert_eq!(on("n2"), 1, "{calls:?}");
        assert_eq!(calls.len(), 3, "{calls:?}");
        let lost = history.iter().find(|r| r.target.as_str() == "n2").unwrap();
        assert!(
            lost.incident
                .as_ref()
                .is_some_and(|i| i.as_str().starts_with("n2@left-view-")),
            "{lost:#?}"
        );
        println!(
            "incident {id} (n1, executor killed mid-fence): {} device calls; incident {} ({}): {} device call",
            on("n1"),
            lost.id,
            lost.incident.as_ref().map_or("-", |i| i.as_str()),
            on("n2")
        );

        // n2 comes back (corosync, then its ocf node): it gets the history at the next epoch.
        bed.corosync.restart(2);
        bed.corosync.wait_formed(3, LIMIT);
        bed.nodes.spawn(1);
        bed.nodes.wait_for_view(&[0, 1, 2]).await;
        let after = bed
            .nodes
            .wait_for_same_history(&[0, 1, 2], |h| h.len() == 2)
            .await;
        assert_eq!(after, history);
        assert_eq!(bed.nodes.calls().len(), 3, "the rejoin shot nobody");
    })
    .await;
}

/// An `ocf node` that dies while its corosync lives on: Corosync still sees the node, but the
/// fencer acts on the quorate view limited to the members of the `ocf-fence-<cluster>` group,
/// so the node leaves the fencer's view as if it had died whole: its attempt is run again
/// elsewhere, the node is fenced as lost (its fencer is gone, so it cannot be trusted), and
/// the restarted daemon gets the history at once. (This was a gap, found by this test.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ocf_node_killed_alone_mid_fence_is_replaced() {
    if !corosync_support::can_run("an_ocf_node_killed_alone_mid_fence_is_replaced") {
        return;
    }
    let layout = Layout {
        with_device: vec![2, 3],
        delay_s: 4,
        ..Layout::default()
    };
    with_bed("cg", &layout, async |bed: &mut Bed| {
        bed.nodes.wait_for_view(&[0, 1, 2]).await;
        let mut asks = Vec::new();
        for i in [0, 2] {
            let f = bed.nodes.nodes[i].fencer();
            let r = request("n1", &format!("ha@n{}", i + 1));
            asks.push(tokio::spawn(async move { f.fence(r).await }));
        }
        let deadline = std::time::Instant::now() + LIMIT;
        while bed.nodes.calls().is_empty() {
            assert!(std::time::Instant::now() < deadline, "no agent call");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Only n2's ocf node dies; its corosync stays in the view.
        bed.nodes.nodes[1].kill9();
        for a in asks {
            let r = a
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("{e}\n{}", bed.logs()));
            let ran: Vec<&str> = r.executions.iter().map(|e| e.node.as_str()).collect();
            assert_eq!(ran, ["n2", "n3"], "{r:#?}");
        }
        bed.nodes.spawn(1);
        let h = bed
            .nodes
            .wait_for_same_history(&[0, 1, 2], |h| {
                h.len() == 2 && h.iter().all(|r| !r.is_pending())
            })
            .await;
        let lost = h
            .iter()
            .find(|r| r.target.as_str() == "n2")
            .unwrap_or_else(|| panic!("n2 was not fenced as lost: {h:#?}"));
        assert!(
            lost.incident
                .as_ref()
                .is_some_and(|i| i.as_str().starts_with("n2@left-view-")),
            "{lost:#?}"
        );
        assert_eq!(lost.executions.len(), 1, "{lost:#?}");
    })
    .await;
}
