#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod action;
pub mod device;
pub mod error;
pub mod fencer;
pub mod history;
pub mod metadata;
pub mod params;
pub mod policy;

pub use action::{DeviceAction, FenceAction, PowerState, UnknownAction};
pub use device::{DeviceId, FenceDevice, InvalidId, Targets};
pub use error::{ErrorKind, FenceError};
pub use fencer::{FenceLevel, FenceRequest, Fencer, IncidentId, RequesterId};
pub use history::{
    DeviceAttempt, FenceId, FenceRecord, HistoryFilter, LevelAttempt, Outcome, UnixMillis,
};
pub use metadata::{
    DeviceMetadata, DeviceParameter, ParameterType, SECRET_GETOPT_PLACEHOLDERS,
    SECRET_PARAMETER_NAMES, is_secret_parameter, is_secret_placeholder,
};
pub use params::{DeviceParams, ParamRefusal, ParamValue, check_env_param, check_stdin_param};
pub use policy::{AllowAll, FencingPolicy, Refusal};

#[cfg(test)]
mod serde_tests;
