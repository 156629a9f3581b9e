//! fence-agents devices: any `fence_*` executable, driven through the stdin protocol.
//!
//! Each call runs the agent once through [`crate::process::run`] with its options written as
//! `key=value` lines on standard input, `action=` first. Nothing goes on the command line, so
//! passwords never show in `ps`. Exit codes: 0 success, 2 "off" for `status`, anything else a
//! failure (fencing.py's `EC_*` codes say which; the agent's last error line is kept, with
//! secrets redacted). The agent's whole process group is stopped on timeout and after it exits.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ocf_core::NodeName;
use ocf_fencing::{
    DeviceAction, DeviceId, DeviceMetadata, DeviceParams, FenceAction, FenceDevice, FenceError,
    PowerState, Targets,
};
use tokio::sync::OnceCell;

use crate::fencing::metadata_xml;
use crate::process::{self, Finished, ProcessSpec, Termination};

/// Where fence agents are installed by default.
pub const DEFAULT_AGENTS_DIR: &str = "/usr/sbin";

/// The environment variable that overrides [`DEFAULT_AGENTS_DIR`].
pub const AGENTS_DIR_ENV: &str = "OCF_FENCE_AGENTS_DIR";

/// The longest an agent's `metadata` action may take (fence-agents answer in well under 1 s).
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(20);

/// How much of an operation's time may go to fetching meta-data first: a quarter, and never
/// more than [`METADATA_TIMEOUT`]. The rest is the agent's. Once fetched, meta-data is kept,
/// so only a device's first operation pays.
pub fn metadata_budget(timeout: Duration) -> Duration {
    (timeout / 4).min(METADATA_TIMEOUT)
}

/// The agents directory: `$OCF_FENCE_AGENTS_DIR` or [`DEFAULT_AGENTS_DIR`].
pub fn agents_dir() -> PathBuf {
    std::env::var_os(AGENTS_DIR_ENV)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_AGENTS_DIR), PathBuf::from)
}

/// One installed fence agent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AgentInfo {
    /// Its name (`fence_ipmilan`).
    pub name: String,
    /// Its path.
    pub path: PathBuf,
}

/// `fence_*` programs that are not fence agents: `fence_ack_manual` is the operator's
/// override command (it takes a node name as its argument and asks for confirmation).
pub const NOT_AGENTS: &[&str] = &["fence_ack_manual"];

