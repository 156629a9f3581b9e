#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The cluster fencer in one process: five built-in engines on loopback UDP, each with its
//! own `ClusterFencer` and `LocalFencer`, one simulated PDU reachable from n1–n4. Real
//! sockets, real protocol; only the power switch is simulated (the multi-process tests use
//! a real fence agent).

use std::sync::Arc;
use std::time::Duration;

use ocf_core::NodeName;
use ocf_fencing::{
    FenceAction, FenceEvent, FenceRequest, Fencer, FencerAdmin, HistoryFilter, IncidentId,
};
use ocf_membership::Membership;
use ocf_ref::fencing::cluster::protocol::message::Caps;
use ocf_ref::fencing::cluster::{ClusterFencer, ClusterOptions};
use ocf_ref::fencing::devices::native::{SimulatedDevice, Step};
use ocf_ref::fencing::fencer::LocalFencer;
use ocf_ref::membership::builtin::engine::BuiltinEngine;
use ocf_ref::membership::builtin::key::ClusterKey;
use ocf_ref::membership::builtin::loopback;

struct Cluster {
    engines: Vec<Arc<BuiltinEngine>>,
    fencers: Vec<ClusterFencer>,
    locals: Vec<LocalFencer>,
    device: Arc<SimulatedDevice>,
    _dir: tempfile::TempDir,
}

fn name(i: usize) -> NodeName {
    format!("n{i}").parse().unwrap()
}

async fn cluster(n: usize, step: Step) -> Cluster {
    cluster_with(n, step, false).await
}

/// `dynamic`: every node says it may have a device for any target (the conformance suite
/// registers its own devices on every node's local fencer).
async fn cluster_with(n: usize, step: Step, dynamic: bool) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let configs = loopback::configs("fc", n as u32, dir.path()).unwrap();
    let key = ClusterKey::random();
    let engines = loopback::start(&configs, &key).await.unwrap();
    let all: Vec<NodeName> = (1..=n).map(name).collect();
    let device = Arc::new(SimulatedDevice::constant(
        "pdu1".parse().unwrap(),
        all.clone(),
        step,
    ));
    let mut fencers = Vec::new();
    let mut locals = Vec::new();
    for (i, engine) in engines.iter().enumerate() {
        let local = LocalFencer::new();
        locals.push(local.clone());
        // The PDU is on a management network that the last node cannot reach.
        let reaches = i + 1 < n && !dynamic;
        if reaches {
            local.register_device(device.clone()).await.unwrap();
        }
        let caps = Caps {
            targets: if reaches { all.clone() } else { Vec::new() },
            dynamic,
        };
        let link = engine.take_fence_link().unwrap();
        let membership: Arc<dyn Membership> = engine.clone();
        fencers.push(ClusterFencer::start(
            configs[i].local_id(),
            name(i + 1),
            membership,
            link,
            Arc::new(local),
            ClusterOptions::new(caps),
        ));
    }
    let c = Cluster {
        engines,
        fencers,
        locals,
        device,
        _dir: dir,
    };
    c.wait_for_view(n).await;
    c
}

