//! `ocf demo`: a failover on loopback, end to end, with the real agents where installed.
//!
//! By default (the `nodes` module) the demo starts N real `ocf node` processes on loopback, each with
//! its own config, key file, socket, fence device and executor, runs one failover manager per
//! node as a client of its node's socket (membership over `DaemonClient`, fencing over
//! `DaemonFencer`, resources over `DaemonExecutor`), kills the node holding the resource with
//! SIGKILL, and follows the failover: killed → detected → view installed → fenced (once,
//! cluster-wide, by the cluster fencer) → node-death event → restarted on a survivor.
//!
//! With [`DemoOptions::in_process`] (the fast path, and the comparison figure of the
//! benchmark), N built-in membership nodes run in this process over real UDP sockets on 127.0.0.1, each
//! with its own executor, fencer and [`FailoverManager`]. One resource runs on the last node
//! (`ocf:heartbeat:Dummy` when resource-agents is installed, else the native Dummy). The demo
//! crashes that node (its engine stops sending and answering, as a dead machine would); the
//! survivors detect it and install a view without it; the acting node fences it through its
//! fencer (`fence_dummy` when fence-agents is installed, else the null device) and restarts the
//! resource on a survivor. Every step is stamped with milliseconds since the demo started.
//!
//! The run passes only if every step happened, in order, the dead node was fenced exactly once
//! across the whole cluster, and the resource runs on exactly one survivor at the end.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ocf_core::{NodeId, NodeName};
use ocf_fencing::{DeviceParams, FenceDevice, Fencer, FencerAdmin, HistoryFilter, Targets};
use ocf_membership::Membership;
use ocf_resources::{Action, AgentId, Executor, ExecutorAdmin, ExitCode, Operation, ResourceSpec};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::failover::{
    FailoverConfig, FailoverEvent, FailoverManager, Peer, QuorumPolicy, ResourcePolicy,
};
use crate::fencing::devices::agent::AgentDevice;
use crate::fencing::devices::native::NullDevice;
use crate::fencing::fencer::{FencerConfig, LocalFencer};
use crate::membership::builtin::BuiltinEngine;
use crate::membership::builtin::key::ClusterKey;
use crate::membership::builtin::loopback;
use crate::resources::executor::{ExecutorConfig, LocalExecutor};
use crate::resources::native::NativeDummy;
use crate::resources::registry::AgentRegistry;

mod nodes;

/// The resource's name in every executor.
pub const RESOURCE: &str = "demo-dummy";

/// How the demo runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DemoOptions {
    /// How many nodes (at least 3, so the survivors keep quorum).
    pub nodes: usize,
    /// The longest the whole demo may take.
    pub deadline: Duration,
    /// The OCF root to look for `heartbeat/Dummy` in.
    pub ocf_root: PathBuf,
    /// The `fence_dummy` agent, if it should be used.
    pub fence_dummy: PathBuf,
    /// Run every node inside this process (engines, executors and fencers in memory, the
    /// crash a stop of the engine) instead of as `ocf node` processes.
    pub in_process: bool,
    /// The `ocf` executable the nodes are started from (default: this one).
    pub ocf_bin: PathBuf,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            nodes: 3,
            deadline: Duration::from_secs(60),
            ocf_root: crate::resources::ocf_root(),
            fence_dummy: crate::fencing::devices::agent::agents_dir().join("fence_dummy"),
            in_process: false,
            ocf_bin: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("ocf")),
        }
    }
}

/// A step of the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// The node holding the resource was crashed.
    Killed,
    /// A survivor installed a view without it.
    Detected,
    /// Every survivor installed that view.
    ViewInstalled,
    /// The dead node was fenced.
    Fenced,
    /// The fencer's node-death event reached the acting manager (real processes only).
    NodeDeath,
    /// The resource was started on a survivor.
    Restarted,
}

/// One entry of the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    /// What happened.
    pub event: Step,
    /// Milliseconds since the demo started.
    pub ms: u64,
    /// A few words of detail.
    pub detail: String,
}

