//! The daemon's local API: newline-delimited JSON over a Unix socket.
//!
//! A client writes one request line and reads reply lines:
//!
//! ```text
//! {"op":"local_node"}  ->  {"ok":true,"node_id":1}
//! {"op":"view"}        ->  {"ok":true,"view":{...}}            ("view" absent: none yet)
//! {"op":"subscribe"}   ->  {"ok":true,"view":{...}}            the view the stream starts after
//!                          {"ok":true,"event":{"seq":..,"kind":..,"view":{..}}}   one per event
//!                          {"ok":true,"end":true}              the source shut down cleanly
//! {"op":"stats"}       ->  {"ok":true,"stats":{"clients":1,"max_clients":256,"refused_busy":0,
//!                            "packets":{"sent":..,"received":..,"too_large":0,
//!                              "rejected":{"malformed":0,"forged":0,"replayed":0,
//!                                          "unknown_sender":0}}}}
//! errors               ->  {"ok":false,"error":"..."}
//! ```
//!
//! Three more requests go to the fencer the daemon serves (their replies are [`FenceReply`]
//! lines):
//!
//! ```text
//! {"op":"fence","request":{FenceRequest}}
//!                      ->  {"ok":true,"record":{FenceRecord}}        the target was fenced
//!                          {"ok":false,"error":"...","fence_error":{"kind":"failed",..,"record":{..}}}
//! {"op":"fence_history","filter":{"target":"n3","limit":10}}        ("filter" may be omitted)
//!                      ->  {"ok":true,"records":[{FenceRecord},..]}  oldest first
//! {"op":"fence_targets"}
//!                      ->  {"ok":true,"targets":["n1","n2"]}     what this node's devices can fence
//!                          ("target_errors":["..."] added when a device that lists its hosts failed)
//! {"op":"fence_subscribe"}
//!                      ->  {"ok":true}                               subscribed: events follow
//!                          {"ok":true,"fence_event":{"event":"started","record":{..}}}  one per event
//!                          {"ok":false,"error":"...","missed":N,"fence_error":{"kind":"lagged","missed":N}}
//!                                                                    a gap; the stream goes on
//!                          {"ok":true,"end":true}                    the fencer (or the daemon) shut down
//! fence errors         ->  {"ok":false,"error":"...","fence_error":{"kind":"...",..}}
//! ```
//!
//! The executor's requests (`exec_*`) are described at [`ExecRequest`]. Two more keep and read
//! the node's incident log (see [`crate::explain`]):
//!
//! ```text
//! {"op":"incident_note","note":{Note}}   ->  {"ok":true}
//! {"op":"incident_notes"}                ->  {"ok":true,"notes":[{Note},..]}   oldest first
//! ```
//!
//! `fence_error` is the [`FenceError`] itself (tagged by `kind`), so a client gets back the
//! typed error the fencer gave; a daemon that serves no fencer answers
//! `{"kind":"unavailable",..}` saying so. A request line that does not parse (an unknown
//! action, an invalid node name, an id that is empty, over 256 bytes or holds whitespace) is
//! `{"ok":false,"error":"bad request: ..."}` with no `fence_error`, and reaches no fencer.
//! A `fence` waits for the incident's outcome, at most
//! the request's own `timeout_ms` (capped at [`MAX_FENCE_TIMEOUT`], which is also the most
//! the fencer is given) plus [`FENCE_REPLY_GRACE`]. A client that hangs up while it waits
//! frees its connection at once, and the incident carries on (it is the fencer's, and ends in
//! its history); likewise for a fence subscriber. After a `fence` reply the connection takes
//! further requests; a client that sends bytes while its `fence` is pending is no longer
//! watched for a hang-up until the answer.
//!
//! Events carry the source's own `seq`, so every subscriber of one daemon sees the same
//! numbers in the same order. A subscription keeps the `Subscription` contract: its last line
//! is `{"ok":true,"end":true}` when the source shut down (a connection closed without it is a
//! crash); a subscriber that fell behind gets `{"ok":false,"error":"...","missed":N}` and then
//! the events after the gap, on the same connection; any other error line ends it.
//!
//! The daemon protects itself from its clients: a request line longer than
//! [`MAX_REQUEST_LINE`] is answered with an error and the connection closed; a connection that
//! sends no complete request within [`REQUEST_IDLE_TIMEOUT`] is closed (a `fence` waiting for
//! its outcome is bounded by its own timeout instead); a client that does not
//! take a reply within [`WRITE_TIMEOUT`] is dropped; a subscriber that hangs up is noticed at
//! once, not at the next event; and past `max_clients` connections a new one is answered
//! `{"ok":false,"error":"busy: ...","busy":true}` and closed. `packets` is absent when the
//! engine has no transport of its own (Corosync).

use std::time::Duration;

