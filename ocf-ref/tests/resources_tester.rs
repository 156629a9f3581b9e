#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The conformance tester in the library: it passes a good agent and names what a bad one
//! gets wrong (idempotence, probe semantics, advertised timeouts).

#[path = "support/faulty_agent.rs"]
mod faulty_agent;

use faulty_agent::Faulty;

use ocf_ref::resources::NativeDummy;
use ocf_ref::resources::tester::{CheckStatus, Report, TestConfig, test_agent};

fn status(report: &Report, name: &str) -> Option<CheckStatus> {
    report
        .checks
        .iter()
        .find(|c| c.name == name)
        .map(|c| c.status)
}

#[tokio::test]
async fn the_native_dummy_passes() {
    let mut seen = 0;
    let report = test_agent(&NativeDummy::new(), &TestConfig::new("t"), |_| seen += 1).await;
    assert!(report.passed(), "{report}");
    assert_eq!(seen, report.checks.len(), "progress saw every check");
    assert_eq!(
        status(&report, "resources.monitor_migrated"),
        Some(CheckStatus::Pass)
    );
    assert_eq!(
        status(&report, "resources.reload_agent"),
        Some(CheckStatus::Pass)
    );
    // Not a script: the unknown-action probe is skipped, not failed.
    assert_eq!(
        status(&report, "lint.unknown_action"),
        Some(CheckStatus::Skip)
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["passed"], true);
    assert_eq!(json["agent"], "ocf:native:Dummy");
}

/// A native agent that gets things wrong on purpose.
#[tokio::test]
async fn a_correct_minimal_agent_passes_with_skips() {
    let report = test_agent(&Faulty::new(), &TestConfig::new("t"), |_| {}).await;
    assert!(report.passed(), "{report}");
    assert_eq!(
        status(&report, "resources.validate_all"),
        Some(CheckStatus::Skip)
    );
    assert_eq!(
        status(&report, "resources.promote"),
        Some(CheckStatus::Skip)
    );
}

#[tokio::test]
async fn a_non_idempotent_start_fails() {
    let agent = Faulty {
        strict_start: true,
        ..Faulty::new()
    };
    let report = test_agent(&agent, &TestConfig::new("t"), |_| {}).await;
    assert!(!report.passed());
    assert_eq!(
        status(&report, "resources.start_idempotent"),
        Some(CheckStatus::Fail)
    );
    // The resource was still stopped at the end.
    assert!(!agent.is_running());
}

#[tokio::test]
async fn a_probe_that_errors_fails_and_the_lifecycle_is_not_run() {
    let agent = Faulty {
        bad_probe: true,
        ..Faulty::new()
    };
    let report = test_agent(&agent, &TestConfig::new("t"), |_| {}).await;
    assert!(!report.passed());
    assert_eq!(
        status(&report, "resources.probe_stopped"),
        Some(CheckStatus::Fail)
    );
    // Nothing was started: the lifecycle is skipped, not run.
    assert_eq!(status(&report, "resources.start"), Some(CheckStatus::Skip));
}

#[tokio::test]
async fn an_action_past_its_advertised_timeout_fails() {
    let agent = Faulty {
        slow_stop: true,
        ..Faulty::new()
    };
    let report = test_agent(&agent, &TestConfig::new("t"), |_| {}).await;
    assert!(!report.passed());
    let stop = report
        .checks
        .iter()
        .find(|c| c.name == "resources.stop")
        .unwrap();
    assert_eq!(stop.status, CheckStatus::Fail);
    assert!(
        stop.detail.contains("advertised timeout of 100 ms"),
        "{}",
        stop.detail
    );
    assert_eq!(
        status(&report, "resources.within_timeouts"),
        Some(CheckStatus::Fail)
    );
}

#[tokio::test]
async fn unknown_parameters_fail_before_anything_runs() {
    let config = TestConfig::new("t").params([("nope".to_owned(), "1".to_owned())].into());
    let report = test_agent(&NativeDummy::new(), &config, |_| {}).await;
    assert!(!report.passed());
    assert_eq!(
        status(&report, "resources.params_valid"),
        Some(CheckStatus::Fail)
    );
    assert_eq!(status(&report, "resources.start"), None);
}