/// What the demo saw.
#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    /// True when every step happened, in order, with one fence action.
    pub ok: bool,
    /// `processes` (real `ocf node` processes) or `in_process`.
    pub mode: &'static str,
    /// Why not, when not.
    pub failure: Option<String>,
    /// The number of nodes.
    pub nodes: usize,
    /// The resource agent used.
    pub agent: String,
    /// The fence device used.
    pub fence_device: String,
    /// The node that was killed.
    pub killed_node: u32,
    /// The node the resource was restarted on.
    pub recovered_on: Option<u32>,
    /// Fence actions on the killed node, across every node's fencer.
    pub fence_actions: usize,
    /// Milliseconds from the start until the cluster had formed and the resource was running.
    pub formed_ms: u64,
    /// The steps, in the order they happened.
    pub timeline: Vec<TimelineEntry>,
    /// The incident's causal record, as every survivor gave it (the same on each; real
    /// processes only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<crate::explain::Explanation>,
}

/// Why the demo could not run at all (as opposed to running and failing a step).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// Fewer than three nodes asked for.
    #[error("the demo needs at least 3 nodes so the survivors keep quorum; got {0}")]
    TooFewNodes(usize),
    /// Setting up a node failed.
    #[error("setting up node {node}: {reason}")]
    Setup {
        /// The node.
        node: u32,
        /// What failed.
        reason: String,
    },
    /// A scratch directory or port could not be had.
    #[error("demo scratch space: {0}")]
    Io(#[from] std::io::Error),
    /// The cluster did not form, or the resource did not start, before the deadline.
    #[error("{0}")]
    NotReady(String),
    /// The demo was interrupted (Ctrl-C); everything it started was stopped.
    #[error("interrupted; every node was stopped and the scratch directory removed")]
    Interrupted,
}

struct Node {
    id: NodeId,
    engine: Arc<BuiltinEngine>,
    executor: Arc<dyn Executor>,
    fencer: Arc<LocalFencer>,
    manager: tokio::task::JoinHandle<()>,
}

/// What the demo runs with: the agent and fence device it found installed.
struct Setup {
    use_script: bool,
    use_fence_dummy: bool,
    agent: &'static str,
    fence_device: &'static str,
}

impl Setup {
    fn of(options: &DemoOptions) -> Self {
        let use_script = options
            .ocf_root
            .join("resource.d/heartbeat/Dummy")
            .is_file();
        let use_fence_dummy = options.fence_dummy.is_file();
        Self {
            use_script,
            use_fence_dummy,
            agent: if use_script {
                "ocf:heartbeat:Dummy"
            } else {
                "ocf:native:Dummy"
            },
            fence_device: if use_fence_dummy {
                "fence_dummy"
            } else {
                "null device"
            },
        }
    }
}

/// The running cluster: every node's engine, executor, fencer and failover manager, and the
/// merged stream of their failover events.
///
/// Dropping it stops every engine it started and aborts every manager, so an early return
/// (a `?` in the middle of the setup or of the run) leaves no node running; [`Cluster::shutdown`]
/// also stops the resource wherever it still runs. The scratch directory (state files, keys)
/// goes last.
struct Cluster {
    /// Every engine started, including those of nodes not fully set up yet.
    engines: Vec<Arc<BuiltinEngine>>,
    nodes: Vec<Node>,
    events: mpsc::UnboundedReceiver<(NodeId, FailoverEvent)>,
    scratch: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &self.nodes {
            node.manager.abort();
        }
        for engine in &self.engines {
            engine.stop();
        }
    }
}

