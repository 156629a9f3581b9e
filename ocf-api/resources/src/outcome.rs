//! The typed outcome of running one action.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Action, ExitCode};

/// How an action ended.
///
/// Only [`Status::Exited`] carries an OCF exit code; the others are failures of their own
/// kind that a caller must not mistake for a code (a timeout is not `OCF_ERR_GENERIC`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Status {
    /// The agent exited with an OCF exit code.
    Exited {
        /// The code.
        code: ExitCode,
    },
    /// The agent exited with a number OCF does not define.
    UnknownExitCode {
        /// The number.
        code: i32,
    },
    /// The agent ran past its timeout; its process group was stopped.
    TimedOut {
        /// The timeout that ran out.
        #[serde(with = "ocf_core::millis")]
        after: Duration,
    },
    /// A signal killed the agent.
    Signaled {
        /// The signal number.
        signal: i32,
    },
    /// No agent is installed at the path.
    NotInstalled {
        /// Where it was looked for.
        path: String,
    },
    /// The file exists but cannot be executed.
    NotExecutable {
        /// The file.
        path: String,
        /// What the system said.
        reason: String,
    },
}

/// The outcome of one action: how it ended, what it printed and how long it took.
///
/// ```
/// use std::time::Duration;
/// use ocf_resources::{Action, ExitCode, AgentOutcome, Status};
/// let o = AgentOutcome::new(Status::Exited { code: ExitCode::NotRunning }, Duration::from_millis(12));
/// assert!(o.succeeded(Action::Monitor));
/// assert!(!o.succeeded(Action::Start));
/// assert_eq!(o.exit_code(), Some(ExitCode::NotRunning));
/// let json = serde_json::to_value(&o).unwrap();
/// assert_eq!(json["status"]["kind"], "exited");
/// assert_eq!(json["status"]["code"], 7);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AgentOutcome {
    /// How it ended.
    pub status: Status,
    /// Captured standard output (lossy UTF-8, bounded).
    pub stdout: String,
    /// Captured standard error (lossy UTF-8, bounded).
    pub stderr: String,
    /// True when standard output was cut at the capture bound.
    pub stdout_truncated: bool,
    /// True when standard error was cut at the capture bound.
    pub stderr_truncated: bool,
    /// Wall time of the run.
    #[serde(with = "ocf_core::millis", rename = "duration_ms")]
    pub duration: Duration,
}

/// The name of [`AgentOutcome`] in 0.1 (renamed: the fencing crate has its own outcome).
#[deprecated(since = "0.2.0", note = "renamed `AgentOutcome`")]
pub type Outcome = AgentOutcome;

impl AgentOutcome {
    /// An outcome with no captured output.
    pub fn new(status: Status, duration: Duration) -> Self {
        Self {
            status,
            stdout: String::new(),
            stderr: String::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            duration,
        }
    }

    /// An outcome that exited with `code`.
    pub fn exited(code: ExitCode, duration: Duration) -> Self {
        Self::new(Status::Exited { code }, duration)
    }

    /// Sets the captured output.
    #[must_use]
    pub fn with_output(mut self, stdout: String, stderr: String) -> Self {
        self.stdout = stdout;
        self.stderr = stderr;
        self
    }

    /// The OCF exit code, when the agent exited with one.
    pub fn exit_code(&self) -> Option<ExitCode> {
        match self.status {
            Status::Exited { code } => Some(code),
            _ => None,
        }
    }

    /// True when the outcome is a success for `action` (see [`ExitCode::verdict`]).
    pub fn succeeded(&self, action: Action) -> bool {
        self.exit_code().is_some_and(|c| c.verdict(action).success)
    }

    /// True when the action timed out.
    pub fn timed_out(&self) -> bool {
        matches!(self.status, Status::TimedOut { .. })
    }

    /// A one-line summary: `exited 7 (OCF_NOT_RUNNING: not running)`, `timed out after 20000 ms`.
    pub fn summary(&self) -> String {
        match &self.status {
            Status::Exited { code } => format!("exited {code}"),
            Status::UnknownExitCode { code } => format!("exited {code} (not an OCF exit code)"),
            Status::TimedOut { after } => {
                format!("timed out after {} ms", ocf_core::millis::as_millis(*after))
            }
            Status::Signaled { signal } => format!("killed by signal {signal}"),
            Status::NotInstalled { path } => format!("not installed: no agent at {path}"),
            Status::NotExecutable { path, reason } => format!("{path} is not executable: {reason}"),
        }
    }
}
