//! Kill → Slurm shows the node DOWN: with ocf (the cluster fencer confirms the death, the
//! Slurm bridge sets it DOWN with ocf's reason) beside Slurm alone (`SlurmdTimeout=10`).
//!
//! Each sample starts its own 3 `ocf node` processes (spy fence agent), munged, slurmctld,
//! 3 slurmds and `ocf slurm bridge` in a temporary directory, kills n3 (its `ocf node` and
//! its slurmd, kill -9) and times until `scontrol` shows n3 DOWN with a reason starting
//! `ocf: `. Before criterion runs, one summary prints the split (kill → fence confirmed →
//! Slurm told) and one Slurm-alone figure (n2's slurmd killed, nothing else; ~20–30 s).
//! Goals (issue 16): at most 2 s at ocf's defaults, at most 100 ms from confirmed fence to
//! Slurm.
//!
//! Needs root, Slurm (slurmctld, slurmd, slurm-client, munge) and the `ocf` binary
//! (`cargo build --release -p ocf-ref --bin ocf`; or `OCF_BIN=...`).
//! Run: `cargo bench -p benches --bench slurm`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../../ocf-ref/tests/nodes_support/mod.rs"]
mod nodes_support;
#[path = "../../ocf-ref/tests/slurm_support/mod.rs"]
mod slurm_support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, SamplingMode};
use nodes_support::{Layout, Nodes};
use ocf_fencing::{FenceRecord, Fencer, HistoryFilter};
use slurm_support::{BridgeProc, Slurm};

const WAIT: Duration = Duration::from_secs(90);

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// What one kill measured.
struct Sample {
    kill_to_down: Duration,
    kill_to_fenced_ms: u64,
    fenced_to_slurm_ms: u64,
    slurm_alone: Option<Duration>,
}

/// One fresh cluster, one kill. With `slurm_alone`, also n2's slurmd is killed and its
/// DOWN by Slurm's own timeout awaited.
fn one_kill(rt: &tokio::runtime::Runtime, slurm_alone: bool) -> Sample {
    let mut nodes = Nodes::start(
        3,
        &Layout {
            with_device: vec![1, 2, 3],
            delay_s: 0,
            ..Layout::default()
        },
    );
    rt.block_on(nodes.wait_for_view(&[0, 1, 2]));
    let mut slurm = Slurm::start(&["n1", "n2", "n3"], "");
    let bridge = BridgeProc::start(
        &nodes.nodes[0].config,
        &slurm.conf,
        &nodes.dir.path().join("bridge.json"),
        &nodes.dir.path().join("bridge.log"),
    );
    bridge.wait_caught_up(WAIT);
    let killed = Instant::now();
    let killed_ms = now_ms();
    if slurm_alone {
        slurm.kill9_slurmd("n2");
    }
    nodes.nodes[2].kill9();
    slurm.kill9_slurmd("n3");
    slurm.wait_node("n3", "DOWN by ocf", WAIT, |s, r| {
        s.starts_with("DOWN") && r.is_some_and(|r| r.starts_with("ocf: "))
    });
    let kill_to_down = killed.elapsed();
    let told = bridge.wait_action("n3", "down", WAIT)["at_ms"]
        .as_u64()
        .unwrap();
    let record = rt
        .block_on(
            nodes.nodes[0]
                .fencer()
                .history(&HistoryFilter::all().target("n3".parse().unwrap())),
        )
        .unwrap()
        .into_iter()
        .find(FenceRecord::succeeded)
        .unwrap();
    let fenced = record.ended_ms.unwrap();
    let slurm_alone = slurm_alone.then(|| {
        slurm.wait_node("n2", "DOWN by Slurm", WAIT, |s, _| s.starts_with("DOWN"));
        killed.elapsed()
    });
    Sample {
        kill_to_down,
        kill_to_fenced_ms: fenced.saturating_sub(killed_ms),
        fenced_to_slurm_ms: told.saturating_sub(fenced),
        slurm_alone,
    }
}

fn summary(rt: &tokio::runtime::Runtime) {
    let s = one_kill(rt, true);
    println!(
        "slurm/kill_to_down summary: with ocf {} ms (kill -> fence confirmed {} ms, confirmed -> Slurm told {} ms); Slurm alone {} ms",
        s.kill_to_down.as_millis(),
        s.kill_to_fenced_ms,
        s.fenced_to_slurm_ms,
        s.slurm_alone.map_or(0, |d| d.as_millis())
    );
}

fn main() {
    if !std::path::Path::new("/usr/sbin/slurmctld").exists() {
        eprintln!("skipping: Slurm is not installed (scripts/install-peers.sh)");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    summary(&rt);
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("slurm");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(60));
    g.bench_function("kill_to_down_with_ocf", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| one_kill(&rt, false).kill_to_down).sum());
    });
    g.finish();
    c.final_summary();
}
