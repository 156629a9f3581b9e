#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The fencing conformance suites on the reference implementation: `LocalFencer` through the
//! fencer suite; fence_dummy (a real fence agent, its state in a temp dir), cluster-glue's
//! `stonith -t null` and the native `NullDevice` through the device suite. And the suites
//! failing deliberately broken implementations, to show they can.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ocf_conformance::fencing::{
    DeviceOptions, FencerHarness, FencerOptions, run_device, run_fencer,
};
use ocf_conformance::{CheckOutcome, Clock, Report};
use ocf_core::NodeName;
use ocf_fencing::history::now_millis;
use ocf_fencing::{
    AllowAll, DeviceAttempt, DeviceId, DeviceMetadata, DeviceParams, FenceAction, FenceDevice,
    FenceError, FenceEventStream, FenceOutcome, FenceRecord, FenceRequest, Fencer, FencerAdmin,
    FencingPolicy, HistoryFilter, LevelAttempt, PowerState, Targets, TopologyLevel,
};
use ocf_ref::conformance::TokioClock;
use ocf_ref::fencing::devices::agent::{AgentDevice, agents_dir};
use ocf_ref::fencing::devices::native::{ManualDevice, NullDevice, SimulatedDevice, Step};
use ocf_ref::fencing::devices::stonith::StonithDevice;
use ocf_ref::fencing::fencer::{FencerConfig, LocalFencer};

fn n(s: &str) -> NodeName {
    s.parse().unwrap()
}

const T: Duration = Duration::from_secs(20);

/// How many events a `LocalHarness` fencer keeps for a subscriber that does not read.
const EVENT_BUFFER: usize = 8;

/// Builds fresh `LocalFencer`s for the fencer suite.
struct LocalHarness;

fn local_fencer(policy: Arc<dyn FencingPolicy>) -> LocalFencer {
    LocalFencer::with(FencerConfig::default().event_buffer(EVENT_BUFFER), policy)
}

#[async_trait]
impl FencerHarness for LocalHarness {
    fn implementation(&self) -> String {
        "ocf_ref LocalFencer".into()
    }
    fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(TokioClock::new())
    }
    async fn fencer(&self) -> Result<Arc<dyn FencerAdmin>, String> {
        Ok(Arc::new(local_fencer(Arc::new(AllowAll))))
    }
    fn replays_incidents(&self) -> bool {
        true
    }
    fn event_buffer(&self) -> Option<usize> {
        Some(EVENT_BUFFER)
    }
    fn supports_policy(&self) -> bool {
        true
    }
    async fn fencer_with_policy(
        &self,
        policy: Arc<dyn FencingPolicy>,
    ) -> Result<Arc<dyn FencerAdmin>, String> {
        Ok(Arc::new(local_fencer(policy)))
    }
}

#[tokio::test]
async fn local_fencer_conforms() {
    let report = run_fencer(&LocalHarness, &FencerOptions::default()).await;
    report.assert_passed();
    for c in &report.checks {
        assert_eq!(c.outcome, CheckOutcome::Pass, "{report}");
    }
    assert_eq!(report.checks.len(), 14, "{report}");
}

#[tokio::test]
async fn fence_dummy_conforms_with_a_power_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut params = DeviceParams::new();
    params.insert(
        "status_file",
        dir.path().join("state").display().to_string(),
    );
    let dev = AgentDevice::new(
        "dummy".parse().unwrap(),
        agents_dir().join("fence_dummy"),
        params,
        Targets::hosts([n("n1")]),
    );
    let options = DeviceOptions::new(n("n1"), n("ghost"))
        .power_cycle(true)
        .timeout(T);
    let report = run_device(&dev, &TokioClock::new(), &options).await;
    report.assert_passed();
    for name in [
        "fence_device.status",
        "fence_device.refuses_non_target",
        "fence_device.off",
        "fence_device.on",
        "fence_device.reboot",
        "fence_device.restored",
    ] {
        assert_eq!(report.outcome(name), Some(&CheckOutcome::Pass), "{report}");
    }
    // fence_dummy starts "off" (no status file): the suite leaves it off.
    assert_eq!(dev.status(&n("n1"), T).await.unwrap(), PowerState::Off);
}

