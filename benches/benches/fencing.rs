//! Fencer benchmarks.
//!
//! - `fencer/merge_1000`: 1,000 concurrent requests for one target through the fencer with a
//!   native device that takes 10 ms: one device invocation for all of them. Before criterion
//!   runs, a summary prints the merge count (device invocations per 1,000 requests) and the
//!   fencer's added latency per request (request latency minus the device's 10 ms).
//! - `fencer/one_request_null_device`: one uncontended request, an instant device: the
//!   fencer's fixed cost.
//! - `fence_dummy/direct` vs `fence_dummy/through_fencer`: one `action=reboot` of the real
//!   fence-agents `fence_dummy`, run directly (tokio process, stdin) and through the fencer
//!   (policy, merge table, history, the process runner): the difference is the fencer's overhead.
//!
//! Run: `cargo bench -p benches --bench fencing`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ocf_fencing::{DeviceParams, FenceAction, FenceRequest, Fencer, FencerAdmin, Targets};
use ocf_ref::fencing::devices::agent::{self, AgentDevice};
use ocf_ref::fencing::devices::native::{NullDevice, SimulatedDevice, Step};
use ocf_ref::fencing::fencer::LocalFencer;
use tokio::io::AsyncWriteExt;

const DEVICE_LATENCY: Duration = Duration::from_millis(10);
const REQUESTS: usize = 1000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// One batch: a fresh fencer and device, `REQUESTS` concurrent requests. Returns the device
/// invocations and each request's latency.
async fn batch() -> (u64, Vec<Duration>) {
    let fencer = LocalFencer::new();
    let dev = Arc::new(SimulatedDevice::constant(
        "psu".parse().unwrap(),
        ["n1".parse().unwrap()],
        Step::ok(DEVICE_LATENCY),
    ));
    fencer.register_device(dev.clone()).await.unwrap();
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let f = fencer.clone();
            let r = FenceRequest::new(
                "n1".parse().unwrap(),
                FenceAction::Reboot,
                format!("client{i}@n0").parse().unwrap(),
            );
            tokio::spawn(async move {
                let t = Instant::now();
                f.fence(r).await.unwrap();
                t.elapsed()
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(REQUESTS);
    for t in tasks {
        latencies.push(t.await.unwrap());
    }
    (dev.fence_calls(), latencies)
}

fn summary(rt: &tokio::runtime::Runtime) {
    let rounds = 20;
    let mut calls = 0;
    let mut all = Vec::new();
    for _ in 0..rounds {
        let (c, l) = rt.block_on(batch());
        calls += c;
        all.extend(l);
    }
    all.sort();
    let added = |q: f64| {
        let i = ((all.len() - 1) as f64 * q) as usize;
        all[i].saturating_sub(DEVICE_LATENCY)
    };
    eprintln!(
        "fencer merge: {rounds} rounds x {REQUESTS} concurrent requests -> {calls} device invocations ({:.2} per round)",
        calls as f64 / f64::from(rounds)
    );
    eprintln!(
        "fencer added latency per request (request latency - {} ms device): p50 {:?}, p99 {:?}, max {:?}",
        DEVICE_LATENCY.as_millis(),
        added(0.5),
        added(0.99),
        added(1.0)
    );
}

fn fencer_benches(c: &mut Criterion) {
    let rt = runtime();
    summary(&rt);
    let mut g = c.benchmark_group("fencer");
    g.sample_size(20);
    g.bench_function("merge_1000", |b| {
        b.to_async(&rt).iter(|| async {
            let (calls, _) = batch().await;
            assert_eq!(calls, 1);
        });
    });
    let fencer = LocalFencer::new();
    rt.block_on(fencer.register_device(Arc::new(NullDevice::new(
        "null".parse().unwrap(),
        ["n1".parse().unwrap()],
    ))))
    .unwrap();
    g.bench_function("one_request_null_device", |b| {
        b.to_async(&rt).iter(|| async {
            let r = FenceRequest::new(
                "n1".parse().unwrap(),
                FenceAction::Reboot,
                "bench@n0".parse().unwrap(),
            );
            fencer.fence(r).await.unwrap();
        });
    });
    g.finish();
}

/// One direct `fence_dummy` run: a tokio process with the options on stdin, nothing else.
async fn direct_run(path: &std::path::Path, stdin: &str) {
    let mut child = tokio::process::Command::new(path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.as_bytes()).await.unwrap();
    drop(pipe);
    assert!(child.wait().await.unwrap().success());
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Direct and through-the-fencer runs interleaved, so machine load hits both alike.
fn dummy_summary(
    rt: &tokio::runtime::Runtime,
    path: &std::path::Path,
    stdin: &str,
    fencer: &LocalFencer,
) {
    let (mut direct, mut fenced) = (Vec::new(), Vec::new());
    for _ in 0..30 {
        let t = Instant::now();
        rt.block_on(direct_run(path, stdin));
        direct.push(t.elapsed());
        let t = Instant::now();
        rt.block_on(fencer.fence(FenceRequest::new(
            "n1".parse().unwrap(),
            FenceAction::Reboot,
            "bench@n0".parse().unwrap(),
        )))
        .unwrap();
        fenced.push(t.elapsed());
    }
    let (d, f) = (median(direct), median(fenced));
    eprintln!(
        "fence_dummy reboot, 30 interleaved runs each: direct median {d:?}, through the fencer median {f:?}, fencer overhead {:?}",
        f.saturating_sub(d)
    );
}

fn fence_dummy_benches(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state").display().to_string();
    let path = agent::resolve_agent("fence_dummy", &agent::agents_dir())
        .expect("fence-agents is installed (scripts/install-peers.sh)");
    let mut g = c.benchmark_group("fence_dummy");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(5));

    let stdin = format!("action=reboot\nstatus_file={state}\n");
    g.bench_function("direct", |b| {
        b.to_async(&rt).iter(|| direct_run(&path, &stdin));
    });

    let fencer = LocalFencer::new();
    let params: DeviceParams = [("status_file", state.as_str())].into_iter().collect();
    let dev = AgentDevice::new(
        "dummy".parse().unwrap(),
        &path,
        params,
        Targets::hosts(["n1".parse().unwrap()]),
    );
    rt.block_on(fencer.register_device(Arc::new(dev))).unwrap();
    dummy_summary(&rt, &path, &stdin, &fencer);
    g.bench_function("through_fencer", |b| {
        b.to_async(&rt).iter(|| async {
            let r = FenceRequest::new(
                "n1".parse().unwrap(),
                FenceAction::Reboot,
                "bench@n0".parse().unwrap(),
            );
            fencer.fence(r).await.unwrap();
        });
    });
    g.finish();
}

criterion_group!(benches, fencer_benches, fence_dummy_benches);
criterion_main!(benches);
