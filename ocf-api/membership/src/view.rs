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
/// "born_on"}], "joined": [ids], "left": [ids], "quorum": {...}, "quorate": bool}`, where the
/// top-level `quorate` is written from `quorum.quorate` for scripts.
///
/// A view keeps its promises whichever way it was made: members sorted by id without
/// duplicates (lookups binary-search them), `joined` a sorted subset of the members, `left`
/// sorted and disjoint from them, and one quorate flag. [`View::new`] builds views that way;
/// deserializing checks them and refuses a view that breaks one ([`InvalidView`]), so
/// hand-written JSON cannot make lookups wrong silently.
///
/// ```
/// use ocf_membership::View;
/// let unsorted = r#"{"view_id":{"instance":1,"coordinator":1,"epoch":0},
///   "members":[{"id":2,"name":"b","votes":1,"born_on":null},{"id":1,"name":"a","votes":1,"born_on":null}],
///   "joined":[],"left":[],"quorum":{"quorate":true,"votes":2,"expected_votes":2,"threshold":2}}"#;
/// let e = serde_json::from_str::<View>(unsorted).unwrap_err();
/// assert!(e.to_string().contains("sorted"), "{e}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawView")]
pub struct View {
    /// This view's id.
    pub id: ViewId,
    members: Vec<Member>,
    joined: Vec<NodeId>,
    left: Vec<NodeId>,
    quorum: Quorum,
}

/// Why a deserialized [`View`] was refused: it breaks one of the promises a view keeps.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid view {view}: {reason}")]
pub struct InvalidView {
    /// The view's id.
    pub view: ViewId,
    /// Which promise it breaks.
    pub reason: String,
}

/// A view as it is written, before it is checked.
#[derive(Serialize, Deserialize)]
struct RawView<M = Vec<Member>, N = Vec<NodeId>> {
    view_id: ViewId,
    members: M,
    joined: N,
    left: N,
    quorum: Quorum,
    /// Written from `quorum.quorate`; when read, it must agree with it.
    #[serde(default)]
    quorate: Option<bool>,
}

/// True when `ids` strictly increase (sorted, no duplicates).
fn strictly_sorted(ids: impl IntoIterator<Item = NodeId>) -> bool {
    let mut last = None;
    ids.into_iter().all(|id| {
        let ok = last.is_none_or(|l| l < id);
        last = Some(id);
        ok
    })
}

impl TryFrom<RawView> for View {
    type Error = InvalidView;

    fn try_from(raw: RawView) -> Result<Self, InvalidView> {
        let refuse = |reason: &str| InvalidView {
            view: raw.view_id,
            reason: reason.to_owned(),
        };
        if !strictly_sorted(raw.members.iter().map(|m| m.id)) {
            return Err(refuse("members are not sorted by id without duplicates"));
        }
        if !strictly_sorted(raw.joined.iter().copied())
            || !strictly_sorted(raw.left.iter().copied())
        {
            return Err(refuse("joined or left is not sorted without duplicates"));
        }
        let view = Self {
            id: raw.view_id,
            members: raw.members,
            joined: raw.joined,
            left: raw.left,
            quorum: raw.quorum,
        };
        if !view.joined.iter().all(|&j| view.contains(j)) {
            return Err(refuse("a node in joined is not a member"));
        }
        if view.left.iter().any(|&l| view.contains(l)) {
            return Err(refuse("a node in left is still a member"));
        }
        if raw.quorate.is_some_and(|q| q != view.quorum.quorate) {
            return Err(refuse("quorate disagrees with quorum.quorate"));
        }
        Ok(view)
    }
}

impl Serialize for View {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RawView {
            view_id: self.id,
            members: &self.members,
            joined: &self.joined,
            left: &self.left,
            quorum: self.quorum,
            quorate: Some(self.quorum.quorate),
        }
        .serialize(serializer)
    }
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
            quorum,
        }
    }

    /// The members, sorted by id, without duplicates.
    pub fn members(&self) -> &[Member] {
        &self.members
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

    /// The ids that are members now but were not in the previous view this node installed,
    /// sorted.
    pub fn joined(&self) -> &[NodeId] {
        &self.joined
    }

    /// The ids that were in the previous view this node installed but are not members now,
    /// sorted.
    pub fn left(&self) -> &[NodeId] {
        &self.left
    }

    /// The quorum state.
    pub fn quorum(&self) -> &Quorum {
        &self.quorum
    }

    /// True when this partition holds quorum (`quorum().quorate`, the one source of it).
    pub fn is_quorate(&self) -> bool {
        self.quorum.quorate
    }

    /// Marks this view not quorate: the node stopped being primary in it (its primacy lease
    /// ran out, or it was evicted) although the view itself did not change.
    pub fn mark_not_quorate(&mut self) {
        self.quorum.quorate = false;
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
        // A view without the top-level flag reads; one whose flags disagree does not.
        let mut without = json.clone();
        without.as_object_mut().unwrap().remove("quorate");
        assert_eq!(serde_json::from_value::<View>(without).unwrap(), v);
        let mut disagree = json.clone();
        disagree["quorate"] = serde_json::json!(false);
        let e = serde_json::from_value::<View>(disagree).unwrap_err();
        assert!(e.to_string().contains("disagrees"), "{e}");
    }

    #[test]
    fn deserializing_refuses_views_that_break_their_promises() {
        let v = View::new(
            ViewId::new(3, NodeId::new(1), 2),
            vec![member(1), member(2)],
            None,
            Quorum::majority(2, 3),
        );
        let json = serde_json::to_value(&v).unwrap();
        let cases = [
            (
                "members",
                serde_json::json!([json["members"][0], json["members"][0]]),
                "sorted",
            ),
            ("joined", serde_json::json!([2, 1]), "sorted"),
            ("joined", serde_json::json!([7]), "not a member"),
            ("left", serde_json::json!([1]), "still a member"),
        ];
        for (field, value, says) in cases {
            let mut bad = json.clone();
            bad[field] = value;
            let e = serde_json::from_value::<View>(bad).unwrap_err();
            assert!(e.to_string().contains(says), "{field}: {e}");
        }
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
