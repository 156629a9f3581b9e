//! The cluster fencer across a 2|3 network partition: five real `ocf node` processes (built-in
//! engine), each in its own network namespace on one bridge, with a spy fence agent on n1 (the
//! minority side) and on n3 and n4 (the majority side).
//!
//! - The 3-node side fences each lost node once (`<node>@left-view-<view>`, the default
//!   `lost_node_action = "reboot"`), and the node-death event of each reaches
//!   `ocf fence watch --json` on a majority node; with `lost_node_action = "none"` the
//!   node-death events say "not fenced" and no device runs for them;
//! - requests on both nodes of the 2-node side are refused as not quorate (typed), and none
//!   reaches a device;
//! - six requesters on the 3-node side for one target cause one agent call;
//! - once the network heals, every node shows the same history.
//!
//! The namespaces and cuts are the fault test's (`faults_support/net.rs`, without its relay:
//! the nodes name each other's own addresses). Nothing is random here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod nodes_support;

#[path = "faults_support/host.rs"]
mod host;
#[allow(dead_code)]
#[path = "faults_support/net.rs"]
mod net;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use nodes_support::{Backend, Layout, Nodes, Placement, Watch};
use ocf_fencing::{
    DeathCause, FenceAction, FenceErrorKind, FenceEvent, FenceRecord, FenceRequest, Fencer,
    NodeDeath,
};

/// The nodes (0-based) of each side.
const MINORITY: [usize; 2] = [0, 1];
const MAJORITY: [usize; 3] = [2, 3, 4];

/// Five nodes in namespaces. Dropped in field order: the processes, then the namespaces.
struct Bed {
    nodes: Nodes,
    net: net::Net,
}

impl Bed {
    fn start(prefix: &str, layout: &Layout) -> Self {
        let net = net::Net::create_direct(prefix, 5);
        let addresses = (1..=5)
            .map(|_| {
                (1..=5)
                    .map(|peer| format!("{}:{}", net::addr(peer), net::PORT))
                    .collect()
            })
            .collect();
        let placement = Placement {
            cluster: "fp".into(),
            namespaces: (1..=5).map(|id| Some(net.ns(id).to_owned())).collect(),
            backend: Backend::Builtin(addresses),
        };
        let nodes = Nodes::start_in(&placement, layout);
        Self { nodes, net }
    }

    /// Cuts every link between the two sides, both ways.
    fn partition(&mut self) {
        let mut cuts = BTreeSet::new();
        for a in MINORITY {
            for b in MAJORITY {
                let (a, b) = (a as u32 + 1, b as u32 + 1);
                cuts.insert((a, b));
                cuts.insert((b, a));
            }
        }
        self.net.set_cuts(&cuts);
    }

    fn heal(&mut self) {
        self.net.set_cuts(&BTreeSet::new());
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

/// The node-death events of `target` among `events`.
fn deaths_of<'a>(events: &'a [FenceEvent], target: &str) -> Vec<&'a NodeDeath> {
    events
        .iter()
        .filter_map(|e| match e {
            FenceEvent::NodeDeath { death } if death.target.as_str() == target => Some(&**death),
            _ => None,
        })
        .collect()
}

