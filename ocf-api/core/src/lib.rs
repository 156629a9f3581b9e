#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod millis;
mod node;
mod secret;

pub use node::{MAX_NAME_LEN, NameError, NodeId, NodeName};
pub use secret::Secret;
