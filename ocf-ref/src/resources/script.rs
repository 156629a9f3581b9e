//! Script agents: the executables under `$OCF_ROOT/resource.d/<provider>/<type>`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use ocf_resources::env::EnvBuilder;
use ocf_resources::validate::{may_refuse, validate};
use ocf_resources::{
    Action, ActionRequest, AgentId, AgentOutcome, ExitCode, Metadata, ResourceAgent, ResourceError,
    Status,
};
use tokio::sync::OnceCell;

use crate::process::{self, ProcessSpec, SpawnError, Termination};
use crate::resources::directory::agent_path;
use crate::resources::metadata_cache::MetadataCache;

/// How long `meta-data` may take when the agent is asked for it (strict mode, the advertised
/// timeout, `ocf ra meta`).
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
/// a bound. The agent judges its own parameters: its meta-data is read (once, then cached in
/// memory, and on disk with [`ScriptAgent::with_metadata_cache`]) only in strict mode
/// ([`ActionRequest::validate`]) or when asked, and strict mode refuses only start-like
/// actions ([`may_refuse`]); stop and monitor always run.
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
    cache: Option<MetadataCache>,
}

/// One run's outcome with the output exactly as the agent wrote it (the outcome's strings are
/// lossy UTF-8; these bytes are not).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RawRun {
    /// How it ended, with the output as (lossy) text and the truncation flags.
    pub outcome: AgentOutcome,
    /// Standard output, byte for byte (up to the capture bound).
    pub stdout: Vec<u8>,
    /// Standard error, byte for byte (up to the capture bound).
    pub stderr: Vec<u8>,
    /// How many bytes the agent wrote to standard output in all (more than `stdout.len()`
    /// when the output was cut at the bound).
    pub stdout_total: u64,
    /// How many bytes the agent wrote to standard error in all.
    pub stderr_total: u64,
}

