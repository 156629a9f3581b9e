//! The reference fencer: a device registry, topology levels per target, per-target merging of
//! concurrent requests, timeouts, a bounded history and a policy hook.
//!
//! # How a request is handled
//!
//! 1. The [`FencingPolicy`] is asked first; a refusal touches no device.
//! 2. If an incident for the same target is in flight:
//!    - with the **same action**, the request *joins* it: its requester is added to the record
//!      and it receives the incident's result. The devices are not asked again.
//!    - with a **different action** (an `on` while a `reboot` runs), the request **waits** for
//!      that incident to end, then is handled as if it had just arrived. Refusing it would push
//!      a retry loop onto every client; running both at once would race the hardware.
//! 3. A request carrying an [`IncidentId`](ocf_fencing::IncidentId) that matches an incident
//!    which already *succeeded* (same target and action) receives that record at once: the
//!    node is not shot twice for one event. A failed incident is not reused: the node still
//!    needs fencing.
//! 4. Otherwise a new incident starts, in its own task: it carries on even if the requester
//!    that started it stops waiting.
//!
//! # Levels
//!
//! With a topology for the target, level 1 is tried, then level 2 if level 1 failed, and so on.
//! All devices of a level must succeed, in order. A `reboot` on a level of several devices (two
//! power supplies) is done as `off` on each, then `on` on each, so the node really loses power;
//! the level succeeds once every `off` did (a failed `on` is recorded, as Pacemaker does).
//! Without a topology, every registered device that can fence the target (by its host list) is
//! a level of its own, in registration order.
//!
//! # Time
//!
//! The request that starts an incident gives it its deadline (its timeout). Each device
//! operation gets the smaller of its device's timeout ([`LocalFencer::set_device_timeout`],
//! else [`FencerConfig::device_timeout`]) and what is left before the deadline. Every requester waits at most its own timeout; one that gives up gets
//! [`FenceError::TimedOut`] while the incident carries on for the others and ends in the history.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use ocf_core::NodeName;
use ocf_fencing::history::now_millis;
use ocf_fencing::{
    AllowAll, DeviceAction, DeviceAttempt, DeviceId, FenceAction, FenceDevice, FenceError, FenceId,
    FenceLevel, FenceRecord, FenceRequest, Fencer, FencingPolicy, HistoryFilter, LevelAttempt,
    Outcome,
};
use tokio::sync::watch;
use tokio::time::Instant;

/// Limits of a [`LocalFencer`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FencerConfig {
    /// How many records the history keeps; the oldest finished ones go first. Incidents in
    /// flight are never dropped. Rule of thumb: 500 (Pacemaker keeps a few hundred).
    pub history_limit: usize,
    /// The longest one device operation may take, whatever time the request has left.
    /// Default 60 s (a BMC power cycle takes 5 to 30 s).
    pub device_timeout: Duration,
    /// The longest a "can this device fence that node?" query may take (a dynamic host list
    /// runs the agent's `list`). Default 20 s.
    pub list_timeout: Duration,
}

impl Default for FencerConfig {
    fn default() -> Self {
        Self {
            history_limit: 500,
            device_timeout: Duration::from_secs(60),
            list_timeout: Duration::from_secs(20),
        }
    }
}

impl FencerConfig {
    /// Sets the history bound.
    #[must_use]
    pub fn history_limit(mut self, n: usize) -> Self {
        self.history_limit = n;
        self
    }

    /// Sets the per-device timeout.
    #[must_use]
    pub fn device_timeout(mut self, d: Duration) -> Self {
        self.device_timeout = d;
        self
    }
}

type Shared = Option<Result<FenceRecord, FenceError>>;

struct InFlight {
    id: FenceId,
    action: FenceAction,
    done: watch::Receiver<Shared>,
}

#[derive(Default)]
struct State {
    /// Registration order is the order devices are tried without a topology.
    devices: Vec<Arc<dyn FenceDevice>>,
    topology: HashMap<NodeName, Vec<FenceLevel>>,
    /// Per-device overrides of [`FencerConfig::device_timeout`].
    device_timeouts: HashMap<DeviceId, Duration>,
    in_flight: HashMap<NodeName, InFlight>,
    /// Oldest first; holds the in-flight records too.
    history: VecDeque<FenceRecord>,
    next_id: FenceId,
}

