//! The cluster fencer: one fence authority for the whole cluster, so a node is shot once,
//! whoever asks and from whichever node. See `FENCING.md` beside this file for the design and
//! its invariants.

pub mod link;
pub mod protocol;
pub mod sim;
