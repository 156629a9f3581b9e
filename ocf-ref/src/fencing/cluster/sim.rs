//! A deterministic simulation of the cluster fencer: five [`FenceNode`]s, a membership
//! oracle that installs agreed views (primary only on a majority side, the minority's primacy
//! ending before the majority's new view), a lossy, reordering network, devices that take
//! time and sometimes fail, partitions, crashes and restarts, and clients asking at random.
//! Every run is seeded; the checkers in [`check`] name the invariant a run broke.
//!
//! Replay one seed: `OCF_FENCE_SIM_SEED=<seed> cargo test -p ocf-ref --test fencing_sim replay
//! -- --ignored --nocapture`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::time::Duration;

use ocf_core::{NodeId, NodeName};
use ocf_fencing::{
    DeviceAction, DeviceAttempt, FenceAction, FenceError, FenceEvent, FenceId, FenceOutcome,
    FenceRecord, FenceRequest, IncidentId, LevelAttempt, RequesterId,
};
use ocf_membership::ViewId;

use super::protocol::message::{Caps, Msg, ReqId};
use super::protocol::{FenceNode, Out, Settings, ViewInfo};
use crate::membership::protocol::Rng;

/// The cluster's size.
pub const NODES: u32 = 5;
/// Simulated time of the faulty phase, then of the quiet phase that must settle everything.
pub const FAULTY_MS: u64 = 30_000;
const QUIET_MS: u64 = 30_000;
const TICK_MS: u64 = 50;
/// The gap between the minority losing primacy and the majority installing its view (the
/// lease wait of the real engine).
const LEASE_GAP_MS: u64 = 400;

/// One device action, as the hardware saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// The incident.
    pub id: FenceId,
    /// The attempt.
    pub attempt: u32,
    /// The node that ran it.
    pub node: u32,
    /// Its life (incarnation count) then.
    pub life: u32,
    /// The target.
    pub target: NodeName,
    /// The action.
    pub action: FenceAction,
    /// When it started and ended.
    pub start: u64,
    /// When it ended.
    pub end: u64,
    /// Whether it succeeded.
    pub ok: bool,
    /// Whether the node was in a primary view when it started.
    pub primary_at_start: bool,
}

/// One client request and what became of it.
#[derive(Debug, Clone)]
pub struct Asked {
    /// The node asked.
    pub node: u32,
    /// Its life then.
    pub life: u32,
    /// The request.
    pub request: FenceRequest,
    /// When.
    pub at: u64,
    /// Every answer it got (one is right).
    pub answers: Vec<Result<FenceRecord, FenceError>>,
}

/// What a run recorded.
#[derive(Debug, Default)]
pub struct Trace {
    /// The seed.
    pub seed: u64,
    /// Device actions.
    pub actions: Vec<Action>,
    /// Requests.
    pub asked: Vec<Asked>,
    /// Per node and life: the node-death events it delivered.
    pub deaths: BTreeMap<(u32, u32), Vec<ocf_fencing::NodeDeath>>,
    /// Per node: the intervals `[from, to)` it was in a primary view, by life.
    pub primary: BTreeMap<u32, Vec<(u64, u64)>>,
    /// When each node crashed (target lives end).
    pub crashes: Vec<(u32, u64)>,
    /// When each node (re)joined a primary view after a crash or partition.
    pub joins: Vec<(u32, u64)>,
    /// Final history per live node.
    pub histories: BTreeMap<u32, Vec<FenceRecord>>,
    /// A short log of the faults, for a failing seed's report.
    pub faults: Vec<String>,
}

#[derive(Debug)]
enum Ev {
    Deliver {
        to: u32,
        life: u32,
        from: u32,
        msg: Box<Msg>,
    },
    DeviceDone {
        node: u32,
        life: u32,
        id: FenceId,
        attempt: u32,
        action: usize,
    },
    Tick {
        node: u32,
        life: u32,
    },
    View {
        node: u32,
        life: u32,
        view: ViewInfo,
    },
}

