//! The fence authority on etcd: the execution guard's create-if-absent transaction has one
//! winner per attempt, racing through different etcd members; and the cluster fencer across
//! three `ocf node` processes on etcd runs one agent call for ten requesters, its claim key in
//! etcd naming the executor.

#![cfg(all(feature = "etcd", feature = "cli"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod etcd_support;
mod nodes_support;

use std::time::Duration;

use etcd_support::{EtcdCluster, etcd_head};
use nodes_support::{Layout, Nodes};
use ocf_fencing::{FenceAction, FenceRequest, Fencer};
use ocf_ref::fencing::cluster::ExecutionGuard;
use ocf_ref::membership::etcd::EtcdFenceGuard;
use ocf_ref::membership::etcd::etcd_client;
use ocf_ref::membership::etcd::keys::KeyLayout;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_claims_of_one_attempt_have_exactly_one_winner() {
    let etcd = EtcdCluster::start(3);
    let layout = KeyLayout::new("/ocf-test/guard/");
    let mut guards = Vec::new();
    for i in 0..12 {
        // Each guard talks to its own member, so the race crosses the cluster.
        let ep = etcd.members[i % 3].endpoint();
        let client = etcd_client::Client::connect([ep], None).await.unwrap();
        guards.push(EtcdFenceGuard::new(
            client,
            layout.clone(),
            format!("g{i}").parse().unwrap(),
        ));
    }
    for attempt in 1..=5u32 {
        let mut tasks = Vec::new();
        for g in &guards {
            let g = g.clone();
            tasks.push(tokio::spawn(async move { g.claim(42, attempt).await }));
        }
        let mut winners = Vec::new();
        for (i, t) in tasks.into_iter().enumerate() {
            if t.await.unwrap().unwrap() {
                winners.push(i);
            }
        }
        assert_eq!(winners.len(), 1, "attempt {attempt}: winners {winners:?}");
        let w = winners[0];
        // The winner's claim holds when asked again; the key names it.
        assert!(guards[w].claim(42, attempt).await.unwrap());
        assert_eq!(
            guards[(w + 1) % 12].holder(42, attempt).await.unwrap(),
            Some(format!("g{w}"))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_requesters_on_three_etcd_nodes_cause_one_agent_call() {
    let etcd = EtcdCluster::start(3);
    let prefix = "/ocf-test/fence/";
    let c = Nodes::start_with(
        3,
        &Layout {
            with_device: vec![1, 2],
            delay_s: 1,
            ..Layout::default()
        },
        &etcd_head(&etcd.endpoints(), prefix, 4),
    );
    c.wait_for_view(&[0, 1, 2]).await;
    let mut asks = Vec::new();
    for n in &c.nodes {
        for who in ["ha", "hpc", "ops"] {
            let f = n.fencer();
            let r = FenceRequest::new(
                "n3".parse().unwrap(),
                FenceAction::Reboot,
                format!("{who}@{}", n.name).parse().unwrap(),
            )
            .with_timeout(Duration::from_secs(40));
            asks.push(tokio::spawn(async move { f.fence(r).await }));
        }
    }
    let mut records = Vec::new();
    for a in asks {
        match a.await.unwrap() {
            Ok(r) => records.push(r),
            Err(e) => panic!("a requester failed: {e}\n{}", c.logs()),
        }
    }
    assert_eq!(
        c.calls(),
        vec![("reboot".to_owned(), "n3".to_owned())],
        "{records:#?}"
    );
    let first = &records[0];
    assert!(records.iter().all(|r| r.id == first.id && r.succeeded()));
    let executor = first.executions[0].node.to_string();
    assert_ne!(executor, "n3");
    // The claim in etcd names the node that ran the device.
    let mut client = etcd_client::Client::connect(etcd.endpoints(), None)
        .await
        .unwrap();
    let claims = client
        .get(
            format!("{prefix}fence/{}/", first.id),
            Some(etcd_client::GetOptions::new().with_prefix()),
        )
        .await
        .unwrap();
    let holders: Vec<String> = claims
        .kvs()
        .iter()
        .map(|kv| String::from_utf8_lossy(kv.value()).into_owned())
        .collect();
    assert_eq!(holders, vec![executor], "{}", c.logs());
}
