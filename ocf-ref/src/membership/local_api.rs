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
//! errors               ->  {"ok":false,"error":"...","missed":N}
//! ```
//!
//! Events carry the source's own `seq`, so every subscriber of one daemon sees the same
//! numbers in the same order.

use ocf_core::NodeId;
use ocf_membership::{MembershipEvent, View};
use serde::{Deserialize, Serialize};

/// The longest request or reply line accepted, in bytes.
pub const MAX_LINE: usize = 4 << 20;

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
    /// With a lag error: how many events the subscriber missed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed: Option<u64>,
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
