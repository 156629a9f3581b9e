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

#[tokio::test]
async fn local_executor_with_the_native_dummy_conforms() {
    use ocf_conformance::resources::executor::{self, ExecutorOptions};
    let harness = ocf_ref::conformance::LocalExecutorHarness::native_dummy();
    let report = executor::run(&harness, &ExecutorOptions::default()).await;
    report.assert_passed();
    // The stream checks ran, not skipped.
    for name in ["executor.stream_end", "executor.lag", "executor.recurring"] {
        assert_pass(&report, name);
    }
}

#[tokio::test]
async fn local_executor_with_the_heartbeat_dummy_script_conforms() {
    use ocf_conformance::resources::executor::{self, ExecutorOptions};
    let dir = tempfile::tempdir().unwrap();
    let harness = ocf_ref::conformance::LocalExecutorHarness::script(
        SYSTEM_ROOT,
        "ocf:heartbeat:Dummy".parse().unwrap(),
        dir.path(),
    );
    let report = executor::run(&harness, &ExecutorOptions::default()).await;
    report.assert_passed();
    assert_pass(&report, "executor.lag");
    assert!(
        !dir.path().join("conf-exec").exists(),
        "the suite left the resource started"
    );
}

/// An executor whose result streams break both promises: they end with an error instead of
/// `Ok(None)`, and end instead of going on after a lag.
struct BrokenStreams(ocf_ref::resources::LocalExecutor);

struct BrokenStream(Box<dyn ocf_resources::ResultStream>);

#[async_trait::async_trait]
impl ocf_resources::ResultStream for BrokenStream {
    async fn next_result(
        &mut self,
    ) -> Result<Option<ocf_resources::OperationResult>, ocf_resources::ResourceError> {
        match self.0.next_result().await {
            Ok(None) => Err(ocf_resources::ResourceError::Closed {
                what: "executor".into(),
            }),
            Err(ocf_resources::ResourceError::Lagged { .. }) => Ok(None),
            other => other,
        }
    }
}

#[async_trait::async_trait]
impl ocf_resources::Executor for BrokenStreams {
    async fn execute(
        &self,
        resource: &str,
        operation: ocf_resources::Operation,
    ) -> Result<ocf_resources::OperationResult, ocf_resources::ResourceError> {
        self.0.execute(resource, operation).await
    }
    async fn start_recurring(
        &self,
        resource: &str,
        operation: ocf_resources::Operation,
    ) -> Result<ocf_resources::RecurringId, ocf_resources::ResourceError> {
        self.0.start_recurring(resource, operation).await
    }
    async fn cancel_recurring(
        &self,
        resource: &str,
        id: ocf_resources::RecurringId,
    ) -> Result<(), ocf_resources::ResourceError> {
        self.0.cancel_recurring(resource, id).await
    }
    async fn history(
        &self,
        resource: &str,
    ) -> Result<Vec<ocf_resources::OperationResult>, ocf_resources::ResourceError> {
        self.0.history(resource).await
    }
    async fn subscribe(
        &self,
    ) -> Result<Box<dyn ocf_resources::ResultStream>, ocf_resources::ResourceError> {
        Ok(Box::new(BrokenStream(self.0.subscribe().await?)))
    }
}

#[async_trait::async_trait]
impl ocf_resources::ExecutorAdmin for BrokenStreams {
    async fn register(
        &self,
        resource: ocf_resources::ResourceSpec,
    ) -> Result<(), ocf_resources::ResourceError> {
        self.0.register(resource).await
    }
    async fn unregister(&self, name: &str) -> Result<(), ocf_resources::ResourceError> {
        self.0.unregister(name).await
    }
    async fn resources(
        &self,
    ) -> Result<Vec<ocf_resources::ResourceSpec>, ocf_resources::ResourceError> {
        self.0.resources().await
    }
}

struct BrokenHarness;

#[async_trait::async_trait]
impl ocf_conformance::resources::executor::ExecutorHarness for BrokenHarness {
    fn implementation(&self) -> String {
        "an executor with broken streams".into()
    }
    fn clock(&self) -> std::sync::Arc<dyn ocf_conformance::Clock> {
        std::sync::Arc::new(TokioClock::new())
    }
    async fn executor(&self) -> Result<std::sync::Arc<dyn ocf_resources::ExecutorAdmin>, String> {
        let registry = ocf_ref::resources::AgentRegistry::new(SYSTEM_ROOT);
        registry.add_native(std::sync::Arc::new(NativeDummy::new()));
        let config = ocf_ref::resources::ExecutorConfig::default().subscriber_buffer(4);
        Ok(std::sync::Arc::new(BrokenStreams(
            ocf_ref::resources::LocalExecutor::new(std::sync::Arc::new(registry), config),
        )))
    }
    fn resource(&self, name: &str) -> ocf_resources::ResourceSpec {
        ocf_resources::ResourceSpec::new(name, "ocf:native:Dummy".parse().unwrap())
    }
    fn subscriber_buffer(&self) -> Option<usize> {
        Some(4)
    }
}

#[tokio::test]
async fn the_executor_suite_fails_streams_that_end_with_an_error_or_stop_after_a_lag() {
    use ocf_conformance::resources::executor::{self, ExecutorOptions};
    let report = executor::run(&BrokenHarness, &ExecutorOptions::default()).await;
    let failed: Vec<_> = report.failures().map(|c| c.name).collect();
    assert_eq!(failed, ["executor.stream_end", "executor.lag"], "{report}");
}
