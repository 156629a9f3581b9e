//! `ocf node` under hostile or careless surroundings, on real daemons started from the built
//! binary and real sockets: whatever sits at the socket path, a second daemon, files that never
//! end, exposed keys, clients that hang up or never read, a stuck daemon, the umask, and forged
//! packets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use ocf_core::NodeId;
use ocf_membership::{Membership, MembershipError};
use ocf_ref::membership::builtin::key::ClusterKey;
use ocf_ref::membership::builtin::wire::Codec;
use ocf_ref::membership::daemon::DaemonClient;
use ocf_ref::membership::protocol::{Body, Envelope};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

const OCF: &str = env!("CARGO_BIN_EXE_ocf");
/// A liveness deadline (a process that should exit, a daemon that should come up), not a
/// speed goal: past it the test fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(30);

/// Kills and reaps its child on drop (a stopped child too), so a failing test leaves no
/// process behind.
struct Proc {
    child: Child,
    stderr: mpsc::Receiver<String>,
}

impl Proc {
    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).unwrap();
    }

    /// Every stderr line so far.
    fn stderr_lines(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }

    /// The number of open descriptors of the process.
    fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .count()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = kill(self.pid(), Signal::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch directory with a cluster key written by `ocf keygen`.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new(OCF)
            .arg("keygen")
            .arg(dir.path().join("authkey"))
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "ocf keygen failed");
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn key(&self) -> PathBuf {
        self.path().join("authkey")
    }

    fn socket(&self) -> PathBuf {
        self.path().join("run/api.sock")
    }

    /// A one-node config (plus node 2 at `peer`, when given) named `name`, with `extra`
    /// top-level keys. `socket` and `key_file` default to the scratch ones.
    fn config(&self, name: &str, extra: &str, peer: Option<std::net::SocketAddr>) -> PathBuf {
        let port = free_udp_port();
        let mut text = format!(
            "cluster = \"hard\"\nnode_id = 1\n{extra}\n[timing]\nheartbeat_ms = 50\ndead_ms = 150\n[[nodes]]\nid = 1\nname = \"n1\"\naddress = \"127.0.0.1:{port}\"\n"
        );
        if !extra.contains("key_file") {
            text = format!("key_file = {:?}\n{text}", self.key().display().to_string());
        }
        if !extra.contains("socket =") {
            text = format!("socket = {:?}\n{text}", self.socket().display().to_string());
        }
        if let Some(peer) = peer {
            writeln!(
                text,
                "[[nodes]]\nid = 2\nname = \"n2\"\naddress = \"{peer}\""
            )
            .unwrap();
        }
        let path = self.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `ocf node --config CONFIG` (under `umask`, when given), stderr lines to a channel.
fn spawn_node(config: &Path, umask: Option<&str>) -> Proc {
    let mut command = match umask {
        Some(mask) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("umask {mask}; exec \"$0\" \"$@\""))
                .arg(OCF);
            c
        }
        None => Command::new(OCF),
    };
    let mut child = command
        .arg("node")
        .arg("--config")
        .arg(config)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
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
    Proc { child, stderr: rx }
}

