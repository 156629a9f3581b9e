//! Cluster fencer benchmarks: five built-in engines on loopback UDP, each with its own
//! `ClusterFencer` (the real protocol over the engines' authenticated transport), against a
//! `LocalFencer` running the same kind of device in the same process.
//!
//! Three paths, for the native null device and for the real fence-agents `fence_dummy`:
//! - `local`: `LocalFencer::fence` directly;
//! - `cluster_authority_executes`: asked on the authority (the view's coordinator), whose own
//!   device is the only one that can fence the target: asker = authority = executor;
//! - `cluster_three_nodes`: the device is reachable from one non-authority node only, and the
//!   request is made on another non-authority node: asker, authority and executor differ.
//!
//! Every call is a new incident: each path fences its own target, alternating `off` and `on`
//! (a repeat of the last action would be answered from history without a device call).
//! Before criterion runs, a summary interleaves the three paths (so machine load hits them
//! alike) and prints per path the median, p90 and p99 latency and the median time spent
//! outside the device (latency minus the device operations' durations in the record), then
//! the overhead = cluster − local (the goal is ≤ 2 ms median) two ways: the median of
//! per-round differences, and the difference of the medians outside the device. The second
//! is the one to read for `fence_dummy`, whose own run time (a Python start, 60–150 ms on a
//! loaded machine) varies far more than the overhead.
//!
//! `fence_cluster_merge/requests_1000`: 1,000 concurrent requests for one target spread over
//! the five nodes, a device that takes 10 ms: it panics unless the device was called exactly
//! once and every requester got the same record. Its summary prints calls per incident, the
//! time to answer all 1,000, and the datagrams the five engines sent per incident (and how
//! many never arrived: the receiving socket's buffer overflowed).
//!
//! The criterion loops run fences back to back (thousands a second): their figures are the
//! cost per fence under that load, higher than the summary's isolated medians. The engines
//! get a 2 s detection budget instead of 500 ms so that such a loop on a shared machine
//! cannot starve a node's heartbeats into a view change, which would move the authority.
//!
//! Run: `cargo bench -p benches --bench fencing_cluster`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use ocf_core::{NodeId, NodeName};
use ocf_fencing::{
    DeviceParams, FenceAction, FenceDevice, FenceRecord, FenceRequest, Fencer, FencerAdmin, Targets,
};
use ocf_membership::Membership;
use ocf_ref::fencing::cluster::protocol::message::Caps;
use ocf_ref::fencing::cluster::{ClusterFencer, ClusterOptions};
use ocf_ref::fencing::devices::agent::{self, AgentDevice};
use ocf_ref::fencing::devices::native::{NullDevice, SimulatedDevice, Step};
use ocf_ref::fencing::fencer::LocalFencer;
use ocf_ref::membership::builtin::engine::BuiltinEngine;
use ocf_ref::membership::builtin::key::ClusterKey;
use ocf_ref::membership::builtin::loopback;

const NODES: usize = 5;
const REQUESTS: usize = 1000;
const MERGE_DEVICE_LATENCY: Duration = Duration::from_millis(10);
const TIMEOUT: Duration = Duration::from_secs(30);

fn n(s: &str) -> NodeName {
    s.parse().unwrap()
}

/// One way of fencing one target: a fencer, the target only its device can fence, the node
/// expected to run the device (cluster paths), and the alternation of `off`/`on`.
struct Path {
    fencer: Arc<dyn Fencer>,
    target: NodeName,
    executor: Option<NodeName>,
    next: AtomicU64,
}

impl Path {
    fn new(fencer: Arc<dyn Fencer>, target: &str, executor: Option<NodeName>) -> Self {
        Self {
            fencer,
            target: n(target),
            executor,
            next: AtomicU64::new(0),
        }
    }

    /// One fence of a new incident: the action the target's last incident did not have.
    async fn fence(&self) -> FenceRecord {
        let k = self.next.fetch_add(1, Ordering::Relaxed);
        let action = if k % 2 == 0 {
            FenceAction::Off
        } else {
            FenceAction::On
        };
        let r = FenceRequest::new(self.target.clone(), action, "bench@n0".parse().unwrap())
            .with_timeout(TIMEOUT);
        let record = self.fencer.fence(r).await.unwrap();
        if let Some(e) = &self.executor {
            assert_eq!(
                record.executions.last().map(|x| &x.node),
                Some(e),
                "the device ran on an unexpected node: {record:#?}"
            );
        }
        record
    }
}