impl Cluster {
    async fn wait_for_view(&self, n: usize) {
        for _ in 0..200 {
            let mut ok = true;
            for e in &self.engines {
                match e.current_view().await {
                    Ok(Some(v)) if v.members().len() == n && v.is_quorate() => {}
                    _ => ok = false,
                }
            }
            if ok {
                // Let the fencers finish their epoch sync.
                tokio::time::sleep(Duration::from_millis(300)).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no common view of {n} nodes");
    }

    async fn shutdown(self) {
        for f in &self.fencers {
            f.shutdown().await;
        }
        for e in self.engines {
            e.stop();
        }
    }
}

fn request(target: &str, who: &str) -> FenceRequest {
    FenceRequest::new(
        target.parse().unwrap(),
        FenceAction::Reboot,
        who.parse().unwrap(),
    )
    .with_timeout(Duration::from_secs(20))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_requesters_on_five_nodes_cause_one_device_call() {
    let c = cluster(5, Step::ok(Duration::from_millis(300))).await;
    let mut asks = Vec::new();
    for (i, f) in c.fencers.iter().enumerate() {
        for who in ["ha", "hpc"] {
            let f = f.clone();
            let r = request("n5", &format!("{who}@n{}", i + 1));
            asks.push(tokio::spawn(async move { f.fence(r).await }));
        }
    }
    let mut records = Vec::new();
    for a in asks {
        records.push(a.await.unwrap().expect("every requester gets the success"));
    }
    assert_eq!(c.device.fence_calls(), 1, "{records:#?}");
    let first = &records[0];
    for r in &records {
        assert_eq!(r.id, first.id);
        assert_eq!(r.outcome, first.outcome);
    }
    let mut requesters: Vec<String> = records
        .iter()
        .max_by_key(|r| r.requesters.len())
        .unwrap()
        .requesters
        .iter()
        .map(ToString::to_string)
        .collect();
    requesters.sort();
    assert_eq!(requesters.len(), 10, "{requesters:?}");
    assert_ne!(
        first.executions[0].node.as_str(),
        "n5",
        "a node never fences itself"
    );
    // One history on every member.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let h1 = c.fencers[0].history(&HistoryFilter::all()).await.unwrap();
    for f in &c.fencers[1..4] {
        assert_eq!(f.history(&HistoryFilter::all()).await.unwrap(), h1);
    }
    // A late request, with or without the incident's name: answered from history.
    let late = c.fencers[2].fence(request("n5", "late@n3")).await.unwrap();
    assert_eq!(late.id, first.id);
    let named = request("n5", "named@n4").with_incident(first.incident.clone().unwrap());
    assert_eq!(c.fencers[3].fence(named).await.unwrap().id, first.id);
    assert_eq!(c.device.fence_calls(), 1);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_executor_dies_mid_fence_and_another_node_finishes() {
    let c = cluster(5, Step::ok(Duration::from_secs(3))).await;
    let mut watch = c.fencers[1].subscribe().await.unwrap();
    let asker = c.fencers[1].clone();
    let ask = tokio::spawn(async move { asker.fence(request("n5", "ha@n2")).await });
    // Find the executor once the incident is assigned, then stop its engine and fencer.
    let mut executor = None;
    for _ in 0..100 {
        let h = c.fencers[1].history(&HistoryFilter::all()).await.unwrap();
        if let Some(e) = h.last().and_then(|r| r.executions.first()) {
            executor = Some(e.node.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let executor = executor.expect("the incident was assigned");
    let idx: usize = executor.as_str()[1..].parse::<usize>().unwrap() - 1;
    assert_ne!(idx, 1, "the test kills a node other than the asker");
    c.fencers[idx].shutdown().await;
    c.engines[idx].stop();
    let record = ask
        .await
        .unwrap()
        .expect("the incident completes on another node");
    assert_eq!(record.executions.len(), 2, "{record:#?}");
    assert_eq!(record.executions[0].node, executor);
    assert_ne!(record.executions[1].node, executor);
    assert!(record.succeeded());
    // The asker's node heard one node-death event for n5 (plus the lost executor's own).
    let mut deaths = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while deaths
        .iter()
        .all(|d: &ocf_fencing::NodeDeath| d.target.as_str() != "n5")
    {
        let e = tokio::time::timeout_at(deadline, watch.next_event())
            .await
            .unwrap()
            .unwrap();
        if let Some(FenceEvent::NodeDeath { death }) = e {
            deaths.push(*death);
        }
    }
    assert_eq!(
        deaths.iter().filter(|d| d.target.as_str() == "n5").count(),
        1
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_incident_merges_across_time_and_nodes() {
    let c = cluster(3, Step::ok(Duration::from_millis(50))).await;
    let incident = IncidentId::new("n3@left-view-9.1.0").unwrap();
    let a = c.fencers[0]
        .fence(request("n3", "ha@n1").with_incident(incident.clone()))
        .await
        .unwrap();
    let b = c.fencers[1]
        .fence(request("n3", "hpc@n2").with_incident(incident))
        .await
        .unwrap();
    assert_eq!(a.id, b.id);
    assert_eq!(c.device.fence_calls(), 1);
    c.shutdown().await;
}

/// The fencer conformance suite through the node socket of a three-node cluster: requests,
/// history and events go through `DaemonFencer` to node 1's cluster fencer, which decides
/// with the cluster's authority and has some node's local fencer run the suite's devices
/// (registered on every node, as a shared PDU would be).
mod conformance {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use ocf_conformance::fencing::{FencerHarness, FencerOptions, run_fencer};
    use ocf_conformance::{CheckOutcome, Clock};
    use ocf_fencing::{
        DeviceId, FenceDevice, FenceError, FenceEventStream, FenceRecord, TopologyLevel,
    };
    use ocf_ref::conformance::TokioClock;
    use ocf_ref::fencing::daemon_fencer::DaemonFencer;
    use ocf_ref::membership::daemon::{self, ServeOptions, ServerHandle, local_socket};

    use super::*;

    struct Served {
        cluster: Option<Cluster>,
        server: Option<ServerHandle>,
        _dir: tempfile::TempDir,
    }

    struct OverCluster {
        served: tokio::sync::Mutex<Served>,
        locals: Vec<LocalFencer>,
        client: DaemonFencer,
    }

    #[async_trait]
    impl Fencer for OverCluster {
        async fn fence(&self, request: FenceRequest) -> Result<FenceRecord, FenceError> {
            self.client.fence(request).await
        }
        async fn history(&self, filter: &HistoryFilter) -> Result<Vec<FenceRecord>, FenceError> {
            self.client.history(filter).await
        }
        async fn subscribe(&self) -> Result<Box<dyn FenceEventStream>, FenceError> {
            self.client.subscribe().await
        }
    }

    #[async_trait]
    impl FencerAdmin for OverCluster {
        async fn register_device(&self, device: Arc<dyn FenceDevice>) -> Result<(), FenceError> {
            for l in &self.locals {
                l.register_device(Arc::clone(&device)).await?;
            }
            Ok(())
        }
        async fn unregister_device(&self, id: &DeviceId) -> Result<(), FenceError> {
            for l in &self.locals {
                l.unregister_device(id).await?;
            }
            Ok(())
        }
        async fn devices(&self) -> Result<Vec<DeviceId>, FenceError> {
            self.locals[0].devices().await
        }
        async fn set_topology(
            &self,
            target: &NodeName,
            levels: Vec<TopologyLevel>,
        ) -> Result<(), FenceError> {
            for l in &self.locals {
                l.set_topology(target, levels.clone()).await?;
            }
            Ok(())
        }
        async fn topology(&self, target: &NodeName) -> Result<Vec<TopologyLevel>, FenceError> {
            self.locals[0].topology(target).await
        }
    }

    struct Harness {
        made: Mutex<Vec<Arc<OverCluster>>>,
    }

    #[async_trait]
    impl FencerHarness for Harness {
        fn implementation(&self) -> String {
            "ocf_ref DaemonFencer over a three-node ClusterFencer".into()
        }
        fn clock(&self) -> Arc<dyn Clock> {
            Arc::new(TokioClock::new())
        }
        async fn fencer(&self) -> Result<Arc<dyn FencerAdmin>, String> {
            let c = cluster_with(3, Step::ok(Duration::from_millis(1)), true).await;
            let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
            let path = dir.path().join("n1.sock");
            let claim = local_socket::claim(&path, None)
                .await
                .map_err(|e| e.to_string())?;
            let membership: Arc<dyn Membership> = c.engines[0].clone();
            let options = ServeOptions::default().with_fencer(Arc::new(c.fencers[0].clone()));
            let server = daemon::serve_claimed(membership, claim, options);
            let client = DaemonFencer::new(&path);
            let f = Arc::new(OverCluster {
                locals: c.locals.clone(),
                client,
                served: tokio::sync::Mutex::new(Served {
                    cluster: Some(c),
                    server: Some(server),
                    _dir: dir,
                }),
            });
            self.made.lock().unwrap().push(Arc::clone(&f));
            Ok(f)
        }
        fn replays_incidents(&self) -> bool {
            true
        }
        async fn shut_down(&self, fencer: Arc<dyn FencerAdmin>) {
            let mine = self
                .made
                .lock()
                .unwrap()
                .iter()
                .find(|f| std::ptr::addr_eq(Arc::as_ptr(f), Arc::as_ptr(&fencer)))
                .cloned();
            if let Some(f) = mine {
                let mut s = f.served.lock().await;
                if let Some(server) = s.server.take() {
                    server.shutdown().await;
                }
                if let Some(c) = s.cluster.take() {
                    c.shutdown().await;
                }
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_fencer_suite_passes_through_the_socket_over_the_cluster() {
        let harness = Harness {
            made: Mutex::new(Vec::new()),
        };
        let report = run_fencer(&harness, &FencerOptions::default()).await;
        println!("{report}");
        report.assert_passed();
        for name in [
            "fencer.fence",
            "fencer.merging",
            "fencer.merged_record",
            "fencer.topology_order",
            "fencer.level_all",
            "fencer.failure",
            "fencer.incident_replay",
            "fencer.no_device",
            "fencer.history",
            "fencer.events",
            "fencer.stream_end",
        ] {
            assert_eq!(
                report.outcome(name),
                Some(&CheckOutcome::Pass),
                "{name}: {report}"
            );
        }
        let made: Vec<_> = harness.made.lock().unwrap().drain(..).collect();
        for f in made {
            harness.shut_down(f).await;
        }
    }
}
