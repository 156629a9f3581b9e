//! Real `ocf node` processes on loopback for the cluster fencer's tests: configs with a spy
//! fence agent in a scratch agents dir (it appends every call to a file), start, wait for one
//! view, kill -9, and clean up (every process killed and reaped, the directory removed) on
//! drop, also when the test fails.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ocf_membership::Membership;
use ocf_ref::fencing::daemon_fencer::DaemonFencer;
use ocf_ref::membership::daemon::DaemonClient;

pub const OCF: &str = env!("CARGO_BIN_EXE_ocf");

/// The spy agent: every call but meta-data/monitor/list/status is appended to `calls` in its
/// directory as `<action> <plug>`; `delay=N` (a parameter) makes fencing actions take N s.
const SPY: &str = r#"#!/bin/sh
dir=$(dirname "$0")
input=$(cat)
action=$(printf '%s\n' "$input" | sed -n 's/^action=//p' | head -n 1)
plug=$(printf '%s\n' "$input" | sed -n 's/^plug=//p' | head -n 1)
delay=$(printf '%s\n' "$input" | sed -n 's/^delay=//p' | head -n 1)
case "$action" in
  metadata)
    cat <<'XML'
<?xml version="1.0" ?>
<resource-agent name="fence_cspy" shortdesc="Test agent that records its fencing calls">
<parameters>
  <parameter name="action" required="1"><content type="string" default="reboot"/></parameter>
  <parameter name="plug" required="0"><content type="string"/></parameter>
  <parameter name="delay" required="0"><content type="string"/></parameter>
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
    printf '%s %s %s\n' "$action" "$plug" "$$" >> "$dir/calls"
    if [ -n "$delay" ]; then sleep "$delay"; fi
    exit 0 ;;
  *) exit 1 ;;
esac
"#;

/// One `ocf node` process.
pub struct NodeProc {
    pub name: String,
    pub config: PathBuf,
    pub socket: PathBuf,
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
pub struct Layout {
    /// The nodes that list the spy device (a PDU on a management network).
    pub with_device: Vec<usize>,
    /// The spy's delay for fencing actions, in seconds.
    pub delay_s: u32,
}

impl Nodes {
    /// Writes configs for `n` nodes and starts them.
    pub fn start(n: usize, layout: &Layout) -> Self {
        Self::start_with(n, layout, "")
    }

    /// Like [`Nodes::start`], with `head` (top-level keys, then tables such as `[etcd]`)
    /// written into every config after its own top-level keys.
    pub fn start_with(n: usize, layout: &Layout, head: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let agents = dir.path().join("agents");
        std::fs::create_dir(&agents).expect("agents dir");
        let spy = agents.join("fence_cspy");
        std::fs::write(&spy, SPY).expect("spy");
        std::fs::set_permissions(&spy, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let key = dir.path().join("authkey");
        std::fs::write(&key, "7".repeat(64)).expect("key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let held: Vec<std::net::UdpSocket> = (0..n)
            .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").expect("port"))
            .collect();
        let mut members = String::new();
        for (i, s) in held.iter().enumerate() {
            let _ = writeln!(
                members,
                "[[nodes]]\nid = {}\nname = \"n{}\"\naddress = \"{}\"",
                i + 1,
                i + 1,
                s.local_addr().expect("addr")
            );
        }
        drop(held);
        let hosts: Vec<String> = (1..=n).map(|i| format!("\"n{i}\"")).collect();
        let mut nodes = Vec::new();
        for i in 1..=n {
            let socket = dir.path().join(format!("n{i}.sock"));
            let mut text = format!(
                "cluster = \"fc\"\nnode_id = {i}\nkey_file = {:?}\nsocket = {:?}\n[fencing]\nagents_dir = {:?}\n",
                key.display().to_string(),
                socket.display().to_string(),
                agents.display().to_string()
            );
            if !head.is_empty() {
                text = text.replacen("[fencing]\n", &format!("{head}[fencing]\n"), 1);
            }
            if layout.with_device.contains(&i) {
                let _ = write!(
                    text,
                    "[[devices]]\nid = \"pdu1\"\nagent = \"fence_cspy\"\nhosts = [{}]\nparams = {{ delay = \"{}\" }}\n",
                    hosts.join(", "),
                    layout.delay_s
                );
            }
            text.push_str(&members);
            let config = dir.path().join(format!("n{i}.toml"));
            std::fs::write(&config, text).expect("config");
            nodes.push(NodeProc {
                name: format!("n{i}"),
                config,
                socket,
                child: None,
            });
        }
        let mut c = Self { nodes, dir };
        for i in 0..n {
            c.spawn(i);
        }
        c
    }

    /// (Re)starts node `i` (0-based).
    pub fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let log =
            std::fs::File::create(self.dir.path().join(format!("{}.log", node.name))).expect("log");
        let child = Command::new(OCF)
            .args(["node", "--config"])
            .arg(&node.config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("ocf node");
        node.child = Some(child);
    }

    /// The spy's calls so far: `(action, plug)`.
    pub fn calls(&self) -> Vec<(String, String)> {
        let text =
            std::fs::read_to_string(self.dir.path().join("agents/calls")).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                Some((w.next()?.to_owned(), w.next()?.to_owned()))
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
    pub async fn wait_for_view(&self, alive: &[usize]) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut ids = Vec::new();
            for &i in alive {
                match self.nodes[i].membership().current_view().await {
                    Ok(Some(v)) if v.members().len() == alive.len() && v.is_quorate() => {
                        ids.push(v.id);
                    }
                    _ => ids.push(ocf_membership::ViewId::new(0, ocf_core::NodeId::new(0), 0)),
                }
            }
            if ids.iter().all(|v| *v == ids[0] && v.instance > 0) {
                // The fencers gather state at the start of the epoch.
                tokio::time::sleep(Duration::from_millis(500)).await;
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no common view of {alive:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A path's display form, for messages.
pub fn show(p: &Path) -> String {
    p.display().to_string()
}
