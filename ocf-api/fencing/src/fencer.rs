//! The fencer: the coordinator that owns the devices, tries them by topology level and makes
//! sure that concurrent requests to fence one node cause one action on the hardware.
//!
//! # Merging, locally and cluster-wide
//!
//! A fencer merges requests for the same target and action while one is in flight: the
//! latecomers join the incident and every requester receives the same [`FenceRecord`].
//!
//! Fencing is meant to be decided once per *cluster*, not once per node. Requests therefore
//! carry an optional [`IncidentId`]: a name for the event that made someone want the node dead,
//! the same on every node that saw it (for example `n3@left-view-42.1.0`, the node and the membership
//! view that lost it). A local fencer uses it to answer a request that arrives just after the
//! incident finished with that incident's record instead of shooting again. A cluster-wide fence
//! authority (the primary partition's coordinator, or an agreed order from the membership
//! engine) implements this same [`Fencer`] trait, and not [`FencerAdmin`] (it owns no
//! devices), and merges by incident across nodes: each node forwards its request, the
//! authority runs one fencer, and all requesters, on any node, get the one record. Callers do
//! not change when that authority replaces the local fencer.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ocf_core::NodeName;
use serde::{Deserialize, Serialize};

use crate::device::check_id;
use crate::{
    DeviceId, FenceAction, FenceDevice, FenceError, FenceEventStream, FenceRecord, HistoryFilter,
    InvalidId,
};

/// The longest requester or incident id accepted, in bytes.
pub const MAX_REQUEST_ID_LEN: usize = 256;

/// Who asks for a fence: a client name and its node, like `pacemaker@n1` or `slurmctld@head`.
///
/// Cheap to clone (shared text): every requester merged into an incident receives a record
/// listing all of them, so a thousand merged requesters mean a million copies of an id.
///
/// ```
/// use ocf_fencing::RequesterId;
/// let r: RequesterId = "pacemaker@n1".parse().unwrap();
/// assert_eq!(r.to_string(), "pacemaker@n1");
/// assert!(RequesterId::new("").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RequesterId(Arc<str>);

/// The name of the event a fence request answers, the same on every node that saw it, so that
/// requests about it merge cluster-wide (see the [module docs](self)).
///
/// ```
/// use ocf_fencing::IncidentId;
/// let i = IncidentId::new("n3@left-view-42.1.0").unwrap();
/// assert_eq!(i.as_str(), "n3@left-view-42.1.0");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IncidentId(Arc<str>);

