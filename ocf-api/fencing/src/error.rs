//! Errors of fence devices and fencers.
//!
//! Every variant names the device and/or target it is about and says what to do. Messages
//! never hold a secret: device implementations redact agent output before it gets here.
//! Errors are `Clone` (all requesters merged into one incident receive the same one) and
//! serializable (they cross the node daemon's socket). Callers match on
//! [`FenceError::kind`]; variants carry the detail, and the ones with an underlying cause
//! (an OS error, a parse error) keep it as their [`std::error::Error::source`], shared behind
//! an `Arc` so the error stays `Clone`. The cause does not cross a socket: serialized errors
//! keep its text in `reason` and arrive without a source.

use std::sync::Arc;

use ocf_core::NodeName;
use serde::{Deserialize, Serialize};

use crate::{DeviceAction, DeviceId, FenceAction, FenceRecord, ParamRefusal, Refusal};

/// The underlying cause of a [`FenceError`], shared so that the error stays `Clone`.
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong with a fence device or the fencer.
#[derive(Debug, Clone, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FenceError {
    /// The fencing policy refused the request; no device was touched.
    #[error("fencing {target} refused: {refusal}")]
    Refused {
        /// The node.
        target: NodeName,
        /// Which policy refused, and why.
        refusal: Refusal,
    },
    /// This node is not in the primary (quorate) partition, so it may not decide or run a
    /// fence: the majority side will. Nothing was touched; ask again once the view is
    /// quorate, or ask a node of the quorate side.
    #[error("fencing {target} refused: {node} is not in a quorate partition ({reason})")]
    NotQuorate {
        /// The node to fence.
        target: NodeName,
        /// The node that refused (the one asked).
        node: String,
        /// The quorum arithmetic or the state that made it refuse.
        reason: String,
    },
    /// No registered device can fence the node, and no topology names one.
    #[error(
        "no fence device can fence {target}: register one whose host list holds it, or set a topology for it"
    )]
    NoDevice {
        /// The node.
        target: NodeName,
    },
    /// Every level was tried and none succeeded; the record says what each device answered.
    #[error("fencing {target} ({action}) failed on every level: {reason}")]
    Failed {
        /// The node.
        target: NodeName,
        /// The action.
        action: FenceAction,
        /// The last failure, in a line.
        reason: String,
        /// The incident's record.
        record: Box<FenceRecord>,
    },
    /// The request's own timeout passed before the incident ended. The incident may still
    /// finish; its outcome will be in the history.
    #[error(
        "fencing {target} ({action}) did not finish within {timeout_ms} ms; see the fencing history for its outcome"
    )]
    TimedOut {
        /// The node.
        target: NodeName,
        /// The action.
        action: FenceAction,
        /// The request's timeout, in milliseconds.
        timeout_ms: u64,
    },
    /// A device operation failed.
    #[error("fence device {device}: {action}{} failed: {reason}", target.as_ref().map(|t| format!(" of {t}")).unwrap_or_default())]
    Device {
        /// The device.
        device: DeviceId,
        /// The operation.
        action: DeviceAction,
        /// The node it was about, if any.
        target: Option<NodeName>,
        /// What the device said (secrets redacted).
        reason: String,
        /// The error underneath, when there is one (the agent could not be started).
        #[source]
        #[serde(skip)]
        source: Option<Cause>,
    },
    /// A device operation ran out of time (and was stopped).
    #[error("fence device {device}: {action}{} timed out after {timeout_ms} ms; raise its timeout or check the device is reachable", target.as_ref().map(|t| format!(" of {t}")).unwrap_or_default())]
    DeviceTimedOut {
        /// The device.
        device: DeviceId,
        /// The operation.
        action: DeviceAction,
        /// The node it was about, if any.
        target: Option<NodeName>,
        /// The time it had, in milliseconds.
        timeout_ms: u64,
    },
    /// The device cannot do this operation at all.
    #[error("fence device {device} does not support {action}")]
    Unsupported {
        /// The device.
        device: DeviceId,
        /// The operation.
        action: DeviceAction,
    },
    /// The device cannot fence this node (not in its host list).
    #[error("fence device {device} cannot fence {target}: it is not in the device's host list")]
    NotATarget {
        /// The device.
        device: DeviceId,
        /// The node.
        target: NodeName,
    },
    /// The device's meta-data could not be read or understood.
    #[error("fence device {device}: unreadable meta-data: {reason}")]
    Metadata {
        /// The device id, or the agent's name when no device is configured yet
        /// (`fence_ipmilan`).
        device: String,
        /// What was wrong.
        reason: String,
        /// The error underneath (the XML parser's, the OS's), when there is one.
        #[source]
        #[serde(skip)]
        source: Option<Cause>,
    },
    /// A device's configuration is wrong (a missing required parameter, a bad value).
    #[error("fence device {device} is misconfigured: {reason}")]
    Config {
        /// The device id, or the agent's name when no device is configured yet.
        device: String,
        /// What is wrong and how to fix it.
        reason: String,
        /// The error underneath (the program that could not be started), when there is one.
        #[source]
        #[serde(skip)]
        source: Option<Cause>,
    },
    /// A target's topology is wrong (a level without devices).
    #[error("the fencing topology of {target}{}: {reason}", level.map(|l| format!(", level {l}")).unwrap_or_default())]
    Topology {
        /// The node whose topology it is.
        target: NodeName,
        /// The level at fault (from 1), when one is.
        level: Option<u32>,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A parameter cannot reach the device exactly as given (the value is never shown).
    #[error("fence device {device}: parameter {parameter:?} refused: {refusal}")]
    BadParameter {
        /// The device (or agent name).
        device: String,
        /// The parameter's name.
        parameter: String,
        /// Why.
        refusal: ParamRefusal,
    },
    /// A device with this id is already registered.
    #[error("fence device {device} is already registered; unregister it first")]
    DuplicateDevice {
        /// The device.
        device: DeviceId,
    },
    /// No device with this id is registered.
    #[error("no fence device {device} is registered")]
    UnknownDevice {
        /// The device.
        device: DeviceId,
    },
    /// The implementation does not offer this operation.
    #[error("{implementer} does not implement {operation}")]
    NotImplemented {
        /// The operation asked for.
        operation: String,
        /// The implementation that lacks it.
        implementer: String,
    },
    /// The fencer is shutting down, its worker is gone, or it cannot be reached.
    #[error("the fencer is unavailable: {reason}")]
    Unavailable {
        /// Why.
        reason: String,
        /// The error underneath (a socket's), when there is one.
        #[source]
        #[serde(skip)]
        source: Option<Cause>,
    },
    /// An event subscriber fell behind and `missed` events were dropped for it. The
    /// subscription goes on with the events after the gap; the history holds the records
    /// the missed events were about.
    #[error(
        "the fencing event stream dropped {missed} events for a subscriber that fell behind; read the history to catch up"
    )]
    Lagged {
        /// How many events were dropped.
        missed: u64,
    },
}

