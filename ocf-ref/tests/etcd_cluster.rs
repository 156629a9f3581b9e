//! The etcd backend against three real etcd members on loopback:
//!
//! - three `ocf node` processes (`backend = "etcd"`): their views agree; `kill -9` of a node
//!   makes the other two install one new view; killing one etcd member changes no view;
//!   stopping a second makes every node report not primary while no view is installed; after
//!   the restart, primacy is back with one view;
//! - a node cut off from etcd (through a proxy) but not from its peers stops being primary
//!   before its lease expires and the others install a view without it; healed, it is
//!   evicted and joins again;
//! - a node whose watch was lost across a compaction re-reads the members (one view).
//!
//! The durations printed are for the note, not asserted.

#![cfg(all(feature = "etcd", feature = "cli"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod etcd_support;
mod nodes_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_support::{EtcdCluster, Proxy, etcd_head};
use nodes_support::{Layout, Nodes};
use ocf_membership::{EventKind, Membership, View};
use ocf_ref::membership::builtin::key::ClusterKey;
use ocf_ref::membership::builtin::loopback;
use ocf_ref::membership::config::{BackendKind, EtcdConfig};
use ocf_ref::membership::etcd::EtcdEngine;
use ocf_ref::membership::etcd::etcd_client;

/// A hang guard for waits, not a timing assertion.
const LIMIT: Duration = Duration::from_secs(60);