struct Sim {
    rng: Rng,
    now: u64,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: BTreeMap<u64, Ev>,
    next_ev: u64,
    nodes: BTreeMap<u32, (FenceNode, u32)>,
    lives: BTreeMap<u32, u32>,
    component: BTreeMap<u32, u32>,
    in_primary: BTreeMap<u32, Option<u64>>,
    installed: BTreeMap<u32, u64>,
    view_instance: u64,
    loss: f64,
    reqs: BTreeMap<(u32, u32, ReqId), usize>,
    trace: Trace,
    caps: BTreeMap<u32, Caps>,
    fail_rate: f64,
}

fn name(i: u32) -> NodeName {
    // "n1".."n5" are valid names.
    NodeName::new(format!("n{i}"))
        .unwrap_or_else(|_| NodeName::new("n").unwrap_or_else(|_| unreachable!()))
}

impl Sim {
    fn schedule(&mut self, at: u64, ev: Ev) {
        self.next_ev += 1;
        self.queue.push(Reverse((at, self.next_ev)));
        self.events.insert(self.next_ev, ev);
    }

    fn settings() -> Settings {
        Settings {
            history_limit: 200,
            lost_node_action: Some(FenceAction::Reboot),
            lost_node_timeout: Duration::from_secs(20),
        }
    }

    fn start_node(&mut self, i: u32) {
        let life = self.lives.entry(i).and_modify(|l| *l += 1).or_insert(1);
        let life = *life;
        self.installed.remove(&i);
        let caps = self.caps.get(&i).cloned().unwrap_or_default();
        let node = FenceNode::new(
            NodeId::new(i),
            name(i),
            u64::from(life),
            caps,
            Self::settings(),
        );
        self.nodes.insert(i, (node, life));
        self.schedule(self.now + TICK_MS, Ev::Tick { node: i, life });
    }

    /// Installs views on every component: minorities first (their primacy ends), the
    /// majority after the lease gap.
    fn reconfigure(&mut self) {
        let mut comps: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for (&n, &c) in &self.component {
            if self.nodes.contains_key(&n) {
                comps.entry(c).or_default().push(n);
            }
        }
        for members in comps.values() {
            self.view_instance += 1;
            let primary = members.len() as u32 * 2 > NODES;
            let coordinator = members.iter().copied().min().unwrap_or(1);
            let view = ViewInfo {
                id: ViewId::new(self.view_instance, NodeId::new(coordinator), 0),
                members: members.iter().map(|&m| (NodeId::new(m), name(m))).collect(),
                primary,
            };
            let at = if primary {
                self.now + LEASE_GAP_MS
            } else {
                self.now
            };
            for &m in members {
                // Everyone stops acting on the old view now; the primary side starts later.
                self.leave_primary(m);
                let life = self.lives.get(&m).copied().unwrap_or(0);
                let jitter = self.rng.below(20);
                self.schedule(
                    at + jitter,
                    Ev::View {
                        node: m,
                        life,
                        view: view.clone(),
                    },
                );
            }
        }
    }

    fn leave_primary(&mut self, node: u32) {
        if let Some(Some(from)) = self.in_primary.insert(node, None) {
            self.trace
                .primary
                .entry(node)
                .or_default()
                .push((from, self.now));
        }
        if let Some((n, _)) = self.nodes.get_mut(&node) {
            let mut out = Vec::new();
            n.set_primary(self.now, false, &mut out);
            self.handle_outs(node, out);
        }
    }

