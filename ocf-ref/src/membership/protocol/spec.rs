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

/// Every timer of the protocol, in milliseconds, derived from a few inputs.
///
/// The user sets one detection budget ([`Timing::from_budget`]); the probe period, the death
/// timeout, the primacy lease and the wait before a view may exclude a node all follow from it
/// (see `ALGORITHM.md`, "Timing"). Explicit values are accepted where they are consistent
/// ([`Timing::check`] shows the arithmetic when they are not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Probe period: each node probes one live peer (and one unreachable one) and renews its
    /// primacy lease once per period.
    pub heartbeat_ms: u64,
    /// Time from a failed probe to a death declaration, roughly; at least 3 × `heartbeat_ms`.
    pub dead_ms: u64,
    /// How long one grant of primacy from a peer lasts, measured from when the request left.
    pub lease_ms: u64,
    /// The largest rate error of any node's monotonic clock, in parts per million (10,000 =
    /// 1 %; quartz is within 100).
    pub drift_ppm: u32,
}

/// The default detection budget (ms): a death is agreed about this long after it happens.
pub const DEFAULT_DETECT_MS: u64 = 500;

/// The default bound on clock rate drift (ppm): 1 %, a hundred times what quartz does.
pub const DEFAULT_DRIFT_PPM: u32 = 10_000;

/// Extra wait before excluding a node, beyond the drift-corrected lease and a quarter period
/// (ms, at most a quarter period): covers the delay in noticing a lapsed lease (the driver
/// wakes at the lease's end, which `Node::next_deadline` reports, plus scheduling delay).
pub const LEASE_MARGIN_MS: u64 = 10;

impl Timing {
    /// Timing with these two periods (`dead_ms` is raised to 3 × `heartbeat_ms` if lower);
    /// the lease is the longest that never delays an exclusion past `dead_ms`, at most three
    /// periods, with the default drift bound.
    pub fn new(heartbeat_ms: u64, dead_ms: u64) -> Self {
        let heartbeat_ms = heartbeat_ms.max(2);
        let dead_ms = dead_ms.max(3 * heartbeat_ms);
        Self {
            heartbeat_ms,
            dead_ms,
            lease_ms: 0,
            drift_ppm: DEFAULT_DRIFT_PPM,
        }
        .with_drift(DEFAULT_DRIFT_PPM)
    }

    /// The same timing under another drift bound, its default lease re-derived so that it
    /// still fits (an explicit `lease_ms` is set after this, and checked by
    /// [`Timing::check`]).
    #[must_use]
    pub fn with_drift(self, drift_ppm: u32) -> Self {
        let mut t = Self {
            drift_ppm,
            lease_ms: 3 * self.heartbeat_ms,
            ..self
        };
        t.lease_ms = t.lease_ms.min(t.longest_lease());
        t
    }

    /// Timing for a detection budget: a dead node is declared dead `detect_ms` after it
    /// died, at most (probe period `detect_ms / 5`, death after four periods of silence).
    ///
    /// ```
    /// use ocf_ref::membership::protocol::Timing;
    /// let t = Timing::from_budget(500);
    /// assert_eq!((t.heartbeat_ms, t.dead_ms, t.lease_ms), (100, 400, 300));
    /// assert!(t.check().is_ok());
    /// ```
    pub fn from_budget(detect_ms: u64) -> Self {
        let heartbeat_ms = (detect_ms / 5).max(2);
        Self::new(heartbeat_ms, 4 * heartbeat_ms)
    }

    /// The longest lease whose [`Timing::lease_wait`] still fits in `dead_ms`.
    fn longest_lease(&self) -> u64 {
        let room = self
            .dead_ms
            .saturating_sub(self.margin())
            .saturating_mul(1_000_000 - u64::from(self.drift_ppm));
        room / (1_000_000 + u64::from(self.drift_ppm))
    }