/// The executable `fence_*` files in `dir` that are agents, sorted by name.
pub fn list_agents(dir: &Path) -> std::io::Result<Vec<AgentInfo>> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("fence_") || NOT_AGENTS.contains(&name.as_str()) {
            continue;
        }
        // Follow symlinks: some distributions link agents to one another.
        let Ok(meta) = std::fs::metadata(entry.path()) else {
            continue;
        };
        if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
            out.push(AgentInfo {
                name,
                path: entry.path(),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Finds an agent by name in `dir` (`fence_dummy`) or takes a path (anything with a `/`).
pub fn resolve_agent(agent: &str, dir: &Path) -> Result<PathBuf, FenceError> {
    let path =
        if agent.contains('/') {
            PathBuf::from(agent)
        } else {
            if !agent.starts_with("fence_") {
                return Err(FenceError::Config {
                device: agent.to_owned(),
                reason:
                    "a fence agent's name starts with fence_; give a path to run another program"
                        .into(), source: None });
            }
            dir.join(agent)
        };
    if path.is_file() {
        Ok(path)
    } else {
        Err(FenceError::Config {
            device: agent.to_owned(),
            reason: format!(
                "{} does not exist; see `ocf fence agents`, or set {AGENTS_DIR_ENV}",
                path.display()
            ),
            source: None,
        })
    }
}

/// The stdin text for one call: `action=`, then every parameter, then the plug, one per line.
///
/// Every name and value must reach the agent exactly as given: fence agents strip each line,
/// skip `#` lines and unquote `"..."` values, so anything those would change (and a line break,
/// which would let a value inject another option) is refused with
/// [`FenceError::BadParameter`], naming the parameter, never its value
/// ([`ocf_fencing::check_stdin_param`]). The caller's `action` and plug win over parameters
/// of those names.
pub fn stdin_lines(
    agent: &str,
    action: DeviceAction,
    params: &DeviceParams,
    plug: Option<(&str, &str)>,
) -> Result<Vec<u8>, FenceError> {
    let check = |key: &str, value: &str| {
        ocf_fencing::check_stdin_param(key, value).map_err(|refusal| FenceError::BadParameter {
            device: agent.to_owned(),
            parameter: key.to_owned(),
            refusal,
        })
    };
    let mut out = format!("action={}\n", action.as_str());
    for (key, value) in params.iter() {
        check(key, value.expose())?;
        if key == "action" || plug.is_some_and(|(name, _)| name == key) {
            continue;
        }
        out.push_str(key);
        out.push('=');
        out.push_str(value.expose());
        out.push('\n');
    }
    if let Some((name, value)) = plug {
        check(name, value)?;
        out.push_str(name);
        out.push('=');
        out.push_str(value);
        out.push('\n');
    }
    Ok(out.into_bytes())
}

/// `params` with every parameter the agent's meta-data marks secret filed as a secret, so
/// that redaction hides it too (a `--pin=[password]` parameter whose name says nothing).
pub fn with_metadata_secrets(params: &DeviceParams, md: &DeviceMetadata) -> DeviceParams {
    let mut out = params.clone();
    for p in md.parameters.iter().filter(|p| p.secret) {
        out.mark_secret(&p.name);
        // fencing.py reads `snmp-priv-passwd` as `snmp_priv_passwd`.
        out.mark_secret(&p.name.replace('_', "-"));
    }
    out
}

/// The result of one agent call, with its output decoded and secrets redacted.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AgentRun {
    /// The operation.
    pub action: DeviceAction,
    /// The exit code, or `None` when the agent was killed by a signal or timed out.
    pub exit_code: Option<i32>,
    /// Whether it ran out of time.
    pub timed_out: bool,
    /// Standard output (redacted).
    pub stdout: String,
    /// Standard error (redacted).
    pub stderr: String,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
}

impl AgentRun {
    fn from_finished(action: DeviceAction, done: &Finished, params: &DeviceParams) -> Self {
        let (exit_code, timed_out) = match done.termination {
            Termination::Exited(c) => (Some(c), false),
            Termination::Signaled(_) => (None, false),
            Termination::TimedOut => (None, true),
        };
        Self {
            action,
            exit_code,
            timed_out,
            stdout: params.redact(&String::from_utf8_lossy(&done.stdout)),
            stderr: params.redact(&String::from_utf8_lossy(&done.stderr)),
            elapsed_ms: ocf_core::millis::as_millis(done.elapsed),
        }
    }

    /// Whether it exited 0.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// The line that best says why it failed: the last error line on stderr, else the last
    /// line, else the exit code.
    pub fn reason(&self) -> String {
        if self.timed_out {
            return "timed out".into();
        }
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .chain(self.stdout.lines())
            .map(|l| strip_timestamp(l.trim()))
            // fencing.py's generic follow-up, which hides the real error line before it.
            .filter(|l| !l.is_empty() && !l.contains("Please use '-h' for usage"))
            .collect();
        let line = lines
            .iter()
            .rev()
            .find(|l| l.contains("Failed"))
            .or_else(|| lines.iter().rev().find(|l| l.contains("ERROR")))
            .or_else(|| lines.last());
        let code = self.exit_code.map_or_else(
            || "killed by a signal".to_owned(),
            |c| format!("exit code {c}"),
        );
        match line {
            Some(l) => {
                let l: String = l.chars().take(300).collect();
                format!("{l} ({code})")
            }
            None => code,
        }
    }
}

/// Drops fencing.py's `2026-11-25 10:43:56,759 ` log prefix.
fn strip_timestamp(line: &str) -> &str {
    let b = line.as_bytes();
    let stamped = b.len() > 24
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[10] == b' '
        && b[19] == b','
        && b[23] == b' ';
    if stamped { &line[24..] } else { line }
}

/// A fence device run by a fence-agents executable.
///
/// ```no_run
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::time::Duration;
/// use ocf_fencing::{DeviceParams, FenceAction, FenceDevice, Targets};
/// use ocf_ref::fencing::devices::agent::AgentDevice;
/// let mut params = DeviceParams::new();
/// params.insert("ip", "10.0.0.9");
/// params.insert("username", "admin");
/// params.insert("password", "secret"); // kept as a Secret: stdin only, never logged
/// let dev = AgentDevice::new(
///     "ipmi-n3".parse().unwrap(),
///     "/usr/sbin/fence_ipmilan",
///     params,
///     Targets::hosts(["n3".parse().unwrap()]),
/// );
/// dev.fence(&"n3".parse().unwrap(), FenceAction::Reboot, Duration::from_secs(60)).await.unwrap();
/// # });
/// ```
pub struct AgentDevice {
    id: DeviceId,
    program: PathBuf,
    params: DeviceParams,
    targets: Targets,
    metadata: OnceCell<DeviceMetadata>,
}

impl std::fmt::Debug for AgentDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // DeviceParams' Debug redacts secrets; once the meta-data is known, those it marks too.
        let params = self.metadata.get().map_or_else(
            || self.params.clone(),
            |md| with_metadata_secrets(&self.params, md),
        );
        f.debug_struct("AgentDevice")
            .field("id", &self.id)
            .field("program", &self.program)
            .field("params", &params)
            .field("targets", &self.targets)
            .finish_non_exhaustive()
    }
}

