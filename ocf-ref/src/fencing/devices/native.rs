//! Native devices, no hardware: a null device, an operator-acknowledged manual device, and a
//! simulated device with scripted latencies and failures for tests and benchmarks.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use ocf_core::NodeName;
use ocf_fencing::{
    DeviceId, DeviceMetadata, FenceAction, FenceDevice, FenceError, PowerState, Targets,
};
use tokio::sync::{Notify, oneshot};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The data behind these locks stays consistent at every await-free step, so a panic in
    // another thread leaves nothing half-done: carry on with it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn listed(id: &DeviceId, targets: &Targets, target: &NodeName) -> Result<(), FenceError> {
    if targets.plug_for(target).is_some() {
        Ok(())
    } else {
        Err(FenceError::NotATarget {
            device: id.clone(),
            target: target.clone(),
        })
    }
}

fn native_metadata(name: &str, shortdesc: &str) -> DeviceMetadata {
    let mut md = DeviceMetadata::new(name);
    shortdesc.clone_into(&mut md.shortdesc);
    md.actions = [
        "reboot", "off", "on", "status", "list", "monitor", "metadata",
    ]
    .map(str::to_owned)
    .to_vec();
    md
}

/// A device that succeeds at once for every node in its host list and remembers the power
/// state it "set" (cluster-glue's `null`). For tests and for trying a configuration out.
pub struct NullDevice {
    id: DeviceId,
    targets: Targets,
    power: Mutex<HashMap<NodeName, PowerState>>,
    calls: AtomicU64,
}

impl fmt::Debug for NullDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NullDevice")
            .field("id", &self.id)
            .field("targets", &self.targets)
            .finish_non_exhaustive()
    }
}

impl NullDevice {
    /// A null device for `hosts`.
    pub fn new(id: DeviceId, hosts: impl IntoIterator<Item = NodeName>) -> Self {
        Self {
            id,
            targets: Targets::hosts(hosts),
            power: Mutex::new(HashMap::new()),
            calls: AtomicU64::new(0),
        }
    }

    /// How many fence actions it has been asked for.
    pub fn fence_calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl FenceDevice for NullDevice {
    fn id(&self) -> &DeviceId {
        &self.id
    }
    fn targets(&self) -> &Targets {
        &self.targets
    }
    async fn metadata(&self, _timeout: Duration) -> Result<DeviceMetadata, FenceError> {
        Ok(native_metadata(
            "null",
            "Null device: always succeeds, for testing",
        ))
    }
    async fn list_targets(&self, _timeout: Duration) -> Result<Vec<NodeName>, FenceError> {
        Ok(self.targets.configured().unwrap_or_default())
    }
    async fn fence(
        &self,
        target: &NodeName,
        action: FenceAction,
        _timeout: Duration,
    ) -> Result<(), FenceError> {
        listed(&self.id, &self.targets, target)?;
        self.calls.fetch_add(1, Ordering::Relaxed);
        let state = if action == FenceAction::Off {
            PowerState::Off
        } else {
            PowerState::On
        };
        lock(&self.power).insert(target.clone(), state);
        Ok(())
    }
    async fn status(
        &self,
        target: &NodeName,
        _timeout: Duration,
    ) -> Result<PowerState, FenceError> {
        listed(&self.id, &self.targets, target)?;
        Ok(lock(&self.power)
            .get(target)
            .copied()
            .unwrap_or(PowerState::On))
    }
    async fn monitor(&self, _timeout: Duration) -> Result<(), FenceError> {
        Ok(())
    }
}

/// A fence that waits for a person: the fence "succeeds" only when an operator, having cut
/// the node's power by hand, acknowledges it (like `meatware` and `fence_ack_manual`).
///
/// Clones share their state: keep one to [`ManualDevice::acknowledge`] while the fencer holds
/// another.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::time::Duration;
/// use ocf_fencing::{FenceAction, FenceDevice};
/// use ocf_ref::fencing::devices::native::ManualDevice;
/// let dev = ManualDevice::new("meat".parse().unwrap(), ["n2".parse().unwrap()]);
/// let operator = dev.clone();
/// let n2 = "n2".parse().unwrap();
/// let fence = tokio::spawn(async move {
///     dev.fence(&n2, FenceAction::Reboot, Duration::from_secs(60)).await
/// });
/// operator.wait_pending().await;
/// assert!(operator.acknowledge(&"n2".parse().unwrap()));
/// fence.await.unwrap().unwrap();
/// # });
/// ```
#[derive(Clone)]
pub struct ManualDevice {
    inner: Arc<ManualInner>,
}

struct ManualInner {
    id: DeviceId,
    targets: Targets,
    waiting: Mutex<HashMap<NodeName, Vec<oneshot::Sender<()>>>>,
    changed: Notify,
}

impl fmt::Debug for ManualDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualDevice")
            .field("id", &self.inner.id)
            .field("pending", &self.pending())
            .finish_non_exhaustive()
    }
}