impl State {
    fn record_mut(&mut self, id: FenceId) -> Option<&mut FenceRecord> {
        self.history.iter_mut().rev().find(|r| r.id == id)
    }

    fn trim(&mut self, limit: usize) {
        while self.history.len() > limit {
            match self.history.iter().position(|r| !r.is_pending()) {
                Some(i) => {
                    self.history.remove(i);
                }
                None => break,
            }
        }
    }
}

struct Inner {
    state: Mutex<State>,
    policy: Arc<dyn FencingPolicy>,
    config: FencerConfig,
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every critical section leaves the state consistent before it could panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The reference [`Fencer`]. Cheap to clone: clones share one registry and history.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ocf_fencing::{FenceAction, FenceRequest, Fencer};
/// use ocf_ref::fencing::fencer::LocalFencer;
/// use ocf_ref::fencing::native::NullDevice;
/// let fencer = LocalFencer::new();
/// let device = Arc::new(NullDevice::new("null".parse().unwrap(), ["n3".parse().unwrap()]));
/// fencer.register_device(device.clone()).await.unwrap();
/// let req = |who: &str| FenceRequest::new("n3".parse().unwrap(), FenceAction::Reboot, who.parse().unwrap());
/// // Two clients at once: one action on the device, one record for both.
/// let (a, b) = tokio::join!(fencer.fence(req("pacemaker@n1")), fencer.fence(req("slurmctld@n2")));
/// let (a, b) = (a.unwrap(), b.unwrap());
/// assert_eq!(a.id, b.id);
/// assert_eq!(a.requesters.len(), 2);
/// assert_eq!(device.fence_calls(), 1);
/// # });
/// ```
#[derive(Clone)]
pub struct LocalFencer {
    inner: Arc<Inner>,
}

impl fmt::Debug for LocalFencer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.lock();
        f.debug_struct("LocalFencer")
            .field(
                "devices",
                &state
                    .devices
                    .iter()
                    .map(|d| d.id().clone())
                    .collect::<Vec<_>>(),
            )
            .field("in_flight", &state.in_flight.len())
            .field("history", &state.history.len())
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Default for LocalFencer {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalFencer {
    /// A fencer with the default limits that allows every request ([`AllowAll`]).
    pub fn new() -> Self {
        Self::with(FencerConfig::default(), Arc::new(AllowAll))
    }

    /// A fencer with these limits and this policy.
    pub fn with(config: FencerConfig, policy: Arc<dyn FencingPolicy>) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                policy,
                config,
            }),
        }
    }

    /// The targets with an incident in flight, and its action.
    pub fn in_flight(&self) -> Vec<(NodeName, FenceAction)> {
        let state = self.inner.lock();
        let mut v: Vec<_> = state
            .in_flight
            .iter()
            .map(|(t, f)| (t.clone(), f.action))
            .collect();
        v.sort();
        v
    }

    /// Gives one device its own operation timeout (Pacemaker's `pcmk_reboot_timeout` and
    /// friends), or with `None` returns it to [`FencerConfig::device_timeout`]. Applies to
    /// incidents that start afterwards.
    pub fn set_device_timeout(&self, id: &DeviceId, timeout: Option<Duration>) {
        let mut state = self.inner.lock();
        match timeout {
            Some(t) => {
                state.device_timeouts.insert(id.clone(), t);
            }
            None => {
                state.device_timeouts.remove(id);
            }
        }
    }

    /// Looks up a registered device.
    pub fn device(&self, id: &DeviceId) -> Option<Arc<dyn FenceDevice>> {
        self.inner
            .lock()
            .devices
            .iter()
            .find(|d| d.id() == id)
            .cloned()
    }

    async fn wait(
        request: &FenceRequest,
        deadline: Instant,
        mut done: watch::Receiver<Shared>,
    ) -> Result<FenceRecord, FenceError> {
        let timed_out = || FenceError::TimedOut {
            target: request.target.clone(),
            action: request.action,
            timeout_ms: ocf_core::millis::as_millis(request.timeout),
        };
        match tokio::time::timeout_at(deadline, done.wait_for(Option::is_some)).await {
            Err(_) => Err(timed_out()),
            Ok(Err(_)) => Err(FenceError::Unavailable {
                reason: format!(
                    "the incident fencing {} ended without a result",
                    request.target
                ),
            }),
            Ok(Ok(shared)) => shared.clone().unwrap_or_else(|| Err(timed_out())),
        }
    }
}

