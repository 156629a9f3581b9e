//! The causal record of an incident: why a node was fenced and what was done about it.
//!
//! Each node keeps its own [`IncidentLog`] (bounded, on disk under its state directory, so it
//! survives a restart of the daemon) of what only it sees happen: the views it installs
//! (members before and after, quorum arithmetic), the node-death events its fencer delivers,
//! and the recoveries failover managers note on it (`incident_note` on the socket). The fence
//! decision itself (authority, executions, levels, attempts, requesters, times) is in the
//! fencer's replicated history. [`explain`] joins the two for one incident, from agreed data
//! only (view contents, the replicated history, the authority's node-death event, the notes
//! managers send to every member), so every surviving node gives the same explanation;
//! `ocf explain` asks one or more nodes and checks that they agree.
//!
//! The detection evidence is what the membership engine agrees on: which node proposed the
//! view without the lost node (its coordinator, and when: the view id's epoch) and the
//! detector's rule with this cluster's timers. Per-probe evidence (which probes went
//! unanswered, which helpers confirmed) stays inside the engine's detector today.

pub mod client;
pub mod log;
pub mod record;
pub mod recorder;

pub use log::{IncidentLog, IncidentLogError, MAX_NOTES};
pub use record::{
    Detection, Explanation, FenceDecision, Note, NoteKind, Recovery, ViewChange, explain,
    last_incident,
};