impl ManualDevice {
    /// A manual device for `hosts`.
    pub fn new(id: DeviceId, hosts: impl IntoIterator<Item = NodeName>) -> Self {
        Self {
            inner: Arc::new(ManualInner {
                id,
                targets: Targets::hosts(hosts),
                waiting: Mutex::new(HashMap::new()),
                changed: Notify::new(),
            }),
        }
    }

    /// The nodes an operator is being asked to fence, sorted.
    pub fn pending(&self) -> Vec<NodeName> {
        let mut v: Vec<_> = lock(&self.inner.waiting)
            .iter()
            .filter(|(_, w)| !w.is_empty())
            .map(|(n, _)| n.clone())
            .collect();
        v.sort();
        v
    }

    /// Waits until at least one fence waits for acknowledgement.
    pub async fn wait_pending(&self) {
        loop {
            let notified = self.inner.changed.notified();
            if !self.pending().is_empty() {
                return;
            }
            notified.await;
        }
    }

    /// The operator confirms `target` is down: every fence of it waiting now succeeds.
    /// Returns whether any was waiting.
    pub fn acknowledge(&self, target: &NodeName) -> bool {
        let waiters = lock(&self.inner.waiting).remove(target).unwrap_or_default();
        let any = !waiters.is_empty();
        for w in waiters {
            let _ = w.send(());
        }
        if any {
            tracing::info!(device = %self.inner.id, %target, "operator acknowledged the fence");
        }
        any
    }
}

#[async_trait]
impl FenceDevice for ManualDevice {
    fn id(&self) -> &DeviceId {
        &self.inner.id
    }
    fn targets(&self) -> &Targets {
        &self.inner.targets
    }
    async fn metadata(&self, _timeout: Duration) -> Result<DeviceMetadata, FenceError> {
        Ok(native_metadata(
            "manual",
            "Manual fencing: waits for an operator's acknowledgement",
        ))
    }
    async fn list_targets(&self, _timeout: Duration) -> Result<Vec<NodeName>, FenceError> {
        Ok(self.inner.targets.configured().unwrap_or_default())
    }
    async fn fence(
        &self,
        target: &NodeName,
        action: FenceAction,
        timeout: Duration,
    ) -> Result<(), FenceError> {
        listed(&self.inner.id, &self.inner.targets, target)?;
        let (tx, rx) = oneshot::channel();
        lock(&self.inner.waiting)
            .entry(target.clone())
            .or_default()
            .push(tx);
        self.inner.changed.notify_waiters();
        tracing::warn!(device = %self.inner.id, %target, %action, "waiting for an operator to cut power and acknowledge");
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(FenceError::Device {
                device: self.inner.id.clone(),
                action: action.into(),
                target: Some(target.clone()),
                reason: "the acknowledgement was withdrawn".into(),
                source: None,
            }),
            Err(_) => {
                // Forget our closed waiter so `pending` stays truthful.
                let mut waiting = lock(&self.inner.waiting);
                if let Some(w) = waiting.get_mut(target) {
                    w.retain(|s| !s.is_closed());
                    if w.is_empty() {
                        waiting.remove(target);
                    }
                }
                Err(FenceError::DeviceTimedOut {
                    device: self.inner.id.clone(),
                    action: action.into(),
                    target: Some(target.clone()),
                    timeout_ms: ocf_core::millis::as_millis(timeout),
                })
            }
        }
    }
    /// An operator's device cannot read power; it still refuses nodes it does not serve.
    async fn status(
        &self,
        target: &NodeName,
        _timeout: Duration,
    ) -> Result<PowerState, FenceError> {
        listed(&self.inner.id, &self.inner.targets, target)?;
        Ok(PowerState::Unknown)
    }
    async fn monitor(&self, _timeout: Duration) -> Result<(), FenceError> {
        Ok(())
    }
}

