//! One node's protocol state machine: failure detection and view agreement, with no I/O.
//!
//! Feed it [`Node::handle`] (a message arrived) and [`Node::tick`] (time passed, called at
//! least every few milliseconds); collect the [`Output`]s: messages to send and events to
//! deliver. Time is an input in milliseconds from any clock; the node keeps its own monotonic
//! time, so a clock that steps backwards only delays it. Randomness comes from a seed.
//! `membership/ALGORITHM.md` states the protocol and its invariants.

mod agreement;
mod detector;
mod health;
mod lease;

use std::collections::VecDeque;
use std::sync::Arc;

use ocf_core::NodeId;
use ocf_membership::{EventKind, Quorum, ViewId};

use super::message::{Body, CommittedView, Envelope, Proposal, ProposedMember, Update};
use super::rng::{Cursor, Rng};
use super::spec::{ClusterSpec, GOSSIP_PER_MESSAGE, gossip_retransmits};

/// Something the node wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this message to that node.
    Send {
        /// The destination.
        to: NodeId,
        /// The message.
        msg: Envelope,
    },
    /// Deliver this event to local subscribers.
    Event(Event),
}

/// A membership event produced by the core: a view was installed, this node's primacy lease
/// lapsed or came back, or this node learnt it was left out of a newer view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Gapless per process, from 1.
    pub seq: u64,
    /// What happened.
    pub kind: EventKind,
    /// The installed view (for `Evicted`, the last one installed).
    pub view: Arc<CommittedView>,
    /// The quorum of that view as this node holds it: `quorate` is this node's primacy (the
    /// view's votes are a majority *and* a majority granted this node its lease).
    pub quorum: Quorum,
    /// When the event took effect, on this node's clock (ms, the same clock as the inputs):
    /// the instant a lease lapsed is in the past when the lapse is noticed.
    pub at: u64,
    /// For a newly installed view: when this node stopped acting on its previous view (it
    /// accepted this view's proposal), if it was primary until then.
    pub prior_primary_until: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Never heard of in this process's life.
    Unknown,
    Alive,
    Dead,
}

#[derive(Debug, Clone, Copy)]
struct Peer {
    inc: u64,
    refute: u32,
    state: State,
}

#[derive(Debug, Clone, Copy)]
struct Probe {
    id: u32,
    target: usize,
    sent: u64,
    indirect_sent: bool,
    /// Helpers asked to probe the target, and how many of them said it stayed silent.
    helpers: u8,
    nacks: u8,
    /// Its period ended unanswered (its target became a suspect then). It is kept until
    /// `dead_ms` after it was sent, because a late ack, direct or through a helper, still
    /// proves the target alive after `sent`.
    expired: bool,
}

/// A live peer whose probe went unanswered for a whole period.
#[derive(Debug, Clone, Copy)]
struct Suspicion {
    target: usize,
    /// When the suspicion started (the death deadline counts from here).
    since: u64,
    /// When the probe that raised it was sent: an ack to this or any later probe refutes it.
    probe_sent: u64,
    /// Helpers that reported the suspect silent since (independent confirmations).
    confirmations: u8,
}

/// A probe this node relays for another (`PingReq`): if the target stays silent for an ack
/// timeout, the origin gets a [`Body::Nack`].
#[derive(Debug, Clone, Copy)]
struct Relay {
    probe: u32,
    origin: NodeId,
    target: NodeId,
    sent: u64,
}

/// An accept held back until every lease this node granted to a node the proposal leaves out
/// has run out.
#[derive(Debug, Clone, Copy)]
struct PendingAccept {
    id: ViewId,
    coordinator: NodeId,
    not_before: u64,
}

/// A member's answer to a proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Waiting,
    /// Accepted, with the member's `born_on` if its installed view holds it.
    Accepted(Option<ViewId>),
}

#[derive(Debug)]
struct Round {
    proposal: Arc<Proposal>,
    /// Per proposal member: its answer, if it accepted.
    answers: Vec<Answer>,
    started: u64,
    last_send: u64,
    /// The coordinator's own accept counts from here (its grants to left-out nodes lapsed).
    ready_at: u64,
}

