//! Kill-to-view over Corosync: the time from `kill -9` of one corosync in a 3-node cluster
//! (network namespaces joined by a bridge) until a survivor's view without it arrives
//!
//! - through ocf's API (`CorosyncMembership` → `Subscription::next_event`), directly and
//!   through a node daemon over Corosync (`DaemonClient` on its local socket), and
//! - as corosync's own quorum notification, printed by `corosync-quorumtool -m` on the same
//!   node in the same run,
//!
//! at token 1000 ms and 300 ms. The difference is the overhead ocf adds; it must stay under
//! 5 ms. Beside them, in the same run, the built-in protocol's kill-to-view at its defaults
//! (default timing, detect_ms 500): 3 engines on loopback, node 3 stopped without a word,
//! until node 1's subscriber gets the view without it (the `membership` bench measures the
//! same with criterion, waiting for both survivors). Needs root (namespaces); otherwise it says
//! so and exits successfully.
//!
//! Run: `cargo bench -p benches --features corosync --bench corosync`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../../ocf-ref/tests/corosync_support/mod.rs"]
mod corosync_support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use corosync_support::{Cluster, enter_netns, runtime, test_options};
use ocf_core::NodeId;
use ocf_membership::{EventKind, Membership, MembershipEvent, Subscription};
use ocf_ref::membership::builtin::key::ClusterKey;
use ocf_ref::membership::builtin::loopback;
use ocf_ref::membership::config::NodeConfig;
use ocf_ref::membership::corosync::CorosyncMembership;
use ocf_ref::membership::daemon;
use ocf_ref::membership::daemon::DaemonClient;

const ROUNDS: usize = 5;
const LIMIT: Duration = Duration::from_secs(30);
const BUDGET: Duration = Duration::from_millis(5);

type Events = mpsc::Receiver<(Instant, MembershipEvent)>;

/// Forwards `sub`'s initial view (as a new-membership event with seq 0), then every event, each
/// with the instant it was returned to the subscriber.
async fn forward(mut sub: Box<dyn Subscription>, tx: mpsc::Sender<(Instant, MembershipEvent)>) {
    if let Some(v) = sub.initial_view() {
        let initial = MembershipEvent::new(0, EventKind::NewMembership, v.clone());
        let _ = tx.send((Instant::now(), initial));
    }
    while let Ok(Some(e)) = sub.next_event().await {
        if tx.send((Instant::now(), e)).is_err() {
            return;
        }
    }
}

/// Our two clients on node 1: a `CorosyncMembership` in this process, and a `DaemonClient` of
/// a node daemon over Corosync (`ocf node` with `backend = "corosync"`, served in-process on
/// `socket`): the direct path and the local-socket path every other process takes.
fn our_clients(netns: String, socket: PathBuf) -> (Events, Events) {
    let (direct_tx, direct) = mpsc::channel();
    let (daemon_tx, daemon) = mpsc::channel();
    std::thread::spawn(move || {
        enter_netns(Some(&netns));
        runtime().block_on(async move {
            let m = CorosyncMembership::connect_with(test_options())
                .await
                .unwrap();
            let text = format!(
                "cluster = \"bench\"\nbackend = \"corosync\"\nsocket = {:?}\n",
                socket.display().to_string()
            );
            let config = NodeConfig::parse(&text, &socket.with_extension("toml")).unwrap();
            let _served = daemon::serve_corosync(&config).await.unwrap();
            let via_socket = DaemonClient::new(&socket).subscribe().await.unwrap();
            tokio::join!(
                forward(m.subscribe().await.unwrap(), direct_tx),
                forward(via_socket, daemon_tx)
            );
        });
    });
    (direct, daemon)
}

/// `corosync-quorumtool -m` on node 1, line-buffered: every line with the instant it was read.
fn quorumtool_monitor(netns: &str) -> (Child, mpsc::Receiver<(Instant, String)>) {
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            netns,
            "stdbuf",
            "-oL",
            "corosync-quorumtool",
            "-m",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), line)).is_err() {
                return;
            }
        }
    });
    (child, rx)
}

