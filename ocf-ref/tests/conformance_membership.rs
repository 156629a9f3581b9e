//! The membership conformance suite (`ocf_conformance::membership`) on both engines:
//!
//! - the built-in engine, 3 nodes on loopback UDP in this process, handles straight on the
//!   engines; kill = stop a node's engine without a word to the others;
//! - the built-in engine again, each node behind an in-process node daemon, handles are
//!   `DaemonClient`s on the daemons' sockets (the local API every client uses);
//! - Corosync (feature `corosync`): 3 corosync nodes in network namespaces joined by a bridge,
//!   each with an `ocf node --config F` (`backend = "corosync"`) in its node's network namespace
//!   serving its socket in a temp dir the test reaches; handles are `DaemonClient`s; kill =
//!   `kill -9` of that node's corosync and of its `ocf node`.
//!
//! Every check must pass, none may be skipped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(feature = "corosync")]
mod corosync_support;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ocf_conformance::membership::{self, MembershipCluster, Options};
use ocf_conformance::{CheckOutcome, Clock, Report};
use ocf_core::NodeId;
use ocf_membership::{
    EventKind, Member, Membership, MembershipError, MembershipEvent, Quorum, Subscription, View,
    ViewId,
};
use ocf_ref::conformance::TokioClock;
use ocf_ref::membership::builtin::BuiltinEngine;
use ocf_ref::membership::builtin::hub::{EventHub, HUB_CAPACITY};
use ocf_ref::membership::builtin::key::ClusterKey;
use ocf_ref::membership::builtin::loopback;
use ocf_ref::membership::daemon::DaemonClient;
use ocf_ref::membership::daemon::{self, Daemon};

/// The suite's checks, all of which must pass on every engine.
const CHECKS: usize = 9;

fn assert_all_passed(report: &Report) {
    report.assert_passed();
    for c in &report.checks {
        assert_eq!(c.outcome, CheckOutcome::Pass, "{report}");
    }
    assert_eq!(report.checks.len(), CHECKS, "{report}");
}

/// Built-in engines on loopback, used directly.
struct Loopback {
    engines: Vec<Arc<BuiltinEngine>>,
    clock: TokioClock,
}

#[async_trait]
impl MembershipCluster for Loopback {
    fn implementation(&self) -> String {
        format!("builtin ({} nodes on loopback)", self.engines.len())
    }

    fn nodes(&self) -> Vec<Arc<dyn Membership>> {
        self.engines
            .iter()
            .map(|e| Arc::clone(e) as Arc<dyn Membership>)
            .collect()
    }

    fn clock(&self) -> &dyn Clock {
        &self.clock
    }

    async fn kill(&self, index: usize) -> Result<(), String> {
        // The engine stops sending and receiving at once; the others learn it only by silence.
        self.engines
            .get(index)
            .ok_or_else(|| format!("no node {index}"))?
            .stop();
        Ok(())
    }

