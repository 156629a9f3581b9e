//! The failover manager's decisions, as pure functions of views: who acts, whom to fence,
//! where a resource goes. No I/O here, so every rule has a unit test.

use std::collections::BTreeSet;

use ocf_core::NodeId;
use ocf_membership::View;

/// Whether `local` is the one node of `view` that acts for the cluster: the lowest-id member
/// of a quorate view. A non-quorate partition never acts (it must not shoot the majority, nor
/// start resources the majority may be running).
///
/// ```
/// use ocf_core::NodeId;
/// use ocf_membership::{Member, Quorum, View, ViewId};
/// use ocf_ref::failover::plan::is_acting;
/// let m = |i| Member::new(NodeId::new(i), format!("n{i}").parse().unwrap());
/// let v = View::new(ViewId::new(1, NodeId::new(1), 0), vec![m(1), m(2)], None, Quorum::majority(2, 3));
/// assert!(is_acting(&v, NodeId::new(1)));
/// assert!(!is_acting(&v, NodeId::new(2)));
/// ```
pub fn is_acting(view: &View, local: NodeId) -> bool {
    view.is_quorate() && view.member_ids().next() == Some(local)
}

/// Nodes that must be fenced before any recovery: every node that left a view and has not
/// come back, kept across views until it is fenced or rejoins.
///
/// `pending` is the set carried from earlier views; the result is the new set.
pub fn unclean_after(view: &View, pending: &BTreeSet<NodeId>) -> BTreeSet<NodeId> {
    pending
        .iter()
        .chain(view.left())
        .copied()
        .filter(|n| !view.contains(*n))
        .collect()
}

/// Where a resource that runs nowhere should start: the first of `prefer` that is a member,
/// else the lowest-id member. `None` for an empty view.
pub fn choose_location(view: &View, prefer: &[NodeId]) -> Option<NodeId> {
    prefer
        .iter()
        .copied()
        .find(|n| view.contains(*n))
        .or_else(|| view.member_ids().next())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocf_membership::{Member, Quorum, ViewId};

    fn view(instance: u64, ids: &[u32], prev: Option<&View>, expected: u32) -> View {
        let ms = ids
            .iter()
            .map(|&i| Member::new(NodeId::new(i), format!("n{i}").parse().unwrap()))
            .collect();
        View::new(
            ViewId::new(instance, NodeId::new(ids[0]), 0),
            ms,
            prev,
            Quorum::majority(ids.len() as u32, expected),
        )
    }

    #[test]
    fn a_minority_never_acts() {
        let v = view(1, &[1], None, 3);
        assert!(!is_acting(&v, NodeId::new(1)));
        let v = view(1, &[1, 2], None, 3);
        assert!(is_acting(&v, NodeId::new(1)));
        assert!(!is_acting(&v, NodeId::new(3)), "a non-member never acts");
    }

    #[test]
    fn left_nodes_stay_unclean_until_they_return() {
        let v1 = view(1, &[1, 2, 3], None, 3);
        let v2 = view(2, &[1, 2], Some(&v1), 3);
        let pending = unclean_after(&v2, &BTreeSet::new());
        assert_eq!(pending, BTreeSet::from([NodeId::new(3)]));
        let v3 = view(3, &[1], Some(&v2), 3);
        let pending = unclean_after(&v3, &pending);
        assert_eq!(pending, BTreeSet::from([NodeId::new(2), NodeId::new(3)]));
        let v4 = view(4, &[1, 2, 3], Some(&v3), 3);
        assert!(unclean_after(&v4, &pending).is_empty());
    }

    #[test]
    fn location_follows_preference_then_lowest_id() {
        let v = view(1, &[1, 2], None, 3);
        assert_eq!(
            choose_location(&v, &[NodeId::new(3), NodeId::new(2)]),
            Some(NodeId::new(2))
        );
        assert_eq!(choose_location(&v, &[]), Some(NodeId::new(1)));
    }
}
