#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Real `ocf node` processes for the cluster fencer's tests: configs with a spy fence agent in
//! a scratch agents dir (it appends every call to a file, with the node that made it), start,
//! wait for one view, watch the fence events, kill -9, and clean up (every process killed and
//! reaped, the directory removed) on drop, also when the test fails.
//!
//! By default the nodes run the built-in engine on loopback ([`Nodes::start`]); a
//! [`Placement`] puts each in a network namespace, with the built-in engine on given addresses
//! (`tests/fencing_partition.rs`) or over the Corosync of its namespace
//! (`tests/corosync_fencing.rs`). The namespaces, and corosync, belong to the caller.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ocf_fencing::{FenceEvent, FenceRecord, Fencer, HistoryFilter};
use ocf_membership::{Membership, View};
use ocf_ref::fencing::daemon_fencer::DaemonFencer;
use ocf_ref::membership::daemon::DaemonClient;

/// The `ocf` binary cargo built for these tests (empty when this module is compiled outside
/// cargo's tests, as by the benches: see [`ocf`]).
pub const OCF: &str = match option_env!("CARGO_BIN_EXE_ocf") {
    Some(p) => p,
    None => "",
};

/// The `ocf` binary to run: [`OCF`] in tests; elsewhere `$OCF_BIN`, else `target/<profile>/ocf`
/// beside the running executable (`target/<profile>/deps/…`), else `ocf` from `PATH`.
pub fn ocf() -> PathBuf {
    if !OCF.is_empty() {
        return PathBuf::from(OCF);
    }
    if let Some(p) = std::env::var_os("OCF_BIN") {
        return PathBuf::from(p);
    }
    std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.parent()?.join("ocf")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("ocf"))
}

/// The spy agent: every call but meta-data/monitor/list/status is appended to `calls` in its
/// directory as `<action> <plug> <pid> <caller>` (`caller`, a parameter, is the node whose
/// device it is); `delay=N` (a parameter) makes fencing actions take N s; a file
/// `fail_<action>` in its directory makes that action fail (exit 1) after recording it.
const SPY: &str = r#"#!/bin/sh
dir=$(dirname "$0")
input=$(cat)
action=$(printf '%s\n' "$input" | sed -n 's/^action=//p' | head -n 1)
plug=$(printf '%s\n' "$input" | sed -n 's/^plug=//p' | head -n 1)
delay=$(printf '%s\n' "$input" | sed -n 's/^delay=//p' | head -n 1)
caller=$(printf '%s\n' "$input" | sed -n 's/^caller=//p' | head -n 1)
case "$action" in
  metadata)
    cat <<'XML'
<?xml version="1.0" ?>
<resource-agent name="fence_cspy" shortdesc="Test agent that records its fencing calls">
<parameters>
  <parameter name="action" required="1"><content type="string" default="reboot"/></parameter>
  <parameter name="plug" required="0"><content type="string"/></parameter>
  <parameter name="delay" required="0"><content type="string"/></parameter>
  <parameter name="caller" required="0"><content type="string"/></parameter>
</parameters>
<actions>
  <action name="on"/><action name="off"/><action name="reboot"/><action name="status"/>
  <action name="monitor"/><action name="metadata"/>
</actions>
</resource-agent>
XML
    exit 0 ;;
  monitor|status) exit 0 ;;
  on|off|reboot)
    printf '%s %s %s %s\n' "$action" "$plug" "$$" "$caller" >> "$dir/calls"
    if [ -n "$delay" ]; then sleep "$delay"; fi
    if [ -e "$dir/fail_$action" ]; then exit 1; fi
    exit 0 ;;
  *) exit 1 ;;
esac
"#;

/// One `ocf node` process.
pub struct NodeProc {
    pub name: String,
    pub config: PathBuf,
    pub socket: PathBuf,
    /// The network namespace it runs in (`None`: the test's own).
    pub netns: Option<String>,
    child: Option<Child>,
}

