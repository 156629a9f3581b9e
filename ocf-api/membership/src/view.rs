//! Views: one agreed list of members, with its id and quorum state.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt;

use ocf_core::{NodeId, NodeName};
use serde::{Deserialize, Serialize};

/// The identity of one view: OCF's membership *instance*, made unique across partitions.
///
/// `instance` grows monotonically on every node; `coordinator` is the node that formed the view
/// (Corosync: the ring's representative), so two partitions that pick the same instance still
/// hold different ids; `epoch` is an engine-defined disambiguator (the built-in engine puts the
/// coordinator's incarnation there, so a restarted coordinator never reuses an id; Corosync
/// leaves it 0). Ids order by `instance` first.
///
/// ```
/// use ocf_core::NodeId;
/// use ocf_membership::ViewId;
/// let a = ViewId::new(4, NodeId::new(1), 0);
/// let b = ViewId::new(4, NodeId::new(2), 0);
/// assert_ne!(a, b);
/// assert!(ViewId::new(5, NodeId::new(1), 0) > b);
/// assert_eq!(a.to_string(), "4.1.0");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ViewId {
    /// The monotonic instance number (OCF's `m_instance`, Corosync's ring sequence).
    pub instance: u64,
    /// The node that formed this view.
    pub coordinator: NodeId,
    /// Engine-defined disambiguator; see the type's documentation.
    pub epoch: u64,
}

impl ViewId {
    /// Builds an id.
    pub const fn new(instance: u64, coordinator: NodeId, epoch: u64) -> Self {
        Self {
            instance,
            coordinator,
            epoch,
        }
    }
}

impl Ord for ViewId {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.instance, self.coordinator, self.epoch).cmp(&(
            other.instance,
            other.coordinator,
            other.epoch,
        ))
    }
}

impl PartialOrd for ViewId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for ViewId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.instance, self.coordinator, self.epoch)
    }
}

/// One member of a view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Member {
    /// The node's id.
    pub id: NodeId,
    /// The node's name.
    pub name: NodeName,
    /// The votes this node brings to quorum.
    pub votes: u32,
    /// The id of the view this node joined in (OCF's `born_on`), when the engine knows it.
    pub born_on: Option<ViewId>,
}

impl Member {
    /// A member with one vote and no known `born_on`.
    pub fn new(id: NodeId, name: NodeName) -> Self {
        Self {
            id,
            name,
            votes: 1,
            born_on: None,
        }
    }

    /// Sets the votes this member brings.
    #[must_use]
    pub fn with_votes(mut self, votes: u32) -> Self {
        self.votes = votes;
        self
    }

    /// Sets the view this member joined in.
    #[must_use]
    pub fn with_born_on(mut self, born_on: ViewId) -> Self {
        self.born_on = Some(born_on);
        self
    }
}

/// The quorum state of a view: whether this partition is the primary one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Quorum {
    /// True when this partition holds quorum (is primary).
    pub quorate: bool,
    /// Votes held by the view's members.
    pub votes: u32,
    /// Votes the whole cluster is expected to have.
    pub expected_votes: u32,
    /// Votes needed for quorum.
    pub threshold: u32,
}

impl Quorum {
    /// Quorum by simple majority: quorate when `votes > expected_votes / 2`.
    ///
    /// ```
    /// use ocf_membership::Quorum;
    /// assert!(Quorum::majority(2, 3).quorate);
    /// assert!(!Quorum::majority(2, 4).quorate);
    /// assert_eq!(Quorum::majority(0, 5).threshold, 3);
    /// ```
    pub fn majority(votes: u32, expected_votes: u32) -> Self {
        let threshold = expected_votes / 2 + 1;
        Self::with_threshold(votes, expected_votes, threshold)
    }

    /// Quorum against an explicit threshold (as votequorum reports it, for example).
    pub fn with_threshold(votes: u32, expected_votes: u32, threshold: u32) -> Self {
        Self {
            quorate: votes >= threshold,
            votes,
            expected_votes,
            threshold,
        }
    }

    /// A quorum state decided elsewhere (an engine that reports the flag itself).
    pub fn reported(quorate: bool, votes: u32, expected_votes: u32, threshold: u32) -> Self {
        Self {
            quorate,
            votes,
            expected_votes,
            threshold,
        }
    }
}

