//! Fencing: devices that drive the real fence-agents (`fence_*`), cluster-glue's stonith
//! plugins and native devices, and the fencer that merges concurrent requests for one node
//! into one action on the hardware.
//!
//! - [`devices`]: the [`ocf_fencing::FenceDevice`] implementations: [`devices::agent`]
//!   (fence-agents), [`devices::stonith`] (cluster-glue plugins), [`devices::native`].
//! - [`fencer`]: the [`ocf_fencing::Fencer`] and [`ocf_fencing::FencerAdmin`] implementation.
//! - [`cluster`]: the cluster fencer: one authority per primary view, so a node is shot once
//!   cluster-wide (see its `FENCING.md`).
//! - [`daemon_fencer`]: a [`ocf_fencing::Fencer`] over a node daemon's socket (the fencer that
//!   daemon serves), for any process on the node.
//! - [`tester`]: a conformance check of a fence agent (`ocf fence test`).
//! - [`metadata_xml`]: fence meta-data from the `<resource-agent>` XML, through
//!   `ocf_resources`' parser.
//! - [`node_devices`]: the devices a node declares in its `node.toml`, checked and built
//!   into a ready fencer.
//! - [`targets`]: host lists and host maps from configuration text.
//! - [`policy`]: the quorum rule (fence only from a quorate view).
//! - [`incident_name`]: the one name of the incident "node N was lost in view V".

pub mod cluster;
pub mod daemon_fencer;
pub mod devices;
pub mod fencer;
pub mod incident_name;
pub mod metadata_xml;
pub mod node_devices;
pub mod policy;
pub mod requester;
pub mod targets;
pub mod tester;
