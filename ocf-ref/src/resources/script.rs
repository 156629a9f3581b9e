//! Script agents: the executables under `$OCF_ROOT/resource.d/<provider>/<type>`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use ocf_resources::env::EnvBuilder;
use ocf_resources::{
    Action, ActionRequest, AgentId, ExitCode, Metadata, Outcome, ResourceAgent, ResourceError,
    Status,
};
use tokio::sync::OnceCell;

use crate::process::{self, ProcessSpec, SpawnError, Termination};
use crate::resources::directory::agent_path;

/// How long `meta-data` may take when the agent is asked for it to validate parameters.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(30);

/// Variables passed through from our environment; everything else the agent sees is OCF's.
/// A clean environment keeps a caller's stray `OCF_RESKEY_*` from reaching the agent.
const PASS_THROUGH: [&str; 6] = ["PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "HOME"];

/// The `PATH` agents get when we have none.
const DEFAULT_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// An OCF agent that is an executable file.
///
/// Every run is a child in its own process group, with the exact OCF 1.1 environment, stopped
/// with `SIGTERM` then `SIGKILL` to the whole group at its timeout, its output captured up to
/// a bound. Parameters are validated against the agent's meta-data (read once, then cached)
/// unless the request opts out.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use ocf_resources::{Action, ActionRequest, ResourceAgent};
/// use ocf_ref::resources::ScriptAgent;
/// let agent = ScriptAgent::new("/usr/lib/ocf", "ocf:heartbeat:Dummy".parse()?);
/// let out = agent
///     .execute(ActionRequest::new(Action::Monitor, "web", Duration::from_secs(20)).param("state", "/tmp/web.state"))
///     .await?;
/// println!("{}", out.summary());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ScriptAgent {
    id: AgentId,
    root: PathBuf,
    path: PathBuf,
    output_limit: usize,
    kill_grace: Duration,
    metadata: OnceCell<Metadata>,
}

impl ScriptAgent {
    /// The agent `id` under the OCF root `root`.
    pub fn new(root: impl Into<PathBuf>, id: AgentId) -> Self {
        let root = root.into();
        let path = agent_path(&root, &id);
        Self {
            id,
            root,
            path,
            output_limit: process::DEFAULT_OUTPUT_LIMIT,
            kill_grace: process::DEFAULT_KILL_GRACE,
            metadata: OnceCell::new(),
        }
    }

    /// The agent `id` under `$OCF_ROOT` (default `/usr/lib/ocf`).
    pub fn from_env(id: AgentId) -> Self {
        Self::new(super::ocf_root(), id)
    }

    /// Sets the bound on captured bytes per stream.
    #[must_use]
    pub fn with_output_limit(mut self, bytes: usize) -> Self {
        self.output_limit = bytes;
        self
    }