/// The first instant after `t0` at which quorumtool began printing a notification whose
/// `Nodes:` count is `nodes`.
fn quorumtool_seen(rx: &mpsc::Receiver<(Instant, String)>, t0: Instant, nodes: usize) -> Instant {
    let mut block_start = None;
    loop {
        let (at, line) = rx.recv_timeout(LIMIT).expect("a quorumtool notification");
        if line.starts_with("Quorum information") {
            block_start = Some(at);
        }
        let Some(count) = line.strip_prefix("Nodes:") else {
            continue;
        };
        let start = block_start.filter(|s| *s > t0);
        if count.trim().parse::<usize>().ok() == Some(nodes) {
            if let Some(start) = start {
                return start;
            }
        }
    }
}

/// The instant our client delivered a view of `members` (not an eviction) after `t0`.
fn ours_seen(rx: &mpsc::Receiver<(Instant, MembershipEvent)>, members: &[u32]) -> Instant {
    loop {
        let (at, e) = rx.recv_timeout(LIMIT).expect("an event from our client");
        let ids: Vec<u32> = e.view.member_ids().map(NodeId::get).collect();
        if e.kind != EventKind::Evicted && ids == members {
            return at;
        }
    }
}

fn drain<T>(rx: &mpsc::Receiver<T>) {
    while rx.try_recv().is_ok() {}
}

struct Figures {
    token_ms: u32,
    corosync: Vec<Duration>,
    ours: Vec<Duration>,
    overhead_us: Vec<i128>,
    daemon: Vec<Duration>,
    daemon_overhead_us: Vec<i128>,
}

fn measure(token_ms: u32) -> Figures {
    let mut cluster = Cluster::start(&format!("b{token_ms}"), 3, token_ms);
    cluster.wait_formed(3, LIMIT);
    let ns1 = cluster.ns(1);
    let (ours, via_daemon) = our_clients(ns1.clone(), cluster.dir.path().join("n1.sock"));
    let (mut monitor, lines) = quorumtool_monitor(&ns1);
    ours_seen(&ours, &[1, 2, 3]);
    ours_seen(&via_daemon, &[1, 2, 3]);
    let mut figures = Figures {
        token_ms,
        corosync: Vec::new(),
        ours: Vec::new(),
        overhead_us: Vec::new(),
        daemon: Vec::new(),
        daemon_overhead_us: Vec::new(),
    };
    for round in 0..ROUNDS {
        // Let the monitor print its initial state and the ring settle.
        std::thread::sleep(Duration::from_millis(500));
        drain(&ours);
        drain(&via_daemon);
        drain(&lines);
        let t0 = Instant::now();
        cluster.kill9(3);
        let t_ours = ours_seen(&ours, &[1, 2]);
        let t_daemon = ours_seen(&via_daemon, &[1, 2]);
        let t_corosync = quorumtool_seen(&lines, t0, 2);
        let (c, o, d) = (t_corosync - t0, t_ours - t0, t_daemon - t0);
        let overhead = o.as_micros() as i128 - c.as_micros() as i128;
        let daemon_overhead = d.as_micros() as i128 - c.as_micros() as i128;
        println!(
            "token {token_ms:>4} ms  round {round}: corosync-quorumtool -m {:>8.1} ms   ocf API {:>8.1} ms ({:>+6.2})   via ocf node {:>8.1} ms ({:>+6.2})",
            c.as_secs_f64() * 1e3,
            o.as_secs_f64() * 1e3,
            overhead as f64 / 1e3,
            d.as_secs_f64() * 1e3,
            daemon_overhead as f64 / 1e3
        );
        figures.corosync.push(c);
        figures.ours.push(o);
        figures.overhead_us.push(overhead);
        figures.daemon.push(d);
        figures.daemon_overhead_us.push(daemon_overhead);
        cluster.restart(3);
        ours_seen(&ours, &[1, 2, 3]);
        ours_seen(&via_daemon, &[1, 2, 3]);
    }
    let _ = monitor.kill();
    let _ = monitor.wait();
    figures
}

