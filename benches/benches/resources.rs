//! Resource agent benchmarks, against the real agents:
//!
//! (a) `executor_vs_sh`: a monitor of ocf:heartbeat:Dummy through the executor against the
//!     same agent run directly (`sh Dummy monitor` with the same environment) in the same
//!     process; the printed ratio is executor / direct (goal ≤ 1.03).
//! (b) `recurring_1000`: 1,000 resources of the native Dummy with recurring monitors; the
//!     measured "time" is the process CPU time per completed operation.
//! (c) `tester`: `ocf ra test` against `ocf-tester` on ocf:heartbeat:Dummy, wall time.
//! (d) `cli_oneshot`: the whole `ocf` process, `ocf ra run ocf:heartbeat:Dummy monitor`, against
//!     `sh Dummy monitor` with the same environment, wall time per call; the printed ratio is
//!     ocf / direct from interleaved pairs (goal <= 1.3). Needs the release binary
//!     (`cargo build --release -p ocf-ref --bin ocf`); `OCF_BENCH_BIN` measures another build.
//!     The meta-data cache (`OCF_CACHE_DIR`, a temporary directory) is warm, as it is after
//!     the first call on a real machine.
//!
//! Keep runs short on a shared machine: `cargo bench -p benches --bench resources`.

// criterion_group! generates an undocumented function.
#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ocf_ref::resources::{AgentRegistry, ExecutorConfig, LocalExecutor, NativeDummy};
use ocf_resources::{Action, Executor, ExecutorAdmin, Operation, ResourceSpec};

const ROOT: &str = "/usr/lib/ocf";
const DUMMY: &str = "/usr/lib/ocf/resource.d/heartbeat/Dummy";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"))
}

/// The environment the executor gives Dummy's monitor, for the direct runs.
fn direct_monitor(state: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg(DUMMY)
        .arg("monitor")
        .env_clear()
        .env(
            "PATH",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
        )
        .env("OCF_ROOT", ROOT)
        .env("OCF_RA_VERSION_MAJOR", "1")
        .env("OCF_RA_VERSION_MINOR", "1")
        .env("OCF_RESOURCE_INSTANCE", "bench")
        .env("OCF_RESOURCE_TYPE", "Dummy")
        .env("OCF_RESOURCE_PROVIDER", "heartbeat")
        .env("OCF_RESKEY_state", state)
        .env("OCF_RESKEY_CRM_meta_timeout", "20000")
        .env("OCF_RESKEY_CRM_meta_interval", "0")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd
}

