//! Five `ocf node` processes on loopback: kill one, the others install a view without it
//! within the configured dead time plus one second (issue 5's acceptance bound); restart it,
//! it rejoins with a new incarnation; two `ocf members --watch` processes on one node print
//! identical event sequences.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ocf_membership::{Membership, View};
use ocf_ref::membership::daemon::DaemonClient;

const OCF: &str = env!("CARGO_BIN_EXE_ocf");
const NODES: u32 = 5;
const DEAD_MS: u64 = 1000;
/// A liveness deadline for formation and rejoin (not a speed goal).
const PATIENCE: Duration = Duration::from_secs(30);

/// Kills and reaps its child on drop, so a failing test leaves no process behind.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_ports(n: u32) -> Vec<u16> {
    let sockets: Vec<std::net::UdpSocket> = (0..n)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    sockets
        .iter()
        .map(|s| s.local_addr().unwrap().port())
        .collect()
}

fn write_configs(dir: &Path) -> Vec<PathBuf> {
    let ports = free_ports(NODES);
    let key = dir.join("authkey");
    let status = Command::new(OCF).arg("keygen").arg(&key).status().unwrap();
    assert!(status.success(), "ocf keygen failed");
    let mut nodes = String::new();
    for (i, port) in ports.iter().enumerate() {
        let id = i + 1;
        writeln!(
            nodes,
            "[[nodes]]\nid = {id}\nname = \"n{id}\"\naddress = \"127.0.0.1:{port}\""
        )
        .unwrap();
    }
    (1..=NODES)
        .map(|id| {
            let path = dir.join(format!("n{id}.toml"));
            let text = format!(
                "cluster = \"loop\"\nnode_id = {id}\nkey_file = \"{}\"\nsocket = \"{}\"\n[timing]\nheartbeat_ms = 200\ndead_ms = {DEAD_MS}\n{nodes}",
                key.display(),
                dir.join(format!("run/n{id}.sock")).display()
            );
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect()
}

/// Starts a node; its stderr lines go to the returned channel.
fn start_node(config: &Path) -> (Proc, mpsc::Receiver<String>) {
    let mut child = Command::new(OCF)
        .arg("-v")
        .arg("node")
        .arg("--config")
        .arg(config)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (Proc(child), rx)
}

fn incarnation(lines: &mpsc::Receiver<String>) -> u64 {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(100)) {
            let clean: String = strip_ansi(&line);
            if let Some(rest) = clean.split("incarnation=").nth(1) {
                return rest
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
            }
        }
    }
    panic!("node never logged its incarnation");
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn socket(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("run/n{id}.sock"))
}

async fn views(dir: &Path, ids: &[u32]) -> Vec<Option<View>> {
    let mut out = Vec::new();
    for &id in ids {
        out.push(
            DaemonClient::new(socket(dir, id))
                .current_view()
                .await
                .ok()
                .flatten(),
        );
    }
    out
}