    /// Sets the time between `SIGTERM` and `SIGKILL` on timeout.
    #[must_use]
    pub fn with_kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }

    /// The executable's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The OCF root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Runs `meta-data` and returns its raw output, whatever it is (for showing bad meta-data).
    pub async fn metadata_raw(&self) -> Result<Outcome, ResourceError> {
        self.run(&ActionRequest::new(
            Action::MetaData,
            self.id.kind(),
            METADATA_TIMEOUT,
        ))
        .await
    }

    /// Runs the action without validating parameters.
    pub async fn run(&self, request: &ActionRequest) -> Result<Outcome, ResourceError> {
        let path_text = self.path.display().to_string();
        if !self.path.exists() {
            return Ok(Outcome::new(
                Status::NotInstalled { path: path_text },
                Duration::ZERO,
            ));
        }
        let mut spec = ProcessSpec::new(&self.path, request.timeout).arg(request.action.as_str());
        spec.env_clear = true;
        for name in PASS_THROUGH {
            if let Some(v) = std::env::var_os(name) {
                spec.env.push((name.into(), v));
            } else if name == "PATH" {
                spec.env.push((name.into(), DEFAULT_PATH.into()));
            }
        }
        let mut env = EnvBuilder::new(self.root.to_string_lossy(), &self.id, &request.instance)
            .params(&request.params)
            .metas(&request.meta)
            .timeout(request.timeout)
            .interval(request.interval)
            .trace(request.trace);
        if let Some(level) = request.check_level {
            env = env.check_level(level);
        }
        if let Some(n) = &request.notify {
            env = env.notify(n.clone());
        }
        spec.env.extend(
            env.build()
                .into_iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(v))),
        );
        spec.output_limit = self.output_limit;
        spec.kill_grace = self.kill_grace;
        // Observing actions must leave nothing behind; a start may leave its daemon.
        spec.reap_group_on_exit = request.action.is_read_only();
        tracing::debug!(agent = %self.id, action = %request.action, instance = %request.instance, "running agent");
        let done = match process::run(&spec).await {
            Ok(done) => done,
            Err(SpawnError::NotFound { path }) => {
                return Ok(Outcome::new(
                    Status::NotInstalled {
                        path: path.display().to_string(),
                    },
                    Duration::ZERO,
                ));
            }
            Err(SpawnError::NotExecutable { path, source }) => {
                return Ok(Outcome::new(
                    Status::NotExecutable {
                        path: path.display().to_string(),
                        reason: source.to_string(),
                    },
                    Duration::ZERO,
                ));
            }
            Err(e) => {
                return Err(ResourceError::Io {
                    agent: self.id.clone(),
                    reason: e.to_string(),
                });
            }
        };
        let status = match done.termination {
            Termination::Exited(code) => match ExitCode::from_code(code) {
                Some(code) => Status::Exited { code },
                None => Status::UnknownExitCode { code },
            },
            Termination::Signaled(signal) => Status::Signaled { signal },
            Termination::TimedOut => Status::TimedOut {
                after: request.timeout,
            },
        };
        let mut outcome = Outcome::new(status, done.elapsed).with_output(
            String::from_utf8_lossy(&done.stdout).into_owned(),
            String::from_utf8_lossy(&done.stderr).into_owned(),
        );
        outcome.stdout_truncated = done.stdout_truncated;
        outcome.stderr_truncated = done.stderr_truncated;
        Ok(outcome)
    }

    /// Reads and parses the meta-data. On failure, also hands back the run's outcome when the
    /// agent could not run at all (missing, not executable), so `execute` can report that.
    async fn load_metadata(&self) -> Result<Metadata, MetadataFailure> {
        let out = self.metadata_raw().await.map_err(MetadataFailure::from)?;
        let error = match &out.status {
            Status::Exited {
                code: ExitCode::Success,
            } => {
                return Metadata::parse(out.stdout.as_bytes()).map_err(|source| {
                    MetadataFailure::from(ResourceError::Metadata {
                        agent: self.id.clone(),
                        source,
                    })
                });
            }
            Status::NotInstalled { path } => ResourceError::AgentNotFound {
                agent: self.id.clone(),
                detail: format!("no file {path}"),
            },
            _ => ResourceError::MetadataRun {
                agent: self.id.clone(),
                reason: format!("{}; stderr: {}", out.summary(), first_line(&out.stderr)),
            },
        };
        let unrunnable = matches!(
            out.status,
            Status::NotInstalled { .. } | Status::NotExecutable { .. }
        );
        Err(MetadataFailure {
            error,
            unrunnable: unrunnable.then_some(out),
        })
    }
}

/// Why meta-data could not be had, and the outcome when the agent cannot run at all.
struct MetadataFailure {
    error: ResourceError,
    unrunnable: Option<Outcome>,
}

impl From<ResourceError> for MetadataFailure {
    fn from(error: ResourceError) -> Self {
        Self {
            error,
            unrunnable: None,
        }
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn first_line(s: &str) -> &str {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(empty)")
}

#[async_trait]
impl ResourceAgent for ScriptAgent {
    fn id(&self) -> &AgentId {
        &self.id
    }

    async fn metadata(&self) -> Result<Metadata, ResourceError> {
        // Only a success is cached: a failed read is retried next time.
        self.metadata
            .get_or_try_init(|| self.load_metadata())
            .await
            .cloned()
            .map_err(|f| f.error)
    }

    async fn execute(&self, request: ActionRequest) -> Result<Outcome, ResourceError> {
        // A missing or non-executable agent (no execute bit, a missing interpreter) gets its
        // own typed outcome, not a meta-data error from the validation that would come first.
        if request.validate && request.action != Action::MetaData && is_executable(&self.path) {
            match self.metadata.get_or_try_init(|| self.load_metadata()).await {
                Ok(meta) => ocf_resources::validate::validate(meta, &request.params)?,
                Err(MetadataFailure {
                    unrunnable: Some(outcome),
                    ..
                }) => return Ok(outcome),
                Err(MetadataFailure { error, .. }) => return Err(error),
            }
        }
        self.run(&request).await
    }
}