/// An agreed membership view, as installed by one node.
///
/// Its JSON shape is stable: `{"view_id": {...}, "members": [{"id", "name", "votes",
/// "born_on"}], "joined": [ids], "left": [ids], "quorum": {...}, "quorate": bool}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct View {
    /// This view's id.
    #[serde(rename = "view_id")]
    pub id: ViewId,
    /// The members, sorted by id, without duplicates.
    pub members: Vec<Member>,
    /// Ids that are members now but were not in the previous view this node installed.
    pub joined: Vec<NodeId>,
    /// Ids that were in the previous view this node installed but are not members now.
    pub left: Vec<NodeId>,
    /// The quorum state.
    pub quorum: Quorum,
    /// Copy of `quorum.quorate`, at the top level for scripts.
    pub quorate: bool,
}

impl View {
    /// Builds a view, sorting members by id (the last of duplicate ids wins), and derives
    /// `joined` and `left` from `previous` (everyone joined when there is none).
    pub fn new(id: ViewId, members: Vec<Member>, previous: Option<&View>, quorum: Quorum) -> Self {
        let mut by_id = std::collections::BTreeMap::new();
        for m in members {
            by_id.insert(m.id, m);
        }
        let members: Vec<Member> = by_id.into_values().collect();
        let now: BTreeSet<NodeId> = members.iter().map(|m| m.id).collect();
        let before: BTreeSet<NodeId> = previous
            .map(|p| p.members.iter().map(|m| m.id).collect())
            .unwrap_or_default();
        Self {
            id,
            joined: now.difference(&before).copied().collect(),
            left: before.difference(&now).copied().collect(),
            members,
            quorate: quorum.quorate,
            quorum,
        }
    }

    /// The member ids, sorted.
    pub fn member_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.members.iter().map(|m| m.id)
    }

    /// True when `node` is a member.
    pub fn contains(&self, node: NodeId) -> bool {
        self.members.binary_search_by_key(&node, |m| m.id).is_ok()
    }

    /// The member with this id.
    pub fn member(&self, node: NodeId) -> Option<&Member> {
        self.members
            .binary_search_by_key(&node, |m| m.id)
            .ok()
            .map(|i| &self.members[i])
    }

    /// The nodes that joined since the previous view.
    pub fn joined(&self) -> &[NodeId] {
        &self.joined
    }

    /// The nodes that left since the previous view.
    pub fn left(&self) -> &[NodeId] {
        &self.left
    }

    /// True when this partition holds quorum.
    pub fn is_quorate(&self) -> bool {
        self.quorum.quorate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn member(id: u32) -> Member {
        Member::new(NodeId::new(id), format!("n{id}").parse().unwrap())
    }

    #[test]
    fn json_shape_is_stable() {
        let v = View::new(
            ViewId::new(3, NodeId::new(1), 2),
            vec![member(2), member(1)],
            None,
            Quorum::majority(2, 3),
        );
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(
            json["view_id"],
            serde_json::json!({"instance": 3, "coordinator": 1, "epoch": 2})
        );
        assert_eq!(json["members"][0]["id"], 1);
        assert_eq!(json["members"][1]["name"], "n2");
        assert_eq!(json["quorate"], true);
        assert_eq!(json["joined"], serde_json::json!([1, 2]));
    }

    proptest! {
        #[test]
        fn joined_and_left_partition_the_change(
            a in proptest::collection::btree_set(0u32..20, 0..10),
            b in proptest::collection::btree_set(0u32..20, 0..10),
        ) {
            let id = ViewId::new(1, NodeId::new(0), 0);
            let va = View::new(id, a.iter().map(|&i| member(i)).collect(), None, Quorum::majority(0, 1));
            let vb = View::new(id, b.iter().map(|&i| member(i)).collect(), Some(&va), Quorum::majority(0, 1));
            for j in vb.joined() { prop_assert!(b.contains(&j.get()) && !a.contains(&j.get())); }
            for l in vb.left() { prop_assert!(a.contains(&l.get()) && !b.contains(&l.get())); }
            prop_assert_eq!(vb.joined().len() + b.intersection(&a).count(), b.len());
            let json = serde_json::to_string(&vb).unwrap();
            prop_assert_eq!(serde_json::from_str::<View>(&json).unwrap(), vb);
        }
    }
}
