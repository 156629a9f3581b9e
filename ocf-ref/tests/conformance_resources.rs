#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The resources conformance suite on the reference agents: three real script agents (each
//! with its state file in a temporary directory) and the native Dummy; and the suite failing a
//! deliberately broken agent, to show it can.

#[path = "support/faulty_agent.rs"]
mod faulty_agent;

use faulty_agent::Faulty;

use ocf_conformance::CheckOutcome;
use ocf_conformance::resources::{self, Capabilities, Options};
use ocf_ref::conformance::TokioClock;
use ocf_ref::resources::{NativeDummy, ScriptAgent};

const SYSTEM_ROOT: &str = "/usr/lib/ocf";

async fn certify_script(id: &str, caps: Capabilities) -> ocf_conformance::Report {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let agent = ScriptAgent::new(SYSTEM_ROOT, id.parse().unwrap());
    let options = Options::new("conformance")
        .param("state", state.display().to_string())
        .capabilities(caps);
    let report = resources::run(&agent, &TokioClock::new(), &options).await;
    assert!(!state.exists(), "{id} left its state file behind");
    report
}

fn assert_pass(report: &ocf_conformance::Report, name: &str) {
    assert_eq!(
        report.outcome(name),
        Some(&CheckOutcome::Pass),
        "{name}:\n{report}"
    );
}

#[tokio::test]
async fn heartbeat_dummy_conforms() {
    let report = certify_script(
        "ocf:heartbeat:Dummy",
        Capabilities::none()
            .validate_all(true)
            .reload(true)
            .migrate(true),
    )
    .await;
    report.assert_passed();
    for name in [
        "resources.capabilities",
        "resources.start_idempotent",
        "resources.monitor_migrated",
        "resources.monitor_stopped",
        "resources.within_timeouts",
    ] {
        assert_pass(&report, name);
    }
}

#[tokio::test]
async fn pacemaker_dummy_conforms() {
    let report = certify_script(
        "ocf:pacemaker:Dummy",
        Capabilities::none()
            .validate_all(true)
            .reload(true)
            .reload_agent(true)
            .migrate(true),
    )
    .await;
    report.assert_passed();
    assert_pass(&report, "resources.reload_agent");
    assert_pass(&report, "resources.reload");
}

#[tokio::test]
async fn pacemaker_stateful_conforms_with_promotion() {
    let report = certify_script(
        "ocf:pacemaker:Stateful",
        Capabilities::none()
            .validate_all(true)
            .promotable(true)
            .reload_agent(true),
    )
    .await;
    report.assert_passed();
    assert_pass(&report, "resources.monitor_promoted");
    assert_pass(&report, "resources.monitor_demoted");
    // OCF 1.1 meta-data (which ocf-tester rejects) is fine here.
    assert_pass(&report, "resources.metadata_version");
}

#[tokio::test]
async fn native_dummy_conforms() {
    let agent = NativeDummy::new();
    let mut seen = Vec::new();
    let report = resources::run_with_progress(
        &agent,
        &TokioClock::new(),
        &Options::new("conformance"),
        &mut |c| seen.push(c.name),
    )
    .await;
    report.assert_passed();
    let names: Vec<&str> = report.checks.iter().map(|c| c.name).collect();
    assert_eq!(seen, names, "progress saw every check, in order");
    // No capabilities declared: taken from the meta-data, the comparison skipped.
    assert!(matches!(
        report.outcome("resources.capabilities"),
        Some(CheckOutcome::Skip(_))
    ));
    assert_pass(&report, "resources.monitor_migrated");
}

#[tokio::test]
async fn a_declared_capability_the_agent_lacks_fails() {
    let report = resources::run(
        &NativeDummy::new(),
        &TokioClock::new(),
        &Options::new("conformance").capabilities(Capabilities::none().promotable(true)),
    )
    .await;
    assert!(!report.passed());
    match report.outcome("resources.capabilities") {
        Some(CheckOutcome::Fail(why)) => {
            assert!(
                why.contains("promote/demote is declared but not advertised"),
                "{why}"
            );
        }
        other => panic!("{other:?}\n{report}"),
    }
}

/// An agent that breaks the action rules on purpose.
#[tokio::test]
async fn the_suite_fails_a_broken_agent_by_name() {
    let clock = TokioClock::new();
    let options = Options::new("t");
    let correct = resources::run(&Faulty::new(), &clock, &options).await;
    correct.assert_passed();

    let agent = Faulty {
        strict_start: true,
        strict_stop: true,
        ..Faulty::new()
    };
    let report = resources::run(&agent, &clock, &options).await;
    assert!(!report.passed());
    let failed: Vec<&str> = report.failures().map(|c| c.name).collect();
    assert_eq!(
        failed,
        ["resources.start_idempotent", "resources.stop_idempotent"],
        "{report}"
    );
    // The suite still stopped the resource it started.
    assert!(!agent.is_running());

    let slow = Faulty {
        slow_monitor: true,
        ..Faulty::new()
    };
    let report = resources::run(&slow, &clock, &options).await;
    match report.outcome("resources.within_timeouts") {
        Some(CheckOutcome::Fail(why)) => assert!(why.contains("1000 ms"), "{why}"),
        other => panic!("{other:?}\n{report}"),
    }
    match report.outcome("resources.probe_stopped") {
        Some(CheckOutcome::Fail(why)) => assert!(why.contains("advertised timeout"), "{why}"),
        other => panic!("{other:?}\n{report}"),
    }
}
