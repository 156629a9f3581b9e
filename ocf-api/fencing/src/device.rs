//! Fence devices: the things that can cut a node's power, and how they say which nodes.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ocf_core::NodeName;
use serde::{Deserialize, Serialize};

use crate::{DeviceMetadata, FenceAction, FenceError, PowerState};

/// The longest device id accepted, in bytes.
pub const MAX_DEVICE_ID_LEN: usize = 128;

/// A fence device's name, unique within one fencer (Pacemaker's stonith resource id).
///
/// 1 to [`MAX_DEVICE_ID_LEN`] bytes, no whitespace or control characters.
///
/// ```
/// use ocf_fencing::DeviceId;
/// let id: DeviceId = "ipmi-n1".parse().unwrap();
/// assert_eq!(id.as_str(), "ipmi-n1");
/// assert!("two words".parse::<DeviceId>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeviceId(String);

/// Why a string is not a valid [`DeviceId`] or requester/incident id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {given:?}: {reason}")]
pub struct InvalidId {
    /// Which kind of id (`device id`, `requester id`, `incident id`).
    pub what: &'static str,
    /// The string as given.
    pub given: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Checks the shared rules of the string ids in this crate.
pub(crate) fn check_id(what: &'static str, s: String, max: usize) -> Result<String, InvalidId> {
    let reason = if s.is_empty() {
        "it must not be empty"
    } else if s.len() > max {
        "it is too long"
    } else if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "it must not hold whitespace or control characters"
    } else {
        return Ok(s);
    };
    Err(InvalidId {
        what,
        given: s,
        reason,
    })
}