impl NodeProc {
    /// Kills it with SIGKILL and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn fencer(&self) -> DaemonFencer {
        DaemonFencer::new(&self.socket).with_timeout(Duration::from_secs(60))
    }

    pub fn membership(&self) -> DaemonClient {
        DaemonClient::new(&self.socket)
    }

    /// Its fence history, all records.
    pub async fn history(&self) -> Vec<FenceRecord> {
        self.fencer()
            .history(&HistoryFilter::all())
            .await
            .unwrap_or_else(|e| panic!("history of {}: {e}", self.name))
    }
}

impl Drop for Nodes {
    /// Kills every node, then whatever else still runs from the scratch directory (a fence
    /// agent whose daemon was killed under it finishes on its own otherwise), before the
    /// directory goes.
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill9();
        }
        let _ = Command::new("pkill")
            .args(["-KILL", "-f"])
            .arg(self.dir.path())
            .status();
        for _ in 0..50 {
            let alive = Command::new("pgrep")
                .args(["-f"])
                .arg(self.dir.path())
                .output()
                .is_ok_and(|o| !o.stdout.is_empty());
            if !alive {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A cluster of `ocf node` processes and its scratch directory.
pub struct Nodes {
    pub nodes: Vec<NodeProc>,
    pub dir: tempfile::TempDir,
}

/// How each node's devices are set up.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// The nodes (1-based) that list the spy device (a PDU on a management network).
    pub with_device: Vec<usize>,
    /// The spy's delay for fencing actions, in seconds.
    pub delay_s: u32,
    /// `[fencing] lost_node_action` (`None`: not written, the default `reboot`).
    pub lost_node_action: Option<&'static str>,
}

/// Where the nodes run and how they find each other.
#[derive(Debug, Clone)]
pub struct Placement {
    /// The config's `cluster`.
    pub cluster: String,
    /// Per node (0-based): the network namespace it runs in (`None`: the test's own).
    pub namespaces: Vec<Option<String>>,
    /// The membership engine.
    pub backend: Backend,
}

/// The membership engine of a [`Placement`].
#[derive(Debug, Clone)]
pub enum Backend {
    /// The built-in engine; `addresses[me][peer]` (0-based) is the `ip:port` node `me` lists
    /// for `peer` (for itself: the address it binds).
    Builtin(Vec<Vec<String>>),
    /// `backend = "corosync"`: the views of the corosync in the node's namespace.
    Corosync,
}

impl Placement {
    /// `n` nodes on loopback ports free now.
    pub fn loopback(n: usize) -> Self {
        let held: Vec<std::net::UdpSocket> = (0..n)
            .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").expect("port"))
            .collect();
        let all: Vec<String> = held
            .iter()
            .map(|s| s.local_addr().expect("addr").to_string())
            .collect();
        Self {
            cluster: "fc".into(),
            namespaces: vec![None; n],
            backend: Backend::Builtin(vec![all; n]),
        }
    }
}

impl Nodes {
    /// Writes configs for `n` nodes on loopback and starts them.
    pub fn start(n: usize, layout: &Layout) -> Self {
        Self::start_in(&Placement::loopback(n), layout)
    }

    /// Like [`Nodes::start`], with `head` (top-level keys, then tables such as `[etcd]`)
    /// written into every config after its own top-level keys.
    pub fn start_with(n: usize, layout: &Layout, head: &str) -> Self {
        Self::start_in_with(&Placement::loopback(n), layout, head)
    }

    /// Writes configs for the nodes of `placement` and starts them.
    pub fn start_in(placement: &Placement, layout: &Layout) -> Self {
        Self::start_in_with(placement, layout, "")
    }

    /// Like [`Nodes::start_in`], with `head` written into every config as
    /// [`Nodes::start_with`] does.
    pub fn start_in_with(placement: &Placement, layout: &Layout, head: &str) -> Self {
        let n = placement.namespaces.len();
        let dir = tempfile::Builder::new()
            .prefix("ocf-fence-nodes-")
            .tempdir()
            .expect("tempdir");
        let agents = dir.path().join("agents");
        std::fs::create_dir(&agents).expect("agents dir");
        let spy = agents.join("fence_cspy");
        std::fs::write(&spy, SPY).expect("spy");
        std::fs::set_permissions(&spy, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let key = dir.path().join("authkey");
        std::fs::write(&key, "7".repeat(64)).expect("key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let hosts: Vec<String> = (1..=n).map(|i| format!("\"n{i}\"")).collect();
        let mut nodes = Vec::new();
        for i in 1..=n {
            let socket = dir.path().join(format!("n{i}.sock"));
            let mut text = format!(
                "cluster = {:?}\nsocket = {:?}\n",
                placement.cluster,
                socket.display().to_string(),
            );
            match &placement.backend {
                Backend::Builtin(_) => {
                    let _ = write!(
                        text,
                        "node_id = {i}\nkey_file = {:?}\n",
                        key.display().to_string()
                    );
                }
                Backend::Corosync => text.push_str("backend = \"corosync\"\n"),
            }
            let _ = write!(
                text,
                "[fencing]\nagents_dir = {:?}\n",
                agents.display().to_string()
            );
            if let Some(action) = layout.lost_node_action {
                let _ = writeln!(text, "lost_node_action = {action:?}");
            }
            if !head.is_empty() {
                text = text.replacen("[fencing]\n", &format!("{head}[fencing]\n"), 1);
            }
            if layout.with_device.contains(&i) {
                let _ = write!(
                    text,
                    "[[devices]]\nid = \"pdu1\"\nagent = \"fence_cspy\"\nhosts = [{}]\nparams = {{ delay = \"{}\", caller = \"n{i}\" }}\n",
                    hosts.join(", "),
                    layout.delay_s
                );
            }
            if let Backend::Builtin(addresses) = &placement.backend {
                for (p, address) in addresses[i - 1].iter().enumerate() {
                    let _ = writeln!(
                        text,
                        "[[nodes]]\nid = {}\nname = \"n{}\"\naddress = \"{address}\"",
                        p + 1,
                        p + 1,
                    );
                }
            }
            let config = dir.path().join(format!("n{i}.toml"));
            std::fs::write(&config, text).expect("config");
            nodes.push(NodeProc {
                name: format!("n{i}"),
                config,
                socket,
                netns: placement.namespaces[i - 1].clone(),
                child: None,
            });
        }
        let mut c = Self { nodes, dir };
        for i in 0..n {
            c.spawn(i);
        }
        c
    }

    /// (Re)starts node `i` (0-based), in its namespace if it has one (`ip netns exec` execs
    /// the node, so the child is the node).
    pub fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let log =
            std::fs::File::create(self.dir.path().join(format!("{}.log", node.name))).expect("log");
        let ocf = ocf();
        let mut cmd = match &node.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&ocf);
                c
            }
            None => Command::new(&ocf),
        };
        let child = cmd
            .args(["node", "--config"])
            .arg(&node.config)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("ocf node");
        node.child = Some(child);
    }

    /// The spy's calls so far: `(action, plug)`.
    pub fn calls(&self) -> Vec<(String, String)> {
        self.calls_by()
            .into_iter()
            .map(|(action, plug, _)| (action, plug))
            .collect()
    }

    /// The spy's calls so far: `(action, plug, node whose device ran it)`.
    pub fn calls_by(&self) -> Vec<(String, String, String)> {
        let text =
            std::fs::read_to_string(self.dir.path().join("agents/calls")).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let (action, plug) = (w.next()?.to_owned(), w.next()?.to_owned());
                let caller = w.nth(1).unwrap_or_default().to_owned();
                Some((action, plug, caller))
            })
            .collect()
    }

    /// The logs of every node, for a failure's message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            let log = std::fs::read_to_string(self.dir.path().join(format!("{}.log", n.name)))
                .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            let _ = writeln!(out, "--- {} ---", n.name);
            for l in tail.iter().rev() {
                let _ = writeln!(out, "{l}");
            }
        }
        out
    }

    /// Waits until the nodes `alive` (0-based) all have one quorate view of exactly them.
    pub async fn wait_for_view(&self, alive: &[usize]) -> View {
        let views = self
            .wait_for_views(&format!("one quorate view of {alive:?}"), alive, |vs| {
                vs.iter().all(|v| {
                    v.as_ref().is_some_and(|v| {
                        v.members().len() == alive.len()
                            && v.is_quorate()
                            && v.id.instance > 0
                            && alive.iter().all(|&i| {
                                v.members()
                                    .iter()
                                    .any(|m| m.name.as_str() == self.nodes[i].name)
                            })
                    })
                }) && vs
                    .iter()
                    .all(|v| v.as_ref().map(|v| v.id) == vs[0].as_ref().map(|v| v.id))
            })
            .await;
        // The fencers gather state at the start of the epoch.
        tokio::time::sleep(Duration::from_millis(500)).await;
        views.into_iter().flatten().next().expect("a view")
    }

    /// Waits until `ok` holds for the current views of the nodes `which` (0-based, in that
    /// order); returns them. Panics with the logs after 60 s (a hang guard).
    pub async fn wait_for_views(
        &self,
        what: &str,
        which: &[usize],
        ok: impl Fn(&[Option<View>]) -> bool,
    ) -> Vec<Option<View>> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut views = Vec::new();
            for &i in which {
                views.push(
                    self.nodes[i]
                        .membership()
                        .current_view()
                        .await
                        .ok()
                        .flatten(),
                );
            }
            if ok(&views) {
                return views;
            }
            assert!(
                Instant::now() < deadline,
                "never {what}: {views:#?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the nodes `which` (0-based) show one and the same history that `ok`
    /// accepts; returns it. Panics with every node's history after 60 s (a hang guard).
    pub async fn wait_for_same_history(
        &self,
        which: &[usize],
        ok: impl Fn(&[FenceRecord]) -> bool,
    ) -> Vec<FenceRecord> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut all = Vec::new();
            for &i in which {
                all.push(self.nodes[i].fencer().history(&HistoryFilter::all()).await);
            }
            if let Some(Ok(first)) = all.first() {
                if ok(first) && all.iter().all(|h| h.as_ref().ok() == Some(first)) {
                    return first.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "the histories of {which:?} never agreed: {all:#?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Starts `ocf fence watch --json` on node `i` (0-based) and returns once it subscribed.
    pub fn watch(&self, i: usize) -> Watch {
        Watch::start(&self.nodes[i])
    }
}

/// An `ocf fence watch --config F --json` process and the thread reading its events; killed
/// and reaped on drop.
pub struct Watch {
    pub node: String,
    child: Child,
    readers: Vec<JoinHandle<()>>,
    events: Arc<Mutex<Vec<FenceEvent>>>,
}

impl Watch {
    fn start(node: &NodeProc) -> Self {
        let mut child = Command::new(ocf())
            .args(["fence", "watch", "--json", "--config"])
            .arg(&node.config)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ocf fence watch");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let mut watch = Self {
            node: node.name.clone(),
            child,
            readers: Vec::new(),
            events: Arc::default(),
        };
        // It says "watching" on stderr once subscribed; the rest of stderr is drained.
        let (said, heard) = std::sync::mpsc::channel();
        watch.readers.push(std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = said.send(line);
            }
        }));
        let first = heard.recv_timeout(Duration::from_secs(30));
        assert!(
            first.as_deref().is_ok_and(|l| l.contains("watching")),
            "ocf fence watch on {}: {first:?}",
            node.name
        );
        let sink = Arc::clone(&watch.events);
        let name = node.name.clone();
        watch.readers.push(std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                match serde_json::from_str::<FenceEvent>(&line) {
                    Ok(e) => sink.lock().expect("events").push(e),
                    Err(e) => eprintln!("ocf fence watch on {name} printed {line:?}: {e}"),
                }
            }
        }));
        watch
    }

    /// The events so far.
    pub fn events(&self) -> Vec<FenceEvent> {
        self.events.lock().expect("events").clone()
    }

    /// Waits until the events so far satisfy `ok`; returns them. Panics after 60 s (a hang
    /// guard).
    pub async fn wait_for(
        &self,
        what: &str,
        ok: impl Fn(&[FenceEvent]) -> bool,
    ) -> Vec<FenceEvent> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let events = self.events();
            if ok(&events) {
                return events;
            }
            assert!(
                Instant::now() < deadline,
                "ocf fence watch on {} never saw {what}: {events:#?}",
                self.node
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }
}

/// A path's display form, for messages.
pub fn show(p: &Path) -> String {
    p.display().to_string()
}