    fn handle_outs(&mut self, node: u32, outs: Vec<Out>) {
        let life = self.lives.get(&node).copied().unwrap_or(0);
        for o in outs {
            match o {
                Out::Send { to, msg } => {
                    let to = to.get();
                    let copies = if self.rng.chance(0.02) { 2 } else { 1 };
                    for _ in 0..copies {
                        if self.rng.chance(self.loss) {
                            continue;
                        }
                        // Only within one component.
                        if self.component.get(&node) != self.component.get(&to) {
                            continue;
                        }
                        let delay = 1 + self.rng.below(30);
                        let to_life = self.lives.get(&to).copied().unwrap_or(0);
                        // Bytes on the wire, as the real link carries them.
                        let Some(msg) = Msg::decode(&msg.encode()) else {
                            continue;
                        };
                        self.schedule(
                            self.now + delay,
                            Ev::Deliver {
                                to,
                                life: to_life,
                                from: node,
                                msg: Box::new(msg),
                            },
                        );
                    }
                }
                Out::Execute {
                    id,
                    attempt,
                    request,
                } => {
                    let ok = !self.rng.chance(self.fail_rate);
                    let took = 20 + self.rng.below(800);
                    let primary_at_start = self.in_primary.get(&node).copied().flatten().is_some();
                    self.trace.actions.push(Action {
                        id,
                        attempt,
                        node,
                        life,
                        target: request.target.clone(),
                        action: request.action,
                        start: self.now,
                        end: self.now + took,
                        ok,
                        primary_at_start,
                    });
                    let action = self.trace.actions.len() - 1;
                    self.schedule(
                        self.now + took,
                        Ev::DeviceDone {
                            node,
                            life,
                            id,
                            attempt,
                            action,
                        },
                    );
                }
                Out::Answer { req, result } => {
                    if let Some(&i) = self.reqs.get(&(node, life, req)) {
                        if let Some(a) = self.trace.asked.get_mut(i) {
                            a.answers.push(result);
                        }
                    }
                }
                Out::Event(FenceEvent::NodeDeath { death }) => {
                    self.trace
                        .deaths
                        .entry((node, life))
                        .or_default()
                        .push(*death);
                }
                Out::Event(_) => {}
            }
        }
    }

    /// Every message due at instant `at` for node `to` (in its life `life`) is handled with
    /// the one being delivered as a batch, as the driver does with what waits on its link.
    fn take_deliveries(&mut self, at: u64, to: u32, life: u32, batch: &mut Vec<(u32, Box<Msg>)>) {
        while let Some(Reverse((next_at, next_k))) = self.queue.peek().copied() {
            let same = next_at == at
                && matches!(self.events.get(&next_k),
                    Some(Ev::Deliver { to: t, life: l, .. }) if *t == to && *l == life);
            if !same {
                break;
            }
            self.queue.pop();
            if let Some(Ev::Deliver { from, msg, .. }) = self.events.remove(&next_k) {
                batch.push((from, msg));
            }
        }
    }

    fn step(&mut self, until: u64) {
        while let Some(Reverse((at, k))) = self.queue.peek().copied() {
            if at > until {
                break;
            }
            self.queue.pop();
            self.now = at;
            let Some(ev) = self.events.remove(&k) else {
                continue;
            };
            let mut out = Vec::new();
            match ev {
                Ev::Deliver {
                    to,
                    life,
                    from,
                    msg,
                } => {
                    let mut batch = vec![(from, msg)];
                    self.take_deliveries(at, to, life, &mut batch);
                    let here = self.component.get(&to).copied();
                    if let Some((n, l)) = self.nodes.get_mut(&to) {
                        if *l == life {
                            n.batch_begin();
                            for (from, msg) in batch {
                                if self.component.get(&from).copied() == here {
                                    n.receive(at, NodeId::new(from), *msg, &mut out);
                                }
                            }
                            n.batch_end(at, &mut out);
                        }
                    }
                    self.handle_outs(to, out);
                }
                Ev::DeviceDone {
                    node,
                    life,
                    id,
                    attempt,
                    action,
                } => {
                    let ok = self.trace.actions.get(action).is_some_and(|a| a.ok);
                    let result = self.device_result(id, action, ok);
                    if let Some((n, l)) = self.nodes.get_mut(&node) {
                        if *l == life {
                            n.executed(at, id, attempt, result, &mut out);
                        }
                    }
                    self.handle_outs(node, out);
                }
                Ev::Tick { node, life } => {
                    if let Some((n, l)) = self.nodes.get_mut(&node) {
                        if *l == life {
                            n.tick(at, &mut out);
                            self.schedule(at + TICK_MS, Ev::Tick { node, life });
                        }
                    }
                    self.handle_outs(node, out);
                }
                Ev::View { node, life, view } => {
                    let still = view.members.iter().all(|(m, _)| {
                        self.component.get(&m.get()) == self.component.get(&node)
                            && self.nodes.contains_key(&m.get())
                    }) && view.members.len()
                        == self
                            .component
                            .iter()
                            .filter(|(n, c)| {
                                Some(*c) == self.component.get(&node) && self.nodes.contains_key(n)
                            })
                            .count();
                    let newer = self
                        .installed
                        .get(&node)
                        .is_none_or(|&v| v < view.id.instance);
                    if !still || !newer {
                        continue; // superseded by a later change
                    }
                    self.installed.insert(node, view.id.instance);
                    if let Some((n, l)) = self.nodes.get_mut(&node) {
                        if *l == life {
                            if view.primary {
                                self.in_primary.insert(node, Some(at));
                                self.trace.joins.push((node, at));
                            }
                            n.install_view(at, view, &mut out);
                        }
                    }
                    self.handle_outs(node, out);
                }
            }
        }
        self.now = until;
    }

