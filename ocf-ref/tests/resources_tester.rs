#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The conformance tester in the library: it passes a good agent and names what a bad one
//! gets wrong (idempotence, probe semantics, advertised timeouts).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ocf_ref::resources::NativeDummy;
use ocf_ref::resources::tester::{CheckStatus, Report, TestConfig, test_agent};
use ocf_resources::metadata::{ActionSpec, Metadata};
use ocf_resources::{
    Action, ActionRequest, AgentId, ExitCode, Outcome, ResourceAgent, ResourceError, Status,
};

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
struct Sloppy {
    id: AgentId,
    running: Mutex<bool>,
    /// Start on a started resource fails (not idempotent).
    strict_start: bool,
    /// Monitor of a stopped resource says "error" instead of 7.
    bad_probe: bool,
    /// Stop takes longer than its advertised 100 ms.
    slow_stop: bool,
}

impl Sloppy {
    fn new() -> Self {
        Self {
            id: "ocf:native:Sloppy".parse().unwrap(),
            running: Mutex::new(false),
            strict_start: false,
            bad_probe: false,
            slow_stop: false,
        }
    }
}

#[async_trait]
impl ResourceAgent for Sloppy {
    fn id(&self) -> &AgentId {
        &self.id
    }
    async fn metadata(&self) -> Result<Metadata, ResourceError> {
        let mut m = Metadata::new("Sloppy");
        let t = Duration::from_secs(5);
        m.actions = vec![
            ActionSpec::new(Action::Start, t),
            ActionSpec::new(Action::Stop, Duration::from_millis(100)),
            ActionSpec::new(Action::Monitor, t),
            ActionSpec::new(Action::MetaData, t),
        ];
        Ok(m)
    }
    async fn execute(&self, request: ActionRequest) -> Result<Outcome, ResourceError> {
        let started = Instant::now();
        let running = *self.running.lock().unwrap();
        let code = match request.action {
            Action::MetaData => {
                let xml = self.metadata().await?.to_xml();
                return Ok(Outcome::exited(ExitCode::Success, started.elapsed())
                    .with_output(xml, String::new()));
            }
            Action::Start if running && self.strict_start => ExitCode::ErrGeneric,
            Action::Start => {
                *self.running.lock().unwrap() = true;
                ExitCode::Success
            }
            Action::Stop => {
                if self.slow_stop {
                    tokio::time::sleep(request.timeout).await;
                    return Ok(Outcome::new(
                        Status::TimedOut {
                            after: request.timeout,
                        },
                        started.elapsed(),
                    ));
                }
                *self.running.lock().unwrap() = false;
                ExitCode::Success
            }
            Action::Monitor if running => ExitCode::Success,
            Action::Monitor if self.bad_probe => ExitCode::ErrGeneric,
            Action::Monitor => ExitCode::NotRunning,
            _ => ExitCode::ErrUnimplemented,
        };
        Ok(Outcome::exited(code, started.elapsed()))
    }
}

#[tokio::test]
async fn a_correct_minimal_agent_passes_with_skips() {
    let report = test_agent(&Sloppy::new(), &TestConfig::new("t"), |_| {}).await;
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
    let agent = Sloppy {
        strict_start: true,
        ..Sloppy::new()
    };
    let report = test_agent(&agent, &TestConfig::new("t"), |_| {}).await;
    assert!(!report.passed());
    assert_eq!(
        status(&report, "resources.start_idempotent"),
        Some(CheckStatus::Fail)
    );
    // The resource was still stopped at the end.
    assert!(!*agent.running.lock().unwrap());
}

#[tokio::test]
async fn a_probe_that_errors_fails_and_the_lifecycle_is_not_run() {
    let agent = Sloppy {
        bad_probe: true,
        ..Sloppy::new()
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
    let agent = Sloppy {
        slow_stop: true,
        ..Sloppy::new()
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
