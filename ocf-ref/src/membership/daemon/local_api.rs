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
//! Events carry the source's own `seq`, so every subscriber of one daemon sees the same
//! numbers in the same order. A subscription keeps the `Subscription` contract: its last line
//! is `{"ok":true,"end":true}` when the source shut down (a connection closed without it is a
//! crash); a subscriber that fell behind gets `{"ok":false,"error":"...","missed":N}` and then
//! the events after the gap, on the same connection; any other error line ends it.
//!
//! The daemon protects itself from its clients: a request line longer than
//! [`MAX_REQUEST_LINE`] is answered with an error and the connection closed; a connection that
//! sends no complete request within [`REQUEST_IDLE_TIMEOUT`] is closed; a client that does not
//! take a reply within [`WRITE_TIMEOUT`] is dropped; a subscriber that hangs up is noticed at
//! once, not at the next event; and past `max_clients` connections a new one is answered
//! `{"ok":false,"error":"busy: ...","busy":true}` and closed. `packets` is absent when the
//! engine has no transport of its own (Corosync).

use std::time::Duration;

use ocf_core::NodeId;
use ocf_membership::{MembershipEvent, View};
use serde::{Deserialize, Serialize};

use crate::membership::builtin::transport::PacketCounts;

/// The longest reply line a client accepts, in bytes (a view of thousands of members fits).
pub const MAX_LINE: usize = 4 << 20;
/// The longest request line the daemon accepts, in bytes (requests are a few dozen bytes).
pub const MAX_REQUEST_LINE: usize = 4096;
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
