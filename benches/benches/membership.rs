#![allow(missing_docs)] // criterion_group! and criterion_main! generate undocumented functions
#![allow(clippy::expect_used)] // a benchmark that cannot set up has nothing to measure
//! Membership benchmarks.
//!
//! - `membership/kill_to_view_loopback`: three built-in engines on loopback UDP with the default
//!   timings (detect_ms 500: heartbeat 100 ms, dead 400 ms); one is stopped without a word, and the time until
//!   both survivors have installed the view without it is measured.
//! - `membership/sim_failure/N` for N = 10, 100, 300: the wall time to simulate a cluster
//!   converging after one crash; the simulated rounds (probe periods) to converge and the
//!   messages per node per second are printed on stderr.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use ocf_membership::{Membership, View};
use ocf_ref::membership::builtin::BuiltinEngine;
use ocf_ref::membership::builtin::key::ClusterKey;
use ocf_ref::membership::config::NodeConfig;
use ocf_ref::membership::protocol::Timing;
use ocf_ref::membership::sim::scenario::FailureRun;

fn configs(n: u32) -> Vec<NodeConfig> {
    let sockets: Vec<std::net::UdpSocket> = (0..n)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").expect("a free loopback port"))
        .collect();
    let mut nodes = String::new();
    for (i, s) in sockets.iter().enumerate() {
        let port = s.local_addr().expect("bound").port();
        let _ = writeln!(
            nodes,
            "[[nodes]]\nid = {}\nname = \"b{}\"\naddress = \"127.0.0.1:{port}\"",
            i + 1,
            i + 1
        );
    }
    drop(sockets);
    (1..=n)
        .map(|id| {
            let text = format!(
                "cluster = \"bench\"\nnode_id = {id}\nkey_file = \"/nonexistent\"\n{nodes}"
            );
            NodeConfig::parse(&text, std::path::Path::new("bench.toml")).expect("valid config")
        })
        .collect()
}

async fn view_of(e: &BuiltinEngine) -> Option<View> {
    e.current_view().await.ok().flatten()
}

async fn wait_all(engines: &[&BuiltinEngine], members: usize) -> Instant {
    loop {
        let mut ids = Vec::new();
        for e in engines {
            ids.push(
                view_of(e)
                    .await
                    .filter(|v| v.members().len() == members)
                    .map(|v| v.id),
            );
        }
        if ids.iter().all(|i| i.is_some() && *i == ids[0]) {
            return Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// One loopback run: form 3 nodes, stop node 3, time until both survivors drop it.
async fn kill_to_view() -> Duration {
    let key = ClusterKey::random();
    let mut engines = Vec::new();
    for c in configs(3) {
        engines.push(BuiltinEngine::start(&c, &key).await.expect("engine starts"));
    }
    let all: Vec<&BuiltinEngine> = engines.iter().collect();
    wait_all(&all, 3).await;
    let victim = engines.pop().expect("three engines");
    let killed = Instant::now();
    victim.shutdown().await;
    let survivors: Vec<&BuiltinEngine> = engines.iter().collect();
    let done = wait_all(&survivors, 2).await;
    let took = done - killed;
    for e in engines {
        e.shutdown().await;
    }
    took
}

fn loopback(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut group = c.benchmark_group("membership");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(1));
    group.measurement_time(Duration::from_secs(60));
    let mut samples = Vec::new();
    group.bench_function("kill_to_view_loopback", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let took = rt.block_on(kill_to_view());
                samples.push(took);
                total += took;
            }
            total
        });
    });
    group.finish();
    samples.sort();
    if let (Some(min), Some(max)) = (samples.first(), samples.last()) {
        let median = samples[samples.len() / 2];
        let p99 = samples[(samples.len() * 99).div_ceil(100).saturating_sub(1)];
        eprintln!(
            "kill-to-view on loopback (3 nodes, default timing: detect_ms 500): median {} ms, p99 {} ms, min {} ms, max {} ms over {} runs",
            median.as_millis(),
            p99.as_millis(),
            min.as_millis(),
            max.as_millis(),
            samples.len()
        );
    }
}

fn simulator(c: &mut Criterion) {
    let timing = Timing::from_budget(500);
    let mut group = c.benchmark_group("membership/sim_failure");
    group.sample_size(10);
    // One cluster per iteration; flat sampling keeps the large runs to ten iterations.
    // Every node renews its primacy lease with every member once a period (2(n - 1)
    // messages per node per period), so the built-in engine stops at hundreds of nodes:
    // 10,000 are the etcd engine's.
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(1));
    let mut figures: HashMap<u32, Vec<(f64, f64, f64)>> = HashMap::new();
    for n in [10u32, 100, 300] {
        group.measurement_time(Duration::from_secs(if n >= 300 { 60 } else { 10 }));
        let mut seed = 0;
        group.bench_function(format!("{n}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    seed += 1;
                    let run = FailureRun::prepare(n, timing, 2_000, seed);
                    let start = Instant::now();
                    let r = run.crash_and_converge().expect("converges");
                    total += start.elapsed();
                    figures.entry(n).or_default().push((
                        r.rounds,
                        r.steady_msgs_per_node_per_sec,
                        r.failure_msgs_per_node_per_sec,
                    ));
                }
                total
            });
        });
        if let Some(f) = figures.get(&n) {
            let k = f.len() as f64;
            let mean = |i: usize| f.iter().map(|t| [t.0, t.1, t.2][i]).sum::<f64>() / k;
            eprintln!(
                "simulator, {n} nodes, one crash: {:.1} rounds (probe periods of 100 ms) to converge on average; {:.2} messages per node per second steady, {:.2} during the failure ({} runs)",
                mean(0),
                mean(1),
                mean(2),
                f.len()
            );
        }
    }
    group.finish();
}

criterion_group!(benches, loopback, simulator);
criterion_main!(benches);
