//! The one place ocf starts other programs (resource agents, fence agents, `stonith`).
//!
//! Every run gets its own process group, so a timeout can stop the agent *and* everything it
//! forked: `SIGTERM` to the group, a grace period, then `SIGKILL`. Output is captured up to a
//! bound per stream and the rest is read and thrown away, so an agent that prints gigabytes
//! costs a little CPU but no memory. Standard input is written in full and closed; that is how
//! fence agents get their options (and passwords) without showing them in `ps`.
//!
//! What a run does *not* do: kill the group when the agent exits normally. A `start` action may
//! legitimately leave a daemon behind, in the agent's process group when it did not `setsid`.
//! Callers that know nothing should remain (fence agents, `monitor`) set
//! [`ProcessSpec::reap_group_on_exit`].

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// The default bound on captured bytes per stream (stdout and stderr each).
pub const DEFAULT_OUTPUT_LIMIT: usize = 1 << 20;

/// How long a process group gets between `SIGTERM` and `SIGKILL`, by default.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(2);

/// How long output is still read after the agent exits, for a grandchild that holds the pipes.
pub const DEFAULT_DRAIN: Duration = Duration::from_millis(200);

/// What to run and under which limits.
#[derive(Clone)]
pub struct ProcessSpec {
    /// The executable.
    pub program: PathBuf,
    /// Its arguments (never secrets: argv is world-readable through `ps`).
    pub args: Vec<OsString>,
    /// Start from an empty environment instead of inheriting ours.
    pub env_clear: bool,
    /// Variables to set.
    pub env: Vec<(OsString, OsString)>,
    /// Bytes written to standard input, which is then closed; `None` gives `/dev/null`.
    pub stdin: Option<Vec<u8>>,
    /// The working directory (ours when `None`).
    pub cwd: Option<PathBuf>,
    /// How long the agent may run before its group is stopped.
    pub timeout: Duration,
    /// Time between `SIGTERM` and `SIGKILL` on timeout.
    pub kill_grace: Duration,
    /// Bytes kept per stream; the rest is discarded (and the run marked truncated).
    pub output_limit: usize,
    /// How long to keep reading after the agent exits.
    pub drain: Duration,
    /// Kill whatever is left in the process group after a normal exit, too.
    pub reap_group_on_exit: bool,
}

impl fmt::Debug for ProcessSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The environment and stdin may hold secrets: print names and sizes only.
        let env_names: Vec<_> = self.env.iter().map(|(k, _)| k).collect();
        f.debug_struct("ProcessSpec")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("env_clear", &self.env_clear)
            .field("env_names", &env_names)
            .field("stdin_bytes", &self.stdin.as_ref().map(Vec::len))
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl ProcessSpec {
    /// A spec for `program` with the default limits and the given timeout.
    pub fn new(program: impl Into<PathBuf>, timeout: Duration) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env_clear: false,
            env: Vec::new(),
            stdin: None,
            cwd: None,
            timeout,
            kill_grace: DEFAULT_KILL_GRACE,
            output_limit: DEFAULT_OUTPUT_LIMIT,
            drain: DEFAULT_DRAIN,
            reap_group_on_exit: false,
        }
    }

    /// Adds one argument.
    #[must_use]
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Sets one environment variable.
    #[must_use]
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets the bytes given on standard input.
    #[must_use]
    pub fn stdin(mut self, bytes: Vec<u8>) -> Self {
        self.stdin = Some(bytes);
        self
    }
}

/// How the agent's main process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// It exited with this code.
    Exited(i32),
    /// A signal it did not send itself killed it (the number).
    Signaled(i32),
    /// It ran past its timeout and its process group was stopped.
    TimedOut,
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct Finished {
    /// How it ended.
    pub termination: Termination,
    /// Captured standard output (at most the limit).
    pub stdout: Vec<u8>,
    /// Captured standard error (at most the limit).
    pub stderr: Vec<u8>,
    /// True when standard output went past the limit.
    pub stdout_truncated: bool,
    /// True when standard error went past the limit.
    pub stderr_truncated: bool,
    /// Bytes read from standard output in all, kept or discarded (more than `stdout.len()`
    /// exactly when it was truncated).
    pub stdout_total: u64,
    /// Bytes read from standard error in all, kept or discarded.
    pub stderr_total: u64,
    /// Wall time from spawn to exit.
    pub elapsed: Duration,
    /// The process id (and process group id) the agent had.
    pub pid: u32,
}

/// Why a program could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// There is no file at the path.
    #[error("{path}: no such file")]
    NotFound {
        /// The program's path.
        path: PathBuf,
    },
    /// The file exists but cannot be executed (no execute bit, no interpreter line).
    #[error("{path}: not executable ({source})")]
    NotExecutable {
        /// The program's path.
        path: PathBuf,
        /// What the kernel said.
        source: std::io::Error,
    },
    /// Another I/O failure while starting or waiting for it.
    #[error("{path}: {source}")]
    Io {
        /// The program's path.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
}

