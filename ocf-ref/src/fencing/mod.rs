//! Fencing: devices that drive the real fence-agents (`fence_*`), cluster-glue's stonith
//! plugins and native devices, and the fencer that merges concurrent requests for one node
//! into one action on the hardware.
//!
//! - [`agent`]: fence-agents over the stdin `key=value` protocol (secrets never in argv).
//! - [`stonith`]: cluster-glue plugins through the `stonith` command (parameters via `-E`).
//! - [`native`]: a null device, a manual (operator-acknowledged) device, a simulated device.
//! - [`fencer`]: the [`ocf_fencing::Fencer`] implementation.
//! - [`tester`]: a conformance check of a fence agent (`ocf fence test`).
//! - [`metadata_xml`]: the meta-data XML parser.
//! - [`targets`]: host lists and host maps from configuration text.
//! - [`policy`]: the quorum rule (fence only from a quorate view) and view-based incident ids.

pub mod agent;
pub mod fencer;
pub mod metadata_xml;
pub mod native;
pub mod policy;
pub mod stonith;
pub mod targets;
pub mod tester;