    fn margin(&self) -> u64 {
        self.heartbeat_ms / 4 + LEASE_MARGIN_MS.min(self.heartbeat_ms / 4)
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

    /// How long a node waits, on its own clock, after it last granted primacy to a node
    /// before it accepts a view without that node: the lease stretched by the worst drift of
    /// both clocks, `lease × (1 + ρ) / (1 − ρ)`, plus [`LEASE_MARGIN_MS`] and a quarter
    /// period. Any lease that grant gave has run out, on the holder's clock, by then.
    ///
    /// ```
    /// use ocf_ref::membership::protocol::Timing;
    /// // 300 ms × 1.01 / 0.99 = 306.06, rounded up, + 10 + 25.
    /// assert_eq!(Timing::from_budget(500).lease_wait(), 342);
    /// ```
    pub fn lease_wait(&self) -> u64 {
        let d = u64::from(self.drift_ppm);
        let stretched = (self.lease_ms * (1_000_000 + d)).div_ceil(1_000_000 - d);
        stretched + self.margin()
    }

    /// The shortest time after a death until the survivors may agree on a view without the
    /// dead node, and the longest (one probe period more, plus the batching window).
    pub fn expected_detection(&self) -> (u64, u64) {
        (
            self.dead_ms.max(self.lease_wait()),
            self.dead_ms.max(self.lease_wait()) + self.heartbeat_ms + self.settle(),
        )
    }

    /// Checks that the timers fit together; the error shows the arithmetic that fails.
    pub fn check(&self) -> Result<(), String> {
        let hb = self.heartbeat_ms;
        if !(10..=60_000).contains(&hb) {
            return Err(format!("heartbeat_ms = {hb} is out of range 10..=60000"));
        }
        if self.dead_ms < 3 * hb {
            return Err(format!(
                "dead_ms = {} < 3 × heartbeat_ms = {}: a suspect must be probed again before it is dropped",
                self.dead_ms,
                3 * hb
            ));
        }
        if self.drift_ppm > 100_000 {
            return Err(format!(
                "drift_ppm = {} is above 100000 (10 %): no clock that bad can hold a lease",
                self.drift_ppm
            ));
        }
        let least = 2 * hb + self.ack_timeout();
        if self.lease_ms < least {
            return Err(format!(
                "lease_ms = {} < 2 × heartbeat_ms + ack timeout = {least}: one lost renewal would cost the primary",
                self.lease_ms
            ));
        }
        if self.lease_wait() > self.dead_ms {
            return Err(format!(
                "lease wait = lease_ms × (1 + ρ)/(1 − ρ) + margin = {} × {}/{} + {} = {} > dead_ms = {}: \
                 excluding a dead node would wait longer than detecting it; lower lease_ms to {} or raise dead_ms",
                self.lease_ms,
                1_000_000 + self.drift_ppm,
                1_000_000 - self.drift_ppm,
                self.margin(),
                self.lease_wait(),
                self.dead_ms,
                self.longest_lease()
            ));
        }
        Ok(())
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
                if hb >= 10 {
                    assert!(t.lease_wait() <= t.dead_ms, "{t:?}");
                    assert!(t.check().is_ok(), "{t:?}: {:?}", t.check());
                }
            }
        }
    }
}

#[cfg(test)]
mod timing_tests {
    use super::*;

    #[test]
    fn inconsistent_timing_is_refused_with_its_arithmetic() {
        let mut t = Timing::from_budget(500);
        t.lease_ms = 390;
        let e = t.check().unwrap_err();
        assert!(e.contains("> dead_ms = 400"), "{e}");
        assert!(e.contains("lower lease_ms to"), "{e}");
        t.lease_ms = 200;
        assert!(t.check().unwrap_err().contains("one lost renewal"));
        let mut t = Timing::from_budget(500);
        t.drift_ppm = 200_000;
        assert!(t.check().is_err());
    }

    #[test]
    fn the_lease_never_delays_an_exclusion_past_detection() {
        for budget in [50, 100, 500, 1000, 5000, 60_000] {
            let t = Timing::from_budget(budget);
            assert!(t.lease_wait() <= t.dead_ms, "{t:?}");
            assert!(t.lease_ms >= 2 * t.heartbeat_ms + t.ack_timeout(), "{t:?}");
        }
    }
}
