//! The key layout under a cluster's prefix, and the value of a member key.
//!
//! - `<prefix>members/<id, 10 digits>`: one per live node, under its lease; the value is a
//!   [`MemberRecord`] in JSON. Zero-padded ids keep etcd's key order equal to id order.
//! - `<prefix>fence/<incident>/<attempt>`: the fence authority's claims; the value is the
//!   name of the node that runs that attempt.

use ocf_core::{NodeId, NodeName};
use serde::{Deserialize, Serialize};

/// The keys of one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLayout {
    prefix: String,
}

impl KeyLayout {
    /// The layout under `prefix` (it should end with `/`).
    ///
    /// ```
    /// use ocf_core::NodeId;
    /// use ocf_ref::membership::etcd::keys::KeyLayout;
    /// let k = KeyLayout::new("/ocf/c1/");
    /// assert_eq!(k.member_key(NodeId::new(7)), "/ocf/c1/members/0000000007");
    /// assert_eq!(k.member_id(b"/ocf/c1/members/0000000007"), Some(NodeId::new(7)));
    /// assert_eq!(k.member_id(b"/ocf/c1/fence/3/1"), None);
    /// assert_eq!(k.fence_key(3, 1), "/ocf/c1/fence/3/1");
    /// ```
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The cluster's prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The prefix of every member key (what the engine watches).
    pub fn members_prefix(&self) -> String {
        format!("{}members/", self.prefix)
    }

    /// The member key of `node`.
    pub fn member_key(&self, node: NodeId) -> String {
        format!("{}members/{:010}", self.prefix, node.get())
    }

    /// The node whose member key `key` is, if it is one.
    pub fn member_id(&self, key: &[u8]) -> Option<NodeId> {
        let rest = key.strip_prefix(self.members_prefix().as_bytes())?;
        let text = std::str::from_utf8(rest).ok()?;
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse::<u32>().ok().map(NodeId::new)
    }

    /// The claim key of attempt `attempt` of fence incident `incident`.
    pub fn fence_key(&self, incident: u64, attempt: u32) -> String {
        format!("{}fence/{incident}/{attempt}", self.prefix)
    }
}

/// What a member key holds: who the node is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    /// The node's id (the same as in its key).
    pub id: u32,
    /// The node's name.
    pub name: NodeName,
    /// The votes it brings (reported in views; etcd decides quorum).
    pub votes: u32,
    /// The process's incarnation (wall-clock milliseconds at start): a restarted node is a new
    /// one.
    pub inc: u64,
}

impl MemberRecord {
    /// The JSON value written to the member key.
    pub fn to_value(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a member key's value; `None` when it is not a record (a foreign writer).
    pub fn from_value(value: &[u8]) -> Option<Self> {
        serde_json::from_slice(value).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_foreign_values_are_refused() {
        let r = MemberRecord {
            id: 3,
            name: "n3".parse().unwrap(),
            votes: 1,
            inc: 42,
        };
        assert_eq!(MemberRecord::from_value(&r.to_value()), Some(r));
        assert_eq!(MemberRecord::from_value(b"not json"), None);
        let k = KeyLayout::new("/p/");
        assert_eq!(k.member_id(b"/p/members/"), None);
        assert_eq!(k.member_id(b"/p/members/12x"), None);
        assert_eq!(k.member_id(b"/q/members/0000000001"), None);
        assert_eq!(k.member_id(b"/p/members/99999999999"), None);
    }
}