fn executor_vs_sh(c: &mut Criterion) {
    if !Path::new(DUMMY).exists() {
        eprintln!("skipping executor_vs_sh: {DUMMY} not installed");
        return;
    }
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let state = dir.path().join("bench.state").display().to_string();
    let exec = LocalExecutor::new(
        Arc::new(AgentRegistry::new(ROOT)),
        ExecutorConfig::default(),
    );
    let monitor = Operation::new(Action::Monitor, Duration::from_secs(20));
    rt.block_on(async {
        let spec = ResourceSpec::new(
            "bench",
            "ocf:heartbeat:Dummy"
                .parse()
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .param("state", state.clone());
        exec.register(spec).await.unwrap_or_else(|e| panic!("{e}"));
        // Warm the meta-data cache, and start it so monitor does the full check.
        exec.execute(
            "bench",
            Operation::new(Action::Start, Duration::from_secs(20)),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    });

    let mut group = c.benchmark_group("executor_vs_sh");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    group.bench_function("executor_monitor", |b| {
        b.to_async(&rt).iter(|| async {
            let r = exec
                .execute("bench", monitor.clone())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(r.succeeded());
        });
    });
    group.bench_function("direct_sh_monitor", |b| {
        b.to_async(&rt).iter(|| async {
            let out = direct_monitor(&state)
                .output()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(out.status.code(), Some(0));
        });
    });
    group.finish();

    // The ratio from interleaved pairs, so machine noise hits both sides alike.
    let pairs = 300;
    let (mut ex, mut sh) = (Vec::with_capacity(pairs), Vec::with_capacity(pairs));
    rt.block_on(async {
        for _ in 0..pairs {
            let t = Instant::now();
            let _ = exec.execute("bench", monitor.clone()).await;
            ex.push(t.elapsed());
            let t = Instant::now();
            let _ = direct_monitor(&state).output().await;
            sh.push(t.elapsed());
        }
    });
    let (ex_med, sh_med) = (median(&mut ex), median(&mut sh));
    let (ex_sum, sh_sum): (Duration, Duration) = (ex.iter().sum(), sh.iter().sum());
    println!(
        "executor_vs_sh: {pairs} interleaved monitors: executor median {ex_med:?}, direct sh median {sh_med:?}; \
         ratio of medians {:.3}, ratio of totals {:.3} (goal <= 1.03)",
        ex_med.as_secs_f64() / sh_med.as_secs_f64(),
        ex_sum.as_secs_f64() / sh_sum.as_secs_f64(),
    );
    rt.block_on(async {
        let _ = exec
            .execute(
                "bench",
                Operation::new(Action::Stop, Duration::from_secs(20)),
            )
            .await;
    });
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
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
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn recurring_1000(c: &mut Criterion) {
    let rt = runtime();
    let registry = AgentRegistry::new(ROOT);
    registry.add_native(Arc::new(NativeDummy::new()));
    let exec = LocalExecutor::new(
        Arc::new(registry),
        ExecutorConfig::default().history_limit(10),
    );
    let mut stream = rt.block_on(async {
        for i in 0..1000 {
            let name = format!("r{i}");
            exec.register(ResourceSpec::new(
                &name,
                "ocf:native:Dummy".parse().unwrap_or_else(|e| panic!("{e}")),
            ))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
            exec.execute(
                &name,
                Operation::new(Action::Start, Duration::from_secs(20)),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        }
        let stream = exec.subscribe().await.unwrap_or_else(|e| panic!("{e}"));
        for i in 0..1000 {
            exec.start_recurring(
                &format!("r{i}"),
                Operation::new(Action::Monitor, Duration::from_secs(20))
                    .every(Duration::from_millis(100)),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        }
        stream
    });
    let mut group = c.benchmark_group("recurring_1000");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    // "Time" here is CPU time of the whole process per completed recurring monitor.
    group.bench_function("cpu_per_monitor", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let cpu = cpu_time();
                let mut done = 0;
                while done < iters {
                    match stream.next_result().await {
                        Ok(Some(_)) => done += 1,
                        Ok(None) => break,
                        Err(_) => {} // lagged: the missed ones were still executed
                    }
                }
                cpu_time().saturating_sub(cpu)
            })
        });
    });
    group.finish();
    // A plain figure too: a few seconds at 10,000 monitors per second.
    let (ops, cpu, wall) = rt.block_on(async {
        let (cpu, wall) = (cpu_time(), Instant::now());
        let mut ops = 0u64;
        while wall.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = stream.next_result().await {
                ops += 1;
            }
        }
        (ops, cpu_time().saturating_sub(cpu), wall.elapsed())
    });
    println!(
        "recurring_1000: {ops} monitors in {wall:.2?} ({:.0}/s), process CPU {cpu:.2?}: {:.1} µs CPU per operation",
        ops as f64 / wall.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / ops.max(1) as f64
    );
}

fn ocf_binary() -> Option<PathBuf> {
    // target/<profile>/deps/resources-<hash> → target/<profile>/ocf
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("ocf");
    bin.exists().then_some(bin)
}