impl RawRun {
    fn without_output(outcome: AgentOutcome) -> Self {
        Self {
            outcome,
            stdout: Vec::new(),
            stderr: Vec::new(),
            stdout_total: 0,
            stderr_total: 0,
        }
    }
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
            cache: None,
        }
    }

    /// Keeps the meta-data in `cache` on disk too, keyed by the agent file's identity, so a
    /// new process does not run `meta-data` again until the agent changes.
    #[must_use]
    pub fn with_metadata_cache(mut self, cache: MetadataCache) -> Self {
        self.cache = Some(cache);
        self
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
    pub async fn metadata_raw(&self) -> Result<AgentOutcome, ResourceError> {
        self.run(&ActionRequest::new(
            Action::MetaData,
            self.id.agent_type(),
            METADATA_TIMEOUT,
        ))
        .await
    }

    /// Runs the action without validating parameters.
    pub async fn run(&self, request: &ActionRequest) -> Result<AgentOutcome, ResourceError> {
        self.run_raw(request).await.map(|r| r.outcome)
    }

    /// Runs the action without validating parameters, and hands back the output bytes as the
    /// agent wrote them. Refuses ([`ResourceError::Env`]) names that cannot become the
    /// agent's environment, before anything runs.
    pub async fn run_raw(&self, request: &ActionRequest) -> Result<RawRun, ResourceError> {
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
        let env = env.build()?;
        let path_text = self.path.display().to_string();
        if !self.path.exists() {
            return Ok(RawRun::without_output(AgentOutcome::new(
                Status::NotInstalled { path: path_text },
                Duration::ZERO,
            )));
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
        spec.env.extend(
            env.into_iter()
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
                return Ok(RawRun::without_output(AgentOutcome::new(
                    Status::NotInstalled {
                        path: path.display().to_string(),
                    },
                    Duration::ZERO,
                )));
            }
            Err(SpawnError::NotExecutable { path, source }) => {
                return Ok(RawRun::without_output(AgentOutcome::new(
                    Status::NotExecutable {
                        path: path.display().to_string(),
                        reason: source.to_string(),
                    },
                    Duration::ZERO,
                )));
            }
            Err(e) => {
                return Err(ResourceError::io(self.id.clone(), "starting the agent", e));
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
        let mut outcome = AgentOutcome::new(status, done.elapsed).with_output(
            String::from_utf8_lossy(&done.stdout).into_owned(),
            String::from_utf8_lossy(&done.stderr).into_owned(),
        );
        outcome.stdout_truncated = done.stdout_truncated;
        outcome.stderr_truncated = done.stderr_truncated;
        Ok(RawRun {
            outcome,
            stdout: done.stdout,
            stderr: done.stderr,
            stdout_total: done.stdout_total,
            stderr_total: done.stderr_total,
        })
    }

    /// Runs `meta-data` now, whatever any cache holds, parses it and refreshes the caches
    /// (in memory for this agent, and on disk with a cache set). What `ocf ra meta` shows.
    pub async fn fresh_metadata(&self) -> Result<Metadata, ResourceError> {
        let meta = self.load_metadata(false).await.map_err(|f| f.error)?;
        // A second set in a race is harmless: both came from the agent.
        let _ = self.metadata.set(meta.clone());
        Ok(meta)
    }

    /// Reads and parses the meta-data: from the disk cache when allowed and it matches the
    /// agent file, else by running the agent (and then caching a document that parses). On
    /// failure, also hands back the run's outcome when the agent could not run at all
    /// (missing, not executable), so `execute` can report that.
    async fn load_metadata(&self, use_cache: bool) -> Result<Metadata, MetadataFailure> {
        if let Some(cache) = self.cache.as_ref().filter(|_| use_cache) {
            if let Some(meta) = cache
                .get(&self.path)
                .and_then(|xml| Metadata::parse(&xml).ok())
            {
                return Ok(meta);
            }
        }
        let request = ActionRequest::new(Action::MetaData, self.id.agent_type(), METADATA_TIMEOUT);
        let raw = self
            .run_raw(&request)
            .await
            .map_err(MetadataFailure::from)?;
        let out = &raw.outcome;
        let error = match &out.status {
            Status::Exited {
                code: ExitCode::Success,
            } => {
                let meta = Metadata::parse(&raw.stdout).map_err(|source| {
                    MetadataFailure::from(ResourceError::Metadata {
                        agent: self.id.clone(),
                        source,
                    })
                })?;
                if let Some(cache) = &self.cache {
                    if !out.stdout_truncated {
                        cache.put(&self.path, &raw.stdout);
                    }
                }
                return Ok(meta);
            }
            Status::NotInstalled { path } => ResourceError::AgentNotFound {
                agent: self.id.clone(),
                looked_in: format!("no file {path}"),
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
            unrunnable: unrunnable.then(|| raw.outcome.clone()),
        })
    }
}

/// Why meta-data could not be had, and the outcome when the agent cannot run at all.
struct MetadataFailure {
    error: ResourceError,
    unrunnable: Option<AgentOutcome>,
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
            .get_or_try_init(|| self.load_metadata(true))
            .await
            .cloned()
            .map_err(|f| f.error)
    }

    async fn execute(&self, request: ActionRequest) -> Result<AgentOutcome, ResourceError> {
        // Strict mode only: without it the agent judges its own parameters, and nothing is
        // read first. A missing or non-executable agent (no execute bit, a missing
        // interpreter) gets its own typed outcome, not a meta-data error.
        if request.validate && request.action != Action::MetaData && is_executable(&self.path) {
            let refusable = may_refuse(request.action);
            let problem = match self
                .metadata
                .get_or_try_init(|| self.load_metadata(true))
                .await
            {
                Ok(meta) => validate(meta, &request.params)
                    .err()
                    .map(ResourceError::from),
                Err(MetadataFailure {
                    unrunnable: Some(outcome),
                    ..
                }) => return Ok(outcome),
                Err(MetadataFailure { error, .. }) => Some(error),
            };
            match problem {
                Some(e) if refusable => return Err(e),
                Some(e) => tracing::warn!(
                    agent = %self.id,
                    action = %request.action,
                    "{e}; running it anyway: a {} always reaches the agent",
                    request.action
                ),
                None => {}
            }
        }
        self.run(&request).await
    }
}
