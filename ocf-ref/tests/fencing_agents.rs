//! The fencer driving the real peers: fence-agents' `fence_dummy` (with `type=fail` for a
//! failing level) and cluster-glue's `stonith -t null`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use ocf_core::NodeName;
use ocf_fencing::{
    DeviceParams, FenceAction, FenceError, FenceOutcome, FenceRequest, Fencer, FencerAdmin,
    HistoryFilter, PowerState, Targets, TopologyLevel,
};
use ocf_ref::fencing::devices::agent::{self, AgentDevice};
use ocf_ref::fencing::devices::native::ManualDevice;
use ocf_ref::fencing::devices::stonith::StonithDevice;
use ocf_ref::fencing::fencer::LocalFencer;

fn n(s: &str) -> NodeName {
    s.parse().unwrap()
}

fn dummy(id: &str, params: &[(&str, &str)], hosts: &[&str]) -> Arc<AgentDevice> {
    let path = agent::resolve_agent("fence_dummy", &agent::agents_dir()).unwrap();
    let p: DeviceParams = params.iter().copied().collect();
    Arc::new(AgentDevice::new(
        id.parse().unwrap(),
        path,
        p,
        Targets::hosts(hosts.iter().map(|h| n(h))),
    ))
}

fn req(target: &str, action: FenceAction, who: &str) -> FenceRequest {
    FenceRequest::new(n(target), action, who.parse().unwrap()).with_timeout(Duration::from_secs(60))
}

#[tokio::test]
async fn a_failing_fence_dummy_level_falls_back_to_level_two() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state").display().to_string();
    // The node starts powered on.
    std::fs::write(dir.path().join("state"), "on").unwrap();
    let fencer = LocalFencer::new();
    let broken = dummy(
        "broken",
        &[("type", "fail"), ("power_timeout", "1")],
        &["n1"],
    );
    let good = dummy("good", &[("status_file", &state)], &["n1"]);
    fencer.register_device(broken).await.unwrap();
    fencer.register_device(good.clone()).await.unwrap();
    fencer
        .set_topology(
            &n("n1"),
            vec![
                TopologyLevel::new(["broken".parse().unwrap()]),
                TopologyLevel::new(["good".parse().unwrap()]),
            ],
        )
        .await
        .unwrap();
    let r = fencer
        .fence(req("n1", FenceAction::Off, "pacemaker@n2"))
        .await
        .unwrap();
    assert_eq!(r.levels.len(), 2);
    assert!(!r.levels[0].succeeded);
    assert!(matches!(
        &r.levels[0].attempts[0].outcome,
        FenceOutcome::Failed { .. }
    ));
    assert!(r.levels[1].succeeded);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("state")).unwrap(),
        "off"
    );
    assert_eq!(
        ocf_fencing::FenceDevice::status(&*good, &n("n1"), Duration::from_secs(30))
            .await
            .unwrap(),
        PowerState::Off
    );
}

#[tokio::test]
async fn concurrent_requesters_share_one_fence_dummy_run() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state").display().to_string();
    let fencer = LocalFencer::new();
    fencer
        .register_device(dummy("d", &[("status_file", &state)], &["n1"]))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let f = fencer.clone();
            tokio::spawn(async move {
                f.fence(req("n1", FenceAction::Reboot, &format!("c{i}@x")))
                    .await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap().unwrap().id);
    }
    let history = fencer.history(&HistoryFilter::all()).await.unwrap();
    // Tasks spawned while the first fence runs join it; a straggler arriving after it ended
    // may start a second. Either way every requester is in exactly one record, and each
    // record ran fence_dummy exactly once.
    let requesters: usize = history.iter().map(|r| r.requesters.len()).sum();
    assert_eq!(requesters, 20);
    assert!(history.len() < 20, "no merging happened: {history:?}");
    assert!(
        history
            .iter()
            .all(|r| r.attempts().count() == 1 && r.succeeded())
    );
    assert!(ids.iter().all(|id| history.iter().any(|r| r.id == *id)));
}

#[tokio::test]
async fn stonith_null_through_the_fencer() {
    let fencer = LocalFencer::new();
    let params: DeviceParams = [("hostlist", "a b")].into_iter().collect();
    fencer
        .register_device(Arc::new(StonithDevice::new(
            "null".parse().unwrap(),
            "null",
            params,
            Targets::Dynamic,
        )))
        .await
        .unwrap();
    let r = fencer
        .fence(req("b", FenceAction::Reboot, "slurm@head"))
        .await
        .unwrap();
    assert_eq!(r.attempts().next().unwrap().device.as_str(), "null");
    // `stonith -l` does not list c: no device can fence it.
    let e = fencer
        .fence(req("c", FenceAction::Reboot, "slurm@head"))
        .await
        .unwrap_err();
    assert!(matches!(e, FenceError::NoDevice { .. }), "{e}");
}

#[tokio::test]
async fn a_manual_device_behind_the_fencer_waits_for_the_operator() {
    let fencer = LocalFencer::new();
    let manual = ManualDevice::new("meat".parse().unwrap(), [n("n4")]);
    fencer
        .register_device(Arc::new(manual.clone()))
        .await
        .unwrap();
    let f = fencer.clone();
    let a = tokio::spawn(async move { f.fence(req("n4", FenceAction::Off, "a@x")).await });
    let f = fencer.clone();
    let b = tokio::spawn(async move { f.fence(req("n4", FenceAction::Off, "b@y")).await });
    manual.wait_pending().await;
    // Let the second requester reach the fencer before acknowledging.
    while fencer
        .history(&HistoryFilter::all())
        .await
        .unwrap()
        .first()
        .is_none_or(|r| r.requesters.len() < 2)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(manual.acknowledge(&n("n4")));
    let (a, b) = (a.await.unwrap().unwrap(), b.await.unwrap().unwrap());
    assert_eq!(a.id, b.id);
}
