//! Errors of the resource agent API.

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
#[error("invalid parameters for agent {agent}: {}; see `ocf ra meta` for what it accepts, or leave strict mode (--strict) off to let the agent judge them", list(.problems))]
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

/// The category of a [`ResourceError`], for callers that match on kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// No such agent.
    AgentNotFound,
    /// Meta-data could not be obtained or read.
    Metadata,
    /// Parameters failed validation.
    InvalidParameters,
    /// No such resource.
    UnknownResource,
    /// A resource with that name exists.
    AlreadyRegistered,
    /// No such recurring operation.
    UnknownOperation,
    /// The request itself is wrong (zero interval, ...).
    InvalidRequest,
    /// The executor or stream has shut down.
    Closed,
    /// A subscriber fell behind.
    Lagged,
    /// An operating system failure.
    Io,
    /// The implementation lacks the operation.
    NotImplemented,
}

/// What can go wrong using an agent or an executor (not an agent's own failing result, which
/// is an [`Outcome`](crate::Outcome)).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ResourceError {
    /// The agent is not installed or registered.
    #[error("agent {agent} not found ({detail}); `ocf ra list` shows the installed ones")]
    AgentNotFound {
        /// The agent.
        agent: AgentId,
        /// Where it was looked for.
        detail: String,
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
    /// The executor or stream has shut down.
    #[error("{what} has shut down")]
    Closed {
        /// What closed.
        what: String,
    },
    /// A subscriber fell behind and missed results.
    #[error("result stream lagged and missed {missed} results; read faster or resubscribe")]
    Lagged {
        /// How many were missed.
        missed: u64,
    },
    /// An operating system failure running the agent.
    #[error("running {agent}: {reason}")]
    Io {
        /// The agent.
        agent: AgentId,
        /// What failed.
        reason: String,
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
    /// The error's category.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ResourceError::AgentNotFound { .. } => ErrorKind::AgentNotFound,
            ResourceError::Metadata { .. } | ResourceError::MetadataRun { .. } => {
                ErrorKind::Metadata
            }
            ResourceError::InvalidParameters(_) => ErrorKind::InvalidParameters,
            ResourceError::UnknownResource { .. } => ErrorKind::UnknownResource,
            ResourceError::AlreadyRegistered { .. } => ErrorKind::AlreadyRegistered,
            ResourceError::UnknownOperation { .. } => ErrorKind::UnknownOperation,
            ResourceError::InvalidRequest { .. } | ResourceError::Env(_) => {
                ErrorKind::InvalidRequest
            }
            ResourceError::Closed { .. } => ErrorKind::Closed,
            ResourceError::Lagged { .. } => ErrorKind::Lagged,
            ResourceError::Io { .. } => ErrorKind::Io,
            ResourceError::NotImplemented { .. } => ErrorKind::NotImplemented,
        }
    }
}