/// Runs a program to completion under the spec's limits.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::time::Duration;
/// use ocf_ref::process::{run, ProcessSpec, Termination};
/// let done = run(&ProcessSpec::new("/bin/sh", Duration::from_secs(5)).arg("-c").arg("echo hi; exit 3"))
///     .await
///     .unwrap();
/// assert_eq!(done.termination, Termination::Exited(3));
/// assert_eq!(done.stdout, b"hi\n");
/// # });
/// ```
pub async fn run(spec: &ProcessSpec) -> Result<Finished, SpawnError> {
    let mut child = spawn(spec).await?;
    let started = Instant::now();
    let pid = child.id().unwrap_or(0);
    let (stop_tx, stop_rx) = watch::channel(false);
    let stdout = child
        .stdout
        .take()
        .map(|p| tokio::spawn(read_bounded(p, spec.output_limit, stop_rx.clone())));
    let stderr = child
        .stderr
        .take()
        .map(|p| tokio::spawn(read_bounded(p, spec.output_limit, stop_rx.clone())));
    if let (Some(mut pipe), Some(bytes)) = (child.stdin.take(), spec.stdin.clone()) {
        // An agent that exits without reading its input gives EPIPE: not our failure.
        tokio::spawn(async move {
            let _ = pipe.write_all(&bytes).await;
            let _ = pipe.shutdown().await;
        });
    }

    let io_err = |source| SpawnError::Io {
        path: spec.program.clone(),
        source,
    };
    let termination = if let Ok(status) = tokio::time::timeout(spec.timeout, child.wait()).await {
        let status = status.map_err(io_err)?;
        if spec.reap_group_on_exit {
            stop_group(&mut child, pid, spec.kill_grace).await;
        }
        classify(status)
    } else {
        tracing::warn!(program = %spec.program.display(), pid, timeout = ?spec.timeout, "timed out; stopping its process group");
        stop_group(&mut child, pid, spec.kill_grace).await;
        // The group has had SIGKILL if it outlived the grace: this wait cannot hang.
        child.wait().await.map_err(io_err)?;
        Termination::TimedOut
    };
    let elapsed = started.elapsed();

    // Readers end at EOF, which normally comes with the exit; a grandchild holding the pipes
    // open gets `drain` more, then we stop listening.
    let drain = spec.drain;
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(drain).await;
        let _ = stop_tx.send(true);
    });
    let out = join_reader(stdout).await;
    let err = join_reader(stderr).await;
    stopper.abort();
    Ok(Finished {
        termination,
        stdout_truncated: out.truncated(),
        stderr_truncated: err.truncated(),
        stdout: out.kept,
        stderr: err.kept,
        stdout_total: out.total,
        stderr_total: err.total,
        elapsed,
        pid,
    })
}

async fn spawn(spec: &ProcessSpec) -> Result<tokio::process::Child, SpawnError> {
    let mut cmd = tokio::process::Command::new(&spec.program);
    cmd.args(&spec.args)
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if spec.env_clear {
        cmd.env_clear();
    }
    cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = &spec.cwd {
        cmd.current_dir(dir);
    }
    // ETXTBSY: another thread of ours may still hold the file open for writing as it forks
    // (a test that just wrote the script); it clears within milliseconds.
    let mut attempts = 0;
    loop {
        match cmd.spawn() {
            Ok(child) => return Ok(child),
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempts < 20 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => return Err(spawn_error(&spec.program, e)),
        }
    }
}

fn spawn_error(path: &Path, source: std::io::Error) -> SpawnError {
    let path = path.to_path_buf();
    match (source.kind(), source.raw_os_error()) {
        (std::io::ErrorKind::NotFound, _) if !path.exists() => SpawnError::NotFound { path },
        (std::io::ErrorKind::PermissionDenied, _) | (_, Some(libc::ENOEXEC | libc::EACCES)) => {
            SpawnError::NotExecutable { path, source }
        }
        // A missing interpreter (`#!/no/such/shell`) also says ENOENT.
        (std::io::ErrorKind::NotFound, _) => SpawnError::NotExecutable { path, source },
        _ => SpawnError::Io { path, source },
    }
}

fn classify(status: std::process::ExitStatus) -> Termination {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => Termination::Exited(code),
        (None, Some(sig)) => Termination::Signaled(sig),
        (None, None) => Termination::Signaled(0),
    }
}

/// `SIGTERM` to the group, up to `grace` for it to empty, then `SIGKILL`. Reaps the main child
/// as it goes, so its zombie does not keep the group alive.
async fn stop_group(child: &mut tokio::process::Child, pgid: u32, grace: Duration) {
    let Ok(raw) = i32::try_from(pgid) else { return };
    if raw <= 1 {
        return;
    }
    let group = Pid::from_raw(raw);
    if killpg(group, Signal::SIGTERM).is_err() {
        return; // the group is already gone
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let main_reaped = matches!(child.try_wait(), Ok(Some(_)));
        if main_reaped && !group_alive(pgid) {
            return;
        }
    }
    let _ = killpg(group, Signal::SIGKILL);
}

/// True while any process (zombies included) is in process group `pgid`.
pub fn group_alive(pgid: u32) -> bool {
    i32::try_from(pgid)
        .ok()
        .filter(|&p| p > 1)
        .is_some_and(|p| killpg(Pid::from_raw(p), None).is_ok())
}

/// What one stream's reader kept, and how much it saw.
#[derive(Debug, Default)]
struct Captured {
    kept: Vec<u8>,
    total: u64,
}

impl Captured {
    fn truncated(&self) -> bool {
        self.total > self.kept.len() as u64
    }
}

async fn read_bounded<R: AsyncRead + Unpin>(
    mut pipe: R,
    limit: usize,
    mut stop: watch::Receiver<bool>,
) -> Captured {
    let mut got = Captured::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            read = pipe.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = limit.saturating_sub(got.kept.len());
                    got.kept.extend_from_slice(&buf[..n.min(room)]);
                    got.total += n as u64;
                }
            },
            _ = stop.changed() => break,
        }
    }
    got
}

async fn join_reader(handle: Option<tokio::task::JoinHandle<Captured>>) -> Captured {
    match handle {
        Some(h) => h.await.unwrap_or_default(),
        None => Captured::default(),
    }
}
