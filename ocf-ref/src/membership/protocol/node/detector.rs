//! Failure detection: one probe per period to a live peer in random round robin, suspects
//! probed again, one unreachable peer probed for discovery; indirect probes through helpers
//! before suspicion, and death after `dead_ms` of silence.

use ocf_core::NodeId;

use super::super::message::Body;
use super::super::spec::INDIRECT_PROBES;
use super::{Node, Output, Probe, State, Suspicion};

impl Node {
    pub(super) fn next_probe_id(&mut self) -> u32 {
        self.probe_seq = self.probe_seq.wrapping_add(1);
        self.probe_seq
    }

    pub(super) fn probe(&mut self, target: usize, now: u64, out: &mut Vec<Output>) {
        let id = self.next_probe_id();
        self.probes.push(Probe {
            id,
            target,
            sent: now,
            indirect_sent: false,
            helpers: 0,
            nacks: 0,
            expired: false,
        });
        let to = self.spec.nodes()[target].id;
        self.send(to, Body::Ping { probe: id }, out);
    }

    pub(super) fn detect(&mut self, now: u64, out: &mut Vec<Output>) {
        let timing = self.spec.timing;
        let scale = self.health_scale();
        if now >= self.next_period {
            self.next_period = now + timing.heartbeat_ms;
            self.expire_probes(now, scale);
            self.declare_silent_suspects(now, out);
            self.request_leases(now, out);
            // One live peer in turn, every suspect again, and one unreachable peer in turn
            // (which is how partitions heal and restarted nodes are found).
            let n = self.peers.len();
            let mut targets: Vec<usize> = self.suspects.iter().map(|s| s.target).collect();
            for _ in 0..n.min(16) {
                let i = self.alive_cursor.next(n, &mut self.rng);
                if i != self.my_pos && self.peers[i].state == State::Alive {
                    if !targets.contains(&i) {
                        targets.push(i);
                    }
                    break;
                }
            }
            for _ in 0..n.min(16) {
                let i = self.other_cursor.next(n, &mut self.rng);
                if i != self.my_pos && self.peers[i].state != State::Alive {
                    targets.push(i);
                    break;
                }
            }
            for t in targets {
                self.probe(t, now, out);
            }
        }
        // Direct probes unanswered after the ack timeout: ask helpers.
        for k in 0..self.probes.len() {
            let p = self.probes[k];
            if p.indirect_sent
                || p.expired
                || now.saturating_sub(p.sent) < timing.ack_timeout() * scale
                || self.peers[p.target].state != State::Alive
            {
                continue;
            }
            let target = self.spec.nodes()[p.target].id;
            let helpers = self.random_alive(INDIRECT_PROBES, p.target);
            self.probes[k].indirect_sent = true;
            self.probes[k].helpers = helpers.len() as u8;
            for helper in helpers {
                self.send(
                    helper,
                    Body::PingReq {
                        probe: p.id,
                        target,
                    },
                    out,
                );
            }
        }
    }

    /// Probes unanswered for a (health-scaled) period: their live targets become suspects.
    /// Expired probes stay (for `dead_ms`) so that a late ack still counts. A probe whose
    /// helpers did not even nack says more about this node than about the target.
    fn expire_probes(&mut self, now: u64, scale: u64) {
        let timing = self.spec.timing;
        let mut raised: Vec<(usize, u64)> = Vec::new();
        let mut unhealthy = false;
        for p in &mut self.probes {
            if !p.expired && now.saturating_sub(p.sent) >= timing.heartbeat_ms * scale {
                p.expired = true;
                raised.push((p.target, p.sent));
                unhealthy |= p.nacks < p.helpers;
            }
        }
        if unhealthy {
            self.raise_lhm();
        }
        self.probes
            .retain(|p| now.saturating_sub(p.sent) < timing.dead_ms * scale);
        if self.is_quiet() {
            return;
        }
        for (target, probe_sent) in raised {
            if self.peers[target].state == State::Alive
                && !self.suspects.iter().any(|s| s.target == target)
            {
                self.suspects.push(Suspicion {
                    target,
                    since: now,
                    probe_sent,
                    confirmations: 0,
                });
            }
        }
    }

    /// Suspects that stayed silent long enough are dead: after the suspect timeout when
    /// helpers confirmed the silence, after twice that when nobody could (Lifeguard; the
    /// health multiplier already delayed the suspicion itself).
    fn declare_silent_suspects(&mut self, now: u64, out: &mut Vec<Output>) {
        if self.is_quiet() {
            return;
        }
        let short = self.spec.timing.suspect_timeout();
        let needed = self.confirmations_needed();
        let dead: Vec<usize> = self
            .suspects
            .iter()
            .filter(|s| {
                let silent = now.saturating_sub(s.since);
                silent >= 2 * short || (silent >= short && s.confirmations >= needed)
            })
            .map(|s| s.target)
            .collect();
        for pos in dead {
            self.declare_dead(pos, out);
        }
    }

    /// The probe at index `k` was answered, directly or through a helper, perhaps after its
    /// period: the target was alive after the probe was sent, which refutes a suspicion raised
    /// by this probe or an earlier one (not one raised by a later probe).
    /// An `Ack` from the node at `pos` to our direct probe `probe`.
    pub(super) fn on_ack(&mut self, pos: usize, probe: u32, now: u64) {
        if let Some(k) = self
            .probes
            .iter()
            .position(|p| p.id == probe && p.target == pos)
        {
            self.acked(k, true, now);
        }
    }