/// The five nodes, the paths, and the merge device.
struct Bench {
    engines: Vec<Arc<BuiltinEngine>>,
    fencers: Vec<ClusterFencer>,
    authority: usize,
    executor: usize,
    asker: usize,
    null: [Path; 3],
    dummy: Option<[Path; 3]>,
    merge_device: Arc<SimulatedDevice>,
    merge_next: AtomicU64,
    _dir: tempfile::TempDir,
}

fn null_device(id: &str, hosts: &[&str]) -> Arc<dyn FenceDevice> {
    Arc::new(NullDevice::new(
        id.parse().unwrap(),
        hosts.iter().map(|h| n(h)),
    ))
}

/// A `fence_dummy` device for `host`, with its own status file in `dir`.
fn dummy_device(dir: &std::path::Path, host: &str) -> Option<Arc<dyn FenceDevice>> {
    let path = agent::resolve_agent("fence_dummy", &agent::agents_dir()).ok()?;
    let state = dir.join(format!("{host}.state")).display().to_string();
    let params: DeviceParams = [("status_file", state.as_str())].into_iter().collect();
    Some(Arc::new(AgentDevice::new(
        format!("dummy-{host}").parse().unwrap(),
        &path,
        params,
        Targets::hosts([n(host)]),
    )))
}

