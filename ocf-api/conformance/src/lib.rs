#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod clock;
pub mod membership;
mod report;

pub use clock::{Clock, timeout};
pub use report::{Check, CheckOutcome, Report};
