//! Shared harness for the Corosync tests: real corosync processes in their own mount (and
//! network) namespaces, cleaned up by Drop guards even when a test fails.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::missing_panics_doc
)]

use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use ocf_membership::{Membership, MembershipEvent, View};
use ocf_ref::membership::corosync::{CorosyncMembership, CorosyncOptions};

/// True when the test can run. Without root: a loud skip, or a failure when `CI` is set.
pub fn can_run(test: &str) -> bool {
    let mut missing = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        missing.push("root (it creates network and mount namespaces)");
    }
    let namespaces = Command::new("unshare")
        .args(["--net", "--mount", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !namespaces {
        missing.push("network and mount namespaces (`unshare --net --mount true` failed)");
    }
    if !Path::new("/usr/sbin/corosync").exists() {
        missing.push("/usr/sbin/corosync (scripts/install-peers.sh installs it)");
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "\n!!!!!!!! {test} SKIPPED: needs {} !!!!!!!!\n",
        missing.join(" and ")
    );
    assert!(
        std::env::var_os("CI").is_none(),
        "{msg}CI is set, so a skipped Corosync test is a failure"
    );
    eprintln!("{msg}");
    false
}

/// A corosync.conf for `nodes` (id, name, address) with the given token timeout.
pub fn corosync_conf(cluster: &str, token_ms: u32, nodes: &[(u32, String, String)]) -> String {
    let mut conf = format!(
        "totem {{\n  version: 2\n  cluster_name: {cluster}\n  transport: knet\n  \
         crypto_cipher: none\n  crypto_hash: none\n  token: {token_ms}\n}}\n\
         quorum {{\n  provider: corosync_votequorum\n}}\n\
         logging {{\n  to_stderr: yes\n  to_syslog: no\n  to_logfile: no\n  timestamp: hires\n}}\n\
         nodelist {{\n"
    );
    for (id, name, addr) in nodes {
        let _ = write!(
            conf,
            "  node {{\n    nodeid: {id}\n    name: {name}\n    ring0_addr: {addr}\n  }}\n"
        );
    }
    conf.push_str("}\n");
    conf
}

/// One corosync process in a private mount namespace (its own tmpfs `/run`, and its own state
/// directory bind-mounted on `/var/lib/corosync` so that, as in production, the ring sequence
/// survives a restart), optionally inside a named network namespace. Killed with SIGKILL and
/// its `/dev/shm` leftovers removed on drop.
pub struct Corosync {
    child: Option<Child>,
    pid: u32,
    log: PathBuf,
}

impl Corosync {
    /// Starts corosync with `conf`, keeping its state in `state` (created if missing), logging
    /// to `log`.
    pub fn start(netns: Option<&str>, conf: &Path, state: &Path, log: &Path) -> Self {
        fs::create_dir_all(state).unwrap();
        let script = "mkdir -p /var/lib/corosync && mount -t tmpfs tmpfs /run && \
                      mount --bind \"$1\" /var/lib/corosync && exec corosync -f -c \"$0\"";
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "unshare"]);
                c
            }
            None => Command::new("unshare"),
        };
        // No --fork: unshare and sh exec into corosync, so the child's pid is corosync's.
        cmd.args(["--mount", "--propagation", "private", "sh", "-c", script])
            .arg(conf)
            .arg(state);
        let out = fs::File::create(log).unwrap();
        let err = out.try_clone().unwrap();
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd.spawn().expect("spawn corosync");
        let pid = child.id();
        Self {
            child: Some(child),
            pid,
            log: log.to_path_buf(),
        }
    }

    /// Corosync's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `kill -9`, reap, and remove its `/dev/shm` files.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        remove_shm_of(self.pid);
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Corosync {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Removes libqb's `/dev/shm` entries of server `pid` (IPC rings and the blackbox).
pub fn remove_shm_of(pid: u32) {
    let Ok(dir) = fs::read_dir("/dev/shm") else {
        return;
    };
    let ipc = format!("qb-{pid}-");
    let blackbox = format!("qb-corosync-{pid}-");
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&ipc) || name.starts_with(&blackbox) {
            let path = entry.path();
            let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
        }
    }
}

/// Runs `cmd`, panicking with its output on failure.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A named network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates `name` with its loopback up.
    pub fn add(name: &str) -> Self {
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        sh(&["ip", "netns", "add", name]);
        let ns = Self { name: name.into() };
        sh(&["ip", "-n", name, "link", "set", "lo", "up"]);
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Runs `f` on a new thread that has entered network namespace `netns` (by name) or a fresh
/// anonymous one (`None`), on a current-thread tokio runtime there. Processes that thread
/// spawns inherit the namespace.
pub fn in_netns<T: Send + 'static>(
    netns: Option<String>,
    f: impl FnOnce() -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    thread::spawn(move || {
        enter_netns(netns.as_deref());
        f()
    })
}

