//! View agreement: the coordinator proposes, members accept or reject, the coordinator
//! commits; installing a committed view and computing its quorum.

use std::sync::Arc;

use ocf_core::NodeId;
use ocf_membership::{EventKind, Quorum, ViewId};

use super::super::message::Body;
use super::super::message::{CommittedView, Proposal, ViewMember};
use super::{Answer, Node, Output, PendingAccept, Round, State};

impl Node {
    pub(super) fn coordinate(&mut self, now: u64, out: &mut Vec<Output>) {
        let timing = self.spec.timing;
        if self.coordinator() != self.me {
            self.round = None;
            self.changed_since = None;
            return;
        }
        if now.saturating_sub(self.started) < timing.join_grace() || self.is_quiet() {
            return;
        }
        if let Some(round) = &self.round {
            // A member that died (or restarted) since the proposal will never answer it:
            // start over at once rather than wait for the round timeout.
            let lost = round
                .proposal
                .members
                .iter()
                .zip(&round.answers)
                .any(|(m, a)| {
                    *a == Answer::Waiting
                        && self.spec.position(m.id).is_some_and(|pos| {
                            let p = self.peers[pos];
                            p.state == State::Dead || p.inc != m.inc
                        })
                });
            if lost {
                self.round = None;
                self.changed_since = Some(now);
                return;
            }
            if round.answers.iter().all(|a| *a != Answer::Waiting) {
                if now >= round.ready_at {
                    self.commit(now, out);
                }
            } else if now.saturating_sub(round.started) >= timing.round_timeout() {
                // Members that never answered are dropped; the next round goes without them.
                let silent: Vec<usize> = round
                    .proposal
                    .members
                    .iter()
                    .zip(&round.answers)
                    .filter(|(_, a)| **a == Answer::Waiting)
                    .filter_map(|(m, _)| self.spec.position(m.id))
                    .collect();
                self.round = None;
                for pos in silent {
                    if self.peers[pos].state == State::Alive {
                        self.declare_dead(pos, out);
                    }
                }
            } else if now.saturating_sub(round.last_send) >= timing.resend() {
                let proposal = Arc::clone(&round.proposal);
                let silent: Vec<NodeId> = round
                    .proposal
                    .members
                    .iter()
                    .zip(&round.answers)
                    .filter(|(_, a)| **a == Answer::Waiting)
                    .map(|(m, _)| m.id)
                    .collect();
                if let Some(r) = self.round.as_mut() {
                    r.last_send = now;
                }
                for to in silent {
                    self.send(to, Body::Propose(Arc::clone(&proposal)), out);
                }
            }
            return;
        }
        // Up to date: the installed view holds exactly the live nodes, and no node reported a
        // newer view (after a partition heals, the other side's view may be newer).
        let up_to_date = self.installed.as_ref().is_some_and(|v| {
            self.max_view_seen.is_none_or(|m| m <= v.id)
                && v.members.len() == self.candidates.len()
                && v.members
                    .iter()
                    .zip(&self.candidates)
                    .all(|(m, c)| m.id == c.id && m.inc == c.inc)
        });
        if up_to_date {
            self.changed_since = None;
            return;
        }
        let since = *self.changed_since.get_or_insert(now);
        if now.saturating_sub(since) >= timing.settle() {
            self.changed_since = None;
            self.propose(now, out);
        }
    }

    pub(super) fn highest_seen(&self) -> Option<ViewId> {
        self.installed.as_ref().map(|v| v.id).max(self.promised)
    }

    pub(super) fn propose(&mut self, now: u64, out: &mut Vec<Output>) {
        let instance = self.max_instance + 1;
        self.max_instance = instance;
        let id = ViewId::new(instance, self.me, self.inc);
        let proposal = Arc::new(Proposal {
            id,
            members: self.candidates.clone(),
        });
        let mut answers = vec![Answer::Waiting; proposal.members.len()];
        // The coordinator accepts its own proposal, and commits it no earlier than every
        // lease it granted to a node the proposal leaves out has run out.
        let ready_at = self.accept_not_before(&proposal.members);
        self.promise(id, now);
        self.pending_accept = None;
        if let Ok(i) = proposal.members.binary_search_by_key(&self.me, |m| m.id) {
            answers[i] = Answer::Accepted(self.my_born_on());
        }
        let others: Vec<NodeId> = proposal
            .members
            .iter()
            .map(|m| m.id)
            .filter(|&m| m != self.me)
            .collect();
        for to in others {
            self.send(to, Body::Propose(Arc::clone(&proposal)), out);
        }
        self.round = Some(Round {
            proposal,
            answers,
            started: now,
            last_send: now,
            ready_at,
        });
    }