/// What a requester does after looking at the state.
enum Next {
    Wait(watch::Receiver<Shared>),
    WaitThenRetry(watch::Receiver<Shared>),
    Done(Result<FenceRecord, FenceError>),
}

fn result_of(record: FenceRecord) -> Result<FenceRecord, FenceError> {
    match &record.outcome {
        Some(Outcome::Succeeded) => Ok(record),
        Some(Outcome::Failed { reason }) => Err(FenceError::Failed {
            target: record.target.clone(),
            action: record.action,
            reason: reason.clone(),
            record: Box::new(record),
        }),
        Some(Outcome::TimedOut { after_ms }) => Err(FenceError::Failed {
            target: record.target.clone(),
            action: record.action,
            reason: format!("the incident ran out of time after {after_ms} ms"),
            record: Box::new(record),
        }),
        // Future outcomes: treat anything not known as a failure, never as a success.
        _ => Err(FenceError::Failed {
            target: record.target.clone(),
            action: record.action,
            reason: "unknown outcome".into(),
            record: Box::new(record),
        }),
    }
}

#[async_trait]
impl Fencer for LocalFencer {
    async fn register_device(&self, device: Arc<dyn FenceDevice>) -> Result<(), FenceError> {
        let mut state = self.inner.lock();
        if state.devices.iter().any(|d| d.id() == device.id()) {
            return Err(FenceError::DuplicateDevice {
                device: device.id().clone(),
            });
        }
        tracing::info!(device = %device.id(), "fence device registered");
        state.devices.push(device);
        Ok(())
    }

    async fn unregister_device(&self, id: &DeviceId) -> Result<(), FenceError> {
        let mut state = self.inner.lock();
        let before = state.devices.len();
        state.devices.retain(|d| d.id() != id);
        if state.devices.len() == before {
            return Err(FenceError::UnknownDevice { device: id.clone() });
        }
        Ok(())
    }

    async fn devices(&self) -> Result<Vec<DeviceId>, FenceError> {
        Ok(self
            .inner
            .lock()
            .devices
            .iter()
            .map(|d| d.id().clone())
            .collect())
    }

    async fn set_topology(
        &self,
        target: &NodeName,
        levels: Vec<FenceLevel>,
    ) -> Result<(), FenceError> {
        if let Some(i) = levels.iter().position(|l| l.devices.is_empty()) {
            return Err(FenceError::Config {
                device: format!("topology of {target}"),
                reason: format!("level {} has no devices; remove it or name one", i + 1),
            });
        }
        let mut state = self.inner.lock();
        if levels.is_empty() {
            state.topology.remove(target);
        } else {
            state.topology.insert(target.clone(), levels);
        }
        Ok(())
    }

    async fn topology(&self, target: &NodeName) -> Result<Vec<FenceLevel>, FenceError> {
        Ok(self
            .inner
            .lock()
            .topology
            .get(target)
            .cloned()
            .unwrap_or_default())
    }