async fn views(nodes: &Nodes, which: &[usize]) -> Vec<Option<View>> {
    let mut out = Vec::new();
    for &i in which {
        out.push(
            nodes.nodes[i]
                .membership()
                .current_view()
                .await
                .ok()
                .flatten(),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_ocf_nodes_on_etcd_survive_node_and_etcd_member_loss() {
    let mut etcd = EtcdCluster::start(3);
    let head = etcd_head(&etcd.endpoints(), "/ocf-test/procs/", 4);
    let nodes = Nodes::start_with(3, &Layout::default(), &head);
    nodes.wait_for_view(&[0, 1, 2]).await;
    let first = views(&nodes, &[0]).await[0].clone().unwrap();
    // The same CLI as with the other engines reads it.
    let out = std::process::Command::new(nodes_support::OCF)
        .args(["members", "--json", "--config"])
        .arg(&nodes.nodes[1].config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let shown: View = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown.member_ids().count(), 3);
    assert_eq!(
        shown.id.epoch, first.id.epoch,
        "the etcd cluster id is the epoch"
    );

    // kill -9 of an ocf node: the other two install one new view without it.
    let mut sub = nodes.nodes[0].membership().subscribe().await.unwrap();
    let killed = Instant::now();
    let mut nodes = nodes;
    nodes.nodes[2].kill9();
    let mut after = None;
    while after.is_none() {
        let e = tokio::time::timeout(LIMIT, sub.next_event())
            .await
            .unwrap_or_else(|_| panic!("no view after the kill\n{}", nodes.logs()))
            .unwrap()
            .unwrap();
        if !e.view.contains(ocf_core::NodeId::new(3)) {
            assert_eq!(e.kind, EventKind::NewMembership, "{e:?}");
            after = Some(e.view);
        }
    }
    println!(
        "death -> view at a survivor, ocf node killed with -9: {:?}",
        killed.elapsed()
    );
    nodes.wait_for_view(&[0, 1]).await;
    let after = after.unwrap();
    assert!(after.id > first.id);
    assert_eq!(
        views(&nodes, &[1]).await[0].as_ref().map(|v| v.id),
        Some(after.id)
    );

    // One etcd member lost: no view change, still primary.
    etcd.members[2].kill9();
    tokio::time::sleep(Duration::from_secs(4)).await;
    for v in views(&nodes, &[0, 1]).await {
        let v = v.unwrap();
        assert_eq!(v.id, after.id, "a view changed when one etcd member died");
        assert!(v.is_quorate(), "not primary with 2 of 3 etcd members");
    }

    // Two etcd members lost: every node reports not primary, and installs no view.
    etcd.members[1].kill9();
    let deadline = Instant::now() + LIMIT;
    loop {
        let vs = views(&nodes, &[0, 1]).await;
        if vs
            .iter()
            .all(|v| v.as_ref().is_some_and(|v| !v.is_quorate()))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still primary without etcd quorum: {vs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    for v in views(&nodes, &[0, 1]).await {
        let v = v.unwrap();
        assert_eq!(v.id, after.id, "a view was installed without etcd quorum");
        assert!(!v.is_quorate());
    }

    // etcd restored: primary again, one view.
    etcd.spawn(1);
    etcd.spawn(2);
    etcd.wait_serving(&[0, 1, 2]);
    let restored = Instant::now();
    nodes.wait_for_view(&[0, 1]).await;
    println!(
        "etcd quorum back -> both nodes primary: {:?}",
        restored.elapsed()
    );
    let vs = views(&nodes, &[0, 1]).await;
    let v0 = vs[0].clone().unwrap();
    assert_eq!(vs[1].as_ref().map(|v| v.id), Some(v0.id));
    assert_eq!(v0.member_ids().count(), 2);
    drop(sub);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_etcd_stops_being_primary_before_it_leaves_the_view() {
    let etcd = EtcdCluster::start(3);
    let dir = tempfile::tempdir().unwrap();
    let key = ClusterKey::random();
    let target: std::net::SocketAddr = format!("127.0.0.1:{}", etcd.members[0].client_port)
        .parse()
        .unwrap();
    let proxy = Proxy::start(target).await;
    let mut configs = loopback::configs("cut", 3, dir.path()).unwrap();
    for (i, c) in configs.iter_mut().enumerate() {
        c.backend = BackendKind::Etcd;
        c.etcd = Some(EtcdConfig {
            // Node 3 reaches etcd only through the proxy.
            endpoints: if i == 2 {
                vec![proxy.endpoint()]
            } else {
                etcd.endpoints()
            },
            ca_file: None,
            cert_file: None,
            key_file: None,
            user: None,
            password_file: None,
            prefix: Some("/ocf-test/cut/".into()),
            lease_ttl_s: 4,
        });
    }
    let mut engines = Vec::new();
    for c in &configs {
        engines.push(Arc::new(EtcdEngine::start(c, &key).await.unwrap()));
    }
    let common = wait_common(&engines, 3).await;
    let mut sub3 = engines[2].subscribe().await.unwrap();

    let cut = Instant::now();
    proxy.cut();
    let mut not_primary = None;
    let mut left_view = None;
    let deadline = Instant::now() + LIMIT;
    while left_view.is_none() {
        let v3 = engines[2].current_view().await.unwrap().unwrap();
        if not_primary.is_none() && !v3.is_quorate() {
            not_primary = Some(cut.elapsed());
        }
        let v1 = engines[0].current_view().await.unwrap().unwrap();
        if !v1.contains(ocf_core::NodeId::new(3)) {
            left_view = Some(cut.elapsed());
        }
        assert!(Instant::now() < deadline, "node 3 never left the view");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let not_primary = not_primary.expect("node 3 was still primary when the others dropped it");
    let left_view = left_view.unwrap();
    println!(
        "cut off from etcd: not primary after {not_primary:?}, dropped by the others after {left_view:?}"
    );
    assert!(not_primary < left_view);
    // Its peers still hear it over UDP: nobody revoked it; its lease ran out.
    let revokes: u64 = engines
        .iter()
        .map(|e| e.stats().revokes.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    assert_eq!(revokes, 0);
    // Node 3 itself installed no view while cut off (it cannot hear etcd).
    let v3 = engines[2].current_view().await.unwrap().unwrap();
    assert_eq!(v3.id, common);

    // Healed: node 3 learns its lease is gone (Evicted) and joins again.
    proxy.heal();
    let mut saw_evicted = false;
    loop {
        let e = tokio::time::timeout(LIMIT, sub3.next_event())
            .await
            .expect("node 3 never came back")
            .unwrap()
            .unwrap();
        if e.kind == EventKind::Evicted {
            saw_evicted = true;
        } else if saw_evicted && e.view.contains(ocf_core::NodeId::new(3)) {
            assert_eq!(e.kind, EventKind::PrimaryRestored, "{e:?}");
            break;
        }
    }
    wait_common(&engines, 3).await;
    for e in &engines {
        e.shutdown().await;
    }
}

/// Waits until every engine has one quorate view of `n` members; answers its id.
async fn wait_common(engines: &[Arc<EtcdEngine>], n: usize) -> ocf_membership::ViewId {
    let deadline = Instant::now() + LIMIT;
    loop {
        let mut ids = Vec::new();
        for e in engines {
            if let Ok(Some(v)) = e.current_view().await
                && v.is_quorate()
                && v.members().len() == n
            {
                ids.push(v.id);
            }
        }
        if ids.len() == engines.len() && ids.iter().all(|i| *i == ids[0]) {
            return ids[0];
        }
        assert!(Instant::now() < deadline, "no common view: {ids:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A node whose watch was lost while the members changed and etcd compacted its history
/// re-reads the members and installs one view of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_behind_a_compaction_rereads_the_members() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let etcd = EtcdCluster::start(3);
    let dir = tempfile::tempdir().unwrap();
    let key = ClusterKey::random();
    let target: std::net::SocketAddr = format!("127.0.0.1:{}", etcd.members[0].client_port)
        .parse()
        .unwrap();
    let proxy = Proxy::start(target).await;
    let mut configs = loopback::configs("compact", 3, dir.path()).unwrap();
    for (i, c) in configs.iter_mut().enumerate() {
        c.backend = BackendKind::Etcd;
        c.etcd = Some(EtcdConfig {
            endpoints: if i == 0 {
                vec![proxy.endpoint()]
            } else {
                etcd.endpoints()
            },
            ca_file: None,
            cert_file: None,
            key_file: None,
            user: None,
            password_file: None,
            prefix: Some("/ocf-test/compact/".into()),
            lease_ttl_s: 20,
        });
    }
    let mut engines = Vec::new();
    for c in &configs[..2] {
        engines.push(Arc::new(EtcdEngine::start(c, &key).await.unwrap()));
    }
    wait_common(&engines, 2).await;
    proxy.cut();
    // While node 1 hears nothing: node 3 joins, and etcd compacts its history.
    engines.push(Arc::new(
        EtcdEngine::start(&configs[2], &key).await.unwrap(),
    ));
    wait_common(&engines[1..], 3).await;
    let mut client = etcd_client::Client::connect(etcd.endpoints(), None)
        .await
        .unwrap();
    // History moves on past node 3's join, so that the join itself is compacted away.
    for i in 0..3 {
        client
            .put("/ocf-test/compact/other", format!("{i}"), None)
            .await
            .unwrap();
    }
    let rev = client
        .get("/ocf-test/compact/", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    client
        .compact(
            rev,
            Some(etcd_client::CompactionOptions::new().with_physical()),
        )
        .await
        .unwrap();
    proxy.heal();
    let deadline = Instant::now() + LIMIT;
    while engines[0]
        .current_view()
        .await
        .unwrap()
        .is_none_or(|v| v.members().len() != 3)
    {
        assert!(Instant::now() < deadline, "node 1 never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        engines[0]
            .stats()
            .rereads
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    for e in &engines {
        e.shutdown().await;
    }
}