#[tokio::test]
async fn stonith_null_conforms_without_per_node_status() {
    let params: DeviceParams = [("hostlist", "a b")].into_iter().collect();
    let dev = StonithDevice::new("null".parse().unwrap(), "null", params, Targets::Dynamic);
    let options = DeviceOptions::new(n("a"), n("ghost"))
        .power_cycle(true)
        .status(false)
        .timeout(T);
    let report = run_device(&dev, &TokioClock::new(), &options).await;
    report.assert_passed();
    assert_eq!(
        report.outcome("fence_device.reboot"),
        Some(&CheckOutcome::Pass),
        "{report}"
    );
    assert!(matches!(
        report.outcome("fence_device.status"),
        Some(CheckOutcome::Skip(_))
    ));
}

#[tokio::test]
async fn null_device_conforms() {
    let dev = NullDevice::new("null".parse().unwrap(), [n("a"), n("b")]);
    let options = DeviceOptions::new(n("b"), n("ghost")).power_cycle(true);
    let report = run_device(&dev, &TokioClock::new(), &options).await;
    report.assert_passed();
    assert_eq!(
        dev.fence_calls(),
        3,
        "off, on, reboot; the non-target never reached it"
    );
}

/// The native devices that cannot read power back (an operator's, a simulation) conform
/// without the round trip and without per-node status.
#[tokio::test]
async fn the_manual_and_simulated_devices_conform_without_power_status() {
    let options = DeviceOptions::new(n("a"), n("ghost")).status(false);
    let manual = ManualDevice::new("manual".parse().unwrap(), [n("a")]);
    run_device(&manual, &TokioClock::new(), &options)
        .await
        .assert_passed();
    assert!(manual.pending().is_empty(), "nothing waits for an operator");
    let simulated = SimulatedDevice::new("sim".parse().unwrap(), [n("a")], |_, _, _| {
        Step::ok(Duration::ZERO)
    });
    run_device(&simulated, &TokioClock::new(), &options)
        .await
        .assert_passed();
    assert_eq!(simulated.fence_calls(), 0);
}

#[tokio::test]
async fn without_power_cycle_nothing_is_powered() {
    let dev = NullDevice::new("null".parse().unwrap(), [n("a")]);
    let report = run_device(
        &dev,
        &TokioClock::new(),
        &DeviceOptions::new(n("a"), n("ghost")),
    )
    .await;
    report.assert_passed();
    assert_eq!(dev.fence_calls(), 0);
    assert!(matches!(
        report.outcome("fence_device.off"),
        Some(CheckOutcome::Skip(_))
    ));
}

/// A device that fences anything it is asked to: the device suite must fail it.
struct Promiscuous(NullDevice);

#[async_trait]
impl FenceDevice for Promiscuous {
    fn id(&self) -> &DeviceId {
        self.0.id()
    }
    fn targets(&self) -> &Targets {
        self.0.targets()
    }
    async fn metadata(&self, timeout: Duration) -> Result<DeviceMetadata, FenceError> {
        self.0.metadata(timeout).await
    }
    async fn list_targets(&self, timeout: Duration) -> Result<Vec<NodeName>, FenceError> {
        self.0.list_targets(timeout).await
    }
    async fn fence(&self, _: &NodeName, _: FenceAction, _: Duration) -> Result<(), FenceError> {
        Ok(())
    }
    async fn status(&self, _: &NodeName, _: Duration) -> Result<PowerState, FenceError> {
        Ok(PowerState::On)
    }
    async fn monitor(&self, timeout: Duration) -> Result<(), FenceError> {
        self.0.monitor(timeout).await
    }
}

