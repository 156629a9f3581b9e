//! The fencer: merging, topology, timeouts, policy and history, with native devices on
//! tokio's paused clock (fast and deterministic), plus a property test with many concurrent
//! requesters and random device latencies and failures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ocf_core::NodeName;
use ocf_fencing::{
    DeviceAction, DeviceId, FenceAction, FenceError, FenceErrorKind, FenceEvent, FenceOutcome,
    FenceRecord, FenceRequest, Fencer, FencerAdmin, FencingPolicy, HistoryFilter, IncidentId,
    Refusal, TopologyLevel,
};
use ocf_ref::fencing::devices::native::{NullDevice, SimulatedDevice, Step};
use ocf_ref::fencing::fencer::{FencerConfig, LocalFencer};
use proptest::prelude::*;
use tokio::time::Instant;

fn n(s: &str) -> NodeName {
    s.parse().unwrap()
}

fn d(s: &str) -> DeviceId {
    s.parse().unwrap()
}

fn req(target: &str, action: FenceAction, who: &str) -> FenceRequest {
    FenceRequest::new(n(target), action, who.parse().unwrap()).with_timeout(Duration::from_secs(60))
}

fn sim(id: &str, hosts: &[&str], step: Step) -> Arc<SimulatedDevice> {
    Arc::new(SimulatedDevice::constant(
        d(id),
        hosts.iter().map(|h| n(h)),
        step,
    ))
}

const MS: Duration = Duration::from_millis(1);

#[tokio::test(start_paused = true)]
async fn a_thousand_concurrent_requesters_cause_one_device_call() {
    let fencer = LocalFencer::new();
    let dev = sim("psu", &["n1"], Step::ok(500 * MS));
    fencer.register_device(dev.clone()).await.unwrap();
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let f = fencer.clone();
            tokio::spawn(async move {
                f.fence(req("n1", FenceAction::Reboot, &format!("c{i}@n0")))
                    .await
            })
        })
        .collect();
    let mut ids = BTreeSet::new();
    for t in tasks {
        let record = t.await.unwrap().unwrap();
        ids.insert(record.id);
        assert_eq!(record.requesters.len(), 1000);
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(dev.fence_calls(), 1);
    let history = fencer.history(&HistoryFilter::all()).await.unwrap();
    assert_eq!(history.len(), 1);
    assert!(history[0].succeeded());
}

#[tokio::test(start_paused = true)]
async fn a_different_action_waits_for_the_one_in_flight() {
    let fencer = LocalFencer::new();
    let dev = sim("psu", &["n1"], Step::ok(100 * MS));
    fencer.register_device(dev.clone()).await.unwrap();
    let f = fencer.clone();
    let reboot = tokio::spawn(async move { f.fence(req("n1", FenceAction::Reboot, "a@x")).await });
    tokio::time::sleep(10 * MS).await;
    assert_eq!(fencer.in_flight(), vec![(n("n1"), FenceAction::Reboot)]);
    let on = fencer
        .fence(req("n1", FenceAction::On, "b@x"))
        .await
        .unwrap();
    let reboot = reboot.await.unwrap().unwrap();
    assert_ne!(reboot.id, on.id);
    let calls: Vec<_> = dev.calls().into_iter().map(|c| c.action).collect();
    assert_eq!(calls, vec![FenceAction::Reboot, FenceAction::On]);
}

