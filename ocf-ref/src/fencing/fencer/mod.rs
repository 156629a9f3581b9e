//! The reference fencer: a device registry, topology levels per target, per-target merging of
//! concurrent requests, timeouts, a bounded history and a policy hook.
//!
//! # How a request is handled
//!
//! The decision is `admit` (in the private `admit` module), a synchronous function of the
//! fencer's state, unit-tested without a runtime; the waiting and the devices are async.
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
//! else [`FencerConfig::device_timeout`]) and what is left before the deadline. Every requester
//! waits at most its own timeout; one that gives up gets
//! [`FenceError::TimedOut`] while the incident carries on for the others and ends in the history.
//!
//! # Events
//!
//! Every incident it starts is announced to subscribers as `Started`, then `Finished`. A
//! subscriber that falls more than [`FencerConfig::event_buffer`] events behind gets
//! [`FenceError::Lagged`] and carries on after the gap; the stream ends (`Ok(None)`) once the
//! last clone of the fencer is dropped and its incidents have ended.

mod admit;
mod incident;

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use ocf_core::NodeName;
use ocf_fencing::{
    AllowAll, DeviceId, FenceAction, FenceDevice, FenceError, FenceEvent, FenceEventStream,
    FenceRecord, FenceRequest, Fencer, FencerAdmin, FencingPolicy, HistoryFilter, TopologyLevel,
};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use admit::{Admission, Shared, Start, State};
use incident::{Completion, run_incident};

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
    /// How many events a subscriber may fall behind before it misses some
    /// ([`FenceError::Lagged`]), rounded up to a power of two. Two events per incident; rule
    /// of thumb: 1024 (the default), far more than a cluster fences between two reads.
    pub event_buffer: usize,
}

