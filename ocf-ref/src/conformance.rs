//! What the reference implementation needs to run the `ocf-conformance` suites: a [`Clock`]
//! on tokio's timer, and the executor suite's harness for [`LocalExecutor`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ocf_conformance::Clock;
use ocf_conformance::resources::executor::ExecutorHarness;
use ocf_resources::{AgentId, ExecutorAdmin, ResourceAgent, ResourceSpec};

use crate::resources::{AgentRegistry, ExecutorConfig, LocalExecutor, NativeDummy};

/// The suites' clock on tokio: `sleep` is `tokio::time::sleep`, `now` the time since creation.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    started: tokio::time::Instant,
}

impl TokioClock {
    /// A clock whose `now` counts from this moment.
    pub fn new() -> Self {
        Self {
            started: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Clock for TokioClock {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }

    fn now(&self) -> Option<Duration> {
        Some(self.started.elapsed())
    }
}

/// The executor suite's harness for [`LocalExecutor`]: fresh executors over the agents under
/// an OCF root (and the native Dummy), each resource running one agent.
///
/// ```no_run
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use ocf_conformance::resources::executor::{self, ExecutorOptions};
/// use ocf_ref::conformance::LocalExecutorHarness;
/// let harness = LocalExecutorHarness::native_dummy();
/// executor::run(&harness, &ExecutorOptions::default()).await.assert_passed();
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct LocalExecutorHarness {
    root: PathBuf,
    agent: AgentId,
    state_dir: Option<PathBuf>,
    config: ExecutorConfig,
}

impl LocalExecutorHarness {
    /// Resources of the native `ocf:native:Dummy`, with a small subscriber buffer (8).
    pub fn native_dummy() -> Self {
        Self {
            root: crate::resources::ocf_root(),
            agent: NativeDummy::new().id().clone(),
            state_dir: None,
            config: ExecutorConfig::default().subscriber_buffer(8),
        }
    }

    /// Resources of the script agent `agent` under `root`; each gets the parameter
    /// `state=<state_dir>/<resource name>` (as `ocf:heartbeat:Dummy` takes it).
    pub fn script(root: impl Into<PathBuf>, agent: AgentId, state_dir: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            agent,
            state_dir: Some(state_dir.into()),
            config: ExecutorConfig::default().subscriber_buffer(8),
        }
    }
}

#[async_trait]
impl ExecutorHarness for LocalExecutorHarness {
    fn implementation(&self) -> String {
        format!("ocf_ref LocalExecutor running {}", self.agent)
    }

    fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(TokioClock::new())
    }

    async fn executor(&self) -> Result<Arc<dyn ExecutorAdmin>, String> {
        let registry = AgentRegistry::new(&self.root);
        registry.add_native(Arc::new(NativeDummy::new()));
        Ok(Arc::new(LocalExecutor::new(
            Arc::new(registry),
            self.config,
        )))
    }

    fn resource(&self, name: &str) -> ResourceSpec {
        let spec = ResourceSpec::new(name, self.agent.clone());
        match &self.state_dir {
            Some(dir) => spec.param("state", dir.join(name).display().to_string()),
            None => spec,
        }
    }

    fn subscriber_buffer(&self) -> Option<usize> {
        Some(self.config.subscriber_buffer)
    }
}
