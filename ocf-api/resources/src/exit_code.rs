//! OCF exit codes: their numbers, names, severities and what they mean per action.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Action;
use crate::error::ExitCodeError;

/// An exit code defined by the OCF Resource Agent API 1.1 (0–9, 190, 191).
///
/// Any other number is not an `ExitCode`: executors report it as an unknown exit code, a
/// failure of its own kind (see [`Status::UnknownExitCode`](crate::Status::UnknownExitCode)).
/// JSON writes the number.
///
/// ```
/// use ocf_resources::{Action, ExitCode, Severity};
/// let c = ExitCode::from_code(7).unwrap();
/// assert_eq!(c, ExitCode::NotRunning);
/// assert_eq!(c.name(), "OCF_NOT_RUNNING");
/// // 7 from monitor says "stopped": a success, not an error.
/// assert!(c.verdict(Action::Monitor).is_success());
/// assert!(!c.verdict(Action::Start).is_success());
/// assert_eq!(ExitCode::ErrConfigured.severity(), Severity::Fatal);
/// assert_eq!(ExitCode::from_code(42), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ExitCode {
    /// 0: the action succeeded (monitor: running).
    Success,
    /// 1: a generic error; the resource may be recovered on this node.
    ErrGeneric,
    /// 2: wrong or missing arguments.
    ErrArgs,
    /// 3: the action is not implemented by this agent.
    ErrUnimplemented,
    /// 4: insufficient permissions.
    ErrPerm,
    /// 5: something the agent needs is not installed on this node.
    ErrInstalled,
    /// 6: the configuration is invalid; it will fail on every node.
    ErrConfigured,
    /// 7: the resource is not running (monitor: cleanly stopped).
    NotRunning,
    /// 8: running in the promoted role (formerly `OCF_RUNNING_MASTER`).
    RunningPromoted,
    /// 9: failed in the promoted role (formerly `OCF_FAILED_MASTER`).
    FailedPromoted,
    /// 190: running but degraded.
    Degraded,
    /// 191: running promoted but degraded.
    DegradedPromoted,
}

/// How bad a failing exit code is, as a cluster manager treats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Severity {
    /// Not a failure.
    None,
    /// Recoverable in place: restart on this node.
    Soft,
    /// This node cannot run the resource: move it elsewhere.
    Hard,
    /// The configuration is wrong everywhere: stop trying on any node.
    Fatal,
}

/// The resource state an exit code reports, when it reports one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ResourceState {
    /// Cleanly stopped.
    Stopped,
    /// Running (unpromoted, for promotable resources).
    Running,
    /// Running in the promoted role.
    Promoted,
    /// Failed in the promoted role.
    FailedPromoted,
    /// Running, degraded.
    Degraded,
    /// Running promoted, degraded.
    DegradedPromoted,
    /// Failed: not known to be running or stopped.
    Failed,
}

/// What an exit code means for one action: success or failure, the state it reports and how
/// bad a failure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Verdict {
    /// True when the action did what was asked (monitor: it learnt the state).
    pub success: bool,
    /// The state of the resource this result reports, if any.
    pub state: Option<ResourceState>,
    /// How bad it is when it is a failure ([`Severity::None`] on success).
    pub severity: Severity,
}

impl Verdict {
    /// True when the action succeeded.
    pub const fn is_success(self) -> bool {
        self.success
    }

    const fn ok(state: Option<ResourceState>) -> Self {
        Self {
            success: true,
            state,
            severity: Severity::None,
        }
    }

    const fn fail(state: Option<ResourceState>, severity: Severity) -> Self {
        Self {
            success: false,
            state,
            severity,
        }
    }
}

impl ExitCode {
    /// Every exit code, in numeric order.
    pub const ALL: [ExitCode; 12] = [
        ExitCode::Success,
        ExitCode::ErrGeneric,
        ExitCode::ErrArgs,
        ExitCode::ErrUnimplemented,
        ExitCode::ErrPerm,
        ExitCode::ErrInstalled,
        ExitCode::ErrConfigured,
        ExitCode::NotRunning,
        ExitCode::RunningPromoted,
        ExitCode::FailedPromoted,
        ExitCode::Degraded,
        ExitCode::DegradedPromoted,
    ];

    /// The code for a process exit status, or `None` when OCF does not define it.
    pub const fn from_code(code: i32) -> Option<Self> {
        Some(match code {
            0 => ExitCode::Success,
            1 => ExitCode::ErrGeneric,
            2 => ExitCode::ErrArgs,
            3 => ExitCode::ErrUnimplemented,
            4 => ExitCode::ErrPerm,
            5 => ExitCode::ErrInstalled,
            6 => ExitCode::ErrConfigured,
            7 => ExitCode::NotRunning,
            8 => ExitCode::RunningPromoted,
            9 => ExitCode::FailedPromoted,
            190 => ExitCode::Degraded,
            191 => ExitCode::DegradedPromoted,
            _ => return None,
        })
    }

    /// The number the agent exits with.
    pub const fn code(self) -> u8 {
        match self {
            ExitCode::Success => 0,
            ExitCode::ErrGeneric => 1,
            ExitCode::ErrArgs => 2,
            ExitCode::ErrUnimplemented => 3,
            ExitCode::ErrPerm => 4,
            ExitCode::ErrInstalled => 5,
            ExitCode::ErrConfigured => 6,
            ExitCode::NotRunning => 7,
            ExitCode::RunningPromoted => 8,
            ExitCode::FailedPromoted => 9,
            ExitCode::Degraded => 190,
            ExitCode::DegradedPromoted => 191,
        }
    }

