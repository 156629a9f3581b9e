//! Cluster membership: engines behind the `ocf_membership::Membership` trait, and the node
//! daemon that serves one to every process on a node.
//!
//! - [`protocol`]: the built-in protocol's sans-IO core (failure detection, view agreement,
//!   quorum, primacy leases), stated in `protocol/ALGORITHM.md` (below);
//! - [`sim`]: the deterministic simulator that checks the protocol's invariants;
//! - [`builtin`]: the built-in engine, that core driven over authenticated UDP;
//! - `corosync` (feature `corosync`): the same trait over Corosync;
//! - `etcd` (feature `etcd`): the same trait over etcd, for thousands of nodes;
//! - [`daemon`]: the node daemon serving either engine on a local socket, and
//!   [`DaemonClient`](daemon::DaemonClient), a `Membership` over that socket;
//! - [`config`]: the node's TOML configuration, shared by all of them.
//!
//! The protocol and its invariants:
//!
#![doc = include_str!("protocol/ALGORITHM.md")]

pub mod builtin;
pub mod config;
#[cfg(feature = "corosync")]
pub mod corosync;
pub mod daemon;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod protocol;
pub mod sim;