    pub(super) fn my_born_on(&self) -> Option<ViewId> {
        self.installed
            .as_ref()
            .and_then(|v| v.member(self.me))
            .filter(|m| m.inc == self.inc)
            .map(|m| m.born_on)
    }

    pub(super) fn commit(&mut self, now: u64, out: &mut Vec<Output>) {
        let Some(round) = self.round.take() else {
            return;
        };
        let id = round.proposal.id;
        let members: Vec<ViewMember> = round
            .proposal
            .members
            .iter()
            .zip(&round.answers)
            .map(|(m, a)| ViewMember {
                id: m.id,
                inc: m.inc,
                born_on: match a {
                    Answer::Accepted(Some(b)) => *b,
                    _ => id,
                },
            })
            .collect();
        let view = Arc::new(CommittedView { id, members });
        // The members, and the members of our last view that this one leaves out: they learn
        // at once that they are out (a node that can hear but not be heard has no other way).
        let mut others: Vec<NodeId> = view
            .members
            .iter()
            .map(|m| m.id)
            .filter(|&m| m != self.me)
            .collect();
        if let Some(last) = self.installed.as_ref() {
            others.extend(
                last.members
                    .iter()
                    .map(|m| m.id)
                    .filter(|&m| m != self.me && view.member(m).is_none()),
            );
        }
        self.try_install(Arc::clone(&view), now, out);
        for to in others {
            self.send(to, Body::Commit(Arc::clone(&view)), out);
        }
    }

    pub(super) fn try_install(
        &mut self,
        view: Arc<CommittedView>,
        now: u64,
        out: &mut Vec<Output>,
    ) {
        self.max_instance = self.max_instance.max(view.id.instance);
        if self.installed.as_ref().is_some_and(|v| view.id <= v.id) {
            return;
        }
        if !view.contains(self.me, self.inc) {
            if let Some(last) = self.installed.clone()
                && self.evicted_from != Some(last.id)
            {
                // Evicted means not primary, from this instant.
                self.evicted_from = Some(last.id);
                self.invalidate_primacy();
                self.install_pending = None;
                self.left_primary_at = None;
                self.emit(EventKind::Evicted, last, false, now, None, out);
            }
            return;
        }
        // The coordinator saw these incarnations alive; newer ones replace what we knew.
        for m in &view.members {
            if let Some(pos) = self.spec.position(m.id)
                && pos != self.my_pos
                && (m.inc > self.peers[pos].inc || self.peers[pos].state == State::Unknown)
            {
                self.set_peer(pos, m.inc, 0, State::Alive);
            }
        }
        if view.members.len() == self.spec.nodes().len() {
            self.seen_all = true;
        }
        let quorum = self.quorum_of(&view);
        self.quorate = Some(quorum.quorate);
        if self.pending_accept.is_some_and(|p| p.id <= view.id) {
            self.pending_accept = None;
        }
        self.installed = Some(view);
        // Leases are per view: start over, ask every member at once, and report the view
        // when a majority granted (or after an ack timeout, as not primary).
        self.granted_by.iter_mut().for_each(|g| *g = None);
        self.invalidate_primacy();
        self.install_pending = Some(now + self.spec.timing.ack_timeout());
        self.answer_early_requests(now, out);
        self.request_leases(now, out);
        self.update_primacy(now, out);
    }

    pub(super) fn quorum_of(&self, view: &CommittedView) -> Quorum {
        let votes = view.members.iter().map(|m| self.spec.votes(m.id)).sum();
        self.spec.quorum(votes, self.seen_all)
    }