impl AgentDevice {
    /// A device that runs `program` with `params` and finds its nodes through `targets`.
    pub fn new(
        id: DeviceId,
        program: impl Into<PathBuf>,
        params: DeviceParams,
        targets: Targets,
    ) -> Self {
        Self {
            id,
            program: program.into(),
            params,
            targets,
            metadata: OnceCell::new(),
        }
    }

    /// The same device with its agent's meta-data already known (read once by whoever
    /// checked the configuration), so its first operation does not run `metadata` again.
    ///
    /// ```no_run
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use ocf_fencing::{DeviceParams, FenceDevice, Targets};
    /// use ocf_ref::fencing::devices::agent::{AgentDevice, fetch_metadata, METADATA_TIMEOUT};
    /// let md = fetch_metadata("/usr/sbin/fence_dummy".as_ref(), METADATA_TIMEOUT).await.unwrap();
    /// let dev = AgentDevice::new("d".parse().unwrap(), "/usr/sbin/fence_dummy", DeviceParams::new(), Targets::Dynamic)
    ///     .with_metadata(md);
    /// // Answered from memory: no process runs.
    /// assert_eq!(dev.metadata(Duration::ZERO).await.unwrap().name, "fence_dummy");
    /// # });
    /// ```
    #[must_use]
    pub fn with_metadata(mut self, md: DeviceMetadata) -> Self {
        self.metadata = OnceCell::new_with(Some(md));
        self
    }

    /// The agent's path.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The configured parameters (secrets redacted in `Debug`).
    pub fn params(&self) -> &DeviceParams {
        &self.params
    }

    fn agent_name(&self) -> String {
        self.program
            .file_name()
            .map_or_else(|| self.id.to_string(), |n| n.to_string_lossy().into_owned())
    }

    /// Runs one action with the device's parameters (plus `plug=<plug>` when given under the
    /// name the agent uses) and returns what the agent did, whatever its exit code.
    pub async fn run(
        &self,
        action: DeviceAction,
        plug: Option<(&str, &str)>,
        timeout: Duration,
    ) -> Result<AgentRun, FenceError> {
        let started = tokio::time::Instant::now();
        let stdin = stdin_lines(self.id.as_str(), action, &self.params, plug)?;
        // Meta-data may mark more secrets than names do; without it, names decide. It is
        // fetched before the agent runs, out of the same time.
        let secrets = match self.metadata(metadata_budget(timeout)).await {
            Ok(md) => with_metadata_secrets(&self.params, &md),
            Err(_) => self.params.clone(),
        };
        let timeout = timeout.saturating_sub(started.elapsed());
        let mut spec = ProcessSpec::new(&self.program, timeout).stdin(stdin);
        // A fence agent leaves nothing behind on purpose.
        spec.reap_group_on_exit = true;
        // Short grace: a fence agent that ignores SIGTERM must not hold the fencer long.
        spec.kill_grace = Duration::from_millis(500);
        tracing::debug!(device = %self.id, agent = %self.program.display(), action = %action, plug = ?plug.map(|p| p.1), "running fence agent");
        let done = process::run(&spec).await.map_err(|e| FenceError::Device {
            device: self.id.clone(),
            action,
            target: None,
            reason: format!("cannot run the agent: {e}"),
            source: Some(Arc::new(e)),
        })?;
        let run = AgentRun::from_finished(action, &done, &secrets);
        tracing::debug!(device = %self.id, action = %action, exit = ?run.exit_code, elapsed_ms = run.elapsed_ms, "fence agent finished");
        Ok(run)
    }

