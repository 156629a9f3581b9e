//! The fence devices a node owns, declared in its `node.toml`, checked when the daemon starts
//! and built into a ready [`LocalFencer`].
//!
//! ```toml
//! [fencing]
//! agents_dir = "/usr/sbin"             # optional: where fence_* agents are looked up
//! lost_node_action = "reboot"          # optional: "reboot" (default), "off" or "none"
//! device_timeout_s = 60                # optional: per operation, for devices without their own
//! [[devices]]
//! id = "pdu1"
//! agent = "fence_apc"                  # fence_*, "stonith:<type>", "native:null", "native:manual"
//! host_map = { n1 = "1", n2 = "2" }    # or hosts = ["n1", "n2"]; neither: ask the agent
//! params = { ip = "10.0.0.5", username = "fence" }
//! secret_files = { password = "/etc/ocf/pdu1.password" }   # root-only files, never inline
//! timeout_s = 30                       # optional
//! [[levels]]                           # optional topology
//! target = "n1"
//! level = 1
//! devices = ["pdu1"]
//! ```
//!
//! Two stages, so a mistake stops the daemon before anything runs:
//! - [`check_tables`] (pure, run when `node.toml` is loaded): agent names (no path, no `..`),
//!   unique ids, `hosts`/`host_map`, timeouts, no secret written in `params` (by its name,
//!   [`ocf_fencing::is_secret_parameter`]), levels numbered from 1 once per target and naming
//!   declared devices that can fence the target.
//! - [`build_fencer`] (async): each distinct agent is asked for its meta-data once, with a
//!   timeout; each device's parameters are checked against it (required ones present, no
//!   unknown names, types, no parameter the meta-data marks secret written inline); the secret
//!   files are read (regular, at most 4 KiB, owned by root or the daemon's user, mode 0600 or
//!   0400: a file its group or others may read is refused); then the devices are registered in
//!   a new [`LocalFencer`] with their timeouts and the levels.
//!
//! Every mistake is a [`NodeDevicesError`] naming the device (or level) and the key. Secrets
//! travel as [`ocf_core::Secret`]: never in a message, in argv, or in `Debug` output.
//!
//! The [`DeviceSummary`] list says which targets each device can fence (or that it must be
//! asked); nodes exchange it so the cluster knows who can fence whom. Devices may differ from
//! node to node.

mod build;
mod check;
mod error;
mod tables;

use std::sync::Arc;

use ocf_core::NodeName;
use ocf_fencing::{DeviceId, FencingPolicy};
use serde::{Deserialize, Serialize};

pub use build::MAX_SECRET_FILE_BYTES;
pub use check::{AgentKind, DevicePlan, FencingPlan, MAX_TIMEOUT_S, check_tables};
pub use error::NodeDevicesError;
pub use tables::{DeviceEntry, FencingOptions, LevelEntry, LostNodeAction};

use crate::fencing::devices::native::ManualDevice;
use crate::fencing::fencer::{FencerConfig, LocalFencer};
use crate::membership::config::NodeConfig;

/// A node's fence devices, built and registered.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use ocf_ref::fencing::fencer::FencerConfig;
/// use ocf_ref::fencing::node_devices::{LostNodeAction, build_fencer};
/// use ocf_ref::membership::config::NodeConfig;
/// let config = NodeConfig::parse(r#"
/// cluster = "c1"
/// backend = "corosync"
/// [fencing]
/// lost_node_action = "off"
/// [[devices]]
/// id = "null"
/// agent = "native:null"
/// hosts = ["n1", "n2"]
/// "#, "node.toml".as_ref()).unwrap();
/// let node = build_fencer(&config, FencerConfig::default()).await.unwrap();
/// assert_eq!(node.devices[0].hosts.as_ref().unwrap().len(), 2);
/// assert_eq!(node.lost_node_action, LostNodeAction::Off);
/// # });
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct NodeDevices {
    /// The fencer, every device registered with its timeout, and the levels set.
    pub fencer: LocalFencer,
    /// What each device can fence, in file order.
    pub devices: Vec<DeviceSummary>,
    /// What the cluster does to a node lost from the view.
    pub lost_node_action: LostNodeAction,
    /// The `native:manual` devices, for whoever relays an operator's acknowledgement.
    pub manual: Vec<Arc<ManualDevice>>,
}

