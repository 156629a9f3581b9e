//! Kill-to-view over Corosync: the time from `kill -9` of one corosync in a 3-node cluster
//! (network namespaces joined by a bridge) until a survivor's view without it arrives
//!
//! - through ocf's API (`CorosyncMembership` → `Subscription::next_event`), and
//! - as corosync's own quorum notification, printed by `corosync-quorumtool -m` on the same
//!   node in the same run,
//!
//! at token 1000 ms and 300 ms. The difference is the overhead ocf adds; it must stay under
//! 5 ms. Needs root (namespaces); otherwise it says so and exits successfully.
//!
//! Run: `cargo bench -p benches --features corosync --bench corosync`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../../ocf-ref/tests/corosync_support/mod.rs"]
mod corosync_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use corosync_support::{Cluster, enter_netns, runtime, test_options};
use ocf_core::NodeId;
use ocf_membership::{EventKind, Membership, MembershipEvent};
use ocf_ref::membership::corosync::CorosyncMembership;

const ROUNDS: usize = 5;
const LIMIT: Duration = Duration::from_secs(30);
const BUDGET: Duration = Duration::from_millis(5);

/// Our client on node 1: the initial view (as a new-membership event with seq 0), then every
/// event, each with the instant it was returned to the subscriber.
fn our_client(netns: String) -> mpsc::Receiver<(Instant, MembershipEvent)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        enter_netns(Some(&netns));
        runtime().block_on(async move {
            let m = CorosyncMembership::connect_with(test_options())
                .await
                .unwrap();
            let mut sub = m.subscribe().await.unwrap();
            if let Some(v) = sub.initial_view() {
                let initial = MembershipEvent::new(0, EventKind::NewMembership, v.clone());
                let _ = tx.send((Instant::now(), initial));
            }
            while let Ok(Some(e)) = sub.next_event().await {
                if tx.send((Instant::now(), e)).is_err() {
                    return;
                }
            }
        });
    });
    rx
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
}

fn measure(token_ms: u32) -> Figures {
    let mut cluster = Cluster::start(&format!("b{token_ms}"), 3, token_ms);
    cluster.wait_formed(3, LIMIT);
    let ns1 = cluster.ns(1);
    let ours = our_client(ns1.clone());
    let (mut monitor, lines) = quorumtool_monitor(&ns1);
    ours_seen(&ours, &[1, 2, 3]);
    let mut figures = Figures {
        token_ms,
        corosync: Vec::new(),
        ours: Vec::new(),
        overhead_us: Vec::new(),
    };
    for round in 0..ROUNDS {
        // Let the monitor print its initial state and the ring settle.
        std::thread::sleep(Duration::from_millis(500));
        drain(&ours);
        drain(&lines);
        let t0 = Instant::now();
        cluster.kill9(3);
        let t_ours = ours_seen(&ours, &[1, 2]);
        let t_corosync = quorumtool_seen(&lines, t0, 2);
        let (c, o) = (t_corosync - t0, t_ours - t0);
        let overhead = t_ours.duration_since(t0).as_micros() as i128
            - t_corosync.duration_since(t0).as_micros() as i128;
        println!(
            "token {token_ms:>4} ms  round {round}: corosync-quorumtool -m {:>8.1} ms   ocf API {:>8.1} ms   overhead {:>+7.2} ms",
            c.as_secs_f64() * 1e3,
            o.as_secs_f64() * 1e3,
            overhead as f64 / 1e3
        );
        figures.corosync.push(c);
        figures.ours.push(o);
        figures.overhead_us.push(overhead);
        cluster.restart(3);
        ours_seen(&ours, &[1, 2, 3]);
    }
    let _ = monitor.kill();
    let _ = monitor.wait();
    figures
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
    println!("\nkill-to-view, 3 nodes, median of {ROUNDS} (max overhead):");
    for f in &all {
        let over = median(&f.overhead_us);
        let worst = f.overhead_us.iter().copied().max().unwrap_or(0);
        println!(
            "  token {:>4} ms: corosync {:>7.1} ms, ocf API {:>7.1} ms, overhead {:+.2} ms (max {:+.2} ms)",
            f.token_ms,
            median(&f.corosync).as_secs_f64() * 1e3,
            median(&f.ours).as_secs_f64() * 1e3,
            over as f64 / 1e3,
            worst as f64 / 1e3,
        );
        if over >= BUDGET.as_micros() as i128 {
            failed = true;
        }
    }
    println!("  built-in engine: measured by the membership bench (not part of this branch)");
    if failed {
        eprintln!("FAIL: ocf adds {BUDGET:?} or more over corosync's own notification");
        std::process::exit(1);
    }
}