    /// Runs `validate-all`: the agent checks its options without touching the device.
    pub async fn validate(&self, timeout: Duration) -> Result<(), FenceError> {
        let run = self.run(DeviceAction::ValidateAll, None, timeout).await?;
        self.expect_success(&run, None, timeout)
    }

    /// The targets the agent itself lists (`action=list`), as (plug, alias) pairs.
    pub async fn list_plugs(
        &self,
        timeout: Duration,
    ) -> Result<Vec<(String, Option<String>)>, FenceError> {
        let started = tokio::time::Instant::now();
        if let Ok(md) = self.metadata(metadata_budget(timeout)).await {
            if !md.supports(DeviceAction::List) {
                return Err(FenceError::Config {
                    device: self.id.to_string(),
                    reason: format!(
                        "{} cannot list its targets (no `list` action); give it a host list or a host map",
                        self.agent_name()
                    ),
                    source: None,
                });
            }
        }
        let timeout = timeout.saturating_sub(started.elapsed());
        let run = self.run(DeviceAction::List, None, timeout).await?;
        self.expect_success(&run, None, timeout)?;
        let sep = self
            .params
            .get("separator")
            .map_or(",", |v| v.expose())
            .to_owned();
        Ok(parse_list(&run.stdout, &sep))
    }

    fn expect_success(
        &self,
        run: &AgentRun,
        target: Option<&NodeName>,
        timeout: Duration,
    ) -> Result<(), FenceError> {
        if run.timed_out {
            return Err(FenceError::DeviceTimedOut {
                device: self.id.clone(),
                action: run.action,
                target: target.cloned(),
                timeout_ms: ocf_core::millis::as_millis(timeout),
            });
        }
        if run.success() {
            return Ok(());
        }
        Err(FenceError::Device {
            device: self.id.clone(),
            action: run.action,
            target: target.cloned(),
            reason: run.reason(),
            source: None,
        })
    }

    /// The (parameter name, plug) to send for `target`, or why it cannot be fenced here.
    async fn plug_for(
        &self,
        target: &NodeName,
        timeout: Duration,
    ) -> Result<Option<(String, String)>, FenceError> {
        let started = tokio::time::Instant::now();
        let plug = match &self.targets {
            Targets::Dynamic => {
                let plugs = self.list_plugs(timeout).await?;
                match_plug(&plugs, target).ok_or_else(|| FenceError::NotATarget {
                    device: self.id.clone(),
                    target: target.clone(),
                })?
            }
            configured => configured
                .plug_for(target)
                .ok_or_else(|| FenceError::NotATarget {
                    device: self.id.clone(),
                    target: target.clone(),
                })?
                .to_owned(),
        };
        // A single-host agent (no plug/port parameter, like fence_dummy) controls exactly the
        // node it is configured for: sending a plug would only earn a warning.
        let left = timeout.saturating_sub(started.elapsed());
        let name = match self.metadata(metadata_budget(left)).await {
            Ok(md) => md.plug_parameter().map(str::to_owned),
            Err(e) => {
                tracing::warn!(device = %self.id, error = %e, "no meta-data; sending plug= anyway");
                Some("plug".to_owned())
            }
        };
        Ok(name.map(|n| (n, plug)))
    }
}

/// Parses `list` output: `plug<sep>alias` per line; `N/A` and notices skipped.
fn parse_list(stdout: &str, sep: &str) -> Vec<(String, Option<String>)> {
    stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "N/A" && !l.starts_with("NOTICE"))
        .map(|l| {
            let mut parts = l.splitn(2, sep);
            let plug = parts.next().unwrap_or_default().trim().to_owned();
            let alias = parts
                .next()
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty());
            (plug, alias)
        })
        .filter(|(p, _)| !p.is_empty())
        .collect()
}

/// The plug whose id or alias is `target`.
fn match_plug(plugs: &[(String, Option<String>)], target: &NodeName) -> Option<String> {
    plugs
        .iter()
        .find(|(p, a)| p == target.as_str() || a.as_deref() == Some(target.as_str()))
        .map(|(p, _)| p.clone())
}