macro_rules! string_id {
    ($ty:ident, $what:literal) => {
        impl $ty {
            #[doc = concat!("Checks and wraps a ", $what, " (1 to 256 bytes, no whitespace).")]
            pub fn new(id: impl Into<String>) -> Result<Self, InvalidId> {
                check_id($what, id.into(), MAX_REQUEST_ID_LEN).map(|s| Self(s.into()))
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $ty {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = InvalidId;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl From<$ty> for String {
            fn from(id: $ty) -> Self {
                id.0.as_ref().to_owned()
            }
        }
    };
}

string_id!(RequesterId, "requester id");
string_id!(IncidentId, "incident id");

/// The default time a request waits for its outcome.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// A request to fence one node.
///
/// ```
/// use std::time::Duration;
/// use ocf_fencing::{FenceAction, FenceRequest};
/// let r = FenceRequest::new("n3".parse().unwrap(), FenceAction::Reboot, "pacemaker@n1".parse().unwrap())
///     .with_timeout(Duration::from_secs(60));
/// assert_eq!(
///     serde_json::to_string(&r).unwrap(),
///     r#"{"target":"n3","action":"reboot","requester":"pacemaker@n1","timeout_ms":60000,"incident":null}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FenceRequest {
    /// The node to fence.
    pub target: NodeName,
    /// What to do to it.
    pub action: FenceAction,
    /// Who asks.
    pub requester: RequesterId,
    /// How long this requester waits for the outcome. The incident it starts may use this
    /// long on the hardware; a requester that joins an incident in flight waits at most this
    /// long, and the incident carries on for the others if it gives up.
    #[serde(rename = "timeout_ms", with = "ocf_core::millis")]
    pub timeout: Duration,
    /// The incident this request answers, for merging across time and nodes.
    #[serde(default)]
    pub incident: Option<IncidentId>,
}

impl FenceRequest {
    /// A request with [`DEFAULT_REQUEST_TIMEOUT`] and no incident id.
    pub fn new(target: NodeName, action: FenceAction, requester: RequesterId) -> Self {
        Self {
            target,
            action,
            requester,
            timeout: DEFAULT_REQUEST_TIMEOUT,
            incident: None,
        }
    }

    /// Sets the timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the incident id.
    #[must_use]
    pub fn with_incident(mut self, incident: IncidentId) -> Self {
        self.incident = Some(incident);
        self
    }
}

/// One topology level: devices that must **all** succeed for the level to succeed (for
/// example the two power supplies of one node).
///
/// ```
/// use ocf_fencing::TopologyLevel;
/// let l = TopologyLevel::new(["psu-a".parse().unwrap(), "psu-b".parse().unwrap()]);
/// assert_eq!(serde_json::to_string(&l).unwrap(), r#"{"devices":["psu-a","psu-b"]}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TopologyLevel {
    /// The devices, used in this order.
    pub devices: Vec<DeviceId>,
}

impl TopologyLevel {
    /// A level of these devices.
    pub fn new(devices: impl IntoIterator<Item = DeviceId>) -> Self {
        Self {
            devices: devices.into_iter().collect(),
        }
    }
}

/// The name of [`TopologyLevel`] in 0.1.
#[deprecated(since = "0.2.0", note = "renamed `TopologyLevel`")]
pub type FenceLevel = TopologyLevel;

/// The fencing service as its clients see it: fence a node, read the history, watch events.
///
/// This is what a requester (an HA manager, a scheduler, an operator's tool) calls, and all
/// that a remote client of a node daemon or a cluster-wide fence authority has to serve.
/// Configuring devices and topology is [`FencerAdmin`], a separate trait, because a client
/// that asks for fencing has no business rearranging the devices, and an authority that
/// forwards requests has no devices of its own.
///
/// Its promises:
/// - **One action per incident.** While a fence of target T with action A is in flight, another
///   request for (T, A) joins it: the devices are not asked again, and every requester gets the
///   same result. What a request for T with a *different* action does is the implementation's
///   documented choice (the reference fencer makes it wait for the first to finish).
/// - **Topology.** With levels set for T, level 1 is tried first, then level 2 if level 1
///   failed, and so on; a level succeeds only when all its devices do. Without levels, every
///   registered device that can fence T is tried in turn until one succeeds.
/// - **Policy first.** No device is touched for a request the fencing policy refuses.
/// - **History.** Every incident it started is in its history, with every requester, every
///   device attempt and the outcome.
/// - **Events.** Every incident it starts is announced to every subscriber as
///   [`FenceEvent::Started`](crate::FenceEvent::Started) and then
///   [`FenceEvent::Finished`](crate::FenceEvent::Finished), in that order (see
///   [`FenceEventStream`] for how a stream ends and what lagging means).
///
/// `fence` answers `Ok(record)` only when the target was fenced; a failure after trying is
/// [`FenceError::Failed`], which carries the same record. Every method returns a `Result`: a
/// remote implementation may always fail to reach its fencer
/// ([`FenceError::Unavailable`]), and a partial one answers
/// [`FenceError::NotImplemented`] rather than pretending.
///
/// Dyn-compatible: callers hold `Arc<dyn Fencer>` without knowing which fencer it is.
#[async_trait]
pub trait Fencer: Send + Sync {
    /// Fences a node, merging with an incident in flight for the same target and action.
    async fn fence(&self, request: FenceRequest) -> Result<FenceRecord, FenceError>;

    /// The records that match `filter`, oldest first; incidents in flight are included with
    /// no outcome yet.
    async fn history(&self, filter: &HistoryFilter) -> Result<Vec<FenceRecord>, FenceError>;

    /// A new stream of this fencer's events, starting with the first incident that starts or
    /// ends after the call returns. Incidents already over are in [`Fencer::history`].
    async fn subscribe(&self) -> Result<Box<dyn FenceEventStream>, FenceError>;
}

/// The fencer's configuration side: its devices and each target's topology.
///
/// A subtrait of [`Fencer`]: the devices it registers are the ones its `fence` uses. An
/// implementation that only forwards requests (a client of a remote fencer, a cluster-wide
/// authority) implements [`Fencer`] alone.
///
/// Dyn-compatible: devices are plugins registered at run time as `Arc<dyn FenceDevice>`.
#[async_trait]
pub trait FencerAdmin: Fencer {
    /// Adds a device. A device with the same id is refused
    /// ([`FenceError::DuplicateDevice`]): unregister it first.
    async fn register_device(&self, device: Arc<dyn FenceDevice>) -> Result<(), FenceError>;

    /// Removes a device; incidents in flight keep using it until they end. An id that is not
    /// registered is [`FenceError::UnknownDevice`].
    async fn unregister_device(&self, id: &DeviceId) -> Result<(), FenceError>;

    /// The ids of the registered devices, in registration order.
    async fn devices(&self) -> Result<Vec<DeviceId>, FenceError>;

    /// Sets the topology of `target` (level 1 first); an empty list removes it. A level with
    /// no devices is refused ([`FenceError::Topology`]).
    async fn set_topology(
        &self,
        target: &NodeName,
        levels: Vec<TopologyLevel>,
    ) -> Result<(), FenceError>;

    /// The topology of `target` (empty when none is set).
    async fn topology(&self, target: &NodeName) -> Result<Vec<TopologyLevel>, FenceError>;
}

crate::forward_pointers!(Fencer for [&T, Box<T>, Arc<T>] {
    async fn fence(&self, request: FenceRequest) -> Result<FenceRecord, FenceError> {
        (**self).fence(request).await
    }
    async fn history(&self, filter: &HistoryFilter) -> Result<Vec<FenceRecord>, FenceError> {
        (**self).history(filter).await
    }
    async fn subscribe(&self) -> Result<Box<dyn FenceEventStream>, FenceError> {
        (**self).subscribe().await
    }
});

crate::forward_pointers!(FencerAdmin for [&T, Box<T>, Arc<T>] {
    async fn register_device(&self, device: Arc<dyn FenceDevice>) -> Result<(), FenceError> {
        (**self).register_device(device).await
    }
    async fn unregister_device(&self, id: &DeviceId) -> Result<(), FenceError> {
        (**self).unregister_device(id).await
    }
    async fn devices(&self) -> Result<Vec<DeviceId>, FenceError> {
        (**self).devices().await
    }
    async fn set_topology(
        &self,
        target: &NodeName,
        levels: Vec<TopologyLevel>,
    ) -> Result<(), FenceError> {
        (**self).set_topology(target, levels).await
    }
    async fn topology(&self, target: &NodeName) -> Result<Vec<TopologyLevel>, FenceError> {
        (**self).topology(target).await
    }
});
