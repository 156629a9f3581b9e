//! The deterministic simulator: many [`Node`]s on one virtual clock and one faulty network.
//!
//! Everything random (delays, loss, duplication, the nodes' own seeds) comes from one seed, so
//! a run replays exactly. Faults: partitions, one-way link cuts, loss, duplication, reordering
//! through random delays, crashes, restarts with a new incarnation, and clock jumps.
//! [`check`] holds the invariant checkers; [`scenario`] builds random fault schedules.

pub mod check;
pub mod scenario;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use ocf_core::NodeId;
use ocf_membership::{EventKind, ViewId};

use super::protocol::{ClusterSpec, CommittedView, Envelope, Node, Output, Rng, ViewMember};

/// The base of every node's clock input, so negative clock jumps stay representable.
const CLOCK_BASE: u64 = 1 << 40;
/// The simulated wall clock at time 0 (incarnations are wall-clock milliseconds).
const WALL_BASE: u64 = 1_700_000_000_000;

fn trace_from() -> Option<u64> {
    static FROM: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *FROM.get_or_init(|| {
        std::env::var("OCF_SIM_TRACE_FROM")
            .ok()
            .and_then(|v| v.parse().ok())
    })
}

/// A node became primary (or primary in another view): which other nodes were primary at that
/// same instant, each asked on its own drifting clock, and in which view.
#[derive(Debug, Clone)]
pub struct PrimacyStart {
    /// Simulated time (ms).
    pub time: u64,
    /// The node that became primary.
    pub node: NodeId,
    /// The view it is primary in.
    pub view: ViewId,
    /// Every other running node primary at that instant, with its view.
    pub others: Vec<(NodeId, ViewId)>,
}

/// One installed view or eviction, as recorded by the simulator.
#[derive(Debug, Clone)]
pub struct Record {
    /// Simulated time (ms).
    pub time: u64,
    /// The node.
    pub node: NodeId,
    /// Its incarnation.
    pub inc: u64,
    /// The event's sequence number.
    pub seq: u64,
    /// The event's kind.
    pub kind: EventKind,
    /// The view.
    pub view: Arc<CommittedView>,
    /// Whether this node saw it quorate.
    pub quorate: bool,
}

struct Pending {
    at: u64,
    order: u64,
    to: usize,
    msg: Envelope,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

/// The network's current behaviour.
#[derive(Debug, Clone)]
pub struct Network {
    /// Probability that a message is lost.
    pub loss: f64,
    /// Probability that a message is delivered twice.
    pub dup: f64,
    /// Smallest delivery delay (ms).
    pub delay_min: u64,
    /// Largest delivery delay (ms); a spread reorders messages.
    pub delay_max: u64,
    /// Partition group per node; messages cross groups never.
    pub group: Vec<u32>,
    /// Cut one-way links `(from, to)` by position.
    pub cut: HashSet<(usize, usize)>,
}

impl Network {
    fn healthy(n: usize) -> Self {
        Self {
            loss: 0.0,
            dup: 0.0,
            delay_min: 1,
            delay_max: 2,
            group: vec![0; n],
            cut: HashSet::new(),
        }
    }
}

/// A simulated cluster.
pub struct Sim {
    spec: Arc<ClusterSpec>,
    time: u64,
    tick_ms: u64,
    next_tick: u64,
    nodes: Vec<Option<Node>>,
    offsets: Vec<i64>,
    /// Per node: its clock's rate error in parts per million (within the spec's drift bound).
    drift: Vec<i64>,
    /// Per node: the view it was primary in after its last step.
    primary_in: Vec<Option<ViewId>>,
    last_inc: Vec<u64>,
    queue: BinaryHeap<Reverse<Pending>>,
    order: u64,
    rng: Rng,
    /// The network's behaviour; change it freely between steps.
    pub net: Network,
    /// Every installed view and eviction, in order (unless `record` is off).
    pub log: Vec<Record>,
    /// Every instant a node became primary, with who else was (unless `record` is off).
    pub primacy: Vec<PrimacyStart>,
    /// Whether to keep [`Sim::log`] (large simulations turn it off).
    pub record: bool,
    /// Messages sent so far (before loss).
    pub sent: u64,
    out: Vec<Output>,
}

impl Sim {
    /// A cluster of `spec`'s nodes, all started at time 0, knowing nothing of each other.
    pub fn new(spec: Arc<ClusterSpec>, seed: u64) -> Self {
        let n = spec.nodes().len();
        let mut sim = Self::empty(spec, seed);
        for pos in 0..n {
            sim.start(pos);
        }
        sim
    }

