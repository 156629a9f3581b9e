//! Membership on etcd at HPC scale: 1,000 / 5,000 / 10,000 simulated members (one process
//! holding that many leases over 16 connections, one keep-alive per second each, TTL 5 s, sent
//! to the etcd leader only) against three etcd members on loopback, with three real `EtcdEngine`s (and their
//! failure detectors) among them. Measured per size:
//!
//! - CPU of the three etcd members and of this client process over a steady window (% of one
//!   core);
//! - false expiries: simulated member keys deleted although their keep-alives never stopped
//!   (goal 0 at 10,000);
//! - death → view at a watching engine (its subscriber gets the view without the dead node):
//!   through the detector's revoke (an engine aborted without a word) and by the TTL alone (a
//!   simulated member whose keep-alives stop).
//!
//! Run: `cargo bench -p benches --features etcd --bench etcd_scale` (sizes:
//! `OCF_ETCD_SCALE=1000,5000`; steady window: `OCF_ETCD_STEADY_S=20`). Prints one table.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../../ocf-ref/tests/etcd_support/mod.rs"]
mod etcd_support;

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use etcd_support::EtcdCluster;
use ocf_core::NodeId;
use ocf_membership::{Membership, Subscription};
use ocf_ref::membership::builtin::key::ClusterKey;
use ocf_ref::membership::builtin::loopback;
use ocf_ref::membership::config::{BackendKind, EtcdConfig};
use ocf_ref::membership::etcd::EtcdEngine;
use ocf_ref::membership::etcd::etcd_client::{
    Client, ConnectOptions, EventType, PutOptions, WatchOptions,
};
use ocf_ref::membership::etcd::keys::{KeyLayout, MemberRecord};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

const TTL_S: i64 = 5;
const PREFIX: &str = "/ocf-bench/";
/// Connections to the leader the simulated members' streams are spread over.
const CONNECTIONS: usize = 16;
/// Simulated members' ids start here (the three engines are 1, 2, 3).
const FIRST_SIM: u32 = 1000;

struct Row {
    members: usize,
    etcd_cpu: [f64; 3],
    leader: usize,
    client_cpu: f64,
    false_expiries: u64,
    lost_keepalives: u64,
    revoke_ms: f64,
    ttl_ms: f64,
    load_s: f64,
}

fn clock_ticks() -> f64 {
    // SAFETY-free: sysconf is a plain libc call with no pointers.
    #[allow(unsafe_code)]
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// utime + stime of a process, in seconds.
fn cpu_s(pid: &str) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = text.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11..13).map_or(0.0, |v| {
        v.iter().filter_map(|x| x.parse::<f64>().ok()).sum()
    });
    ticks / clock_ticks()
}

async fn client(endpoints: &[String]) -> Client {
    let opts = ConnectOptions::new()
        .with_timeout(Duration::from_secs(5))
        .with_connect_timeout(Duration::from_secs(2));
    Client::connect(endpoints, Some(opts)).await.unwrap()
}