#[tokio::test(start_paused = true)]
async fn topology_falls_back_to_level_two_and_runs_all_devices_of_a_level() {
    let fencer = LocalFencer::new();
    let ipmi = sim("ipmi", &["n1"], Step::fail(10 * MS));
    let psu_a = sim("psu-a", &["n1"], Step::ok(10 * MS));
    let psu_b = sim("psu-b", &["n1"], Step::ok(10 * MS));
    for dev in [&ipmi, &psu_a, &psu_b] {
        fencer.register_device(dev.clone()).await.unwrap();
    }
    fencer
        .set_topology(
            &n("n1"),
            vec![
                TopologyLevel::new([d("ipmi")]),
                TopologyLevel::new([d("psu-a"), d("psu-b")]),
            ],
        )
        .await
        .unwrap();
    let r = fencer
        .fence(req("n1", FenceAction::Reboot, "a@x"))
        .await
        .unwrap();
    assert_eq!(r.levels.len(), 2);
    assert!(!r.levels[0].succeeded && r.levels[1].succeeded);
    // A reboot on two supplies: both off, then both on.
    let steps: Vec<_> = r.levels[1]
        .attempts
        .iter()
        .map(|a| (a.device.to_string(), a.action))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("psu-a".into(), DeviceAction::Off),
            ("psu-b".into(), DeviceAction::Off),
            ("psu-a".into(), DeviceAction::On),
            ("psu-b".into(), DeviceAction::On),
        ]
    );
    assert_eq!(ipmi.fence_calls(), 1);
    assert_eq!(psu_a.fence_calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn every_level_failing_is_an_error_carrying_the_record() {
    let fencer = LocalFencer::new();
    fencer
        .register_device(sim("a", &["n1"], Step::fail(MS)))
        .await
        .unwrap();
    fencer
        .register_device(sim("b", &["n1"], Step::fail(MS)))
        .await
        .unwrap();
    let e = fencer
        .fence(req("n1", FenceAction::Off, "a@x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), FenceErrorKind::Failed);
    let record = e.record().unwrap();
    // No topology: each capable device is a level, in registration order.
    let devs: Vec<_> = record.attempts().map(|a| a.device.to_string()).collect();
    assert_eq!(devs, ["a", "b"]);
    assert!(e.to_string().contains("n1"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn no_capable_device_is_no_device() {
    let fencer = LocalFencer::new();
    fencer
        .register_device(Arc::new(NullDevice::new(d("null"), [n("n1")])))
        .await
        .unwrap();
    let e = fencer
        .fence(req("n2", FenceAction::Off, "a@x"))
        .await
        .unwrap_err();
    assert!(matches!(e, FenceError::NoDevice { .. }), "{e}");
    let h = fencer
        .history(&HistoryFilter::all().target(n("n2")))
        .await
        .unwrap();
    assert_eq!(h.len(), 1);
    assert!(!h[0].succeeded());
}

struct NoQuorum;

#[async_trait]
impl FencingPolicy for NoQuorum {
    async fn check(&self, _r: &FenceRequest) -> Result<(), Refusal> {
        Err(Refusal::new("quorum", "this partition has no quorum"))
    }
}

#[tokio::test(start_paused = true)]
async fn a_refusing_policy_touches_no_device() {
    let fencer = LocalFencer::with(FencerConfig::default(), Arc::new(NoQuorum));
    let dev = sim("x", &["n1"], Step::ok(MS));
    fencer.register_device(dev.clone()).await.unwrap();
    let e = fencer
        .fence(req("n1", FenceAction::Reboot, "a@x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), FenceErrorKind::Refused);
    assert!(e.to_string().contains("quorum"), "{e}");
    assert_eq!(dev.fence_calls(), 0);
    assert!(
        fencer
            .history(&HistoryFilter::all())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(start_paused = true)]
async fn a_requester_that_times_out_leaves_the_incident_running() {
    let fencer = LocalFencer::new();
    let dev = sim("slow", &["n1"], Step::ok(5 * Duration::from_secs(1)));
    fencer.register_device(dev.clone()).await.unwrap();
    let f = fencer.clone();
    let patient =
        tokio::spawn(async move { f.fence(req("n1", FenceAction::Off, "patient@x")).await });
    tokio::time::sleep(MS).await;
    let e = fencer
        .fence(req("n1", FenceAction::Off, "hasty@x").with_timeout(Duration::from_secs(1)))
        .await
        .unwrap_err();
    assert!(matches!(e, FenceError::TimedOut { .. }), "{e}");
    let r = patient.await.unwrap().unwrap();
    assert_eq!(r.requesters.len(), 2);
    assert_eq!(dev.fence_calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn device_timeouts_move_on_to_the_next_level() {
    let fencer = LocalFencer::with(
        FencerConfig::default().device_timeout(Duration::from_secs(2)),
        Arc::new(ocf_fencing::AllowAll),
    );
    fencer
        .register_device(sim("hung", &["n1"], Step::ok(Duration::from_secs(3600))))
        .await
        .unwrap();
    fencer
        .register_device(sim("good", &["n1"], Step::ok(MS)))
        .await
        .unwrap();
    let r = fencer
        .fence(req("n1", FenceAction::Off, "a@x"))
        .await
        .unwrap();
    assert!(matches!(
        r.levels[0].attempts[0].outcome,
        FenceOutcome::TimedOut { .. }
    ));
    assert!(r.levels[1].succeeded);
}

#[tokio::test(start_paused = true)]
async fn a_device_can_have_its_own_timeout() {
    let fencer = LocalFencer::new();
    let slow = sim("slow", &["n1"], Step::ok(Duration::from_secs(5)));
    fencer.register_device(slow.clone()).await.unwrap();
    fencer
        .register_device(sim("good", &["n1"], Step::ok(MS)))
        .await
        .unwrap();
    // The default (60 s) would wait for the slow device; its own 1 s does not.
    fencer.set_device_timeout(&d("slow"), Some(Duration::from_secs(1)));
    let r = fencer
        .fence(req("n1", FenceAction::Off, "a@x"))
        .await
        .unwrap();
    assert_eq!(
        r.levels[0].attempts[0].outcome,
        FenceOutcome::TimedOut { after_ms: 1000 }
    );
    assert!(r.levels[1].succeeded);
    fencer.set_device_timeout(&d("slow"), None);
    let r = fencer
        .fence(req("n1", FenceAction::On, "a@x"))
        .await
        .unwrap();
    assert_eq!(
        r.levels.len(),
        1,
        "back to the default: the slow device had time"
    );
}

#[tokio::test(start_paused = true)]
async fn a_late_request_for_a_finished_incident_gets_its_record() {
    let fencer = LocalFencer::new();
    let dev = sim("x", &["n1"], Step::ok(MS));
    fencer.register_device(dev.clone()).await.unwrap();
    let inc = IncidentId::new("n1@view-7").unwrap();
    let first = fencer
        .fence(req("n1", FenceAction::Reboot, "pacemaker@n2").with_incident(inc.clone()))
        .await
        .unwrap();
    let late = fencer
        .fence(req("n1", FenceAction::Reboot, "slurm@n3").with_incident(inc))
        .await
        .unwrap();
    assert_eq!(first.id, late.id);
    assert_eq!(dev.fence_calls(), 1);
    assert_eq!(late.requesters.len(), 2);
    // Without the incident id it is a new fence.
    fencer
        .fence(req("n1", FenceAction::Reboot, "admin@n2"))
        .await
        .unwrap();
    assert_eq!(dev.fence_calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn absurd_timeouts_neither_panic_nor_hang() {
    let fencer = LocalFencer::new();
    fencer
        .register_device(sim("x", &["n1"], Step::ok(MS)))
        .await
        .unwrap();
    let r = fencer
        .fence(req("n1", FenceAction::Off, "a@x").with_timeout(Duration::from_millis(u64::MAX)))
        .await
        .unwrap();
    assert!(r.succeeded());
    let e = fencer
        .fence(req("n1", FenceAction::On, "a@x").with_timeout(Duration::ZERO))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), FenceErrorKind::TimedOut, "{e}");
}

#[tokio::test(start_paused = true)]
async fn history_is_bounded_and_filtered() {
    let fencer = LocalFencer::with(
        FencerConfig::default().history_limit(3),
        Arc::new(ocf_fencing::AllowAll),
    );
    fencer
        .register_device(Arc::new(NullDevice::new(d("null"), [n("a"), n("b")])))
        .await
        .unwrap();
    for t in ["a", "b", "a", "b", "a"] {
        fencer
            .fence(req(t, FenceAction::Reboot, "x@y"))
            .await
            .unwrap();
    }
    let all = fencer.history(&HistoryFilter::all()).await.unwrap();
    assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), [2, 3, 4]);
    let a = fencer
        .history(&HistoryFilter::all().target(n("a")))
        .await
        .unwrap();
    assert_eq!(a.iter().map(|r| r.id).collect::<Vec<_>>(), [2, 4]);
    let last = fencer
        .history(&HistoryFilter::all().limit(1))
        .await
        .unwrap();
    assert_eq!(last[0].id, 4);
}

#[tokio::test(start_paused = true)]
async fn registry_refuses_duplicates_and_unknown_removals() {
    let fencer = LocalFencer::new();
    fencer
        .register_device(Arc::new(NullDevice::new(d("x"), [n("a")])))
        .await
        .unwrap();
    let e = fencer
        .register_device(Arc::new(NullDevice::new(d("x"), [n("a")])))
        .await
        .unwrap_err();
    assert!(matches!(e, FenceError::DuplicateDevice { .. }));
    fencer.unregister_device(&d("x")).await.unwrap();
    assert!(fencer.unregister_device(&d("x")).await.is_err());
    assert!(fencer.devices().await.unwrap().is_empty());
    let e = fencer
        .set_topology(
            &n("a"),
            vec![TopologyLevel::new([d("x")]), TopologyLevel::new([])],
        )
        .await
        .unwrap_err();
    // The error names the node and the level, not a device.
    match &e {
        FenceError::Topology { target, level, .. } => {
            assert_eq!((target, *level), (&n("a"), Some(2)), "{e}");
        }
        other => panic!("expected a topology error, got {other:?}"),
    }
    assert_eq!(e.kind(), FenceErrorKind::Config);
    assert!(fencer.topology(&n("a")).await.unwrap().is_empty());
}

#[tokio::test]
async fn subscribers_see_each_incident_start_and_finish_and_the_end() {
    let fencer = LocalFencer::new();
    fencer
        .register_device(Arc::new(NullDevice::new(d("null"), [n("a")])))
        .await
        .unwrap();
    let mut events = fencer.subscribe().await.unwrap();
    let record = fencer
        .fence(FenceRequest::new(
            n("a"),
            FenceAction::Off,
            "t@n1".parse().unwrap(),
        ))
        .await
        .unwrap();
    let started = events.next_event().await.unwrap().unwrap();
    assert!(
        matches!(&started, FenceEvent::Started { record: r } if r.id == record.id && r.is_pending())
    );
    let finished = events.next_event().await.unwrap().unwrap();
    assert!(matches!(&finished, FenceEvent::Finished { record: r } if **r == record));
    // Once the fencer's last handle is gone (and its incident task with it), the stream
    // ends, and stays ended.
    drop(fencer);
    assert!(events.next_event().await.unwrap().is_none());
    assert!(events.next_event().await.unwrap().is_none());
}

// ---- The property test ----

/// One scripted device: its per-call (latency ms, succeeds) plan, repeated.
#[derive(Debug, Clone)]
struct DevPlan {
    steps: Vec<(u64, bool)>,
}

#[derive(Debug, Clone)]
struct Scenario {
    /// Per target, the topology: levels of device indexes (into `devices`).
    levels: Vec<Vec<usize>>,
    devices: Vec<DevPlan>,
    /// (arrival ms, target index, reboot?, timeout ms)
    requests: Vec<(u64, usize, bool, u64)>,
    targets: usize,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (1usize..5, 1usize..3).prop_flat_map(|(ndev, targets)| {
        (
            prop::collection::vec(
                prop::collection::vec((0u64..300, prop::bool::weighted(0.7)), 1..6)
                    .prop_map(|steps| DevPlan { steps }),
                ndev,
            ),
            prop::collection::vec(prop::collection::vec(0..ndev, 1..3), 1..4),
            prop::collection::vec((0u64..800, 0..targets, any::<bool>(), 50u64..5000), 1..60),
        )
            .prop_map(move |(devices, levels, requests)| Scenario {
                levels,
                devices,
                requests,
                targets,
            })
    })
}

type CallLog = Arc<Mutex<Vec<(String, NodeName, FenceAction, Instant)>>>;

/// A scenario's fencer, with every device registered and the topology set on every target.
struct Rig {
    fencer: LocalFencer,
    targets: Vec<NodeName>,
    log: CallLog,
    devices: Vec<Arc<SimulatedDevice>>,
}

/// What the requests got: each one's result, and when it arrived and got it.
struct Answers {
    results: Vec<Result<FenceRecord, FenceError>>,
    times: Vec<(Instant, Instant)>,
}

async fn rig(s: &Scenario) -> Rig {
    let fencer = LocalFencer::new();
    let targets: Vec<NodeName> = (0..s.targets).map(|i| n(&format!("n{i}"))).collect();
    let log: CallLog = Arc::default();
    let mut devices = Vec::new();
    for (i, plan) in s.devices.iter().enumerate() {
        let steps = plan.steps.clone();
        let log = log.clone();
        let name = format!("d{i}");
        let who = name.clone();
        let dev = Arc::new(SimulatedDevice::new(
            d(&name),
            targets.clone(),
            move |seq, t, a| {
                // The plan runs at call time: one global log of every call, in order.
                log.lock()
                    .unwrap()
                    .push((who.clone(), t.clone(), a, Instant::now()));
                let (ms, ok) = steps[(seq as usize) % steps.len()];
                let latency = Duration::from_millis(ms);
                if ok {
                    Step::ok(latency)
                } else {
                    Step::fail(latency)
                }
            },
        ));
        fencer.register_device(dev.clone()).await.unwrap();
        devices.push(dev);
    }
    let topology: Vec<TopologyLevel> = s
        .levels
        .iter()
        .map(|l| TopologyLevel::new(l.iter().map(|i| d(&format!("d{i}")))))
        .collect();
    for t in &targets {
        fencer.set_topology(t, topology.clone()).await.unwrap();
    }

    Rig {
        fencer,
        targets,
        log,
        devices,
    }
}

/// Sends every request at its time; waits for every answer and every incident to end.
async fn send_all(s: &Scenario, rig: &Rig) -> Answers {
    let (fencer, targets) = (&rig.fencer, &rig.targets);
    let mut tasks = Vec::new();
    for (i, (at, t, reboot, timeout)) in s.requests.iter().copied().enumerate() {
        let f = fencer.clone();
        let action = if reboot {
            FenceAction::Reboot
        } else {
            FenceAction::Off
        };
        let request = FenceRequest::new(
            targets[t].clone(),
            action,
            format!("r{i}@n").parse().unwrap(),
        )
        .with_timeout(Duration::from_millis(timeout));
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(at)).await;
            let arrived = Instant::now();
            let result = f.fence(request).await;
            (arrived, Instant::now(), result)
        }));
    }
    // 1. Every request gets an outcome.
    let mut results = Vec::new();
    let mut times = Vec::new();
    for t in tasks {
        let (arrived, finished, result) = t.await.unwrap();
        results.push(result);
        times.push((arrived, finished));
    }
    // Let incidents whose requesters all gave up finish too.
    while !fencer.in_flight().is_empty() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Answers { results, times }
}

async fn play(s: Scenario) -> Result<(), TestCaseError> {
    let rig = rig(&s).await;
    let answers = send_all(&s, &rig).await;
    let history = rig.fencer.history(&HistoryFilter::all()).await.unwrap();
    let by_id: BTreeMap<u64, &FenceRecord> = history.iter().map(|r| (r.id, r)).collect();

    check_answers(&s, &answers, &history, &by_id)?;
    check_topology_order(&s, &history)?;
    let log = rig.log.lock().unwrap().clone();
    check_device_calls(&rig, &log, &history)?;
    check_merging(&s, &rig.targets, &log, &answers, &history)
}

fn check_answers(
    s: &Scenario,
    answers: &Answers,
    history: &[FenceRecord],
    by_id: &BTreeMap<u64, &FenceRecord>,
) -> Result<(), TestCaseError> {
    let results = &answers.results;
    // 2. Every requester is in at most one record, and what it got is that record; one in
    //    none timed out while waiting for an incident with another action to end.
    let mut seen = BTreeSet::new();
    for r in history {
        prop_assert!(!r.is_pending(), "record {} still pending", r.id);
        for q in &r.requesters {
            prop_assert!(seen.insert(q.to_string()), "{q} in two records");
        }
    }
    prop_assert!(seen.len() <= s.requests.len());
    for (i, result) in results.iter().enumerate() {
        let got = match result {
            Ok(r) => Some(r),
            Err(e) => e.record(),
        };
        if let Some(got) = got {
            let stored = by_id[&got.id];
            let me = format!("r{i}@n");
            prop_assert!(got.requesters.iter().any(|q| q.as_str() == me));
            prop_assert_eq!(got.outcome.as_ref(), stored.outcome.as_ref());
            prop_assert_eq!(&got.levels, &stored.levels);
        } else {
            prop_assert!(
                matches!(result, Err(FenceError::TimedOut { .. }))
                    || seen.contains(&format!("r{i}@n")),
                "{result:?}"
            );
        }
        if !seen.contains(&format!("r{i}@n")) {
            prop_assert!(
                matches!(result, Err(FenceError::TimedOut { .. })),
                "{result:?}"
            );
        }
        if let Ok(r) = result {
            prop_assert!(r.succeeded());
        }
    }

    Ok(())
}

fn check_topology_order(s: &Scenario, history: &[FenceRecord]) -> Result<(), TestCaseError> {
    // 3. Topology order: levels in order, each level's devices in order, stop at success.
    for r in history {
        for (k, level) in r.levels.iter().enumerate() {
            prop_assert_eq!(level.level as usize, k + 1);
            let configured: Vec<String> = s.levels[k].iter().map(|i| format!("d{i}")).collect();
            let tried: Vec<String> = level
                .attempts
                .iter()
                .map(|a| a.device.to_string())
                .collect();
            let expected: Vec<String> = if r.action == FenceAction::Reboot && configured.len() > 1 {
                let offs = level
                    .attempts
                    .iter()
                    .take_while(|a| a.action == DeviceAction::Off)
                    .count();
                let mut e: Vec<String> = configured[..offs].to_vec();
                if level.succeeded {
                    e.extend(configured.iter().cloned());
                }
                e
            } else {
                configured[..tried.len().min(configured.len())].to_vec()
            };
            prop_assert_eq!(&tried, &expected, "level {} of record {}", k + 1, r.id);
            if k + 1 < r.levels.len() {
                prop_assert!(!level.succeeded, "a level after a successful one was tried");
            }
        }
        prop_assert_eq!(r.succeeded(), r.levels.last().is_some_and(|l| l.succeeded));
    }

    Ok(())
}

type Calls = [(String, NodeName, FenceAction, Instant)];

fn check_device_calls(
    rig: &Rig,
    log: &Calls,
    history: &[FenceRecord],
) -> Result<(), TestCaseError> {
    // 4. The devices were invoked exactly for the recorded attempts, one incident at a time
    //    per target, in record order: merged requests caused no extra calls.
    for t in &rig.targets {
        let calls: Vec<(String, FenceAction)> = log
            .iter()
            .filter(|(_, tt, _, _)| tt == t)
            .map(|(dev, _, a, _)| (dev.clone(), *a))
            .collect();
        let recorded: Vec<(String, FenceAction)> = history
            .iter()
            .filter(|r| &r.target == t)
            .flat_map(FenceRecord::attempts)
            .map(|a| (a.device.to_string(), a.action.fence_action().unwrap()))
            .collect();
        prop_assert_eq!(calls, recorded);
    }
    let total: u64 = rig.devices.iter().map(|d| d.fence_calls()).sum();
    prop_assert_eq!(
        total as usize,
        history.iter().map(|r| r.attempts().count()).sum::<usize>()
    );

    Ok(())
}

fn check_merging(
    s: &Scenario,
    targets: &[NodeName],
    log: &Calls,
    answers: &Answers,
    history: &[FenceRecord],
) -> Result<(), TestCaseError> {
    let (results, times) = (&answers.results, &answers.times);
    // 5. Merging: a request that arrives strictly while an incident for its target and action
    //    is in flight (after its first device call, before a requester got its result) joins
    //    that incident.
    for t in targets {
        let mut calls = log.iter().filter(|(_, tt, _, _)| tt == t).map(|c| c.3);
        for r in history.iter().filter(|r| &r.target == t) {
            let n_calls = r.attempts().count();
            let Some(start) = calls.next() else { break };
            for _ in 1..n_calls {
                calls.next();
            }
            let end = results
                .iter()
                .zip(times.iter())
                .find_map(|(res, (_, fin))| match res {
                    Ok(got) if got.id == r.id => Some(*fin),
                    Err(e) if e.record().is_some_and(|g| g.id == r.id) => Some(*fin),
                    _ => None,
                });
            let Some(end) = end else { continue };
            for (i, (at, tt, reboot, _)) in s.requests.iter().copied().enumerate() {
                let action = if reboot {
                    FenceAction::Reboot
                } else {
                    FenceAction::Off
                };
                let arrived = times[i].0;
                if &targets[tt] == t && action == r.action && start < arrived && arrived < end {
                    let me = format!("r{i}@n");
                    prop_assert!(
                        r.requesters.iter().any(|q| q.as_str() == me),
                        "{me} (at {at} ms) arrived during incident {} but did not join it",
                        r.id
                    );
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn concurrent_requesters_are_merged_and_ordered(s in scenario()) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(play(s))?;
    }
}

/// A requester that asks again while its incident runs is listed once: a record stays bounded
/// however often a scheduler retries.
#[tokio::test(start_paused = true)]
async fn a_requester_asking_again_is_listed_once() {
    let fencer = LocalFencer::new();
    let dev = sim("psu", &["n1"], Step::ok(500 * MS));
    fencer.register_device(dev.clone()).await.unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let f = fencer.clone();
            let who = if i % 2 == 0 { "slurm@n0" } else { "ha@n0" };
            tokio::spawn(async move { f.fence(req("n1", FenceAction::Reboot, who)).await })
        })
        .collect();
    for t in tasks {
        let record = t.await.unwrap().unwrap();
        let names: Vec<String> = record.requesters.iter().map(ToString::to_string).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.contains(&"slurm@n0".into()) && names.contains(&"ha@n0".into()));
    }
    assert_eq!(dev.fence_calls(), 1);
}
