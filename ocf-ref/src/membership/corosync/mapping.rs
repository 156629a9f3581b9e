//! Pure mapping from what Corosync reports to ocf views: node names from the nodelist, view ids
//! from ring ids, `born_on` bookkeeping, duplicate suppression. No I/O here.

use std::collections::BTreeMap;

use ocf_core::{NodeId, NodeName};
use ocf_membership::{EventKind, Member, Quorum, View, ViewId};

use super::ffi::RingId;

/// The view id of a ring: instance = ring sequence, coordinator = representative node, epoch 0
/// (a ring id is already unique across partitions and restarts).
pub(crate) fn view_id(ring: RingId) -> ViewId {
    ViewId::new(ring.seq, NodeId::new(ring.nodeid), 0)
}

/// The nodelist index in a key such as `nodelist.node.3.name`.
pub(crate) fn nodelist_index(key: &str) -> Option<u32> {
    let rest = key.strip_prefix("nodelist.node.")?;
    let (index, _field) = rest.split_once('.')?;
    index.parse().ok()
}

/// The name ocf gives a node: its nodelist `name`, else its `ring0_addr`, else `node<ID>`
/// (also when the configured text is not a valid [`NodeName`]).
pub(crate) fn node_name(id: u32, name: Option<&str>, ring0_addr: Option<&str>) -> NodeName {
    name.and_then(|n| NodeName::new(n).ok())
        .or_else(|| ring0_addr.and_then(|a| NodeName::new(a).ok()))
        .unwrap_or_else(|| fallback_name(id))
}

/// `node<ID>`, for nodes the nodelist does not name.
pub(crate) fn fallback_name(id: u32) -> NodeName {
    NodeName::new(format!("node{id}")).unwrap_or_else(|_| unreachable_name())
}

// `node<digits>` is always a valid name; this keeps the code free of `expect`.
fn unreachable_name() -> NodeName {
    NodeName::new("node").unwrap_or_else(|_| unreachable!("\"node\" is a valid node name"))
}

/// What one notification says, ready to become a view.
#[derive(Debug, Clone)]
pub(crate) struct Observation {
    /// The ring.
    pub ring: RingId,
    /// Node ids in the ring.
    pub members: Vec<u32>,
    /// The quorum state.
    pub quorum: Quorum,
}

/// Turns a stream of observations into views and event kinds, remembering the last view.
#[derive(Debug, Default)]
pub(crate) struct ViewTracker {
    last: Option<View>,
    /// Quorate flag of the last installed view; `None` before the first and after an eviction.
    last_quorate: Option<bool>,
}

impl ViewTracker {
    /// The view to install for `obs` and its event kind, or `None` when it repeats the view
    /// installed last (same id, members and quorum).
    pub(crate) fn observe(
        &mut self,
        obs: &Observation,
        name_of: impl Fn(u32) -> NodeName,
        votes_of: impl Fn(u32) -> u32,
    ) -> Option<(EventKind, View)> {
        let id = view_id(obs.ring);
        let fresh_start = self.last_quorate.is_none();
        let mut members = BTreeMap::new();
        for &raw in &obs.members {
            let node = NodeId::new(raw);
            let mut member = Member::new(node, name_of(raw)).with_votes(votes_of(raw));
            let earlier = self.last.as_ref().and_then(|v| v.member(node));
            match earlier {
                Some(prev) => {
                    if let Some(born) = prev.born_on {
                        member = member.with_born_on(born);
                    }
                }
                // Seen joining: it was born in this view. Nodes present when we first looked
                // joined in a view we never saw, so their `born_on` stays unknown.
                None if !fresh_start => member = member.with_born_on(id),
                None => {}
            }
            members.insert(node, member);
        }
        let view = View::new(
            id,
            members.into_values().collect(),
            self.last.as_ref(),
            obs.quorum,
        );
        let repeated = self.last.as_ref().is_some_and(|last| {
            last.id == view.id && last.members() == view.members() && last.quorum() == view.quorum()
        });
        if repeated && !fresh_start {
            return None;
        }
        let kind = EventKind::for_transition(self.last_quorate, view.is_quorate());
        self.last = Some(view.clone());
        self.last_quorate = Some(view.is_quorate());
        Some((kind, view))
    }

    /// This node lost its engine or left the ring: the last view (for the evicted event), if
    /// one was installed since the previous eviction.
    pub(crate) fn evict(&mut self) -> Option<View> {
        self.last_quorate.take()?;
        self.last.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(seq: u64, rep: u32, members: &[u32], quorate: bool) -> Observation {
        let n = members.len() as u32;
        Observation {
            ring: RingId { nodeid: rep, seq },
            members: members.to_vec(),
            quorum: Quorum::reported(quorate, n, 3, 2),
        }
    }

    fn names(id: u32) -> NodeName {
        fallback_name(id)
    }

    #[test]
    fn nodelist_keys_parse() {
        assert_eq!(nodelist_index("nodelist.node.0.name"), Some(0));
        assert_eq!(nodelist_index("nodelist.node.12.ring0_addr"), Some(12));
        assert_eq!(nodelist_index("nodelist.local_node_pos"), None);
        assert_eq!(nodelist_index("nodelist.node.x.name"), None);
    }

    #[test]
    fn names_fall_back() {
        assert_eq!(node_name(1, Some("n1"), Some("10.0.0.1")).as_str(), "n1");
        assert_eq!(node_name(1, None, Some("10.0.0.1")).as_str(), "10.0.0.1");
        assert_eq!(node_name(7, Some("bad name"), None).as_str(), "node7");
    }

    #[test]
    fn transitions_and_born_on() {
        let mut t = ViewTracker::default();
        let (k, v) = t
            .observe(&obs(4, 1, &[1, 2, 3], true), names, |_| 1)
            .unwrap();
        assert_eq!(k, EventKind::NewMembership);
        assert_eq!(v.id, ViewId::new(4, NodeId::new(1), 0));
        assert!(v.members().iter().all(|m| m.born_on.is_none()));
        assert!(
            t.observe(&obs(4, 1, &[1, 2, 3], true), names, |_| 1)
                .is_none()
        );

        let (k, v) = t.observe(&obs(8, 1, &[1], false), names, |_| 1).unwrap();
        assert_eq!(k, EventKind::NotPrimary);
        assert_eq!(v.left(), &[NodeId::new(2), NodeId::new(3)]);

        let (k, v) = t.observe(&obs(12, 1, &[1, 3], true), names, |_| 1).unwrap();
        assert_eq!(k, EventKind::PrimaryRestored);
        assert_eq!(v.joined(), &[NodeId::new(3)]);
        assert_eq!(v.member(NodeId::new(3)).unwrap().born_on, Some(v.id));

        let last = t.evict().unwrap();
        assert_eq!(last.id, v.id);
        assert!(t.evict().is_none());
        let (k, _) = t.observe(&obs(12, 1, &[1, 3], true), names, |_| 1).unwrap();
        assert_eq!(k, EventKind::NewMembership);
    }
}
