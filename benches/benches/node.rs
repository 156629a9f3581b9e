//! The node as one door, measured:
//!
//! (a) `op_through_node`: a monitor of `ocf:heartbeat:Dummy` through a node daemon's socket
//!     (`DaemonExecutor`) against the same executor called in-process; interleaved pairs, the
//!     printed overhead is the difference of the medians (goal <= 1 ms).
//! (b) `recurring_1000_socket`: 1,000 native Dummy resources with recurring monitors, their
//!     results followed by a subscriber over the socket against one in-process; the measured
//!     "time" is this process's CPU time (the served daemon and the client both live here) per
//!     completed operation; the printed ratio is socket / in-process (goal <= 2).
//! (c) `demo_kill_to_restart`: `ocf demo` with real `ocf node` processes and in-process, three
//!     runs each, kill -> restarted in ms. Needs an `ocf` binary: `OCF_BENCH_BIN`, else
//!     `target/release/ocf`, else `target/debug/ocf`.
//!
//! `cargo bench -p benches --bench node`.

// criterion_group! generates an undocumented function.
#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ocf_core::NodeId;
use ocf_ref::membership::daemon::{self, NoMembership, ServeOptions, ServerHandle, local_socket};
use ocf_ref::resources::daemon_executor::DaemonExecutor;
use ocf_ref::resources::{AgentRegistry, ExecutorConfig, LocalExecutor, NativeDummy};
use ocf_resources::{Action, Executor, ExecutorAdmin, Operation, ResourceSpec, ResultStream};

const ROOT: &str = "/usr/lib/ocf";
const DUMMY: &str = "/usr/lib/ocf/resource.d/heartbeat/Dummy";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"))
}

