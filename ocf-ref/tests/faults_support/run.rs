//! Carries out a fault schedule on a running [`Cluster`], printing each fault as it starts and
//! heals, and keeps the timeline so that a violation can be traced to the fault it came in.

use std::collections::BTreeSet;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::cluster::Cluster;
use super::now_us;
use super::relay::LinkParams;
use super::schedule::{Fault, Step};

/// One fault as it happened.
#[derive(Debug, Clone)]
pub struct Span {
    /// What it was.
    pub label: String,
    /// When it started (µs since the epoch).
    pub from_us: u64,
    /// When the fault was undone: the routes and ports healed, the paused process continued,
    /// or the killed node started again (its network was never touched).
    pub restored_us: u64,
    /// When the step ended (everything healed).
    pub healed_us: u64,
}

/// The timeline of a run, for the report.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// Time zero (µs since the epoch): when the cluster started.
    pub t0_us: u64,
    /// The faults, in order.
    pub spans: Vec<Span>,
}

impl Timeline {
    /// `t` as seconds since time zero, for humans.
    pub fn rel(&self, t_us: u64) -> String {
        format!("t+{:.3}s", (t_us as f64 - self.t0_us as f64) / 1e6)
    }

    /// The index of the step whose fault was in force at `t_us`, or of the last one healed
    /// before it (its aftermath); `None` before the first fault.
    pub fn step_at(&self, t_us: u64) -> Option<usize> {
        self.spans.iter().rposition(|s| s.from_us <= t_us)
    }

    /// [`Timeline::step_at`] in words.
    pub fn blame(&self, t_us: u64) -> String {
        match self.step_at(t_us).map(|i| &self.spans[i]) {
            Some(s) if t_us <= s.healed_us => format!("during \"{}\"", s.label),
            Some(s) => format!(
                "{:.1} s after healing \"{}\"",
                (t_us - s.healed_us) as f64 / 1e6,
                s.label
            ),
            None => "before the first fault".into(),
        }
    }
}

fn log(timeline: &Timeline, what: &str) {
    eprintln!("  {} {what}", timeline.rel(now_us()));
}

/// Runs `step` on `cluster` (of `size` nodes): start the fault, hold it, heal everything.
/// Returns the span; the quiet time after the heal is the caller's.
pub fn apply(cluster: &mut Cluster, size: u32, step: &Step, timeline: &Timeline) -> Span {
    let from_us = now_us();
    let label = step.fault.to_string();
    log(timeline, &format!("fault: {label} for {} ms", step.hold_ms));
    let hold = Duration::from_millis(step.hold_ms);
    let mut restored_us = None;
    match &step.fault {
        Fault::Partition { .. }
        | Fault::OneWay { .. }
        | Fault::Mute { .. }
        | Fault::Deaf { .. } => {
            cluster.net().set_cuts(&step.fault.cuts(size));
            thread::sleep(hold);
        }
        Fault::Flap { node, toggle_ms } => {
            let end = Instant::now() + hold;
            let mut up = false;
            while Instant::now() < end {
                cluster.net().set_port(*node, up);
                up = !up;
                thread::sleep(
                    Duration::from_millis(*toggle_ms)
                        .min(end.saturating_duration_since(Instant::now())),
                );
            }
        }
        Fault::Lossy {
            percent,
            period_ms,
            seed,
        } => {
            let mut rng = StdRng::seed_from_u64(*seed);
            let end = Instant::now() + hold;
            while Instant::now() < end {
                let cuts: BTreeSet<(u32, u32)> = (1..=size)
                    .flat_map(|a| (1..=size).map(move |b| (a, b)))
                    .filter(|(a, b)| a != b && rng.gen_range(0..100) < *percent)
                    .collect();
                cluster.net().set_cuts(&cuts);
                thread::sleep(
                    Duration::from_millis(*period_ms)
                        .min(end.saturating_duration_since(Instant::now())),
                );
            }
        }
        Fault::Degraded {
            loss_pct,
            delay_ms,
            jitter_ms,
        } => {
            let p = LinkParams {
                loss_pct: *loss_pct,
                delay_ms: *delay_ms,
                jitter_ms: *jitter_ms,
            };
            let links = (1..=size)
                .flat_map(|a| (1..=size).map(move |b| (a, b)))
                .filter(|(a, b)| a != b)
                .map(|l| (l, p))
                .collect();
            cluster.relay().set(links);
            thread::sleep(hold);
        }
        Fault::Pause { node } => {
            cluster.signal(*node, Signal::SIGSTOP);
            thread::sleep(hold);
            cluster.signal(*node, Signal::SIGCONT);
            restored_us = Some(now_us());
        }
        Fault::KillRestart { node, down_ms } => {
            cluster.kill(*node);
            thread::sleep(Duration::from_millis(*down_ms));
            log(timeline, &format!("restart n{node}"));
            restored_us = Some(now_us());
            cluster.start_node(*node);
            thread::sleep(hold.saturating_sub(Duration::from_millis(*down_ms)));
        }
    }
    cluster.heal();
    let healed_us = now_us();
    log(timeline, "heal");
    Span {
        label,
        from_us,
        restored_us: restored_us.unwrap_or(healed_us),
        healed_us,
    }
}