    /// The shell variable name from `ocf-returncodes` (1.1 names: `OCF_RUNNING_PROMOTED`).
    pub const fn name(self) -> &'static str {
        match self {
            ExitCode::Success => "OCF_SUCCESS",
            ExitCode::ErrGeneric => "OCF_ERR_GENERIC",
            ExitCode::ErrArgs => "OCF_ERR_ARGS",
            ExitCode::ErrUnimplemented => "OCF_ERR_UNIMPLEMENTED",
            ExitCode::ErrPerm => "OCF_ERR_PERM",
            ExitCode::ErrInstalled => "OCF_ERR_INSTALLED",
            ExitCode::ErrConfigured => "OCF_ERR_CONFIGURED",
            ExitCode::NotRunning => "OCF_NOT_RUNNING",
            ExitCode::RunningPromoted => "OCF_RUNNING_PROMOTED",
            ExitCode::FailedPromoted => "OCF_FAILED_PROMOTED",
            ExitCode::Degraded => "OCF_DEGRADED",
            ExitCode::DegradedPromoted => "OCF_DEGRADED_PROMOTED",
        }
    }

    /// The 1.0-era name where it differs (`OCF_RUNNING_MASTER`, `OCF_FAILED_MASTER`).
    pub const fn legacy_name(self) -> Option<&'static str> {
        match self {
            ExitCode::RunningPromoted => Some("OCF_RUNNING_MASTER"),
            ExitCode::FailedPromoted => Some("OCF_FAILED_MASTER"),
            ExitCode::DegradedPromoted => Some("OCF_DEGRADED_MASTER"),
            _ => None,
        }
    }

    /// What the code means in general, in a few words.
    pub const fn meaning(self) -> &'static str {
        match self {
            ExitCode::Success => "success",
            ExitCode::ErrGeneric => "generic error",
            ExitCode::ErrArgs => "invalid or missing arguments",
            ExitCode::ErrUnimplemented => "action not implemented",
            ExitCode::ErrPerm => "insufficient permissions",
            ExitCode::ErrInstalled => "required software not installed",
            ExitCode::ErrConfigured => "invalid configuration",
            ExitCode::NotRunning => "not running",
            ExitCode::RunningPromoted => "running promoted",
            ExitCode::FailedPromoted => "failed while promoted",
            ExitCode::Degraded => "running degraded",
            ExitCode::DegradedPromoted => "running promoted, degraded",
        }
    }

    /// How bad this code is as a failure, regardless of the action: 1 and 9 soft, 2–5 hard
    /// for this node, 6 fatal for the whole cluster; 0, 7, 8, 190, 191 none.
    pub const fn severity(self) -> Severity {
        match self {
            ExitCode::ErrGeneric | ExitCode::FailedPromoted => Severity::Soft,
            ExitCode::ErrArgs
            | ExitCode::ErrUnimplemented
            | ExitCode::ErrPerm
            | ExitCode::ErrInstalled => Severity::Hard,
            ExitCode::ErrConfigured => Severity::Fatal,
            ExitCode::Success
            | ExitCode::NotRunning
            | ExitCode::RunningPromoted
            | ExitCode::Degraded
            | ExitCode::DegradedPromoted => Severity::None,
        }
    }

    /// What this code means as the result of `action`.
    ///
    /// Monitor (and status) report state: 0 running, 7 stopped, 8 promoted, 190/191 degraded
    /// are all successful answers; 9 is a promoted failure. For `stop`, 7 is accepted as
    /// "stopped" (the specification asks for 0, the conformance suite flags it). Any other action
    /// succeeds only with 0; the states 7/8/9/190/191 from them are unexpected (soft failures).
    pub const fn verdict(self, action: Action) -> Verdict {
        use ResourceState as S;
        let probe = action.is_probe_like();
        match self {
            ExitCode::Success => Verdict::ok(match action {
                Action::Monitor | Action::Status | Action::Start | Action::Demote => {
                    Some(S::Running)
                }
                Action::Promote => Some(S::Promoted),
                Action::Stop => Some(S::Stopped),
                _ => None,
            }),
            ExitCode::NotRunning if probe || matches!(action, Action::Stop) => {
                Verdict::ok(Some(S::Stopped))
            }
            ExitCode::NotRunning => Verdict::fail(Some(S::Stopped), Severity::Soft),
            ExitCode::RunningPromoted if probe => Verdict::ok(Some(S::Promoted)),
            ExitCode::RunningPromoted => Verdict::fail(Some(S::Promoted), Severity::Soft),
            ExitCode::Degraded if probe => Verdict::ok(Some(S::Degraded)),
            ExitCode::Degraded => Verdict::fail(Some(S::Degraded), Severity::Soft),
            ExitCode::DegradedPromoted if probe => Verdict::ok(Some(S::DegradedPromoted)),
            ExitCode::DegradedPromoted => Verdict::fail(Some(S::DegradedPromoted), Severity::Soft),
            ExitCode::FailedPromoted => Verdict::fail(Some(S::FailedPromoted), Severity::Soft),
            other => Verdict::fail(if probe { Some(S::Failed) } else { None }, other.severity()),
        }
    }
}

impl fmt::Display for ExitCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}: {})", self.code(), self.name(), self.meaning())
    }
}

impl From<ExitCode> for u8 {
    fn from(c: ExitCode) -> u8 {
        c.code()
    }
}

impl From<ExitCode> for i32 {
    fn from(c: ExitCode) -> i32 {
        i32::from(c.code())
    }
}

impl TryFrom<i32> for ExitCode {
    type Error = ExitCodeError;

    fn try_from(code: i32) -> Result<Self, Self::Error> {
        ExitCode::from_code(code).ok_or(ExitCodeError { code })
    }
}

impl Serialize for ExitCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.code())
    }
}

impl<'de> Deserialize<'de> for ExitCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i32::deserialize(d)?;
        ExitCode::try_from(n).map_err(serde::de::Error::custom)
    }
}