    async fn fence(&self, request: FenceRequest) -> Result<FenceRecord, FenceError> {
        // A timeout read from JSON may be absurd (u64::MAX ms): cap it instead of overflowing.
        let now = Instant::now();
        let deadline = now
            .checked_add(request.timeout)
            .unwrap_or_else(|| now + Duration::from_secs(10 * 365 * 86_400));
        if let Err(refusal) = self.inner.policy.check(&request).await {
            tracing::warn!(target = %request.target, requester = %request.requester, %refusal, "fencing refused");
            return Err(FenceError::Refused {
                target: request.target.clone(),
                refusal,
            });
        }
        loop {
            let next = {
                let mut state = self.inner.lock();
                let joinable = state
                    .in_flight
                    .get(&request.target)
                    .map(|f| (f.id, f.action, f.done.clone()));
                if let Some((id, action, done)) = joinable {
                    if action == request.action {
                        if let Some(r) = state.record_mut(id) {
                            r.requesters.push(request.requester.clone());
                        }
                        tracing::info!(target = %request.target, requester = %request.requester, incident = id, "joined the fencing in flight");
                        Next::Wait(done)
                    } else {
                        Next::WaitThenRetry(done)
                    }
                } else if let Some(r) = request.incident.as_ref().and_then(|inc| {
                    state.history.iter_mut().rev().find(|r| {
                        r.target == request.target
                            && r.action == request.action
                            && r.incident.as_ref() == Some(inc)
                            && r.succeeded()
                    })
                }) {
                    if !r.requesters.contains(&request.requester) {
                        r.requesters.push(request.requester.clone());
                    }
                    Next::Done(Ok(r.clone()))
                } else {
                    let id = state.next_id;
                    state.next_id += 1;
                    let record = FenceRecord::start(
                        id,
                        request.target.clone(),
                        request.action,
                        request.requester.clone(),
                        request.incident.clone(),
                    );
                    state.history.push_back(record);
                    let (tx, rx) = watch::channel(None);
                    state.in_flight.insert(
                        request.target.clone(),
                        InFlight {
                            id,
                            action: request.action,
                            done: rx.clone(),
                        },
                    );
                    let plan = plan_snapshot(&state, &request.target);
                    let timeouts = Timeouts {
                        default: self.inner.config.device_timeout,
                        per_device: state.device_timeouts.clone(),
                    };
                    state.trim(self.inner.config.history_limit);
                    drop(state);
                    tracing::info!(target = %request.target, action = %request.action, requester = %request.requester, incident = id, "fencing started");
                    let guard = Completion {
                        inner: self.inner.clone(),
                        target: request.target.clone(),
                        id,
                        tx: Some(tx),
                    };
                    tokio::spawn(run_incident(
                        guard,
                        request.clone(),
                        deadline,
                        plan,
                        timeouts,
                    ));
                    Next::Wait(rx)
                }
            };
            match next {
                Next::Done(result) => return result,
                Next::Wait(rx) => return Self::wait(&request, deadline, rx).await,
                Next::WaitThenRetry(mut rx) => {
                    if tokio::time::timeout_at(deadline, rx.wait_for(Option::is_some))
                        .await
                        .is_err()
                    {
                        return Err(FenceError::TimedOut {
                            target: request.target.clone(),
                            action: request.action,
                            timeout_ms: ocf_core::millis::as_millis(request.timeout),
                        });
                    }
                }
            }
        }
    }

    async fn history(&self, filter: &HistoryFilter) -> Result<Vec<FenceRecord>, FenceError> {
        let state = self.inner.lock();
        let mut out: Vec<FenceRecord> = state
            .history
            .iter()
            .filter(|r| filter.matches(r))
            .cloned()
            .collect();
        if let Some(limit) = filter.limit {
            let skip = out.len().saturating_sub(limit);
            out.drain(..skip);
        }
        Ok(out)
    }
}

/// One level's devices by id, resolved to the registered device when there is one.
type Level = Vec<(DeviceId, Option<Arc<dyn FenceDevice>>)>;

/// The devices an incident will try, taken when it starts.
enum Plan {
    /// Configured levels: device ids, resolved (or not) to registered devices.
    Topology(Vec<Level>),
    /// No topology: every registered device, to be asked whether it can fence the target.
    Any(Vec<Arc<dyn FenceDevice>>),
}

/// The time each device operation may take: the device's own setting, else the default.
struct Timeouts {
    default: Duration,
    per_device: HashMap<DeviceId, Duration>,
}

