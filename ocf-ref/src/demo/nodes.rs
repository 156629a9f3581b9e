//! The demo's cluster of real `ocf node` processes on loopback: each with its own config,
//! key file, socket, fence device and executor (the daemon's), started as children of the
//! demo in their own process groups, and the failover managers as clients of their sockets.
//!
//! [`NodeCluster::shutdown`] stops everything (managers, the resource, each node with
//! SIGTERM, then SIGKILL after a grace) and reaps every child; the scratch directory (configs,
//! key, sockets, logs, state files) is removed last. Dropping the cluster without it kills
//! every child (SIGKILL) and removes the directory: an early return leaves nothing running.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ocf_core::{NodeId, NodeName};
use ocf_fencing::{Fencer, HistoryFilter};
use ocf_membership::Membership;
use ocf_resources::{Action, Executor, ExecutorAdmin, ExitCode, Operation, ResourceSpec};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::{DemoError, DemoOptions, RESOURCE, Setup, node_name, setup_error};
use crate::failover::{FailoverConfig, FailoverEvent, FailoverManager, Peer, ResourcePolicy};
use crate::fencing::daemon_fencer::DaemonFencer;
use crate::membership::builtin::key::ClusterKey;
use crate::membership::daemon::DaemonClient;
use crate::resources::daemon_executor::DaemonExecutor;

/// How long a node has to stop on SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// One `ocf node` child.
struct NodeProcess {
    id: NodeId,
    name: NodeName,
    socket: PathBuf,
    child: Option<Child>,
    manager: Option<tokio::task::JoinHandle<()>>,
}

impl NodeProcess {
    fn membership(&self) -> DaemonClient {
        DaemonClient::new(&self.socket).with_timeout(Duration::from_secs(5))
    }

    fn fencer(&self) -> DaemonFencer {
        DaemonFencer::new(&self.socket)
    }

    fn executor(&self) -> DaemonExecutor {
        DaemonExecutor::new(&self.socket)
    }

    /// SIGKILL, and reaped.
    async fn kill9(&mut self) {
        if let Some(m) = self.manager.take() {
            m.abort();
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// Asks the node to stop (SIGTERM).
    fn term(&self) {
        if let Some(pid) = self
            .child
            .as_ref()
            .and_then(Child::id)
            .and_then(|p| i32::try_from(p).ok())
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }

    /// Waits until `until` for the node to exit, then SIGKILL; reaped either way.
    async fn reap(&mut self, until: tokio::time::Instant) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if tokio::time::timeout_at(until, child.wait()).await.is_err() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Some(m) = &self.manager {
            m.abort();
        }
        // The last resort (kill_on_drop does the same): an early return kills the node.
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
    }
}

/// The running cluster of processes, its managers' merged events and its scratch space.
pub(super) struct NodeCluster {
    nodes: Vec<NodeProcess>,
    events: mpsc::UnboundedReceiver<(NodeId, FailoverEvent)>,
    events_tx: mpsc::UnboundedSender<(NodeId, FailoverEvent)>,
    /// Removed when the cluster goes (after the nodes, declared last).
    scratch: tempfile::TempDir,
}

/// One node's config file text.
fn config_text(
    options: &DemoOptions,
    setup: &Setup,
    scratch: &Path,
    id: u32,
    members: &str,
    hosts: &str,
) -> String {
    let key = scratch.join("authkey");
    let socket = scratch.join(format!("n{id}.sock"));
    let mut text = format!(
        "cluster = \"demo\"\nnode_id = {id}\nkey_file = {:?}\nsocket = {:?}\n",
        key.display().to_string(),
        socket.display().to_string(),
    );
    if setup.use_fence_dummy {
        let dir = options
            .fence_dummy
            .parent()
            .map_or_else(|| "/usr/sbin".to_owned(), |d| d.display().to_string());
        let status = scratch.join(format!("fence-n{id}.status"));
        let _ = write!(
            text,
            "[fencing]\nagents_dir = {dir:?}\n[[devices]]\nid = \"fence-n{id}\"\nagent = \"fence_dummy\"\nhosts = [{hosts}]\nparams = {{ status_file = {:?} }}\n",
            status.display().to_string()
        );
    } else {
        let _ = write!(
            text,
            "[[devices]]\nid = \"fence-n{id}\"\nagent = \"native:null\"\nhosts = [{hosts}]\n"
        );
    }
    text.push_str(members);
    text
}

impl NodeCluster {
    /// Writes `options.nodes` configs and a key in a fresh scratch directory and starts one
    /// `ocf node` per config.
    pub(super) fn start(
        options: &DemoOptions,
        setup: &Setup,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<Self, DemoError> {
        let scratch = tempfile::Builder::new().prefix("ocf-demo-").tempdir()?;
        let n = u32::try_from(options.nodes).map_err(|_| DemoError::TooFewNodes(0))?;
        ClusterKey::random()
            .write_new(&scratch.path().join("authkey"))
            .map_err(|e| setup_error(NodeId::new(1), &e))?;
        // Every port is held until all are known, so no two nodes get the same one.
        let held: Vec<std::net::UdpSocket> = (0..n)
            .map(|_| std::net::UdpSocket::bind("127.0.0.1:0"))
            .collect::<Result<_, _>>()?;
        let mut members = String::new();
        for (id, socket) in (1..=n).zip(&held) {
            let _ = writeln!(
                members,
                "[[nodes]]\nid = {id}\nname = \"n{id}\"\naddress = \"{}\"",
                socket.local_addr()?
            );
        }
        drop(held);
        let hosts = (1..=n)
            .map(|i| format!("\"n{i}\""))
            .collect::<Vec<_>>()
            .join(", ");
        progress(&format!(
            "starting {n} `ocf node` processes on 127.0.0.1 with {} and {} (scratch {})",
            setup.agent,
            setup.fence_device,
            scratch.path().display()
        ));
        let (events_tx, events) = mpsc::unbounded_channel();
        let mut cluster = Self {
            nodes: Vec::new(),
            events,
            events_tx,
            scratch,
        };
        for id in 1..=n {
            let dir = cluster.scratch.path();
            let config = dir.join(format!("n{id}.toml"));
            let text = config_text(options, setup, dir, id, &members, &hosts);
            std::fs::write(&config, text)?;
            let log = std::fs::File::create(dir.join(format!("n{id}.log")))?;
            let child = Command::new(&options.ocf_bin)
                .arg("node")
                .arg("--config")
                .arg(&config)
                .env("RUST_LOG", "info")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(log)
                // Its own process group: a Ctrl-C at the terminal reaches the demo, which
                // stops the nodes itself, in order.
                .process_group(0)
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| {
                    setup_error(
                        NodeId::new(id),
                        &format!("cannot start {}: {e}", options.ocf_bin.display()),
                    )
                })?;
            cluster.nodes.push(NodeProcess {
                id: NodeId::new(id),
                name: node_name(NodeId::new(id))?,
                socket: dir.join(format!("n{id}.sock")),
                child: Some(child),
                manager: None,
            });
        }
        Ok(cluster)
    }

