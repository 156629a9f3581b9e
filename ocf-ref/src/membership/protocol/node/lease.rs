//! Primacy as a lease: a node acts as primary only while a majority of the votes has granted
//! it, recently, that they still hold its view; a grantor accepts a view without the holder
//! only after every lease it granted must have run out. So at no instant do two views both
//! count as primary (`ALGORITHM.md`, "Primacy leases").

use std::sync::Arc;

use ocf_membership::{EventKind, Quorum, ViewId};

use super::super::message::{Body, CommittedView};
use super::{Event, Node, Output, State};

/// [`Node::primary_until`], remembered until something it depends on changes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Cached {
    Stale,
    Fresh(Option<u64>),
}

/// How many recent lease requests a node remembers (a grant to an older one is ignored).
const LEASE_REQUESTS_KEPT: usize = 8;

/// How many requests for a not-yet-installed view a node keeps to answer at install.
const EARLY_REQUESTS_KEPT: usize = 64;

impl Node {
    /// Asks every other member of the installed view for a lease.
    pub(super) fn request_leases(&mut self, now: u64, out: &mut Vec<Output>) {
        let Some(view) = self.installed.clone() else {
            return;
        };
        if self.evicted_from == Some(view.id) {
            return;
        }
        self.lease_seq = self.lease_seq.wrapping_add(1);
        let seq = self.lease_seq;
        self.lease_sent.push_back((seq, now));
        while self.lease_sent.len() > LEASE_REQUESTS_KEPT {
            self.lease_sent.pop_front();
        }
        let me = self.me;
        for m in view.members.iter().filter(|m| m.id != me) {
            self.send(m.id, Body::LeaseReq { seq }, out);
        }
    }

    /// Whether this node may grant `pos` a lease in view `view` now.
    fn may_grant(&self, pos: usize, inc: u64, view: Option<ViewId>) -> bool {
        let Some(installed) = self.installed.as_ref() else {
            return false;
        };
        Some(installed.id) == view
            && self.evicted_from != Some(installed.id)
            && self.promised.is_none_or(|p| p <= installed.id)
            && installed.contains(self.spec.nodes()[pos].id, inc)
            && self.peers[pos].state == State::Alive
            && !self.suspects.iter().any(|s| s.target == pos)
    }

    /// `LeaseReq`: grant it if we hold the same view, have accepted nothing newer and do not
    /// suspect the requester; remember when, so a later exclusion waits the lease out.
    pub(super) fn on_lease_request(
        &mut self,
        pos: usize,
        view: Option<ViewId>,
        seq: u32,
        out: &mut Vec<Output>,
        now: u64,
    ) {
        let inc = self.peers[pos].inc;
        if self.may_grant(pos, inc, view) {
            self.granted_to[pos] = Some(now);
            let to = self.spec.nodes()[pos].id;
            self.send(to, Body::LeaseGrant { seq }, out);
        } else if let Some(v) = view
            && self.installed.as_ref().is_none_or(|i| v > i.id)
            && self.early_requests.len() < EARLY_REQUESTS_KEPT
        {
            self.early_requests.push((pos, v, seq));
        }
    }

    /// Answers the requests that arrived before this node installed their view.
    pub(super) fn answer_early_requests(&mut self, now: u64, out: &mut Vec<Output>) {
        let Some(installed) = self.installed.as_ref().map(|v| v.id) else {
            return;
        };
        let early = std::mem::take(&mut self.early_requests);
        for (pos, view, seq) in early {
            if view == installed {
                self.on_lease_request(pos, Some(view), seq, out, now);
            } else if view > installed {
                self.early_requests.push((pos, view, seq));
            }
        }
    }

    /// `LeaseGrant`: `pos` held our view when it answered a request we sent at `sent`, so it
    /// grants us primacy until `sent + lease_ms` on our clock.
    pub(super) fn on_lease_grant(&mut self, pos: usize, view: Option<ViewId>, seq: u32, now: u64) {
        let Some(sent) = self
            .lease_sent
            .iter()
            .find(|(s, _)| *s == seq)
            .map(|(_, t)| *t)
        else {
            return;
        };
        // The grant is an answer: the link works both ways and the peer was alive after
        // `sent`, which refutes a suspicion raised by a probe sent before then.
        self.suspects
            .retain(|s| !(s.target == pos && s.probe_sent <= sent));
        self.heard_round_trip(pos, now);
        if self.installed.as_ref().map(|v| v.id) == view && view.is_some() {
            let g = &mut self.granted_by[pos];
            *g = Some(g.map_or(sent, |old| old.max(sent)));
            self.invalidate_primacy();
        }
    }

    /// The instant (this node's clock) until which it is primary on the grants it holds, or
    /// `None` when it is not primary at all. Its own vote never lapses.
    pub(super) fn primary_until(&self) -> Option<u64> {
        if let Cached::Fresh(until) = self.primacy_cache.get() {
            return until;
        }
        let until = self.compute_primary_until();
        self.primacy_cache.set(Cached::Fresh(until));
        until
    }

