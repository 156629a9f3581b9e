#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

/// Implements a trait for pointers to an implementation (`&T`, `&mut T`, `Box<T>`, `Arc<T>`)
/// by forwarding every method to the pointee: the one way this crate writes such impls.
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
pub mod device;
pub mod error;
pub mod events;
pub mod fencer;
pub mod history;
pub mod metadata;
pub mod params;
pub mod policy;

pub use action::{DeviceAction, FenceAction, PowerState, UnknownAction};
pub use device::{DeviceId, FenceDevice, InvalidId, Targets};
pub use error::{Cause, FenceError, FenceErrorKind};
pub use events::{DeathCause, FenceEvent, FenceEventStream, NodeDeath};
#[allow(deprecated)]
pub use fencer::FenceLevel;
pub use fencer::{FenceRequest, Fencer, FencerAdmin, IncidentId, RequesterId, TopologyLevel};
#[allow(deprecated)]
pub use history::Outcome;
pub use history::{
    DeviceAttempt, Execution, FenceId, FenceOutcome, FenceRecord, HistoryFilter, LevelAttempt, UnixMillis,
};
pub use metadata::{
    DeviceMetadata, DeviceParameter, ParameterType, SECRET_GETOPT_PLACEHOLDERS,
    SECRET_PARAMETER_NAMES, is_secret_parameter, is_secret_placeholder,
};
pub use params::{DeviceParams, ParamRefusal, ParamValue, check_env_param, check_stdin_param};
pub use policy::{AllowAll, FencingPolicy, Refusal};

/// The name of [`FenceErrorKind`] in 0.1.
#[deprecated(since = "0.2.0", note = "renamed `FenceErrorKind`")]
pub type ErrorKind = FenceErrorKind;

// Compile-time promises: every trait is dyn-compatible, and a pointer to an implementation
// (`&T`, `Box<T>`, `Arc<T>`, also to a `dyn`) is one.
const _: fn() = || {
    use std::sync::Arc;
    fn fencer<F: Fencer>() {}
    fn admin<F: FencerAdmin>() {}
    fn device<D: FenceDevice>() {}
    fn policy<P: FencingPolicy>() {}
    fn stream<S: FenceEventStream>() {}
    fencer::<Arc<dyn Fencer>>();
    fencer::<Arc<dyn FencerAdmin>>();
    fencer::<&'static dyn Fencer>();
    admin::<Box<dyn FencerAdmin>>();
    admin::<Arc<dyn FencerAdmin>>();
    device::<Arc<dyn FenceDevice>>();
    device::<&'static dyn FenceDevice>();
    policy::<Box<dyn FencingPolicy>>();
    policy::<Arc<dyn FencingPolicy>>();
    stream::<Box<dyn FenceEventStream>>();
};

#[cfg(test)]
mod serde_tests;