/// Moves the calling thread into network namespace `netns`, or a new one.
pub fn enter_netns(netns: Option<&str>) {
    use nix::sched::{CloneFlags, setns, unshare};
    if let Some(name) = netns {
        let file = fs::File::open(format!("/run/netns/{name}")).unwrap();
        setns(file.as_fd(), CloneFlags::CLONE_NEWNET).unwrap();
    } else {
        unshare(CloneFlags::CLONE_NEWNET).unwrap();
        sh(&["ip", "link", "set", "lo", "up"]);
    }
}

/// A current-thread runtime.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Options for tests: fast reconnects.
pub fn test_options() -> CorosyncOptions {
    CorosyncOptions::default().with_reconnect(Duration::from_millis(50), Duration::from_millis(500))
}

/// What a [`Client`] thread reports.
#[derive(Debug, Clone)]
pub enum Report {
    /// Connected; the view at subscription.
    Connected(Option<View>),
    /// The connection failed.
    Failed(String),
    /// An event.
    Event(MembershipEvent),
    /// The subscription ended or failed.
    Ended(String),
}

/// Our `Membership` client inside one node's network namespace, on its own thread, reporting
/// every event to the test.
pub struct Client {
    pub node: String,
    reports: mpsc::Receiver<Report>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
    /// The latest view seen (initial or from an event; `None` after evicted).
    pub latest: Option<View>,
    /// Every event seen.
    pub events: Vec<MembershipEvent>,
}

impl Client {
    /// Connects from a new thread in network namespace `netns`, or, with `None`, in the
    /// calling thread's own (a new thread inherits it).
    pub fn start(node: &str, netns: Option<String>) -> Self {
        let (tx, reports) = mpsc::channel();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = thread::spawn(move || {
            if let Some(ns) = netns.as_deref() {
                enter_netns(Some(ns));
            }
            runtime().block_on(async move {
                let m = match CorosyncMembership::connect_with(test_options()).await {
                    Ok(m) => m,
                    Err(e) => {
                        let _ = tx.send(Report::Failed(e.to_string()));
                        return;
                    }
                };
                let mut sub = m.subscribe().await.unwrap();
                let _ = tx.send(Report::Connected(sub.initial_view().cloned()));
                loop {
                    tokio::select! {
                        _ = &mut stopped => return,
                        e = sub.next_event() => match e {
                            Ok(Some(e)) => { let _ = tx.send(Report::Event(e)); }
                            Ok(None) => { let _ = tx.send(Report::Ended("closed".into())); return; }
                            Err(e) => { let _ = tx.send(Report::Ended(e.to_string())); return; }
                        }
                    }
                }
            });
        });
        let mut client = Self {
            node: node.into(),
            reports,
            stop: Some(stop),
            thread: Some(thread),
            latest: None,
            events: Vec::new(),
        };
        match client.reports.recv_timeout(Duration::from_secs(30)) {
            Ok(Report::Connected(v)) => client.latest = v,
            other => panic!("client on {node} did not connect: {other:?}"),
        }
        client
    }

    /// Takes reports until `pred` holds for the latest view or an event (checked on the latest
    /// view first); panics after `limit` (a hang guard, not a timing assertion).
    pub fn wait_until(
        &mut self,
        what: &str,
        limit: Duration,
        mut pred: impl FnMut(Option<&View>, Option<&MembershipEvent>) -> bool,
    ) -> Option<View> {
        if pred(self.latest.as_ref(), None) {
            return self.latest.clone();
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.reports.recv_timeout(left) {
                Ok(Report::Event(e)) => {
                    self.latest =
                        (e.kind != ocf_membership::EventKind::Evicted).then(|| e.view.clone());
                    self.events.push(e.clone());
                    if pred(self.latest.as_ref(), Some(&e)) {
                        return self.latest.clone();
                    }
                }
                other => panic!(
                    "{}: waiting for {what}: {other:?}; events so far: {:#?}",
                    self.node, self.events
                ),
            }
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Node ids and names `corosync-quorumtool -l` prints (run in `netns`).
pub fn quorumtool_members(netns: Option<&str>) -> Vec<(u32, String)> {
    let out = quorumtool(netns, "-l");
    out.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let id = words.next()?.parse().ok()?;
            let _votes: u32 = words.next()?.parse().ok()?;
            Some((id, words.next()?.to_string()))
        })
        .collect()
}

/// The ring id `corosync-quorumtool -s` prints, as (representative, sequence).
pub fn quorumtool_ring(netns: Option<&str>) -> (u32, u64) {
    let out = quorumtool(netns, "-s");
    let ring = out
        .lines()
        .find_map(|l| l.strip_prefix("Ring ID:"))
        .unwrap_or_else(|| panic!("no Ring ID in {out}"))
        .trim()
        .to_string();
    let (rep, seq) = ring.split_once('.').unwrap();
    (
        u32::from_str_radix(rep, 16).unwrap(),
        u64::from_str_radix(seq, 16).unwrap(),
    )
}

fn quorumtool(netns: Option<&str>, flag: &str) -> String {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "corosync-quorumtool"]);
            c
        }
        None => Command::new("corosync-quorumtool"),
    };
    // quorumtool exits non-zero when not quorate; the text is what matters.
    let out = cmd.arg(flag).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A temp dir for configs and logs, printed on failure by the caller.
