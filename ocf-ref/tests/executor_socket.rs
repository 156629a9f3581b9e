#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The node daemon's socket serving its executor: the resources conformance suite run on
//! `DaemonExecutor` (native Dummy and the real `ocf:heartbeat:Dummy` script), hostile lines,
//! and a real `ocf node` process whose resources outlive the client that made them, seen by
//! another client process (`ocf ra status --config`).

#[path = "nodes_support/mod.rs"]
mod nodes_support;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ocf_conformance::resources::executor::{self, ExecutorHarness, ExecutorOptions};
use ocf_conformance::{CheckOutcome, Clock};
use ocf_core::NodeId;
use ocf_ref::conformance::TokioClock;
use ocf_ref::membership::daemon::{self, NoMembership, ServeOptions, ServerHandle, local_socket};
use ocf_ref::resources::daemon_executor::DaemonExecutor;
use ocf_ref::resources::{AgentRegistry, ExecutorConfig, LocalExecutor, NativeDummy};
use ocf_resources::{
    Action, AgentId, Executor, ExecutorAdmin, Operation, ResourceErrorKind, ResourceSpec,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

const SYSTEM_ROOT: &str = "/usr/lib/ocf";

/// A `LocalExecutor` served on a socket in a temp dir.
struct Served {
    server: Option<ServerHandle>,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Served {
    async fn new(buffer: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sock");
        let claim = local_socket::claim(&path, None).await.unwrap();
        let registry = AgentRegistry::new(SYSTEM_ROOT);
        registry.add_native(Arc::new(NativeDummy::new()));
        let exec = LocalExecutor::new(
            Arc::new(registry),
            ExecutorConfig::default().subscriber_buffer(buffer),
        );
        let options = ServeOptions::default().with_executor(Arc::new(exec));
        let server = daemon::serve_claimed(Arc::new(NoMembership(NodeId::new(1))), claim, options);
        Self {
            server: Some(server),
            path,
            _dir: dir,
        }
    }
}

/// The executor suite's harness: each executor is a fresh daemon socket and a
/// `DaemonExecutor` on it; shutting one down stops its server (the newest first).
struct SocketHarness {
    agent: AgentId,
    state_dir: Option<PathBuf>,
    served: Mutex<Vec<Served>>,
}

const BUFFER: usize = 8;

#[async_trait]
impl ExecutorHarness for SocketHarness {
    fn implementation(&self) -> String {
        format!("DaemonExecutor over a node socket running {}", self.agent)
    }
    fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(TokioClock::new())
    }
    async fn executor(&self) -> Result<Arc<dyn ExecutorAdmin>, String> {
        let served = Served::new(BUFFER).await;
        let client = DaemonExecutor::new(&served.path).with_subscriber_buffer(BUFFER);
        self.served.lock().unwrap().push(served);
        Ok(Arc::new(client))
    }
    fn resource(&self, name: &str) -> ResourceSpec {
        let spec = ResourceSpec::new(name, self.agent.clone());
        match &self.state_dir {
            Some(dir) => spec.param("state", dir.join(name).display().to_string()),
            None => spec,
        }
    }
    // The suite's lag check reads as soon as its operations return, while this client's
    // buffer is still filling from the socket; `a_subscriber_that_does_not_read_lags_once`
    // checks the lag instead.
    async fn shut_down(&self, executor: Arc<dyn ExecutorAdmin>) {
        drop(executor);
        let last = self.served.lock().unwrap().pop();
        if let Some(mut s) = last
            && let Some(server) = s.server.take()
        {
            server.shutdown().await;
        }
    }
}

fn assert_pass(report: &ocf_conformance::Report, name: &str) {
    assert_eq!(
        report.outcome(name),
        Some(&CheckOutcome::Pass),
        "{name}:\n{report}"
    );
}

#[tokio::test]
async fn the_socket_executor_with_the_native_dummy_conforms() {
    let harness = SocketHarness {
        agent: "ocf:native:Dummy".parse().unwrap(),
        state_dir: None,
        served: Mutex::new(Vec::new()),
    };
    let report = executor::run(&harness, &ExecutorOptions::default()).await;
    report.assert_passed();
    for name in [
        "executor.stream_end",
        "executor.recurring",
        "executor.unknown",
    ] {
        assert_pass(&report, name);
    }
}

#[tokio::test]
async fn the_socket_executor_with_the_heartbeat_dummy_script_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let harness = SocketHarness {
        agent: "ocf:heartbeat:Dummy".parse().unwrap(),
        state_dir: Some(dir.path().to_owned()),
        served: Mutex::new(Vec::new()),
    };
    let report = executor::run(&harness, &ExecutorOptions::default()).await;
    report.assert_passed();
    assert!(
        !dir.path().join("conf-exec").exists(),
        "the suite left the resource started"
    );
}