    /// A cluster that has already formed: every node alive and knowing every other, with view
    /// `1.<lowest id>.<its incarnation>` installed (for large-scale runs).
    pub fn formed(spec: &Arc<ClusterSpec>, seed: u64) -> Self {
        let n = spec.nodes().len();
        let mut sim = Self::empty(Arc::clone(spec), seed);
        let inc = WALL_BASE;
        let first = spec.nodes()[0].id;
        let id = ViewId::new(1, first, inc);
        let view = Arc::new(CommittedView {
            id,
            members: spec
                .nodes()
                .iter()
                .map(|m| ViewMember {
                    id: m.id,
                    inc,
                    born_on: id,
                })
                .collect(),
        });
        let mut out = Vec::new();
        for pos in 0..n {
            let id = spec.nodes()[pos].id;
            let node_seed = sim.rng.next_u64();
            let now = sim.node_clock(pos);
            if let Some(mut node) =
                Node::new_with_peers(Arc::clone(spec), id, inc, node_seed, now, |_| inc)
            {
                node.install_initial(Arc::clone(&view), &mut out);
                sim.nodes[pos] = Some(node);
                sim.out = std::mem::take(&mut out);
                sim.flush(pos);
            }
        }
        // Let the join grace pass without coordinating anew.
        sim
    }

    fn empty(spec: Arc<ClusterSpec>, seed: u64) -> Self {
        let n = spec.nodes().len();
        let tick_ms = (spec.timing.heartbeat_ms / 20).clamp(1, 10);
        let mut rng = Rng::new(seed);
        // Every clock runs at its own rate, anywhere within the drift bound the protocol is
        // told of (the extremes are the interesting cases, so half the nodes get them).
        let bound = i64::from(spec.timing.drift_ppm);
        let drift = (0..n)
            .map(|_| match rng.below(4) {
                0 => bound,
                1 => -bound,
                _ => rng.below(2 * bound as u64 + 1) as i64 - bound,
            })
            .collect();
        Self {
            net: Network::healthy(n),
            time: 0,
            tick_ms,
            next_tick: 0,
            nodes: (0..n).map(|_| None).collect(),
            offsets: vec![0; n],
            drift,
            primary_in: vec![None; n],
            last_inc: vec![0; n],
            queue: BinaryHeap::new(),
            order: 0,
            rng,
            log: Vec::new(),
            primacy: Vec::new(),
            record: true,
            sent: 0,
            out: Vec::new(),
            spec,
        }
    }

    /// The cluster's description.
    pub fn spec(&self) -> &Arc<ClusterSpec> {
        &self.spec
    }

    /// The simulated time (ms).
    pub fn now(&self) -> u64 {
        self.time
    }

    /// The node's monotonic clock: simulated time at the node's own rate, plus its steps.
    fn node_clock(&self, pos: usize) -> u64 {
        let skew = i64::try_from(i128::from(self.time) * i128::from(self.drift[pos]) / 1_000_000)
            .unwrap_or(0);
        (CLOCK_BASE + self.time)
            .saturating_add_signed(skew)
            .saturating_add_signed(self.offsets[pos])
    }

    /// Starts (or restarts) the node at `pos` as a new process with a new incarnation.
    pub fn start(&mut self, pos: usize) {
        let id = self.spec.nodes()[pos].id;
        // A wall clock with millisecond resolution: two starts in one millisecond still get
        // distinct incarnations, as the protocol assumes.
        let inc = (WALL_BASE + self.time + 1).max(self.last_inc[pos] + 1);
        self.last_inc[pos] = inc;
        let seed = self.rng.next_u64();
        let now = self.node_clock(pos);
        self.nodes[pos] = Node::new(Arc::clone(&self.spec), id, inc, seed, now);
    }

    /// Crashes the node at `pos` (its messages in flight still arrive).
    pub fn crash(&mut self, pos: usize) {
        self.nodes[pos] = None;
        self.primary_in[pos] = None;
    }

    /// True when the node at `pos` runs.
    pub fn is_up(&self, pos: usize) -> bool {
        self.nodes[pos].is_some()
    }

    /// Steps the node's clock forward by `delta_ms`, as a pause does (the process sleeps
    /// through it). The drivers feed the protocol a monotonic clock, which never steps back:
    /// a negative `delta_ms` is ignored.
    pub fn jump_clock(&mut self, pos: usize, delta_ms: i64) {
        self.offsets[pos] = self.offsets[pos].saturating_add(delta_ms.max(0));
    }

    /// Removes every partition, cut, loss, duplication and delay spread.
    pub fn heal(&mut self) {
        self.net = Network::healthy(self.nodes.len());
    }

    /// The node at `pos`, if it runs.
    pub fn node(&self, pos: usize) -> Option<&Node> {
        self.nodes[pos].as_ref()
    }

    /// Runs until simulated time `until` (ms).
    pub fn run_until(&mut self, until: u64) {
        while self.time < until {
            let next_msg = self.queue.peek().map_or(u64::MAX, |p| p.0.at);
            if next_msg <= self.next_tick && next_msg <= until {
                let Some(Reverse(p)) = self.queue.pop() else {
                    break;
                };
                self.time = self.time.max(p.at);
                let now = self.node_clock(p.to);
                if let Some(node) = self.nodes[p.to].as_mut() {
                    node.handle(now, p.msg, &mut self.out);
                    self.flush(p.to);
                }
            } else if self.next_tick <= until {
                self.time = self.time.max(self.next_tick);
                self.next_tick += self.tick_ms;
                for pos in 0..self.nodes.len() {
                    let now = self.node_clock(pos);
                    if let Some(node) = self.nodes[pos].as_mut() {
                        node.tick(now, &mut self.out);
                        self.flush(pos);
                    }
                }
            } else {
                self.time = until;
            }
        }
    }