/// The authority of the engines' common view (its coordinator, else its lowest member), once
/// all five agree on one quorate view.
async fn common_view(engines: &[Arc<BuiltinEngine>]) -> NodeId {
    for _ in 0..400 {
        let mut views = Vec::new();
        for e in engines {
            if let Ok(Some(v)) = e.current_view().await {
                if v.members().len() == engines.len() && v.is_quorate() {
                    views.push(v);
                }
            }
        }
        if views.len() == engines.len() && views.iter().all(|v| v.id == views[0].id) {
            let v = &views[0];
            return if v.contains(v.id.coordinator) {
                v.id.coordinator
            } else {
                v.members().iter().map(|m| m.id).min().unwrap()
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the five engines never agreed on one view");
}

impl Bench {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut configs = loopback::configs("fcbench", NODES as u32, dir.path()).unwrap();
        // A detection budget of 2 s instead of 500 ms: criterion's back-to-back loops
        // (thousands of fences a second) on a shared two-core machine can starve a node's
        // heartbeats for longer than 400 ms, and a view change mid-run moves the authority.
        for c in &mut configs {
            c.timing.detect_ms = Some(2000);
        }
        let key = ClusterKey::random();
        let engines = loopback::start(&configs, &key).await.unwrap();
        let authority_id = common_view(&engines).await;
        let authority = configs
            .iter()
            .position(|c| c.local_id() == authority_id)
            .unwrap();
        let others: Vec<usize> = (0..NODES).filter(|i| *i != authority).collect();
        let (executor, asker) = (others[0], others[1]);
        let name = |i: usize| n(&format!("n{}", i + 1));
        let has_dummy = dummy_device(dir.path(), "probe").is_some();
        if !has_dummy {
            eprintln!("fence_dummy not found (scripts/install-peers.sh): its benches are skipped");
        }

        // Devices per node: the authority fences "na"/"da", one other node "nb"/"db" and the
        // merge target "m"; nobody else has a device.
        let merge_device = Arc::new(SimulatedDevice::constant(
            "merge".parse().unwrap(),
            [n("m")],
            Step::ok(MERGE_DEVICE_LATENCY),
        ));
        let mut fencers = Vec::new();
        for (i, engine) in engines.iter().enumerate() {
            let local = LocalFencer::new();
            let mut targets = Vec::new();
            let mut add = async |dev: Arc<dyn FenceDevice>, host: &str| {
                local.register_device(dev).await.unwrap();
                targets.push(n(host));
            };
            if i == authority {
                add(null_device("null-a", &["na"]), "na").await;
                if let Some(d) = dummy_device(dir.path(), "da") {
                    add(d, "da").await;
                }
            } else if i == executor {
                add(null_device("null-b", &["nb"]), "nb").await;
                if let Some(d) = dummy_device(dir.path(), "db") {
                    add(d, "db").await;
                }
                add(merge_device.clone(), "m").await;
            }
            targets.sort();
            fencers.push(ClusterFencer::start(
                configs[i].local_id(),
                name(i),
                engine.clone() as Arc<dyn Membership>,
                engine.take_fence_link().unwrap(),
                Arc::new(local),
                ClusterOptions::new(Caps {
                    targets,
                    dynamic: false,
                }),
            ));
        }

        let local = LocalFencer::new();
        local
            .register_device(null_device("null-l", &["nl"]))
            .await
            .unwrap();
        if let Some(d) = dummy_device(dir.path(), "dl") {
            local.register_device(d).await.unwrap();
        }
        let local: Arc<dyn Fencer> = Arc::new(local);
        let on = |i: usize| -> Arc<dyn Fencer> { Arc::new(fencers[i].clone()) };
        let null = [
            Path::new(local.clone(), "nl", None),
            Path::new(on(authority), "na", Some(name(authority))),
            Path::new(on(asker), "nb", Some(name(executor))),
        ];
        let dummy = has_dummy.then(|| {
            [
                Path::new(local.clone(), "dl", None),
                Path::new(on(authority), "da", Some(name(authority))),
                Path::new(on(asker), "db", Some(name(executor))),
            ]
        });
        let bench = Self {
            engines,
            fencers,
            authority,
            executor,
            asker,
            null,
            dummy,
            merge_device,
            merge_next: AtomicU64::new(0),
            _dir: dir,
        };
        // Warm up every path (the authority's epoch sync, the agents' meta-data): the first
        // requests wait for the sync, re-sent by the protocol until it is done.
        for p in bench.paths() {
            p.fence().await;
            p.fence().await;
        }
        bench
    }

    fn paths(&self) -> impl Iterator<Item = &Path> {
        self.null.iter().chain(self.dummy.iter().flatten())
    }

    /// `REQUESTS` concurrent requests for "m", spread round-robin over the five nodes, all of
    /// one new incident. Returns the device calls it caused and how long answering all took.
    async fn merge_batch(&self) -> (u64, Duration) {
        let k = self.merge_next.fetch_add(1, Ordering::Relaxed);
        let action = if k % 2 == 0 {
            FenceAction::Off
        } else {
            FenceAction::On
        };
        let before = self.merge_device.fence_calls();
        let t = Instant::now();
        let tasks: Vec<_> = (0..REQUESTS)
            .map(|i| {
                let node = i % NODES;
                let f = self.fencers[node].clone();
                let r = FenceRequest::new(
                    n("m"),
                    action,
                    format!("client{i}@n{}", node + 1).parse().unwrap(),
                )
                .with_timeout(TIMEOUT);
                tokio::spawn(async move { f.fence(r).await })
            })
            .collect();
        let mut ids = Vec::with_capacity(REQUESTS);
        for task in tasks {
            ids.push(
                task.await
                    .unwrap()
                    .expect("every requester gets the success")
                    .id,
            );
        }
        let elapsed = t.elapsed();
        let calls = self.merge_device.fence_calls() - before;
        assert!(
            ids.iter().all(|id| *id == ids[0]),
            "{REQUESTS} requests for one target made more than one incident"
        );
        assert_eq!(
            calls, 1,
            "{REQUESTS} concurrent requests of one incident made {calls} device calls"
        );
        (calls, elapsed)
    }

    /// Whether the authority is still the one the paths were laid out for (a view change
    /// during the run would move it and make the figures meaningless).
    async fn check_authority(&self) {
        let now = common_view(&self.engines).await;
        assert_eq!(
            now.get() as usize,
            self.authority + 1,
            "the authority moved during the run"
        );
    }

    async fn shutdown(self) {
        for f in &self.fencers {
            f.shutdown().await;
        }
        for e in &self.engines {
            e.stop();
        }
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// How long the device itself took in `record` (ms, from the record's whole-millisecond
/// stamps of each device operation).
fn device_ms(record: &FenceRecord) -> f64 {
    record
        .levels
        .iter()
        .flat_map(|l| &l.attempts)
        .map(|a| a.ended_ms.saturating_sub(a.started_ms) as f64)
        .sum()
}

fn quantile(v: &[f64], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// The three paths interleaved `rounds` times (in alternating order, so none always runs
/// right after another). Per path: the median latency, its 90th and 99th percentiles, and
/// the median of the time spent outside the device (latency minus the device operations'
/// durations in the record); the overhead is the cluster path's minus the local path's,
/// given both ways: as the median of per-round latency differences, and as the difference
/// of the medians outside the device (which the device's own variance does not touch).
fn latency_summary(rt: &tokio::runtime::Runtime, label: &str, paths: &[Path; 3], rounds: usize) {
    let mut total: [Vec<f64>; 3] = Default::default();
    let mut outside: [Vec<f64>; 3] = Default::default();
    for round in 0..rounds {
        let mut order = [0, 1, 2];
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let start = Instant::now();
            let record = rt.block_on(paths[i].fence());
            let t = ms(start.elapsed());
            total[i].push(t);
            outside[i].push(t - device_ms(&record));
        }
    }
    eprintln!("{label}, {rounds} interleaved rounds (ms):");
    let names = [
        "local",
        "cluster, authority executes",
        "cluster, asker/authority/executor differ",
    ];
    for i in 0..3 {
        let mut line = format!(
            "  {:<42} median {:8.3}  p90 {:8.3}  p99 {:8.3}  outside the device {:7.3}",
            names[i],
            quantile(&total[i], 0.5),
            quantile(&total[i], 0.9),
            quantile(&total[i], 0.99),
            quantile(&outside[i], 0.5),
        );
        if i > 0 {
            let diffs: Vec<f64> = total[i].iter().zip(&total[0]).map(|(c, l)| c - l).collect();
            let _ = write!(
                line,
                "  | overhead: x{:.2}, paired {:+.3}, outside the device {:+.3}",
                quantile(&total[i], 0.5) / quantile(&total[0], 0.5),
                quantile(&diffs, 0.5),
                quantile(&outside[i], 0.5) - quantile(&outside[0], 0.5),
            );
        }
        eprintln!("{line}");
    }
}

/// Datagrams sent and received by the five engines so far.
fn datagrams(bench: &Bench) -> (u64, u64) {
    bench.engines.iter().fold((0, 0), |(s, r), e| {
        let c = e.stats().snapshot();
        (s + c.sent, r + c.received)
    })
}

fn merge_summary(rt: &tokio::runtime::Runtime, bench: &Bench, rounds: usize) {
    let mut times = Vec::new();
    let mut calls = 0;
    let (sent0, received0) = datagrams(bench);
    for _ in 0..rounds {
        let (c, t) = rt.block_on(bench.merge_batch());
        calls += c;
        times.push(t);
    }
    let (sent1, received1) = datagrams(bench);
    let (sent, received) = (sent1 - sent0, received1 - received0);
    eprintln!(
        "cluster merge: {} datagrams per incident (heartbeats included), {} of them not received (socket buffer overflow)",
        sent / rounds as u64,
        sent.saturating_sub(received) / rounds as u64
    );
    let total = rounds as u64;
    eprintln!(
        "cluster merge: {rounds} incidents x {REQUESTS} concurrent requests over {NODES} nodes -> {calls} device calls \
         ({:.2} per incident); time to answer all {REQUESTS}: median {:.1} ms, max {:.1} ms (device {} ms)",
        calls as f64 / total as f64,
        ms(median(times.clone())),
        ms(times.iter().copied().max().unwrap_or_default()),
        MERGE_DEVICE_LATENCY.as_millis()
    );
}

fn latency_group(c: &mut Criterion, rt: &tokio::runtime::Runtime, group: &str, paths: &[Path; 3]) {
    let mut g = c.benchmark_group(group);
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(3));
    let names = ["local", "cluster_authority_executes", "cluster_three_nodes"];
    for (name, p) in names.into_iter().zip(paths) {
        g.bench_function(name, |b| b.to_async(rt).iter(|| p.fence()));
    }
    g.finish();
}

fn cluster_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let bench = rt.block_on(Bench::start());
    eprintln!(
        "five nodes on loopback: authority n{}, the device of the three-node path on n{}, asked on n{}",
        bench.authority + 1,
        bench.executor + 1,
        bench.asker + 1
    );
    latency_summary(&rt, "null device", &bench.null, 300);
    if let Some(dummy) = &bench.dummy {
        latency_summary(&rt, "fence_dummy", dummy, 40);
    }
    merge_summary(&rt, &bench, 10);

    latency_group(c, &rt, "fence_cluster_null", &bench.null);
    if let Some(dummy) = &bench.dummy {
        latency_group(c, &rt, "fence_cluster_dummy", dummy);
    }
    let mut g = c.benchmark_group("fence_cluster_merge");
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("requests_1000", |b| {
        b.to_async(&rt).iter(|| bench.merge_batch());
    });
    g.finish();

    rt.block_on(bench.check_authority());
    rt.block_on(bench.shutdown());
}

criterion_group!(benches, cluster_benches);
criterion_main!(benches);