    async fn shut_down(&self, index: usize) -> Result<(), String> {
        // Stopping is also how an engine shuts down: its subscribers get Evicted, then the end.
        self.kill(index).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtin_engine_on_loopback_passes_the_membership_suite() {
    let dir = tempfile::tempdir().unwrap();
    let configs = loopback::configs("conf", 3, dir.path()).unwrap();
    let engines = loopback::start(&configs, &ClusterKey::random())
        .await
        .unwrap();
    let cluster = Loopback {
        engines,
        clock: TokioClock::new(),
    };
    let report = membership::run(&cluster, &Options::default()).await;
    for e in &cluster.engines {
        e.stop();
    }
    assert_all_passed(&report);
}

/// Built-in engines behind in-process node daemons, reached through their sockets.
struct Daemons {
    running: Mutex<Vec<Option<Daemon>>>,
    clients: Vec<DaemonClient>,
    clock: TokioClock,
}

#[async_trait]
impl MembershipCluster for Daemons {
    fn implementation(&self) -> String {
        format!(
            "builtin ({} node daemons on loopback, DaemonClient)",
            self.clients.len()
        )
    }

    fn nodes(&self) -> Vec<Arc<dyn Membership>> {
        self.clients
            .iter()
            .map(|c| Arc::new(c.clone()) as Arc<dyn Membership>)
            .collect()
    }

    fn clock(&self) -> &dyn Clock {
        &self.clock
    }

    async fn kill(&self, index: usize) -> Result<(), String> {
        let daemon = self
            .running
            .lock()
            .unwrap()
            .get_mut(index)
            .and_then(Option::take)
            .ok_or_else(|| format!("no running node {index}"))?;
        daemon.shutdown().await;
        Ok(())
    }

    async fn shut_down(&self, index: usize) -> Result<(), String> {
        // In process, a kill is already the daemon's clean shutdown.
        self.kill(index).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtin_engine_through_node_daemons_passes_the_membership_suite() {
    let dir = tempfile::tempdir().unwrap();
    let configs = loopback::configs("confd", 3, dir.path()).unwrap();
    let key = ClusterKey::random();
    let mut daemons = Vec::new();
    let mut clients = Vec::new();
    for c in &configs {
        daemons.push(Some(daemon::serve_with_key(c, &key).await.unwrap()));
        clients.push(DaemonClient::new(c.socket_path()));
    }
    let cluster = Daemons {
        running: Mutex::new(daemons),
        clients,
        clock: TokioClock::new(),
    };
    let report = membership::run(&cluster, &Options::default()).await;
    let left: Vec<Daemon> = cluster
        .running
        .lock()
        .unwrap()
        .drain(..)
        .flatten()
        .collect();
    for d in left {
        d.shutdown().await;
    }
    assert_all_passed(&report);
}

/// A source whose events the test publishes: an [`EventHub`] of node 1.
struct HubSource(Arc<EventHub>);

#[async_trait]
impl Membership for HubSource {
    async fn local_node(&self) -> Result<NodeId, MembershipError> {
        Ok(NodeId::new(1))
    }
    async fn current_view(&self) -> Result<Option<View>, MembershipError> {
        Ok(self.0.current())
    }
    async fn subscribe(&self) -> Result<Box<dyn Subscription>, MembershipError> {
        Ok(Box::new(self.0.subscribe()))
    }
}

/// Publishes `n` events into `hub` at once; answers the last `seq`.
fn flood(hub: &EventHub, n: usize) -> u64 {
    let view = View::new(
        ViewId::new(1, NodeId::new(1), 0),
        vec![Member::new(NodeId::new(1), "n1".parse().unwrap())],
        None,
        Quorum::majority(1, 1),
    );
    let n = n as u64;
    for seq in 1..=n {
        hub.publish(MembershipEvent::new(
            seq,
            EventKind::NewMembership,
            view.clone(),
        ));
    }
    n
}

/// Lag means the same everywhere: `Lagged { missed }`, then the stream goes on, both on
/// the engines' event hub and through a node daemon's socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_subscriber_is_told_and_the_stream_goes_on() {
    let clock = TokioClock::new();
    let hub = Arc::new(EventHub::new("lag test"));
    let source = HubSource(Arc::clone(&hub));
    membership::check_lag(&clock, &source, HUB_CAPACITY, |n| {
        std::future::ready(flood(&hub, n))
    })
    .await
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let hub = Arc::new(EventHub::new("lag test over a socket"));
    let server = daemon::serve_source(
        Arc::new(HubSource(Arc::clone(&hub))),
        &dir.path().join("lag.sock"),
    )
    .await
    .unwrap();
    let client = DaemonClient::new(dir.path().join("lag.sock"));
    let result = membership::check_lag(&clock, &client, HUB_CAPACITY, |n| {
        std::future::ready(flood(&hub, n))
    })
    .await;
    server.shutdown().await;
    result.unwrap();
}

#[cfg(all(feature = "corosync", feature = "cli"))]
mod over_corosync {
    use std::fmt::Write as _;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use super::corosync_support::{Cluster, can_run, runtime, write};
    use super::*;

    const SIZE: u32 = 3;
    const LIMIT: Duration = Duration::from_secs(60);

    /// `ocf node --config F` inside one node's network namespace; `kill -9` on drop.
    pub struct OcfNode {
        child: Child,
        pub socket: PathBuf,
        log: PathBuf,
    }

    impl OcfNode {
        fn start(netns: &str, dir: &Path, id: u32) -> Self {
            let socket = dir.join(format!("n{id}.sock"));
            let config = dir.join(format!("n{id}.toml"));
            write(
                &config,
                &format!(
                    "cluster = \"conf{id}\"\nbackend = \"corosync\"\nsocket = {:?}\n",
                    socket.display().to_string()
                ),
            );
            let log = dir.join(format!("ocf-node-n{id}.log"));
            let out = std::fs::File::create(&log).unwrap();
            let err = out.try_clone().unwrap();
            // `ip netns exec` execs ocf, so the child's pid is ocf's own.
            let child = Command::new("ip")
                .args(["netns", "exec", netns, env!("CARGO_BIN_EXE_ocf"), "-v"])
                .arg("node")
                .arg("--config")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .unwrap();
            Self { child, socket, log }
        }

        fn kill9(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }

        /// SIGTERM, as `systemctl stop` sends, and waits for the daemon to exit.
        fn terminate(&mut self) -> Result<(), String> {
            let status = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status()
                .map_err(|e| format!("cannot run kill: {e}"))?;
            if !status.success() {
                return Err(format!("kill -TERM failed: {status}"));
            }
            self.child.wait().map_err(|e| e.to_string())?;
            Ok(())
        }

        fn log(&self) -> String {
            std::fs::read_to_string(&self.log).unwrap_or_default()
        }
    }

    impl Drop for OcfNode {
        fn drop(&mut self) {
            self.kill9();
        }
    }

    /// The harness: `ocf node`s are declared before the corosync cluster, so they stop first.
    struct OverCorosync {
        nodes: Mutex<Vec<OcfNode>>,
        cluster: Mutex<Cluster>,
        clients: Vec<DaemonClient>,
        clock: TokioClock,
    }

    #[async_trait]
    impl MembershipCluster for OverCorosync {
        fn implementation(&self) -> String {
            format!("corosync ({SIZE} nodes in network namespaces, ocf node daemons)")
        }

        fn nodes(&self) -> Vec<Arc<dyn Membership>> {
            self.clients
                .iter()
                .map(|c| Arc::new(c.clone()) as Arc<dyn Membership>)
                .collect()
        }

        fn clock(&self) -> &dyn Clock {
            &self.clock
        }

        async fn kill(&self, index: usize) -> Result<(), String> {
            let id = u32::try_from(index + 1).map_err(|e| e.to_string())?;
            self.cluster.lock().unwrap().kill9(id);
            self.nodes
                .lock()
                .unwrap()
                .get_mut(index)
                .ok_or_else(|| format!("no node {index}"))?
                .kill9();
            Ok(())
        }

        async fn shut_down(&self, index: usize) -> Result<(), String> {
            self.nodes
                .lock()
                .unwrap()
                .get_mut(index)
                .ok_or_else(|| format!("no node {index}"))?
                .terminate()
        }
    }

    impl OverCorosync {
        fn logs(&self) -> String {
            let nodes = self.nodes.lock().unwrap();
            let cluster = self.cluster.lock().unwrap();
            let mut text = String::new();
            for (i, n) in nodes.iter().enumerate() {
                let _ = writeln!(text, "--- ocf node n{}:\n{}", i + 1, n.log());
                let corosync = cluster.corosyncs[i].log();
                let _ = writeln!(text, "--- corosync n{}:\n{corosync}", i + 1);
            }
            text
        }
    }

    /// Waits until the daemon answers on its socket (a hang guard, not a timing assertion).
    async fn wait_serving(client: &DaemonClient, node: &OcfNode) {
        let deadline = Instant::now() + LIMIT;
        while client.local_node().await.is_err() {
            assert!(
                Instant::now() < deadline,
                "ocf node on {} never served; its log:\n{}",
                node.socket.display(),
                node.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[test]
    fn corosync_through_ocf_node_daemons_passes_the_membership_suite() {
        if !can_run("corosync_through_ocf_node_daemons_passes_the_membership_suite") {
            return;
        }
        let cluster = Cluster::start("cf", SIZE, 1000);
        cluster.wait_formed(SIZE as usize, LIMIT);
        // Sockets live in the cluster's temp dir: on the host's filesystem, reachable from this
        // (root) network namespace; only corosync's /run is private.
        let dir = cluster.dir.path().to_path_buf();
        let nodes: Vec<OcfNode> = (1..=SIZE)
            .map(|id| OcfNode::start(&cluster.ns(id), &dir, id))
            .collect();
        let clients: Vec<DaemonClient> =
            nodes.iter().map(|n| DaemonClient::new(&n.socket)).collect();
        let rt = runtime();
        rt.block_on(async {
            for (c, n) in clients.iter().zip(&nodes) {
                wait_serving(c, n).await;
            }
        });
        let harness = OverCorosync {
            nodes: Mutex::new(nodes),
            cluster: Mutex::new(cluster),
            clients,
            clock: TokioClock::new(),
        };
        let report = rt.block_on(membership::run(&harness, &Options::with_settle(LIMIT)));
        if !report.passed() {
            eprintln!("{}", harness.logs());
        }
        assert_all_passed(&report);
    }
}