    fn device_result(
        &self,
        id: FenceId,
        action: usize,
        ok: bool,
    ) -> Result<FenceRecord, FenceError> {
        let a = self.trace.actions.get(action);
        let (target, act) = a.map_or((name(1), FenceAction::Off), |a| {
            (a.target.clone(), a.action)
        });
        let device = "dev".parse().map_err(|_| FenceError::unavailable("bad id"));
        let device = device?;
        let outcome = if ok {
            FenceOutcome::Succeeded
        } else {
            FenceOutcome::Failed {
                reason: "simulated failure".into(),
            }
        };
        let attempt = DeviceAttempt::new(device, DeviceAction::from(act), outcome.clone(), 0, 0);
        let requester: RequesterId = "sim@x"
            .parse()
            .map_err(|_| FenceError::unavailable("bad id"))?;
        let mut record = FenceRecord::start(id, target.clone(), act, requester, None);
        record.levels = vec![LevelAttempt::new(1, vec![attempt], ok)];
        record.outcome = Some(outcome);
        if ok {
            Ok(record)
        } else {
            Err(FenceError::Failed {
                target,
                action: act,
                reason: "simulated failure".into(),
                record: Box::new(record),
            })
        }
    }

    /// One step of the faulty phase at time `t`: requests, a partition or heal, a crash, a
    /// restart, or nothing.
    fn fault(&mut self, t: u64) {
        match self.rng.below(10) {
            0..=4 => {
                // A burst of requests for one target from several nodes.
                let target = 1 + self.rng.below(u64::from(NODES)) as u32;
                let action = if self.rng.chance(0.8) {
                    FenceAction::Reboot
                } else {
                    FenceAction::Off
                };
                let incident = self
                    .rng
                    .chance(0.5)
                    .then(|| IncidentId::new(format!("n{target}@burst-{t}")).ok())
                    .flatten();
                for _ in 0..=self.rng.below(4) {
                    let node = 1 + self.rng.below(u64::from(NODES)) as u32;
                    self.ask(node, target, action, incident.clone());
                }
            }
            5 => {
                // A 2|3 partition (or heal).
                let split = self.component.values().collect::<BTreeSet<_>>().len() > 1;
                if split {
                    for c in self.component.values_mut() {
                        *c = 0;
                    }
                    self.trace.faults.push(format!("{t}: heal"));
                } else {
                    let a = 1 + self.rng.below(u64::from(NODES)) as u32;
                    let b = 1 + (a + self.rng.below(u64::from(NODES - 1)) as u32) % NODES;
                    for (&n, c) in &mut self.component {
                        *c = u32::from(n == a || n == b);
                    }
                    self.trace
                        .faults
                        .push(format!("{t}: partition {{{a},{b}}}"));
                }
                self.reconfigure();
            }
            6 => {
                // Crash the node running a device, if any, else a random one.
                let busy = self
                    .trace
                    .actions
                    .iter()
                    .rev()
                    .find(|a| a.end > t)
                    .map(|a| a.node);
                let victim = busy.unwrap_or_else(|| 1 + self.rng.below(u64::from(NODES)) as u32);
                if self.nodes.remove(&victim).is_some() {
                    self.leave_primary(victim);
                    self.trace.crashes.push((victim, t));
                    self.trace.faults.push(format!("{t}: crash n{victim}"));
                    self.reconfigure();
                }
            }
            7 => {
                // Restart a crashed node.
                let down: Vec<u32> = (1..=NODES)
                    .filter(|n| !self.nodes.contains_key(n))
                    .collect();
                if let Some(&n) = down.get(self.rng.below(down.len().max(1) as u64) as usize) {
                    self.start_node(n);
                    self.trace.faults.push(format!("{t}: restart n{n}"));
                    self.reconfigure();
                }
            }
            _ => {}
        }
    }