/// What a [`SimulatedDevice`] does on one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// How long the call takes (on tokio's clock, so `tokio::time::pause` makes it free).
    pub latency: Duration,
    /// Whether it succeeds.
    pub succeed: bool,
}

impl Step {
    /// A call that succeeds after `latency`.
    pub const fn ok(latency: Duration) -> Self {
        Self {
            latency,
            succeed: true,
        }
    }

    /// A call that fails after `latency`.
    pub const fn fail(latency: Duration) -> Self {
        Self {
            latency,
            succeed: false,
        }
    }
}

/// One call a [`SimulatedDevice`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimCall {
    /// The call's number on this device, from 0.
    pub seq: u64,
    /// The node.
    pub target: NodeName,
    /// The action.
    pub action: FenceAction,
}

type Plan = dyn Fn(u64, &NodeName, FenceAction) -> Step + Send + Sync;

/// A device with scripted behaviour, for tests and benchmarks: each fence call takes the
/// latency and has the result the plan gives for its call number, and every call is counted
/// and logged.
pub struct SimulatedDevice {
    id: DeviceId,
    targets: Targets,
    plan: Box<Plan>,
    calls: Mutex<Vec<SimCall>>,
    seq: AtomicU64,
}

impl fmt::Debug for SimulatedDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatedDevice")
            .field("id", &self.id)
            .field("calls", &self.seq.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl SimulatedDevice {
    /// A device for `hosts` whose `n`th fence call does what `plan(n, target, action)` says.
    pub fn new(
        id: DeviceId,
        hosts: impl IntoIterator<Item = NodeName>,
        plan: impl Fn(u64, &NodeName, FenceAction) -> Step + Send + Sync + 'static,
    ) -> Self {
        Self {
            id,
            targets: Targets::hosts(hosts),
            plan: Box::new(plan),
            calls: Mutex::new(Vec::new()),
            seq: AtomicU64::new(0),
        }
    }

    /// A device that always does `step`.
    pub fn constant(id: DeviceId, hosts: impl IntoIterator<Item = NodeName>, step: Step) -> Self {
        Self::new(id, hosts, move |_, _, _| step)
    }

    /// How many fence calls it received.
    pub fn fence_calls(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }

    /// Every fence call so far, in order.
    pub fn calls(&self) -> Vec<SimCall> {
        lock(&self.calls).clone()
    }
}

#[async_trait]
impl FenceDevice for SimulatedDevice {
    fn id(&self) -> &DeviceId {
        &self.id
    }
    fn targets(&self) -> &Targets {
        &self.targets
    }
    async fn metadata(&self, _timeout: Duration) -> Result<DeviceMetadata, FenceError> {
        Ok(native_metadata(
            "simulated",
            "Simulated device with scripted latency and failures",
        ))
    }
    async fn list_targets(&self, _timeout: Duration) -> Result<Vec<NodeName>, FenceError> {
        Ok(self.targets.configured().unwrap_or_default())
    }
    async fn fence(
        &self,
        target: &NodeName,
        action: FenceAction,
        timeout: Duration,
    ) -> Result<(), FenceError> {
        listed(&self.id, &self.targets, target)?;
        let seq = {
            let mut calls = lock(&self.calls);
            let seq = self.seq.fetch_add(1, Ordering::SeqCst);
            calls.push(SimCall {
                seq,
                target: target.clone(),
                action,
            });
            seq
        };
        let step = (self.plan)(seq, target, action);
        if step.latency > timeout {
            tokio::time::sleep(timeout).await;
            return Err(FenceError::DeviceTimedOut {
                device: self.id.clone(),
                action: action.into(),
                target: Some(target.clone()),
                timeout_ms: ocf_core::millis::as_millis(timeout),
            });
        }
        tokio::time::sleep(step.latency).await;
        if step.succeed {
            Ok(())
        } else {
            Err(FenceError::Device {
                device: self.id.clone(),
                action: action.into(),
                target: Some(target.clone()),
                reason: format!("simulated failure on call {seq}"),
                source: None,
            })
        }
    }
    async fn status(
        &self,
        target: &NodeName,
        _timeout: Duration,
    ) -> Result<PowerState, FenceError> {
        listed(&self.id, &self.targets, target)?;
        Ok(PowerState::Unknown)
    }
    async fn monitor(&self, _timeout: Duration) -> Result<(), FenceError> {
        Ok(())
    }
}
