//! Errors of the resource agent API.
//!
//! The convention is the fencing crate's: callers match on [`ResourceError::kind`], a
//! `#[non_exhaustive]` [`ResourceErrorKind`]; variants carry the detail (which agent, which
//! resource), and a variant with an underlying cause (an OS error) keeps it as its
//! [`std::error::Error::source`], shared behind an `Arc` ([`Cause`]) so the error stays `Clone`.
//! Messages say what went wrong and never name a command of a particular tool: advice such as
//! "run `ocf ra list`" belongs to the command line that prints the error.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::AgentId;
use crate::validate::ParamProblem;

/// An action name the API does not define.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown OCF action {name:?} (known: start, stop, monitor, promote, demote, notify, reload, reload-agent, migrate_to, migrate_from, meta-data, validate-all, status, methods, usage, recover)"
)]
#[non_exhaustive]
pub struct ParseActionError {
    /// The name given.
    pub name: String,
}

/// A number that is not an OCF exit code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} is not an OCF exit code (defined: 0-9, 190, 191)")]
#[non_exhaustive]
pub struct ExitCodeError {
    /// The number.
    pub code: i32,
}

/// A malformed agent id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AgentIdError {
    /// Not of the form `ocf:<provider>:<type>`.
    #[error("{input:?} is not an agent id; write ocf:<provider>:<type>, e.g. ocf:heartbeat:Dummy")]
    Syntax {
        /// The text given.
        input: String,
    },
    /// A class other than `ocf` (`lsb:`, `systemd:`, `stonith:`).
    #[error(
        "{input:?} is a {class} agent; only ocf:<provider>:<type> agents are resource agents here"
    )]
    NotOcf {
        /// The text given.
        input: String,
        /// The class it names.
        class: String,
    },
    /// The provider or type is not a safe file name.
    #[error("agent {part} {value:?} {reason}; it must be a plain file name")]
    BadPart {
        /// `provider` or `type`.
        part: &'static str,
        /// The value.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// A request whose names cannot become an agent's environment: refused before anything runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// A parameter name that is not a shell variable name.
    #[error(
        "parameter name {name:?} is not a shell variable name (it must match {rule}); a /bin/sh agent could not read OCF_RESKEY_{name}",
        rule = crate::env::NAME_RULE
    )]
    BadParamName {
        /// The name given.
        name: String,
    },
    /// A meta attribute name that is not a shell variable name, even with `-` as `_`.
    #[error(
        "meta attribute name {name:?} is not a shell variable name (with '-' as '_', it must match {rule})",
        rule = crate::env::NAME_RULE
    )]
    BadMetaName {
        /// The name given.
        name: String,
    },
    /// An instance name (`OCF_RESOURCE_INSTANCE`) that breaks the instance rule.
    #[error(
        "instance name {instance:?} {reason} (the rule: {rule})",
        rule = crate::env::INSTANCE_RULE
    )]
    BadInstance {
        /// The name given.
        instance: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Meta-data that cannot be read. Positions are byte offsets into the document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "error", rename_all = "snake_case")]
#[non_exhaustive]
pub enum MetadataError {
    /// The document is empty (no root element).
    #[error("meta-data is empty: the agent printed no XML element")]
    Empty,
    /// The bytes are not UTF-8.
    #[error("meta-data is not UTF-8 (bad byte at offset {position})")]
    NotUtf8 {
        /// Offset of the first bad byte.
        position: u64,
    },
    /// The XML is malformed.
    #[error("meta-data is not well-formed XML at offset {position}: {message}")]
    Xml {
        /// Where.
        position: u64,
        /// What the XML reader said.
        message: String,
    },
    /// An element is never closed.
    #[error("meta-data ends inside <{element}>: the document is cut short")]
    Unclosed {
        /// The open element.
        element: String,
    },
    /// Content after the root element ends.
    #[error("meta-data has content after the root element (offset {position})")]
    TrailingContent {
        /// Where.
        position: u64,
    },
    /// Elements nest deeper than [`MAX_DEPTH`](crate::metadata::MAX_DEPTH).
    #[error("meta-data nests elements deeper than {limit}")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// The root element is not `<resource-agent>`.
    #[error("meta-data root element is <{found}>, expected <resource-agent>")]
    WrongRoot {
        /// The root element found.
        found: String,
    },
    /// A mandatory attribute is missing.
    #[error("meta-data <{element}> lacks its {attribute:?} attribute")]
    MissingAttribute {
        /// The element.
        element: String,
        /// The attribute.
        attribute: &'static str,
    },
}

