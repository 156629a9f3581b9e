//! The fencing history: one record per incident, shared by every requester merged into it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ocf_core::NodeName;
use serde::{Deserialize, Serialize};

use crate::{DeviceAction, DeviceId, FenceAction, IncidentId, RequesterId};

/// Milliseconds since the Unix epoch, the time unit of history records.
pub type UnixMillis = u64;

/// Now, in milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_millis() -> UnixMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, ocf_core::millis::as_millis)
}

/// A fencer-assigned number for one incident, unique within that fencer's lifetime.
pub type FenceId = u64;

/// How a device attempt or a whole fencing incident ended.
///
/// ```
/// use ocf_fencing::FenceOutcome;
/// let json = serde_json::to_string(&FenceOutcome::Failed { reason: "no power".into() }).unwrap();
/// assert_eq!(json, r#"{"result":"failed","reason":"no power"}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FenceOutcome {
    /// The device confirmed the action.
    Succeeded,
    /// It failed; `reason` says how (secrets redacted).
    Failed {
        /// What went wrong.
        reason: String,
    },
    /// It ran out of time.
    TimedOut {
        /// The time it had, in milliseconds.
        after_ms: u64,
    },
}

impl FenceOutcome {
    /// Whether this is [`FenceOutcome::Succeeded`].
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Succeeded)
    }
}

/// The name of [`FenceOutcome`] in 0.1.
#[deprecated(since = "0.2.0", note = "renamed `FenceOutcome`")]
pub type Outcome = FenceOutcome;

/// One device operation made while handling an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeviceAttempt {
    /// The device.
    pub device: DeviceId,
    /// What it was asked (a reboot on a multi-device level is done as `off` then `on`).
    pub action: DeviceAction,
    /// How it ended.
    pub outcome: FenceOutcome,
    /// When it started.
    pub started_ms: UnixMillis,
    /// When it ended.
    pub ended_ms: UnixMillis,
}

impl DeviceAttempt {
    /// A finished attempt.
    pub fn new(
        device: DeviceId,
        action: DeviceAction,
        outcome: FenceOutcome,
        started_ms: UnixMillis,
        ended_ms: UnixMillis,
    ) -> Self {
        Self {
            device,
            action,
            outcome,
            started_ms,
            ended_ms,
        }
    }
}

/// What happened at one topology level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LevelAttempt {
    /// The level number, from 1. With no topology each capable device is a level of its own.
    pub level: u32,
    /// The device operations, in the order they were made.
    pub attempts: Vec<DeviceAttempt>,
    /// Whether the level as a whole succeeded (all its devices did).
    pub succeeded: bool,
    /// The node that ran it, when a cluster fencer chose one (`None` for a fencer that runs
    /// its own devices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<NodeName>,
}

impl LevelAttempt {
    /// A level with its attempts.
    pub fn new(level: u32, attempts: Vec<DeviceAttempt>, succeeded: bool) -> Self {
        Self {
            level,
            attempts,
            succeeded,
            executor: None,
        }
    }

    /// The same level, run by `node`.
    #[must_use]
    pub fn ran_on(mut self, node: NodeName) -> Self {
        self.executor = Some(node);
        self
    }
}

/// One run of an incident's devices by one node of the cluster.
///
/// A cluster fencer picks one node to execute an incident; if that node dies or leaves the
/// view mid-fence, the outcome of its run is unknown and the next authority picks another:
/// the record then lists both executions, in order.
///
/// ```
/// use ocf_fencing::{Execution, FenceOutcome};
/// let e = Execution::new(1, "n2".parse().unwrap(), 1_000);
/// assert!(e.outcome.is_none());
/// let json = serde_json::to_string(&e).unwrap();
/// assert_eq!(json, r#"{"attempt":1,"node":"n2","started_ms":1000,"ended_ms":null,"outcome":null}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Execution {
    /// Its number within the incident, from 1.
    pub attempt: u32,
    /// The node that ran (or was to run) the devices.
    pub node: NodeName,
    /// When it was assigned.
    pub started_ms: UnixMillis,
    /// When it ended; `None` while it runs.
    #[serde(default)]
    pub ended_ms: Option<UnixMillis>,
    /// How it ended; `None` while it runs. An execution cut short by its node leaving the
    /// view ends `Failed` with a reason saying the outcome is unknown.
    #[serde(default)]
    pub outcome: Option<FenceOutcome>,
}