#[tokio::test]
async fn a_subscriber_that_does_not_read_lags_once_then_goes_on() {
    let served = Served::new(4096).await;
    let client = DaemonExecutor::new(&served.path).with_subscriber_buffer(BUFFER);
    client
        .register(ResourceSpec::new("r", "ocf:native:Dummy".parse().unwrap()))
        .await
        .unwrap();
    let mut stream = client.subscribe().await.unwrap();
    let mut last = 0;
    for _ in 0..BUFFER * 3 {
        last = client
            .execute("r", Operation::new(Action::Monitor, Duration::from_secs(5)))
            .await
            .unwrap()
            .call_id;
    }
    // Let the client's pump take every line off the socket (a bound, not a speed goal).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut lags = Vec::new();
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(30), stream.next_result())
            .await
            .unwrap()
        {
            Err(ocf_resources::ResourceError::Lagged { missed }) => lags.push(missed),
            Ok(Some(r)) => {
                seen.push(r.call_id);
                if r.call_id == last {
                    break;
                }
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(lags, [u64::try_from(BUFFER * 2).unwrap()], "{seen:?}");
    assert_eq!(seen.len(), BUFFER, "the newest {BUFFER} kept: {seen:?}");
}

#[tokio::test]
async fn typed_errors_and_hostile_lines_get_answers_not_panics() {
    let served = Served::new(BUFFER).await;
    let client = DaemonExecutor::new(&served.path);
    let missing: AgentId = "ocf:heartbeat:NoSuchAgent".parse().unwrap();
    let e = client
        .register(ResourceSpec::new("x", missing.clone()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ResourceErrorKind::AgentNotFound, "{e}");
    let e = client
        .register(ResourceSpec::new("bad name!", missing))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ResourceErrorKind::InvalidRequest, "{e}");

    let stream = UnixStream::connect(&served.path).await.unwrap();
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    for line in [
        "{\"op\":\"exec_execute\"}\n",
        "{\"op\":\"exec_nonsense\",\"x\":1}\n",
        "{\"op\":\"exec_history\",\"resource\":\"nope\"}\n",
        "{\"op\":\"exec_cancel_recurring\",\"resource\":\"nope\",\"id\":-1}\n",
    ] {
        w.write_all(line.as_bytes()).await.unwrap();
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(30), r.read_line(&mut answer))
            .await
            .unwrap()
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(v["ok"], false, "{line} -> {answer}");
    }
    // The connection still serves a good request after the bad ones.
    w.write_all(b"{\"op\":\"exec_resources\"}\n").await.unwrap();
    let mut answer = String::new();
    r.read_line(&mut answer).await.unwrap();
    assert!(answer.contains("\"resources\":[]"), "{answer}");
}

/// The issue's test: a client registers a resource with a real `ocf node`, starts it and a
/// recurring monitor, and disconnects mid-operation; another client process sees it running,
/// with its history.
#[tokio::test]
async fn resources_outlive_the_client_and_another_process_sees_them() {
    let nodes = nodes_support::Nodes::start(3, &nodes_support::Layout::default());
    nodes.wait_for_view(&[0, 1, 2]).await;
    let node = &nodes.nodes[0];
    let state = nodes.dir.path().join("web.state");
    {
        let first = DaemonExecutor::new(&node.socket);
        let spec = ResourceSpec::new("web", "ocf:heartbeat:Dummy".parse().unwrap())
            .param("state", state.display().to_string());
        first.register(spec).await.unwrap();
        let started = first
            .execute(
                "web",
                Operation::new(Action::Start, Duration::from_secs(20)),
            )
            .await
            .unwrap();
        assert!(started.succeeded(), "{started:?}\n{}", nodes.logs());
        first
            .start_recurring(
                "web",
                Operation::new(Action::Monitor, Duration::from_secs(20))
                    .every(Duration::from_millis(200)),
            )
            .await
            .unwrap();
        // A stop asked and abandoned: the client hangs up before its answer; the
        // operation is the node's and still runs (and is in the history), then a start.
        let abandoned = tokio::time::timeout(
            Duration::from_millis(1),
            first.execute("web", Operation::new(Action::Stop, Duration::from_secs(20))),
        )
        .await;
        assert!(abandoned.is_err(), "the stop answered within 1 ms");
    }
    let second = DaemonExecutor::new(&node.socket);
    // The abandoned stop ran: wait for it in the history, then start again.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let h = second.history("web").await.unwrap();
        if h.iter().any(|r| r.action == Action::Stop) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no stop in {h:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = second
        .execute(
            "web",
            Operation::new(Action::Start, Duration::from_secs(20)),
        )
        .await
        .unwrap();
    assert!(r.succeeded());
    tokio::time::sleep(Duration::from_millis(600)).await;

    // Another process: `ocf ra status` through the node.
    let out = std::process::Command::new(nodes_support::OCF)
        .args(["ra", "status", "--json", "--config"])
        .arg(&node.config)
        .arg("web")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let res = &v["resources"][0];
    assert_eq!(res["name"], "web", "{v:#}");
    assert_eq!(res["agent"], "ocf:heartbeat:Dummy", "{v:#}");
    assert_eq!(res["running"], true, "{v:#}");
    let actions: Vec<&str> = res["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.first(), Some(&"start"), "{actions:?}");
    assert!(
        actions.contains(&"stop"),
        "the abandoned stop ran: {actions:?}"
    );
    assert!(
        actions.contains(&"monitor"),
        "the recurring monitor runs: {actions:?}"
    );

    // `ocf ra run --config` goes through the node too: stop it there, and it is stopped.
    let out = std::process::Command::new(nodes_support::OCF)
        .args(["ra", "run", "--config"])
        .arg(&node.config)
        .args(["ocf:heartbeat:Dummy", "stop", "--instance", "web"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!state.exists(), "the stop through the node ran");
    let h = second.history("web").await.unwrap();
    assert_eq!(h.last().map(|r| r.action), Some(Action::Stop));
}
