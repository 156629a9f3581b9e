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
//! {"op":"fence_subscribe"}
//!                      ->  {"ok":true}                               subscribed: events follow
//!                          {"ok":true,"fence_event":{"event":"started","record":{..}}}  one per event
//!                          {"ok":false,"error":"...","missed":N,"fence_error":{"kind":"lagged","missed":N}}
//!                                                                    a gap; the stream goes on
//!                          {"ok":true,"end":true}                    the fencer (or the daemon) shut down
//! fence errors         ->  {"ok":false,"error":"...","fence_error":{"kind":"...",..}}
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