    pub(super) fn on_propose(
        &mut self,
        from: NodeId,
        p: &Proposal,
        now: u64,
        out: &mut Vec<Output>,
    ) {
        self.max_instance = self.max_instance.max(p.id.instance);
        let member = p
            .members
            .binary_search_by_key(&self.me, |m| m.id)
            .ok()
            .is_some_and(|i| p.members[i].inc == self.inc);
        if !member || p.id.coordinator != from {
            return;
        }
        if self.pending_accept.is_some_and(|a| a.id == p.id) {
            return;
        }
        let above_installed = self.installed.as_ref().is_none_or(|v| p.id > v.id);
        let not_below_promise = self.promised.is_none_or(|pr| p.id >= pr);
        if above_installed && not_below_promise && self.keeps_the_primary(from, p) {
            let not_before = self.accept_not_before(&p.members);
            self.promise(p.id, now);
            self.pending_accept = Some(PendingAccept {
                id: p.id,
                coordinator: from,
                not_before,
            });
            self.release_accept(now, out);
        } else if let Some(highest) = self.highest_seen() {
            self.send(from, Body::Reject { id: p.id, highest }, out);
        }
    }

    /// Merges keep the primary: a node refuses a proposal from a node that is not its
    /// coordinator (it knows a lower live node, which the proposal leaves out), and, while it
    /// is primary, a proposal whose members do not hold a majority of the votes.
    fn keeps_the_primary(&mut self, from: NodeId, p: &Proposal) -> bool {
        if self.coordinator() != from {
            return false;
        }
        if self.is_primary() {
            let votes = p.members.iter().map(|m| self.spec.votes(m.id)).sum();
            return self.spec.quorum(votes, true).quorate;
        }
        true
    }

    /// Sends a held-back accept once the leases it waits for have run out.
    /// A message from `from` named its installed view `v`: remember the highest seen, and ask
    /// `from` for the view when we are behind it (at most once per heartbeat for a view).
    pub(super) fn on_view_seen(
        &mut self,
        from: NodeId,
        v: ViewId,
        now: u64,
        out: &mut Vec<Output>,
    ) {
        self.max_instance = self.max_instance.max(v.instance);
        self.max_view_seen = self.max_view_seen.max(Some(v));
        let behind = self.installed.as_ref().is_none_or(|i| v > i.id);
        let asked = self.last_view_req.is_some_and(|(id, at)| {
            id >= v && now.saturating_sub(at) < self.spec.timing.heartbeat_ms
        });
        if behind && !asked {
            self.last_view_req = Some((v, now));
            self.send(from, Body::ViewReq { id: v }, out);
        }
    }

    /// `from` (incarnation `inc`) accepted proposal `id`: record it in our round, if it is
    /// that round's and `from` is in it as that incarnation; then carry the round on.
    pub(super) fn on_accept(
        &mut self,
        from: NodeId,
        inc: u64,
        id: ViewId,
        born_on: Option<ViewId>,
        now: u64,
        out: &mut Vec<Output>,
    ) {
        if let Some(r) = self.round.as_mut()
            && r.proposal.id == id
            && let Ok(i) = r.proposal.members.binary_search_by_key(&from, |m| m.id)
            && r.proposal.members[i].inc == inc
        {
            r.answers[i] = Answer::Accepted(born_on);
        }
        self.coordinate(now, out);
    }

    /// Proposal `id` was rejected because its sender saw `highest`: our round (if it is that
    /// one) is over, and a later one must go above `highest`.
    pub(super) fn on_reject(&mut self, id: ViewId, highest: ViewId, now: u64) {
        self.max_instance = self.max_instance.max(highest.instance);
        if self.round.as_ref().is_some_and(|r| r.proposal.id == id) {
            self.round = None;
            self.changed_since = Some(now);
        }
    }

    /// `from` asked for our installed view: send it, if we have one.
    pub(super) fn on_view_req(&mut self, from: NodeId, out: &mut Vec<Output>) {
        if let Some(v) = self.installed.clone() {
            self.send(from, Body::Commit(v), out);
        }
    }

    pub(super) fn release_accept(&mut self, now: u64, out: &mut Vec<Output>) {
        let Some(a) = self.pending_accept else {
            return;
        };
        if self.promised != Some(a.id) {
            self.pending_accept = None;
            return;
        }
        if now < a.not_before {
            return;
        }
        self.pending_accept = None;
        let born_on = self.my_born_on();
        self.send(a.coordinator, Body::Accept { id: a.id, born_on }, out);
    }
}
