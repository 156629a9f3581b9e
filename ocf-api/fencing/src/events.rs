//! Fencing events: what a subscriber to a [`Fencer`](crate::Fencer) sees, and how its stream
//! ends.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use ocf_core::NodeName;

use crate::{DeviceId, FenceAction, FenceError, FenceId, FenceRecord, IncidentId, UnixMillis};

/// Something that happened to a fencing incident.
///
/// ```
/// use ocf_fencing::{FenceAction, FenceEvent, FenceRecord};
/// let record = FenceRecord::start(7, "n3".parse().unwrap(), FenceAction::Off, "ha@n1".parse().unwrap(), None);
/// let event = FenceEvent::Started { record: Box::new(record) };
/// assert_eq!(event.record().map(|r| r.id), Some(7));
/// assert!(serde_json::to_string(&event).unwrap().starts_with(r#"{"event":"started","record":{"id":7"#));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FenceEvent {
    /// An incident started; its record is in flight (no outcome yet).
    Started {
        /// The record as it started.
        record: Box<FenceRecord>,
    },
    /// An incident ended; its record holds the outcome and every requester merged into it.
    Finished {
        /// The record as it ended.
        record: Box<FenceRecord>,
    },
    /// A node is dead for the cluster: fenced and confirmed, or lost with no fencing to do.
    /// Sent once per incident, after `Finished`, to every subscriber on every node; this is
    /// what an HA manager or a scheduler waits for before it restarts or requeues anything.
    NodeDeath {
        /// What died, when, and how that is known.
        death: Box<NodeDeath>,
    },
}

impl FenceEvent {
    /// The incident's record, for `Started` and `Finished`.
    pub fn record(&self) -> Option<&FenceRecord> {
        match self {
            Self::Started { record } | Self::Finished { record } => Some(record),
            Self::NodeDeath { .. } => None,
        }
    }
}

/// How the cluster knows a node is dead.
///
/// ```
/// use ocf_fencing::{DeathCause, FenceAction};
/// let fenced = DeathCause::Fenced { action: FenceAction::Reboot };
/// assert_eq!(serde_json::to_string(&fenced).unwrap(), r#"{"how":"fenced","action":"reboot"}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "how", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeathCause {
    /// A fence action confirmed it.
    Fenced {
        /// The action that did.
        action: FenceAction,
    },
    /// The node was lost from the view and the policy says no fencing is configured for it;
    /// `reason` says which rule (a cluster that runs without fencing accepts the risk that a
    /// half-dead node still writes).
    NotFenced {
        /// Why there was no fencing.
        reason: String,
    },
}

/// The node-death event: one per incident, the same on every node.
///
/// ```
/// use ocf_fencing::{DeathCause, FenceAction, NodeDeath};
/// let d = NodeDeath {
///     target: "n3".parse().unwrap(),
///     incident: "n3@left-view-7.1.0".parse().unwrap(),
///     view: Some("7.1.0".into()),
///     cause: DeathCause::Fenced { action: FenceAction::Reboot },
///     device: Some("pdu1".parse().unwrap()),
///     at_ms: 1_700_000_000_000,
///     record: Some(4),
/// };
/// assert!(d.is_fenced());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDeath {
    /// The dead node.
    pub target: NodeName,
    /// The incident that settled it.
    pub incident: IncidentId,
    /// The view in which the node was lost, as text (`instance.coordinator.epoch`), when the
    /// incident came from a view change.
    #[serde(default)]
    pub view: Option<String>,
    /// Fenced, or why not.
    pub cause: DeathCause,
    /// The device whose action confirmed it (the last one, for a level of several).
    #[serde(default)]
    pub device: Option<DeviceId>,
    /// When the cluster settled it (milliseconds since the Unix epoch).
    pub at_ms: UnixMillis,
    /// The fencer's record of the incident, when one ran.
    #[serde(default)]
    pub record: Option<FenceId>,
}

impl NodeDeath {
    /// Whether a fence action confirmed it.
    pub fn is_fenced(&self) -> bool {
        matches!(self.cause, DeathCause::Fenced { .. })
    }
}

/// One subscriber's stream of [`FenceEvent`]s, in the order the fencer made them.
///
/// How it ends, and what an error in it means, is the same for every implementation (the
/// conformance suite checks it):
/// - `Ok(Some(event))`: the next event.
/// - `Ok(None)`: **the end**. The fencer shut down (for an in-process fencer: its last handle
///   was dropped) and no event will follow; every later call answers `Ok(None)` again. The end
///   of a stream is never an error.
/// - `Err(FenceError::Lagged { missed })`: this subscriber fell behind and `missed` events
///   were dropped for it. **The stream goes on** with the events after the gap: keep calling.
///   The records those events were about are in the fencer's history.
/// - Any other `Err`: the stream failed (a remote fencer's connection broke); it is over, and
///   a new [`Fencer::subscribe`](crate::Fencer::subscribe) is the way back.
#[async_trait]
pub trait FenceEventStream: Send {
    /// The next event, waiting for it; `Ok(None)` once the fencer has shut down.
    async fn next_event(&mut self) -> Result<Option<FenceEvent>, FenceError>;
}

crate::forward_pointers!(FenceEventStream for [&mut T, Box<T>] {
    async fn next_event(&mut self) -> Result<Option<FenceEvent>, FenceError> {
        (**self).next_event().await
    }
});