/// One node of the built-in membership protocol.
#[derive(Debug)]
pub struct Node {
    spec: Arc<ClusterSpec>,
    me: NodeId,
    my_pos: usize,
    inc: u64,
    refute: u32,
    rng: Rng,
    /// Monotonic local time, advanced by the positive steps of the input clock.
    clock: u64,
    last_input: Option<u64>,
    started: u64,
    peers: Vec<Peer>,
    // Failure detection.
    probe_seq: u32,
    next_period: u64,
    alive_cursor: Cursor,
    other_cursor: Cursor,
    probes: Vec<Probe>,
    suspects: Vec<Suspicion>,
    gossip: VecDeque<(Update, u32)>,
    // View agreement.
    candidates: Vec<ProposedMember>,
    candidates_dirty: bool,
    installed: Option<Arc<CommittedView>>,
    quorate: Option<bool>,
    seen_all: bool,
    promised: Option<ViewId>,
    max_instance: u64,
    max_view_seen: Option<ViewId>,
    round: Option<Round>,
    changed_since: Option<u64>,
    evicted_from: Option<ViewId>,
    last_view_req: Option<(ViewId, u64)>,
    seq: u64,
    pending_accept: Option<PendingAccept>,
    // Primacy leases (lease.rs).
    lease_seq: u32,
    /// Recent lease requests: (number, sent).
    lease_sent: VecDeque<(u32, u64)>,
    /// Per position: the send time of the newest request it granted in the installed view.
    granted_by: Vec<Option<u64>>,
    /// Per position: when this node last granted that node primacy.
    granted_to: Vec<Option<u64>>,
    /// Requests for a view this node has not installed yet, answered when it does.
    early_requests: Vec<(usize, ViewId, u32)>,
    /// [`Node::primary_until`] as last computed; cleared by whatever changes it.
    primacy_cache: std::cell::Cell<lease::Cached>,
    /// Primacy as last reported in an event.
    reported_primary: Option<bool>,
    /// An installed view whose event waits for the first lease (or this deadline).
    install_pending: Option<u64>,
    /// When this node stopped acting on its installed view to accept a newer one, if it was
    /// primary then.
    left_primary_at: Option<u64>,
    // Lifeguard (health.rs).
    /// Local health multiplier, 0 to [`health::MAX_LHM`]: every timeout is scaled by `1 + lhm`.
    lhm: u32,
    relays: Vec<Relay>,
    /// Set after a pause: act on nothing until a majority answered (or `dead_ms` passed).
    quiet: Option<health::Quiet>,
    /// When the last tick was due (late ticks mean this node is slow).
    next_tick_due: Option<u64>,
}

impl Node {
    /// A fresh process of node `me`, with incarnation `inc` (which must exceed every earlier
    /// incarnation of this node: wall-clock milliseconds at start do), a random `seed`, and
    /// the time `now` in milliseconds. Returns `None` when `me` is not in `spec`.
    pub fn new(spec: Arc<ClusterSpec>, me: NodeId, inc: u64, seed: u64, now: u64) -> Option<Self> {
        let my_pos = spec.position(me)?;
        let n = spec.nodes().len();
        let mut rng = Rng::new(seed ^ u64::from(me.get()).rotate_left(32) ^ inc);
        let mut peers = vec![
            Peer {
                inc: 0,
                refute: 0,
                state: State::Unknown,
            };
            n
        ];
        peers[my_pos] = Peer {
            inc,
            refute: 0,
            state: State::Alive,
        };
        let alive_cursor = Cursor::new(n, &mut rng);
        let other_cursor = Cursor::new(n, &mut rng);
        // Spread the first probe over one period so nodes started together do not beat in step.
        let first = rng.below(spec.timing.heartbeat_ms);
        Some(Self {
            me,
            my_pos,
            inc,
            refute: 0,
            clock: 0,
            last_input: Some(now),
            started: 0,
            peers,
            probe_seq: 0,
            next_period: first,
            alive_cursor,
            other_cursor,
            probes: Vec::new(),
            suspects: Vec::new(),
            gossip: VecDeque::new(),
            candidates: vec![ProposedMember { id: me, inc }],
            candidates_dirty: true,
            installed: None,
            quorate: None,
            seen_all: false,
            promised: None,
            max_instance: 0,
            max_view_seen: None,
            round: None,
            changed_since: None,
            evicted_from: None,
            last_view_req: None,
            seq: 0,
            pending_accept: None,
            lease_seq: 0,
            lease_sent: VecDeque::new(),
            granted_by: vec![None; n],
            // A new process cannot know what its predecessor granted just before it died: it
            // counts as having granted every node at its own start.
            granted_to: vec![Some(0); n],
            early_requests: Vec::new(),
            primacy_cache: std::cell::Cell::new(lease::Cached::Stale),
            reported_primary: None,
            install_pending: None,
            left_primary_at: None,
            lhm: 0,
            relays: Vec::new(),
            quiet: None,
            next_tick_due: None,
            rng,
            spec,
        })
    }

