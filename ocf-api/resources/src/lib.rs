#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

/// Implements a trait for pointers to an implementation (`&T`, `&mut T`, `Box<T>`, `Arc<T>`)
/// by forwarding every method to the pointee: the one way this crate writes such impls (the
/// fencing crate's macro).
macro_rules! forward_pointers {
    ($trait:ident for [$($ptr:ty),+ $(,)?] $body:tt) => {
        $(
            #[async_trait::async_trait]
            impl<T: $trait + ?Sized> $trait for $ptr $body
        )+
    };
}
pub(crate) use forward_pointers;

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
    Executor, ExecutorAdmin, OpResult, Operation, OperationResult, RecurringId, ResourceSpec,
    ResultStream,
};
pub use exit_code::{ExitCode, ResourceState, Severity, Verdict};
pub use metadata::Metadata;
#[allow(deprecated)]
pub use outcome::Outcome;
pub use outcome::{AgentOutcome, Status};

// Compile-time promises: every trait is dyn-compatible, and a pointer to an implementation
// (`&T`, `Box<T>`, `Arc<T>`, also to a `dyn`) is one.
const _: fn() = || {
    use std::sync::Arc;
    fn executor<E: Executor>() {}
    fn admin<E: ExecutorAdmin>() {}
    fn agent<A: ResourceAgent>() {}
    fn stream<S: ResultStream>() {}
    executor::<Arc<dyn Executor>>();
    executor::<Arc<dyn ExecutorAdmin>>();
    executor::<&'static dyn Executor>();
    admin::<Box<dyn ExecutorAdmin>>();
    admin::<Arc<dyn ExecutorAdmin>>();
    agent::<Arc<dyn ResourceAgent>>();
    stream::<Box<dyn ResultStream>>();
};