    fn compute_primary_until(&self) -> Option<u64> {
        let view = self.installed.as_ref()?;
        if self.evicted_from == Some(view.id)
            || self.promised.is_some_and(|p| p > view.id)
            || !self.quorum_of(view).quorate
        {
            return None;
        }
        let lease = self.spec.timing.lease_ms;
        let mut votes = self.spec.votes(self.me);
        let mut expiries: Vec<(u64, u32)> = view
            .members
            .iter()
            .filter(|m| m.id != self.me)
            .filter_map(|m| {
                let pos = self.spec.position(m.id)?;
                self.granted_by[pos].map(|sent| (sent + lease, self.spec.votes(m.id)))
            })
            .collect();
        expiries.sort_unstable_by_key(|e| std::cmp::Reverse(e.0));
        let quorate = |votes| self.spec.quorum(votes, self.seen_all).quorate;
        if quorate(votes) {
            return Some(u64::MAX);
        }
        for (until, v) in expiries {
            votes += v;
            if quorate(votes) {
                return Some(until);
            }
        }
        None
    }

    /// Whether this node may act as primary now: its installed view holds a majority of the
    /// votes, it has accepted no newer view, and a majority granted it a lease that has not
    /// run out.
    pub fn is_primary(&self) -> bool {
        self.primary_until().is_some_and(|until| self.clock < until)
    }

    /// [`Node::is_primary`] at input time `now` (the simulator asks every node at one
    /// instant), without advancing the node.
    pub fn is_primary_at(&self, now: u64) -> bool {
        let at = self.clock_at(now);
        self.primary_until().is_some_and(|until| at < until)
    }

    /// The instant, on the input clock, until which this node stays primary without another
    /// grant (`u64::MAX`: its own votes suffice); `None` when it is not primary now.
    pub fn primary_deadline(&self) -> Option<u64> {
        let until = self.primary_until()?;
        if self.clock >= until {
            return None;
        }
        let last = self.last_input.unwrap_or(0);
        Some(if until == u64::MAX {
            u64::MAX
        } else {
            last.saturating_add(until - self.clock)
        })
    }

    /// Reports a change of primacy: the pending install event once the lease is in (or its
    /// deadline passed), a lapsed lease (effective when it ran out), a regained one.
    pub(super) fn update_primacy(&mut self, now: u64, out: &mut Vec<Output>) {
        let Some(view) = self.installed.clone() else {
            return;
        };
        if self.evicted_from == Some(view.id) {
            return;
        }
        let until = self.primary_until();
        let primary = until.is_some_and(|u| now < u);
        if let Some(deadline) = self.install_pending {
            let could = self.quorum_of(&view).quorate;
            if primary || !could || now >= deadline {
                self.install_pending = None;
                let kind = EventKind::for_transition(self.reported_primary, primary);
                let prior = self.left_primary_at.take();
                self.emit(kind, view, primary, now, prior, out);
            }
            return;
        }
        let Some(was) = self.reported_primary else {
            return;
        };
        // A transition (an accepted proposal) that does not end in an install within
        // `dead_ms` is reported as lost primacy, effective when it began.
        let stalled = self
            .left_primary_at
            .filter(|at| now.saturating_sub(*at) >= self.spec.timing.dead_ms);
        if was && !primary && (self.left_primary_at.is_none() || stalled.is_some()) {
            let at = stalled.or(until).unwrap_or(now).min(now);
            self.left_primary_at = None;
            self.emit(EventKind::NotPrimary, view, false, at, None, out);
        } else if !was && primary {
            self.emit(EventKind::PrimaryRestored, view, true, now, None, out);
        }
    }

    pub(super) fn emit(
        &mut self,
        kind: EventKind,
        view: Arc<CommittedView>,
        primary: bool,
        at: u64,
        prior_primary_until: Option<u64>,
        out: &mut Vec<Output>,
    ) {
        let q = self.quorum_of(&view);
        self.reported_primary = Some(primary);
        self.seq += 1;
        out.push(Output::Event(Event {
            seq: self.seq,
            kind,
            quorum: Quorum::reported(primary, q.votes, q.expected_votes, q.threshold),
            view,
            at,
            prior_primary_until,
        }));
    }

    /// Stops granting and acting on the installed view, to accept proposal `id`.
    pub(super) fn promise(&mut self, id: ViewId, now: u64) {
        if self.is_primary() && self.left_primary_at.is_none() {
            self.left_primary_at = Some(now);
        }
        self.promised = Some(id);
        self.invalidate_primacy();
    }

    /// Forgets the cached [`Node::primary_until`] (the view, the grants, a promise or an
    /// eviction changed).
    pub(super) fn invalidate_primacy(&self) {
        self.primacy_cache.set(Cached::Stale);
    }

