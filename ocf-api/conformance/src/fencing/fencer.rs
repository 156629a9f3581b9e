//! The fencer suite: the promises of [`Fencer`](ocf_fencing::Fencer) (merging, topology, history,
//! policy, events) and [`FencerAdmin`] (the registry), checked with the suite's own counting
//! [`TestDevice`]s.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use async_trait::async_trait;
use ocf_core::NodeName;
use ocf_fencing::{
    DeviceId, FenceAction, FenceDevice, FenceError, FenceErrorKind, FenceRecord, FenceRequest,
    FencerAdmin, FencingPolicy, HistoryFilter, IncidentId, Refusal, RequesterId, TopologyLevel,
};

use super::test_device::{Journal, TestDevice};
use crate::{Check, CheckOutcome, Clock, Report, timeout};

/// What an implementation gives the fencer suite: fresh fencers, and time.
#[async_trait]
pub trait FencerHarness: Send + Sync {
    /// A name for reports, such as `LocalFencer`.
    fn implementation(&self) -> String;

    /// The clock the suite and its test devices wait on.
    fn clock(&self) -> Arc<dyn Clock>;

    /// A fresh fencer with no devices, no topology, and a policy that allows everything.
    async fn fencer(&self) -> Result<Arc<dyn FencerAdmin>, String>;

    /// Whether the fencer answers a request that carries the [`IncidentId`] of an incident that
    /// already succeeded with that incident's record, without fencing again (a declared
    /// capability: the reference fencer does; a fencer that merges only requests in flight
    /// does not).
    fn replays_incidents(&self) -> bool {
        false
    }

    /// Whether [`FencerHarness::fencer_with_policy`] works (a declared capability).
    fn supports_policy(&self) -> bool {
        false
    }

    /// How many events the fencer from [`FencerHarness::fencer`] keeps for a subscriber that
    /// does not read, when the harness declares it: the suite then makes it lag and checks the
    /// stream goes on. `None` (the default) skips that check.
    fn event_buffer(&self) -> Option<usize> {
        None
    }

    /// Shuts a fencer from this harness down, so that its event streams end. The default
    /// drops it, which ends an in-process fencer whose last handle it was.
    async fn shut_down(&self, fencer: Arc<dyn FencerAdmin>) {
        drop(fencer);
    }

    /// A fresh fencer that consults `policy` before every request.
    async fn fencer_with_policy(
        &self,
        policy: Arc<dyn FencingPolicy>,
    ) -> Result<Arc<dyn FencerAdmin>, String> {
        let _ = policy;
        Err(format!(
            "{} cannot install a fencing policy",
            self.implementation()
        ))
    }
}

/// How the fencer suite loads the fencer.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FencerOptions {
    /// How many requests the merging check sends at once.
    pub concurrent: usize,
    /// How long the merging check's device takes, so the requests overlap. Much longer than
    /// it takes the fencer to accept a request.
    pub latency: Duration,
    /// Each request's own timeout (and the suite waits this long plus a little).
    pub request_timeout: Duration,
}

