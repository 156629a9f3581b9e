//! Simulator property tests of the built-in membership protocol: thousands of seeded runs
//! with random fault schedules, each checked by the named invariant checkers in
//! `ocf_ref::membership::sim::check`. A failing seed is printed with its replay command.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ocf_ref::membership::sim::scenario::{self, replay_command};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

/// Seeded runs per test function; four functions run in parallel (10,000 runs in all).
const RUNS_PER_TEST: u32 = 2_500;

fn config() -> Config {
    Config {
        cases: std::env::var("OCF_SIM_RUNS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(RUNS_PER_TEST),
        max_shrink_iters: 0,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Config::default()
    }
}

fn check_seed(seed: u64) -> Result<(), TestCaseError> {
    match scenario::run_seed(seed) {
        Ok(_) => Ok(()),
        Err(v) => {
            eprintln!(
                "membership simulation failed: {v}\n  replay: {}",
                replay_command(seed)
            );
            Err(TestCaseError::fail(format!("seed {seed}: {v}")))
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn seeds_a(seed in any::<u64>()) { check_seed(seed & !3)?; }

    #[test]
    fn seeds_b(seed in any::<u64>()) { check_seed((seed & !3) | 1)?; }

    #[test]
    fn seeds_c(seed in any::<u64>()) { check_seed((seed & !3) | 2)?; }

    #[test]
    fn seeds_lossy(seed in any::<u64>()) { check_seed((seed & !3) | 3)?; }
}

/// Replays one seed: `OCF_SIM_SEED=<seed> cargo test -p ocf-ref --test membership_sim replay`.
#[test]
fn replay() {
    let Some(seed) = std::env::var("OCF_SIM_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    else {
        return;
    };
    let outcome = scenario::run_seed(seed);
    eprintln!("seed {seed}: {outcome:?}");
    assert!(outcome.is_ok(), "{}", replay_command(seed));
}

/// A fixed set of seeds that once exposed bugs, replayed on every run.
#[test]
fn regression_seeds() {
    for seed in [0u64, 1, 2, 3] {
        if let Err(v) = scenario::run_seed(seed) {
            panic!("seed {seed}: {v}\n  replay: {}", replay_command(seed));
        }
    }
}
