#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod action;
pub mod agent;
pub mod agent_id;
pub mod env;
pub mod error;
pub mod executor;
pub mod exit_code;
pub mod metadata;
pub mod outcome;
pub mod validate;

pub use action::Action;
pub use agent::{ActionRequest, ResourceAgent};
pub use agent_id::AgentId;
#[allow(deprecated)]
pub use error::ErrorKind;
pub use error::{
    AgentIdError, Cause, EnvError, ExitCodeError, MetadataError, ParseActionError, ResourceError,
    ResourceErrorKind, ValidationError,
};
pub use executor::{
    Executor, OpResult, Operation, OperationResult, RecurringId, ResourceSpec, ResultStream,
};
pub use exit_code::{ExitCode, ResourceState, Severity, Verdict};
pub use metadata::Metadata;
#[allow(deprecated)]
pub use outcome::Outcome;
pub use outcome::{AgentOutcome, Status};