impl Default for FencerOptions {
    fn default() -> Self {
        Self {
            concurrent: 8,
            latency: Duration::from_millis(500),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Runs the fencer suite against fencers from `harness`.
///
/// | check | promise |
/// |---|---|
/// | `fencer.registry` | registered devices are listed; a second device with the same id is refused; an unregistered one is gone |
/// | `fencer.fence` | one request fences with the one capable device, once, and the record names the requester |
/// | `fencer.merging` | N concurrent requests for one target and action cause one device call |
/// | `fencer.merged_record` | every merged requester gets the same record, which lists them all |
/// | `fencer.topology_order` | level 1 is tried before level 2, and level 2 is used when level 1 fails, whatever the registration order |
/// | `fencer.level_all` | a level succeeds only when all its devices do, and a successful level ends the incident |
/// | `fencer.failure` | when every level fails, the answer is `Failed` with the incident's record |
/// | `fencer.incident_replay` | a request naming an incident that already succeeded gets its record, and no device is called again (when declared) |
/// | `fencer.no_device` | a target no device can fence is refused as `NoDevice`, touching nothing |
/// | `fencer.history` | every incident is in the history with all its requesters, every device attempt and its outcome; the target filter works |
/// | `fencer.policy_refusal` | with a refusing policy, the answer is `Refused` and no device is touched (when the harness can install a policy) |
/// | `fencer.events` | a subscriber sees an incident `Started`, then `Finished` with the record its requester got (skipped when `subscribe` is `NotImplemented`) |
/// | `fencer.stream_end` | once the fencer shuts down, a subscription answers `Ok(None)`, and again `Ok(None)`: the end is never an error |
/// | `fencer.lag` | a subscriber that falls behind gets `Lagged { missed }` once, then the events after the gap (when the harness declares its buffer) |
pub async fn run_fencer(harness: &dyn FencerHarness, options: &FencerOptions) -> Report {
    run_fencer_with_progress(harness, options, &mut |_| {}).await
}

/// Runs the fencer suite, calling `progress` after each check.
pub async fn run_fencer_with_progress(
    harness: &dyn FencerHarness,
    options: &FencerOptions,
    progress: &mut (dyn FnMut(&Check) + Send),
) -> Report {
    let clock = harness.clock();
    let mut run = FencerRun {
        report: Report::new("fencer", harness.implementation()),
        progress,
        journal: Journal::new(),
        clock: clock.clone(),
        options,
        records: Vec::new(),
    };
    let fencer = match harness.fencer().await {
        Ok(f) => f,
        Err(why) => {
            run.record(
                "fencer.registry",
                "the harness makes a fencer",
                CheckOutcome::Fail(why),
            );
            return run.report;
        }
    };
    let f = fencer.as_ref();
    if !run.check_registry(f).await {
        return run.report;
    }
    run.check_single(f).await;
    run.check_merging(f).await;
    run.check_topology_order(f).await;
    run.check_level_all(f).await;
    run.check_failure(f).await;
    run.check_incident_replay(f, harness.replays_incidents())
        .await;
    run.check_no_device(f).await;
    run.check_history(f).await;
    run.check_policy(harness).await;
    run.check_events(f).await;
    run.check_stream_end(harness).await;
    run.check_lag(harness).await;
    run.report
}

pub(super) struct FencerRun<'a> {
    report: Report,
    progress: &'a mut (dyn FnMut(&Check) + Send),
    journal: Journal,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) options: &'a FencerOptions,
    /// Every record a request received: (target, record), for the history check.
    records: Vec<(NodeName, FenceRecord)>,
}

pub(super) fn node(name: &str) -> Result<NodeName, String> {
    name.parse()
        .map_err(|e| format!("the suite's node name {name:?} is invalid: {e}"))
}

fn device_id(name: &str) -> Result<DeviceId, String> {
    name.parse()
        .map_err(|e| format!("the suite's device id {name:?} is invalid: {e}"))
}

fn requester(i: usize) -> Result<RequesterId, String> {
    RequesterId::new(format!("conformance-{i}@suite"))
        .map_err(|e| format!("the suite's requester id is invalid: {e}"))
}

impl FencerRun<'_> {
    pub(super) fn record(
        &mut self,
        name: &'static str,
        promise: &'static str,
        outcome: CheckOutcome,
    ) {
        self.report.record(name, promise, outcome);
        if let Some(c) = self.report.checks.last() {
            (self.progress)(c);
        }
    }

    pub(super) fn record_result(
        &mut self,
        name: &'static str,
        promise: &'static str,
        result: Result<(), String>,
    ) {
        self.record(
            name,
            promise,
            result.map_or_else(CheckOutcome::Fail, |()| CheckOutcome::Pass),
        );
    }

    pub(super) fn device(&self, id: &str, hosts: &[&NodeName]) -> Result<TestDevice, String> {
        Ok(TestDevice::new(
            device_id(id)?,
            hosts.iter().map(|h| (*h).clone()),
            self.clock.clone(),
            self.journal.clone(),
        ))
    }

    pub(super) async fn register(
        &self,
        f: &dyn FencerAdmin,
        device: TestDevice,
    ) -> Result<(), String> {
        let id = device.id().clone();
        f.register_device(Arc::new(device))
            .await
            .map_err(|e| format!("registering {id} failed: {e}"))
    }

    /// One request under the suite's clock.
    pub(super) async fn fence(
        &self,
        f: &dyn FencerAdmin,
        target: &NodeName,
        action: FenceAction,
        who: usize,
    ) -> Result<Result<FenceRecord, FenceError>, String> {
        let req = FenceRequest::new(target.clone(), action, requester(who)?)
            .with_timeout(self.options.request_timeout);
        fence_within(self.clock.as_ref(), self.options.request_timeout, f, req).await
    }

