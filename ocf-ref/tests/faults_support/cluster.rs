//! The processes of the fault test: one `ocf node` per node in its own network namespace, and
//! beside each a recorder, `ocf members --watch --json` on the node's socket (a filesystem
//! path, so the recorder runs in the test's own namespace), whose every line is kept with the
//! time it was read. Everything is killed and reaped on drop, then the namespaces and the
//! temporary directory go.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::history::{ProcessHistory, ViewRec, parse_line};
use super::net::{self, Net};
use super::now_us;
use super::relay::Relay;

const OCF: &str = env!("CARGO_BIN_EXE_ocf");

/// Lines a recorder read, each with the time it was read (µs since the epoch).
type Lines = Arc<Mutex<Vec<(u64, String)>>>;

/// Kills (SIGKILL) and reaps a child; returns when it is gone.
fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// One `ocf members --watch --json` process and the thread reading its output.
struct Recorder {
    child: Child,
    reader: Option<JoinHandle<()>>,
    lines: Lines,
}

impl Recorder {
    fn start(config: &Path, log: &Path) -> Self {
        let err = std::fs::File::create(log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let mut child = Command::new(OCF)
            .args(["members", "--watch", "--json", "--config"])
            .arg(config)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the recorder of {}: {e}", config.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let lines: Lines = Arc::default();
        let sink = lines.clone();
        let reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let at = now_us();
                sink.lock().expect("recorder lines").push((at, line));
            }
        });
        Self {
            child,
            reader: Some(reader),
            lines,
        }
    }

    fn has_output(&self) -> bool {
        !self.lines.lock().expect("recorder lines").is_empty()
    }

    /// Kills the recorder and returns every line it printed (the reader drains the pipe to
    /// its end, so nothing written before the kill is lost).
    fn stop(mut self) -> Vec<(u64, String)> {
        kill_and_reap(&mut self.child);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        std::mem::take(&mut *self.lines.lock().expect("recorder lines"))
    }

    /// The view the node holds according to the lines so far.
    fn latest_view(&self) -> Option<ViewRec> {
        let lines = self.lines.lock().expect("recorder lines");
        let (at, line) = lines.last()?;
        let r = parse_line(line, *at).ok()??;
        (r.kind != super::history::Kind::Evicted).then_some(r.view)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// The running process of one node (and its recorder).
struct Running {
    child: Child,
    generation: u32,
    started_us: u64,
    recorder: Option<Recorder>,
}

/// The five (or `size`) nodes, their recorders, their network and their files.
pub struct Cluster {
    size: u32,
    /// Index `i` is node `i + 1`; `None` while the node is down.
    running: Vec<Option<Running>>,
    generations: Vec<u32>,
    /// The histories of processes that ended.
    done: Vec<ProcessHistory>,
    /// Dropped before `net`: its sockets live in the bridge's namespace.
    relay: Relay,
    net: Net,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Builds the network under namespace prefix `prefix`, writes a key and one config per
    /// node, and starts every node and its recorder.
    pub fn start(prefix: &str, size: u32, seed: u64) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ocf-faults-")
            .tempdir()
            .expect("a temporary directory");
        let net = Net::create(prefix, size);
        let relay = Relay::start(net.bridge_ns(), size, seed);
        let mut cluster = Self {
            size,
            running: (0..size).map(|_| None).collect(),
            generations: vec![0; size as usize],
            done: Vec::new(),
            relay,
            net,
            dir,
        };
        cluster.write_configs();
        for id in 1..=size {
            cluster.start_node(id);
        }
        cluster
    }

    /// The temporary directory (configs, sockets, logs): every process of the test has it in
    /// its command line.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The network namespaces' names.
    pub fn namespaces(&self) -> Vec<String> {
        self.net.names()
    }

    /// The network.
    pub fn net(&mut self) -> &mut Net {
        &mut self.net
    }

    /// The relay between the nodes.
    pub fn relay(&self) -> &Relay {
        &self.relay
    }

    /// Heals the network: no cuts, every port up, every link of the relay clean.
    pub fn heal(&mut self) {
        self.relay.clear();
        self.net.heal();
    }

    fn config(&self, id: u32) -> PathBuf {
        self.dir.path().join(format!("n{id}.toml"))
    }

    fn socket(&self, id: u32) -> PathBuf {
        self.dir.path().join(format!("run/n{id}.sock"))
    }

    fn write_configs(&self) {
        let key = self.dir.path().join("authkey");
        let out = Command::new(OCF)
            .arg("keygen")
            .arg(&key)
            .output()
            .expect("run ocf keygen");
        assert!(
            out.status.success(),
            "ocf keygen failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for id in 1..=self.size {
            // This node at its own address (it binds it), every peer at its relay alias.
            let mut nodes = String::new();
            for peer in 1..=self.size {
                let address = if peer == id {
                    net::addr(peer)
                } else {
                    net::alias(peer)
                };
                let _ = writeln!(
                    nodes,
                    "[[nodes]]\nid = {peer}\nname = \"n{peer}\"\naddress = \"{address}:{}\"",
                    net::PORT
                );
            }
            let text = format!(
                "cluster = \"faults\"\nnode_id = {id}\nkey_file = \"{}\"\nsocket = \"{}\"\n{nodes}",
                key.display(),
                self.socket(id).display()
            );
            let path = self.config(id);
            std::fs::write(&path, text)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        }
    }

    /// Starts node `id` (a new process) in its namespace and, once its socket answers, its
    /// recorder.
    pub fn start_node(&mut self, id: u32) {
        let i = id as usize - 1;
        assert!(self.running[i].is_none(), "n{id} is already running");
        self.generations[i] += 1;
        let generation = self.generations[i];
        let log = self.dir.path().join(format!("n{id}.{generation}.log"));
        let err = std::fs::File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        // `ip netns exec` execs the command: the child's pid is the node's.
        let child = Command::new("ip")
            .args(["netns", "exec", self.net.ns(id), OCF, "node", "--config"])
            .arg(self.config(id))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start n{id}: {e}"));
        let started_us = now_us();
        self.running[i] = Some(Running {
            child,
            generation,
            started_us,
            recorder: None,
        });
        self.attach_recorder(id, &log);
    }

    fn attach_recorder(&mut self, id: u32, node_log: &Path) {
        let i = id as usize - 1;
        let socket = self.socket(id);
        let config = self.config(id);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut attempt = 0;
        loop {
            let running = self.running[i].as_mut().expect("running");
            if let Ok(Some(status)) = running.child.try_wait() {
                panic!(
                    "n{id} exited ({status}) before serving its socket:\n{}",
                    std::fs::read_to_string(node_log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "n{id} never served its socket {}",
                socket.display()
            );
            if UnixStream::connect(&socket).is_err() {
                thread::sleep(Duration::from_millis(10));
                continue;
            }
            attempt += 1;
            let log = self
                .dir
                .path()
                .join(format!("rec{id}.{}.{attempt}.log", running.generation));
            let recorder = Recorder::start(&config, &log);
            // The first line (the initial view) comes at once; a recorder that exits first
            // met a socket that was not ready: try again.
            let mut recorder = Some(recorder);
            while let Some(r) = recorder.as_mut() {
                if r.has_output() {
                    break;
                }
                if let Ok(Some(_)) = r.child.try_wait() {
                    recorder = None;
                    break;
                }
                thread::sleep(Duration::from_millis(5));
                assert!(
                    Instant::now() < deadline,
                    "the recorder of n{id} printed nothing"
                );
            }
            if let Some(r) = recorder {
                running.recorder = Some(r);
                return;
            }
        }
    }

    /// Kills node `id` with SIGKILL, reaps it, and closes its process's history (its primary
    /// time ends at the reap).
    pub fn kill(&mut self, id: u32) {
        let Some(mut r) = self.running[id as usize - 1].take() else {
            return;
        };
        kill_and_reap(&mut r.child);
        let killed_us = now_us();
        let lines = r.recorder.take().map(Recorder::stop).unwrap_or_default();
        self.done.push(ProcessHistory::from_lines(
            id,
            r.generation,
            r.started_us,
            Some(killed_us),
            &lines,
        ));
    }

    /// Sends `signal` to node `id`'s process.
    pub fn signal(&self, id: u32, signal: Signal) {
        let r = self.running[id as usize - 1]
            .as_ref()
            .unwrap_or_else(|| panic!("n{id} is not running"));
        let pid = Pid::from_raw(i32::try_from(r.child.id()).expect("a pid fits i32"));
        kill(pid, signal).unwrap_or_else(|e| panic!("kill -{signal} n{id}: {e}"));
    }

    /// The view each node holds now, by its recorder (`None`: down, no view, or evicted).
    pub fn latest_views(&self) -> Vec<Option<ViewRec>> {
        self.running
            .iter()
            .map(|r| r.as_ref()?.recorder.as_ref()?.latest_view())
            .collect()
    }

    /// Whether every node holds one and the same quorate view of all nodes.
    pub fn converged(&self) -> bool {
        let views = self.latest_views();
        let Some(Some(first)) = views.first() else {
            return false;
        };
        let all: Vec<u64> = (1..=u64::from(self.size)).collect();
        let mut members = first.members.clone();
        members.sort_unstable();
        first.quorate
            && members == all
            && views
                .iter()
                .all(|v| v.as_ref().is_some_and(|v| v.id == first.id))
    }

    /// Waits until [`Cluster::converged`] or `limit` passes; returns whether it converged.
    pub fn wait_converged(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.converged() {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.converged()
    }

    /// Ends the recording: stops every recorder, then every node, and returns all histories
    /// (processes still running end at `end_us`, the returned time, not at their kill).
    pub fn finish(&mut self) -> (Vec<ProcessHistory>, u64) {
        let end_us = now_us();
        for id in 1..=self.size {
            let Some(mut r) = self.running[id as usize - 1].take() else {
                continue;
            };
            let lines = r.recorder.take().map(Recorder::stop).unwrap_or_default();
            kill_and_reap(&mut r.child);
            self.done.push(ProcessHistory::from_lines(
                id,
                r.generation,
                r.started_us,
                None,
                &lines,
            ));
        }
        let mut all = std::mem::take(&mut self.done);
        all.sort_by_key(|h| (h.node, h.generation));
        (all, end_us)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Processes first (a stopped one dies of SIGKILL too), then the namespaces (field
        // drop), then the directory.
        for r in self.running.iter_mut().filter_map(Option::take) {
            let Running {
                mut child,
                recorder,
                ..
            } = r;
            drop(recorder);
            kill_and_reap(&mut child);
        }
    }
}