    /// The last lines of each node's log, for a failure's message.
    pub(super) fn log_tails(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            let log = std::fs::read_to_string(self.scratch.path().join(format!("{}.log", n.name)))
                .unwrap_or_default();
            let _ = writeln!(out, "--- {} ---", n.name);
            let lines: Vec<&str> = log.lines().rev().take(15).collect();
            for l in lines.iter().rev() {
                let _ = writeln!(out, "{l}");
            }
        }
        out
    }

    /// Waits until every node has one quorate view of all of them, reporting progress.
    pub(super) async fn wait_for_quorum(
        &mut self,
        deadline: Instant,
        started: Instant,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<(), DemoError> {
        let n = self.nodes.len();
        let mut last_told = None;
        loop {
            let mut exited = None;
            for node in &mut self.nodes {
                if let Some(child) = &mut node.child
                    && let Ok(Some(status)) = child.try_wait()
                {
                    exited = Some(format!("node {} exited ({status})", node.name));
                }
            }
            if let Some(why) = exited {
                return Err(DemoError::NotReady(format!(
                    "{why} before the cluster formed:\n{}",
                    self.log_tails()
                )));
            }
            let mut views = Vec::new();
            for node in &self.nodes {
                if let Ok(Some(v)) = node.membership().current_view().await
                    && v.is_quorate()
                {
                    views.push((v.id, v.members().len()));
                }
            }
            let together = views
                .iter()
                .filter(|(id, len)| *len == n && Some(id) == views.first().map(|v| &v.0))
                .count();
            if together == n {
                return Ok(());
            }
            if last_told != Some(together) {
                last_told = Some(together);
                progress(&format!(
                    "waiting for quorum: {together}/{n} nodes in one view ({} ms of {} ms)",
                    started.elapsed().as_millis(),
                    deadline.saturating_duration_since(started).as_millis()
                ));
            }
            if Instant::now() >= deadline {
                return Err(DemoError::NotReady(format!(
                    "the {n} nodes did not form one view in time:\n{}",
                    self.log_tails()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Registers the resource with every node's executor (each node its own state file, as
    /// separate machines would have).
    pub(super) async fn register(&self, setup: &Setup) -> Result<(), DemoError> {
        for node in &self.nodes {
            let spec: ResourceSpec =
                super::resource_spec(setup.use_script, self.scratch.path(), node.id)?;
            node.executor()
                .register(spec)
                .await
                .map_err(|e| setup_error(node.id, &e))?;
        }
        Ok(())
    }

    /// Starts one failover manager per node, each a client of its own node's socket
    /// (membership, fencer) and of every node's executor; the resource prefers `prefer`.
    pub(super) fn start_managers(&mut self, prefer: NodeId, await_death: Duration) {
        let peers: Vec<Peer> = self
            .nodes
            .iter()
            .map(|n| Peer {
                id: n.id,
                name: n.name.clone(),
                executor: Arc::new(n.executor()) as Arc<dyn Executor>,
            })
            .collect();
        let sockets: Vec<PathBuf> = self.nodes.iter().map(|n| n.socket.clone()).collect();
        for node in &mut self.nodes {
            let manager = Arc::new(FailoverManager::new(
                node.id,
                Arc::new(node.membership().with_timeout(Duration::from_secs(10)))
                    as Arc<dyn Membership>,
                Arc::new(node.fencer()) as Arc<dyn Fencer>,
                peers.clone(),
                vec![ResourcePolicy {
                    name: RESOURCE.to_owned(),
                    prefer: vec![prefer],
                }],
                FailoverConfig::default()
                    .await_node_death(await_death)
                    .note_to(sockets.clone()),
            ));
            super::forward_events(node.id, &manager, self.events_tx.clone());
            node.manager = Some(tokio::spawn(async move {
                if let Err(e) = manager.run().await {
                    tracing::warn!("{e}");
                }
            }));
        }
    }

    /// The next failover event, or `None` once `deadline` passes.
    pub(super) async fn next_event(
        &mut self,
        deadline: Instant,
    ) -> Option<(NodeId, FailoverEvent)> {
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::timeout(left, self.events.recv())
            .await
            .ok()
            .flatten()
    }

    /// Kills node `victim` with SIGKILL (a real process death) and its manager with it.
    pub(super) async fn kill(&mut self, victim: NodeId) {
        if let Some(node) = self.nodes.iter_mut().find(|n| n.id == victim) {
            node.kill9().await;
        }
    }

    /// The explanation of the last incident from every survivor, once each holds a recovery
    /// (the acting manager notes it just after the restart), at most until `deadline`.
    pub(super) async fn explanations(
        &self,
        deadline: Instant,
    ) -> Vec<(NodeId, Result<crate::explain::Explanation, String>)> {
        loop {
            let mut out = Vec::new();
            for node in self.nodes.iter().filter(|n| n.child.is_some()) {
                let e = crate::explain::client::explain_at(&node.socket, None)
                    .await
                    .map_err(|e| e.to_string());
                out.push((node.id, e));
            }
            let complete = out
                .iter()
                .all(|(_, e)| e.as_ref().is_ok_and(|e| !e.recoveries.is_empty()));
            if complete || Instant::now() >= deadline {
                return out;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Device actions on `victim` in each survivor's (replicated) fence history.
    pub(super) async fn fence_actions(&self, victim: NodeId) -> Vec<(NodeId, usize)> {
        let Ok(name) = node_name(victim) else {
            return Vec::new();
        };
        let filter = HistoryFilter::all().target(name);
        let mut out = Vec::new();
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            let count = node.fencer().history(&filter).await.map_or(0, |records| {
                records
                    .iter()
                    .flat_map(|r| &r.levels)
                    .map(|l| l.attempts.len())
                    .sum()
            });
            out.push((node.id, count));
        }
        out
    }

    /// The survivors on which the resource reports running.
    pub(super) async fn running(&self) -> Vec<NodeId> {
        let mut running = Vec::new();
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            let op = Operation::new(Action::Monitor, Duration::from_secs(20));
            if let Ok(r) = node.executor().execute(RESOURCE, op).await
                && r.outcome().and_then(ocf_resources::AgentOutcome::exit_code)
                    == Some(ExitCode::Success)
            {
                running.push(node.id);
            }
        }
        running
    }

    /// Stops the managers, the resource wherever it runs, then every node (SIGTERM, then
    /// SIGKILL after a grace), reaping each; then removes the scratch directory.
    pub(super) async fn shutdown(mut self) {
        for node in &mut self.nodes {
            if let Some(m) = node.manager.take() {
                m.abort();
            }
        }
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            let op = Operation::new(Action::Stop, Duration::from_secs(20));
            let _ = tokio::time::timeout(
                Duration::from_secs(25),
                node.executor().execute(RESOURCE, op),
            )
            .await;
        }
        for node in &self.nodes {
            node.term();
        }
        let until = tokio::time::Instant::now() + STOP_GRACE;
        for node in &mut self.nodes {
            node.reap(until).await;
        }
    }
}