    async fn check_registry(&mut self, f: &dyn FencerAdmin) -> bool {
        let result = async {
            let t = node("conf-registry")?;
            let first = self.device("conf-reg-a", &[&t])?;
            let twin = self.device("conf-reg-a", &[&t])?;
            let second = self.device("conf-reg-b", &[&t])?;
            self.register(f, first).await?;
            self.register(f, second).await?;
            let listed = f.devices().await.map_err(|e| format!("devices(): {e}"))?;
            for id in ["conf-reg-a", "conf-reg-b"] {
                if !listed.iter().any(|d| d.as_str() == id) {
                    return Err(format!("{id} is registered but devices() gives {listed:?}"));
                }
            }
            match f.register_device(Arc::new(twin)).await {
                Ok(()) => return Err("a second device called conf-reg-a was accepted".into()),
                Err(FenceError::DuplicateDevice { .. }) => {}
                Err(e) => {
                    return Err(format!(
                        "a duplicate was refused, but not as DuplicateDevice: {e}"
                    ));
                }
            }
            for id in ["conf-reg-a", "conf-reg-b"] {
                f.unregister_device(&device_id(id)?)
                    .await
                    .map_err(|e| format!("unregistering {id}: {e}"))?;
            }
            let listed = f.devices().await.map_err(|e| format!("devices(): {e}"))?;
            if listed.iter().any(|d| d.as_str().starts_with("conf-reg-")) {
                return Err(format!("unregistered devices are still listed: {listed:?}"));
            }
            Ok(())
        }
        .await;
        let ok = result.is_ok();
        self.record_result(
            "fencer.registry",
            "registered devices are listed; a second device with the same id is refused; an unregistered one is gone",
            result,
        );
        ok
    }

    async fn check_single(&mut self, f: &dyn FencerAdmin) {
        let result = async {
            let t = node("conf-single")?;
            self.register(f, self.device("conf-single-dev", &[&t])?)
                .await?;
            let rec = self
                .fence(f, &t, FenceAction::Reboot, 0)
                .await?
                .map_err(|e| format!("the fence failed: {e}"))?;
            self.records.push((t.clone(), rec.clone()));
            let calls = self.journal.calls_for(&t);
            if calls.len() != 1 {
                return Err(format!(
                    "the device was called {} times, not once",
                    calls.len()
                ));
            }
            check_record(&rec, &t, FenceAction::Reboot, 1)?;
            if !rec.succeeded() {
                return Err(format!("Ok, but the record's outcome is {:?}", rec.outcome));
            }
            Ok(())
        }
        .await;
        self.record_result(
            "fencer.fence",
            "one request fences with the one capable device, once, and the record names the requester",
            result,
        );
    }

    async fn check_merging(&mut self, f: &dyn FencerAdmin) {
        let n = self.options.concurrent.max(2);
        let setup = async {
            let t = node("conf-merge")?;
            let dev = self
                .device("conf-merge-dev", &[&t])?
                .latency(self.options.latency);
            self.register(f, dev).await?;
            let mut requests = Vec::with_capacity(n);
            for i in 0..n {
                requests.push(
                    FenceRequest::new(t.clone(), FenceAction::Off, requester(i)?)
                        .with_timeout(self.options.request_timeout),
                );
            }
            Ok::<_, String>((t, requests))
        }
        .await;
        let (t, requests) = match setup {
            Ok(x) => x,
            Err(why) => {
                self.record("fencer.merging", MERGING, CheckOutcome::Fail(why.clone()));
                self.record("fencer.merged_record", MERGED, CheckOutcome::Fail(why));
                return;
            }
        };
        let clock = self.clock.clone();
        let limit = self.options.request_timeout;
        let answers = join_all(
            requests
                .into_iter()
                .map(|r| fence_within(clock.as_ref(), limit, f, r))
                .collect(),
        )
        .await;
        let calls = self.journal.calls_for(&t).len();
        self.record_result(
            "fencer.merging",
            MERGING,
            if calls == 1 {
                Ok(())
            } else {
                Err(format!(
                    "{n} concurrent requests caused {calls} device calls, not 1"
                ))
            },
        );
        let mut records = Vec::with_capacity(n);
        let mut result = Ok(());
        for (i, a) in answers.into_iter().enumerate() {
            match a {
                Ok(Ok(rec)) => records.push(rec),
                Ok(Err(e)) => {
                    result = Err(format!("requester {i} got an error: {e}"));
                }
                Err(e) => result = Err(format!("requester {i}: {e}")),
            }
        }
        if result.is_ok() {
            result = check_merged(&records, &t, n);
        }
        if let Some(rec) = records.first() {
            self.records.push((t.clone(), rec.clone()));
        }
        self.record_result("fencer.merged_record", MERGED, result);
    }