/// The kind of a [`FenceError`], for callers that match on what happened, not on details.
///
/// ```
/// use ocf_fencing::{FenceError, FenceErrorKind};
/// let e = FenceError::NoDevice { target: "n3".parse().unwrap() };
/// assert_eq!(e.kind(), FenceErrorKind::NoDevice);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FenceErrorKind {
    /// [`FenceError::Refused`].
    Refused,
    /// [`FenceError::NotQuorate`]: ask again on the quorate side.
    NotQuorate,
    /// [`FenceError::NoDevice`] or [`FenceError::NotATarget`].
    NoDevice,
    /// [`FenceError::Failed`] or [`FenceError::Device`].
    Failed,
    /// [`FenceError::TimedOut`] or [`FenceError::DeviceTimedOut`].
    TimedOut,
    /// [`FenceError::Unsupported`] or [`FenceError::NotImplemented`].
    Unsupported,
    /// [`FenceError::Metadata`], [`FenceError::Config`], [`FenceError::Topology`],
    /// [`FenceError::BadParameter`], [`FenceError::DuplicateDevice`] or
    /// [`FenceError::UnknownDevice`].
    Config,
    /// [`FenceError::Unavailable`].
    Unavailable,
    /// [`FenceError::Lagged`]: an event subscriber missed events; its stream goes on.
    Lagged,
}