/// One thing wrong with a device's parameters, found against its agent's meta-data by
/// [`param_problems`]. It names the parameter, never its value (which may be a secret).
///
/// ```
/// use ocf_ref::fencing::devices::agent::ParamProblem;
/// let p = ParamProblem::Missing { parameter: "ip".into() };
/// assert_eq!(p.parameter(), "ip");
/// assert_eq!(p.to_string(), "required parameter ip is missing (-p ip=...)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParamProblem {
    /// The stdin protocol would change the name or value ([`ocf_fencing::check_stdin_param`]).
    Refused {
        /// The parameter.
        parameter: String,
        /// Why.
        refusal: ocf_fencing::ParamRefusal,
    },
    /// The agent has no parameter of that name.
    Unknown {
        /// The parameter.
        parameter: String,
        /// The agent's name.
        agent: String,
    },
    /// The value is not of the type the meta-data declares.
    WrongType {
        /// The parameter.
        parameter: String,
        /// The declared type.
        expected: ocf_fencing::ParameterType,
    },
    /// A required parameter without a default is not given.
    Missing {
        /// The parameter.
        parameter: String,
    },
}

impl ParamProblem {
    /// The parameter concerned.
    pub fn parameter(&self) -> &str {
        match self {
            Self::Refused { parameter, .. }
            | Self::Unknown { parameter, .. }
            | Self::WrongType { parameter, .. }
            | Self::Missing { parameter } => parameter,
        }
    }
}

impl std::fmt::Display for ParamProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused { parameter, refusal } => {
                write!(f, "parameter {parameter:?} refused: {refusal}")
            }
            Self::Unknown { parameter, agent } => write!(
                f,
                "{agent} has no parameter {parameter:?}; see `ocf fence meta {agent}`"
            ),
            Self::WrongType {
                parameter,
                expected,
            } => write!(f, "{parameter} must be of type {expected:?}"),
            Self::Missing { parameter } => write!(
                f,
                "required parameter {parameter} is missing (-p {parameter}=...)"
            ),
        }
    }
}

