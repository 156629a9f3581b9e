//! Real etcd members on loopback for the etcd backend's tests: `etcd` (Debian's etcd-server)
//! started in a temp dir with its own ports, killed and restarted at will, every member killed
//! and reaped on drop (also when the test fails), and a member's pid waited for before its
//! data dir is used again. Also a TCP proxy that cuts a node off from etcd.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ocf_ref::membership::etcd::etcd_client;

pub const ETCD: &str = "/usr/bin/etcd";

/// True when etcd is installed; a test without it fails with the way out.
pub fn require_etcd() {
    assert!(
        Path::new(ETCD).exists(),
        "{ETCD} is missing: install Debian's etcd-server (scripts/install-peers.sh does)"
    );
}

/// A free loopback TCP port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// One etcd member.
pub struct Member {
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Member {
    /// Its client URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// Kills it with SIGKILL and waits for its pid to exit (so its data dir is free).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Its process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A cluster of etcd members on loopback, in a temp dir.
pub struct EtcdCluster {
    pub members: Vec<Member>,
    initial: String,
    token: String,
    pub dir: tempfile::TempDir,
}

impl EtcdCluster {
    /// Starts `n` members (default timing: shorter election timeouts cause election storms on
    /// a loaded 2-core machine) and waits until they serve.
    pub fn start(n: usize) -> Self {
        require_etcd();
        let dir = tempfile::tempdir().expect("tempdir");
        let members: Vec<Member> = (1..=n)
            .map(|i| Member {
                name: format!("e{i}"),
                client_port: free_port(),
                peer_port: free_port(),
                data_dir: dir.path().join(format!("e{i}")),
                log: dir.path().join(format!("e{i}.log")),
                child: None,
            })
            .collect();
        let initial = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let token = format!("ocf-test-{}-{}", std::process::id(), free_port());
        let mut c = Self {
            members,
            initial,
            token,
            dir,
        };
        for i in 0..n {
            c.spawn(i);
        }
        c.wait_serving(&(0..n).collect::<Vec<_>>());
        c
    }

    /// (Re)starts member `i` on its data dir.
    pub fn spawn(&mut self, i: usize) {
        let m = &mut self.members[i];
        assert!(m.child.is_none(), "{} runs already", m.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&m.log)
            .expect("etcd log");
        let client = format!("http://127.0.0.1:{}", m.client_port);
        let peer = format!("http://127.0.0.1:{}", m.peer_port);
        let child = Command::new(ETCD)
            .arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(&m.data_dir)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &self.initial])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", &self.token])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start etcd");
        m.child = Some(child);
    }

    /// Every member's client URL.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::endpoint).collect()
    }

    /// Waits until each member in `which` answers a linearizable read (its cluster has a
    /// leader); a hang guard, not a timing assertion.
    pub fn wait_serving(&self, which: &[usize]) {
        let deadline = Instant::now() + Duration::from_secs(60);
        for &i in which {
            let ep = self.members[i].endpoint();
            loop {
                if serves(&ep) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "etcd member {} never served\n{}",
                    self.members[i].name,
                    self.logs()
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }

    /// The last lines of every member's log.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for m in &self.members {
            let log = std::fs::read_to_string(&m.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            let _ = writeln!(out, "--- etcd {} ---", m.name);
            for l in tail.iter().rev() {
                let _ = writeln!(out, "{l}");
            }
        }
        out
    }
}

/// True when the member at `ep` answers a linearizable read. Runs on a thread of its own
/// with its own runtime, so it may be called from sync and async tests alike.
pub fn serves(ep: &str) -> bool {
    let ep = ep.to_owned();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return false;
        };
        rt.block_on(async {
            let opts = etcd_client::ConnectOptions::new()
                .with_timeout(Duration::from_secs(1))
                .with_connect_timeout(Duration::from_secs(1))
                .with_require_leader(true);
            match etcd_client::Client::connect([ep.as_str()], Some(opts)).await {
                Ok(mut c) => c.get("/health-probe", None).await.is_ok(),
                Err(_) => false,
            }
        })
    })
    .join()
    .unwrap_or(false)
}

/// The `[etcd]` table and backend line for a node config using `endpoints`.
pub fn etcd_head(endpoints: &[String], prefix: &str, ttl_s: u64) -> String {
    let list: Vec<String> = endpoints.iter().map(|e| format!("{e:?}")).collect();
    format!(
        "backend = \"etcd\"\n[etcd]\nendpoints = [{}]\nprefix = {prefix:?}\nlease_ttl_s = {ttl_s}\n",
        list.join(", ")
    )
}

/// A TCP proxy on loopback to one etcd member: `cut` closes every connection and refuses new
/// ones (a node cut off from etcd, not from its peers); `heal` lets them through again.
/// Stops with its runtime (tests run it on theirs).
pub struct Proxy {
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free port and forwards to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("proxy bind");
        let addr = listener.local_addr().expect("proxy addr");
        let cut = Arc::new(AtomicBool::new(false));
        let (gen_tx, _) = tokio::sync::watch::channel(0u64);
        let generation = Arc::new(gen_tx);
        let (c, g) = (Arc::clone(&cut), Arc::clone(&generation));
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                if c.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut killed = g.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = killed.changed() => {}
                    }
                });
            }
        });
        Self {
            addr,
            cut,
            generation,
            task,
        }
    }

    /// The proxy's URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Lets connections through again.
    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}

/// A path's display form.
pub fn show(p: &Path) -> String {
    p.display().to_string()
}