/// Prints, per incident of `history`, its executions and the spy calls on its target.
fn print_calls(history: &[FenceRecord], calls: &[(String, String, String)]) {
    for r in history {
        let on_target: Vec<&(String, String, String)> = calls
            .iter()
            .filter(|(_, p, _)| p == r.target.as_str())
            .collect();
        println!(
            "incident {} ({}, {} {}): {} execution(s) {:?}, {} device call(s) on {} {:?}",
            r.id,
            r.incident.as_ref().map_or("-", |i| i.as_str()),
            r.action,
            r.target,
            r.executions.len(),
            r.executions
                .iter()
                .map(|e| e.node.to_string())
                .collect::<Vec<_>>(),
            on_target.len(),
            r.target,
            on_target
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minority_is_refused_and_the_majority_fences_once() {
    partition_test(
        "a_minority_is_refused_and_the_majority_fences_once",
        "r",
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_lost_node_action_none_the_lost_are_dead_unfenced() {
    partition_test(
        "with_lost_node_action_none_the_lost_are_dead_unfenced",
        "n",
        Some("none"),
    )
    .await;
}

/// Runs [`run`] on a new bed (namespace tag `tag`), then checks that nothing is left.
async fn partition_test(test: &str, tag: &str, lost_node_action: Option<&'static str>) {
    if !host::can_run(test) {
        return;
    }
    let prefix = format!("ofp{}{tag}", std::process::id());
    let (namespaces, dir): (Vec<String>, PathBuf) = {
        let layout = Layout {
            with_device: vec![1, 3, 4],
            lost_node_action,
            ..Layout::default()
        };
        let mut bed = Bed::start(&prefix, &layout);
        let namespaces = bed.net.names();
        let dir = bed.nodes.dir.path().to_owned();
        run(&mut bed, lost_node_action.is_none()).await;
        (namespaces, dir)
    };
    let left = host::leftovers(&namespaces, &dir);
    assert!(left.is_empty(), "left behind: {left:#?}");
}

/// The partition, the requests on both sides and the heal; `fence_lost`: whether the nodes
/// fence a lost node (`lost_node_action = "reboot"`) or not (`"none"`).
async fn run(bed: &mut Bed, fence_lost: bool) {
    let whole = bed.nodes.wait_for_view(&[0, 1, 2, 3, 4]).await;
    println!("formed view {}", whole.id);
    // A majority node without a device watches: it hears of deaths only by replication.
    let watch = bed.nodes.watch(4);

    bed.partition();
    let majority = bed.nodes.wait_for_view(&MAJORITY).await;
    bed.nodes
        .wait_for_views("the minority without quorum", &MINORITY, |vs| {
            vs.iter()
                .all(|v| v.as_ref().is_none_or(|v| !v.is_quorate()))
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!("partitioned: the majority holds view {}", majority.id);

    // The majority fences each lost node once, and says so to every subscriber.
    let events = watch
        .wait_for("the deaths of n1 and n2", |es| {
            ["n1", "n2"].iter().all(|t| !deaths_of(es, t).is_empty())
        })
        .await;
    check_lost_deaths(&events, fence_lost);

    // The minority: both nodes refuse, typed, and nothing runs.
    for i in MINORITY {
        let name = bed.nodes.nodes[i].name.clone();
        let e = bed.nodes.nodes[i]
            .fencer()
            .fence(request("n4", &format!("ha@{name}")))
            .await
            .expect_err("a minority node fenced");
        assert_eq!(e.kind(), FenceErrorKind::NotQuorate, "{name}: {e}");
        println!("{name} refused: {e}");
    }

    // The majority: six requesters on three nodes, one agent call.
    let first = majority_fences_n5(&bed.nodes).await;

    let calls = bed.nodes.calls_by();
    let mut per_target: BTreeMap<&str, usize> = BTreeMap::new();
    for (action, plug, caller) in &calls {
        assert_eq!(action, "reboot", "{calls:?}");
        assert!(
            caller == "n3" || caller == "n4",
            "a device ran outside the majority: {calls:?}"
        );
        *per_target.entry(plug.as_str()).or_default() += 1;
    }
    let expected = if fence_lost {
        BTreeMap::from([("n1", 1), ("n2", 1), ("n5", 1)])
    } else {
        BTreeMap::from([("n5", 1)])
    };
    assert_eq!(
        per_target, expected,
        "one call per incident, none for the minority's request: {calls:?}"
    );

    // The majority agrees on its history before the heal.
    let before = bed
        .nodes
        .wait_for_same_history(&MAJORITY, |h| {
            h.len() == 3 && h.iter().all(|r| r.outcome.is_some())
        })
        .await;
    for r in &before {
        let lost = r.target.as_str() != "n5";
        if fence_lost || !lost {
            assert!(r.succeeded(), "{r:#?}");
            assert_eq!(r.executions.len(), 1, "{r:#?}");
        } else {
            assert!(!r.succeeded() && r.executions.is_empty(), "{r:#?}");
        }
    }
    assert!(before.iter().any(|r| r.id == first.id));
    let targets: BTreeSet<&str> = before.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(targets, BTreeSet::from(["n1", "n2", "n5"]));

    heal_and_compare(bed, &before, fence_lost, &watch).await;
}

/// The node-death events of the lost n1 and n2: one each, named after the view they were lost
/// in, fenced by the spy or (`fence_lost` false) not fenced, by policy.
fn check_lost_deaths(events: &[FenceEvent], fence_lost: bool) {
    for lost in ["n1", "n2"] {
        let deaths = deaths_of(events, lost);
        assert_eq!(deaths.len(), 1, "{deaths:#?}");
        let d = deaths[0];
        let view = d.view.as_deref().expect("the view it was lost in");
        assert_eq!(d.incident.as_str(), format!("{lost}@left-view-{view}"));
        if fence_lost {
            assert_eq!(
                d.cause,
                DeathCause::Fenced {
                    action: FenceAction::Reboot
                },
                "{d:#?}"
            );
            assert_eq!(
                d.device.as_ref().map(ocf_fencing::DeviceId::as_str),
                Some("pdu1")
            );
        } else {
            assert!(
                matches!(&d.cause, DeathCause::NotFenced { reason } if reason.contains("none")),
                "{d:#?}"
            );
            assert!(!d.is_fenced() && d.device.is_none(), "{d:#?}");
        }
        println!("node death: {lost} in incident {}", d.incident);
    }
}

/// Six requesters on the majority's three nodes ask to fence n5; all get one record.
async fn majority_fences_n5(nodes: &Nodes) -> FenceRecord {
    let mut asks = Vec::new();
    for i in MAJORITY {
        for who in ["ha", "hpc"] {
            let f = nodes.nodes[i].fencer();
            let r = request("n5", &format!("{who}@{}", nodes.nodes[i].name));
            asks.push(tokio::spawn(async move { f.fence(r).await }));
        }
    }
    let mut records = Vec::new();
    for a in asks {
        match a.await.unwrap() {
            Ok(r) => records.push(r),
            Err(e) => panic!("a majority requester failed: {e}\n{}", nodes.logs()),
        }
    }
    let first = records[0].clone();
    assert!(
        records.iter().all(|r| r.id == first.id && r.succeeded()),
        "{records:#?}"
    );
    let all = records.iter().max_by_key(|r| r.requesters.len()).unwrap();
    assert_eq!(all.requesters.len(), 6, "{all:#?}");

    first
}

/// Heals the network; the five histories become one, which holds `before` (the majority's);
/// one device call per execution, and the watcher heard each death of `before` once.
async fn heal_and_compare(bed: &mut Bed, before: &[FenceRecord], fence_lost: bool, watch: &Watch) {
    // Heal: the minority gets the majority's history at the next epoch.
    bed.heal();
    bed.nodes.wait_for_view(&[0, 1, 2, 3, 4]).await;
    let history = bed
        .nodes
        .wait_for_same_history(&[0, 1, 2, 3, 4], |h| {
            before.iter().all(|b| h.contains(b)) && h.iter().all(|r| r.outcome.is_some())
        })
        .await;
    // A merge may pass through a primary view that misses a node which is still merging: that
    // node is lost too, and fenced once like any other (the membership's call, not the
    // fencer's). Nothing else is new after the heal.
    for r in history.iter().filter(|r| !before.contains(r)) {
        println!(
            "the heal went through a view without {}: incident {:?}",
            r.target, r.incident
        );
        let named = r.incident.as_ref().map(|i| i.as_str().to_owned());
        assert!(
            named.is_some_and(|i| i.starts_with(&format!("{}@left-view-", r.target))),
            "{r:#?}"
        );
        assert_eq!(r.executions.len(), usize::from(fence_lost), "{r:#?}");
    }
    // One device call per execution, and the watcher heard each death once.
    let calls = bed.nodes.calls_by();
    let executions: usize = history.iter().map(|r| r.executions.len()).sum();
    assert_eq!(calls.len(), executions, "{calls:?}\n{history:#?}");
    for r in &history {
        let on_target = calls
            .iter()
            .filter(|(_, p, _)| p == r.target.as_str())
            .count();
        let incidents: usize = history
            .iter()
            .filter(|o| o.target == r.target)
            .map(|o| o.executions.len())
            .sum();
        assert_eq!(on_target, incidents, "{calls:?}\n{history:#?}");
    }
    let events = watch.events();
    for r in before {
        let deaths = deaths_of(&events, r.target.as_str());
        let of_it: Vec<_> = deaths.iter().filter(|d| d.record == Some(r.id)).collect();
        assert_eq!(of_it.len(), 1, "{r:#?}\n{events:#?}");
    }
    print_calls(&history, &calls);
}
