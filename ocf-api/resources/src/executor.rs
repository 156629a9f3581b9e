//! The executor (Pacemaker's "LRM"): named resources, operations on them, recurring monitors,
//! history and a stream of results.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{Action, AgentId, AgentOutcome, ResourceError};

/// A named resource: an instance of an agent with its parameters.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ResourceSpec {
    /// The resource's name (`OCF_RESOURCE_INSTANCE`), unique within one executor.
    pub name: String,
    /// The agent that manages it.
    pub agent: AgentId,
    /// Its parameters.
    pub params: BTreeMap<String, String>,
    /// Meta attributes passed with every operation.
    pub meta: BTreeMap<String, String>,
}

impl fmt::Debug for ResourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Parameter values may be passwords: names only.
        f.debug_struct("ResourceSpec")
            .field("name", &self.name)
            .field("agent", &self.agent)
            .field("params", &self.params.keys().collect::<Vec<_>>())
            .field("meta", &self.meta)
            .finish()
    }
}

impl ResourceSpec {
    /// A resource `name` run by `agent`, with no parameters.
    pub fn new(name: impl Into<String>, agent: AgentId) -> Self {
        Self {
            name: name.into(),
            agent,
            params: BTreeMap::new(),
            meta: BTreeMap::new(),
        }
    }

    /// Adds one parameter.
    #[must_use]
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.insert(name.into(), value.into());
        self
    }

    /// Adds one meta attribute.
    #[must_use]
    pub fn meta(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.meta.insert(name.into(), value.into());
        self
    }
}

/// An operation to run on a resource.
///
/// ```
/// use std::time::Duration;
/// use ocf_resources::{Action, executor::Operation};
/// let op = Operation::new(Action::Monitor, Duration::from_secs(20)).every(Duration::from_secs(10));
/// assert_eq!(op.interval, Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Operation {
    /// The action.
    pub action: Action,
    /// How long one run may take.
    #[serde(with = "ocf_core::millis", rename = "timeout_ms")]
    pub timeout: Duration,
    /// For recurring operations, the time between runs (0 for one-shot).
    #[serde(with = "ocf_core::millis", rename = "interval_ms")]
    pub interval: Duration,
    /// Monitor depth.
    pub check_level: Option<u32>,
    /// Extra meta attributes for this operation (over the resource's own).
    pub meta: BTreeMap<String, String>,
    /// Strict mode (default false): refuse a start-like action whose parameters fail the
    /// meta-data check; stop and monitor always run (see
    /// [`ActionRequest::validate`](crate::ActionRequest::validate)).
    pub validate: bool,
}

impl Operation {
    /// A one-shot operation.
    pub fn new(action: Action, timeout: Duration) -> Self {
        Self {
            action,
            timeout,
            interval: Duration::ZERO,
            check_level: None,
            meta: BTreeMap::new(),
            validate: false,
        }
    }

    /// Makes it recurring every `interval`.
    #[must_use]
    pub fn every(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets the monitor depth.
    #[must_use]
    pub fn check_level(mut self, level: u32) -> Self {
        self.check_level = Some(level);
        self
    }

    /// Adds a meta attribute.
    #[must_use]
    pub fn meta(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.meta.insert(name.into(), value.into());
        self
    }

    /// Turns strict mode on or off.
    #[must_use]
    pub fn validate(mut self, on: bool) -> Self {
        self.validate = on;
        self
    }
}

/// The id of a recurring operation, for cancelling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecurringId(pub u64);

impl fmt::Display for RecurringId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "recurring#{}", self.0)
    }
}

/// How an operation ended, from the executor's view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
#[non_exhaustive]
pub enum OpResult {
    /// The agent ran; its outcome.
    Completed {
        /// The outcome.
        outcome: AgentOutcome,
    },
    /// The run could not be attempted (invalid parameters, unreadable meta-data, ...).
    Error {
        /// What went wrong, with the way out.
        message: String,
    },
    /// The operation was cancelled before it ran.
    Cancelled,
}

/// One finished operation, as kept in the history and sent to subscribers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OperationResult {
    /// A number unique within the executor, growing in submission order.
    pub call_id: u64,
    /// The resource.
    pub resource: String,
    /// Its agent.
    pub agent: AgentId,
    /// The action.
    pub action: Action,
    /// The interval, for a run of a recurring operation (0 otherwise).
    #[serde(with = "ocf_core::millis", rename = "interval_ms")]
    pub interval: Duration,
    /// The recurring operation this run belongs to.
    pub recurring: Option<RecurringId>,
    /// When the run started, in milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// Time spent waiting in the resource's queue and for a concurrency slot.
    #[serde(with = "ocf_core::millis", rename = "queued_ms")]
    pub queued: Duration,
    /// How it ended.
    pub result: OpResult,
}

impl OperationResult {
    /// A result of a one-shot run with no queueing time; set the other fields as needed.
    pub fn new(
        call_id: u64,
        resource: impl Into<String>,
        agent: AgentId,
        action: Action,
        result: OpResult,
    ) -> Self {
        Self {
            call_id,
            resource: resource.into(),
            agent,
            action,
            interval: Duration::ZERO,
            recurring: None,
            started_at_ms: 0,
            queued: Duration::ZERO,
            result,
        }
    }

    /// The agent's outcome, when it ran.
    pub fn outcome(&self) -> Option<&AgentOutcome> {
        match &self.result {
            OpResult::Completed { outcome } => Some(outcome),
            _ => None,
        }
    }

