//! Self-awareness, after Lifeguard (HashiCorp memberlist): a node that is slow itself widens
//! its own timeouts before it accuses others, a node back from a pause acts on nothing until
//! a majority has answered it, and a suspicion needs independent confirmations (helpers'
//! nacks) before it becomes a death.

use ocf_core::NodeId;

use super::super::message::Body;
use super::{Node, Output, Relay, State};

/// The largest local health multiplier: timeouts grow to at most `1 + MAX_LHM` times.
pub(super) const MAX_LHM: u32 = 8;

/// How many relayed probes a node keeps track of at once (more are relayed without a nack).
const MAX_RELAYS: usize = 64;

/// The state after a pause: which peers have answered since.
#[derive(Debug, Clone)]
pub(crate) struct Quiet {
    since: u64,
    heard: Vec<bool>,
}

impl Node {
    /// The factor every detection timeout is multiplied by: `1 + lhm`.
    pub(super) fn health_scale(&self) -> u64 {
        u64::from(1 + self.lhm)
    }

    pub(super) fn raise_lhm(&mut self) {
        self.lhm = (self.lhm + 1).min(MAX_LHM);
    }

    pub(super) fn lower_lhm(&mut self) {
        self.lhm = self.lhm.saturating_sub(1);
    }

    /// A tick came `gap` ms after the previous input: a tick much later than the driver's
    /// cadence means this process was starved, so it trusts its own timeouts less.
    pub(super) fn notice_lateness(&mut self, now: u64, gap: Option<u64>) {
        let hb = self.spec.timing.heartbeat_ms;
        if let Some(due) = self.next_tick_due
            && now.saturating_sub(due) > hb / 2
        {
            self.raise_lhm();
        }
        self.next_tick_due = Some(now + (hb / 10).max(1));
        self.notice_pause(now, gap);
    }

    /// An input `gap` ms after the previous one: after a gap of more than a probe period the
    /// process was paused (SIGSTOP, a VM freeze, swapping). Every timer that ran during the
    /// pause measured the pause, not the peers: forget suspicions and probes in flight, give a
    /// running round more time, and stay quiet until a majority has answered.
    pub(super) fn notice_pause(&mut self, now: u64, gap: Option<u64>) {
        if gap.is_none_or(|g| g <= self.spec.timing.heartbeat_ms) {
            return;
        }
        self.raise_lhm();
        self.suspects.clear();
        self.probes.clear();
        self.relays.clear();
        if let Some(round) = self.round.as_mut() {
            round.started = now;
        }
        self.changed_since = None;
        self.quiet = Some(Quiet {
            since: now,
            heard: vec![false; self.peers.len()],
        });
    }

    /// A peer answered one of our messages (an ack or a lease grant): the link works both
    /// ways. Ends the quiet after a pause once a majority of the votes has answered.
    pub(super) fn heard_round_trip(&mut self, pos: usize, now: u64) {
        let Some(quiet) = self.quiet.as_mut() else {
            return;
        };
        quiet.heard[pos] = true;
        self.end_quiet_if_heard(now);
    }

    pub(super) fn end_quiet_if_heard(&mut self, now: u64) {
        let Some(quiet) = self.quiet.as_ref() else {
            return;
        };
        let votes: u32 = self
            .spec
            .nodes()
            .iter()
            .zip(&quiet.heard)
            .enumerate()
            .filter(|(i, (_, heard))| **heard || *i == self.my_pos)
            .map(|(_, (n, _))| n.votes)
            .sum();
        let majority = self.spec.expected_votes() / 2 + 1;
        // An isolated node must act again some time (to leave the primary it cannot reach).
        let waited = now.saturating_sub(quiet.since) >= self.spec.timing.dead_ms;
        if votes >= majority || waited {
            self.quiet = None;
        }
    }

    /// True while this node, back from a pause, has not yet heard a majority.
    pub(super) fn is_quiet(&self) -> bool {
        self.quiet.is_some()
    }

