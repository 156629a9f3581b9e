#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod clock;
pub mod fencing;
pub mod membership;
mod report;
pub mod resources;

pub use clock::{Clock, timeout};
pub use report::{Check, CheckOutcome, Report};