    async fn check_topology_order(&mut self, f: &dyn FencerAdmin) {
        let result = async {
            let t = node("conf-topo")?;
            // Registered good-first, so a fencer that ignores the topology shows itself.
            self.register(f, self.device("conf-topo-good", &[&t])?)
                .await?;
            self.register(f, self.device("conf-topo-bad", &[&t])?.failing())
                .await?;
            f.set_topology(
                &t,
                vec![
                    TopologyLevel::new([device_id("conf-topo-bad")?]),
                    TopologyLevel::new([device_id("conf-topo-good")?]),
                ],
            )
            .await
            .map_err(|e| format!("set_topology: {e}"))?;
            let levels = f.topology(&t).await.map_err(|e| format!("topology(): {e}"))?;
            if levels.len() != 2 {
                return Err(format!("topology() gives {} levels, not 2", levels.len()));
            }
            let rec = self
                .fence(f, &t, FenceAction::Off, 0)
                .await?
                .map_err(|e| format!("level 2 should have fenced, but: {e}"))?;
            self.records.push((t.clone(), rec.clone()));
            let order: Vec<String> = self
                .journal
                .calls_for(&t)
                .iter()
                .map(|c| c.device.to_string())
                .collect();
            if order != ["conf-topo-bad", "conf-topo-good"] {
                return Err(format!(
                    "devices were called in the order {order:?}, not level 1 then level 2"
                ));
            }
            let flags: Vec<(u32, bool)> = rec.levels.iter().map(|l| (l.level, l.succeeded)).collect();
            if flags != [(1, false), (2, true)] {
                return Err(format!(
                    "the record's levels are {flags:?} (level, succeeded), not [(1, false), (2, true)]"
                ));
            }
            Ok(())
        }
        .await;
        self.record_result(
            "fencer.topology_order",
            "level 1 is tried before level 2, and level 2 is used when level 1 fails",
            result,
        );
    }

    async fn check_level_all(&mut self, f: &dyn FencerAdmin) {
        let result = async {
            // Level 1 half fails: the level fails, level 2 must be used.
            let t = node("conf-all-half")?;
            for (id, ok) in [
                ("conf-half-a", true),
                ("conf-half-b", false),
                ("conf-half-c", true),
            ] {
                let d = self.device(id, &[&t])?;
                self.register(f, if ok { d } else { d.failing() }).await?;
            }
            f.set_topology(
                &t,
                vec![
                    TopologyLevel::new([device_id("conf-half-a")?, device_id("conf-half-b")?]),
                    TopologyLevel::new([device_id("conf-half-c")?]),
                ],
            )
            .await
            .map_err(|e| format!("set_topology: {e}"))?;
            let rec = self
                .fence(f, &t, FenceAction::Off, 0)
                .await?
                .map_err(|e| format!("level 2 should have fenced, but: {e}"))?;
            self.records.push((t.clone(), rec));
            let c = self.journal.calls_to(&device_id("conf-half-c")?);
            if c != 1 {
                return Err(format!(
                    "level 1 had a failing device, yet level 2 was called {c} times, not once"
                ));
            }

            // Level 1 all succeed: every device of it is used, level 2 is not.
            let t = node("conf-all-ok")?;
            for id in ["conf-ok-a", "conf-ok-b", "conf-ok-c"] {
                self.register(f, self.device(id, &[&t])?).await?;
            }
            f.set_topology(
                &t,
                vec![
                    TopologyLevel::new([device_id("conf-ok-a")?, device_id("conf-ok-b")?]),
                    TopologyLevel::new([device_id("conf-ok-c")?]),
                ],
            )
            .await
            .map_err(|e| format!("set_topology: {e}"))?;
            let rec = self
                .fence(f, &t, FenceAction::Off, 0)
                .await?
                .map_err(|e| format!("level 1 should have fenced, but: {e}"))?;
            self.records.push((t.clone(), rec));
            let used: Vec<String> = self
                .journal
                .calls_for(&t)
                .iter()
                .map(|c| c.device.to_string())
                .collect();
            if used != ["conf-ok-a", "conf-ok-b"] {
                return Err(format!(
                    "with level 1 [conf-ok-a, conf-ok-b] able, the devices called were {used:?}"
                ));
            }
            Ok(())
        }
        .await;
        self.record_result(
            "fencer.level_all",
            "a level succeeds only when all its devices do, and a successful level ends the incident",
            result,
        );
    }