impl Execution {
    /// A new execution by `node`, started at `started_ms`.
    pub fn new(attempt: u32, node: NodeName, started_ms: UnixMillis) -> Self {
        Self {
            attempt,
            node,
            started_ms,
            ended_ms: None,
            outcome: None,
        }
    }
}

/// One fencing incident: a target, an action, everyone who asked, and what was done.
///
/// Every requester merged into the incident receives this same record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FenceRecord {
    /// The fencer's number for it.
    pub id: FenceId,
    /// The node fenced.
    pub target: NodeName,
    /// The action.
    pub action: FenceAction,
    /// Everyone who asked, in arrival order (the first started it; the others joined), each
    /// once: a requester that asks again is not listed again, so a record stays bounded
    /// however often a scheduler retries.
    pub requesters: Vec<RequesterId>,
    /// The incident identity the requests carried, if any.
    #[serde(default)]
    pub incident: Option<IncidentId>,
    /// The levels tried, in order.
    #[serde(default)]
    pub levels: Vec<LevelAttempt>,
    /// How it ended; `None` while in flight.
    #[serde(default)]
    pub outcome: Option<FenceOutcome>,
    /// When it started.
    pub started_ms: UnixMillis,
    /// When it ended; `None` while in flight.
    #[serde(default)]
    pub ended_ms: Option<UnixMillis>,
    /// The nodes that ran its devices, in order (empty for a fencer that runs its own
    /// devices). More than one means an executor was lost mid-fence and another took over.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub executions: Vec<Execution>,
}

impl FenceRecord {
    /// A new in-flight record started now by `requester`.
    pub fn start(
        id: FenceId,
        target: NodeName,
        action: FenceAction,
        requester: RequesterId,
        incident: Option<IncidentId>,
    ) -> Self {
        Self {
            id,
            target,
            action,
            requesters: vec![requester],
            incident,
            levels: Vec::new(),
            outcome: None,
            started_ms: now_millis(),
            ended_ms: None,
            executions: Vec::new(),
        }
    }

    /// Whether it is still in flight.
    pub fn is_pending(&self) -> bool {
        self.outcome.is_none()
    }

    /// Whether it ended in success.
    pub fn succeeded(&self) -> bool {
        self.outcome.as_ref().is_some_and(FenceOutcome::is_success)
    }

    /// How long it took, once finished.
    pub fn duration(&self) -> Option<Duration> {
        self.ended_ms
            .map(|end| Duration::from_millis(end.saturating_sub(self.started_ms)))
    }

    /// Every device attempt across the levels, in order.
    pub fn attempts(&self) -> impl Iterator<Item = &DeviceAttempt> {
        self.levels.iter().flat_map(|l| l.attempts.iter())
    }
}

/// Which records a history query returns.
///
/// ```
/// use ocf_fencing::HistoryFilter;
/// let f = HistoryFilter::all().target("n1".parse().unwrap()).limit(10);
/// assert_eq!(f.limit, Some(10));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HistoryFilter {
    /// Only records about this node.
    #[serde(default)]
    pub target: Option<NodeName>,
    /// At most this many, the newest.
    #[serde(default)]
    pub limit: Option<usize>,
}

impl HistoryFilter {
    /// Every record.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only records about `target`.
    #[must_use]
    pub fn target(mut self, target: NodeName) -> Self {
        self.target = Some(target);
        self
    }

    /// At most `n` records, the newest.
    #[must_use]
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    /// Whether `record` passes the target filter (the limit applies to the whole answer).
    pub fn matches(&self, record: &FenceRecord) -> bool {
        self.target.as_ref().is_none_or(|t| *t == record.target)
    }
}
