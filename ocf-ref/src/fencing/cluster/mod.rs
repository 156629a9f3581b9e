//! The cluster fencer: one fence authority for the whole cluster, so a node is shot once,
//! whoever asks and from whichever node. See `FENCING.md` beside this file for the design and
//! its invariants.
//!
//! - [`protocol`]: the protocol as a pure state machine ([`protocol::FenceNode`]);
//! - [`driver`]: [`ClusterFencer`], the protocol run against a membership, a link and the
//!   node's own devices, served as an [`ocf_fencing::Fencer`];
//! - [`link`]: the datagram link between node daemons (the built-in engine's authenticated
//!   transport, or a Corosync CPG group);
//! - [`sim`]: the seeded simulation and its named invariant checkers.

pub mod driver;
pub mod link;
pub mod protocol;
pub mod sim;

pub use driver::{ClusterFencer, ClusterOptions, ExecutionGuard};