use ocf_core::NodeId;
use ocf_fencing::{FenceError, FenceEvent, FenceRecord, FenceRequest, HistoryFilter};
use ocf_membership::{MembershipEvent, View};
use ocf_resources::executor::{Operation, OperationResult, RecurringId, ResourceSpec};
use ocf_resources::{AgentId, ResourceError, ResourceErrorKind, ValidationError};
use serde::{Deserialize, Serialize};

use crate::membership::builtin::transport::PacketCounts;

/// The longest reply line a client accepts, in bytes (a view of thousands of members fits).
pub const MAX_LINE: usize = 4 << 20;
/// The longest request line the daemon accepts, in bytes. The longest `fence` request fits
/// with room to spare: a 253-byte target and 256-byte requester and incident ids, each byte
/// escaped (`"` is two bytes in JSON; control characters are not allowed in them), come to
/// about 1.7 KiB.
pub const MAX_REQUEST_LINE: usize = 4096;
/// The longest a `fence` request is given (its `timeout_ms` is lowered to this) and so the
/// longest its connection waits for the outcome, before [`FENCE_REPLY_GRACE`].
pub const MAX_FENCE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long past a `fence` request's own timeout the daemon waits for the fencer's answer
/// (a fencer answers `timed_out` itself at the timeout; this covers a late answer) before it
/// answers `timed_out` itself.
pub const FENCE_REPLY_GRACE: Duration = Duration::from_secs(5);
/// How long the daemon waits for a connection's next complete request line before closing
/// it (subscribers, which send nothing after `subscribe`, are not affected).
pub const REQUEST_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the daemon waits for a client to take one reply line before dropping it.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long each device that must be asked for its hosts is given by `fence_targets`.
pub const FENCE_TARGETS_TIMEOUT: Duration = Duration::from_secs(20);
/// The default of `max_clients`: connections served at once.
pub const DEFAULT_MAX_CLIENTS: usize = 256;

/// A request line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Request {
    /// The local node's id.
    LocalNode,
    /// The view installed now.
    View,
    /// The current view, then every event after it.
    Subscribe,
    /// The daemon's counters: clients, and packets sent, received and rejected by reason.
    Stats,
    /// Fence a node through the daemon's fencer; answered with one [`FenceReply`].
    Fence {
        /// The request, as the fencer takes it.
        request: FenceRequest,
    },
    /// The fencer's history records that match `filter`; answered with one [`FenceReply`].
    FenceHistory {
        /// Which records (all when omitted).
        #[serde(default)]
        filter: HistoryFilter,
    },
    /// The fencer's events from now on, one [`FenceReply`] line each.
    FenceSubscribe,
    /// The nodes this node's own fence devices can fence ("what machines can you reset?"),
    /// sorted, each once; answered with one [`FenceReply`] (`targets`). Devices with a
    /// configured host list answer from it; the others are asked (their agent's `list`),
    /// each within [`FENCE_TARGETS_TIMEOUT`].
    FenceTargets,
    /// Keeps a note in the node's incident log (a manager's recovery); answered with one
    /// [`NotesReply`].
    IncidentNote {
        /// The note.
        note: crate::explain::Note,
    },
    /// The notes of the node's incident log, oldest first; answered with one [`NotesReply`].
    IncidentNotes,
}

/// A reply line to `incident_note` and `incident_notes`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NotesReply {
    /// False when `error` says what went wrong.
    pub ok: bool,
    /// The notes (answer to `incident_notes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<Vec<crate::explain::Note>>,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A request to the executor the daemon serves (the node's local resource manager): a
