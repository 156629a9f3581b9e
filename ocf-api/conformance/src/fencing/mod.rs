//! The fencing suites: one for a single [`FenceDevice`](ocf_fencing::FenceDevice), one for a
//! [`Fencer`](ocf_fencing::Fencer).
//!
//! - [`run_device`] checks a device you configured for the test: what it lists, that it
//!   refuses nodes it does not serve with a typed error, and (when you say it is safe) a power
//!   round trip confirmed by `status`.
//! - [`run_fencer`] checks a fencer your [`FencerHarness`] builds, by registering the suite's
//!   own counting [`TestDevice`]s: merging, topology order, "all devices of a level",
//!   failure and no-device answers, history and policy refusal.

mod device;
mod fencer;
mod test_device;

pub use device::{DeviceOptions, run_device, run_device_with_progress};
pub use fencer::{FencerHarness, FencerOptions, run_fencer, run_fencer_with_progress};
pub use test_device::{DeviceCall, Journal, TestDevice};