    /// Like [`Node::new`], but every other node is already known alive with incarnation given
    /// by `inc_of` (simulations of large clusters start from a formed cluster this way).
    pub fn new_with_peers(
        spec: Arc<ClusterSpec>,
        me: NodeId,
        inc: u64,
        seed: u64,
        now: u64,
        inc_of: impl Fn(NodeId) -> u64,
    ) -> Option<Self> {
        let mut node = Self::new(spec, me, inc, seed, now)?;
        for (i, n) in node.spec.nodes().iter().enumerate() {
            if i != node.my_pos {
                node.peers[i] = Peer {
                    inc: inc_of(n.id),
                    refute: 0,
                    state: State::Alive,
                };
            }
        }
        node.candidates_dirty = true;
        Some(node)
    }

    /// Installs `view` directly (simulations that start from a formed cluster). Ignored
    /// unless the view holds this node with its incarnation.
    pub fn install_initial(&mut self, view: Arc<CommittedView>, out: &mut Vec<Output>) {
        let now = self.clock;
        self.try_install(view, now, out);
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.me
    }

    /// This process's incarnation.
    pub fn incarnation(&self) -> u64 {
        self.inc
    }

    /// The view installed now.
    pub fn installed(&self) -> Option<&Arc<CommittedView>> {
        self.installed.as_ref()
    }

    /// Whether the installed view is quorate by its votes (see [`Node::is_primary`] for
    /// whether this node may act on it).
    pub fn is_quorate(&self) -> bool {
        self.quorate.unwrap_or(false)
    }

    /// The node this one believes coordinates its partition (the lowest live id it knows).
    pub fn coordinator(&mut self) -> NodeId {
        self.refresh_candidates();
        self.candidates.first().map_or(self.me, |m| m.id)
    }

    /// A one-line description of this node's state, for simulator traces.
    pub fn summary(&self) -> String {
        let peers: Vec<String> = self
            .spec
            .nodes()
            .iter()
            .zip(&self.peers)
            .map(|(n, p)| format!("{}:{:?}/{}/{}", n.id, p.state, p.inc % 100_000, p.refute))
            .collect();
        format!(
            "node {} inc {} refute {} clock {} primary {} lhm {} quiet {} installed {:?} promised {:?} max_inst {} round {:?} suspects {:?} peers [{}]",
            self.me,
            self.inc % 100_000,
            self.refute,
            self.clock,
            self.is_primary(),
            self.lhm,
            self.quiet.is_some(),
            self.installed.as_ref().map(|v| (
                v.id.to_string(),
                v.members.iter().map(|m| m.id.get()).collect::<Vec<_>>()
            )),
            self.promised.map(|p| p.to_string()),
            self.max_instance,
            self.round
                .as_ref()
                .map(|r| (r.proposal.id.to_string(), r.answers.clone())),
            self.suspects,
            peers.join(" ")
        )
    }

    fn advance(&mut self, now: u64) -> u64 {
        if let Some(last) = self.last_input {
            self.clock += now.saturating_sub(last);
        }
        self.last_input = Some(now);
        self.clock
    }

    /// This node's clock at input time `now`, without advancing it.
    fn clock_at(&self, now: u64) -> u64 {
        self.clock + self.last_input.map_or(0, |last| now.saturating_sub(last))
    }

    // ---------------------------------------------------------------- sending

