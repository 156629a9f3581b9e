//! The sans-IO protocol core: messages and ticks in, messages and events out.
//!
//! The same [`Node`] runs over UDP ([`super::builtin::transport`]) and in the deterministic simulator
//! ([`super::sim`]). The protocol and its invariants are stated in `ALGORITHM.md` beside this
//! module.

pub mod message;
mod node;
mod rng;
mod spec;

pub use message::{Body, CommittedView, Envelope, Proposal, ProposedMember, Update, ViewMember};
pub use node::{Event, Node, Output};
pub use rng::{Cursor, Rng};
pub use spec::{
    ClusterSpec, DEFAULT_DETECT_MS, DEFAULT_DRIFT_PPM, GOSSIP_PER_MESSAGE, INDIRECT_PROBES,
    LEASE_MARGIN_MS, NodeSpec, QuorumOptions, Timing, gossip_retransmits,
};