#[tokio::test]
async fn the_device_suite_fails_a_device_that_fences_strangers() {
    let dev = Promiscuous(NullDevice::new("loose".parse().unwrap(), [n("a")]));
    let options = DeviceOptions::new(n("a"), n("ghost")).power_cycle(true);
    let report = run_device(&dev, &TokioClock::new(), &options).await;
    assert!(!report.passed());
    let failed: Vec<&str> = report.failures().map(|c| c.name).collect();
    // It also claims "on" right after "off".
    assert_eq!(
        failed,
        ["fence_device.refuses_non_target", "fence_device.off"],
        "{report}"
    );
}

/// A fencer without merging: every request goes to the hardware on its own. It keeps
/// topology and history, so only the merging checks should catch it.
#[derive(Default)]
struct NaiveFencer {
    devices: Mutex<Vec<Arc<dyn FenceDevice>>>,
    topology: Mutex<BTreeMap<NodeName, Vec<TopologyLevel>>>,
    history: Mutex<Vec<FenceRecord>>,
    next: AtomicU64,
}

impl NaiveFencer {
    fn levels_for(&self, target: &NodeName) -> Vec<Vec<Arc<dyn FenceDevice>>> {
        let devices = self.devices.lock().unwrap().clone();
        match self.topology.lock().unwrap().get(target) {
            Some(levels) => levels
                .iter()
                .map(|l| {
                    l.devices
                        .iter()
                        .filter_map(|id| devices.iter().find(|d| d.id() == id).cloned())
                        .collect()
                })
                .collect(),
            None => devices
                .into_iter()
                .filter(|d| d.targets().plug_for(target).is_some())
                .map(|d| vec![d])
                .collect(),
        }
    }
}

#[async_trait]
impl FencerAdmin for NaiveFencer {
    async fn register_device(&self, device: Arc<dyn FenceDevice>) -> Result<(), FenceError> {
        let mut all = self.devices.lock().unwrap();
        if all.iter().any(|d| d.id() == device.id()) {
            return Err(FenceError::DuplicateDevice {
                device: device.id().clone(),
            });
        }
        all.push(device);
        Ok(())
    }
    async fn unregister_device(&self, id: &DeviceId) -> Result<(), FenceError> {
        self.devices.lock().unwrap().retain(|d| d.id() != id);
        Ok(())
    }
    async fn devices(&self) -> Result<Vec<DeviceId>, FenceError> {
        Ok(self
            .devices
            .lock()
            .unwrap()
            .iter()
            .map(|d| d.id().clone())
            .collect())
    }
    async fn set_topology(
        &self,
        target: &NodeName,
        levels: Vec<TopologyLevel>,
    ) -> Result<(), FenceError> {
        self.topology.lock().unwrap().insert(target.clone(), levels);
        Ok(())
    }
    async fn topology(&self, target: &NodeName) -> Result<Vec<TopologyLevel>, FenceError> {
        Ok(self
            .topology
            .lock()
            .unwrap()
            .get(target)
            .cloned()
            .unwrap_or_default())
    }
}