    async fn check_failure(&mut self, f: &dyn FencerAdmin) {
        let result = async {
            let t = node("conf-fail")?;
            self.register(f, self.device("conf-fail-dev", &[&t])?.failing())
                .await?;
            match self.fence(f, &t, FenceAction::Reboot, 0).await? {
                Ok(rec) => Err(format!(
                    "the only device fails, yet the fence succeeded (record {})",
                    rec.id
                )),
                Err(e) if e.kind() != FenceErrorKind::Failed => {
                    Err(format!("expected a Failed error, got {e}"))
                }
                Err(e) => match e.record() {
                    None => Err(format!("the Failed error carries no record: {e}")),
                    Some(rec) if rec.succeeded() || rec.outcome.is_none() => Err(format!(
                        "the Failed error's record has outcome {:?}",
                        rec.outcome
                    )),
                    Some(rec) => {
                        self.records.push((t.clone(), rec.clone()));
                        Ok(())
                    }
                },
            }
        }
        .await;
        self.record_result(
            "fencer.failure",
            "when every level fails, the answer is Failed with the incident's record",
            result,
        );
    }

    async fn check_incident_replay(&mut self, f: &dyn FencerAdmin, declared: bool) {
        let promise = "a request naming an incident that already succeeded gets its record, and no device is called again";
        if !declared {
            self.record(
                "fencer.incident_replay",
                promise,
                CheckOutcome::Skip("replaying finished incidents not declared".into()),
            );
            return;
        }
        let result = async {
            let t = node("conf-incident")?;
            let incident = IncidentId::new("conf-incident@suite")
                .map_err(|e| format!("the suite's incident id is invalid: {e}"))?;
            self.register(f, self.device("conf-incident-dev", &[&t])?)
                .await?;
            let mut answers = Vec::new();
            for who in 0..2 {
                let req = FenceRequest::new(t.clone(), FenceAction::Reboot, requester(who)?)
                    .with_timeout(self.options.request_timeout)
                    .with_incident(incident.clone());
                let rec = fence_within(self.clock.as_ref(), self.options.request_timeout, f, req)
                    .await?
                    .map_err(|e| format!("request {who} failed: {e}"))?;
                answers.push(rec);
            }
            let (first, second) = (&answers[0], &answers[1]);
            let calls = self.journal.calls_for(&t).len();
            if calls != 1 {
                return Err(format!(
                    "two requests for one incident caused {calls} device calls, not 1"
                ));
            }
            if first.id != second.id {
                return Err(format!(
                    "the second request got record {}, not the incident's {}",
                    second.id, first.id
                ));
            }
            let late = requester(1)?;
            if !second.requesters.contains(&late) {
                return Err(format!(
                    "the record does not list the late requester {late}"
                ));
            }
            // The later answer is the fuller one: the history must match it.
            self.records.push((t.clone(), second.clone()));
            Ok(())
        }
        .await;
        self.record_result("fencer.incident_replay", promise, result);
    }

    async fn check_no_device(&mut self, f: &dyn FencerAdmin) {
        let result = async {
            let t = node("conf-nobody")?;
            let before = self.journal.calls().len();
            match self.fence(f, &t, FenceAction::Reboot, 0).await? {
                Ok(rec) => {
                    return Err(format!(
                        "no device can fence it, yet record {} says fenced",
                        rec.id
                    ));
                }
                Err(e) if e.kind() != FenceErrorKind::NoDevice => {
                    return Err(format!("expected NoDevice, got {e}"));
                }
                Err(_) => {}
            }
            let after = self.journal.calls().len();
            if after == before {
                Ok(())
            } else {
                Err(format!("{} device calls were made", after - before))
            }
        }
        .await;
        self.record_result(
            "fencer.no_device",
            "a target no device can fence is refused as NoDevice, touching nothing",
            result,
        );
    }

