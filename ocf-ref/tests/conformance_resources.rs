#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The resources conformance suite on the reference agents: three real script agents (each
//! with its state file in a temporary directory) and the native Dummy; and the suite failing a
//! deliberately broken agent, to show it can.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ocf_conformance::CheckOutcome;
use ocf_conformance::resources::{self, Capabilities, Options};
use ocf_ref::conformance::TokioClock;
use ocf_ref::resources::{NativeDummy, ScriptAgent};
use ocf_resources::metadata::{ActionSpec, Metadata};
use ocf_resources::{
    Action, ActionRequest, AgentId, ExitCode, Outcome, ResourceAgent, ResourceError,
};

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
struct Broken {
    id: AgentId,
    running: Mutex<bool>,
    /// Start of a started resource fails.
    strict_start: bool,
    /// Stop of a stopped resource fails.
    strict_stop: bool,
    /// Monitor takes 3 s against an advertised 1 s, but says so honestly.
    slow_monitor: bool,
}

impl Broken {
    fn new() -> Self {
        Self {
            id: "ocf:test:Broken".parse().unwrap(),
            running: Mutex::new(false),
            strict_start: false,
            strict_stop: false,
            slow_monitor: false,
        }
    }
}

#[async_trait]
impl ResourceAgent for Broken {
    fn id(&self) -> &AgentId {
        &self.id
    }
    async fn metadata(&self) -> Result<Metadata, ResourceError> {
        let mut m = Metadata::new("Broken");
        m.api_version = Some("1.1".into());
        let t = Duration::from_secs(5);
        m.actions = vec![
            ActionSpec::new(Action::Start, t),
            ActionSpec::new(Action::Stop, t),
            ActionSpec::new(Action::Monitor, Duration::from_secs(1)),
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
            Action::Stop if !running && self.strict_stop => ExitCode::ErrGeneric,
            Action::Start | Action::Stop => {
                *self.running.lock().unwrap() = request.action == Action::Start;
                ExitCode::Success
            }
            Action::Monitor => {
                if self.slow_monitor {
                    // Reports the duration it took, as a process runner would measure it.
                    let code = if running {
                        ExitCode::Success
                    } else {
                        ExitCode::NotRunning
                    };
                    return Ok(Outcome::exited(code, Duration::from_secs(3)));
                }
                if running {
                    ExitCode::Success
                } else {
                    ExitCode::NotRunning
                }
            }
            _ => ExitCode::ErrUnimplemented,
        };
        Ok(Outcome::exited(code, started.elapsed()))
    }
}

#[tokio::test]
async fn the_suite_fails_a_broken_agent_by_name() {
    let clock = TokioClock::new();
    let options = Options::new("t");
    let correct = resources::run(&Broken::new(), &clock, &options).await;
    correct.assert_passed();

    let agent = Broken {
        strict_start: true,
        strict_stop: true,
        ..Broken::new()
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
    assert!(!*agent.running.lock().unwrap());

    let slow = Broken {
        slow_monitor: true,
        ..Broken::new()
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