/// Waits until every node in `ids` has installed one and the same view whose members are
/// exactly `ids`; returns it.
async fn wait_for_view(dir: &Path, ids: &[u32], patience: Duration) -> Option<View> {
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        let vs = views(dir, ids).await;
        if let Some(Some(first)) = vs.first() {
            let members: Vec<u32> = first.member_ids().map(ocf_core::NodeId::get).collect();
            if members == ids
                && vs
                    .iter()
                    .all(|v| v.as_ref().map(|v| v.id) == Some(first.id))
            {
                return Some(first.clone());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// A `ocf members --watch --json` process and the lines it printed.
struct Watcher {
    _proc: Proc,
    lines: mpsc::Receiver<String>,
    seen: Vec<serde_json::Value>,
}

impl Watcher {
    fn start(config: &Path) -> Self {
        let mut child = Command::new(OCF)
            .args(["members", "--watch", "--json", "--config"])
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            _proc: Proc(child),
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Collects lines until one satisfies `done` (or patience runs out).
    fn wait_for(&mut self, done: impl Fn(&serde_json::Value) -> bool) -> bool {
        let deadline = Instant::now() + PATIENCE;
        if self.seen.iter().any(&done) {
            return true;
        }
        while Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                let hit = done(&v);
                self.seen.push(v);
                if hit {
                    return true;
                }
            }
        }
        false
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_kill_restart_and_shared_event_order() {
    let dir = tempfile::tempdir().unwrap();
    let configs = write_configs(dir.path());
    let mut nodes: Vec<Option<(Proc, mpsc::Receiver<String>)>> =
        configs.iter().map(|c| Some(start_node(c))).collect();
    let all: Vec<u32> = (1..=NODES).collect();
    let formed = wait_for_view(dir.path(), &all, PATIENCE)
        .await
        .expect("5 nodes never formed one view");
    assert!(formed.is_quorate());

    // Two client processes on node 1 subscribe before the kill.
    let mut watchers = [Watcher::start(&configs[0]), Watcher::start(&configs[0])];
    for w in &mut watchers {
        assert!(
            w.wait_for(|v| v.get("initial_view").is_some()),
            "watcher printed nothing"
        );
    }

    // Kill node 5: the survivors install a view without it within dead_ms + 1 s.
    let (victim, victim_log) = nodes[4].take().unwrap();
    let first_inc = incarnation(&victim_log);
    let old_born_on = formed
        .member(ocf_core::NodeId::new(5))
        .unwrap()
        .born_on
        .unwrap();
    drop(victim);
    let killed = Instant::now();
    let survivors: Vec<u32> = (1..NODES).collect();
    let bound = Duration::from_millis(DEAD_MS + 1000);
    let without = wait_for_view(dir.path(), &survivors, PATIENCE)
        .await
        .expect("the survivors never installed a view without node 5");
    let took = killed.elapsed();
    eprintln!("kill-to-view on loopback: {} ms", took.as_millis());
    assert!(
        took <= bound,
        "survivors took {took:?} to drop node 5, more than dead_ms + 1 s"
    );
    assert!(without.id > formed.id);
    assert!(without.is_quorate(), "4 of 5 votes must be quorate");

    // Restart node 5: it rejoins with a new incarnation and a new born_on.
    let (proc5, log5) = start_node(&configs[4]);
    let second_inc = incarnation(&log5);
    nodes[4] = Some((proc5, log5));
    assert!(
        second_inc > first_inc,
        "restart must bring a new incarnation"
    );
    let rejoined = wait_for_view(dir.path(), &all, PATIENCE)
        .await
        .expect("node 5 never rejoined");
    assert!(rejoined.id > without.id);
    let new_born_on = rejoined
        .member(ocf_core::NodeId::new(5))
        .unwrap()
        .born_on
        .unwrap();
    assert!(new_born_on > old_born_on, "a rejoined node is born again");
    assert_eq!(rejoined.joined(), &[ocf_core::NodeId::new(5)]);

    // Both clients saw exactly the same events, with the same numbers, in the same order.
    let final_id = serde_json::to_value(rejoined.id).unwrap();
    for w in &mut watchers {
        assert!(
            w.wait_for(|v| v["view"]["view_id"] == final_id),
            "a watcher never printed the rejoin view"
        );
    }
    let events = |w: &Watcher| -> Vec<serde_json::Value> {
        let end = w
            .seen
            .iter()
            .position(|v| v["view"]["view_id"] == final_id)
            .unwrap();
        w.seen[..=end].to_vec()
    };
    let (a, b) = (events(&watchers[0]), events(&watchers[1]));
    assert_eq!(
        a, b,
        "two clients of one node saw different event sequences"
    );
    let seqs: Vec<u64> = a[1..].iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.len() >= 2,
        "expected at least the kill and the rejoin events: {a:?}"
    );
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "gapless seq: {seqs:?}"
    );
    drop(nodes);
}