/// `sh Dummy monitor` with the environment `ocf ra run ... --instance bench` gives it.
fn direct_sh(action: &str, state: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg(DUMMY)
        .arg(action)
        .env_clear()
        .env(
            "PATH",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
        )
        .env("OCF_ROOT", ROOT)
        .env("OCF_RA_VERSION_MAJOR", "1")
        .env("OCF_RA_VERSION_MINOR", "1")
        .env("OCF_RESOURCE_INSTANCE", "bench")
        .env("OCF_RESOURCE_TYPE", "Dummy")
        .env("OCF_RESOURCE_PROVIDER", "heartbeat")
        .env("OCF_RESKEY_state", state)
        .env("OCF_RESKEY_CRM_meta_timeout", "20000")
        .env("OCF_RESKEY_CRM_meta_interval", "0")
        .stdin(std::process::Stdio::null());
    cmd
}

fn cli_oneshot(c: &mut Criterion) {
    let Some(ocf) = std::env::var_os("OCF_BENCH_BIN")
        .map(PathBuf::from)
        .or_else(ocf_binary)
    else {
        eprintln!(
            "skipping cli_oneshot: build the ocf binary first (cargo build --release -p ocf-ref --bin ocf)"
        );
        return;
    };
    if !Path::new(DUMMY).exists() {
        eprintln!("skipping cli_oneshot: {DUMMY} not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let cache = dir.path().join("cache");
    let state = dir.path().join("bench.state").display().to_string();
    let state_param = format!("state={state}");
    let through_ocf = || {
        let out = Command::new(&ocf)
            .args(["ra", "run", "ocf:heartbeat:Dummy", "monitor", "-p"])
            .arg(&state_param)
            .args(["--instance", "bench"])
            .env("OCF_ROOT", ROOT)
            .env("OCF_CACHE_DIR", &cache)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    };
    let direct = || {
        let out = direct_sh("monitor", &state)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    };
    let started = direct_sh("start", &state)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(started.status.success(), "{started:?}");
    through_ocf(); // warms the meta-data cache

    let mut group = c.benchmark_group("cli_oneshot");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(4));
    group.bench_function("ocf_ra_run_monitor", |b| b.iter(through_ocf));
    group.bench_function("direct_sh_monitor", |b| b.iter(direct));
    group.finish();

    let pairs = 200;
    let (mut o, mut d) = (Vec::with_capacity(pairs), Vec::with_capacity(pairs));
    for _ in 0..pairs {
        let t = Instant::now();
        through_ocf();
        o.push(t.elapsed());
        let t = Instant::now();
        direct();
        d.push(t.elapsed());
    }
    let (o_med, d_med) = (median(&mut o), median(&mut d));
    println!(
        "cli_oneshot: {pairs} interleaved monitors of Dummy: `{}` median {o_med:?}, direct sh median {d_med:?}; ratio of medians {:.3} (goal <= 1.3)",
        ocf.display(),
        o_med.as_secs_f64() / d_med.as_secs_f64(),
    );
    let _ = direct_sh("stop", &state).output();
}

fn tester(c: &mut Criterion) {
    let Some(ocf) = ocf_binary() else {
        eprintln!("skipping tester: build the ocf binary first (cargo build --release -p ocf-ref)");
        return;
    };
    if !Path::new("/usr/sbin/ocf-tester").exists() || !Path::new(DUMMY).exists() {
        eprintln!("skipping tester: ocf-tester or Dummy not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let state = format!("state={}", dir.path().join("t.state").display());
    let mut group = c.benchmark_group("tester");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("ocf_ra_test_dummy", |b| {
        b.iter(|| {
            let out = Command::new(&ocf)
                .args(["ra", "test", "ocf:heartbeat:Dummy", "-p", &state])
                .env("OCF_ROOT", ROOT)
                .output()
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
        });
    });
    group.bench_function("ocf_tester_dummy", |b| {
        b.iter(|| {
            let out = Command::new("/usr/sbin/ocf-tester")
                .args(["-n", "bench", "-o", &state, DUMMY])
                .env("OCF_ROOT", ROOT)
                .output()
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
        });
    });
    group.finish();
}

criterion_group!(benches, executor_vs_sh, recurring_1000, tester, cli_oneshot);
criterion_main!(benches);