impl Timeouts {
    fn of(&self, id: &DeviceId) -> Duration {
        self.per_device.get(id).copied().unwrap_or(self.default)
    }
}

fn plan_snapshot(state: &State, target: &NodeName) -> Plan {
    match state.topology.get(target) {
        Some(levels) => Plan::Topology(
            levels
                .iter()
                .map(|l| {
                    l.devices
                        .iter()
                        .map(|id| {
                            let dev = state.devices.iter().find(|d| d.id() == id).cloned();
                            (id.clone(), dev)
                        })
                        .collect()
                })
                .collect(),
        ),
        None => Plan::Any(state.devices.clone()),
    }
}

/// Finishes an incident exactly once: with its result, or (if the task died) as failed, so a
/// target is never left "in flight" forever.
struct Completion {
    inner: Arc<Inner>,
    target: NodeName,
    id: FenceId,
    tx: Option<watch::Sender<Shared>>,
}

impl Completion {
    fn update_levels(&self, levels: &[LevelAttempt]) {
        let mut state = self.inner.lock();
        if let Some(r) = state.record_mut(self.id) {
            r.levels = levels.to_vec();
        }
    }

    fn finish(&mut self, levels: Vec<LevelAttempt>, outcome: Outcome, error: Option<FenceError>) {
        let Some(tx) = self.tx.take() else { return };
        let mut state = self.inner.lock();
        let record = state.record_mut(self.id).map(|r| {
            r.levels = levels;
            r.outcome = Some(outcome);
            r.ended_ms = Some(now_millis());
            r.clone()
        });
        if state
            .in_flight
            .get(&self.target)
            .is_some_and(|f| f.id == self.id)
        {
            state.in_flight.remove(&self.target);
        }
        state.trim(self.inner.config.history_limit);
        drop(state);
        let result = match (error, record) {
            (Some(e), _) => Err(e),
            (None, Some(r)) => result_of(r),
            (None, None) => Err(FenceError::Unavailable {
                reason: format!("the record of incident {} was lost", self.id),
            }),
        };
        match &result {
            Ok(_) => tracing::info!(target = %self.target, incident = self.id, "fencing succeeded"),
            Err(e) => {
                tracing::error!(target = %self.target, incident = self.id, error = %e, "fencing failed");
            }
        }
        // Nobody listening is fine: the result is in the history.
        let _ = tx.send(Some(result));
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if self.tx.is_some() {
            self.finish(
                Vec::new(),
                Outcome::Failed {
                    reason: "the fencing task stopped unexpectedly".into(),
                },
                None,
            );
        }
    }
}

async fn run_incident(
    mut done: Completion,
    request: FenceRequest,
    deadline: Instant,
    plan: Plan,
    timeouts: Timeouts,
) {
    let config = done.inner.config.clone();
    let target = &request.target;
    let levels: Vec<Level> = match plan {
        Plan::Topology(levels) => levels,
        Plan::Any(devices) => {
            let mut capable = Vec::new();
            for d in devices {
                let left = deadline.saturating_duration_since(Instant::now());
                let limit = config.list_timeout.min(left);
                match tokio::time::timeout(limit, d.can_fence(target, limit)).await {
                    Ok(Ok(true)) => capable.push(vec![(d.id().clone(), Some(d))]),
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(device = %d.id(), %target, error = %e, "cannot tell whether the device can fence the node");
                    }
                    Err(_) => {
                        tracing::warn!(device = %d.id(), %target, "asking whether the device can fence the node timed out");
                    }
                }
            }
            capable
        }
    };
    if levels.is_empty() {
        let e = FenceError::NoDevice {
            target: target.clone(),
        };
        done.finish(
            Vec::new(),
            Outcome::Failed {
                reason: e.to_string(),
            },
            Some(e),
        );
        return;
    }

    let mut attempts_by_level: Vec<LevelAttempt> = Vec::new();
    let mut last_failure = String::new();
    for (i, level) in levels.iter().enumerate() {
        let number = u32::try_from(i + 1).unwrap_or(u32::MAX);
        if Instant::now() >= deadline {
            break;
        }
        let (attempts, ok) = run_level(level, target, request.action, deadline, &timeouts).await;
        if let Some(reason) = attempts.iter().rev().find_map(|a| match &a.outcome {
            Outcome::Failed { reason } => Some(format!("{}: {reason}", a.device)),
            Outcome::TimedOut { after_ms } => {
                Some(format!("{}: timed out after {after_ms} ms", a.device))
            }
            _ => None,
        }) {
            last_failure = reason;
        }
        attempts_by_level.push(LevelAttempt::new(number, attempts, ok));
        done.update_levels(&attempts_by_level);
        if ok {
            done.finish(attempts_by_level, Outcome::Succeeded, None);
            return;
        }
    }
    let outcome = if Instant::now() >= deadline {
        Outcome::TimedOut {
            after_ms: ocf_core::millis::as_millis(request.timeout),
        }
    } else {
        Outcome::Failed {
            reason: if last_failure.is_empty() {
                "no level succeeded".into()
            } else {
                last_failure
            },
        }
    };
    done.finish(attempts_by_level, outcome, None);
}