    fn ask(&mut self, node: u32, target: u32, action: FenceAction, incident: Option<IncidentId>) {
        let Some((n, life)) = self.nodes.get_mut(&node) else {
            return;
        };
        let life = *life;
        let Ok(requester) = RequesterId::new(format!("c{}@n{node}", self.trace.asked.len())) else {
            return;
        };
        let mut request = FenceRequest::new(name(target), action, requester)
            .with_timeout(Duration::from_secs(15));
        if let Some(i) = incident {
            request = request.with_incident(i);
        }
        let mut out = Vec::new();
        let req = n.request(self.now, request.clone(), &mut out);
        self.trace.asked.push(Asked {
            node,
            life,
            request,
            at: self.now,
            answers: Vec::new(),
        });
        self.reqs
            .insert((node, life, req), self.trace.asked.len() - 1);
        self.handle_outs(node, out);
    }
}

/// Runs one seeded scenario and returns what happened.
pub fn run(seed: u64) -> Trace {
    let mut rng = Rng::new(seed);
    let loss = [0.0, 0.05, 0.2][rng.below(3) as usize];
    let fail_rate = [0.0, 0.1, 0.3][rng.below(3) as usize];
    let mut sim = Sim {
        rng,
        now: 0,
        queue: BinaryHeap::new(),
        events: BTreeMap::new(),
        next_ev: 0,
        nodes: BTreeMap::new(),
        lives: BTreeMap::new(),
        component: (1..=NODES).map(|i| (i, 0)).collect(),
        in_primary: BTreeMap::new(),
        installed: BTreeMap::new(),
        view_instance: 0,
        loss,
        reqs: BTreeMap::new(),
        trace: Trace {
            seed,
            ..Trace::default()
        },
        caps: BTreeMap::new(),
        fail_rate,
    };
    // Devices: some nodes reach a device for every other node, some reach none, some only
    // a dynamic one; at least two nodes have one.
    for i in 1..=NODES {
        let kind = if i <= 2 { 0 } else { sim.rng.below(3) };
        let caps = match kind {
            0 => Caps {
                targets: (1..=NODES).filter(|&t| t != i).map(name).collect(),
                dynamic: false,
            },
            1 => Caps {
                targets: Vec::new(),
                dynamic: true,
            },
            _ => Caps::default(),
        };
        sim.caps.insert(i, caps);
    }
    sim.trace
        .faults
        .push(format!("loss {loss}, device failure rate {fail_rate}"));
    for i in 1..=NODES {
        sim.start_node(i);
    }
    sim.reconfigure();
    let mut t = 1_000;
    while t < FAULTY_MS {
        sim.step(t);
        sim.fault(t);
        t += 200 + sim.rng.below(1_500);
    }
    // Quiet: heal, restart everyone, no loss; everything must settle.
    sim.step(t);
    sim.loss = 0.0;
    sim.fail_rate = 0.0;
    for c in sim.component.values_mut() {
        *c = 0;
    }
    for n in 1..=NODES {
        if !sim.nodes.contains_key(&n) {
            sim.start_node(n);
        }
    }
    sim.trace.faults.push(format!("{t}: heal and restart all"));
    sim.reconfigure();
    sim.step(t + QUIET_MS);
    let now = sim.now;
    for (&n, from) in &sim.in_primary {
        if let Some(from) = from {
            sim.trace.primary.entry(n).or_default().push((*from, now));
        }
    }
    for (&i, (n, _)) in &sim.nodes {
        sim.trace.histories.insert(i, n.history(None));
        sim.trace.faults.push(n.describe());
    }
    sim.trace
}

