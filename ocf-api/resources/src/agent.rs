//! The resource agent trait: one agent, script or native, that runs actions.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::env::Notify;
use crate::metadata::Metadata;
use crate::{Action, AgentId, AgentOutcome, ResourceError};

/// One action to run: which, on which instance, with which parameters and limits.
///
/// `Debug` prints parameter names only: values may be passwords.
///
/// ```
/// use std::time::Duration;
/// use ocf_resources::{Action, ActionRequest};
/// let req = ActionRequest::new(Action::Monitor, "web", Duration::from_secs(20))
///     .param("state", "/tmp/web.state")
///     .interval(Duration::from_secs(10));
/// assert_eq!(req.params["state"], "/tmp/web.state");
/// assert!(!req.validate, "the agent judges its own parameters unless asked");
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ActionRequest {
    /// The action.
    pub action: Action,
    /// The resource instance's name (`OCF_RESOURCE_INSTANCE`).
    pub instance: String,
    /// Instance parameters (`OCF_RESKEY_<name>`).
    pub params: BTreeMap<String, String>,
    /// Meta attributes (`OCF_RESKEY_CRM_meta_<name>`); timeout and interval are added from the
    /// fields below.
    pub meta: BTreeMap<String, String>,
    /// How long the action may run.
    #[serde(with = "ocf_core::millis", rename = "timeout_ms")]
    pub timeout: Duration,
    /// The interval of the recurring operation this run belongs to (0 for one-shot).
    #[serde(with = "ocf_core::millis", rename = "interval_ms")]
    pub interval: Duration,
    /// Monitor depth (`OCF_CHECK_LEVEL`).
    pub check_level: Option<u32>,
    /// Notification details, for `notify`.
    pub notify: Option<Notify>,
    /// Strict mode (default false): check the parameters against the meta-data first and
    /// refuse to run, with [`ResourceError::InvalidParameters`], an action that
    /// [`may_refuse`](crate::validate::may_refuse) (start, promote, ...) when they fail. Stop,
    /// monitor and the other observing actions always run. Off, the agent judges its own
    /// parameters and its answer is the outcome.
    pub validate: bool,
    /// Ask the agent to trace itself (`OCF_TRACE_RA`).
    pub trace: bool,
}

impl fmt::Debug for ActionRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActionRequest")
            .field("action", &self.action)
            .field("instance", &self.instance)
            .field("params", &self.params.keys().collect::<Vec<_>>())
            .field("meta", &self.meta)
            .field("timeout", &self.timeout)
            .field("interval", &self.interval)
            .field("check_level", &self.check_level)
            .field("validate", &self.validate)
            .finish_non_exhaustive()
    }
}

impl ActionRequest {
    /// A request for `action` on `instance` with no parameters, not strict.
    pub fn new(action: Action, instance: impl Into<String>, timeout: Duration) -> Self {
        Self {
            action,
            instance: instance.into(),
            params: BTreeMap::new(),
            meta: BTreeMap::new(),
            timeout,
            interval: Duration::ZERO,
            check_level: None,
            notify: None,
            validate: false,
            trace: false,
        }
    }

    /// Adds one parameter.
    #[must_use]
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.insert(name.into(), value.into());
        self
    }

    /// Replaces the parameters.
    #[must_use]
    pub fn params(mut self, params: BTreeMap<String, String>) -> Self {
        self.params = params;
        self
    }

    /// Adds one meta attribute.
    #[must_use]
    pub fn meta(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.meta.insert(name.into(), value.into());
        self
    }

    /// Sets the recurring interval.
    #[must_use]
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets the monitor depth.
    #[must_use]
    pub fn check_level(mut self, level: u32) -> Self {
        self.check_level = Some(level);
        self
    }

    /// Sets the notification details.
    #[must_use]
    pub fn notify(mut self, notify: Notify) -> Self {
        self.notify = Some(notify);
        self
    }

    /// Turns strict mode on or off (see [`ActionRequest::validate`](#structfield.validate)).
    #[must_use]
    pub fn validate(mut self, on: bool) -> Self {
        self.validate = on;
        self
    }

    /// Turns agent tracing on or off.
    #[must_use]
    pub fn trace(mut self, on: bool) -> Self {
        self.trace = on;
        self
    }
}

/// A resource agent: an external script or a native implementation.
///
/// `execute` returns `Ok` for every run that happened, whatever its result (a failing exit
/// code, a timeout, a signal, a missing executable are all [`AgentOutcome`]s), and `Err` only when
/// the run could not be attempted: names that cannot become the environment, invalid
/// parameters in strict mode (never for stop or monitor), unreadable meta-data in strict
/// mode, an I/O failure.
///
/// The trait is dyn-compatible: executors hold `Arc<dyn ResourceAgent>`.
#[async_trait]
pub trait ResourceAgent: Send + Sync {
    /// The agent's id.
    fn id(&self) -> &AgentId;

    /// The agent's meta-data (implementations may cache it).
    async fn metadata(&self) -> Result<Metadata, ResourceError>;

    /// Runs one action.
    async fn execute(&self, request: ActionRequest) -> Result<AgentOutcome, ResourceError>;
}

crate::forward_pointers!(ResourceAgent for [&T, Box<T>, std::sync::Arc<T>] {
    fn id(&self) -> &AgentId {
        (**self).id()
    }
    async fn metadata(&self) -> Result<Metadata, ResourceError> {
        (**self).metadata().await
    }
    async fn execute(&self, request: ActionRequest) -> Result<AgentOutcome, ResourceError> {
        (**self).execute(request).await
    }
});
