//! The static description of a cluster and the timing rules derived from it, as small pure
//! functions so each rule is stated (and tested) once.

use ocf_core::NodeId;
use ocf_membership::Quorum;

/// One configured node, as the protocol sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSpec {
    /// The node's id.
    pub id: NodeId,
    /// Its votes.
    pub votes: u32,
}

/// Quorum options, after votequorum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuorumOptions {
    /// One vote of two is quorate (expected votes 2); needs `wait_for_all` to be safe at start.
    pub two_node: bool,
    /// Not quorate until every configured node has been in one view with this node.
    pub wait_for_all: bool,
    /// Overrides the expected votes (default: the sum of all votes).
    pub expected_votes: Option<u32>,
}

/// The failure detector's periods, in milliseconds, and the periods derived from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Probe period: each node probes one live peer (and one unreachable one) per period.
    pub heartbeat_ms: u64,
    /// Time from a failed probe to a death declaration, roughly; at least 3 × `heartbeat_ms`.
    pub dead_ms: u64,
}

impl Timing {
    /// Timing with these two periods (`dead_ms` is raised to 3 × `heartbeat_ms` if lower).
    pub fn new(heartbeat_ms: u64, dead_ms: u64) -> Self {
        let heartbeat_ms = heartbeat_ms.max(2);
        Self {
            heartbeat_ms,
            dead_ms: dead_ms.max(3 * heartbeat_ms),
        }
    }

    /// How long to wait for a direct ack before asking helpers to probe (2/5 of a period).
    pub fn ack_timeout(&self) -> u64 {
        (self.heartbeat_ms * 2 / 5).max(1)
    }

    /// How long a suspect is probed again before it is declared dead. A probe period has
    /// already passed when suspicion starts, so detection takes about `dead_ms` in total.
    pub fn suspect_timeout(&self) -> u64 {
        self.dead_ms - self.heartbeat_ms
    }

    /// Batching window: a coordinator waits this long after the first change before it
    /// proposes, so simultaneous changes go into one view.
    pub fn settle(&self) -> u64 {
        (self.heartbeat_ms / 2).max(1)
    }

    /// How often a proposal is sent again to members that have not answered.
    pub fn resend(&self) -> u64 {
        (self.heartbeat_ms / 2).max(1)
    }

    /// How long a coordinator waits for every member's answer before dropping the silent.
    pub fn round_timeout(&self) -> u64 {
        self.dead_ms
    }

    /// How long a new process only discovers peers before it may coordinate.
    pub fn join_grace(&self) -> u64 {
        self.dead_ms
    }
}

/// How many helpers an indirect probe asks.
pub const INDIRECT_PROBES: usize = 3;

/// How many gossip records ride on one message.
pub const GOSSIP_PER_MESSAGE: usize = 8;

/// How many times each gossip record is sent: `3 × ⌈log2(n + 1)⌉`, enough for an epidemic to
/// reach every node of `n` with high probability.
///
/// ```
/// use ocf_ref::membership::protocol::gossip_retransmits;
/// assert_eq!(gossip_retransmits(1), 3);
/// assert_eq!(gossip_retransmits(5), 9);
/// assert_eq!(gossip_retransmits(1000), 30);
/// ```
pub fn gossip_retransmits(n: usize) -> u32 {
    let bits = usize::BITS - n.leading_zeros();
    3 * bits.max(1)
}

/// The cluster as the protocol sees it: ids and votes, quorum options and timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    nodes: Vec<NodeSpec>,
    /// Quorum options.
    pub quorum: QuorumOptions,
    /// Timing.
    pub timing: Timing,
}

impl ClusterSpec {
    /// A cluster of these nodes (sorted by id; duplicates keep the first).
    pub fn new(mut nodes: Vec<NodeSpec>, quorum: QuorumOptions, timing: Timing) -> Self {
        nodes.sort_by_key(|n| n.id);
        nodes.dedup_by_key(|n| n.id);
        Self {
            nodes,
            quorum,
            timing,
        }
    }

    /// `n` nodes with ids 1..=n and one vote each.
    pub fn uniform(n: u32, quorum: QuorumOptions, timing: Timing) -> Self {
        Self::new(
            (1..=n)
                .map(|i| NodeSpec {
                    id: NodeId::new(i),
                    votes: 1,
                })
                .collect(),
            quorum,
            timing,
        )
    }

    /// The nodes, sorted by id.
    pub fn nodes(&self) -> &[NodeSpec] {
        &self.nodes
    }

    /// The position of `id` in [`ClusterSpec::nodes`].
    pub fn position(&self, id: NodeId) -> Option<usize> {
        self.nodes.binary_search_by_key(&id, |n| n.id).ok()
    }

    /// The votes of `id` (0 for an unknown node).
    pub fn votes(&self, id: NodeId) -> u32 {
        self.position(id).map_or(0, |i| self.nodes[i].votes)
    }

    /// The votes the whole cluster is expected to have.
    pub fn expected_votes(&self) -> u32 {
        if self.quorum.two_node {
            return 2;
        }
        self.quorum
            .expected_votes
            .unwrap_or_else(|| self.nodes.iter().map(|n| n.votes).sum())
    }

    /// The quorum of a partition holding `votes`, for a node that has (or has not) seen every
    /// node in one view since it started.
    pub fn quorum(&self, votes: u32, seen_all: bool) -> Quorum {
        let expected = self.expected_votes();
        let threshold = if self.quorum.two_node {
            1
        } else {
            expected / 2 + 1
        };
        let q = Quorum::with_threshold(votes, expected, threshold);
        if self.quorum.wait_for_all && !seen_all {
            Quorum::reported(false, votes, expected, threshold)
        } else {
            q
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_rules() {
        let t = Timing::new(200, 1000);
        let s = ClusterSpec::uniform(5, QuorumOptions::default(), t);
        assert!(s.quorum(3, false).quorate);
        assert!(!s.quorum(2, true).quorate);
        let two = ClusterSpec::uniform(
            2,
            QuorumOptions {
                two_node: true,
                wait_for_all: true,
                expected_votes: None,
            },
            t,
        );
        assert!(!two.quorum(1, false).quorate);
        assert!(two.quorum(1, true).quorate);
    }

    #[test]
    fn timing_rules_keep_their_order() {
        for hb in [2, 10, 200, 1000] {
            for dead in [0, hb, 3 * hb, 10 * hb] {
                let t = Timing::new(hb, dead);
                assert!(t.ack_timeout() < t.heartbeat_ms);
                assert!(t.suspect_timeout() >= 2 * t.heartbeat_ms);
                assert!(t.settle() <= t.heartbeat_ms);
            }
        }
    }
}