impl FenceError {
    /// What kind of failure this is.
    pub fn kind(&self) -> FenceErrorKind {
        match self {
            Self::Refused { .. } => FenceErrorKind::Refused,
            Self::NotQuorate { .. } => FenceErrorKind::NotQuorate,
            Self::NoDevice { .. } | Self::NotATarget { .. } => FenceErrorKind::NoDevice,
            Self::Failed { .. } | Self::Device { .. } => FenceErrorKind::Failed,
            Self::TimedOut { .. } | Self::DeviceTimedOut { .. } => FenceErrorKind::TimedOut,
            Self::Unsupported { .. } | Self::NotImplemented { .. } => FenceErrorKind::Unsupported,
            Self::Metadata { .. }
            | Self::Config { .. }
            | Self::Topology { .. }
            | Self::BadParameter { .. }
            | Self::DuplicateDevice { .. }
            | Self::UnknownDevice { .. } => FenceErrorKind::Config,
            Self::Unavailable { .. } => FenceErrorKind::Unavailable,
            Self::Lagged { .. } => FenceErrorKind::Lagged,
        }
    }

    /// A device operation that failed for `reason`, with no underlying error.
    pub fn device(
        device: DeviceId,
        action: DeviceAction,
        target: Option<NodeName>,
        reason: impl Into<String>,
    ) -> Self {
        Self::Device {
            device,
            action,
            target,
            reason: reason.into(),
            source: None,
        }
    }

    /// Unreadable meta-data of `device` (a device id or an agent name), with no underlying
    /// error.
    pub fn metadata(device: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Metadata {
            device: device.into(),
            reason: reason.into(),
            source: None,
        }
    }

    /// A misconfigured device (`device` is its id or agent name), with no underlying error.
    pub fn config(device: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Config {
            device: device.into(),
            reason: reason.into(),
            source: None,
        }
    }

    /// The fencer is unavailable for `reason`, with no underlying error.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self::Unavailable {
            reason: reason.into(),
            source: None,
        }
    }

    /// The underlying cause itself (the `io::Error`, the parser's error), ready to downcast.
    /// [`std::error::Error::source`] gives the same cause behind its shared pointer.
    ///
    /// ```
    /// use std::{io, sync::Arc};
    /// use ocf_fencing::{DeviceAction, FenceError};
    /// let e = FenceError::Device {
    ///     device: "ipmi".parse().unwrap(),
    ///     action: DeviceAction::Monitor,
    ///     target: None,
    ///     reason: "cannot run the agent".into(),
    ///     source: Some(Arc::new(io::Error::from(io::ErrorKind::NotFound))),
    /// };
    /// let os = e.cause().and_then(|c| c.downcast_ref::<io::Error>()).unwrap();
    /// assert_eq!(os.kind(), io::ErrorKind::NotFound);
    /// ```
    pub fn cause(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match self {
            Self::Device { source, .. }
            | Self::Metadata { source, .. }
            | Self::Config { source, .. }
            | Self::Unavailable { source, .. } => source.as_deref(),
            _ => None,
        }
    }

    /// The incident record, for errors that carry one ([`FenceError::Failed`]).
    pub fn record(&self) -> Option<&FenceRecord> {
        match self {
            Self::Failed { record, .. } => Some(record),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::io;

    use super::*;

    #[test]
    fn a_cause_is_kept_through_clones_but_not_across_the_wire() {
        let os = io::Error::new(io::ErrorKind::PermissionDenied, "not executable");
        let e = FenceError::Device {
            device: "ipmi".parse().unwrap(),
            action: DeviceAction::Reboot,
            target: None,
            reason: "cannot run the agent: not executable".into(),
            source: Some(Arc::new(os)),
        };
        let copy = e.clone();
        let source = copy.source().expect("the clone keeps its cause");
        assert_eq!(source.to_string(), "not executable");
        let os = copy.cause().and_then(|c| c.downcast_ref::<io::Error>());
        assert_eq!(
            os.map(io::Error::kind),
            Some(io::ErrorKind::PermissionDenied)
        );
        let json = serde_json::to_string(&e).unwrap();
        assert!(!json.contains("source"), "{json}");
        let back: FenceError = serde_json::from_str(&json).unwrap();
        assert!(back.source().is_none());
        assert_eq!(back.to_string(), e.to_string());
    }

    #[test]
    fn a_topology_error_names_its_target_and_level() {
        let e = FenceError::Topology {
            target: "n3".parse().unwrap(),
            level: Some(2),
            reason: "it has no devices".into(),
        };
        assert_eq!(
            e.to_string(),
            "the fencing topology of n3, level 2: it has no devices"
        );
        assert_eq!(e.kind(), FenceErrorKind::Config);
        assert_eq!(
            FenceError::Lagged { missed: 1 }.kind(),
            FenceErrorKind::Lagged
        );
        assert_eq!(
            FenceError::unavailable("gone").kind(),
            FenceErrorKind::Unavailable
        );
    }
}
