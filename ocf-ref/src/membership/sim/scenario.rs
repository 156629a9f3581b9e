//! Random fault schedules, each derived entirely from one seed so that a failing run replays
//! from its seed alone.

use std::fmt::Write as _;
use std::sync::Arc;

use super::Sim;
use super::check::{self, Violation};
use crate::membership::protocol::{ClusterSpec, NodeSpec, QuorumOptions, Rng, Timing};
use ocf_core::NodeId;

/// What a scenario exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Partitions, one-way cuts, mute nodes (heard by nobody), deaf nodes (hearing nobody),
    /// loss, duplication, reordering, delays, crashes, restarts, pauses (forward clock steps)
    /// and clocks that drift; then everything heals and the cluster must converge within the
    /// bound.
    Chaos,
    /// Only loss up to [`STATED_LOSS`], duplication and reordering: no node may be dropped.
    Lossy,
}

/// The loss rate under which no healthy node is ever evicted (checked by [`Kind::Lossy`]).
pub const STATED_LOSS: f64 = 0.10;

/// What a passing run measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Nodes in the cluster.
    pub nodes: usize,
    /// Time from the heal (or start) to convergence, in ms.
    pub converged_after_ms: u64,
    /// Messages sent during the run.
    pub messages: u64,
    /// Events per kind over all nodes: new membership, not primary, primary restored,
    /// evicted (to show what a run exercised).
    pub events: [u64; 4],
}

fn count_events(log: &[super::Record]) -> [u64; 4] {
    use ocf_membership::EventKind;
    let mut counts = [0; 4];
    for r in log {
        let i = match r.kind {
            EventKind::NewMembership => 0,
            EventKind::NotPrimary => 1,
            EventKind::PrimaryRestored => 2,
            _ => 3,
        };
        counts[i] += 1;
    }
    counts
}

/// The time within which every running node must share one view with all running nodes after
/// the last fault heals: discovery of each unreachable peer (one probe per period each),
/// refutation of stale deaths, a death timeout for nodes that stayed down, and two rounds.
pub fn convergence_bound(spec: &ClusterSpec) -> u64 {
    let t = spec.timing;
    let n = spec.nodes().len() as u64;
    3 * t.dead_ms + t.join_grace() + (2 * n + 10) * t.heartbeat_ms
}

/// The command that replays `seed`.
pub fn replay_command(seed: u64) -> String {
    format!(
        "OCF_SIM_SEED={seed} cargo test -p ocf-ref --test membership_sim replay -- --ignored --nocapture"
    )
}

/// Picks the kind from the seed (one run in four is lossy) and runs it.
pub fn run_seed(seed: u64) -> Result<Outcome, Violation> {
    let kind = if seed % 4 == 3 {
        Kind::Lossy
    } else {
        Kind::Chaos
    };
    run(seed, kind)
}

fn random_spec(rng: &mut Rng, min_nodes: u64) -> ClusterSpec {
    // Mostly small clusters (where every corner is reached quickly), sometimes up to 12.
    let n = if rng.chance(0.1) {
        8 + rng.below(5)
    } else {
        min_nodes + rng.below(8 - min_nodes)
    };
    let two_node = n == 2 && rng.chance(0.5);
    let weighted = rng.chance(0.2);
    let nodes = (1..=n as u32)
        .map(|i| NodeSpec {
            id: NodeId::new(i * 3 + rng.below(3) as u32),
            votes: if weighted { 1 + rng.below(3) as u32 } else { 1 },
        })
        .collect();
    let heartbeat = [100, 150, 200][rng.below(3) as usize];
    let dead = heartbeat * (4 + rng.below(3));
    ClusterSpec::new(
        nodes,
        QuorumOptions {
            two_node,
            wait_for_all: two_node || rng.chance(0.2),
            expected_votes: None,
        },
        Timing::new(heartbeat, dead),
    )
}