#[async_trait]
impl Fencer for NaiveFencer {
    /// A partial implementation says so instead of pretending.
    async fn subscribe(&self) -> Result<Box<dyn FenceEventStream>, FenceError> {
        Err(FenceError::NotImplemented {
            operation: "subscribe".into(),
            implementer: "NaiveFencer".into(),
        })
    }
    async fn fence(&self, request: FenceRequest) -> Result<FenceRecord, FenceError> {
        let levels = self.levels_for(&request.target);
        if levels.is_empty() {
            return Err(FenceError::NoDevice {
                target: request.target,
            });
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut rec = FenceRecord::start(
            id,
            request.target.clone(),
            request.action,
            request.requester.clone(),
            None,
        );
        for (i, level) in levels.into_iter().enumerate() {
            let mut attempts = Vec::new();
            let mut ok = true;
            for d in level {
                let started = now_millis();
                let r = d
                    .fence(&request.target, request.action, request.timeout)
                    .await;
                let outcome = match &r {
                    Ok(()) => FenceOutcome::Succeeded,
                    Err(e) => FenceOutcome::Failed {
                        reason: e.to_string(),
                    },
                };
                ok &= r.is_ok();
                attempts.push(DeviceAttempt::new(
                    d.id().clone(),
                    request.action.into(),
                    outcome,
                    started,
                    now_millis(),
                ));
                if !ok {
                    break;
                }
            }
            rec.levels.push(LevelAttempt::new(
                u32::try_from(i + 1).unwrap(),
                attempts,
                ok,
            ));
            if ok {
                rec.outcome = Some(FenceOutcome::Succeeded);
                rec.ended_ms = Some(now_millis());
                self.history.lock().unwrap().push(rec.clone());
                return Ok(rec);
            }
        }
        rec.outcome = Some(FenceOutcome::Failed {
            reason: "every level failed".into(),
        });
        rec.ended_ms = Some(now_millis());
        self.history.lock().unwrap().push(rec.clone());
        Err(FenceError::Failed {
            target: request.target,
            action: request.action,
            reason: "every level failed".into(),
            record: Box::new(rec),
        })
    }
    async fn history(&self, filter: &HistoryFilter) -> Result<Vec<FenceRecord>, FenceError> {
        Ok(self
            .history
            .lock()
            .unwrap()
            .iter()
            .filter(|r| filter.matches(r))
            .cloned()
            .collect())
    }
}

/// Builds `NaiveFencer`s; `claims_replay` declares a capability they lack.
struct NaiveHarness {
    claims_replay: bool,
}

#[async_trait]
impl FencerHarness for NaiveHarness {
    fn implementation(&self) -> String {
        "a fencer without merging".into()
    }
    fn replays_incidents(&self) -> bool {
        self.claims_replay
    }
    fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(TokioClock::new())
    }
    async fn fencer(&self) -> Result<Arc<dyn FencerAdmin>, String> {
        Ok(Arc::new(NaiveFencer::default()))
    }
}

fn failed(report: &Report) -> Vec<&'static str> {
    report.failures().map(|c| c.name).collect()
}

