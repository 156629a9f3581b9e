//! Native agents: the [`ResourceAgent`] trait implemented in Rust, no process involved.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ocf_resources::metadata::{ActionSpec, Content, ContentType, Metadata, Parameter, Text};
use ocf_resources::{
    Action, ActionRequest, AgentId, AgentOutcome, ExitCode, ResourceAgent, ResourceError, Status,
};

/// The provider name of the agents in this module.
pub const NATIVE_PROVIDER: &str = "native";

/// A native twin of `ocf:heartbeat:Dummy`: it only remembers whether each instance runs.
///
/// State lives in memory, per instance name, unless the `state` parameter names a file (then
/// the file's existence is the state, as with the script Dummy, so it survives restarts). A
/// `delay` parameter (a time, e.g. `200ms`) makes every action take that long, for tests of
/// queues and timeouts: an action whose delay exceeds its timeout reports a timeout.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::time::Duration;
/// use ocf_resources::{Action, ActionRequest, ExitCode, ResourceAgent};
/// use ocf_ref::resources::NativeDummy;
/// let agent = NativeDummy::new();
/// let req = |a| ActionRequest::new(a, "web", Duration::from_secs(5));
/// assert_eq!(agent.execute(req(Action::Monitor)).await.unwrap().exit_code(), Some(ExitCode::NotRunning));
/// assert_eq!(agent.execute(req(Action::Start)).await.unwrap().exit_code(), Some(ExitCode::Success));
/// assert_eq!(agent.execute(req(Action::Monitor)).await.unwrap().exit_code(), Some(ExitCode::Success));
/// # });
/// ```
#[derive(Debug)]
pub struct NativeDummy {
    id: AgentId,
    metadata: Metadata,
    running: Mutex<HashMap<String, bool>>,
}

impl Default for NativeDummy {
    fn default() -> Self {
        Self::new()
    }
}

impl NativeDummy {
    /// A dummy with no running instances, id `ocf:native:Dummy`.
    pub fn new() -> Self {
        #[allow(clippy::expect_used)] // a constant, checked by the doc test above
        let id = AgentId::new(NATIVE_PROVIDER, "Dummy").expect("ocf:native:Dummy is a valid id");
        Self {
            id,
            metadata: dummy_metadata(),
            running: Mutex::new(HashMap::new()),
        }
    }

    fn state(request: &ActionRequest) -> State {
        match request.params.get("state").filter(|s| !s.is_empty()) {
            Some(path) => State::File(PathBuf::from(path)),
            None => State::Memory(request.instance.clone()),
        }
    }

    fn is_running(&self, state: &State) -> bool {
        match state {
            State::File(p) => p.exists(),
            State::Memory(name) => self
                .running
                .lock()
                .is_ok_and(|m| m.get(name).copied().unwrap_or(false)),
        }
    }

    fn set_running(&self, state: &State, running: bool) -> Result<(), String> {
        match state {
            State::File(p) if running => std::fs::write(p, b"running\n")
                .map_err(|e| format!("cannot write state file {}: {e}", p.display())),
            State::File(p) => match std::fs::remove_file(p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(format!("cannot remove state file {}: {e}", p.display()))
                }
                _ => Ok(()),
            },
            State::Memory(name) => {
                if let Ok(mut m) = self.running.lock() {
                    m.insert(name.clone(), running);
                }
                Ok(())
            }
        }
    }

    fn act(&self, request: &ActionRequest) -> (ExitCode, String, String) {
        let state = Self::state(request);
        let ok = |out: String| (ExitCode::Success, out, String::new());
        let change = |running| match self.set_running(&state, running) {
            Ok(()) => ok(String::new()),
            Err(e) => (ExitCode::ErrGeneric, String::new(), e),
        };
        match request.action {
            Action::MetaData => ok(self.metadata.to_xml()),
            // Nothing to check, notice or re-read: the state is all there is.
            Action::ValidateAll | Action::Notify | Action::Reload | Action::ReloadAgent => {
                ok(String::new())
            }
            Action::Start | Action::MigrateFrom => change(true),
            Action::Stop | Action::MigrateTo => change(false),
            Action::Monitor | Action::Status => {
                if self.is_running(&state) {
                    ok(String::new())
                } else {
                    (ExitCode::NotRunning, String::new(), String::new())
                }
            }
            _ => (
                ExitCode::ErrUnimplemented,
                String::new(),
                format!("{} does not implement {}", self.id, request.action),
            ),
        }
    }
}

enum State {
    File(PathBuf),
    Memory(String),
}

fn dummy_metadata() -> Metadata {
    let mut m = Metadata::new("Dummy");
    m.version = Some("1.0".to_owned());
    m.shortdesc = vec![Text::en("Native example agent")];
    m.longdesc = vec![Text::en(
        "Remembers whether each instance is running, in memory or in a state file.",
    )];
    m.parameters = vec![
        Parameter::new("state", Content::new(ContentType::String)).describe(
            "State file",
            "A file whose existence means running; memory when unset.",
        ),
        Parameter::new(
            "fake",
            Content::new(ContentType::String).with_default("dummy"),
        )
        .reloadable(true)
        .describe(
            "Fake attribute",
            "Changing it can be applied with reload-agent.",
        ),
        Parameter::new("delay", Content::new(ContentType::Time).with_default("0"))
            .describe("Delay", "How long every action takes (for tests)."),
    ];
    let t = Duration::from_secs(20);
    m.actions = vec![
        ActionSpec::new(Action::Start, t),
        ActionSpec::new(Action::Stop, t),
        ActionSpec::new(Action::Monitor, t)
            .with_interval(Duration::from_secs(10))
            .with_depth(0),
        ActionSpec::new(Action::Reload, t),
        ActionSpec::new(Action::ReloadAgent, t),
        ActionSpec::new(Action::MigrateTo, t),
        ActionSpec::new(Action::MigrateFrom, t),
        ActionSpec::new(Action::MetaData, Duration::from_secs(5)),
        ActionSpec::new(Action::ValidateAll, t),
    ];
    m
}

#[async_trait]
impl ResourceAgent for NativeDummy {
    fn id(&self) -> &AgentId {
        &self.id
    }

    async fn metadata(&self) -> Result<Metadata, ResourceError> {
        Ok(self.metadata.clone())
    }

    async fn execute(&self, request: ActionRequest) -> Result<AgentOutcome, ResourceError> {
        // The same rule as script agents: strict mode refuses start-like actions only.
        if request.validate && ocf_resources::validate::may_refuse(request.action) {
            ocf_resources::validate::validate(&self.metadata, &request.params)?;
        }
        let started = Instant::now();
        let delay = request
            .params
            .get("delay")
            .and_then(|d| ocf_resources::metadata::parse_duration(d))
            .unwrap_or(Duration::ZERO);
        if delay > request.timeout {
            tokio::time::sleep(request.timeout).await;
            return Ok(AgentOutcome::new(
                Status::TimedOut {
                    after: request.timeout,
                },
                started.elapsed(),
            ));
        }
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let (code, stdout, stderr) = self.act(&request);
        Ok(AgentOutcome::exited(code, started.elapsed()).with_output(stdout, stderr))
    }
}
