//! The fencing tables of `node.toml` as they are parsed: `[fencing]`, `[[devices]]`,
//! `[[levels]]`. Parsing refuses unknown keys and values of the wrong type; what the values
//! mean together is checked by [`super::check_tables`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use ocf_core::NodeName;
use ocf_fencing::{DeviceId, DeviceParams, FenceAction};
use serde::{Deserialize, Serialize};

/// `[fencing]`: options for every device of this node.
///
/// ```
/// use ocf_ref::fencing::node_devices::{FencingOptions, LostNodeAction};
/// let o: FencingOptions = toml::from_str("lost_node_action = \"off\"\ndevice_timeout_s = 30").unwrap();
/// assert_eq!(o.lost_node_action, LostNodeAction::Off);
/// assert_eq!(o.device_timeout_s, Some(30));
/// assert!(toml::from_str::<FencingOptions>("agent_dir = \"/x\"").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct FencingOptions {
    /// Where `fence_*` agents are looked up: an absolute directory. Default
    /// `$OCF_FENCE_AGENTS_DIR`, else `/usr/sbin`.
    pub agents_dir: Option<PathBuf>,
    /// What the cluster does to a node lost from the view. Default `reboot`.
    pub lost_node_action: LostNodeAction,
    /// The longest one device operation may take, in seconds (1 to 3600), for devices without
    /// their own `timeout_s`. Default: the fencer's (60 s).
    pub device_timeout_s: Option<u64>,
}

/// What the cluster does to a node lost from the view (`lost_node_action`): `"reboot"` (the
/// default), `"off"`, or `"none"` (nothing: for clusters whose nodes fence themselves, or a
/// test bed).
///
/// ```
/// use ocf_fencing::FenceAction;
/// use ocf_ref::fencing::node_devices::LostNodeAction;
/// assert_eq!(LostNodeAction::default().fence_action(), Some(FenceAction::Reboot));
/// assert_eq!(LostNodeAction::None.fence_action(), None);
/// assert_eq!(serde_json::to_string(&LostNodeAction::Off).unwrap(), "\"off\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LostNodeAction {
    /// Power-cycle the node.
    #[default]
    Reboot,
    /// Power the node off and leave it off.
    Off,
    /// Do not fence lost nodes.
    None,
}

impl LostNodeAction {
    /// The fence action to request, or `None` for [`LostNodeAction::None`].
    pub fn fence_action(self) -> Option<FenceAction> {
        match self {
            Self::Reboot => Some(FenceAction::Reboot),
            Self::Off => Some(FenceAction::Off),
            Self::None => None,
        }
    }
}

impl From<LostNodeAction> for Option<FenceAction> {
    fn from(a: LostNodeAction) -> Self {
        a.fence_action()
    }
}

/// One `[[devices]]` entry: a fence device this node owns.
///
/// `params` are strings, handed to the agent as given; a secret (a password, by its name or
/// by the agent's meta-data) may not be among them: it goes in `secret_files`, one root-only
/// file per parameter. `Debug` never shows a secret.
///
/// ```
/// use ocf_ref::fencing::node_devices::DeviceEntry;
/// let d: DeviceEntry = toml::from_str(r#"
/// id = "pdu1"
/// agent = "fence_apc"
/// host_map = { n1 = "1", n2 = "2" }
/// params = { ip = "10.0.0.5", username = "fence" }
/// secret_files = { password = "/etc/ocf/pdu1.password" }
/// timeout_s = 30
/// "#).unwrap();
/// assert_eq!(d.id.as_str(), "pdu1");
/// assert_eq!(d.host_map.unwrap().len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DeviceEntry {
    /// The device's id, unique on this node.
    pub id: DeviceId,
    /// What drives it: a `fence_*` agent name (looked up in `agents_dir`), `stonith:<type>`
    /// (a cluster-glue plugin, `stonith:external/ipmi`), `native:null` or `native:manual`.
    pub agent: String,
    /// The nodes it can fence, each sent to the agent as its own name. Give this or
    /// `host_map`, or neither to ask the agent (`list`) each time.
    #[serde(default)]
    pub hosts: Option<Vec<NodeName>>,
    /// The nodes it can fence and the plug (outlet, VM name) of each.
    #[serde(default)]
    pub host_map: Option<BTreeMap<NodeName, String>>,
    /// The agent's parameters (not secrets).
    #[serde(default)]
    pub params: DeviceParams,
    /// Secret parameters, each read from a file that only its owner (root) may access; the
    /// file holds the value on one line.
    #[serde(default)]
    pub secret_files: BTreeMap<String, PathBuf>,
    /// The longest one operation of this device may take, in seconds (1 to 3600).
    #[serde(default)]
    pub timeout_s: Option<u64>,
}

/// One `[[levels]]` entry: the devices tried together, at one rank, to fence one target.
///
/// ```
/// use ocf_ref::fencing::node_devices::LevelEntry;
/// let l: LevelEntry = toml::from_str("target = \"n1\"\nlevel = 1\ndevices = [\"pdu1\"]").unwrap();
/// assert_eq!((l.target.as_str(), l.level, l.devices.len()), ("n1", 1, 1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LevelEntry {
    /// The node this level fences.
    pub target: NodeName,
    /// Its rank, from 1: level 1 is tried first, the next only if it failed. Unique per
    /// target; gaps are allowed.
    pub level: u32,
    /// The devices of this level, all of which must succeed, in this order.
    pub devices: Vec<DeviceId>,
}