    /// Runs for `ms` more milliseconds.
    pub fn run_for(&mut self, ms: u64) {
        let until = self.time + ms;
        self.run_until(until);
    }

    /// Runs until `done` holds (checked every heartbeat) or `limit` (ms, absolute) passes;
    /// returns the time it held.
    pub fn run_until_true(
        &mut self,
        limit: u64,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Option<u64> {
        let step = self.spec.timing.heartbeat_ms / 4;
        loop {
            if done(self) {
                return Some(self.time);
            }
            if self.time >= limit {
                return None;
            }
            let next = (self.time + step.max(1)).min(limit);
            self.run_until(next);
        }
    }

    fn flush(&mut self, from: usize) {
        self.watch_primacy(from);
        let mut out = std::mem::take(&mut self.out);
        for o in out.drain(..) {
            match o {
                Output::Send { to, msg } => self.transmit(from, to, msg),
                Output::Event(e) => {
                    if self.record {
                        self.log.push(Record {
                            time: self.time,
                            node: self.spec.nodes()[from].id,
                            inc: self.nodes[from].as_ref().map_or(0, Node::incarnation),
                            seq: e.seq,
                            kind: e.kind,
                            quorate: e.quorum.quorate,
                            view: e.view,
                        });
                    }
                }
            }
        }
        self.out = out;
    }

    /// After a step of the node at `pos`: if it became primary (or primary in another view),
    /// ask every other node, at this instant and on its own clock, whether it is primary.
    /// Any overlap of two primary views starts at such a step, so this finds every one.
    fn watch_primacy(&mut self, pos: usize) {
        if !self.record {
            return;
        }
        let now = self.primary_view_of(pos);
        let was = std::mem::replace(&mut self.primary_in[pos], now);
        let Some(view) = now else {
            return;
        };
        if was == Some(view) {
            return;
        }
        let others = (0..self.nodes.len())
            .filter(|&q| q != pos)
            .filter_map(|q| {
                let v = self.primary_view_of(q)?;
                Some((self.spec.nodes()[q].id, v))
            })
            .collect();
        self.primacy.push(PrimacyStart {
            time: self.time,
            node: self.spec.nodes()[pos].id,
            view,
            others,
        });
    }

    fn primary_view_of(&self, pos: usize) -> Option<ViewId> {
        let node = self.nodes[pos].as_ref()?;
        if !node.is_primary_at(self.node_clock(pos)) {
            return None;
        }
        node.installed().map(|v| v.id)
    }

    fn transmit(&mut self, from: usize, to: NodeId, msg: Envelope) {
        self.sent += 1;
        if let Some(from_t) = trace_from()
            && self.time >= from_t
        {
            eprintln!(
                "{} {} -> {}: {:?}",
                self.time,
                self.spec.nodes()[from].id,
                to,
                msg
            );
        }
        let Some(to) = self.spec.position(to) else {
            return;
        };
        if self.net.group[from] != self.net.group[to] || self.net.cut.contains(&(from, to)) {
            return;
        }
        if self.net.loss > 0.0 && self.rng.chance(self.net.loss) {
            return;
        }
        if self.net.dup > 0.0 && self.rng.chance(self.net.dup) {
            self.enqueue(to, msg.clone());
        }
        self.enqueue(to, msg);
    }

    fn enqueue(&mut self, to: usize, msg: Envelope) {
        let spread = self.net.delay_max.saturating_sub(self.net.delay_min);
        let at = self.time + self.net.delay_min + self.rng.below(spread + 1);
        self.order += 1;
        self.queue.push(Reverse(Pending {
            at,
            order: self.order,
            to,
            msg,
        }));
    }

    /// Every node's state and the network's, one line each (for failure reports).
    pub fn describe(&self) -> String {
        let mut text = format!("t={} net={:?}\n", self.time, self.net);
        for (pos, n) in self.nodes.iter().enumerate() {
            match n {
                Some(n) => text.push_str(&n.summary()),
                None => {
                    let _ = write!(text, "node {} down", self.spec.nodes()[pos].id);
                }
            }
            text.push('\n');
        }
        text
    }

    /// The positions of the running nodes.
    pub fn up(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&p| self.nodes[p].is_some())
            .collect()
    }

    /// True when every running node has installed one and the same view whose members are
    /// exactly the running nodes with their current incarnations.
    pub fn converged(&self) -> bool {
        let up = self.up();
        let Some(first) = up.first().and_then(|&p| self.nodes[p].as_ref()) else {
            return true;
        };
        let Some(view) = first.installed() else {
            return false;
        };
        if view.members.len() != up.len() {
            return false;
        }
        up.iter().all(|&p| {
            self.nodes[p].as_ref().is_some_and(|n| {
                n.installed().is_some_and(|v| v.id == view.id)
                    && view.contains(n.id(), n.incarnation())
            })
        })
    }
}