    fn envelope(&mut self, body: Body) -> Envelope {
        let n = self.gossip.len().min(GOSSIP_PER_MESSAGE);
        let mut gossip = Vec::with_capacity(n);
        for _ in 0..n {
            if let Some((u, left)) = self.gossip.pop_front() {
                gossip.push(u);
                if left > 1 {
                    self.gossip.push_back((u, left - 1));
                }
            }
        }
        Envelope {
            from: self.me,
            inc: self.inc,
            refute: self.refute,
            view: self.installed.as_ref().map(|v| v.id),
            gossip,
            body,
        }
    }

    fn send(&mut self, to: NodeId, body: Body, out: &mut Vec<Output>) {
        let msg = self.envelope(body);
        out.push(Output::Send { to, msg });
    }

    fn spread(&mut self, u: Update) {
        self.gossip.retain(|(g, _)| g.node != u.node);
        let times = gossip_retransmits(self.spec.nodes().len());
        self.gossip.push_front((u, times));
    }

    fn record(&self, pos: usize) -> Update {
        let p = self.peers[pos];
        Update {
            node: self.spec.nodes()[pos].id,
            inc: p.inc,
            refute: p.refute,
            dead: p.state == State::Dead,
        }
    }

    // ---------------------------------------------------------------- liveness records

    fn set_peer(&mut self, pos: usize, inc: u64, refute: u32, state: State) {
        let old = self.peers[pos];
        self.peers[pos] = Peer { inc, refute, state };
        if old.state != state || old.inc != inc {
            self.candidates_dirty = true;
            if state != State::Alive || old.inc != inc {
                self.suspects.retain(|s| s.target != pos);
                self.probes.retain(|p| p.target != pos);
            }
        }
        let u = self.record(pos);
        self.spread(u);
    }

    /// A message came straight from `pos` with its own record: it is alive now.
    fn heard_from(&mut self, pos: usize, inc: u64, refute: u32, out: &mut Vec<Output>) -> bool {
        let p = self.peers[pos];
        if inc < p.inc {
            // A delayed packet of an earlier process of that node.
            return false;
        }
        if inc > p.inc || p.state == State::Unknown {
            self.set_peer(pos, inc, refute, State::Alive);
        } else if p.state == State::Dead {
            if refute > p.refute {
                self.set_peer(pos, inc, refute, State::Alive);
            } else {
                // Tell it it was declared dead, so it refutes.
                let u = self.record(pos);
                let to = self.spec.nodes()[pos].id;
                let mut msg = self.envelope(Body::Notice);
                msg.gossip.insert(0, u);
                out.push(Output::Send { to, msg });
                return true;
            }
        } else if refute > p.refute {
            self.peers[pos].refute = refute;
        }
        // A message alone does not clear a suspicion: a node that hears us but cannot be
        // heard (or the reverse) must not look healthy. Only an answer to one of our own
        // messages (an ack or a lease grant) proves the link works both ways.
        true
    }

    fn apply_gossip(&mut self, u: Update) {
        if u.node == self.me {
            if u.inc == self.inc && u.dead && u.refute >= self.refute {
                // Others thought us dead: we may be the slow one (Lifeguard).
                self.raise_lhm();
                self.refute = u.refute + 1;
                let me = Update {
                    node: self.me,
                    inc: self.inc,
                    refute: self.refute,
                    dead: false,
                };
                self.peers[self.my_pos].refute = self.refute;
                self.spread(me);
            }
            return;
        }
        let Some(pos) = self.spec.position(u.node) else {
            return;
        };
        let p = self.peers[pos];
        let current = (p.inc, p.refute, p.state == State::Dead);
        if p.state == State::Unknown || u.key() > current {
            let state = if u.dead { State::Dead } else { State::Alive };
            if p.state == State::Unknown && u.dead {
                // A death we never saw a life for: remember the incarnation, nothing to spread.
                self.peers[pos] = Peer {
                    inc: u.inc,
                    refute: u.refute,
                    state: State::Dead,
                };
                return;
            }
            self.set_peer(pos, u.inc, u.refute, state);
        }
    }

    fn declare_dead(&mut self, pos: usize, out: &mut Vec<Output>) {
        let p = self.peers[pos];
        if p.state != State::Alive {
            return;
        }
        self.set_peer(pos, p.inc, p.refute, State::Dead);
        let coordinator = self.coordinator();
        if coordinator != self.me {
            self.send(coordinator, Body::Notice, out);
        }
    }

