#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The cluster fencer's protocol under seeded faults: partitions, crashes of the executing
//! node, restarts, message loss and duplication, failing devices. Every run is checked by
//! the named invariants of `FENCING.md`; a failure prints its seed and the replay command.

use ocf_ref::fencing::cluster::sim::{self, check};

fn runs() -> u64 {
    std::env::var("OCF_FENCE_SIM_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

fn verify(seed: u64) -> Result<sim::Trace, String> {
    let trace = sim::run(seed);
    for (name, checker) in check::ALL {
        if let Err(why) = checker(&trace) {
            return Err(format!(
                "seed {seed}: {name} broken: {why}\nfaults: {:#?}\nreplay: OCF_FENCE_SIM_SEED={seed} \
                 cargo test -p ocf-ref --test fencing_sim replay -- --ignored --nocapture",
                trace.faults
            ));
        }
    }
    Ok(trace)
}

#[test]
fn every_invariant_holds_across_seeded_faults() {
    let base: u64 = std::env::var("OCF_FENCE_SIM_BASE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    let n = runs();
    println!("fencing simulation: {n} seeds from {base}");
    let (mut actions, mut incidents, mut reruns) = (0usize, 0usize, 0usize);
    for k in 0..n {
        let seed = base.wrapping_add(k);
        match verify(seed) {
            Ok(t) => {
                actions += t.actions.len();
                if let Some(h) = t.histories.values().next() {
                    incidents += h.len();
                    reruns += h.iter().filter(|r| r.executions.len() > 1).count();
                }
            }
            Err(e) => panic!("{e}"),
        }
    }
    println!(
        "{n} runs: {incidents} incidents, {actions} device actions, {reruns} incidents with more than one attempt"
    );
    // The faults must actually be exercised: some incidents needed a second attempt.
    assert!(
        incidents > 0 && actions > 0,
        "the simulation fenced nothing"
    );
}

#[test]
#[ignore = "replays one seed: OCF_FENCE_SIM_SEED=<seed>"]
fn replay() {
    let seed: u64 = std::env::var("OCF_FENCE_SIM_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .expect("set OCF_FENCE_SIM_SEED");
    let t = sim::run(seed);
    for a in &t.actions {
        println!("action {a:?}");
    }
    if let Some(h) = t.histories.values().next() {
        for r in h {
            let execs: Vec<_> = r
                .executions
                .iter()
                .map(|e| (e.attempt, e.node.to_string(), e.outcome.clone()))
                .collect();
            println!(
                "record {} {} {:?} {:?} executions {execs:?} outcome {:?}",
                r.id, r.target, r.action, r.incident, r.outcome
            );
        }
    }
    match verify(seed) {
        Ok(t) => println!(
            "seed {seed} passes: {} actions, faults {:#?}",
            t.actions.len(),
            t.faults
        ),
        Err(e) => panic!("{e}"),
    }
}

/// Seeds that once broke an invariant, kept so they never do again:
/// - 15002207693346349160: every node crashed in turn, so the whole history was forgotten
///   (a documented limit the checker knows);
/// - 10830312841722307449: an authority closed an incident that a later primary, formed
///   without it, re-decided; requesters got two outcomes. Fixed by answering only from
///   entries every member of the view holds (the commit).
/// - 14175212615960137761: an attempt re-run by a restarted node, numbered like the lost one.
/// - 9568390313046735101: the next authority dropped a close every member had received but
///   not yet been told was committed; fixed by merging what members hold, newest epoch first.
/// - 3809468404359244855: an attempt reported after its incident had timed out was recorded
///   as the incident's success; an incident's end now ends its running attempt.
/// - 4818272305940300720: a primary whose members had all forgotten a fence (crashed since)
///   fenced again: the volatile-table limit, which the checker now names precisely.
/// - 14545034250761147194: two incidents for one lost node, one opened before a partition
///   (its attempt assigned to the node cut off with the dead one), one by the majority, which
///   fenced it; after the heal the cut-off node ran its attempt and shot the node again. An
///   attempt or assignment for a target another incident fenced since (not back yet) is now
///   not run, and the incident closes as answered by that one, with no second node-death.
#[test]
fn seeds_that_once_failed_pass() {
    for seed in [
        15_002_207_693_346_349_160,
        10_830_312_841_722_307_449,
        14_175_212_615_960_137_761,
        9_568_390_313_046_735_101,
        3_809_468_404_359_244_855,
        4_818_272_305_940_300_720,
        14_545_034_250_761_147_194,
    ] {
        if let Err(e) = verify(seed) {
            panic!("{e}");
        }
    }
}