/// The invariants, each a named checker over a [`Trace`].
pub mod check {
    use super::{FenceAction, Trace};

    /// "At most one action per incident": a new attempt of an incident never starts while an
    /// earlier one runs on a node still in a primary view (an executor that crashed or was cut
    /// off may still be running; its outcome is unknown, so the action is re-run).
    pub fn one_action_per_incident(t: &Trace) -> Result<(), String> {
        for (i, a) in t.actions.iter().enumerate() {
            for (j, b) in t.actions.iter().enumerate() {
                // b started while a ran (attempt numbers are not compared: when every node
                // that knew of an attempt crashed, the attempt is assigned again).
                if i == j || a.id != b.id || b.start < a.start || b.start >= a.end {
                    continue;
                }
                if b.start == a.start && j < i {
                    continue; // each simultaneous pair once
                }
                // Allowed only if a's node had left the primary view (cut off, crashed).
                let a_primary = t
                    .primary
                    .get(&a.node)
                    .is_some_and(|iv| iv.iter().any(|(f, to)| *f <= b.start && b.start < *to));
                let crashed = t
                    .crashes
                    .iter()
                    .any(|(n, at)| *n == a.node && *at >= a.start && *at <= b.start);
                if a_primary && !crashed {
                    return Err(format!(
                        "incident {}: attempt {} on n{} started at {} while attempt {} on n{} ran ({}..{}) in a primary view",
                        a.id, b.attempt, b.node, b.start, a.attempt, a.node, a.start, a.end
                    ));
                }
            }
        }
        Ok(())
    }

    /// "No action from a non-quorate partition": every device action starts on a node in a
    /// primary view.
    pub fn no_action_outside_primary(t: &Trace) -> Result<(), String> {
        match t.actions.iter().find(|a| !a.primary_at_start) {
            Some(a) => Err(format!(
                "n{} ran incident {} attempt {} at {} outside a primary view",
                a.node, a.id, a.attempt, a.start
            )),
            None => Ok(()),
        }
    }

    /// "A node never fences itself".
    pub fn never_self(t: &Trace) -> Result<(), String> {
        match t
            .actions
            .iter()
            .find(|a| a.target.as_str() == format!("n{}", a.node))
        {
            Some(a) => Err(format!(
                "n{} ran the fence of itself (incident {})",
                a.node, a.id
            )),
            None => Ok(()),
        }
    }

