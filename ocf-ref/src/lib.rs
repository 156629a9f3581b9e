#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod bounded_read;
pub mod conformance;
pub mod demo;
pub mod explain;
pub mod failover;
pub mod fencing;
pub mod hpc;
pub mod membership;
pub mod process;
pub mod resources;

#[cfg(feature = "cli")]
pub mod cli;