/// Runs one scenario of `kind` from `seed`.
pub fn run(seed: u64, kind: Kind) -> Result<Outcome, Violation> {
    let mut rng = Rng::new(seed);
    let spec = Arc::new(random_spec(
        &mut rng,
        if kind == Kind::Lossy { 3 } else { 2 },
    ));
    let two_node = spec.quorum.two_node;
    let bound = convergence_bound(&spec);
    let n = spec.nodes().len();
    let mut sim = Sim::new(Arc::clone(&spec), rng.next_u64());
    let formed = sim
        .run_until_true(bound, Sim::converged)
        .ok_or_else(|| Violation {
            invariant: "convergence_at_start",
            detail: format!("{n} healthy nodes did not form one view within {bound} ms"),
        })?;
    let outcome = match kind {
        Kind::Lossy => {
            sim.net.loss = rng.below((STATED_LOSS * 100.0) as u64 + 1) as f64 / 100.0;
            sim.net.dup = rng.below(6) as f64 / 100.0;
            sim.net.delay_max = 1 + rng.below(50);
            sim.run_for(20 * spec.timing.dead_ms);
            check::no_eviction_of_healthy_nodes(&sim.log, formed, n).map_err(|mut v| {
                v.detail.push_str(&trace(&sim));
                v
            })?;
            Outcome {
                nodes: n,
                converged_after_ms: formed,
                messages: sim.sent,
                events: count_events(&sim.log),
            }
        }
        Kind::Chaos => {
            let chaos_ms = 2_000 + rng.below(8_000);
            let events = 1 + rng.below(6);
            let mut times: Vec<u64> = (0..events).map(|_| rng.below(chaos_ms)).collect();
            times.sort_unstable();
            let start = sim.now();
            for t in times {
                sim.run_until(start + t);
                fault(&mut sim, &mut rng);
            }
            sim.run_until(start + chaos_ms);
            sim.heal();
            for pos in 0..n {
                if !sim.is_up(pos) && rng.chance(0.7) {
                    sim.start(pos);
                }
            }
            let healed = sim.now();
            let done = sim.run_until_true(healed + bound, Sim::converged).ok_or_else(|| Violation {
                invariant: "convergence_after_heal",
                detail: format!(
                    "{} running nodes of {n} did not share one view within {bound} ms of the heal at {healed} ms{}",
                    sim.up().len(),
                    trace(&sim)
                ),
            })?;
            sim.run_for(spec.timing.dead_ms);
            Outcome {
                nodes: n,
                converged_after_ms: done - healed,
                messages: sim.sent,
                events: count_events(&sim.log),
            }
        }
    };
    check::safety_of(&sim, two_node).map_err(|mut v| {
        v.detail.push_str(&trace(&sim));
        v
    })?;
    Ok(outcome)
}

fn trace(sim: &Sim) -> String {
    if std::env::var_os("OCF_SIM_TRACE").is_none() {
        return String::new();
    }
    let mut text = String::from("\n");
    for r in &sim.log {
        let _ = writeln!(
            text,
            "  {} node {} seq {} {:?} {} {:?}",
            r.time,
            r.node,
            r.seq,
            r.kind,
            r.view.id,
            r.view
                .members
                .iter()
                .map(|m| m.id.get())
                .collect::<Vec<_>>()
        );
    }
    text.push_str(&sim.describe());
    text
}

