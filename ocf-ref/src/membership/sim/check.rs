//! The invariant checkers. Each is named after the promise it checks and says where the
//! promise comes from.

use std::collections::{BTreeSet, HashMap};

use ocf_core::NodeId;
use ocf_membership::{EventKind, ViewId};

use super::{PrimacyStart, Record};

/// A broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The invariant's name.
    pub invariant: &'static str,
    /// What was seen.
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invariant `{}` violated: {}",
            self.invariant, self.detail
        )
    }
}

fn violation(invariant: &'static str, detail: String) -> Violation {
    Violation { invariant, detail }
}

/// `agreement` (the OCF membership promise, docs/src/concepts.md): every node that installs view id V
/// installs the same member list (ids and incarnations).
pub fn agreement(log: &[Record]) -> Result<(), Violation> {
    let mut seen: HashMap<ViewId, (NodeId, Vec<(NodeId, u64)>)> = HashMap::new();
    for r in log.iter().filter(|r| r.kind != EventKind::Evicted) {
        let members: Vec<(NodeId, u64)> = r.view.members.iter().map(|m| (m.id, m.inc)).collect();
        match seen.get(&r.view.id) {
            None => {
                seen.insert(r.view.id, (r.node, members));
            }
            Some((first, m)) if *m != members => {
                return Err(violation(
                    "agreement",
                    format!(
                        "view {} installed by node {first} with {m:?} and by node {} with {members:?}",
                        r.view.id, r.node
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// `monotonic_view_ids` (OCF's `m_instance` grows): within one process (node and
/// incarnation) installed view ids strictly increase. A lease that lapses or comes back is
/// reported with the same view (`not_primary`, `primary_restored`), which installs nothing.
pub fn monotonic_view_ids(log: &[Record]) -> Result<(), Violation> {
    let mut last: HashMap<(NodeId, u64), ViewId> = HashMap::new();
    for r in log.iter().filter(|r| r.kind != EventKind::Evicted) {
        let primacy_only = matches!(r.kind, EventKind::NotPrimary | EventKind::PrimaryRestored);
        if let Some(prev) = last.insert((r.node, r.inc), r.view.id)
            && (r.view.id < prev || (r.view.id == prev && !primacy_only))
        {
            return Err(violation(
                "monotonic_view_ids",
                format!("node {} installed {} after {prev}", r.node, r.view.id),
            ));
        }
    }
    Ok(())
}

/// `gapless_seq` (the `MembershipEvent::seq` promise): within one process, event numbers are
/// 1, 2, 3, ...
pub fn gapless_seq(log: &[Record]) -> Result<(), Violation> {
    let mut last: HashMap<(NodeId, u64), u64> = HashMap::new();
    for r in log {
        let prev = last.insert((r.node, r.inc), r.seq).unwrap_or(0);
        if r.seq != prev + 1 {
            return Err(violation(
                "gapless_seq",
                format!("node {} emitted seq {} after {prev}", r.node, r.seq),
            ));
        }
    }
    Ok(())
}

/// `quorate_views_intersect` (docs/src/concepts.md: at most one partition is primary): the member sets
/// of any two views installed as quorate share a node. Not promised with `two_node`.
pub fn quorate_views_intersect(log: &[Record]) -> Result<(), Violation> {
    let mut views: HashMap<ViewId, BTreeSet<NodeId>> = HashMap::new();
    for r in log
        .iter()
        .filter(|r| r.quorate && r.kind != EventKind::Evicted)
    {
        views
            .entry(r.view.id)
            .or_insert_with(|| r.view.members.iter().map(|m| m.id).collect());
    }
    let all: Vec<(&ViewId, &BTreeSet<NodeId>)> = views.iter().collect();
    for (i, (a, ma)) in all.iter().enumerate() {
        for (b, mb) in &all[i + 1..] {
            if ma.is_disjoint(mb) {
                return Err(violation(
                    "quorate_views_intersect",
                    format!("quorate views {a} {ma:?} and {b} {mb:?} share no node"),
                ));
            }
        }
    }
    Ok(())
}

/// `no_eviction_of_healthy_nodes` (ALGORITHM.md: loss alone never evicts a healthy node): after `since`, no running, connected node is
/// left out of a view or evicted.
pub fn no_eviction_of_healthy_nodes(log: &[Record], since: u64, n: usize) -> Result<(), Violation> {
    for r in log.iter().filter(|r| r.time >= since) {
        if r.kind == EventKind::Evicted || r.view.members.len() != n {
            return Err(violation(
                "no_eviction_of_healthy_nodes",
                format!(
                    "at {} ms node {} got {:?} of view {} with {} of {n} nodes",
                    r.time,
                    r.node,
                    r.kind,
                    r.view.id,
                    r.view.members.len()
                ),
            ));
        }
    }
    Ok(())
}

/// `at_most_one_primary_view` (docs/src/concepts.md: at
/// most one partition is primary at a time): whenever a node became primary, every other
/// node primary at that same instant, each judged on its own drifting clock, was primary in
/// the same view. Every overlap of two primary views begins when one of them becomes
/// primary, so checking at those instants checks every instant. Not promised with
/// `two_node` (either half of a split two-node cluster may act; fencing decides).
pub fn at_most_one_primary_view(starts: &[PrimacyStart]) -> Result<(), Violation> {
    for s in starts {
        if let Some((other, v)) = s.others.iter().find(|(_, v)| *v != s.view) {
            return Err(violation(
                "at_most_one_primary_view",
                format!(
                    "at {} ms node {} became primary in view {} while node {other} was primary in view {v}",
                    s.time, s.node, s.view
                ),
            ));
        }
    }
    Ok(())
}

/// All the safety checkers at once.
pub fn safety(log: &[Record], two_node: bool) -> Result<(), Violation> {
    agreement(log)?;
    monotonic_view_ids(log)?;
    gapless_seq(log)?;
    if !two_node {
        quorate_views_intersect(log)?;
    }
    Ok(())
}

/// [`safety`] and [`at_most_one_primary_view`] over one simulation.
pub fn safety_of(sim: &super::Sim, two_node: bool) -> Result<(), Violation> {
    safety(&sim.log, two_node)?;
    if !two_node {
        at_most_one_primary_view(&sim.primacy)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::membership::protocol::{CommittedView, ViewMember};

    fn record(node: u32, seq: u64, instance: u64, members: &[u32], quorate: bool) -> Record {
        let id = ViewId::new(instance, NodeId::new(1), 5);
        Record {
            time: seq * 10,
            node: NodeId::new(node),
            inc: 7,
            seq,
            kind: EventKind::NewMembership,
            quorate,
            view: Arc::new(CommittedView {
                id,
                members: members
                    .iter()
                    .map(|&m| ViewMember {
                        id: NodeId::new(m),
                        inc: 7,
                        born_on: id,
                    })
                    .collect(),
            }),
        }
    }

    #[test]
    fn each_checker_catches_its_violation() {
        let good = vec![
            record(1, 1, 1, &[1, 2, 3], true),
            record(2, 1, 1, &[1, 2, 3], true),
        ];
        assert!(safety(&good, false).is_ok());

        let split = vec![
            record(1, 1, 1, &[1, 2, 3], true),
            record(2, 1, 1, &[1, 2], true),
        ];
        assert_eq!(agreement(&split).unwrap_err().invariant, "agreement");

        let back = vec![record(1, 1, 2, &[1], false), record(1, 2, 1, &[1], false)];
        assert_eq!(
            monotonic_view_ids(&back).unwrap_err().invariant,
            "monotonic_view_ids"
        );

        let gap = vec![record(1, 1, 1, &[1], false), record(1, 3, 2, &[1], false)];
        assert_eq!(gapless_seq(&gap).unwrap_err().invariant, "gapless_seq");

        let disjoint = vec![
            record(1, 1, 1, &[1, 2], true),
            record(3, 1, 2, &[3, 4], true),
        ];
        assert_eq!(
            quorate_views_intersect(&disjoint).unwrap_err().invariant,
            "quorate_views_intersect"
        );
        assert!(
            safety(&disjoint, true).is_ok(),
            "two_node does not promise intersection"
        );

        let dropped = vec![
            record(1, 1, 1, &[1, 2, 3], true),
            record(1, 2, 2, &[1, 2], true),
        ];
        assert!(no_eviction_of_healthy_nodes(&dropped, 0, 3).is_err());
        assert!(no_eviction_of_healthy_nodes(&dropped, 0, 2).is_err());
        assert!(no_eviction_of_healthy_nodes(&dropped[..1], 0, 3).is_ok());

        let a = ViewId::new(1, NodeId::new(1), 5);
        let b = ViewId::new(2, NodeId::new(1), 5);
        let start = |others: Vec<(NodeId, ViewId)>| PrimacyStart {
            time: 10,
            node: NodeId::new(1),
            view: b,
            others,
        };
        assert!(at_most_one_primary_view(&[start(vec![(NodeId::new(2), b)])]).is_ok());
        assert_eq!(
            at_most_one_primary_view(&[start(vec![(NodeId::new(2), b), (NodeId::new(5), a)])])
                .unwrap_err()
                .invariant,
            "at_most_one_primary_view"
        );
    }
}
