//! Counting test devices: the suite's own [`FenceDevice`]s, whose every call it can see.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use ocf_core::NodeName;
use ocf_fencing::{
    DeviceId, DeviceMetadata, FenceAction, FenceDevice, FenceError, PowerState, Targets,
};

use crate::Clock;

/// One fence call a [`TestDevice`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceCall {
    /// The device called.
    pub device: DeviceId,
    /// The node.
    pub target: NodeName,
    /// The action.
    pub action: FenceAction,
}

/// The calls of every [`TestDevice`] that shares it, in the order they started.
#[derive(Debug, Clone, Default)]
pub struct Journal(Arc<Mutex<Vec<DeviceCall>>>);

impl Journal {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<DeviceCall> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The calls about `target`.
    pub fn calls_for(&self, target: &NodeName) -> Vec<DeviceCall> {
        self.calls()
            .into_iter()
            .filter(|c| c.target == *target)
            .collect()
    }

    /// The calls `device` received.
    pub fn calls_to(&self, device: &DeviceId) -> usize {
        self.calls().iter().filter(|c| c.device == *device).count()
    }

    fn push(&self, call: DeviceCall) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(call);
    }
}

/// A device that answers every fence of its hosts after a latency, succeeding or failing as
/// told, and writes each call in a [`Journal`]. Status says `on` until an `off`.
///
/// A fence of a node not in its host list is refused with [`FenceError::NotATarget`] and not
/// journaled.
pub struct TestDevice {
    id: DeviceId,
    targets: Targets,
    succeed: bool,
    latency: Duration,
    clock: Arc<dyn Clock>,
    journal: Journal,
    off: Mutex<Vec<NodeName>>,
}

impl std::fmt::Debug for TestDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDevice")
            .field("id", &self.id)
            .field("targets", &self.targets)
            .field("succeed", &self.succeed)
            .field("latency", &self.latency)
            .finish_non_exhaustive()
    }
}

impl TestDevice {
    /// A device for `hosts` that succeeds at once and journals into `journal`.
    pub fn new(
        id: DeviceId,
        hosts: impl IntoIterator<Item = NodeName>,
        clock: Arc<dyn Clock>,
        journal: Journal,
    ) -> Self {
        Self {
            id,
            targets: Targets::hosts(hosts),
            succeed: true,
            latency: Duration::ZERO,
            clock,
            journal,
            off: Mutex::new(Vec::new()),
        }
    }

    /// Makes every fence fail (after the latency) with [`FenceError::Device`].
    #[must_use]
    pub fn failing(mut self) -> Self {
        self.succeed = false;
        self
    }

    /// Makes every fence take `latency` on the clock.
    #[must_use]
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    fn check_target(&self, target: &NodeName) -> Result<(), FenceError> {
        if self.targets.plug_for(target).is_some() {
            Ok(())
        } else {
            Err(FenceError::NotATarget {
                device: self.id.clone(),
                target: target.clone(),
            })
        }
    }
}

#[async_trait]
impl FenceDevice for TestDevice {
    fn id(&self) -> &DeviceId {
        &self.id
    }

    fn targets(&self) -> &Targets {
        &self.targets
    }

    async fn metadata(&self, _timeout: Duration) -> Result<DeviceMetadata, FenceError> {
        let mut md = DeviceMetadata::new("conformance-test-device");
        "A counting device of the ocf conformance suite".clone_into(&mut md.shortdesc);
        md.actions = ["reboot", "off", "on", "status", "list", "monitor"]
            .map(str::to_owned)
            .to_vec();
        Ok(md)
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
        self.check_target(target)?;
        self.journal.push(DeviceCall {
            device: self.id.clone(),
            target: target.clone(),
            action,
        });
        if !self.latency.is_zero() {
            self.clock.sleep(self.latency).await;
        }
        if !self.succeed {
            return Err(FenceError::device(
                self.id.clone(),
                action.into(),
                Some(target.clone()),
                "this test device fails on purpose",
            ));
        }
        let mut off = self.off.lock().unwrap_or_else(PoisonError::into_inner);
        off.retain(|n| n != target);
        if action == FenceAction::Off {
            off.push(target.clone());
        }
        Ok(())
    }

    async fn status(
        &self,
        target: &NodeName,
        _timeout: Duration,
    ) -> Result<PowerState, FenceError> {
        self.check_target(target)?;
        let off = self.off.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(if off.contains(target) {
            PowerState::Off
        } else {
            PowerState::On
        })
    }

    async fn monitor(&self, _timeout: Duration) -> Result<(), FenceError> {
        Ok(())
    }
}