#[tokio::test]
async fn the_fencer_suite_fails_a_fencer_that_calls_the_device_twice() {
    let options = FencerOptions::default();
    let report = run_fencer(
        &NaiveHarness {
            claims_replay: false,
        },
        &options,
    )
    .await;
    assert!(!report.passed());
    // Merging is what it lacks, and all the suite blames; the rest of it holds up.
    assert_eq!(
        failed(&report),
        ["fencer.merging", "fencer.merged_record", "fencer.history"],
        "{report}"
    );
    match report.outcome("fencer.merging") {
        Some(CheckOutcome::Fail(why)) => {
            assert!(why.contains("caused 8 device calls, not 1"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    for undeclared in [
        "fencer.policy_refusal",
        "fencer.incident_replay",
        "fencer.events",
        "fencer.stream_end",
        "fencer.lag",
    ] {
        assert!(matches!(
            report.outcome(undeclared),
            Some(CheckOutcome::Skip(_))
        ));
    }
}

#[tokio::test]
async fn a_declared_capability_the_fencer_lacks_fails() {
    let report = run_fencer(
        &NaiveHarness {
            claims_replay: true,
        },
        &FencerOptions::default(),
    )
    .await;
    match report.outcome("fencer.incident_replay") {
        Some(CheckOutcome::Fail(why)) => {
            assert!(why.contains("caused 2 device calls, not 1"), "{why}");
        }
        other => panic!("{other:?}\n{report}"),
    }
}

#[tokio::test]
async fn the_fencer_suite_fails_a_stream_that_ends_in_an_error() {
    let harness = bent_streams::Harness {
        bend: bent_streams::Bend::EndIsAnError,
        buffer: EVENT_BUFFER,
    };
    let report = run_fencer(&harness, &FencerOptions::default()).await;
    assert_eq!(failed(&report), ["fencer.stream_end"], "{report}");
    match report.outcome("fencer.stream_end") {
        Some(CheckOutcome::Fail(why)) => assert!(why.contains("not Ok(None)"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_fencer_suite_fails_a_stream_that_ends_when_it_lags() {
    let harness = bent_streams::Harness {
        bend: bent_streams::Bend::LagIsTheEnd,
        buffer: EVENT_BUFFER,
    };
    let report = run_fencer(&harness, &FencerOptions::default()).await;
    assert_eq!(failed(&report), ["fencer.lag"], "{report}");
}

/// `LocalFencer`s whose event streams break the documented stream semantics one way each: the
/// fencer suite must fail exactly the check about that.
mod bent_streams {
    use std::sync::Arc;

    use async_trait::async_trait;
    use ocf_conformance::Clock;
    use ocf_conformance::fencing::FencerHarness;
    use ocf_core::NodeName;
    use ocf_fencing::{
        AllowAll, DeviceId, FenceDevice, FenceError, FenceEvent, FenceEventStream, FenceRecord,
        FenceRequest, Fencer, FencerAdmin, HistoryFilter, TopologyLevel,
    };
    use ocf_ref::conformance::TokioClock;
    use ocf_ref::fencing::fencer::{FencerConfig, LocalFencer};

    #[derive(Clone, Copy)]
    pub enum Bend {
        /// The end of the stream is an error instead of `Ok(None)`.
        EndIsAnError,
        /// Lagging ends the stream instead of going on after the gap.
        LagIsTheEnd,
    }

    pub struct Harness {
        pub bend: Bend,
        pub buffer: usize,
    }

    #[async_trait]
    impl FencerHarness for Harness {
        fn implementation(&self) -> String {
            "a fencer with a bent event stream".into()
        }
        fn clock(&self) -> Arc<dyn Clock> {
            Arc::new(TokioClock::new())
        }
        fn event_buffer(&self) -> Option<usize> {
            Some(self.buffer)
        }
        async fn fencer(&self) -> Result<Arc<dyn FencerAdmin>, String> {
            let config = FencerConfig::default().event_buffer(self.buffer);
            Ok(Arc::new(Bent(
                LocalFencer::with(config, Arc::new(AllowAll)),
                self.bend,
            )))
        }
    }

    struct Bent(LocalFencer, Bend);

    struct BentStream(Box<dyn FenceEventStream>, Bend, bool);

    #[async_trait]
    impl FenceEventStream for BentStream {
        async fn next_event(&mut self) -> Result<Option<FenceEvent>, FenceError> {
            if self.2 {
                return Ok(None);
            }
            match (self.0.next_event().await, self.1) {
                (Ok(None), Bend::EndIsAnError) => Err(FenceError::unavailable("closed")),
                (Err(FenceError::Lagged { .. }), Bend::LagIsTheEnd) => {
                    self.2 = true;
                    Ok(None)
                }
                (other, _) => other,
            }
        }
    }

    #[async_trait]
    impl Fencer for Bent {
        async fn fence(&self, request: FenceRequest) -> Result<FenceRecord, FenceError> {
            self.0.fence(request).await
        }
        async fn history(&self, filter: &HistoryFilter) -> Result<Vec<FenceRecord>, FenceError> {
            self.0.history(filter).await
        }
        async fn subscribe(&self) -> Result<Box<dyn FenceEventStream>, FenceError> {
            Ok(Box::new(BentStream(
                self.0.subscribe().await?,
                self.1,
                false,
            )))
        }
    }

    #[async_trait]
    impl FencerAdmin for Bent {
        async fn register_device(&self, device: Arc<dyn FenceDevice>) -> Result<(), FenceError> {
            self.0.register_device(device).await
        }
        async fn unregister_device(&self, id: &DeviceId) -> Result<(), FenceError> {
            self.0.unregister_device(id).await
        }
        async fn devices(&self) -> Result<Vec<DeviceId>, FenceError> {
            self.0.devices().await
        }
        async fn set_topology(
            &self,
            target: &NodeName,
            levels: Vec<TopologyLevel>,
        ) -> Result<(), FenceError> {
            self.0.set_topology(target, levels).await
        }
        async fn topology(&self, target: &NodeName) -> Result<Vec<TopologyLevel>, FenceError> {
            self.0.topology(target).await
        }
    }
}