    fn refresh_candidates(&mut self) {
        if !self.candidates_dirty {
            return;
        }
        self.candidates_dirty = false;
        self.candidates.clear();
        for (i, n) in self.spec.nodes().iter().enumerate() {
            let p = self.peers[i];
            if i == self.my_pos || p.state == State::Alive {
                self.candidates.push(ProposedMember {
                    id: n.id,
                    inc: if i == self.my_pos { self.inc } else { p.inc },
                });
            }
        }
    }

    // ---------------------------------------------------------------- time

    /// Time passed: probe, time out probes and suspects, renew leases, coordinate.
    pub fn tick(&mut self, now: u64, out: &mut Vec<Output>) {
        let gap = self.last_input.map(|last| now.saturating_sub(last));
        let now = self.advance(now);
        self.notice_lateness(now, gap);
        self.end_quiet_if_heard(now);
        self.detect(now, out);
        self.relay_timeouts(now, out);
        self.release_accept(now, out);
        self.coordinate(now, out);
        self.update_primacy(now, out);
    }

    /// When this node next needs [`Node::tick`], in the driver's time (the `now` it passes);
    /// before its first tick, at once (`None` only before any input). It is the node's tick cadence, a tenth
    /// of a heartbeat after the last tick (what its starvation detector expects, and the
    /// granularity its probe, round and lease timers are checked at), or, when that is sooner,
    /// the end of its primacy lease. A driver may sleep until then (a packet may come first);
    /// ticking earlier is harmless.
    pub fn next_deadline(&self) -> Option<u64> {
        let last = self.last_input?;
        let due = self.next_tick_due.map_or(last, |due| {
            last.saturating_add(due.saturating_sub(self.clock))
        });
        Some(self.primary_deadline().map_or(due, |p| p.min(due)))
    }

    // ---------------------------------------------------------------- messages

    /// A message arrived (already authenticated by the transport).
    pub fn handle(&mut self, now: u64, msg: Envelope, out: &mut Vec<Output>) {
        let gap = self.last_input.map(|last| now.saturating_sub(last));
        let now = self.advance(now);
        self.notice_pause(now, gap);
        self.dispatch(now, msg, out);
        self.update_primacy(now, out);
    }

    fn dispatch(&mut self, now: u64, msg: Envelope, out: &mut Vec<Output>) {
        if msg.from == self.me {
            return;
        }
        let Some(pos) = self.spec.position(msg.from) else {
            return;
        };
        if !self.heard_from(pos, msg.inc, msg.refute, out) {
            return;
        }
        for u in &msg.gossip {
            self.apply_gossip(*u);
        }
        if let Some(v) = msg.view {
            self.on_view_seen(msg.from, v, now, out);
        }
        match msg.body {
            Body::Ping { probe } => self.send(msg.from, Body::Ack { probe }, out),
            Body::Ack { probe } => self.on_ack(pos, probe, now),
            Body::PingReq { probe, target } => self.relay(probe, msg.from, target, now, out),
            Body::RelayPing { probe, origin } => {
                self.send(msg.from, Body::RelayAck { probe, origin }, out);
            }
            Body::RelayAck { probe, origin } => self.on_relay_ack(msg.from, probe, origin, out),
            Body::IndirectAck { probe, target } => self.on_indirect_ack(probe, target, now),
            Body::Nack { probe, target } => self.nacked(probe, target),
            Body::LeaseReq { seq } => self.on_lease_request(pos, msg.view, seq, out, now),
            Body::LeaseGrant { seq } => self.on_lease_grant(pos, msg.view, seq, now),
            Body::Notice | Body::App(_) => {}
            Body::Propose(p) => self.on_propose(msg.from, &p, now, out),
            Body::Accept { id, born_on } => {
                self.on_accept(msg.from, msg.inc, id, born_on, now, out);
            }
            Body::Reject { id, highest } => self.on_reject(id, highest, now),
            Body::Commit(v) => self.try_install(v, now, out),
            Body::ViewReq { .. } => self.on_view_req(msg.from, out),
        }
    }
}
