//! Three corosync nodes in network namespaces joined by a bridge: what our API reports on each
//! node agrees with the other nodes and with corosync's own `corosync-quorumtool`, through a
//! kill -9, a partition and its healing.

#![cfg(feature = "corosync")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod corosync_support;

use std::time::Duration;

use corosync_support::{Client, Cluster, can_run, quorumtool_members, quorumtool_ring};
use ocf_core::NodeId;
use ocf_membership::{EventKind, View};

const LIMIT: Duration = Duration::from_secs(60);

fn ids(view: &View) -> Vec<u32> {
    view.member_ids().map(NodeId::get).collect()
}

fn named(view: &View) -> Vec<(u32, String)> {
    view.members()
        .iter()
        .map(|m| (m.id.get(), m.name.to_string()))
        .collect()
}

/// Waits until `client` holds a view of exactly `members` with the given quorate flag.
fn wait_view(client: &mut Client, members: &[u32], quorate: bool) -> View {
    client
        .wait_until(
            &format!("view {members:?} quorate={quorate}"),
            LIMIT,
            |v, _| v.is_some_and(|v| ids(v) == members && v.is_quorate() == quorate),
        )
        .unwrap()
}

/// Our view on node `id` matches what corosync-quorumtool says there.
fn assert_matches_quorumtool(cluster: &Cluster, id: u32, view: &View) {
    let ns = cluster.ns(id);
    assert_eq!(named(view), quorumtool_members(Some(&ns)), "n{id}");
    let (rep, seq) = quorumtool_ring(Some(&ns));
    assert_eq!(
        (view.id.coordinator, view.id.instance),
        (NodeId::new(rep), seq),
        "n{id} ring id"
    );
}

fn form(tag: &str) -> (Cluster, Vec<Client>) {
    let cluster = Cluster::start(tag, 3, 1000);
    cluster.wait_formed(3, LIMIT);
    let mut clients: Vec<Client> = (1..=3).map(|id| cluster.client(id)).collect();
    let views: Vec<View> = clients
        .iter_mut()
        .map(|c| wait_view(c, &[1, 2, 3], true))
        .collect();
    for (i, v) in views.iter().enumerate() {
        assert_eq!(v.id, views[0].id, "n{} shares the view id", i + 1);
        assert_eq!(
            named(v),
            vec![(1, "n1".into()), (2, "n2".into()), (3, "n3".into())]
        );
        assert_eq!(v.quorum().expected_votes, 3);
        assert_eq!(v.quorum().threshold, 2);
    }
    (cluster, clients)
}

#[test]
fn kill_one_corosync_survivors_agree_with_each_other_and_quorumtool() {
    if !can_run("kill_one_corosync_survivors_agree_with_each_other_and_quorumtool") {
        return;
    }
    let (mut cluster, mut clients) = form("k");
    cluster.kill9(3);
    let v1 = wait_view(&mut clients[0], &[1, 2], true);
    let v2 = wait_view(&mut clients[1], &[1, 2], true);
    assert_eq!(v1.id, v2.id);
    assert_eq!(v1.members(), v2.members());
    assert_eq!(v1.left(), &[NodeId::new(3)]);
    assert_matches_quorumtool(&cluster, 1, &v1);
    assert_matches_quorumtool(&cluster, 2, &v2);
    // The node whose corosync died is told it was evicted.
    clients[2].wait_until("evicted", LIMIT, |_, e| {
        e.is_some_and(|e| e.kind == EventKind::Evicted)
    });
}

#[test]
fn partition_minority_not_primary_majority_quorate_then_heal() {
    if !can_run("partition_minority_not_primary_majority_quorate_then_heal") {
        return;
    }
    let (cluster, mut clients) = form("p");
    cluster.cut(3);
    let minority = wait_view(&mut clients[2], &[3], false);
    assert!(
        clients[2]
            .events
            .iter()
            .any(|e| e.kind == EventKind::NotPrimary),
        "{:?}",
        clients[2].events
    );
    let v1 = wait_view(&mut clients[0], &[1, 2], true);
    let v2 = wait_view(&mut clients[1], &[1, 2], true);
    assert_eq!(v1.id, v2.id);
    assert_ne!(v1.id, minority.id, "partitions never share a view id");
    assert_matches_quorumtool(&cluster, 1, &v1);
    assert_matches_quorumtool(&cluster, 3, &minority);

    cluster.heal(3);
    let healed: Vec<View> = clients
        .iter_mut()
        .map(|c| wait_view(c, &[1, 2, 3], true))
        .collect();
    assert!(healed.iter().all(|v| v.id == healed[0].id), "{healed:?}");
    assert!(
        clients[2]
            .events
            .iter()
            .any(|e| e.kind == EventKind::PrimaryRestored)
    );
    for (i, v) in healed.iter().enumerate() {
        assert_matches_quorumtool(&cluster, i as u32 + 1, v);
    }
}