    /// `PingReq`: probe `target` for `origin`, and nack if it stays silent.
    pub(super) fn relay(
        &mut self,
        probe: u32,
        origin: NodeId,
        target: NodeId,
        now: u64,
        out: &mut Vec<Output>,
    ) {
        if target == self.me || self.spec.position(target).is_none() {
            return;
        }
        if self.relays.len() < MAX_RELAYS {
            self.relays.push(Relay {
                probe,
                origin,
                target,
                sent: now,
            });
        }
        self.send(target, Body::RelayPing { probe, origin }, out);
    }

    /// Relayed probes unanswered after an ack timeout: tell their origins.
    pub(super) fn relay_timeouts(&mut self, now: u64, out: &mut Vec<Output>) {
        let timeout = self.spec.timing.ack_timeout();
        let mut due = Vec::new();
        self.relays.retain(|r| {
            let late = now.saturating_sub(r.sent) >= timeout;
            if late {
                due.push(*r);
            }
            !late
        });
        for r in due {
            self.send(
                r.origin,
                Body::Nack {
                    probe: r.probe,
                    target: r.target,
                },
                out,
            );
        }
    }

    /// A helper reports `target` silent for our probe: one confirmation of a suspicion, and
    /// proof that our own links to the helper work.
    pub(super) fn nacked(&mut self, probe: u32, target: NodeId) {
        let Some(t) = self.spec.position(target) else {
            return;
        };
        if let Some(p) = self
            .probes
            .iter_mut()
            .find(|p| p.id == probe && p.target == t)
        {
            p.nacks = p.nacks.saturating_add(1);
        }
        if self.peers[t].state == State::Alive
            && let Some(s) = self.suspects.iter_mut().find(|s| s.target == t)
        {
            s.confirmations = s.confirmations.saturating_add(1);
        }
    }

    /// How many independent confirmations a suspicion needs before its short timeout
    /// applies: two, or as many helpers as there can be.
    pub(super) fn confirmations_needed(&self) -> u8 {
        let others = self
            .peers
            .iter()
            .enumerate()
            .filter(|(i, p)| *i != self.my_pos && p.state == State::Alive)
            .count();
        // The suspect itself is one of the others.
        u8::try_from(others.saturating_sub(1).min(2)).unwrap_or(2)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ocf_core::NodeId;

    use super::super::super::spec::{ClusterSpec, QuorumOptions, Timing};
    use super::super::Node;

    fn node() -> Node {
        let spec = Arc::new(ClusterSpec::uniform(
            5,
            QuorumOptions::default(),
            Timing::new(100, 400),
        ));
        Node::new_with_peers(spec, NodeId::new(1), 1_000, 7, 0, |_| 1_000).unwrap()
    }

    #[test]
    fn a_pause_makes_the_node_quiet_and_slower_to_accuse() {
        let mut n = node();
        let mut out = Vec::new();
        for now in (0..500).step_by(10) {
            n.tick(now, &mut out);
        }
        let before = n.lhm;
        n.tick(3_500, &mut out);
        assert!(n.is_quiet(), "a 3 s gap is a pause");
        assert!(n.lhm > before, "a pause raises the health multiplier");
        assert!(
            n.suspects.is_empty(),
            "suspicions timed during a pause are void"
        );
        // Three of five votes (itself and two peers) end the quiet.
        n.heard_round_trip(1, 3_510);
        assert!(n.is_quiet());
        n.heard_round_trip(2, 3_520);
        assert!(!n.is_quiet());
    }

    #[test]
    fn an_isolated_node_stops_being_quiet_after_dead_ms() {
        let mut n = node();
        let mut out = Vec::new();
        n.tick(0, &mut out);
        n.tick(2_000, &mut out);
        assert!(n.is_quiet());
        n.end_quiet_if_heard(2_399);
        assert!(n.is_quiet());
        n.end_quiet_if_heard(2_400);
        assert!(!n.is_quiet());
    }
}
