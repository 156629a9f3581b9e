//! `ocf node --config F` with `backend = "corosync"`, as a real process against a real
//! single-node corosync (in a private network and mount namespace): `ocf members --config F`
//! shows the view `corosync-quorumtool -l` shows; when corosync restarts under the running
//! daemon, its subscribers see evicted and then a view again, on the same stream.

#![cfg(all(feature = "corosync", feature = "cli"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod corosync_support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use corosync_support::{
    Corosync, can_run, corosync_conf, in_netns, quorumtool_members, quorumtool_ring, workdir, write,
};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(30);
const OCF: &str = env!("CARGO_BIN_EXE_ocf");

/// A child process killed (and reaped) on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_corosync(dir: &Path, conf: &Path, log: &str) -> Corosync {
    let c = Corosync::start(None, conf, &dir.join("state"), &dir.join(log));
    let deadline = Instant::now() + LIMIT;
    while quorumtool_members(None).is_empty() {
        assert!(Instant::now() < deadline, "corosync did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    c
}

fn members(config: &Path, extra: &[&str]) -> Output {
    Command::new(OCF)
        .arg("members")
        .arg("--config")
        .arg(config)
        .args(extra)
        .output()
        .unwrap()
}

/// `ocf members --config F --json`, once the daemon has a view (it may be reconnecting).
fn view_json(config: &Path, log: &Path) -> Value {
    let deadline = Instant::now() + LIMIT;
    loop {
        let out = members(config, &["--json"]);
        if out.status.success() {
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            if !v.is_null() {
                return v;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no view from ocf members: {}{}\nocf node log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn named(view: &Value) -> Vec<(u32, String)> {
    view["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                u32::try_from(m["id"].as_u64().unwrap()).unwrap(),
                m["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The next `--watch --json` line whose `kind` is `kind`.
fn next_of_kind(lines: &mpsc::Receiver<Value>, kind: &str) -> Value {
    let deadline = Instant::now() + LIMIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("no {kind} event from ocf members --watch: {e}"));
        if line["kind"] == kind {
            return line;
        }
    }
}

#[test]
fn ocf_node_serves_corosync_and_survives_its_restart() {
    if !can_run("ocf_node_serves_corosync_and_survives_its_restart") {
        return;
    }
    in_netns(None, || {
        let dir = workdir();
        let conf = dir.path().join("corosync.conf");
        let nodes = [(3, "alpha".to_string(), "127.0.0.1".to_string())];
        write(&conf, &corosync_conf("ocfnode", 1000, &nodes));
        let config: PathBuf = dir.path().join("node.toml");
        let socket = dir.path().join("run/api.sock");
        write(
            &config,
            &format!(
                "cluster = \"ocfnode\"\nbackend = \"corosync\"\nsocket = {:?}\n",
                socket.display().to_string()
            ),
        );
        let log = dir.path().join("ocf-node.log");
        let node = || {
            let out = std::fs::File::create(&log).unwrap();
            Command::new(OCF)
                .arg("node")
                .arg("--config")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .unwrap()
        };

        // No corosync in this fresh namespace: ocf node says so and exits non-zero.
        let mut early = Running(node());
        let status = early.0.wait().unwrap();
        assert_eq!(status.code(), Some(70));
        let said = std::fs::read_to_string(&log).unwrap();
        assert!(
            said.contains("corosync") && said.contains("running"),
            "{said}"
        );

        let mut corosync = start_corosync(dir.path(), &conf, "first.log");
        let _node = Running(node());
        let first = view_json(&config, &log);
        assert_eq!(named(&first), quorumtool_members(None));
        assert_eq!(named(&first), vec![(3, "alpha".to_string())]);
        assert_eq!(first["quorate"], true);
        let (rep, seq) = quorumtool_ring(None);
        assert_eq!(first["view_id"]["coordinator"], rep);
        assert_eq!(first["view_id"]["instance"], seq);
        let text = members(&config, &[]);
        assert!(text.status.success());
        assert!(
            String::from_utf8_lossy(&text.stdout).contains("alpha(3)"),
            "{text:?}"
        );

        // A watcher through the daemon, then corosync dies and comes back under it.
        let mut watch = Running(
            Command::new(OCF)
                .arg("members")
                .arg("--config")
                .arg(&config)
                .args(["--watch", "--json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let stdout = watch.0.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        let initial = lines.recv_timeout(LIMIT).unwrap();
        assert_eq!(initial["initial_view"]["view_id"], first["view_id"]);

        corosync.kill9();
        let evicted = next_of_kind(&lines, "evicted");
        assert_eq!(evicted["view"]["view_id"], first["view_id"]);
        let _second = start_corosync(dir.path(), &conf, "second.log");
        let back = next_of_kind(&lines, "new_membership");
        assert_eq!(
            back["seq"].as_u64().unwrap(),
            evicted["seq"].as_u64().unwrap() + 1,
            "events resume on the same stream, gapless"
        );
        assert_eq!(named(&back["view"]), vec![(3, "alpha".to_string())]);
        assert!(
            back["view"]["view_id"]["instance"].as_u64() > first["view_id"]["instance"].as_u64(),
            "{back}"
        );
        // The daemon lives on, and a fresh `ocf members` agrees with corosync-quorumtool.
        let again = view_json(&config, &log);
        assert_eq!(named(&again), quorumtool_members(None));
        assert_eq!(again["view_id"], back["view"]["view_id"]);
    })
    .join()
    .unwrap();
}