    /// The earliest instant this node may accept a view of `members`: `lease_wait` after it
    /// last granted a lease to any node the view leaves out.
    pub(super) fn accept_not_before(
        &self,
        members: &[super::super::message::ProposedMember],
    ) -> u64 {
        let wait = self.spec.timing.lease_wait();
        self.spec
            .nodes()
            .iter()
            .zip(&self.granted_to)
            .filter(|(n, _)| members.binary_search_by_key(&n.id, |m| m.id).is_err())
            .filter_map(|(_, g)| g.map(|at| at + wait))
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ocf_core::NodeId;
    use ocf_membership::ViewId;

    use super::super::super::message::{Body, CommittedView, Envelope, ViewMember};
    use super::super::super::spec::{ClusterSpec, QuorumOptions, Timing};
    use super::super::{Node, Output};

    const INC: u64 = 1_000;

    fn view(members: &[u32]) -> Arc<CommittedView> {
        let id = ViewId::new(1, NodeId::new(1), INC);
        Arc::new(CommittedView {
            id,
            members: members
                .iter()
                .map(|&m| ViewMember {
                    id: NodeId::new(m),
                    inc: INC,
                    born_on: id,
                })
                .collect(),
        })
    }

    fn formed(me: u32) -> Node {
        let spec = Arc::new(ClusterSpec::uniform(
            5,
            QuorumOptions::default(),
            Timing::from_budget(500),
        ));
        let mut n = Node::new_with_peers(spec, NodeId::new(me), INC, 7, 0, |_| INC).unwrap();
        n.install_initial(view(&[1, 2, 3, 4, 5]), &mut Vec::new());
        n
    }

    fn envelope(from: u32, view: Option<ViewId>, body: Body) -> Envelope {
        Envelope {
            from: NodeId::new(from),
            inc: INC,
            refute: 0,
            view,
            gossip: Vec::new(),
            body,
        }
    }

    fn lease_requests(out: &[Output]) -> Vec<(NodeId, u32)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Send {
                    to,
                    msg:
                        Envelope {
                            body: Body::LeaseReq { seq },
                            ..
                        },
                } => Some((*to, *seq)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn primacy_needs_a_majority_of_grants_and_lapses_with_them() {
        let mut n = formed(1);
        assert!(!n.is_primary(), "no grant yet");
        let mut out = Vec::new();
        n.request_leases(10, &mut out);
        let reqs = lease_requests(&out);
        assert_eq!(reqs.len(), 4);
        let id = Some(n.installed().unwrap().id);
        let seq = reqs[0].1;
        n.handle(12, envelope(2, id, Body::LeaseGrant { seq }), &mut out);
        assert!(!n.is_primary(), "two of five votes");
        n.handle(13, envelope(3, id, Body::LeaseGrant { seq }), &mut out);
        assert!(n.is_primary(), "three of five votes");
        // The lease counts from the request (10), not the grant.
        assert!(n.is_primary_at(10 + 299));
        assert!(!n.is_primary_at(10 + 300));
        n.tick(311, &mut out);
        assert!(!n.is_primary());
    }

    #[test]
    fn a_grant_for_another_view_counts_for_nothing() {
        let mut n = formed(1);
        let mut out = Vec::new();
        n.request_leases(10, &mut out);
        let seq = lease_requests(&out)[0].1;
        let other = Some(ViewId::new(9, NodeId::new(2), INC));
        n.handle(12, envelope(2, other, Body::LeaseGrant { seq }), &mut out);
        n.handle(12, envelope(3, other, Body::LeaseGrant { seq }), &mut out);
        assert!(!n.is_primary());
    }

    #[test]
    fn an_exclusion_waits_out_the_grants_to_the_excluded() {
        let mut n = formed(2);
        let id = Some(n.installed().unwrap().id);
        let mut out = Vec::new();
        n.handle(100, envelope(5, id, Body::LeaseReq { seq: 1 }), &mut out);
        assert!(out.iter().any(|o| matches!(
            o,
            Output::Send {
                msg: Envelope {
                    body: Body::LeaseGrant { seq: 1 },
                    ..
                },
                ..
            }
        )));
        let wait = n.spec.timing.lease_wait();
        let without_5: Vec<_> = [1, 2, 3, 4]
            .iter()
            .map(|&i| super::super::super::message::ProposedMember {
                id: NodeId::new(i),
                inc: INC,
            })
            .collect();
        assert_eq!(n.accept_not_before(&without_5), 100 + wait);
        let all: Vec<_> = (1..=5)
            .map(|i| super::super::super::message::ProposedMember {
                id: NodeId::new(i),
                inc: INC,
            })
            .collect();
        assert_eq!(n.accept_not_before(&all), 0);
    }

    #[test]
    fn a_node_that_accepted_a_newer_view_grants_nothing() {
        let mut n = formed(2);
        let id = Some(n.installed().unwrap().id);
        n.promise(ViewId::new(5, NodeId::new(1), INC), 50);
        let mut out = Vec::new();
        n.handle(100, envelope(5, id, Body::LeaseReq { seq: 1 }), &mut out);
        assert!(
            !out.iter().any(|o| matches!(
                o,
                Output::Send {
                    msg: Envelope {
                        body: Body::LeaseGrant { .. },
                        ..
                    },
                    ..
                }
            )),
            "a node in transition grants no lease"
        );
    }
}
