//! The built-in membership engine.
//!
//! - [`protocol`]: the sans-IO core (failure detection, view agreement, quorum);
//! - [`wire`]: the authenticated packet format; [`key`]: the cluster key file;
//! - [`config`]: the node's TOML configuration;
//! - [`sim`]: the deterministic simulator that checks the invariants.
//!
//! See `ALGORITHM.md` in this directory for the protocol and its invariants.

pub mod config;
pub mod key;
pub mod protocol;
pub mod sim;
pub mod wire;