impl DeviceId {
    /// Checks and wraps a device id.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidId> {
        check_id("device id", id.into(), MAX_DEVICE_ID_LEN).map(Self)
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for DeviceId {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for DeviceId {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<DeviceId> for String {
    fn from(id: DeviceId) -> Self {
        id.0
    }
}

/// How a device knows which nodes it can fence (Pacemaker's `pcmk_host_check`).
///
/// ```
/// use ocf_fencing::Targets;
/// let t = Targets::host_map([("n1".parse().unwrap(), "3".to_owned())]);
/// assert_eq!(t.plug_for(&"n1".parse().unwrap()), Some("3"));
/// assert_eq!(serde_json::to_string(&t).unwrap(), r#"{"kind":"host_map","hosts":{"n1":"3"}}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Targets {
    /// A fixed list of node names; the node name is also the device's name for it (its plug).
    Static {
        /// The nodes.
        hosts: Vec<NodeName>,
    },
    /// Node names mapped to the device's own names for them (outlet numbers, VM names).
    HostMap {
        /// Node name → plug.
        hosts: BTreeMap<NodeName, String>,
    },
    /// Ask the device (fence-agents `list`, `stonith -l`) each time.
    Dynamic,
}

impl Targets {
    /// A static host list.
    pub fn hosts(hosts: impl IntoIterator<Item = NodeName>) -> Self {
        Self::Static {
            hosts: hosts.into_iter().collect(),
        }
    }

    /// A host map, node name → plug.
    pub fn host_map(map: impl IntoIterator<Item = (NodeName, String)>) -> Self {
        Self::HostMap {
            hosts: map.into_iter().collect(),
        }
    }

    /// The device's name for `node` when the configuration decides it: the mapped plug, the
    /// node's own name for a static list, `None` when the node is not listed or the list is
    /// dynamic.
    pub fn plug_for(&self, node: &NodeName) -> Option<&str> {
        match self {
            Self::Static { hosts } => hosts.iter().find(|h| *h == node).map(NodeName::as_str),
            Self::HostMap { hosts } => hosts.get(node).map(String::as_str),
            Self::Dynamic => None,
        }
    }

    /// The configured nodes, or `None` for a dynamic list.
    pub fn configured(&self) -> Option<Vec<NodeName>> {
        match self {
            Self::Static { hosts } => Some(hosts.clone()),
            Self::HostMap { hosts } => Some(hosts.keys().cloned().collect()),
            Self::Dynamic => None,
        }
    }
}

/// A device that can fence nodes by name: a power switch, a BMC, a hypervisor, an operator.
///
/// Implementations in `ocf-ref`: fence-agents (`fence_*`), cluster-glue stonith plugins and
/// native devices. The trait is dyn-compatible: the fencer holds `Arc<dyn FenceDevice>`.
///
/// Every operation takes the time it may use; an implementation must give up (and stop what
/// it started) when it runs out, answering [`FenceError::DeviceTimedOut`]. Whatever an
/// operation needs first (meta-data, the device's host list) comes out of that same time.
#[async_trait]
pub trait FenceDevice: Send + Sync {
    /// The device's id.
    fn id(&self) -> &DeviceId;

    /// How the device was told to find its targets.
    fn targets(&self) -> &Targets;

    /// The device's parameters and supported actions, within `timeout` like every other
    /// operation. An implementation may answer from what it learned earlier (the reference
    /// agent device asks its agent once and keeps the answer).
    async fn metadata(&self, timeout: Duration) -> Result<DeviceMetadata, FenceError>;

    /// The nodes this device can fence now: the configured ones, or the device's answer for a
    /// dynamic list.
    async fn list_targets(&self, timeout: Duration) -> Result<Vec<NodeName>, FenceError>;

    /// Whether this device can fence `target`. The default asks [`FenceDevice::list_targets`].
    async fn can_fence(&self, target: &NodeName, timeout: Duration) -> Result<bool, FenceError> {
        Ok(self.list_targets(timeout).await?.contains(target))
    }

    /// Performs `action` on `target`; `Ok` only once the device confirmed it.
    async fn fence(
        &self,
        target: &NodeName,
        action: FenceAction,
        timeout: Duration,
    ) -> Result<(), FenceError>;

    /// Asks the device for `target`'s power state.
    async fn status(&self, target: &NodeName, timeout: Duration) -> Result<PowerState, FenceError>;

    /// Checks the device itself is reachable and healthy.
    async fn monitor(&self, timeout: Duration) -> Result<(), FenceError>;
}

crate::forward_pointers!(FenceDevice for [&T, Box<T>, Arc<T>] {
    fn id(&self) -> &DeviceId {
        (**self).id()
    }
    fn targets(&self) -> &Targets {
        (**self).targets()
    }
    async fn metadata(&self, timeout: Duration) -> Result<DeviceMetadata, FenceError> {
        (**self).metadata(timeout).await
    }
    async fn list_targets(&self, timeout: Duration) -> Result<Vec<NodeName>, FenceError> {
        (**self).list_targets(timeout).await
    }
    async fn can_fence(&self, target: &NodeName, timeout: Duration) -> Result<bool, FenceError> {
        (**self).can_fence(target, timeout).await
    }
    async fn fence(
        &self,
        target: &NodeName,
        action: FenceAction,
        timeout: Duration,
    ) -> Result<(), FenceError> {
        (**self).fence(target, action, timeout).await
    }
    async fn status(&self, target: &NodeName, timeout: Duration) -> Result<PowerState, FenceError> {
        (**self).status(target, timeout).await
    }
    async fn monitor(&self, timeout: Duration) -> Result<(), FenceError> {
        (**self).monitor(timeout).await
    }
});

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> NodeName {
        s.parse().unwrap()
    }

    #[test]
    fn targets_resolve_plugs() {
        let s = Targets::hosts([n("a"), n("b")]);
        assert_eq!(s.plug_for(&n("b")), Some("b"));
        assert_eq!(s.plug_for(&n("c")), None);
        assert_eq!(s.configured(), Some(vec![n("a"), n("b")]));
        assert_eq!(Targets::Dynamic.plug_for(&n("a")), None);
        assert_eq!(Targets::Dynamic.configured(), None);
    }

    #[test]
    fn device_ids_are_checked() {
        assert!(DeviceId::new("").is_err());
        assert!(DeviceId::new("a\nb").is_err());
        assert!(DeviceId::new("x".repeat(MAX_DEVICE_ID_LEN + 1)).is_err());
        assert!(serde_json::from_str::<DeviceId>("\"a b\"").is_err());
        let e = DeviceId::new("a b").unwrap_err();
        assert!(e.to_string().contains("device id"), "{e}");
    }
}