impl Default for FencerConfig {
    fn default() -> Self {
        Self {
            history_limit: 500,
            device_timeout: Duration::from_secs(60),
            list_timeout: Duration::from_secs(20),
            event_buffer: 1024,
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

    /// Sets how far behind a subscriber may fall (at least 1).
    #[must_use]
    pub fn event_buffer(mut self, n: usize) -> Self {
        self.event_buffer = n.max(1);
        self
    }

    /// Sets the per-device timeout.
    #[must_use]
    pub fn device_timeout(mut self, d: Duration) -> Self {
        self.device_timeout = d;
        self
    }
}

struct Inner {
    state: Mutex<State>,
    policy: Arc<dyn FencingPolicy>,
    config: FencerConfig,
    /// Dropped with the last handle and the last incident: subscribers then see the end.
    events: broadcast::Sender<FenceEvent>,
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
/// use ocf_fencing::{FenceAction, FenceRequest, Fencer, FencerAdmin, IncidentId};
/// use ocf_ref::fencing::fencer::LocalFencer;
/// use ocf_ref::fencing::devices::native::NullDevice;
/// let fencer = LocalFencer::new();
/// let device = Arc::new(NullDevice::new("null".parse().unwrap(), ["n3".parse().unwrap()]));
/// fencer.register_device(device.clone()).await.unwrap();
/// let incident = IncidentId::new("n3@view-7").unwrap();
/// let req = |who: &str| {
///     FenceRequest::new("n3".parse().unwrap(), FenceAction::Reboot, who.parse().unwrap())
///         .with_incident(incident.clone())
/// };
/// // Two clients of one incident: one action on the device, one record for both, whether the
/// // second joins the first while it runs or arrives after it finished.
/// let (a, b) = tokio::join!(fencer.fence(req("pacemaker@n1")), fencer.fence(req("slurmctld@n2")));
/// let (a, b) = (a.unwrap(), b.unwrap());
/// assert_eq!(a.id, b.id, "{a:?} {b:?}");
/// assert_eq!(device.fence_calls(), 1, "{a:?}");
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
        let (events, _) = broadcast::channel(config.event_buffer.max(1));
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                policy,
                config,
                events,
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

    /// Runs a new incident in its own task (it carries on if its requester stops waiting).
    fn spawn(&self, start: Start, request: &FenceRequest, deadline: Instant) {
        let Start {
            id,
            record,
            tx,
            plan,
            timeouts,
            ..
        } = start;
        tracing::info!(target = %request.target, action = %request.action, requester = %request.requester, incident = id, "fencing started");
        // Nobody subscribed is fine.
        let _ = self.inner.events.send(FenceEvent::Started {
            record: Box::new(record),
        });
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
    }
}

/// The request's deadline. A timeout read from JSON may be absurd (`u64::MAX` ms): capped at
/// ten years instead of overflowing.
fn deadline_of(request: &FenceRequest) -> Instant {
    let now = Instant::now();
    now.checked_add(request.timeout)
        .unwrap_or_else(|| now + Duration::from_secs(10 * 365 * 86_400))
}

fn timed_out(request: &FenceRequest) -> FenceError {
    FenceError::TimedOut {
        target: request.target.clone(),
        action: request.action,
        timeout_ms: ocf_core::millis::as_millis(request.timeout),
    }
}

/// Waits until `done` holds an incident's result, or the deadline passes.
async fn wait(
    request: &FenceRequest,
    deadline: Instant,
    mut done: watch::Receiver<Shared>,
) -> Result<FenceRecord, FenceError> {
    match tokio::time::timeout_at(deadline, done.wait_for(Option::is_some)).await {
        Err(_) => Err(timed_out(request)),
        Ok(Err(_)) => Err(FenceError::unavailable(format!(
            "the incident fencing {} ended without a result",
            request.target
        ))),
        Ok(Ok(shared)) => shared.clone().unwrap_or_else(|| Err(timed_out(request))),
    }
}

#[async_trait]
impl Fencer for LocalFencer {
    async fn fence(&self, request: FenceRequest) -> Result<FenceRecord, FenceError> {
        let deadline = deadline_of(&request);
        let verdict = self.inner.policy.check(&request).await;
        loop {
            let admission = self.inner.lock().admit(
                &request,
                &verdict,
                self.inner.config.device_timeout,
                self.inner.config.history_limit,
            );
            match admission {
                Admission::Refused(e) => {
                    tracing::warn!(target = %request.target, requester = %request.requester, error = %e, "fencing refused");
                    return Err(e);
                }
                Admission::Answered(record) => return Ok(record),
                Admission::Joined { id, done } => {
                    tracing::info!(target = %request.target, requester = %request.requester, incident = id, "joined the fencing in flight");
                    return wait(&request, deadline, done).await;
                }
                Admission::Started(start) => {
                    let done = start.rx.clone();
                    self.spawn(*start, &request, deadline);
                    return wait(&request, deadline, done).await;
                }
                Admission::Queued { mut done } => {
                    // Another action is in flight for the target: once it ends, decide again.
                    tokio::time::timeout_at(deadline, done.wait_for(Option::is_some))
                        .await
                        .map_err(|_| timed_out(&request))?
                        .ok();
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

    async fn subscribe(&self) -> Result<Box<dyn FenceEventStream>, FenceError> {
        Ok(Box::new(LocalEvents {
            rx: self.inner.events.subscribe(),
        }))
    }
}

/// A subscription to a [`LocalFencer`]'s events.
struct LocalEvents {
    rx: broadcast::Receiver<FenceEvent>,
}

#[async_trait]
impl FenceEventStream for LocalEvents {
    async fn next_event(&mut self) -> Result<Option<FenceEvent>, FenceError> {
        match self.rx.recv().await {
            Ok(event) => Ok(Some(event)),
            Err(broadcast::error::RecvError::Closed) => Ok(None),
            Err(broadcast::error::RecvError::Lagged(missed)) => Err(FenceError::Lagged { missed }),
        }
    }
}

#[async_trait]
impl FencerAdmin for LocalFencer {
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
        levels: Vec<TopologyLevel>,
    ) -> Result<(), FenceError> {
        if let Some(i) = levels.iter().position(|l| l.devices.is_empty()) {
            return Err(FenceError::Topology {
                target: target.clone(),
                level: u32::try_from(i + 1).ok(),
                reason: "the level has no devices; remove it or name one".into(),
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

    async fn topology(&self, target: &NodeName) -> Result<Vec<TopologyLevel>, FenceError> {
        Ok(self
            .inner
            .lock()
            .topology
            .get(target)
            .cloned()
            .unwrap_or_default())
    }
}
