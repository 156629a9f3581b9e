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
pub use error::{
    AgentIdError, EnvError, ErrorKind, ExitCodeError, MetadataError, ParseActionError,
    ResourceError, ValidationError,
};
pub use executor::{
    Executor, OpResult, Operation, OperationResult, RecurringId, ResourceSpec, ResultStream,
};
pub use exit_code::{ExitCode, ResourceState, Severity, Verdict};
pub use metadata::Metadata;
pub use outcome::{Outcome, Status};