/// One built-in run: 3 engines on loopback at the default timing; node 3 stops; the time until
/// node 1's subscriber receives the view of nodes 1 and 2.
async fn builtin_round() -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let configs = loopback::configs("bench", 3, dir.path()).unwrap();
    let engines = loopback::start(&configs, &ClusterKey::random())
        .await
        .unwrap();
    let mut sub = engines[0].subscribe().await.unwrap();
    let ids = |e: &MembershipEvent| e.view.member_ids().map(NodeId::get).collect::<Vec<_>>();
    let formed = sub.initial_view().is_some_and(|v| v.members().len() == 3);
    if !formed {
        loop {
            let e = sub.next_event().await.unwrap().unwrap();
            if ids(&e) == [1, 2, 3] {
                break;
            }
        }
    }
    let t0 = Instant::now();
    engines[2].stop();
    loop {
        let e = sub.next_event().await.unwrap().unwrap();
        if e.kind != EventKind::Evicted && ids(&e) == [1, 2] {
            break;
        }
    }
    let took = t0.elapsed();
    for e in &engines {
        e.stop();
    }
    took
}

fn measure_builtin() -> Vec<Duration> {
    let rt = runtime();
    (0..ROUNDS)
        .map(|round| {
            let took = rt.block_on(builtin_round());
            println!(
                "built-in (default timing, detect_ms 500)  round {round}: ocf API {:>8.1} ms",
                took.as_secs_f64() * 1e3
            );
            took
        })
        .collect()
}

fn median<T: Copy + Ord>(v: &[T]) -> T {
    let mut s = v.to_vec();
    s.sort_unstable();
    s[s.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` does not, and a minute of
    // cluster churn has no place in a test run.
    if !std::env::args().any(|a| a == "--bench") {
        println!("corosync bench: run it with `cargo bench -p benches --features corosync`");
        return;
    }
    if !corosync_support::can_run("corosync kill-to-view bench") {
        return;
    }
    let mut failed = false;
    let mut all = Vec::new();
    for token_ms in [1000, 300] {
        all.push(measure(token_ms));
    }
    let builtin = measure_builtin();
    println!("\nkill-to-view, 3 nodes, median of {ROUNDS} (max overhead):");
    for f in &all {
        let over = median(&f.overhead_us);
        let worst = f.overhead_us.iter().copied().max().unwrap_or(0);
        let d_over = median(&f.daemon_overhead_us);
        let d_worst = f.daemon_overhead_us.iter().copied().max().unwrap_or(0);
        println!(
            "  corosync token {:>4} ms: corosync-quorumtool -m {:>7.1} ms, ocf API {:>7.1} ms, overhead {:+.2} ms (max {:+.2} ms); via ocf node {:>7.1} ms, overhead {:+.2} ms (max {:+.2} ms)",
            f.token_ms,
            median(&f.corosync).as_secs_f64() * 1e3,
            median(&f.ours).as_secs_f64() * 1e3,
            over as f64 / 1e3,
            worst as f64 / 1e3,
            median(&f.daemon).as_secs_f64() * 1e3,
            d_over as f64 / 1e3,
            d_worst as f64 / 1e3,
        );
        if over.max(d_over) >= BUDGET.as_micros() as i128 {
            failed = true;
        }
    }
    println!(
        "  built-in protocol (default timing, detect_ms 500, loopback): ocf API {:>7.1} ms (min {:.1}, max {:.1})",
        median(&builtin).as_secs_f64() * 1e3,
        builtin.iter().min().unwrap().as_secs_f64() * 1e3,
        builtin.iter().max().unwrap().as_secs_f64() * 1e3,
    );
    if failed {
        eprintln!("FAIL: ocf adds {BUDGET:?} or more over corosync's own notification");
        std::process::exit(1);
    }
}
