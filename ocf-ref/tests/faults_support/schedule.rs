//! The seeded fault schedule: every kind of fault once, in a seeded order, plus one more drawn
//! at random, each held for a few seconds and followed by a heal and a quiet spell.

/// How many kinds of [`Fault`] there are.
pub const KINDS: usize = 9;

use std::collections::BTreeSet;
use std::fmt;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// One fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The cluster splits in two: `side` against the rest, both directions cut.
    Partition {
        /// The nodes on one side (2 of 5: the other side has 3).
        side: Vec<u32>,
    },
    /// Directed links lose every packet, the reverse directions work.
    OneWay {
        /// `(from, to)` pairs.
        links: Vec<(u32, u32)>,
    },
    /// Everything `node` sends is lost; it still hears everyone.
    Mute {
        /// The node.
        node: u32,
    },
    /// Everything sent to `node` is lost; it still reaches everyone.
    Deaf {
        /// The node.
        node: u32,
    },
    /// `node`'s port on the bridge goes down and up every `toggle_ms`.
    Flap {
        /// The node.
        node: u32,
        /// Milliseconds between toggles.
        toggle_ms: u64,
    },
    /// Bursty loss on every link: every `period_ms` each directed link is cut, or not, afresh
    /// with probability `percent` %, drawn from `seed` (a cut at the route, not per packet:
    /// this kernel has no netem).
    Lossy {
        /// Chance that a link is cut in one period, in percent.
        percent: u32,
        /// Milliseconds between draws.
        period_ms: u64,
        /// Seed of the draws.
        seed: u64,
    },
    /// A slow, lossy network: every packet on every link is delayed `delay_ms` plus up to
    /// `jitter_ms` (so packets overtake each other) and lost with `loss_pct` % (the relay).
    Degraded {
        /// Loss in percent.
        loss_pct: u32,
        /// One-way delay (ms).
        delay_ms: u64,
        /// Extra random delay (ms).
        jitter_ms: u64,
    },
    /// `node`'s process is stopped (SIGSTOP) for the hold, then continued (SIGCONT).
    Pause {
        /// The node.
        node: u32,
    },
    /// `node`'s process is killed (SIGKILL) and, `down_ms` later, started again from the same
    /// config (a new process with a new incarnation).
    KillRestart {
        /// The node.
        node: u32,
        /// Milliseconds it stays down.
        down_ms: u64,
    },
}

impl Fault {
    /// The directed cuts this fault makes among `size` nodes (none for the faults that act on
    /// processes or ports).
    pub fn cuts(&self, size: u32) -> BTreeSet<(u32, u32)> {
        let all = 1..=size;
        match self {
            Self::Partition { side } => all
                .clone()
                .flat_map(|a| all.clone().map(move |b| (a, b)))
                .filter(|(a, b)| side.contains(a) != side.contains(b))
                .collect(),
            Self::OneWay { links } => links.iter().copied().collect(),
            Self::Mute { node } => all.filter(|p| p != node).map(|p| (*node, p)).collect(),
            Self::Deaf { node } => all.filter(|p| p != node).map(|p| (p, *node)).collect(),
            _ => BTreeSet::new(),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Partition { side } => write!(f, "partition {side:?} | rest"),
            Self::OneWay { links } => {
                let l: Vec<String> = links.iter().map(|(a, b)| format!("n{a}->n{b}")).collect();
                write!(f, "one-way cut {}", l.join(", "))
            }
            Self::Mute { node } => write!(f, "mute n{node}"),
            Self::Deaf { node } => write!(f, "deaf n{node}"),
            Self::Flap { node, toggle_ms } => write!(f, "flap n{node} every {toggle_ms} ms"),
            Self::Lossy {
                percent, period_ms, ..
            } => write!(
                f,
                "lossy links: each cut {percent}% of {period_ms} ms periods"
            ),
            Self::Degraded {
                loss_pct,
                delay_ms,
                jitter_ms,
            } => write!(
                f,
                "degraded network: {delay_ms}+0..{jitter_ms} ms delay, {loss_pct}% loss"
            ),
            Self::Pause { node } => write!(f, "pause n{node} (SIGSTOP)"),
            Self::KillRestart { node, down_ms } => {
                write!(f, "kill -9 n{node}, restart after {down_ms} ms")
            }
        }
    }
}

/// One step: the fault, how long it is held, and the quiet time after its heal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The fault.
    pub fault: Fault,
    /// Milliseconds from its start to the heal.
    pub hold_ms: u64,
    /// Milliseconds of calm after the heal, before the next step.
    pub quiet_ms: u64,
}