/// Runs one level; returns its attempts and whether it succeeded.
async fn run_level(
    level: &[(DeviceId, Option<Arc<dyn FenceDevice>>)],
    target: &NodeName,
    action: FenceAction,
    deadline: Instant,
    timeouts: &Timeouts,
) -> (Vec<DeviceAttempt>, bool) {
    let mut attempts = Vec::new();
    if action == FenceAction::Reboot && level.len() > 1 {
        // Every supply off before any comes back, or the node never loses power.
        for (id, dev) in level {
            let a = attempt(
                id,
                dev.as_ref(),
                target,
                FenceAction::Off,
                deadline,
                timeouts,
            )
            .await;
            let ok = a.outcome.is_success();
            attempts.push(a);
            if !ok {
                return (attempts, false);
            }
        }
        for (id, dev) in level {
            let a = attempt(
                id,
                dev.as_ref(),
                target,
                FenceAction::On,
                deadline,
                timeouts,
            )
            .await;
            if !a.outcome.is_success() {
                tracing::warn!(device = %id, %target, "power on after a multi-device reboot failed; the node is fenced but stays off");
            }
            attempts.push(a);
        }
        return (attempts, true);
    }
    for (id, dev) in level {
        let a = attempt(id, dev.as_ref(), target, action, deadline, timeouts).await;
        let ok = a.outcome.is_success();
        attempts.push(a);
        if !ok {
            return (attempts, false);
        }
    }
    (attempts, true)
}

async fn attempt(
    id: &DeviceId,
    device: Option<&Arc<dyn FenceDevice>>,
    target: &NodeName,
    action: FenceAction,
    deadline: Instant,
    timeouts: &Timeouts,
) -> DeviceAttempt {
    let started = now_millis();
    let device_action = DeviceAction::from(action);
    let Some(device) = device else {
        return DeviceAttempt::new(
            id.clone(),
            device_action,
            Outcome::Failed {
                reason: format!("device {id} is not registered"),
            },
            started,
            started,
        );
    };
    let limit = timeouts
        .of(id)
        .min(deadline.saturating_duration_since(Instant::now()));
    // A device that ignores its timeout still cannot hold the incident: some grace for it to
    // stop what it started (the process runner's SIGTERM..SIGKILL of an agent's group takes
    // up to its kill grace), then we stop waiting.
    let grace = Duration::from_secs(2);
    let outcome =
        match tokio::time::timeout(limit + grace, device.fence(target, action, limit)).await {
            Ok(Ok(())) => Outcome::Succeeded,
            Ok(Err(FenceError::DeviceTimedOut { timeout_ms, .. })) => Outcome::TimedOut {
                after_ms: timeout_ms,
            },
            Ok(Err(e)) => Outcome::Failed {
                reason: e.to_string(),
            },
            Err(_) => Outcome::TimedOut {
                after_ms: ocf_core::millis::as_millis(limit),
            },
        };
    DeviceAttempt::new(id.clone(), device_action, outcome, started, now_millis())
}
