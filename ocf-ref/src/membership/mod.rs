//! The built-in membership engine.
//!
//! - [`protocol`]: the sans-IO core (failure detection, view agreement, quorum);
//! - [`wire`]: the authenticated packet format; [`key`]: the cluster key file;
//! - [`config`]: the node's TOML configuration;
//! - [`sim`]: the deterministic simulator that checks the invariants;
//! - [`transport`]: the UDP driver; [`engine`]: the built-in engine behind the `Membership`
//!   trait; [`hub`]: the one ordered event log every subscriber shares;
//! - [`daemon`]: the node daemon's local socket API ([`local_api`]), on a socket path claimed
//!   safely ([`local_socket`]); [`client`]: a
//!   `Membership` over that socket; `corosync` (feature `corosync`): the same trait over Corosync.
//!
//! The protocol and its invariants:
//!
#![doc = include_str!("ALGORITHM.md")]

pub mod client;
pub mod config;
#[cfg(feature = "corosync")]
pub mod corosync;
pub mod daemon;
pub mod engine;
pub mod hub;
pub mod key;
pub mod local_api;
pub mod local_socket;
pub mod loopback;
pub mod protocol;
pub mod sim;
pub mod transport;
pub mod wire;