/// request line whose `op` starts with `exec_` is read as one of these.
///
/// ```text
/// {"op":"exec_register","resource":{ResourceSpec}}           ->  {"ok":true}
/// {"op":"exec_unregister","name":"web"}                       ->  {"ok":true}
/// {"op":"exec_resources"}                                     ->  {"ok":true,"resources":[..]}
/// {"op":"exec_execute","resource":"web","operation":{Operation}}
///                                                             ->  {"ok":true,"result":{OperationResult}}
/// {"op":"exec_start_recurring","resource":"web","operation":{..}}
///                                                             ->  {"ok":true,"recurring":7}
/// {"op":"exec_cancel_recurring","resource":"web","id":7}      ->  {"ok":true}
/// {"op":"exec_history","resource":"web"}                      ->  {"ok":true,"history":[..]}
/// {"op":"exec_subscribe"}                                     ->  {"ok":true}, then
///                          {"ok":true,"result":{..}}          one per finished operation
///                          {"ok":false,"error":"..","exec_error":{"kind":"lagged","missed":N,..}}
///                          {"ok":true,"end":true}             the daemon shut down
/// errors  ->  {"ok":false,"error":"...","exec_error":{"kind":"unknown_resource","message":..,..}}
/// ```
///
/// Operations belong to the daemon's executor, not to the connection that asked: a client
/// that hangs up while its `exec_execute` waits frees its connection and the operation runs
/// on, into the resource's history. The daemon bounds what clients can pile up: at most
/// [`MAX_EXEC_RESOURCES`] resources and [`MAX_EXEC_RECURRING`] recurring operations; an
/// operation's timeout is capped at [`MAX_EXEC_TIMEOUT`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ExecRequest {
    /// Adds a resource.
    ExecRegister {
        /// The resource.
        resource: ResourceSpec,
    },
    /// Removes a resource (its recurring operations cancelled, queued ones still run).
    ExecUnregister {
        /// Its name.
        name: String,
    },
    /// The registered resources, sorted by name.
    ExecResources,
    /// Runs one operation and answers its result.
    ExecExecute {
        /// The resource.
        resource: String,
        /// The operation.
        operation: Operation,
    },
    /// Starts a recurring operation and answers its id.
    ExecStartRecurring {
        /// The resource.
        resource: String,
        /// The operation (non-zero interval).
        operation: Operation,
    },
    /// Cancels a recurring operation.
    ExecCancelRecurring {
        /// The resource.
        resource: String,
        /// The recurring operation's id.
        id: RecurringId,
    },
    /// A resource's recent results, oldest first.
    ExecHistory {
        /// The resource.
        resource: String,
    },
    /// Every result that finishes from now on.
    ExecSubscribe,
}

/// The most resources the daemon's executor takes.
pub const MAX_EXEC_RESOURCES: usize = 10_000;
/// The most recurring operations the daemon's executor runs at once.
pub const MAX_EXEC_RECURRING: usize = 20_000;
/// The longest an operation is given (its timeout is lowered to this).
pub const MAX_EXEC_TIMEOUT: Duration = Duration::from_secs(3600);

/// A [`ResourceError`] on the wire: its kind, its message, and the details that rebuild the
/// typed error on the client side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WireResourceError {
    /// The error's category.
    pub kind: ResourceErrorKind,
    /// The error's text.
    pub message: String,
    /// The resource (or resource name) it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The agent it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentId>,
    /// The recurring operation it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// With a lag: how many results were missed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed: Option<u64>,
    /// With invalid parameters (strict mode): the validation's findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<ValidationError>,
}

impl From<&ResourceError> for WireResourceError {
    fn from(e: &ResourceError) -> Self {
        let mut w = Self {
            kind: e.kind(),
            message: e.to_string(),
            resource: None,
            agent: None,
            id: None,
            missed: None,
            validation: None,
        };
        match e {
            ResourceError::AgentNotFound { agent, .. }
            | ResourceError::Metadata { agent, .. }
            | ResourceError::MetadataRun { agent, .. }
            | ResourceError::Io { agent, .. } => w.agent = Some(agent.clone()),
            ResourceError::UnknownResource { name } | ResourceError::AlreadyRegistered { name } => {
                w.resource = Some(name.clone());
            }
            ResourceError::UnknownOperation { resource, id } => {
                w.resource = Some(resource.clone());
                w.id = Some(*id);
            }
            ResourceError::Lagged { missed } => w.missed = Some(*missed),
            ResourceError::InvalidParameters(v) => w.validation = Some(v.clone()),
            _ => {}
        }
        w
    }
}

impl WireResourceError {
    /// The typed error again, as close to the daemon's as the wire allows: the kind is always
    /// the same; an OS error's cause and a meta-data error's parse position come back as text.
    pub fn into_error(self) -> ResourceError {
        let name = || self.resource.clone().unwrap_or_default();
        match (self.kind, self.agent.clone()) {
            (ResourceErrorKind::AgentNotFound, Some(agent)) => ResourceError::AgentNotFound {
                agent,
                looked_in: self.message,
            },
            (ResourceErrorKind::Metadata, Some(agent)) => ResourceError::MetadataRun {
                agent,
                reason: self.message,
            },
            (ResourceErrorKind::Io, Some(agent)) => ResourceError::Io {
                agent,
                operation: "running the agent on the node".into(),
                source: std::sync::Arc::new(std::io::Error::other(self.message)),
            },
            (ResourceErrorKind::InvalidParameters, _) if self.validation.is_some() => {
                self.validation.map_or_else(
                    || ResourceError::InvalidRequest {
                        reason: String::new(),
                    },
                    ResourceError::InvalidParameters,
                )
            }
            (ResourceErrorKind::UnknownResource, _) => {
                ResourceError::UnknownResource { name: name() }
            }
            (ResourceErrorKind::AlreadyRegistered, _) => {
                ResourceError::AlreadyRegistered { name: name() }
            }
            (ResourceErrorKind::UnknownOperation, _) => ResourceError::UnknownOperation {
                resource: name(),
                id: self.id.unwrap_or_default(),
            },
            (ResourceErrorKind::Lagged, _) => ResourceError::Lagged {
                missed: self.missed.unwrap_or(1),
            },
            (ResourceErrorKind::NotImplemented, _) => ResourceError::NotImplemented {
                operation: "this request",
                implementer: "the node daemon",
            },
            (ResourceErrorKind::Closed, _) => ResourceError::Closed { what: self.message },
            _ => ResourceError::InvalidRequest {
                reason: self.message,
            },
        }
    }
}