impl Cluster {
    /// Starts `options.nodes` nodes on loopback; the resource prefers the last one, `victim`.
    async fn start(
        options: &DemoOptions,
        setup: &Setup,
        victim: NodeId,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<Self, DemoError> {
        let scratch = tempfile::Builder::new().prefix("ocf-demo-").tempdir()?;
        let n = victim.get();
        let configs =
            loopback::configs("demo", n, scratch.path()).map_err(|e| setup_error(victim, &e))?;
        progress(&format!(
            "starting {n} nodes on 127.0.0.1 with {} and {} (scratch {})",
            setup.agent,
            setup.fence_device,
            scratch.path().display()
        ));
        let (events_tx, events) = mpsc::unbounded_channel();
        let mut cluster = Cluster {
            engines: Vec::new(),
            nodes: Vec::new(),
            events,
            scratch,
        };
        let key = ClusterKey::random();
        let mut peers = Vec::new();
        for config in &configs {
            let id = config.local_id();
            let engine = BuiltinEngine::start(config, &key)
                .await
                .map_err(|e| setup_error(id, &e))?;
            cluster.engines.push(Arc::new(engine));
            let executor = cluster.executor(options, setup, id).await?;
            peers.push(Peer {
                id,
                name: node_name(id)?,
                executor,
            });
        }
        let all_names: Vec<NodeName> = peers.iter().map(|p| p.name.clone()).collect();
        for (engine, peer) in cluster.engines.clone().into_iter().zip(&peers) {
            let fencer = cluster
                .fencer(options, setup, &engine, peer.id, &all_names)
                .await?;
            let manager = Arc::new(FailoverManager::new(
                peer.id,
                engine.clone(),
                fencer.clone(),
                peers.clone(),
                vec![ResourcePolicy {
                    name: RESOURCE.to_owned(),
                    prefer: vec![victim],
                }],
                FailoverConfig::default(),
            ));
            forward_events(peer.id, &manager, events_tx.clone());
            let task = tokio::spawn(async move {
                if let Err(e) = manager.run().await {
                    tracing::warn!("{e}");
                }
            });
            cluster.nodes.push(Node {
                id: peer.id,
                engine,
                executor: peer.executor.clone(),
                fencer,
                manager: task,
            });
        }
        Ok(cluster)
    }

    /// Node `id`'s executor, with the resource registered.
    async fn executor(
        &self,
        options: &DemoOptions,
        setup: &Setup,
        id: NodeId,
    ) -> Result<Arc<LocalExecutor>, DemoError> {
        let registry = AgentRegistry::new(&options.ocf_root);
        registry.add_native(Arc::new(NativeDummy::new()));
        let executor = Arc::new(LocalExecutor::new(
            Arc::new(registry),
            ExecutorConfig::default(),
        ));
        executor
            .register(resource_spec(setup.use_script, self.scratch.path(), id)?)
            .await
            .map_err(|e| setup_error(id, &e))?;
        Ok(executor)
    }

    /// Node `id`'s fencer, asking its membership for quorum, with its fence device.
    async fn fencer(
        &self,
        options: &DemoOptions,
        setup: &Setup,
        engine: &Arc<BuiltinEngine>,
        id: NodeId,
        hosts: &[NodeName],
    ) -> Result<Arc<LocalFencer>, DemoError> {
        let membership: Arc<dyn Membership> = engine.clone();
        let fencer = Arc::new(LocalFencer::with(
            FencerConfig::default(),
            Arc::new(QuorumPolicy::new(membership)),
        ));
        let device = fence_device_for(
            setup.use_fence_dummy,
            options,
            self.scratch.path(),
            id,
            hosts,
        )?;
        fencer
            .register_device(device)
            .await
            .map_err(|e| setup_error(id, &e))?;
        Ok(fencer)
    }

    /// The next failover event, or `None` once `deadline` passes.
    async fn next_event(&mut self, deadline: Instant) -> Option<(NodeId, FailoverEvent)> {
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::timeout(left, self.events.recv())
            .await
            .ok()
            .flatten()
    }

    /// Crashes node `victim`: its manager and engine stop, as a dead machine's would.
    fn crash(&self, victim: NodeId) {
        if let Some(dead) = self.nodes.iter().find(|nd| nd.id == victim) {
            dead.manager.abort();
            dead.engine.stop();
        }
    }

    /// Stops every node and the resource wherever it still runs, so nothing is left behind.
    async fn shutdown(self) {
        for node in &self.nodes {
            node.manager.abort();
            node.engine.stop();
            let op = Operation::new(Action::Stop, Duration::from_secs(20));
            let _ = node.executor.execute(RESOURCE, op).await;
        }
    }
}

/// Sends every event of `manager` to `tx`, tagged with the node it happened on.
fn forward_events(
    id: NodeId,
    manager: &FailoverManager,
    tx: mpsc::UnboundedSender<(NodeId, FailoverEvent)>,
) {
    let mut sub = manager.subscribe();
    tokio::spawn(async move {
        while let Ok(ev) = sub.recv().await {
            if tx.send((id, ev)).is_err() {
                break;
            }
        }
    });
}

/// The timeline: each step stamped with milliseconds since the demo started, and shown to
/// `progress` as it is recorded.
struct Timeline<'a> {
    started: Instant,
    progress: &'a (dyn Fn(&str) + Sync),
    entries: Vec<TimelineEntry>,
}