    /// True when the agent ran and the outcome is a success for the action.
    pub fn succeeded(&self) -> bool {
        self.outcome().is_some_and(|o| o.succeeded(self.action))
    }
}

/// One subscriber's stream of operation results, in completion order.
///
/// How it ends and what lagging means (the same as the fencing crate's event streams):
/// - **End.** Once the executor has shut down (and the results it had sent are read), the
///   stream answers `Ok(None)`, and `Ok(None)` again on every later call: never an error.
/// - **Lag.** A reader that falls behind may have results dropped for it. It then gets
///   [`ResourceError::Lagged`] `{ missed }` once, and the stream goes on with the results
///   after the gap: the subscription stays valid, and each resource's
///   [`Executor::history`] holds the results it missed.
#[async_trait]
pub trait ResultStream: Send {
    /// The next result, waiting for it; `Ok(None)` once the executor has shut down, for ever
    /// after; [`ResourceError::Lagged`] once after a gap, then the results after it.
    async fn next_result(&mut self) -> Result<Option<OperationResult>, ResourceError>;
}

/// Runs operations on named resources, as Pacemaker's executor does: the side a client
/// calls (a cluster manager, a remote client of a node daemon).
///
/// Registering resources is [`ExecutorAdmin`], a separate trait, so a client that forwards
/// operations to a remote executor implements only what it serves.
///
/// Promises: one operation at a time per resource, in submission order (others queue);
/// different resources run in parallel (an implementation may bound how many); recurring
/// operations run every interval until cancelled or the resource is unregistered; each
/// resource keeps a bounded history; every subscriber sees every result, unless it lags (see
/// [`ResultStream`] for how a stream ends and what lagging means). Every method returns a
/// `Result`: a remote implementation may always fail to reach its executor
/// ([`ResourceError::Closed`]), and a partial one answers [`ResourceError::NotImplemented`].
///
/// Dyn-compatible: callers hold `Arc<dyn Executor>` without knowing which executor it is.
#[async_trait]
pub trait Executor: Send + Sync {
    /// Runs one operation on `resource` after those already queued, and returns its result.
    async fn execute(
        &self,
        resource: &str,
        operation: Operation,
    ) -> Result<OperationResult, ResourceError>;

    /// Starts a recurring operation (its `interval` must be non-zero); the first run is one
    /// interval from now. Results go to history and subscribers.
    async fn start_recurring(
        &self,
        resource: &str,
        operation: Operation,
    ) -> Result<RecurringId, ResourceError>;

    /// Cancels a recurring operation; a run already started completes.
    async fn cancel_recurring(&self, resource: &str, id: RecurringId) -> Result<(), ResourceError>;

    /// The resource's recent results, oldest first.
    async fn history(&self, resource: &str) -> Result<Vec<OperationResult>, ResourceError>;

    /// A new stream of every result that completes after the call returns. Earlier results
    /// are in [`Executor::history`].
    async fn subscribe(&self) -> Result<Box<dyn ResultStream>, ResourceError>;
}

/// The executor's configuration side: which resources it runs.
///
/// A subtrait of [`Executor`]: the resources it registers are the ones its operations name.
/// An implementation that only forwards operations implements [`Executor`] alone.
#[async_trait]
pub trait ExecutorAdmin: Executor {
    /// Adds a resource. Fails when the name is taken ([`ResourceError::AlreadyRegistered`])
    /// or the agent is unknown ([`ResourceError::AgentNotFound`]).
    async fn register(&self, resource: ResourceSpec) -> Result<(), ResourceError>;

    /// Removes a resource, cancelling its recurring operations; queued operations still run.
    async fn unregister(&self, name: &str) -> Result<(), ResourceError>;

    /// The registered resources, sorted by name. May fail: a remote executor can be
    /// unreachable.
    async fn resources(&self) -> Result<Vec<ResourceSpec>, ResourceError>;
}

crate::forward_pointers!(ResultStream for [&mut T, Box<T>] {
    async fn next_result(&mut self) -> Result<Option<OperationResult>, ResourceError> {
        (**self).next_result().await
    }
});

crate::forward_pointers!(Executor for [&T, Box<T>, Arc<T>] {
    async fn execute(
        &self,
        resource: &str,
        operation: Operation,
    ) -> Result<OperationResult, ResourceError> {
        (**self).execute(resource, operation).await
    }
    async fn start_recurring(
        &self,
        resource: &str,
        operation: Operation,
    ) -> Result<RecurringId, ResourceError> {
        (**self).start_recurring(resource, operation).await
    }
    async fn cancel_recurring(&self, resource: &str, id: RecurringId) -> Result<(), ResourceError> {
        (**self).cancel_recurring(resource, id).await
    }
    async fn history(&self, resource: &str) -> Result<Vec<OperationResult>, ResourceError> {
        (**self).history(resource).await
    }
    async fn subscribe(&self) -> Result<Box<dyn ResultStream>, ResourceError> {
        (**self).subscribe().await
    }
});

crate::forward_pointers!(ExecutorAdmin for [&T, Box<T>, Arc<T>] {
    async fn register(&self, resource: ResourceSpec) -> Result<(), ResourceError> {
        (**self).register(resource).await
    }
    async fn unregister(&self, name: &str) -> Result<(), ResourceError> {
        (**self).unregister(name).await
    }
    async fn resources(&self) -> Result<Vec<ResourceSpec>, ResourceError> {
        (**self).resources().await
    }
});