/// `exec` served on a socket in `dir`.
async fn serve(exec: LocalExecutor, dir: &Path) -> (ServerHandle, DaemonExecutor) {
    let path = dir.join("node.sock");
    let claim = local_socket::claim(&path, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let options = ServeOptions::default()
        .with_executor(Arc::new(exec))
        .with_max_clients(4096);
    let server = daemon::serve_claimed(Arc::new(NoMembership(NodeId::new(1))), claim, options);
    (server, DaemonExecutor::new(path))
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn op_through_node(c: &mut Criterion) {
    if !Path::new(DUMMY).exists() {
        eprintln!("skipping op_through_node: {DUMMY} not installed");
        return;
    }
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let state = dir.path().join("bench.state").display().to_string();
    let local = LocalExecutor::new(
        Arc::new(AgentRegistry::new(ROOT)),
        ExecutorConfig::default(),
    );
    let monitor = Operation::new(Action::Monitor, Duration::from_secs(20));
    let (server, remote) = rt.block_on(async {
        let spec = ResourceSpec::new(
            "bench",
            "ocf:heartbeat:Dummy"
                .parse()
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .param("state", state.clone());
        local.register(spec).await.unwrap_or_else(|e| panic!("{e}"));
        local
            .execute(
                "bench",
                Operation::new(Action::Start, Duration::from_secs(20)),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        serve(local.clone(), dir.path()).await
    });
    let mut group = c.benchmark_group("op_through_node");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    group.bench_function("in_process", |b| {
        b.to_async(&rt).iter(|| async {
            let r = local
                .execute("bench", monitor.clone())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(r.succeeded());
        });
    });
    group.bench_function("through_socket", |b| {
        b.to_async(&rt).iter(|| async {
            let r = remote
                .execute("bench", monitor.clone())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(r.succeeded());
        });
    });
    group.finish();
    let pairs = 200;
    let (mut l, mut s) = (Vec::with_capacity(pairs), Vec::with_capacity(pairs));
    rt.block_on(async {
        for _ in 0..pairs {
            let t = Instant::now();
            let _ = local.execute("bench", monitor.clone()).await;
            l.push(t.elapsed());
            let t = Instant::now();
            let _ = remote.execute("bench", monitor.clone()).await;
            s.push(t.elapsed());
        }
        let _ = local
            .execute(
                "bench",
                Operation::new(Action::Stop, Duration::from_secs(20)),
            )
            .await;
        server.shutdown().await;
    });
    let (lm, sm) = (median(&mut l), median(&mut s));
    println!(
        "op_through_node: {pairs} interleaved Dummy monitors: in-process median {lm:?}, through \
         the socket median {sm:?}; overhead {:?} (goal <= 1 ms)",
        sm.saturating_sub(lm)
    );
}

/// User plus system CPU time of this process.
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct we pass it.
    #[allow(unsafe_code)]
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &raw mut u);
        u
    };
    let tv = |t: libc::timeval| {
        Duration::new(
            u64::try_from(t.tv_sec).unwrap_or(0),
            u32::try_from(t.tv_usec).unwrap_or(0) * 1000,
        )
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// 1,000 native Dummy resources started, with recurring monitors every 100 ms, registered
/// through `admin`; a stream of their results from `admin`.
async fn thousand(admin: &dyn ExecutorAdmin) -> Box<dyn ResultStream> {
    for i in 0..1000 {
        let name = format!("r{i}");
        admin
            .register(ResourceSpec::new(
                &name,
                "ocf:native:Dummy".parse().unwrap_or_else(|e| panic!("{e}")),
            ))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        admin
            .execute(
                &name,
                Operation::new(Action::Start, Duration::from_secs(20)),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let stream = admin.subscribe().await.unwrap_or_else(|e| panic!("{e}"));
    for i in 0..1000 {
        admin
            .start_recurring(
                &format!("r{i}"),
                Operation::new(Action::Monitor, Duration::from_secs(20))
                    .every(Duration::from_millis(100)),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    stream
}

/// CPU per operation that started within a `window` from now: the process's CPU time over
/// the window, divided by the results of the stream that started in it (results already
/// queued before it, which cost nothing now, are not counted).
async fn cpu_per_op(stream: &mut dyn ResultStream, window: Duration) -> (Duration, u64) {
    let unix_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    };
    let (t0, cpu0) = (unix_ms(), cpu_time());
    let end = Instant::now() + window;
    let mut counted = 0u64;
    let mut cpu = None;
    loop {
        if cpu.is_none() && Instant::now() >= end {
            cpu = Some(cpu_time().saturating_sub(cpu0));
        }
        match tokio::time::timeout(Duration::from_secs(5), stream.next_result()).await {
            Ok(Ok(Some(r))) if r.started_at_ms >= t0 => {
                if cpu.is_some() {
                    break; // a run that started after the window: the window is read
                }
                counted += 1;
            }
            Ok(Ok(Some(_)) | Err(_)) => {}
            Ok(Ok(None)) | Err(_) => break,
        }
    }
    let cpu = cpu.unwrap_or_else(|| cpu_time().saturating_sub(cpu0));
    (
        cpu / u32::try_from(counted.max(1)).unwrap_or(u32::MAX),
        counted,
    )
}

fn recurring_1000_socket(_c: &mut Criterion) {
    let rt = runtime();
    let make = || {
        let registry = AgentRegistry::new(ROOT);
        registry.add_native(Arc::new(NativeDummy::new()));
        LocalExecutor::new(
            Arc::new(registry),
            ExecutorConfig::default().history_limit(10),
        )
    };
    let window = Duration::from_secs(5);
    // Each alone: the in-process executor first, dropped (its monitors end), then the same
    // executor served on a socket and followed through it.
    let local_per_op = rt.block_on(async {
        let local = make();
        let mut stream = thousand(&local).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        cpu_per_op(stream.as_mut(), window).await
    });
    let socket_per_op = rt.block_on(async {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let (server, remote) = serve(make(), dir.path()).await;
        let mut stream = thousand(&remote).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let r = cpu_per_op(stream.as_mut(), window).await;
        drop(stream);
        server.shutdown().await;
        r
    });
    println!(
        "recurring_1000_socket: 1,000 native Dummy monitors every 100 ms, CPU per operation over \
         {window:?}: in-process {:?} ({} ops), served and followed over the socket {:?} ({} ops); \
         ratio {:.2} (goal <= 2)",
        local_per_op.0,
        local_per_op.1,
        socket_per_op.0,
        socket_per_op.1,
        socket_per_op.0.as_secs_f64() / local_per_op.0.as_secs_f64().max(1e-9)
    );
}

fn ocf_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("OCF_BENCH_BIN") {
        return Some(PathBuf::from(p));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    ["target/release/ocf", "target/debug/ocf"]
        .iter()
        .map(|p| root.join(p))
        .find(|p| p.is_file())
}

fn demo_kill_to_restart(_c: &mut Criterion) {
    let Some(bin) = ocf_bin() else {
        eprintln!("skipping demo_kill_to_restart: no ocf binary (build it or set OCF_BENCH_BIN)");
        return;
    };
    for in_process in [false, true] {
        let mut figures = Vec::new();
        for _ in 0..3 {
            let out = std::process::Command::new(&bin)
                .arg("demo")
                .arg("--json")
                .args(in_process.then_some("--in-process"))
                .output()
                .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
            let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            let ms = |event: &str| {
                report["timeline"]
                    .as_array()?
                    .iter()
                    .find(|e| e["event"] == event)?["ms"]
                    .as_u64()
            };
            if let (Some(k), Some(r)) = (ms("killed"), ms("restarted")) {
                figures.push(r - k);
            } else {
                eprintln!(
                    "demo_kill_to_restart: a run failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        println!(
            "demo_kill_to_restart ({}): kill -> restarted {figures:?} ms",
            if in_process {
                "in-process"
            } else {
                "real processes"
            }
        );
    }
}

criterion_group!(
    benches,
    op_through_node,
    recurring_1000_socket,
    demo_kill_to_restart
);
criterion_main!(benches);