/// Which targets one device can fence: what a node tells the others about its devices.
///
/// ```
/// use ocf_ref::fencing::node_devices::DeviceSummary;
/// let s = DeviceSummary::new("pdu1".parse().unwrap(), Some(vec!["n1".parse().unwrap()]));
/// let json = serde_json::to_string(&s).unwrap();
/// assert_eq!(json, r#"{"id":"pdu1","hosts":["n1"]}"#);
/// assert_eq!(serde_json::from_str::<DeviceSummary>(&json).unwrap(), s);
/// assert!(s.may_fence(&"n1".parse().unwrap()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeviceSummary {
    /// The device, unique on its node.
    pub id: DeviceId,
    /// The nodes it fences, or `None` when it must be asked (the agent lists them).
    pub hosts: Option<Vec<NodeName>>,
}

impl DeviceSummary {
    /// A summary.
    pub fn new(id: DeviceId, hosts: Option<Vec<NodeName>>) -> Self {
        Self { id, hosts }
    }

    /// Whether the device may fence `target`: it lists it, or it must be asked.
    pub fn may_fence(&self, target: &NodeName) -> bool {
        self.hosts.as_ref().is_none_or(|h| h.contains(target))
    }
}

/// Checks a node's fencing tables without running anything ([`check_tables`] on `config`'s
/// `[fencing]`, `[[devices]]` and `[[levels]]`). [`NodeConfig::parse`] already did this; it is
/// here for configs built by hand and for tools that report on a config.
///
/// ```
/// use ocf_ref::fencing::node_devices::check_config;
/// use ocf_ref::membership::config::NodeConfig;
/// let config = NodeConfig::parse("cluster = \"c1\"\nbackend = \"corosync\"\n", "node.toml".as_ref()).unwrap();
/// assert!(check_config(&config).unwrap().devices.is_empty());
/// ```
pub fn check_config(config: &NodeConfig) -> Result<FencingPlan, NodeDevicesError> {
    check_tables(&config.fencing, &config.devices, &config.levels)
}

/// Checks `config`'s fence devices against their agents, builds them and registers them in a
/// new [`LocalFencer`] with `fencer`'s limits (its device timeout replaced by
/// `fencing.device_timeout_s` when given), each device's `timeout_s` and the levels. The
/// fencer's policy allows every request: the cluster layer decides whether to fence
/// ([`build_fencer_with_policy`] sets another).
///
/// Each distinct agent's meta-data is read once, within
/// [`METADATA_TIMEOUT`](crate::fencing::devices::agent::METADATA_TIMEOUT). The first problem
/// found is returned and nothing is registered anywhere.
///
/// A config without fencing tables gives a fencer without devices. See [`NodeDevices`] for an
/// example.
pub async fn build_fencer(
    config: &NodeConfig,
    fencer: FencerConfig,
) -> Result<NodeDevices, NodeDevicesError> {
    build_fencer_with_policy(config, fencer, build::default_policy()).await
}

/// [`build_fencer`] with a policy for the fencer (such as
/// [`QuorumPolicy`](crate::fencing::policy::QuorumPolicy), which refuses unless this node's
/// view is quorate).
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ocf_fencing::AllowAll;
/// use ocf_ref::fencing::fencer::FencerConfig;
/// use ocf_ref::fencing::node_devices::build_fencer_with_policy;
/// use ocf_ref::membership::config::NodeConfig;
/// let config = NodeConfig::parse("cluster = \"c1\"\nbackend = \"corosync\"\n", "node.toml".as_ref()).unwrap();
/// let node = build_fencer_with_policy(&config, FencerConfig::default(), Arc::new(AllowAll)).await.unwrap();
/// assert!(node.devices.is_empty());
/// # });
/// ```
pub async fn build_fencer_with_policy(
    config: &NodeConfig,
    fencer: FencerConfig,
    policy: Arc<dyn FencingPolicy>,
) -> Result<NodeDevices, NodeDevicesError> {
    let plan = check_config(config)?;
    build::build(plan, fencer, policy).await
}