pub fn workdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ocf-corosync-")
        .tempdir()
        .unwrap()
}

/// Writes `text` to `path`.
pub fn write(path: &Path, text: &str) {
    let mut f = fs::File::create(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// A cluster of corosync nodes, each in its own network namespace (`10.254.0.<id>/24` on
/// `eth0`) and its own mount namespace, linked through a bridge in a namespace of its own.
/// Everything is torn down on drop: corosyncs first, then the namespaces, then the files.
pub struct Cluster {
    /// Index i is node i + 1.
    pub corosyncs: Vec<Corosync>,
    nodes: Vec<Netns>,
    bridge: Netns,
    /// Configs and logs.
    pub dir: tempfile::TempDir,
    conf: PathBuf,
    restarts: u32,
}

impl Cluster {
    /// Creates `size` nodes (ids 1..=size, names n1..) and starts corosync on each with the
    /// given token timeout. `tag` keeps namespaces of concurrent tests apart.
    pub fn start(tag: &str, size: u32, token_ms: u32) -> Self {
        let prefix = format!("ocf{}{tag}", std::process::id());
        let bridge = Netns::add(&format!("{prefix}br"));
        sh(&[
            "ip",
            "-n",
            &bridge.name,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
        ]);
        sh(&["ip", "-n", &bridge.name, "link", "set", "br0", "up"]);
        let mut nodes = Vec::new();
        let mut list = Vec::new();
        for id in 1..=size {
            let ns = Netns::add(&format!("{prefix}n{id}"));
            let port = format!("p{id}");
            sh(&[
                "ip",
                "-n",
                &ns.name,
                "link",
                "add",
                "eth0",
                "type",
                "veth",
                "peer",
                "name",
                &port,
                "netns",
                &bridge.name,
            ]);
            sh(&[
                "ip",
                "-n",
                &bridge.name,
                "link",
                "set",
                &port,
                "master",
                "br0",
            ]);
            sh(&["ip", "-n", &bridge.name, "link", "set", &port, "up"]);
            let addr = format!("10.254.0.{id}");
            sh(&[
                "ip",
                "-n",
                &ns.name,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ]);
            sh(&["ip", "-n", &ns.name, "link", "set", "eth0", "up"]);
            list.push((id, format!("n{id}"), addr));
            nodes.push(ns);
        }
        let dir = workdir();
        let conf = dir.path().join("corosync.conf");
        write(&conf, &corosync_conf(&format!("ocf{tag}"), token_ms, &list));
        let mut cluster = Self {
            corosyncs: Vec::new(),
            nodes,
            bridge,
            dir,
            conf,
            restarts: 0,
        };
        for id in 1..=size {
            let log = cluster.dir.path().join(format!("n{id}.log"));
            let state = cluster.dir.path().join(format!("n{id}.state"));
            let c = Corosync::start(Some(&cluster.ns(id)), &cluster.conf, &state, &log);
            cluster.corosyncs.push(c);
        }
        cluster
    }

    /// The network namespace of node `id`.
    pub fn ns(&self, id: u32) -> String {
        self.nodes[id as usize - 1].name.clone()
    }

    /// Waits until every running node's corosync reports `size` members.
    pub fn wait_formed(&self, size: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        for id in 1..=self.nodes.len() as u32 {
            while quorumtool_members(Some(&self.ns(id))).len() != size {
                assert!(
                    Instant::now() < deadline,
                    "cluster did not form; n{id} log:\n{}",
                    self.corosyncs[id as usize - 1].log()
                );
                thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// `kill -9` node `id`'s corosync.
    pub fn kill9(&mut self, id: u32) {
        self.corosyncs[id as usize - 1].kill9();
    }

    /// Starts node `id`'s corosync again (after [`Cluster::kill9`]).
    pub fn restart(&mut self, id: u32) {
        let i = id as usize - 1;
        self.restarts += 1;
        let log = self.dir.path().join(format!("n{id}.{}.log", self.restarts));
        let state = self.dir.path().join(format!("n{id}.state"));
        self.corosyncs[i] = Corosync::start(Some(&self.ns(id)), &self.conf, &state, &log);
    }

    /// Cuts node `id`'s link to the bridge.
    pub fn cut(&self, id: u32) {
        sh(&[
            "ip",
            "-n",
            &self.bridge.name,
            "link",
            "set",
            &format!("p{id}"),
            "down",
        ]);
    }

    /// Restores node `id`'s link.
    pub fn heal(&self, id: u32) {
        sh(&[
            "ip",
            "-n",
            &self.bridge.name,
            "link",
            "set",
            &format!("p{id}"),
            "up",
        ]);
    }

    /// A client of our API inside node `id`'s namespace.
    pub fn client(&self, id: u32) -> Client {
        Client::start(&format!("n{id}"), Some(self.ns(id)))
    }
}