impl<'a> Timeline<'a> {
    fn new(started: Instant, progress: &'a (dyn Fn(&str) + Sync)) -> Self {
        Self {
            started,
            progress,
            entries: Vec::new(),
        }
    }

    /// Milliseconds since the demo started.
    fn ms(&self) -> u64 {
        ocf_core::millis::as_millis(self.started.elapsed())
    }

    /// Shows a line that is not a step.
    fn say(&self, line: &str) {
        (self.progress)(line);
    }

    fn record(&mut self, step: Step, detail: String) {
        let at = self.ms();
        (self.progress)(&format!("{at:>6} ms  {step:?}: {detail}"));
        self.entries.push(TimelineEntry {
            event: step,
            ms: at,
            detail,
        });
    }
}

/// Whether formation is over: `Ok(true)` once the resource started on `victim`, an error
/// when it failed to start anywhere.
fn formation_step(victim: NodeId, ev: &FailoverEvent) -> Result<bool, String> {
    match ev {
        FailoverEvent::Started { node, .. } => Ok(*node == victim),
        FailoverEvent::StartFailed { node, reason, .. } => Err(format!(
            "starting {RESOURCE} on node {node} failed: {reason}"
        )),
        _ => Ok(false),
    }
}

/// The failover as the events tell it, after the crash of `victim`: a pure state machine
/// that turns each event into the steps it completes (no time, no I/O; unit tests drive it).
#[derive(Debug)]
struct FailoverWatch {
    victim: NodeId,
    survivors: BTreeSet<NodeId>,
    fence_device: &'static str,
    installed: BTreeSet<NodeId>,
    recovered_on: Option<NodeId>,
    failure: Option<String>,
}

impl FailoverWatch {
    fn new(victim: NodeId, survivors: BTreeSet<NodeId>, fence_device: &'static str) -> Self {
        Self {
            victim,
            survivors,
            fence_device,
            installed: BTreeSet::new(),
            recovered_on: None,
            failure: None,
        }
    }

    /// True once the resource runs again on a survivor.
    fn done(&self) -> bool {
        self.recovered_on.is_some()
    }

    /// The steps that event `ev`, seen on node `at_node`, completes (in order).
    fn observe(&mut self, at_node: NodeId, ev: FailoverEvent) -> Vec<(Step, String)> {
        let victim = self.victim;
        let mut steps = Vec::new();
        match ev {
            FailoverEvent::ViewInstalled { view, members, .. }
                if self.survivors.contains(&at_node) && !members.contains(&victim) =>
            {
                if self.installed.is_empty() {
                    steps.push((
                        Step::Detected,
                        format!("node {at_node} installed view {view} without node {victim}"),
                    ));
                }
                // Only the view that completes the set counts, once.
                if self.installed.insert(at_node) && self.installed == self.survivors {
                    steps.push((
                        Step::ViewInstalled,
                        format!(
                            "all {} survivors installed view {view}",
                            self.survivors.len()
                        ),
                    ));
                }
            }
            FailoverEvent::Fenced { node, record } if node == victim => steps.push((
                Step::Fenced,
                format!(
                    "node {at_node} fenced node {victim} with {} (record {record})",
                    self.fence_device
                ),
            )),
            FailoverEvent::NodeDeath { node, incident, how } if node == victim => steps.push((
                Step::NodeDeath,
                format!("node {at_node} got the node-death event of node {victim} ({how}, incident {incident})"),
            )),
            FailoverEvent::FenceFailed { node, reason } => {
                self.failure = Some(format!(
                    "node {at_node} could not fence node {node}: {reason}"
                ));
            }
            FailoverEvent::Started { resource, node } if node != victim => {
                steps.push((
                    Step::Restarted,
                    format!("{resource} started on node {node}"),
                ));
                self.recovered_on = Some(node);
            }
            FailoverEvent::StartFailed { node, reason, .. } => {
                self.failure = Some(format!(
                    "starting {RESOURCE} on node {node} failed: {reason}"
                ));
            }
            _ => {}
        }
        steps
    }
}