fn fault(sim: &mut Sim, rng: &mut Rng) {
    let n = sim.spec().nodes().len();
    match rng.below(10) {
        0 => {
            let groups = 2 + rng.below(2) as u32;
            sim.net.group = (0..n)
                .map(|_| rng.below(u64::from(groups)) as u32)
                .collect();
        }
        1 => {
            for _ in 0..=rng.below(3) {
                let a = rng.below(n as u64) as usize;
                let b = rng.below(n as u64) as usize;
                sim.net.cut.insert((a, b));
            }
        }
        2 => sim.net.loss = rng.below(40) as f64 / 100.0,
        3 => {
            sim.net.dup = rng.below(20) as f64 / 100.0;
            // Usually jitter; sometimes delays beyond the death timeout, so stale proposals,
            // commits and acks arrive long after the round they belonged to.
            let spread = if rng.chance(0.2) { 3_000 } else { 300 };
            sim.net.delay_max = sim.net.delay_min + rng.below(spread);
        }
        4 | 5 => {
            let up = sim.up();
            if up.len() > 1 {
                let pos = up[rng.below(up.len() as u64) as usize];
                sim.crash(pos);
            }
        }
        6 => {
            let down: Vec<usize> = (0..n).filter(|&p| !sim.is_up(p)).collect();
            if let Some(&pos) = down.get(rng.below(down.len().max(1) as u64) as usize) {
                sim.start(pos);
            }
        }
        7 => {
            // A pause: the node's clock steps forward, as if it slept through it.
            let pos = rng.below(n as u64) as usize;
            sim.jump_clock(pos, 100 + rng.below(5_000) as i64);
        }
        8 => {
            // A mute node: it hears everyone, nobody hears it.
            let a = rng.below(n as u64) as usize;
            sim.net
                .cut
                .extend((0..n).filter(|&b| b != a).map(|b| (a, b)));
        }
        _ => {
            // A deaf node: everyone hears it, it hears nobody.
            let a = rng.below(n as u64) as usize;
            sim.net
                .cut
                .extend((0..n).filter(|&b| b != a).map(|b| (b, a)));
        }
    }
}

/// What [`FailureRun::crash_and_converge`] measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FailureConvergence {
    /// Nodes in the cluster.
    pub nodes: usize,
    /// Simulated time from the crash to every survivor holding the view without it (ms).
    pub converge_ms: u64,
    /// The same in probe periods (heartbeats).
    pub rounds: f64,
    /// Messages each node sent per second in the steady state before the crash.
    pub steady_msgs_per_node_per_sec: f64,
    /// Messages each node sent per second from the crash to convergence.
    pub failure_msgs_per_node_per_sec: f64,
}

/// A formed cluster in its steady state, ready to lose one node (see [`FailureRun::prepare`]).
pub struct FailureRun {
    sim: Sim,
    spec: Arc<ClusterSpec>,
    steady: f64,
}

impl FailureRun {
    /// Forms a cluster of `n` nodes (started from an agreed view), and runs it past the join
    /// grace and then for `steady_ms`, measuring the steady message rate.
    pub fn prepare(n: u32, timing: Timing, steady_ms: u64, seed: u64) -> Self {
        let spec = Arc::new(ClusterSpec::uniform(n, QuorumOptions::default(), timing));
        let mut sim = Sim::formed(&spec, seed);
        sim.record = false;
        sim.run_for(timing.join_grace());
        let before = sim.sent;
        sim.run_for(steady_ms);
        let steady = (sim.sent - before) as f64 / f64::from(n) / (steady_ms.max(1) as f64 / 1000.0);
        Self { sim, spec, steady }
    }

    /// Crashes one node and runs until every survivor installed the view without it; `None`
    /// when that does not happen within [`convergence_bound`].
    pub fn crash_and_converge(mut self) -> Option<FailureConvergence> {
        let n = self.spec.nodes().len();
        self.sim.crash(n / 2);
        let crashed = self.sim.now();
        let before = self.sim.sent;
        let done = self
            .sim
            .run_until_true(crashed + convergence_bound(&self.spec), Sim::converged)?;
        let converge_ms = done - crashed;
        Some(FailureConvergence {
            nodes: n,
            converge_ms,
            rounds: converge_ms as f64 / self.spec.timing.heartbeat_ms as f64,
            steady_msgs_per_node_per_sec: self.steady,
            failure_msgs_per_node_per_sec: (self.sim.sent - before) as f64
                / n as f64
                / (converge_ms.max(1) as f64 / 1000.0),
        })
    }
}