/// How long a paused process stays stopped.
pub const PAUSE_MS: u64 = 3000;

fn pick(rng: &mut StdRng, size: u32) -> u32 {
    rng.gen_range(1..=size)
}

fn draw(kind: usize, rng: &mut StdRng, size: u32) -> Fault {
    match kind {
        0 => {
            let mut ids: Vec<u32> = (1..=size).collect();
            ids.shuffle(rng);
            let mut side = ids[..2].to_vec();
            side.sort_unstable();
            Fault::Partition { side }
        }
        1 => {
            let mut links = BTreeSet::new();
            let count = rng.gen_range(1..=2);
            while links.len() < count {
                let from = pick(rng, size);
                let to = pick(rng, size);
                if from != to {
                    links.insert((from, to));
                }
            }
            Fault::OneWay {
                links: links.into_iter().collect(),
            }
        }
        2 => Fault::Mute {
            node: pick(rng, size),
        },
        3 => Fault::Deaf {
            node: pick(rng, size),
        },
        4 => Fault::Flap {
            node: pick(rng, size),
            toggle_ms: rng.gen_range(200..=900),
        },
        5 => Fault::Lossy {
            percent: rng.gen_range(10..=30),
            period_ms: rng.gen_range(100..=300),
            seed: rng.r#gen(),
        },
        6 => Fault::Pause {
            node: pick(rng, size),
        },
        7 => {
            let delay_ms = rng.gen_range(20..=150);
            Fault::Degraded {
                loss_pct: rng.gen_range(0..=15),
                delay_ms,
                jitter_ms: rng.gen_range(0..=delay_ms / 2),
            }
        }
        _ => Fault::KillRestart {
            node: pick(rng, size),
            down_ms: rng.gen_range(1500..=3500),
        },
    }
}

/// The plan for `seed`: the [`KINDS`] kinds in a seeded order plus one more that disrupts
/// the views (partition, mute, deaf, pause or crash) at the end. Each is
/// held 3 to 5 s (a pause exactly [`PAUSE_MS`], a kill its down time plus 1 s) and
/// followed by 2 to 3 s of quiet: about 63 s in all, at most 78.
pub fn plan(seed: u64, size: u32) -> Vec<Step> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut kinds: Vec<usize> = (0..KINDS).collect();
    kinds.shuffle(&mut rng);
    // The last step always changes the views (partition, mute, deaf, pause or crash), so
    // that the convergence after it measures a real recovery.
    let disruptive = [0, 2, 3, 6, 8];
    kinds.push(disruptive[rng.gen_range(0..disruptive.len())]);
    kinds
        .into_iter()
        .map(|kind| {
            let fault = draw(kind, &mut rng, size);
            let hold_ms = match &fault {
                Fault::Pause { .. } => PAUSE_MS,
                Fault::KillRestart { down_ms, .. } => down_ms + 1000,
                _ => rng.gen_range(3000..=5000),
            };
            Step {
                fault,
                hold_ms,
                quiet_ms: rng.gen_range(2000..=3000),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_one_plan_with_every_kind() {
        for seed in 0..50 {
            let p = plan(seed, 5);
            assert_eq!(p, plan(seed, 5), "replayable");
            assert_eq!(p.len(), KINDS + 1);
            let total: u64 = p.iter().map(|s| s.hold_ms + s.quiet_ms).sum();
            assert!((45_000..=78_000).contains(&total), "{total}");
            let names: BTreeSet<String> = p
                .iter()
                .map(|s| s.fault.to_string().split(' ').next().unwrap().to_string())
                .collect();
            assert_eq!(names.len(), KINDS, "{names:?}");
            let last = p.last().unwrap().fault.to_string();
            assert!(
                ["partition", "mute", "deaf", "pause", "kill"]
                    .iter()
                    .any(|k| last.starts_with(k)),
                "{last}"
            );
        }
    }

    #[test]
    fn cuts_are_directed() {
        assert_eq!(
            Fault::Mute { node: 2 }.cuts(3),
            BTreeSet::from([(2, 1), (2, 3)])
        );
        assert_eq!(
            Fault::Deaf { node: 2 }.cuts(3),
            BTreeSet::from([(1, 2), (3, 2)])
        );
        let p = Fault::Partition { side: vec![1, 2] }.cuts(5);
        assert_eq!(p.len(), 12);
        assert!(p.contains(&(1, 3)) && p.contains(&(3, 1)) && !p.contains(&(1, 2)));
    }
}
