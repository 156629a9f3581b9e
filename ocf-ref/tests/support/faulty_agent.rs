//! A native agent that breaks the OCF action rules on request, shared by the tests of the
//! resources conformance suite and of `ocf ra test`. With every fault off it is correct.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ocf_resources::metadata::{ActionSpec, Metadata};
use ocf_resources::{
    Action, ActionRequest, AgentId, AgentOutcome, ExitCode, ResourceAgent, ResourceError, Status,
};

/// The agent; set the faults with struct update syntax over [`Faulty::new`].
pub struct Faulty {
    pub id: AgentId,
    pub running: Mutex<bool>,
    /// Start of a started resource fails (not idempotent).
    pub strict_start: bool,
    /// Stop of a stopped resource fails (not idempotent).
    pub strict_stop: bool,
    /// Monitor of a stopped resource says "error" instead of 7.
    pub bad_probe: bool,
    /// Monitor takes 3 s against an advertised 1 s, and says so honestly.
    pub slow_monitor: bool,
    /// Stop runs past its advertised 100 ms and times out.
    pub slow_stop: bool,
}

impl Faulty {
    /// A correct agent called `ocf:test:Faulty`.
    pub fn new() -> Self {
        Self {
            id: "ocf:test:Faulty".parse().unwrap(),
            running: Mutex::new(false),
            strict_start: false,
            strict_stop: false,
            bad_probe: false,
            slow_monitor: false,
            slow_stop: false,
        }
    }

    /// Whether the resource is running now.
    pub fn is_running(&self) -> bool {
        *self.running.lock().unwrap()
    }
}

#[async_trait]
impl ResourceAgent for Faulty {
    fn id(&self) -> &AgentId {
        &self.id
    }

    async fn metadata(&self) -> Result<Metadata, ResourceError> {
        let mut m = Metadata::new("Faulty");
        let t = Duration::from_secs(5);
        m.actions = vec![
            ActionSpec::new(Action::Start, t),
            ActionSpec::new(Action::Stop, Duration::from_millis(100)),
            ActionSpec::new(Action::Monitor, Duration::from_secs(1)),
            ActionSpec::new(Action::MetaData, t),
        ];
        Ok(m)
    }

    async fn execute(&self, request: ActionRequest) -> Result<AgentOutcome, ResourceError> {
        let started = Instant::now();
        let running = self.is_running();
        let code = match request.action {
            Action::MetaData => {
                let xml = self.metadata().await?.to_xml();
                return Ok(AgentOutcome::exited(ExitCode::Success, started.elapsed())
                    .with_output(xml, String::new()));
            }
            Action::Start if running && self.strict_start => ExitCode::ErrGeneric,
            Action::Stop if !running && self.strict_stop => ExitCode::ErrGeneric,
            Action::Stop if self.slow_stop => {
                tokio::time::sleep(request.timeout).await;
                let after = request.timeout;
                return Ok(AgentOutcome::new(
                    Status::TimedOut { after },
                    started.elapsed(),
                ));
            }
            Action::Start | Action::Stop => {
                *self.running.lock().unwrap() = request.action == Action::Start;
                ExitCode::Success
            }
            Action::Monitor => {
                let code = match (running, self.bad_probe) {
                    (true, _) => ExitCode::Success,
                    (false, true) => ExitCode::ErrGeneric,
                    (false, false) => ExitCode::NotRunning,
                };
                if self.slow_monitor {
                    // Reports the duration it took, as a process runner would measure it.
                    return Ok(AgentOutcome::exited(code, Duration::from_secs(3)));
                }
                code
            }
            _ => ExitCode::ErrUnimplemented,
        };
        Ok(AgentOutcome::exited(code, started.elapsed()))
    }
}