/// The index of the member that leads.
async fn leader(etcd: &EtcdCluster) -> usize {
    for _ in 0..50 {
        for (i, m) in etcd.members.iter().enumerate() {
            let mut c = client(&[m.endpoint()]).await;
            if let Ok(s) = c.status().await
                && s.header().is_some_and(|h| h.member_id() == s.leader())
            {
                return i;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no etcd leader");
}

/// The simulated members: a lease and a member key each, a keep-alive per second each.
struct Simulated {
    tasks: JoinSet<()>,
    stop: Vec<Arc<AtomicBool>>,
    lost: Arc<AtomicU64>,
}

impl Simulated {
    /// Grants and registers `n` members, each starting its keep-alives as soon as its key is
    /// written (a lease granted early must not expire while the rest load); answers once all
    /// are registered.
    async fn start(clients: &[Client], n: usize) -> Self {
        let layout = KeyLayout::new(PREFIX);
        let gate = Arc::new(Semaphore::new(256));
        let lost = Arc::new(AtomicU64::new(0));
        let registered = Arc::new(AtomicU64::new(0));
        let mut tasks = JoinSet::new();
        let mut stop = Vec::new();
        for i in 0..n {
            let flag = Arc::new(AtomicBool::new(false));
            stop.push(Arc::clone(&flag));
            // One HTTP/2 connection carries every stream of its client: spread the leases
            // over several, as many daemons would.
            let mut c = clients[i % clients.len()].clone();
            let (gate, layout) = (Arc::clone(&gate), layout.clone());
            let (lost, registered) = (Arc::clone(&lost), Arc::clone(&registered));
            tasks.spawn(async move {
                let id = FIRST_SIM + i as u32;
                let lease = {
                    let _permit = gate.acquire().await.unwrap();
                    let lease = c.lease_grant(TTL_S, None).await.unwrap().id();
                    let record = MemberRecord {
                        id,
                        name: format!("s{id}").parse().unwrap(),
                        votes: 1,
                        inc: 1,
                    };
                    c.put(
                        layout.member_key(NodeId::new(id)),
                        record.to_value(),
                        Some(PutOptions::new().with_lease(lease)),
                    )
                    .await
                    .unwrap();
                    lease
                };
                registered.fetch_add(1, Ordering::Relaxed);
                let Ok((mut keeper, mut stream)) = c.lease_keep_alive(lease).await else {
                    lost.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                // One renewal per second, spread evenly over the second.
                let offset = Duration::from_micros((i as u64 * 1_000_000) / n as u64);
                tokio::time::sleep(offset).await;
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tick.tick().await;
                    if flag.load(Ordering::Relaxed) {
                        return;
                    }
                    if keeper.keep_alive().await.is_err() {
                        lost.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    match stream.message().await {
                        Ok(Some(r)) if r.ttl() > 0 => {}
                        _ => {
                            lost.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
        while registered.load(Ordering::Relaxed) < n as u64 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { tasks, stop, lost }
    }
}

/// Counts deletions of simulated member keys seen by a watch on another member.
fn count_expiries(
    mut c: Client,
    stopped: Arc<AtomicU64>,
    deletes: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let layout = KeyLayout::new(PREFIX);
        let mut w = c
            .watch(
                layout.members_prefix(),
                Some(WatchOptions::new().with_prefix()),
            )
            .await
            .unwrap();
        while let Ok(Some(r)) = w.message().await {
            for e in r.events() {
                if e.event_type() == EventType::Delete
                    && let Some(id) = e.kv().and_then(|kv| layout.member_id(kv.key()))
                    && id.get() >= FIRST_SIM
                    && u64::from(id.get() - FIRST_SIM) != stopped.load(Ordering::Relaxed)
                {
                    deletes.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    })
}

/// Waits on `sub` for a view without `gone`; answers the time from `since`.
async fn view_without(sub: &mut Box<dyn Subscription>, gone: NodeId, since: Instant) -> f64 {
    loop {
        let e = tokio::time::timeout(Duration::from_secs(60), sub.next_event())
            .await
            .expect("no view within 60 s")
            .unwrap()
            .expect("stream ended");
        if !e.view.contains(gone) && e.view.is_quorate() {
            return since.elapsed().as_secs_f64() * 1000.0;
        }
    }
}

// One measurement, read top to bottom: start, settle, measure, kill, measure, stop.
#[allow(clippy::too_many_lines)]
async fn run(n: usize, steady: Duration) -> Row {
    let etcd = EtcdCluster::start(3);
    let lead = leader(&etcd).await;
    let mut sim_clients = Vec::new();
    for _ in 0..CONNECTIONS {
        sim_clients.push(client(&[etcd.members[lead].endpoint()]).await);
    }
    let loading = Instant::now();
    let mut sim = Simulated::start(&sim_clients, n).await;
    let load_s = loading.elapsed().as_secs_f64();
    let stopped = Arc::new(AtomicU64::new(u64::MAX));
    let deletes = Arc::new(AtomicU64::new(0));
    let watcher = count_expiries(
        client(&[etcd.members[(lead + 1) % 3].endpoint()]).await,
        Arc::clone(&stopped),
        Arc::clone(&deletes),
    );

    // Three real engines with their detectors, started once the members are loaded.
    let dir = tempfile::tempdir().unwrap();
    let mut configs = loopback::configs("scale", 3, dir.path()).unwrap();
    for c in &mut configs {
        c.backend = BackendKind::Etcd;
        c.etcd = Some(EtcdConfig {
            endpoints: etcd.endpoints(),
            ca_file: None,
            cert_file: None,
            key_file: None,
            user: None,
            password_file: None,
            prefix: Some(PREFIX.into()),
            lease_ttl_s: TTL_S as u64,
        });
    }
    let key = ClusterKey::random();
    let mut engines = Vec::new();
    for c in &configs {
        engines.push(EtcdEngine::start(c, &key).await.unwrap());
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut ok = true;
        for e in &engines {
            let v = e.current_view().await.unwrap();
            ok &= v.is_some_and(|v| v.members().len() == n + 3 && v.is_quorate());
            ok &= e
                .detector()
                .hub()
                .current()
                .is_some_and(|v| v.members().len() == 3);
        }
        if ok {
            break;
        }
        if Instant::now() > deadline {
            let mut state = String::new();
            for e in &engines {
                let v = e.current_view().await.unwrap();
                let _ = write!(
                    state,
                    "\nnode: view {:?} members {:?} quorate {:?}, detector {:?}, lease {:?}, {:?}",
                    v.as_ref().map(|v| v.id),
                    v.as_ref().map(|v| v.members().len()),
                    v.as_ref().map(ocf_membership::View::is_quorate),
                    e.detector().hub().current().map(|v| v.members().len()),
                    e.lease_id(),
                    e.stats()
                );
            }
            panic!("the engines never saw all {n} members:{state}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Steady window.
    let pids: Vec<String> = etcd
        .members
        .iter()
        .map(|m| m.pid().unwrap().to_string())
        .collect();
    let before: Vec<f64> = pids.iter().map(|p| cpu_s(p)).collect();
    let me_before = cpu_s("self");
    let t0 = Instant::now();
    tokio::time::sleep(steady).await;
    let secs = t0.elapsed().as_secs_f64();
    let etcd_cpu: Vec<f64> = pids
        .iter()
        .zip(&before)
        .map(|(p, b)| (cpu_s(p) - b) / secs * 100.0)
        .collect();
    let client_cpu = (cpu_s("self") - me_before) / secs * 100.0;

    // Death through the detector's revoke: engine 3 stops without a word.
    let mut sub = engines[0].subscribe().await.unwrap();
    let killed = Instant::now();
    engines[2].abort();
    let revoke_ms = view_without(&mut sub, NodeId::new(3), killed).await;

    // Death by the TTL alone: a simulated member's keep-alives stop.
    let victim = n / 2;
    stopped.store(victim as u64, Ordering::Relaxed);
    let stop_at = Instant::now();
    sim.stop[victim].store(true, Ordering::Relaxed);
    let ttl_ms = view_without(&mut sub, NodeId::new(FIRST_SIM + victim as u32), stop_at).await;

    let row = Row {
        members: n,
        etcd_cpu: [etcd_cpu[0], etcd_cpu[1], etcd_cpu[2]],
        leader: lead,
        client_cpu,
        false_expiries: deletes.load(Ordering::Relaxed),
        lost_keepalives: sim.lost.load(Ordering::Relaxed),
        revoke_ms,
        ttl_ms,
        load_s,
    };
    watcher.abort();
    sim.tasks.abort_all();
    for e in &engines {
        e.abort();
    }
    drop(engines);
    drop(etcd);
    row
}

fn main() {
    // RUST_LOG=ocf_ref=info shows the engines' joins, views and revokes.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    let sizes: Vec<usize> = std::env::var("OCF_ETCD_SCALE").ok().map_or_else(
        || vec![1000, 5000, 10_000],
        |s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
    );
    let steady = Duration::from_secs(
        std::env::var("OCF_ETCD_STEADY_S")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(20),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    for n in sizes {
        let row = rt.block_on(run(n, steady));
        println!(
            "{n} members: etcd CPU {:.0}/{:.0}/{:.0} % (leader e{}), client {:.0} %, false expiries {}, lost keep-alives {}, death->view revoke {:.0} ms, TTL {:.0} ms (load {:.1} s)",
            row.etcd_cpu[0],
            row.etcd_cpu[1],
            row.etcd_cpu[2],
            row.leader + 1,
            row.client_cpu,
            row.false_expiries,
            row.lost_keepalives,
            row.revoke_ms,
            row.ttl_ms,
            row.load_s
        );
        rows.push(row);
    }
    println!(
        "\n| members | etcd CPU, 3 members (leader) | client CPU | false expiries | lost keep-alives | death → view, detector revoke | death → view, TTL {TTL_S} s alone |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {:.0} % + {:.0} % + {:.0} % = {:.0} % (e{}) | {:.0} % | {} | {} | {:.0} ms | {:.0} ms |",
            r.members,
            r.etcd_cpu[0],
            r.etcd_cpu[1],
            r.etcd_cpu[2],
            r.etcd_cpu.iter().sum::<f64>(),
            r.leader + 1,
            r.client_cpu,
            r.false_expiries,
            r.lost_keepalives,
            r.revoke_ms,
            r.ttl_ms
        );
    }
}