/// A parameter set that does not match the agent's meta-data: every problem found. Advice to
/// show, unless the caller asked for strict mode (then a refusal of a start-like action).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("invalid parameters for agent {agent}: {}; the agent's meta-data lists what it accepts", list(.problems))]
#[non_exhaustive]
pub struct ValidationError {
    /// The agent's name from its meta-data.
    pub agent: String,
    /// What is wrong, in order: unknown names first, then per parameter.
    pub problems: Vec<ParamProblem>,
}

fn list(problems: &[ParamProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The underlying cause of a [`ResourceError`], shared so that the error stays `Clone`.
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// The category of a [`ResourceError`], for callers that match on what happened, not on
/// details. Every variant of [`ResourceError`] has exactly one kind.
///
/// ```
/// use ocf_resources::{ResourceError, ResourceErrorKind};
/// let e = ResourceError::UnknownResource { name: "web".into() };
/// assert_eq!(e.kind(), ResourceErrorKind::UnknownResource);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ResourceErrorKind {
    /// [`ResourceError::AgentNotFound`]: no such agent.
    AgentNotFound,
    /// [`ResourceError::Metadata`] or [`ResourceError::MetadataRun`]: meta-data could not be
    /// obtained or read.
    Metadata,
    /// [`ResourceError::InvalidParameters`]: parameters failed validation (strict mode).
    InvalidParameters,
    /// [`ResourceError::UnknownResource`]: no such resource.
    UnknownResource,
    /// [`ResourceError::AlreadyRegistered`]: a resource with that name exists.
    AlreadyRegistered,
    /// [`ResourceError::UnknownOperation`]: no such recurring operation.
    UnknownOperation,
    /// [`ResourceError::InvalidRequest`] or [`ResourceError::Env`]: the request itself is
    /// wrong (zero interval, a name an agent cannot be given, ...); nothing ran.
    InvalidRequest,
    /// [`ResourceError::Closed`]: the executor has shut down or cannot be reached.
    Closed,
    /// [`ResourceError::Lagged`]: a result subscriber missed results; its stream goes on.
    Lagged,
    /// [`ResourceError::Io`]: an operating system failure running the agent.
    Io,
    /// [`ResourceError::NotImplemented`]: the implementation lacks the operation.
    NotImplemented,
}

/// The name of [`ResourceErrorKind`] in 0.1.
#[deprecated(since = "0.2.0", note = "renamed `ResourceErrorKind`")]
pub type ErrorKind = ResourceErrorKind;

/// What can go wrong using an agent or an executor (not an agent's own failing result, which
/// is an [`AgentOutcome`](crate::AgentOutcome)).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ResourceError {
    /// The agent is not installed or registered.
    #[error("agent {agent} not found: {looked_in}")]
    AgentNotFound {
        /// The agent.
        agent: AgentId,
        /// Where it was looked for (`no file /usr/lib/ocf/resource.d/heartbeat/Dummy`).
        looked_in: String,
    },
    /// The agent's meta-data could not be read.
    #[error("meta-data of {agent} is unusable: {source}")]
    Metadata {
        /// The agent.
        agent: AgentId,
        /// Why.
        source: MetadataError,
    },
    /// Running `meta-data` failed (exit code, timeout, ...).
    #[error("{agent} meta-data failed: {reason}")]
    MetadataRun {
        /// The agent.
        agent: AgentId,
        /// How it failed.
        reason: String,
    },
    /// The parameters do not match the meta-data (strict mode only).
    #[error(transparent)]
    InvalidParameters(#[from] ValidationError),
    /// A parameter, meta attribute or instance name cannot be passed to an agent.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// No resource by that name.
    #[error("no resource named {name:?} is registered; register it first")]
    UnknownResource {
        /// The name.
        name: String,
    },
    /// The name is taken.
    #[error("a resource named {name:?} is already registered; unregister it or pick another name")]
    AlreadyRegistered {
        /// The name.
        name: String,
    },
    /// No recurring operation with that id on that resource.
    #[error("resource {resource:?} has no recurring operation {id}")]
    UnknownOperation {
        /// The resource.
        resource: String,
        /// The operation id.
        id: u64,
    },
    /// The request is wrong.
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// Why.
        reason: String,
    },
    /// The executor (or the part of it named) has shut down or cannot be reached.
    #[error("{what} has shut down")]
    Closed {
        /// What closed (`executor`, `agent registry`).
        what: String,
    },
    /// A result subscriber fell behind and `missed` results were dropped for it. The stream
    /// goes on with the results after the gap; each resource's history holds the results the
    /// subscriber missed.
    #[error(
        "the result stream dropped {missed} results for a subscriber that fell behind; read the history to catch up"
    )]
    Lagged {
        /// How many results were dropped.
        missed: u64,
    },
    /// An operating system failure running the agent (not the agent's own failure, which is
    /// an [`AgentOutcome`](crate::AgentOutcome)).
    #[error("running {agent}: {operation} failed")]
    Io {
        /// The agent.
        agent: AgentId,
        /// What was being done (`spawning the agent`).
        operation: String,
        /// The operating system's error.
        #[source]
        source: Cause,
    },
    /// The implementation does not offer this.
    #[error("{implementer} does not implement {operation}")]
    NotImplemented {
        /// The operation.
        operation: &'static str,
        /// The implementation.
        implementer: &'static str,
    },
}

