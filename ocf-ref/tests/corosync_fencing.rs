//! The cluster fencer over Corosync: three corosync nodes in network namespaces on one bridge
//! (`corosync_support`), an `ocf node` with `backend = "corosync"` in each namespace (the
//! fencer's messages ride the CPG group `ocf-fence-<cluster>`; its authority is the lowest
//! member of the quorate view), a spy fence agent on every node (`nodes_support`):
//!
//! - two requesters on each node ask to fence n3 at once: one agent call, all six get the same
//!   record, the history is the same on all three nodes;
//! - a late request for n3, through the CLI without an incident id: answered from history, no
//!   second call.

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
