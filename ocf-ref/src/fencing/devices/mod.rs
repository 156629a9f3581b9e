//! The fence devices of the reference implementation, one module per kind.
//!
//! - [`agent`]: fence-agents over the stdin `key=value` protocol (secrets never in argv).
//! - [`stonith`]: cluster-glue plugins through the `stonith` command (parameters via `-E`).
//! - [`native`]: a null device, a manual (operator-acknowledged) device, a simulated device.

pub mod agent;
pub mod native;
pub mod stonith;