    async fn check_history(&mut self, f: &dyn FencerAdmin) {
        let result = async {
            let all = f
                .history(&HistoryFilter::all())
                .await
                .map_err(|e| format!("history(): {e}"))?;
            for (target, got) in &self.records {
                let Some(h) = all.iter().find(|r| r.id == got.id) else {
                    return Err(format!("incident {} ({target}) is not in the history", got.id));
                };
                if h.requesters != got.requesters {
                    return Err(format!(
                        "incident {}: history lists requesters {:?}, the answer {:?}",
                        h.id, h.requesters, got.requesters
                    ));
                }
                if h.outcome.is_none() {
                    return Err(format!("incident {} is finished but has no outcome in the history", h.id));
                }
                let made = self.journal.calls_for(target).len();
                let listed = h.attempts().count();
                if listed != made {
                    return Err(format!(
                        "incident {} ({target}): the devices saw {made} calls, the history lists {listed} attempts",
                        h.id
                    ));
                }
            }
            let t = node("conf-merge")?;
            let only = f
                .history(&HistoryFilter::all().target(t.clone()))
                .await
                .map_err(|e| format!("history(target): {e}"))?;
            if only.is_empty() || only.iter().any(|r| r.target != t) {
                return Err(format!(
                    "history filtered on {t} gives targets {:?}",
                    only.iter().map(|r| r.target.to_string()).collect::<Vec<_>>()
                ));
            }
            Ok(())
        }
        .await;
        self.record_result(
            "fencer.history",
            "every incident is in the history with all its requesters, every device attempt and its outcome",
            result,
        );
    }

    async fn check_policy(&mut self, harness: &dyn FencerHarness) {
        let promise = "with a refusing policy, the answer is Refused and no device is touched";
        if !harness.supports_policy() {
            self.record(
                "fencer.policy_refusal",
                promise,
                CheckOutcome::Skip("the harness cannot install a policy".into()),
            );
            return;
        }
        let result = async {
            let f = harness.fencer_with_policy(Arc::new(RefuseAll)).await?;
            let t = node("conf-policy")?;
            self.register(f.as_ref(), self.device("conf-policy-dev", &[&t])?)
                .await?;
            match self.fence(f.as_ref(), &t, FenceAction::Reboot, 0).await? {
                Ok(rec) => {
                    return Err(format!(
                        "the policy refuses, yet record {} says fenced",
                        rec.id
                    ));
                }
                Err(e) if e.kind() != FenceErrorKind::Refused => {
                    return Err(format!("expected Refused, got {e}"));
                }
                Err(_) => {}
            }
            let calls = self.journal.calls_for(&t).len();
            if calls == 0 {
                Ok(())
            } else {
                Err(format!("the device was called {calls} times"))
            }
        }
        .await;
        self.record_result("fencer.policy_refusal", promise, result);
    }
}

const MERGING: &str = "N concurrent requests for one target and action cause one device call";
const MERGED: &str = "every merged requester gets the same record, which lists them all";

/// The policy of the refusal check.
struct RefuseAll;

#[async_trait]
impl FencingPolicy for RefuseAll {
    async fn check(&self, _request: &FenceRequest) -> Result<(), Refusal> {
        Err(Refusal::new(
            "conformance",
            "the suite's policy refuses every request",
        ))
    }
}

fn check_record(
    rec: &FenceRecord,
    target: &NodeName,
    action: FenceAction,
    requesters: usize,
) -> Result<(), String> {
    if rec.target != *target || rec.action != action {
        return Err(format!(
            "the record is about {} ({}), not {target} ({action})",
            rec.target, rec.action
        ));
    }
    if rec.requesters.len() != requesters {
        return Err(format!(
            "the record lists {} requesters, not {requesters}: {:?}",
            rec.requesters.len(),
            rec.requesters
        ));
    }
    Ok(())
}

/// All `n` answers carry one record, which lists every requester.
fn check_merged(records: &[FenceRecord], target: &NodeName, n: usize) -> Result<(), String> {
    let Some(first) = records.first() else {
        return Err("no answers".into());
    };
    if let Some(other) = records.iter().find(|r| r.id != first.id) {
        return Err(format!(
            "requesters got different records: {} and {}",
            first.id, other.id
        ));
    }
    check_record(first, target, FenceAction::Off, n)?;
    for i in 0..n {
        let r = requester(i)?;
        if !first.requesters.contains(&r) {
            return Err(format!("the record does not list requester {r}"));
        }
    }
    Ok(())
}

async fn fence_within(
    clock: &dyn Clock,
    limit: Duration,
    f: &dyn FencerAdmin,
    request: FenceRequest,
) -> Result<Result<FenceRecord, FenceError>, String> {
    let target = request.target.clone();
    // A little more than the request's own timeout: the fencer must answer TimedOut itself.
    let waited = limit.saturating_add(Duration::from_secs(5));
    timeout(clock, waited, f.fence(request))
        .await
        .ok_or_else(|| {
            format!(
                "fencing {target} did not answer within {} ms",
                ocf_core::millis::as_millis(waited)
            )
        })
}

/// Polls every future until all are done; the outputs in the order given.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *out = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
