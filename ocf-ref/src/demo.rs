//! `ocf demo`: a failover on loopback, end to end, with the real agents where installed.
//!
//! N built-in membership nodes run in this process over real UDP sockets on 127.0.0.1, each
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
use ocf_resources::{Action, AgentId, Executor, ExitCode, Operation, ResourceSpec};
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
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            nodes: 3,
            deadline: Duration::from_secs(60),
            ocf_root: crate::resources::ocf_root(),
            fence_dummy: crate::fencing::devices::agent::agents_dir().join("fence_dummy"),
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
}

struct Node {
    id: NodeId,
    engine: Arc<BuiltinEngine>,
    executor: Arc<LocalExecutor>,
    fencer: Arc<LocalFencer>,
    manager: tokio::task::JoinHandle<()>,
}

/// Runs the demo, reporting progress through `progress` (one line per happening).
pub async fn run(
    options: &DemoOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<DemoReport, DemoError> {
    if options.nodes < 3 {
        return Err(DemoError::TooFewNodes(options.nodes));
    }
    let started = Instant::now();
    let ms = move || ocf_core::millis::as_millis(started.elapsed());
    let scratch = tempfile::Builder::new().prefix("ocf-demo-").tempdir()?;
    let n = u32::try_from(options.nodes).map_err(|_| DemoError::TooFewNodes(0))?;
    let ids: Vec<NodeId> = (1..=n).map(NodeId::new).collect();
    let victim = NodeId::new(n);

    let configs = loopback::configs("demo", n, scratch.path()).map_err(|e| setup(victim, &e))?;
    let key = ClusterKey::random();
    let use_script = options
        .ocf_root
        .join("resource.d/heartbeat/Dummy")
        .is_file();
    let use_fence_dummy = options.fence_dummy.is_file();
    let agent = if use_script {
        "ocf:heartbeat:Dummy"
    } else {
        "ocf:native:Dummy"
    };
    let fence_device = if use_fence_dummy {
        "fence_dummy"
    } else {
        "null device"
    };
    progress(&format!(
        "starting {n} nodes on 127.0.0.1 with {agent} and {fence_device} (scratch {})",
        scratch.path().display()
    ));

    let (events_tx, mut events) = mpsc::unbounded_channel();
    let mut nodes = Vec::new();
    let mut peers = Vec::new();
    let mut engines = Vec::new();
    for config in &configs {
        let id = config.local_id();
        let engine = BuiltinEngine::start(config, &key)
            .await
            .map_err(|e| setup(id, &e))?;
        let engine = Arc::new(engine);
        let registry = AgentRegistry::new(&options.ocf_root);
        registry.add_native(Arc::new(NativeDummy::new()));
        let executor = Arc::new(LocalExecutor::new(
            Arc::new(registry),
            ExecutorConfig::default(),
        ));
        executor
            .register(resource_spec(use_script, scratch.path(), id)?)
            .await
            .map_err(|e| setup(id, &e))?;
        let name = node_name(id)?;
        peers.push(Peer {
            id,
            name,
            executor: executor.clone(),
        });
        engines.push((id, engine, executor));
    }
    let all_names: Vec<NodeName> = peers.iter().map(|p| p.name.clone()).collect();
    for (id, engine, executor) in engines {
        let membership: Arc<dyn Membership> = engine.clone();
        let fencer = Arc::new(LocalFencer::with(
            FencerConfig::default(),
            Arc::new(QuorumPolicy::new(membership.clone())),
        ));
        fencer
            .register_device(fence_device_for(
                use_fence_dummy,
                options,
                scratch.path(),
                id,
                &all_names,
            )?)
            .await
            .map_err(|e| setup(id, &e))?;
        let manager = Arc::new(FailoverManager::new(
            id,
            membership,
            fencer.clone(),
            peers.clone(),
            vec![ResourcePolicy {
                name: RESOURCE.to_owned(),
                prefer: vec![victim],
            }],
            FailoverConfig::default(),
        ));
        let mut sub = manager.subscribe();
        let tx = events_tx.clone();
        tokio::spawn(async move {
            while let Ok(ev) = sub.recv().await {
                if tx.send((id, ev)).is_err() {
                    break;
                }
            }
        });
        let task = tokio::spawn(async move {
            if let Err(e) = manager.run().await {
                tracing::warn!("{e}");
            }
        });
        nodes.push(Node {
            id,
            engine,
            executor,
            fencer,
            manager: task,
        });
    }

    // Formation: every node in one view, and the resource started on the victim.
    let deadline = started + options.deadline;
    let mut running_on_victim = false;
    while !running_on_victim {
        let Some((_, ev)) = recv_until(&mut events, deadline).await else {
            shutdown(&nodes).await;
            return Err(DemoError::NotReady(
                "the cluster did not form and start the resource in time".into(),
            ));
        };
        match ev {
            FailoverEvent::Started { node, .. } if node == victim => running_on_victim = true,
            FailoverEvent::StartFailed { node, reason, .. } => {
                shutdown(&nodes).await;
                return Err(DemoError::NotReady(format!(
                    "starting {RESOURCE} on node {node} failed: {reason}"
                )));
            }
            _ => {}
        }
    }
    let formed_ms = ms();
    progress(&format!(
        "{formed_ms:>6} ms  cluster formed, {RESOURCE} running on node {victim}"
    ));

    // The crash.
    let mut timeline = Vec::new();
    let record = |step: Step, detail: String, timeline: &mut Vec<TimelineEntry>| {
        let at = ms();
        progress(&format!("{at:>6} ms  {step:?}: {detail}"));
        timeline.push(TimelineEntry {
            event: step,
            ms: at,
            detail,
        });
    };
    if let Some(dead) = nodes.iter().find(|nd| nd.id == victim) {
        dead.manager.abort();
        dead.engine.stop();
    }
    record(
        Step::Killed,
        format!("node {victim} crashed"),
        &mut timeline,
    );

    let survivors: BTreeSet<NodeId> = ids.iter().copied().filter(|i| *i != victim).collect();
    let mut installed: BTreeSet<NodeId> = BTreeSet::new();
    let mut recovered_on = None;
    let mut failure = None;
    while recovered_on.is_none() {
        let Some((at_node, ev)) = recv_until(&mut events, deadline).await else {
            failure = Some("the failover did not finish before the deadline".to_owned());
            break;
        };
        match ev {
            FailoverEvent::ViewInstalled { view, members, .. }
                if survivors.contains(&at_node) && !members.contains(&victim) =>
            {
                if installed.is_empty() {
                    record(
                        Step::Detected,
                        format!("node {at_node} installed view {view} without node {victim}"),
                        &mut timeline,
                    );
                }
                installed.insert(at_node);
                if installed == survivors {
                    record(
                        Step::ViewInstalled,
                        format!("all {} survivors installed view {view}", survivors.len()),
                        &mut timeline,
                    );
                }
            }
            FailoverEvent::Fenced { node, record: id } if node == victim => record(
                Step::Fenced,
                format!("node {at_node} fenced node {victim} with {fence_device} (record {id})"),
                &mut timeline,
            ),
            FailoverEvent::FenceFailed { node, reason } => {
                failure = Some(format!(
                    "node {at_node} could not fence node {node}: {reason}"
                ));
            }
            FailoverEvent::Started { resource, node } if node != victim => {
                record(
                    Step::Restarted,
                    format!("{resource} started on node {node}"),
                    &mut timeline,
                );
                recovered_on = Some(node);
            }
            FailoverEvent::StartFailed { node, reason, .. } => {
                failure = Some(format!(
                    "starting {RESOURCE} on node {node} failed: {reason}"
                ));
            }
            _ => {}
        }
    }

    let fence_actions = count_fence_actions(&nodes, victim).await;
    let running = running_survivors(&nodes, victim).await;
    if failure.is_none() {
        failure = verify(&timeline, fence_actions, &running);
    }
    shutdown(&nodes).await;
    Ok(DemoReport {
        ok: failure.is_none(),
        failure,
        nodes: options.nodes,
        agent: agent.to_owned(),
        fence_device: fence_device.to_owned(),
        killed_node: victim.get(),
        recovered_on: recovered_on.map(NodeId::get),
        fence_actions,
        formed_ms,
        timeline,
    })
}

/// Checks the timeline: each step once, in order; one fence; one running copy.
fn verify(timeline: &[TimelineEntry], fence_actions: usize, running: &[NodeId]) -> Option<String> {
    let order: Vec<Step> = timeline.iter().map(|e| e.event).collect();
    let expected = [
        Step::Killed,
        Step::Detected,
        Step::ViewInstalled,
        Step::Fenced,
        Step::Restarted,
    ];
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
            if r.outcome().and_then(ocf_resources::Outcome::exit_code) == Some(ExitCode::Success) {
                running.push(node.id);
            }
        }
    }
    running
}

/// Stops every node and the resource wherever it still runs, so nothing is left behind.
async fn shutdown(nodes: &[Node]) {
    for node in nodes {
        node.manager.abort();
        node.engine.stop();
        let op = Operation::new(Action::Stop, Duration::from_secs(20));
        let _ = node.executor.execute(RESOURCE, op).await;
    }
}

async fn recv_until<T>(rx: &mut mpsc::UnboundedReceiver<T>, deadline: Instant) -> Option<T> {
    let left = deadline.saturating_duration_since(Instant::now());
    tokio::time::timeout(left, rx.recv()).await.ok().flatten()
}

fn setup(node: NodeId, e: &dyn std::fmt::Display) -> DemoError {
    DemoError::Setup {
        node: node.get(),
        reason: e.to_string(),
    }
}

fn node_name(id: NodeId) -> Result<NodeName, DemoError> {
    NodeName::new(format!("n{id}")).map_err(|e| setup(id, &e))
}

fn resource_spec(use_script: bool, scratch: &Path, id: NodeId) -> Result<ResourceSpec, DemoError> {
    let bad = |e: &dyn std::fmt::Display| setup(id, e);
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
    let device_id = format!("fence-n{id}").parse().map_err(|e| setup(id, &e))?;
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