/// Starts a daemon and waits until it answers on `socket`.
async fn start_node(config: &Path, socket: &Path) -> Proc {
    let mut node = spawn_node(config, None);
    let client = DaemonClient::new(socket);
    let deadline = Instant::now() + PATIENCE;
    loop {
        if client.local_node().await.is_ok() {
            return node;
        }
        if let Some(status) = node.child.try_wait().unwrap() {
            panic!(
                "ocf node exited ({status}) before serving: {:?}",
                node.stderr_lines()
            );
        }
        assert!(
            Instant::now() < deadline,
            "ocf node never served {}",
            socket.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `ocf ARGS` to its end; a run that outlives [`PATIENCE`] is killed and fails the test.
fn run_ocf(args: &[&std::ffi::OsStr]) -> Output {
    let mut child = Command::new(OCF)
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`ocf {args:?}` did not finish within {PATIENCE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn ocf_node_once(config: &Path) -> (bool, String) {
    let out = run_ocf(&["node".as_ref(), "--config".as_ref(), config.as_os_str()]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// 1. Nothing but a stale socket of ocf is ever removed from the socket path.
#[test]
fn a_file_directory_or_link_at_the_socket_path_is_left_alone() {
    let s = Scratch::new();
    let notes = s.path().join("notes.txt");
    std::fs::write(&notes, "precious notes\n").unwrap();
    let dir = s.path().join("a-dir");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("inside"), "kept").unwrap();
    let link = s.path().join("link.sock");
    std::os::unix::fs::symlink(&notes, &link).unwrap();
    let fifo = s.path().join("fifo.sock");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();

    for (path, what) in [
        (&notes, "a regular file"),
        (&dir, "a directory"),
        (&link, "a symbolic link"),
        (&fifo, "a FIFO"),
    ] {
        let config = s.config(
            "n.toml",
            &format!("socket = {:?}", path.display().to_string()),
            None,
        );
        let (ok, stderr) = ocf_node_once(&config);
        assert!(!ok, "ocf node started on {what} at its socket path");
        assert!(
            stderr.contains(&format!("{} is {what}, not a socket", path.display())),
            "{stderr}"
        );
        let meta = std::fs::symlink_metadata(path).unwrap();
        assert_eq!(meta.file_type().is_symlink(), what == "a symbolic link");
        assert!(
            !ocf_ref::membership::daemon::local_socket::lock_path(path).exists(),
            "no lock file is left beside {what}"
        );
    }
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "precious notes\n");
    assert_eq!(std::fs::read_to_string(dir.join("inside")).unwrap(), "kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_socket_is_replaced() {
    let s = Scratch::new();
    std::fs::create_dir_all(s.socket().parent().unwrap()).unwrap();
    drop(std::os::unix::net::UnixListener::bind(s.socket()).unwrap());
    assert!(s.socket().exists(), "the stale socket file stays behind");
    let config = s.config("n.toml", "", None);
    let _node = start_node(&config, &s.socket()).await;
    let mode = std::fs::metadata(s.socket()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o660);
}

// 2. A live daemon that does not accept (stopped, its listen queue full) keeps its socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_daemon_keeps_its_socket_when_its_listen_queue_is_full() {
    let s = Scratch::new();
    let first_config = s.config("first.toml", "", None);
    let first = start_node(&first_config, &s.socket()).await;
    let inode = std::fs::metadata(s.socket()).unwrap().ino();

    first.signal(Signal::SIGSTOP);
    // Fill the stopped daemon's listen queue until connecting would block: to a daemon that
    // probes by connecting, this socket now looks dead.
    let mut queued = Vec::new();
    loop {
        match tokio::net::UnixStream::connect(s.socket()).await {
            Ok(c) => queued.push(c),
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}");
                break;
            }
        }
        assert!(queued.len() < 10_000, "the listen queue never filled");
    }

    // A second daemon (its own UDP port, the same socket) must give up, naming the lock and
    // the first daemon.
    let second_config = s.config("second.toml", "", None);
    let (ok, stderr) = ocf_node_once(&second_config);
    assert!(!ok, "a second daemon took over a live daemon's socket");
    let lock = ocf_ref::membership::daemon::local_socket::lock_path(&s.socket());
    assert!(
        stderr.contains(&format!(
            "another daemon (pid {}) holds the lock {}",
            first.child.id(),
            lock.display()
        )),
        "{stderr}"
    );

    drop(queued);
    first.signal(Signal::SIGCONT);
    assert_eq!(
        std::fs::metadata(s.socket()).unwrap().ino(),
        inode,
        "the socket file was replaced"
    );
    // It works through the backlog of dead connections, then answers again.
    let client = DaemonClient::new(s.socket());
    let deadline = Instant::now() + PATIENCE;
    loop {
        match client.local_node().await {
            Ok(id) => break assert_eq!(id, NodeId::new(1)),
            Err(e) => assert!(
                Instant::now() < deadline,
                "the first daemon stopped serving: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// 3. Files that never end are refused, not read.
#[test]
fn config_and_key_files_that_never_end_are_refused() {
    let s = Scratch::new();
    let fifo = s.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let huge = s.path().join("huge.toml");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(4 << 30)
        .unwrap();

    let node = |config: &Path| ocf_node_once(config);
    let (ok, stderr) = node(Path::new("/dev/zero"));
    assert!(!ok);
    assert!(
        stderr.contains("/dev/zero is a character device, not a regular file"),
        "{stderr}"
    );
    let (ok, stderr) = node(&fifo);
    assert!(!ok);
    assert!(
        stderr.contains(&format!("{} is a FIFO, not a regular file", fifo.display())),
        "{stderr}"
    );
    let (ok, stderr) = node(&huge);
    assert!(!ok);
    assert!(
        stderr.contains(&format!(
            "{} is larger than the limit of 1048576 bytes",
            huge.display()
        )),
        "{stderr}"
    );
    let out = run_ocf(&[
        "members".as_ref(),
        "--config".as_ref(),
        "/dev/zero".as_ref(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/dev/zero is a character device"));

    for (key, what) in [
        (PathBuf::from("/dev/zero"), "a character device"),
        (fifo.clone(), "a FIFO"),
    ] {
        let config = s.config(
            "n.toml",
            &format!("key_file = {:?}", key.display().to_string()),
            None,
        );
        let (ok, stderr) = node(&config);
        assert!(!ok);
        assert!(
            stderr.contains(&format!("{} is {what}, not a regular file", key.display())),
            "{stderr}"
        );
    }
    let big_key = s.path().join("big.key");
    std::fs::write(&big_key, "ab".repeat(8192)).unwrap();
    std::fs::set_permissions(&big_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = s.config(
        "n.toml",
        &format!("key_file = {:?}", big_key.display().to_string()),
        None,
    );
    let (ok, stderr) = node(&config);
    assert!(!ok);
    assert!(
        stderr.contains(&format!(
            "{} is larger than the limit of 4096 bytes",
            big_key.display()
        )),
        "{stderr}"
    );
    assert!(!s.socket().exists(), "no daemon started");
}

// 6. A cluster key that others may read stops the daemon, with the fix in the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_file_others_may_access_is_refused() {
    let s = Scratch::new();
    let config = s.config("n.toml", "", None);
    for mode in [0o644, 0o640, 0o606] {
        std::fs::set_permissions(s.key(), std::fs::Permissions::from_mode(mode)).unwrap();
        let (ok, stderr) = ocf_node_once(&config);
        assert!(!ok, "ocf node started with a key of mode {mode:o}");
        assert!(
            stderr.contains(&format!("run `chmod 600 {}`", s.key().display())),
            "{stderr}"
        );
        assert!(!s.socket().exists());
    }
    std::fs::set_permissions(s.key(), std::fs::Permissions::from_mode(0o600)).unwrap();
    let _node = start_node(&config, &s.socket()).await;
}

/// Connects, subscribes, reads the first line (the view) and hangs up.
async fn subscribe_and_hang_up(socket: &Path) {
    let stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    let (r, mut w) = stream.into_split();
    w.write_all(b"{\"op\":\"subscribe\"}\n").await.unwrap();
    let mut line = String::new();
    tokio::io::BufReader::new(r)
        .read_line(&mut line)
        .await
        .unwrap();
    assert!(line.contains("\"ok\":true"), "{line}");
}

// 4. Subscribers that hang up are let go at once, not at the next event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_hung_up_subscribers_leave_no_descriptor_behind() {
    const CLIENTS: usize = 10_000;
    const SLACK: usize = 8;
    let s = Scratch::new();
    let config = s.config("n.toml", "", None);
    let node = start_node(&config, &s.socket()).await;
    let baseline = node.open_fds();

    let mut peak = baseline;
    for i in 0..CLIENTS {
        subscribe_and_hang_up(&s.socket()).await;
        if i % 1000 == 999 {
            peak = peak.max(node.open_fds());
        }
    }
    // Hang-ups are noticed asynchronously: wait (not a speed goal) for the last ones.
    let deadline = Instant::now() + PATIENCE;
    let mut after = node.open_fds();
    while after > baseline + SLACK && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        after = node.open_fds();
    }
    eprintln!(
        "open descriptors of ocf node: {baseline} before, at most {peak} while, {after} after \
         {CLIENTS} subscribe-and-hang-up clients"
    );
    assert!(
        after <= baseline + SLACK,
        "{after} descriptors open after {CLIENTS} hung-up subscribers (baseline {baseline})"
    );
    let stats = DaemonClient::new(s.socket()).stats().await.unwrap();
    assert_eq!(stats.clients, 1, "only this stats call is connected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_past_max_clients_are_told_busy() {
    let s = Scratch::new();
    let config = s.config("n.toml", "max_clients = 3", None);
    let _node = start_node(&config, &s.socket()).await;
    let client = DaemonClient::new(s.socket());
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(client.subscribe().await.unwrap());
    }
    // The fourth gets one error line, then the end of the stream.
    let stream = tokio::net::UnixStream::connect(s.socket()).await.unwrap();
    let mut reader = tokio::io::BufReader::new(stream);
    let mut text = String::new();
    tokio::time::timeout(PATIENCE, reader.read_line(&mut text))
        .await
        .expect("a busy daemon sent nothing")
        .unwrap();
    let mut rest = String::new();
    let end = tokio::time::timeout(PATIENCE, reader.read_line(&mut rest))
        .await
        .expect("a busy daemon kept the connection open");
    assert!(matches!(end, Ok(0)), "{end:?} {rest}");
    assert!(text.contains("\"busy\":true"), "{text}");
    assert!(
        text.contains("too many clients (max_clients = 3)"),
        "{text}"
    );
    let e = client.current_view().await.unwrap_err();
    assert!(
        matches!(&e, MembershipError::Unavailable { reason, .. } if reason.contains("busy")),
        "{e}"
    );
    // A subscriber that leaves frees its slot.
    drop(held.pop());
    // (A call just answered may hold its slot until the daemon sees it hang up, so the
    // counters are read by the call that finds the slot free.)
    let deadline = Instant::now() + PATIENCE;
    let stats = loop {
        match client.stats().await {
            Ok(stats) => break stats,
            Err(e) => assert!(
                Instant::now() < deadline,
                "the freed slot never came back: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(stats.max_clients, 3);
    assert!(stats.refused_busy >= 2, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_request_line_is_refused_and_closed() {
    let s = Scratch::new();
    let config = s.config("n.toml", "", None);
    let _node = start_node(&config, &s.socket()).await;
    let stream = tokio::net::UnixStream::connect(s.socket()).await.unwrap();
    let (mut r, mut w) = stream.into_split();
    // Write in the background: the daemon may close before taking all of it.
    let writer = tokio::spawn(async move {
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..64 {
            if w.write_all(&chunk).await.is_err() {
                break;
            }
        }
    });
    // The daemon answers one error line and hangs up (reading on may then see a reset).
    let mut text = String::new();
    tokio::time::timeout(
        PATIENCE,
        tokio::io::BufReader::new(&mut r).read_line(&mut text),
    )
    .await
    .expect("the daemon kept reading an endless line")
    .unwrap();
    writer.abort();
    assert!(text.contains("line longer than 4096 bytes"), "{text}");
}

// 4. A daemon that does not answer makes the client give up, naming the socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_daemon_makes_clients_time_out() {
    let s = Scratch::new();
    let config = s.config("n.toml", "", None);
    let node = start_node(&config, &s.socket()).await;
    node.signal(Signal::SIGSTOP);

    let out = run_ocf(&[
        "members".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--timeout".as_ref(),
        "1".as_ref(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "node daemon at {} did not answer within 1000 ms",
            s.socket().display()
        )),
        "{stderr}"
    );
    let client = DaemonClient::new(s.socket()).with_timeout(Duration::from_millis(300));
    let e = client.subscribe().await.err().unwrap();
    assert!(
        matches!(e, MembershipError::TimedOut { after_ms: 300, .. }),
        "{e}"
    );
    node.signal(Signal::SIGCONT);
    assert_eq!(client.local_node().await.unwrap(), NodeId::new(1));
}

// 5. The socket is 0660 with the configured group, whatever the umask.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_is_0660_with_its_group_under_any_umask() {
    let s = Scratch::new();
    let group = nix::unistd::Group::from_name("daemon")
        .unwrap()
        .expect("Debian has the group daemon");
    let config = s.config("n.toml", "socket_group = \"daemon\"", None);
    let mut node = spawn_node(&config, Some("000"));
    let client = DaemonClient::new(s.socket());
    let deadline = Instant::now() + PATIENCE;
    while client.local_node().await.is_err() {
        assert!(
            node.child.try_wait().unwrap().is_none(),
            "{:?}",
            node.stderr_lines()
        );
        assert!(Instant::now() < deadline, "the daemon never served");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let meta = std::fs::metadata(s.socket()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o660, "socket mode");
    assert_eq!(meta.gid(), group.gid.as_raw(), "socket group");
    let run_dir = std::fs::metadata(s.socket().parent().unwrap()).unwrap();
    assert_eq!(
        run_dir.permissions().mode() & 0o777,
        0o755,
        "socket directory"
    );
    drop(node);

    let config = s.config("bad.toml", "socket_group = \"no-such-group-ocf\"", None);
    let (ok, stderr) = ocf_node_once(&config);
    assert!(!ok);
    assert!(
        stderr.contains("socket_group \"no-such-group-ocf\" cannot be used: no such group"),
        "{stderr}"
    );
}

// 7. Rejected packets are counted by reason, shown by `ocf members --stats`, and logged once
// per reason and peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_packets_are_counted_shown_and_logged_once() {
    let s = Scratch::new();
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let config = s.config("n.toml", "", Some(peer_addr));
    let node = start_node(&config, &s.socket()).await;
    let text = std::fs::read_to_string(&config).unwrap();
    let target: std::net::SocketAddr = text
        .lines()
        .find_map(|l| l.strip_prefix("address = \"127.0.0.1:"))
        .map(|port| format!("127.0.0.1:{}", port.trim_end_matches('"')))
        .unwrap()
        .parse()
        .unwrap();

    let key = ClusterKey::load(&s.key()).unwrap();
    let ping = Envelope {
        from: NodeId::new(2),
        inc: 42,
        refute: 0,
        view: None,
        gossip: Vec::new(),
        body: Body::Ping { probe: 9 },
    };
    let good = Codec::new("hard", &key).encode(&ping, 1).unwrap();
    let forged = Codec::new("hard", &ClusterKey::random())
        .encode(&ping, 2)
        .unwrap();
    let other_cluster = Codec::new("other", &key).encode(&ping, 3).unwrap();
    let mut stranger = ping.clone();
    stranger.from = NodeId::new(77);
    let stranger = Codec::new("hard", &key).encode(&stranger, 4).unwrap();
    for packet in [
        &b"garbage"[..],
        &[0u8; 600][..],
        &forged,
        &other_cluster,
        &stranger,
        &good,
        &good,
    ] {
        peer.send_to(packet, target).unwrap();
    }

    let read_stats = || {
        let out = run_ocf(&[
            "members".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
            "--stats".as_ref(),
            "--json".as_ref(),
        ]);
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let deadline = Instant::now() + PATIENCE;
    let mut stats = read_stats();
    while stats["packets"]["rejected"]["replayed"] != 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        stats = read_stats();
    }
    let rejected = &stats["packets"]["rejected"];
    assert_eq!(rejected["malformed"], 2, "{stats}");
    assert_eq!(
        rejected["forged"], 2,
        "wrong key and wrong cluster: {stats}"
    );
    assert_eq!(rejected["unknown_sender"], 1, "{stats}");
    assert_eq!(rejected["replayed"], 1, "{stats}");
    assert!(
        stats["packets"]["received"].as_u64().unwrap() >= 1,
        "{stats}"
    );

    // The text form says the same.
    let out = run_ocf(&[
        "members".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--stats".as_ref(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("rejected 6: malformed 2 forged 2 replayed 1 unknown sender 1"),
        "{text}"
    );

    // One warning per reason from this peer, though two forged and two malformed came.
    std::thread::sleep(Duration::from_millis(200));
    let warnings: Vec<String> = node
        .stderr_lines()
        .into_iter()
        .filter(|l| l.contains("dropped membership packet") && l.contains(&peer_addr.to_string()))
        .collect();
    for reason in ["malformed", "forged", "replayed", "unknown_sender"] {
        let n = warnings
            .iter()
            .filter(|l| {
                l.contains(&format!("reason=\"{reason}\""))
                    || l.contains(&format!("reason={reason}"))
            })
            .count();
        assert_eq!(n, 1, "{reason}: {warnings:#?}");
    }
}