/// Checks parameters against an agent's meta-data before running it: names and values the
/// stdin protocol would change ([`ocf_fencing::check_stdin_param`]), unknown names, values
/// of the wrong type, required parameters missing. Returns one line per problem (empty when
/// all is well); values are never quoted, they may be secrets. [`param_problems`] gives the
/// same problems typed.
///
/// `action` and the plug (`plug`/`port`, when `target_given`) are supplied by the caller and
/// are not required here.
pub fn check_params(md: &DeviceMetadata, params: &DeviceParams, target_given: bool) -> Vec<String> {
    param_problems(md, params, target_given)
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// The problems [`check_params`] describes, typed, in the same order: first each given
/// parameter in name order, then each missing required one.
///
/// ```
/// use ocf_fencing::DeviceParams;
/// use ocf_ref::fencing::devices::agent::{ParamProblem, param_problems};
/// let md = ocf_ref::fencing::metadata_xml::parse(
///     r#"<resource-agent name="fence_x"><parameters>
/// <parameter name="ip" required="1"><content type="string"/></parameter>
/// </parameters></resource-agent>"#,
/// ).unwrap();
/// let problems = param_problems(&md, &DeviceParams::new(), true);
/// assert_eq!(problems, [ParamProblem::Missing { parameter: "ip".into() }]);
/// ```
pub fn param_problems(
    md: &DeviceMetadata,
    params: &DeviceParams,
    target_given: bool,
) -> Vec<ParamProblem> {
    let mut problems = Vec::new();
    for (name, value) in params.iter() {
        if let Err(refusal) = ocf_fencing::check_stdin_param(name, value.expose()) {
            problems.push(ParamProblem::Refused {
                parameter: name.to_owned(),
                refusal,
            });
            continue;
        }
        match md.parameter(name) {
            None => problems.push(ParamProblem::Unknown {
                parameter: name.to_owned(),
                agent: md.name.clone(),
            }),
            Some(p) if !p.kind.accepts(value.expose()) => {
                problems.push(ParamProblem::WrongType {
                    parameter: name.to_owned(),
                    expected: p.kind.clone(),
                });
            }
            Some(_) => {}
        }
    }
    for p in &md.parameters {
        let supplied =
            p.name == "action" || (target_given && (p.name == "plug" || p.name == "port"));
        if p.required && p.default.is_none() && !supplied && !params.contains(&p.name) {
            // An obsoleted name given under its replacement (port → plug) counts; a missing
            // one is reported once, under its replacement's name (username, not login).
            let replaced = md.parameters.iter().any(|q| {
                q.obsoletes.as_deref() == Some(p.name.as_str())
                    && (params.contains(&q.name) || (p.deprecated && q.required))
            });
            if !replaced {
                problems.push(ParamProblem::Missing {
                    parameter: p.name.clone(),
                });
            }
        }
    }
    problems
}

/// Reads an agent's meta-data without configuring a device.
pub async fn fetch_metadata(
    program: &Path,
    timeout: Duration,
) -> Result<DeviceMetadata, FenceError> {
    let name = program.file_name().map_or_else(
        || program.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let stdin = stdin_lines(&name, DeviceAction::Metadata, &DeviceParams::new(), None)?;
    let mut spec = ProcessSpec::new(program, timeout).stdin(stdin);
    spec.reap_group_on_exit = true;
    let done = process::run(&spec)
        .await
        .map_err(|e| FenceError::Metadata {
            device: name.clone(),
            reason: format!("cannot run the agent: {e}"),
            source: Some(Arc::new(e)),
        })?;
    if done.termination != Termination::Exited(0) {
        return Err(FenceError::Metadata {
            device: name,
            reason: format!(
                "action=metadata ended with {:?}: {}",
                done.termination,
                String::from_utf8_lossy(&done.stderr).trim()
            ),
            source: None,
        });
    }
    let xml = String::from_utf8_lossy(&done.stdout);
    metadata_xml::parse(&xml).map_err(|e| FenceError::Metadata {
        device: name,
        reason: e.to_string(),
        source: Some(Arc::new(e)),
    })
}

#[async_trait]
impl FenceDevice for AgentDevice {
    fn id(&self) -> &DeviceId {
        &self.id
    }

    fn targets(&self) -> &Targets {
        &self.targets
    }

    /// Asks the agent once (within `timeout`, at most [`METADATA_TIMEOUT`]) and keeps the
    /// answer; a failed attempt is not kept, so the next operation asks again.
    async fn metadata(&self, timeout: Duration) -> Result<DeviceMetadata, FenceError> {
        let fetch = self
            .metadata
            .get_or_try_init(|| fetch_metadata(&self.program, timeout.min(METADATA_TIMEOUT)));
        // Another caller may be fetching with more time than ours: wait only our own.
        match tokio::time::timeout(timeout, fetch).await {
            Ok(Ok(md)) => Ok(md.clone()),
            Ok(Err(FenceError::Metadata { reason, source, .. })) => Err(FenceError::Metadata {
                device: self.id.to_string(),
                reason: format!("its agent {}: {reason}", self.agent_name()),
                source,
            }),
            Ok(Err(other)) => Err(other),
            Err(_) => Err(FenceError::DeviceTimedOut {
                device: self.id.clone(),
                action: DeviceAction::Metadata,
                target: None,
                timeout_ms: ocf_core::millis::as_millis(timeout),
            }),
        }
    }

    async fn list_targets(&self, timeout: Duration) -> Result<Vec<NodeName>, FenceError> {
        if let Some(hosts) = self.targets.configured() {
            return Ok(hosts);
        }
        let plugs = self.list_plugs(timeout).await?;
        Ok(plugs
            .into_iter()
            .filter_map(|(p, a)| a.and_then(|a| a.parse().ok()).or_else(|| p.parse().ok()))
            .collect())
    }

    async fn can_fence(&self, target: &NodeName, timeout: Duration) -> Result<bool, FenceError> {
        match &self.targets {
            Targets::Dynamic => Ok(match_plug(&self.list_plugs(timeout).await?, target).is_some()),
            configured => Ok(configured.plug_for(target).is_some()),
        }
    }

    async fn fence(
        &self,
        target: &NodeName,
        action: FenceAction,
        timeout: Duration,
    ) -> Result<(), FenceError> {
        let started = tokio::time::Instant::now();
        let plug = self.plug_for(target, timeout).await?;
        let left = timeout.saturating_sub(started.elapsed());
        let action = DeviceAction::from(action);
        let run = self
            .run(
                action,
                plug.as_ref().map(|(n, v)| (n.as_str(), v.as_str())),
                left,
            )
            .await?;
        let result = self.expect_success(&run, Some(target), timeout);
        match &result {
            Ok(()) => tracing::info!(device = %self.id, %target, %action, "fence agent confirmed"),
            Err(e) => {
                tracing::warn!(device = %self.id, %target, %action, error = %e, "fence agent failed");
            }
        }
        result
    }

    async fn status(&self, target: &NodeName, timeout: Duration) -> Result<PowerState, FenceError> {
        let started = tokio::time::Instant::now();
        let plug = self.plug_for(target, timeout).await?;
        let left = timeout.saturating_sub(started.elapsed());
        let run = self
            .run(
                DeviceAction::Status,
                plug.as_ref().map(|(n, v)| (n.as_str(), v.as_str())),
                left,
            )
            .await?;
        match run.exit_code {
            Some(0) => Ok(PowerState::On),
            Some(2) => Ok(PowerState::Off),
            _ => self
                .expect_success(&run, Some(target), timeout)
                .map(|()| PowerState::Unknown),
        }
    }

    async fn monitor(&self, timeout: Duration) -> Result<(), FenceError> {
        let run = self.run(DeviceAction::Monitor, None, timeout).await?;
        self.expect_success(&run, None, timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_has_action_first_and_refuses_injection() {
        let mut p = DeviceParams::new();
        p.insert("ip", "10.0.0.1");
        p.insert("action", "off");
        p.insert("password", "pw");
        let text = String::from_utf8(
            stdin_lines("d", DeviceAction::Reboot, &p, Some(("plug", "3"))).unwrap(),
        )
        .unwrap();
        assert_eq!(text, "action=reboot\nip=10.0.0.1\npassword=pw\nplug=3\n");

        p.insert("password", "pw\naction=on");
        let e = stdin_lines("d", DeviceAction::Reboot, &p, None).unwrap_err();
        assert!(!e.to_string().contains("action=on"), "{e}");
        let mut q = DeviceParams::new();
        q.insert("a=b", "1");
        assert!(stdin_lines("d", DeviceAction::Status, &q, None).is_err());
        // A plug the agent would strip is refused too.
        let e = stdin_lines(
            "d",
            DeviceAction::Status,
            &DeviceParams::new(),
            Some(("plug", "3 ")),
        )
        .unwrap_err();
        assert!(
            matches!(e, FenceError::BadParameter { ref parameter, .. } if parameter == "plug"),
            "{e}"
        );
    }

    #[test]
    fn list_output_parses() {
        let plugs = parse_list("1,node-a\n2,node-b\n\nN/A\n3\n", ",");
        assert_eq!(
            plugs,
            vec![
                ("1".into(), Some("node-a".into())),
                ("2".into(), Some("node-b".into())),
                ("3".into(), None)
            ]
        );
        assert_eq!(
            match_plug(&plugs, &"node-b".parse().unwrap()),
            Some("2".into())
        );
        assert_eq!(match_plug(&plugs, &"3".parse().unwrap()), Some("3".into()));
        assert_eq!(match_plug(&plugs, &"node-c".parse().unwrap()), None);
    }

    #[test]
    fn params_are_checked_against_meta_data() {
        let md = metadata_xml::parse(
            r#"<resource-agent name="fence_x"><parameters>
<parameter name="action" required="1"><content type="string"/></parameter>
<parameter name="ip" required="1"><content type="string"/></parameter>
<parameter name="plug" required="1"><content type="string"/></parameter>
<parameter name="power_wait"><content type="second"/></parameter>
</parameters></resource-agent>"#,
        )
        .unwrap();
        let mut p = DeviceParams::new();
        p.insert("power_wait", "soon");
        p.insert("bogus", "1");
        let problems = check_params(&md, &p, false);
        assert_eq!(problems.len(), 4, "{problems:?}");
        let mut ok = DeviceParams::new();
        ok.insert("ip", "10.0.0.1");
        assert!(check_params(&md, &ok, true).is_empty());
    }

    #[test]
    fn reasons_prefer_error_lines() {
        let run = AgentRun {
            action: DeviceAction::Off,
            exit_code: Some(1),
            timed_out: false,
            stdout: String::new(),
            stderr: "WARNING: x\nERROR: Failed: Timed out waiting to power OFF\n\n".into(),
            elapsed_ms: 1,
        };
        assert_eq!(
            run.reason(),
            "ERROR: Failed: Timed out waiting to power OFF (exit code 1)"
        );
        let run = AgentRun {
            stderr: "2026-11-25 10:43:56,759 ERROR: Ipmitool not found\n2026-11-25 10:43:56,759 ERROR: Please use '-h' for usage\n".into(),
            ..run
        };
        assert_eq!(run.reason(), "ERROR: Ipmitool not found (exit code 1)");
    }
}