/// The steps of the in-process demo, in order.
const IN_PROCESS_STEPS: [Step; 5] = [
    Step::Killed,
    Step::Detected,
    Step::ViewInstalled,
    Step::Fenced,
    Step::Restarted,
];

/// The steps of the demo of real processes, in order.
const PROCESS_STEPS: [Step; 6] = [
    Step::Killed,
    Step::Detected,
    Step::ViewInstalled,
    Step::Fenced,
    Step::NodeDeath,
    Step::Restarted,
];

/// Runs the demo, reporting progress through `progress` (one line per happening).
pub async fn run(
    options: &DemoOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<DemoReport, DemoError> {
    run_until(options, progress, std::future::pending()).await
}

/// Runs the demo until it ends or `interrupt` resolves (Ctrl-C): then everything it started
/// is stopped and reaped, the scratch directory removed, and the answer is
/// [`DemoError::Interrupted`].
pub async fn run_until(
    options: &DemoOptions,
    progress: &(dyn Fn(&str) + Sync),
    interrupt: impl Future<Output = ()>,
) -> Result<DemoReport, DemoError> {
    if options.nodes < 3 {
        return Err(DemoError::TooFewNodes(options.nodes));
    }
    if options.in_process {
        return tokio::select! {
            r = run_in_process(options, progress) => r,
            () = interrupt => Err(DemoError::Interrupted),
        };
    }
    let started = Instant::now();
    let setup = Setup::of(options);
    let mut cluster = nodes::NodeCluster::start(options, &setup, progress)?;
    let outcome = tokio::select! {
        r = run_processes(&mut cluster, options, &setup, started, progress) => r,
        () = interrupt => Err(DemoError::Interrupted),
    };
    if outcome.is_err() {
        progress("stopping every node");
    }
    cluster.shutdown().await;
    outcome
}

/// The demo of real processes, on a started cluster (the caller shuts it down).
async fn run_processes(
    cluster: &mut nodes::NodeCluster,
    options: &DemoOptions,
    setup: &Setup,
    started: Instant,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<DemoReport, DemoError> {
    let n = u32::try_from(options.nodes).map_err(|_| DemoError::TooFewNodes(0))?;
    let victim = NodeId::new(n);
    let deadline = started + options.deadline;
    cluster.wait_for_quorum(deadline, started, progress).await?;
    cluster.register(setup).await?;
    cluster.start_managers(victim, Duration::from_secs(30));
    let mut timeline = Timeline::new(started, progress);
    loop {
        let Some((_, ev)) = cluster.next_event(deadline).await else {
            return Err(DemoError::NotReady(format!(
                "the cluster did not start the resource in time:\n{}",
                cluster.log_tails()
            )));
        };
        if formation_step(victim, &ev).map_err(DemoError::NotReady)? {
            break;
        }
    }
    let formed_ms = timeline.ms();
    timeline.say(&format!(
        "{formed_ms:>6} ms  cluster of {n} processes formed, {RESOURCE} running on node {victim}"
    ));
    cluster.kill(victim).await;
    timeline.record(Step::Killed, format!("node {victim} killed with SIGKILL"));
    let survivors = (1..n).map(NodeId::new).collect();
    let mut watch = FailoverWatch::new(victim, survivors, setup.fence_device);
    while !watch.done() {
        let Some((at_node, ev)) = cluster.next_event(deadline).await else {
            watch.failure = Some("the failover did not finish before the deadline".to_owned());
            break;
        };
        for (step, detail) in watch.observe(at_node, ev) {
            timeline.record(step, detail);
        }
    }
    let (explain, explain_failure) = if watch.failure.is_none() {
        check_explanations(victim, cluster.explanations(deadline).await)
    } else {
        (None, None)
    };
    let per_node = cluster.fence_actions(victim).await;
    let fence_actions = per_node.first().map_or(0, |(_, c)| *c);
    let running = cluster.running().await;
    let failure = watch.failure.or_else(|| {
        if per_node.iter().any(|(_, c)| *c != fence_actions) {
            return Some(format!(
                "the survivors' fence histories disagree on the actions against node {victim}: {per_node:?}"
            ));
        }
        verify(&timeline.entries, &PROCESS_STEPS, fence_actions, &running).or(explain_failure)
    });
    if failure.is_some() {
        timeline.say(&cluster.log_tails());
    }
    Ok(DemoReport {
        ok: failure.is_none(),
        mode: "processes",
        failure,
        nodes: options.nodes,
        agent: setup.agent.to_owned(),
        fence_device: setup.fence_device.to_owned(),
        killed_node: victim.get(),
        recovered_on: watch.recovered_on.map(NodeId::get),
        fence_actions,
        formed_ms,
        timeline: timeline.entries,
        explain,
    })
}

/// Checks the survivors' explanations: each one there, all the same, naming the victim, the
/// detection, a fence attempt, the node-death event and the restart.
fn check_explanations(
    victim: NodeId,
    all: Vec<(NodeId, Result<crate::explain::Explanation, String>)>,
) -> (Option<crate::explain::Explanation>, Option<String>) {
    let mut first: Option<crate::explain::Explanation> = None;
    for (node, e) in all {
        let e = match e {
            Ok(e) => e,
            Err(why) => {
                return (
                    first,
                    Some(format!("no explanation from node {node}: {why}")),
                );
            }
        };
        if let Some(f) = &mut first {
            if !f.agrees_with(&e) {
                return (
                    first,
                    Some(format!("node {node} explains the incident differently")),
                );
            }
            f.merge(&e);
        } else {
            first = Some(e);
        }
    }
    let Some(e) = first else {
        return (None, Some("no survivor gave an explanation".into()));
    };
    let why = if e.target != format!("n{victim}") {
        Some(format!(
            "the explanation is about {}, not n{victim}",
            e.target
        ))
    } else if e.detection.is_none() {
        Some("the explanation lacks the detection".into())
    } else if !e
        .fence
        .as_ref()
        .is_some_and(|f| f.record.levels.iter().any(|l| !l.attempts.is_empty()))
    {
        Some("the explanation lacks the fence attempt".into())
    } else if e.node_death.is_none() {
        Some("the explanation lacks the node-death event".into())
    } else if e.recoveries.is_empty() {
        Some("the explanation lacks the restart".into())
    } else {
        None
    };
    (Some(e), why)
}

/// The in-process demo.
async fn run_in_process(
    options: &DemoOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<DemoReport, DemoError> {
    if options.nodes < 3 {
        return Err(DemoError::TooFewNodes(options.nodes));
    }
    let started = Instant::now();
    let n = u32::try_from(options.nodes).map_err(|_| DemoError::TooFewNodes(0))?;
    let victim = NodeId::new(n);
    let setup = Setup::of(options);
    let mut cluster = Cluster::start(options, &setup, victim, progress).await?;
    let mut timeline = Timeline::new(started, progress);
    let deadline = started + options.deadline;

    // Formation: every node in one view, and the resource started on the victim.
    loop {
        let Some((_, ev)) = cluster.next_event(deadline).await else {
            cluster.shutdown().await;
            return Err(DemoError::NotReady(
                "the cluster did not form and start the resource in time".into(),
            ));
        };
        match formation_step(victim, &ev) {
            Ok(true) => break,
            Ok(false) => {}
            Err(why) => {
                cluster.shutdown().await;
                return Err(DemoError::NotReady(why));
            }
        }
    }
    let formed_ms = timeline.ms();
    timeline.say(&format!(
        "{formed_ms:>6} ms  cluster formed, {RESOURCE} running on node {victim}"
    ));

    // The crash, and the failover the events tell.
    cluster.crash(victim);
    timeline.record(Step::Killed, format!("node {victim} crashed"));
    let survivors = (1..n).map(NodeId::new).collect();
    let mut watch = FailoverWatch::new(victim, survivors, setup.fence_device);
    while !watch.done() {
        let Some((at_node, ev)) = cluster.next_event(deadline).await else {
            watch.failure = Some("the failover did not finish before the deadline".to_owned());
            break;
        };
        for (step, detail) in watch.observe(at_node, ev) {
            timeline.record(step, detail);
        }
    }

    let fence_actions = count_fence_actions(&cluster.nodes, victim).await;
    let running = running_survivors(&cluster.nodes, victim).await;
    let failure = watch.failure.or_else(|| {
        verify(
            &timeline.entries,
            &IN_PROCESS_STEPS,
            fence_actions,
            &running,
        )
    });
    cluster.shutdown().await;
    Ok(DemoReport {
        ok: failure.is_none(),
        mode: "in_process",
        failure,
        nodes: options.nodes,
        agent: setup.agent.to_owned(),
        fence_device: setup.fence_device.to_owned(),
        killed_node: victim.get(),
        recovered_on: watch.recovered_on.map(NodeId::get),
        fence_actions,
        formed_ms,
        timeline: timeline.entries,
        explain: None,
    })
}

/// Checks the timeline: each step once, in order; one fence; one running copy.
fn verify(
    timeline: &[TimelineEntry],
    expected: &[Step],
    fence_actions: usize,
    running: &[NodeId],
) -> Option<String> {
    let order: Vec<Step> = timeline.iter().map(|e| e.event).collect();
    if order != expected {
        return Some(format!(
            "steps happened as {order:?}, expected {expected:?}"
        ));
    }
    if fence_actions != 1 {
        return Some(format!(
            "the dead node was fenced {fence_actions} times, expected once"
        ));
    }
    if running.len() != 1 {
        return Some(format!(
            "{RESOURCE} runs on {running:?} after recovery, expected exactly one survivor"
        ));
    }
    None
}

async fn count_fence_actions(nodes: &[Node], victim: NodeId) -> usize {
    let Ok(name) = node_name(victim) else {
        return 0;
    };
    let filter = HistoryFilter::all().target(name);
    let mut total = 0;
    for node in nodes {
        if let Ok(records) = node.fencer.history(&filter).await {
            total += records.len();
        }
    }
    total
}

async fn running_survivors(nodes: &[Node], victim: NodeId) -> Vec<NodeId> {
    let mut running = Vec::new();
    for node in nodes.iter().filter(|n| n.id != victim) {
        let op = Operation::new(Action::Monitor, Duration::from_secs(20));
        if let Ok(r) = node.executor.execute(RESOURCE, op).await {
            if r.outcome().and_then(ocf_resources::AgentOutcome::exit_code)
                == Some(ExitCode::Success)
            {
                running.push(node.id);
            }
        }
    }
    running
}

fn setup_error(node: NodeId, e: &dyn std::fmt::Display) -> DemoError {
    DemoError::Setup {
        node: node.get(),
        reason: e.to_string(),
    }
}

fn node_name(id: NodeId) -> Result<NodeName, DemoError> {
    NodeName::new(format!("n{id}")).map_err(|e| setup_error(id, &e))
}

fn resource_spec(use_script: bool, scratch: &Path, id: NodeId) -> Result<ResourceSpec, DemoError> {
    let bad = |e: &dyn std::fmt::Display| setup_error(id, e);
    if use_script {
        let agent = AgentId::new("heartbeat", "Dummy").map_err(|e| bad(&e))?;
        // Each simulated node keeps its own state file, as separate machines would.
        let state = scratch.join(format!("n{id}-Dummy.state"));
        Ok(ResourceSpec::new(RESOURCE, agent).param("state", state.display().to_string()))
    } else {
        let agent = AgentId::new(crate::resources::native::NATIVE_PROVIDER, "Dummy")
            .map_err(|e| bad(&e))?;
        Ok(ResourceSpec::new(RESOURCE, agent))
    }
}

fn fence_device_for(
    use_fence_dummy: bool,
    options: &DemoOptions,
    scratch: &Path,
    id: NodeId,
    hosts: &[NodeName],
) -> Result<Arc<dyn FenceDevice>, DemoError> {
    let device_id = format!("fence-n{id}")
        .parse()
        .map_err(|e| setup_error(id, &e))?;
    if use_fence_dummy {
        let mut params = DeviceParams::new();
        params.insert(
            "status_file",
            scratch
                .join(format!("fence-n{id}.status"))
                .display()
                .to_string(),
        );
        Ok(Arc::new(AgentDevice::new(
            device_id,
            &options.fence_dummy,
            params,
            Targets::hosts(hosts.iter().cloned()),
        )))
    } else {
        Ok(Arc::new(NullDevice::new(device_id, hosts.iter().cloned())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> NodeId {
        NodeId::new(n)
    }

    fn view(at: u32, members: &[u32]) -> (NodeId, FailoverEvent) {
        (
            id(at),
            FailoverEvent::ViewInstalled {
                node: id(at),
                view: "v2".into(),
                members: members.iter().copied().map(id).collect(),
                left: vec![id(3)],
                quorate: true,
                acting: at == 1,
            },
        )
    }

    fn watch() -> FailoverWatch {
        FailoverWatch::new(id(3), [id(1), id(2)].into(), "null device")
    }

    fn steps(w: &mut FailoverWatch, events: Vec<(NodeId, FailoverEvent)>) -> Vec<Step> {
        events
            .into_iter()
            .flat_map(|(at, ev)| w.observe(at, ev))
            .map(|(s, _)| s)
            .collect()
    }

    #[test]
    fn a_clean_failover_completes_every_step_in_order() {
        let mut w = watch();
        let seen = steps(
            &mut w,
            vec![
                view(1, &[1, 2]),
                view(1, &[1, 2]), // the same node again: no step
                view(2, &[1, 2]),
                (
                    id(1),
                    FailoverEvent::Fenced {
                        node: id(3),
                        record: 7,
                    },
                ),
                (
                    id(1),
                    FailoverEvent::Started {
                        resource: RESOURCE.into(),
                        node: id(2),
                    },
                ),
            ],
        );
        assert_eq!(
            seen,
            [
                Step::Detected,
                Step::ViewInstalled,
                Step::Fenced,
                Step::Restarted
            ]
        );
        assert!(w.done());
        assert_eq!(w.recovered_on, Some(id(2)));
        assert_eq!(w.failure, None);
    }

    #[test]
    fn views_that_still_hold_the_victim_or_come_from_it_are_no_steps() {
        let mut w = watch();
        let seen = steps(&mut w, vec![view(1, &[1, 2, 3]), view(3, &[1, 2])]);
        assert!(seen.is_empty(), "{seen:?}");
        assert!(!w.done());
    }

    #[test]
    fn a_failed_fence_or_start_is_the_failure_and_a_restart_on_the_victim_is_not_recovery() {
        let mut w = watch();
        let seen = steps(
            &mut w,
            vec![
                (
                    id(1),
                    FailoverEvent::FenceFailed {
                        node: id(3),
                        reason: "device off".into(),
                    },
                ),
                (
                    id(3),
                    FailoverEvent::Started {
                        resource: RESOURCE.into(),
                        node: id(3),
                    },
                ),
            ],
        );
        assert!(seen.is_empty(), "{seen:?}");
        assert!(!w.done());
        assert!(
            w.failure
                .as_deref()
                .is_some_and(|f| f.contains("device off")),
            "{:?}",
            w.failure
        );
    }

    #[test]
    fn formation_ends_when_the_resource_starts_on_the_victim() {
        let started = |n| FailoverEvent::Started {
            resource: RESOURCE.into(),
            node: id(n),
        };
        assert_eq!(formation_step(id(3), &started(1)), Ok(false));
        assert_eq!(formation_step(id(3), &started(3)), Ok(true));
        assert_eq!(formation_step(id(3), &view(1, &[1, 2, 3]).1), Ok(false));
        let failed = FailoverEvent::StartFailed {
            resource: RESOURCE.into(),
            node: id(3),
            reason: "no agent".into(),
        };
        assert!(formation_step(id(3), &failed).is_err_and(|e| e.contains("no agent")));
    }

    #[test]
    fn verify_wants_every_step_one_fence_and_one_copy() {
        let entry = |event| TimelineEntry {
            event,
            ms: 0,
            detail: String::new(),
        };
        let all: Vec<_> = [
            Step::Killed,
            Step::Detected,
            Step::ViewInstalled,
            Step::Fenced,
            Step::Restarted,
        ]
        .into_iter()
        .map(entry)
        .collect();
        let steps = IN_PROCESS_STEPS;
        assert_eq!(verify(&all, &steps, 1, &[id(1)]), None);
        assert!(verify(&all, &steps, 2, &[id(1)]).is_some());
        assert!(verify(&all, &steps, 1, &[id(1), id(2)]).is_some());
        assert!(verify(&all[..4], &steps, 1, &[id(1)]).is_some());
        assert!(
            verify(&all, &PROCESS_STEPS, 1, &[id(1)]).is_some(),
            "no node-death step"
        );
    }
}