impl ResourceError {
    /// An operating system failure while `operation` ran `agent`, keeping `source` as the
    /// error's [`source`](std::error::Error::source).
    pub fn io(
        agent: AgentId,
        operation: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Io {
            agent,
            operation: operation.into(),
            source: Arc::new(source),
        }
    }

    /// The underlying cause itself (the `io::Error`), ready to downcast.
    ///
    /// ```
    /// use std::io;
    /// use ocf_resources::{AgentId, ResourceError};
    /// let agent: AgentId = "ocf:heartbeat:Dummy".parse().unwrap();
    /// let e = ResourceError::io(agent, "spawning the agent", io::Error::from(io::ErrorKind::OutOfMemory));
    /// let os = e.cause().and_then(|c| c.downcast_ref::<io::Error>()).unwrap();
    /// assert_eq!(os.kind(), io::ErrorKind::OutOfMemory);
    /// ```
    pub fn cause(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }

    /// The error's category.
    pub fn kind(&self) -> ResourceErrorKind {
        match self {
            ResourceError::AgentNotFound { .. } => ResourceErrorKind::AgentNotFound,
            ResourceError::Metadata { .. } | ResourceError::MetadataRun { .. } => {
                ResourceErrorKind::Metadata
            }
            ResourceError::InvalidParameters(_) => ResourceErrorKind::InvalidParameters,
            ResourceError::UnknownResource { .. } => ResourceErrorKind::UnknownResource,
            ResourceError::AlreadyRegistered { .. } => ResourceErrorKind::AlreadyRegistered,
            ResourceError::UnknownOperation { .. } => ResourceErrorKind::UnknownOperation,
            ResourceError::InvalidRequest { .. } | ResourceError::Env(_) => {
                ResourceErrorKind::InvalidRequest
            }
            ResourceError::Closed { .. } => ResourceErrorKind::Closed,
            ResourceError::Lagged { .. } => ResourceErrorKind::Lagged,
            ResourceError::Io { .. } => ResourceErrorKind::Io,
            ResourceError::NotImplemented { .. } => ResourceErrorKind::NotImplemented,
        }
    }
}
