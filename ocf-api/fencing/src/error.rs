//! Errors of fence devices and fencers.
//!
//! Every variant names the device and/or target it is about and says what to do. Messages
//! never hold a secret: device implementations redact agent output before it gets here.
//! Errors are `Clone` (all requesters merged into one incident receive the same one) and
//! serializable (they cross the node daemon's socket).

use ocf_core::NodeName;
use serde::{Deserialize, Serialize};

use crate::{DeviceAction, DeviceId, FenceAction, FenceRecord, ParamRefusal, Refusal};

/// What went wrong with a fence device or the fencer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
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
        /// The device (or agent name).
        device: String,
        /// What was wrong.
        reason: String,
    },
    /// A device's configuration is wrong (a missing required parameter, a bad value).
    #[error("fence device {device} is misconfigured: {reason}")]
    Config {
        /// The device (or agent name).
        device: String,
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
    /// The fencer is shutting down or its worker is gone.
    #[error("the fencer is unavailable: {reason}")]
    Unavailable {
        /// Why.
        reason: String,
    },
}

/// The kind of a [`FenceError`], for callers that match on what happened, not on details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// [`FenceError::Refused`].
    Refused,
    /// [`FenceError::NoDevice`] or [`FenceError::NotATarget`].
    NoDevice,
    /// [`FenceError::Failed`] or [`FenceError::Device`].
    Failed,
    /// [`FenceError::TimedOut`] or [`FenceError::DeviceTimedOut`].
    TimedOut,
    /// [`FenceError::Unsupported`] or [`FenceError::NotImplemented`].
    Unsupported,
    /// [`FenceError::Metadata`], [`FenceError::Config`], [`FenceError::BadParameter`],
    /// [`FenceError::DuplicateDevice`] or [`FenceError::UnknownDevice`].
    Config,
    /// [`FenceError::Unavailable`].
    Unavailable,
}

impl FenceError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Refused { .. } => ErrorKind::Refused,
            Self::NoDevice { .. } | Self::NotATarget { .. } => ErrorKind::NoDevice,
            Self::Failed { .. } | Self::Device { .. } => ErrorKind::Failed,
            Self::TimedOut { .. } | Self::DeviceTimedOut { .. } => ErrorKind::TimedOut,
            Self::Unsupported { .. } | Self::NotImplemented { .. } => ErrorKind::Unsupported,
            Self::Metadata { .. }
            | Self::Config { .. }
            | Self::BadParameter { .. }
            | Self::DuplicateDevice { .. }
            | Self::UnknownDevice { .. } => ErrorKind::Config,
            Self::Unavailable { .. } => ErrorKind::Unavailable,
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
