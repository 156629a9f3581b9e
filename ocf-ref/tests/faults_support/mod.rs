//! Harness of the membership fault test (`tests/membership_faults.rs`): real `ocf node`
//! processes in network namespaces, recorders of their events, a seeded fault schedule, and
//! the checkers run over what was recorded.
//!
//! - [`net`]: namespaces, bridge, one-way cuts and port flaps.
//! - [`relay`]: per-packet loss, delay and reordering between the nodes.
//! - [`cluster`]: the node processes and their recorders.
//! - [`schedule`]: the seeded plan of faults.
//! - [`run`]: carries a plan out and keeps its timeline.
//! - [`history`]: the recorded lines, parsed per process.
//! - [`check`]: the invariant checkers, each with unit tests on hand-made histories.
//! - [`host`]: whether the host can run the test, and what a run left behind.

pub mod check;
pub mod cluster;
pub mod history;
pub mod host;
pub mod net;
pub mod relay;
pub mod run;
pub mod schedule;

pub use host::{can_run, leftovers};

use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch (the clock events' `at_us` use).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