    /// "Every requester gets the outcome": each request of a node that lived on got exactly
    /// one answer, and requests answered with the same incident agree on its outcome.
    pub fn every_requester_answered(t: &Trace) -> Result<(), String> {
        let mut outcomes = std::collections::BTreeMap::new();
        for (i, a) in t.asked.iter().enumerate() {
            let died = t.crashes.iter().any(|(n, at)| *n == a.node && *at >= a.at);
            if a.answers.len() > 1 {
                return Err(format!(
                    "request {i} ({}) got {} answers",
                    a.request.requester,
                    a.answers.len()
                ));
            }
            if a.answers.is_empty() && !died {
                return Err(format!(
                    "request {i} ({}) on n{} at {} got no answer",
                    a.request.requester, a.node, a.at
                ));
            }
            for ans in &a.answers {
                let rec = match ans {
                    Ok(r) => Some(r),
                    Err(e) => e.record(),
                };
                if let Some(r) = rec {
                    let o = r.outcome.clone();
                    if let Some(prev) = outcomes.insert(r.id, o.clone()) {
                        if prev != o {
                            return Err(format!(
                                "incident {}: requesters got {prev:?} and {o:?}",
                                r.id
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// "A node is shot once": an action on a target never starts when the last action on it
    /// was the same action, succeeded and was reported, and the target has neither left nor
    /// rejoined the primary view since (a loss from the view is a new event).
    pub fn shot_once(t: &Trace) -> Result<(), String> {
        let reported = |a: &super::Action| {
            t.histories.values().next().is_none_or(|h| {
                h.iter().any(|r| {
                    r.id == a.id
                        && r.executions.iter().any(|e| {
                            e.attempt == a.attempt
                                && e.outcome
                                    .as_ref()
                                    .is_some_and(ocf_fencing::FenceOutcome::is_success)
                        })
                })
            })
        };
        for b in t.actions.iter().filter(|b| b.action != FenceAction::On) {
            // The last action on the target before b, whatever its outcome.
            let Some(a) = t
                .actions
                .iter()
                .filter(|a| a.target == b.target && a.id != b.id && a.start < b.start)
                .max_by_key(|a| a.start)
            else {
                continue;
            };
            if !a.ok || a.end >= b.start || !reported(a) || a.action != b.action {
                continue;
            }
            let back = |at: u64| at > a.start && at <= b.start;
            let target_back = t
                .crashes
                .iter()
                .any(|(n, at)| format!("n{n}") == a.target.as_str() && back(*at))
                || t.joins
                    .iter()
                    .any(|(n, at)| format!("n{n}") == a.target.as_str() && back(*at))
                || t.primary.iter().any(|(n, iv)| {
                    format!("n{n}") == a.target.as_str() && iv.iter().any(|(_, to)| back(*to))
                });
            // The tables live in memory: a node that crashes forgets. When no member of the
            // primary that decided b remembers a (each one that held it, being in a primary
            // view when a ended, has crashed since or is not in that primary), the cluster
            // has forgotten a, and b is a new incident (a documented limit).
            let primary_at = |n: u32, at: u64| {
                t.primary
                    .get(&n)
                    .is_some_and(|iv| iv.iter().any(|(f, to)| *f <= at && at < *to))
            };
            let forgotten = (1..=super::NODES)
                .filter(|&n| primary_at(n, a.end))
                .all(|n| {
                    t.crashes
                        .iter()
                        .any(|(c, at)| *c == n && *at > a.end && *at <= b.start)
                        || !primary_at(n, b.start)
                });
            if !target_back && !forgotten {
                return Err(format!(
                    "{} was shot again ({:?}, incident {} on n{} at {}) after incident {} succeeded at {}",
                    a.target, b.action, b.id, b.node, b.start, a.id, a.end
                ));
            }
        }
        Ok(())
    }

    /// "One history": after the quiet phase every member shows the same records, all closed.
    pub fn same_history(t: &Trace) -> Result<(), String> {
        let mut it = t.histories.iter();
        let Some((first_node, first)) = it.next() else {
            return Ok(());
        };
        if let Some(r) = first.iter().find(|r| r.is_pending()) {
            return Err(format!(
                "incident {} on {} is still open after the quiet phase",
                r.id, r.target
            ));
        }
        for (n, h) in it {
            if h != first {
                let a: Vec<_> = first
                    .iter()
                    .map(|r| (r.id, r.outcome.clone(), r.requesters.len()))
                    .collect();
                let b: Vec<_> = h
                    .iter()
                    .map(|r| (r.id, r.outcome.clone(), r.requesters.len()))
                    .collect();
                return Err(format!(
                    "history of n{n} differs from n{first_node}: {b:?} vs {a:?}"
                ));
            }
        }
        Ok(())
    }

    /// "Every node hears a death once": no node delivers two node-death events for one
    /// incident in one life.
    pub fn death_once(t: &Trace) -> Result<(), String> {
        for ((n, life), deaths) in &t.deaths {
            let mut seen = std::collections::BTreeSet::new();
            for d in deaths {
                if !seen.insert(d.incident.clone()) {
                    return Err(format!(
                        "n{n} (life {life}) heard the death of incident {} twice",
                        d.incident
                    ));
                }
            }
        }
        Ok(())
    }

    /// A checker: `Err` says how the trace broke its invariant.
    pub type Checker = fn(&Trace) -> Result<(), String>;

    /// Every checker, by name.
    pub const ALL: &[(&str, Checker)] = &[
        ("one_action_per_incident", one_action_per_incident),
        ("no_action_outside_primary", no_action_outside_primary),
        ("never_self", never_self),
        ("every_requester_answered", every_requester_answered),
        ("shot_once", shot_once),
        ("same_history", same_history),
        ("death_once", death_once),
    ];
}