    /// A `RelayAck` from `from`: the target of a probe we relayed for `origin` answered; pass
    /// it on as an `IndirectAck` (once).
    pub(super) fn on_relay_ack(
        &mut self,
        from: NodeId,
        probe: u32,
        origin: NodeId,
        out: &mut Vec<Output>,
    ) {
        let before = self.relays.len();
        self.relays
            .retain(|r| !(r.probe == probe && r.origin == origin && r.target == from));
        if self.relays.len() < before {
            self.send(
                origin,
                Body::IndirectAck {
                    probe,
                    target: from,
                },
                out,
            );
        }
    }

    /// An `IndirectAck`: `target` answered our probe `probe` through a relay.
    pub(super) fn on_indirect_ack(&mut self, probe: u32, target: NodeId, now: u64) {
        if let Some(t) = self.spec.position(target)
            && let Some(k) = self
                .probes
                .iter()
                .position(|p| p.id == probe && p.target == t)
        {
            self.acked(k, false, now);
        }
    }

    pub(super) fn acked(&mut self, k: usize, direct: bool, now: u64) {
        let p = self.probes.remove(k);
        self.suspects
            .retain(|s| !(s.target == p.target && s.probe_sent <= p.sent));
        if direct {
            if !p.expired {
                self.lower_lhm();
            }
            self.heard_round_trip(p.target, now);
        }
    }

    /// Up to `k` random live peers other than `except`, in O(k) expected work.
    pub(super) fn random_alive(&mut self, k: usize, except: usize) -> Vec<NodeId> {
        let n = self.peers.len();
        let mut chosen: Vec<usize> = Vec::with_capacity(k);
        for _ in 0..4 * k {
            if chosen.len() == k {
                break;
            }
            let i = self.rng.below(n as u64) as usize;
            if i != self.my_pos
                && i != except
                && self.peers[i].state == State::Alive
                && !chosen.contains(&i)
            {
                chosen.push(i);
            }
        }
        chosen.iter().map(|&i| self.spec.nodes()[i].id).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ocf_core::NodeId;

    use super::super::super::message::{Body, Envelope};
    use super::super::super::spec::{ClusterSpec, QuorumOptions, Timing};
    use super::super::{Node, Probe};

    const INC: u64 = 1_000;
    /// Node 2's position.
    const TARGET: usize = 1;

    fn suspected(node: &Node) -> bool {
        node.suspects.iter().any(|s| s.target == TARGET)
    }

    /// Node 1 of five, all known alive, none answering, ticked until node 2 is suspect;
    /// returns the node and the send time of the probe that raised the suspicion.
    /// The node asks to be ticked a tenth of a heartbeat after its last tick, whatever
    /// packets came between; before its first tick it asks for one at once.
    #[test]
    fn the_next_deadline_is_a_tenth_of_a_heartbeat_after_the_last_tick() {
        let spec = Arc::new(ClusterSpec::uniform(
            5,
            QuorumOptions::default(),
            Timing::new(100, 400),
        ));
        let mut node = Node::new_with_peers(spec, NodeId::new(1), INC, 7, 0, |_| INC).unwrap();
        assert_eq!(node.next_deadline(), Some(0), "created at 0, never ticked");
        let mut out = Vec::new();
        node.tick(1_000, &mut out);
        assert_eq!(node.next_deadline(), Some(1_010));
        node.tick(1_004, &mut out);
        assert_eq!(node.next_deadline(), Some(1_014));
        // Not primary: no lease deadline comes sooner.
        assert!(node.primary_deadline().is_none());
    }

    fn node_suspecting_node_2() -> (Node, u64) {
        let spec = Arc::new(ClusterSpec::uniform(
            5,
            QuorumOptions::default(),
            Timing::new(100, 400),
        ));
        let mut node = Node::new_with_peers(spec, NodeId::new(1), INC, 7, 0, |_| INC).unwrap();
        let mut out = Vec::new();
        let mut now = 0;
        while !suspected(&node) {
            now += 5;
            assert!(now < 2_000, "node 2 was never suspected");
            node.tick(now, &mut out);
        }
        let raised_by = node
            .suspects
            .iter()
            .find(|s| s.target == TARGET)
            .unwrap()
            .probe_sent;
        (node, raised_by)
    }

    fn indirect_ack(node: &mut Node, probe: u32) {
        let now = node.clock + 1;
        let msg = Envelope {
            from: NodeId::new(3),
            inc: INC,
            refute: 0,
            view: None,
            gossip: Vec::new(),
            body: Body::IndirectAck {
                probe,
                target: NodeId::new(2),
            },
        };
        node.handle(now, msg, &mut Vec::new());
    }

    #[test]
    fn an_indirect_ack_after_the_period_refutes_the_suspicion() {
        let (mut node, raised_by) = node_suspecting_node_2();
        let probe = node
            .probes
            .iter()
            .find(|p| p.target == TARGET && p.sent == raised_by)
            .copied()
            .unwrap();
        assert!(probe.expired, "the probe's period ended unanswered");
        indirect_ack(&mut node, probe.id);
        assert!(!suspected(&node), "a late ack proves node 2 alive");
    }

    #[test]
    fn an_ack_to_an_earlier_probe_does_not_refute_the_suspicion() {
        let (mut node, raised_by) = node_suspecting_node_2();
        node.probes.push(Probe {
            id: 9_999,
            target: TARGET,
            sent: raised_by.checked_sub(1).unwrap(),
            indirect_sent: true,
            helpers: 0,
            nacks: 0,
            expired: true,
        });
        indirect_ack(&mut node, 9_999);
        assert!(
            suspected(&node),
            "node 2 answered before the probe that raised it"
        );
    }
}