/// A reply line to an executor request (`exec_*`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExecReply {
    /// False when `error` (and `exec_error`) says what went wrong.
    pub ok: bool,
    /// An operation's result (answer to `exec_execute`; one line of `exec_subscribe`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<OperationResult>,
    /// A recurring operation's id (answer to `exec_start_recurring`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurring: Option<RecurringId>,
    /// The registered resources (answer to `exec_resources`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<ResourceSpec>>,
    /// A resource's history (answer to `exec_history`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<OperationResult>>,
    /// True on the last line of a subscription whose daemon shut down.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub end: bool,
    /// What went wrong, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The typed error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec_error: Option<WireResourceError>,
    /// True on the error line of a connection refused because `max_clients` are connected.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub busy: bool,
}

impl ExecReply {
    /// A successful, empty reply.
    pub fn ok() -> Self {
        Self {
            ok: true,
            ..Self::default()
        }
    }

    /// An error reply carrying the typed `error`.
    pub fn error(error: &ResourceError) -> Self {
        Self {
            ok: false,
            error: Some(error.to_string()),
            exec_error: Some(WireResourceError::from(error)),
            ..Self::default()
        }
    }
}

/// A reply line.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Reply {
    /// False when `error` says what went wrong.
    pub ok: bool,
    /// The local node (answer to `local_node`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<NodeId>,
    /// A view (answer to `view` and the first answer to `subscribe`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<View>,
    /// One event of a subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<MembershipEvent>,
    /// True on the last line of a subscription whose source shut down cleanly.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub end: bool,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// With a lag error: how many events the subscriber missed (the stream goes on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed: Option<u64>,
    /// The daemon's counters (answer to `stats`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<DaemonStats>,
    /// True on the error line of a connection refused because `max_clients` are connected.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub busy: bool,
}

/// The daemon's counters, the answer to `stats` (and `ocf members --stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DaemonStats {
    /// Connections being served now, this one included.
    pub clients: u64,
    /// The most connections served at once (`max_clients`).
    pub max_clients: u64,
    /// Connections refused as busy since the daemon started.
    pub refused_busy: u64,
    /// The built-in engine's packets: sent, received and rejected by reason. Absent when
    /// the engine has no transport of its own (Corosync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packets: Option<PacketCounts>,
}

impl Reply {
    /// A successful, empty reply.
    pub fn ok() -> Self {
        Self {
            ok: true,
            ..Self::default()
        }
    }

    /// An error reply.
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            ok: false,
            error: Some(message.into()),
            ..Self::default()
        }
    }
}

/// A reply line to a fencing request (`fence`, `fence_history`, `fence_subscribe`).
///
/// A line the daemon writes before it knows the request (busy, a bad request line) has the
/// same `ok`, `error` and `busy` fields, so it reads as a `FenceReply` too.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FenceReply {
    /// False when `error` (and `fence_error`, when the fencer gave one) says what went wrong.
    pub ok: bool,
    /// The incident's record (answer to `fence` when the target was fenced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<FenceRecord>,
    /// The history (answer to `fence_history`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<Vec<FenceRecord>>,
    /// The nodes this node's devices can fence, sorted (answer to `fence_targets`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<ocf_core::NodeName>>,
    /// With `targets`: the devices that could not say which nodes they fence, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_errors: Vec<String>,
    /// One event of a fence subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence_event: Option<FenceEvent>,
    /// True on the last line of a fence subscription whose fencer (or daemon) shut down.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub end: bool,
    /// What went wrong, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The typed error the fencer (or the daemon) gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence_error: Option<FenceError>,
    /// With a lag: how many events the subscriber missed (the stream goes on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed: Option<u64>,
    /// True on the error line of a connection refused because `max_clients` are connected.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub busy: bool,
}

impl FenceReply {
    /// A successful, empty reply.
    pub fn ok() -> Self {
        Self {
            ok: true,
            ..Self::default()
        }
    }

    /// An error reply carrying the typed `error` (and its text; its lag count for a lag).
    pub fn error(error: FenceError) -> Self {
        Self {
            ok: false,
            error: Some(error.to_string()),
            missed: match &error {
                FenceError::Lagged { missed } => Some(*missed),
                _ => None,
            },
            fence_error: Some(error),
            ..Self::default()
        }
    }
}
