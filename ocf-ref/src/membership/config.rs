//! The node configuration file (`node.toml`) of `ocf node`.
//!
//! With the built-in engine (the default):
//!
//! ```toml
//! cluster = "c1"
//! node_id = 1
//! key_file = "/etc/ocf/authkey"
//! socket = "/run/ocf/c1-1.sock"      # optional
//! socket_group = "ocf"               # optional: who may use the socket (mode 0660)
//! max_clients = 256                  # optional: local API connections at once
//! state_dir = "/var/lib/ocf/c1-1"    # optional: the incident log (default beside the socket)
//! backend = "builtin"                # optional: "builtin" or "corosync"
//! [timing]                           # optional: one budget, every timer derived
//! detect_ms = 500                    # a death is agreed within this (`ocf timing` shows how)
//! drift_ppm = 10000                  # optional: bound on clock rate error (1 %)
//! [quorum]                           # optional
//! two_node = false
//! wait_for_all = false
//! [[nodes]]
//! id = 1
//! name = "n1"
//! address = "127.0.0.1:7401"
//! votes = 1                          # optional
//! ```
//!
//! With Corosync (`backend = "corosync"`), corosync.conf is the truth: this node's id, the
//! nodes, their names, votes and the timing all come from the local corosync, so only these
//! keys remain (`node_id` and `[[nodes]]` are refused rather than risk a second, disagreeing
//! list; `key_file`, `[timing]` and `[quorum]` are not used):
//!
//! ```toml
//! cluster = "c1"
//! backend = "corosync"
//! socket = "/run/ocf/c1.sock"        # optional (default /run/ocf/<cluster>.sock)
//! socket_group = "ocf"               # optional
//! max_clients = 256                  # optional
//! ```
//!
//! With etcd (`backend = "etcd"`, feature `etcd`; see [`crate::membership::etcd`]), the keys of
//! the built-in engine (`node_id`, `key_file`, `[timing]`, `[[nodes]]`: the nodes run the
//! built-in failure detector among themselves) and an `[etcd]` table:
//!
//! ```toml
//! [etcd]
//! endpoints = ["http://127.0.0.1:2379", "http://127.0.0.1:2389"]
//! ca_file = "/etc/ocf/etcd-ca.pem"     # optional: TLS (https:// endpoints)
//! cert_file = "/etc/ocf/etcd.pem"      # optional: client certificate (with key_file)
//! key_file = "/etc/ocf/etcd.key"       # optional
//! user = "ocf"                         # optional: etcd authentication
//! password_file = "/etc/ocf/etcd.pw"   # optional: root-only file holding the password
//! prefix = "/ocf/c1/"                  # optional (default /ocf/<cluster>/)
//! lease_ttl_s = 10                     # optional: the member lease's TTL, 2..=300 s
//! ```
//!
//! Every backend takes this node's fence devices (all optional; see
//! [`crate::fencing::node_devices`] for what is checked, and when):
//!
//! ```toml
//! [fencing]
//! agents_dir = "/usr/sbin"             # optional: where fence_* agents are looked up
//! lost_node_action = "reboot"          # optional: "reboot" (default), "off" or "none"
//! device_timeout_s = 60                # optional: seconds per device operation (1..=3600)
//! [[devices]]
//! id = "pdu1"                          # unique on this node
//! agent = "fence_apc"                  # fence_*, "stonith:<type>", "native:null", "native:manual"
//! hosts = ["n1", "n2"]                 # or host_map = { n1 = "1", n2 = "2" }; neither: ask the agent
//! params = { ip = "10.0.0.5", username = "fence" }          # strings; never a secret
//! secret_files = { password = "/etc/ocf/pdu1.password" }   # root-only files (mode 0600)
//! timeout_s = 30                       # optional: this device's operation timeout
//! [[levels]]                           # optional topology: level 1 first, then 2, ...
//! target = "n1"
//! level = 1
//! devices = ["pdu1"]
//! ```
//!
//! The local API socket (`socket`): the daemon locks `<socket>.lock` beside it for its whole
//! life, replaces only a stale socket (never a file, directory or link: those are errors),
//! and creates the socket with mode 0660, owned by root and `socket_group` (default: the
//! daemon's group), whatever the umask. Only root and that group's members may use it.
//! `max_clients` (1 to 65536, default 256) bounds the connections served at once.
//!
//! The file itself is read with a bound: a regular file of at most [`MAX_CONFIG_BYTES`];
//! `key_file` likewise (at most 4 KiB, and mode 0600 or 0400: a key that its group or others
//! may read is refused).
//!
//! Unknown keys and bad values are errors that name the key.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ocf_core::{NodeId, NodeName};
use serde::Deserialize;

use super::protocol::{ClusterSpec, DEFAULT_DETECT_MS, NodeSpec, QuorumOptions, Timing};
use crate::bounded_read::{BoundedReadError, read_regular_string};
use crate::fencing::node_devices::{
    DeviceEntry, FencingOptions, LevelEntry, NodeDevicesError, check_tables,
};

/// The largest config file read, in bytes (1 MiB: thousands of `[[nodes]]` entries).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// What is wrong with a node configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read: missing, unreadable, not a regular file, or larger than
    /// [`MAX_CONFIG_BYTES`].
    #[error("cannot read membership config: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why (names the file).
        source: BoundedReadError,
    },
    /// The TOML is malformed, has an unknown key or a value of the wrong type.
    #[error("membership config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, naming the key and line.
        message: String,
    },
    /// A value is out of range or inconsistent with another.
    #[error("membership config {path}: key `{key}`: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The offending key, dotted (`timing.dead_ms`, `nodes[2].address`).
        key: String,
        /// What is wrong and what would be right.
        problem: String,
    },
    /// The fencing tables (`[fencing]`, `[[devices]]`, `[[levels]]`) are inconsistent.
    #[error("membership config {path}: {source}")]
    Fencing {
        /// The file.
        path: PathBuf,
        /// What is wrong (names the device or level and the key).
        source: Box<NodeDevicesError>,
    },
}

/// `[timing]`: one detection budget from which every timer is derived, or (for experts) the
/// periods themselves. `ocf timing --config node.toml` prints what follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimingConfig {
    /// The detection budget (ms): a dead node is declared dead within this. Default 500 (probe
    /// period 100 ms, death after 400 ms of silence); at least 50.
    pub detect_ms: Option<u64>,
    /// Instead of `detect_ms`: the probe period (ms), at least 10.
    pub heartbeat_ms: Option<u64>,
    /// Instead of `detect_ms`: silence before a death (ms), at least 3 × `heartbeat_ms`.
    pub dead_ms: Option<u64>,
    /// How long one primacy grant lasts (ms). Default: the longest (up to three periods)
    /// whose drift-stretched wait still fits in `dead_ms`.
    pub lease_ms: Option<u64>,
    /// Bound on any node's clock rate error, in parts per million. Default 10000 (1 %).
    pub drift_ppm: Option<u32>,
}

impl TimingConfig {
    /// The protocol's timers, or the key and the arithmetic that make them inconsistent.
    pub fn timing(&self) -> Result<Timing, (&'static str, String)> {
        let mut t = match (self.detect_ms, self.heartbeat_ms, self.dead_ms) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err((
                    "timing.detect_ms",
                    "sets heartbeat_ms (detect_ms / 5) and dead_ms (4 × heartbeat_ms): give \
                     either detect_ms or the two periods, not both"
                        .into(),
                ));
            }
            (detect, None, None) => {
                let detect = detect.unwrap_or(DEFAULT_DETECT_MS);
                if !(50..=300_000).contains(&detect) {
                    return Err((
                        "timing.detect_ms",
                        format!("{detect} is out of range 50..=300000"),
                    ));
                }
                Timing::from_budget(detect)
            }
            (None, hb, dead) => {
                let hb = hb.unwrap_or(DEFAULT_DETECT_MS / 5);
                if !(10..=60_000).contains(&hb) {
                    return Err((
                        "timing.heartbeat_ms",
                        format!("{hb} is out of range 10..=60000"),
                    ));
                }
                let dead = dead.unwrap_or(4 * hb);
                if dead < 3 * hb || dead > 600_000 {
                    return Err((
                        "timing.dead_ms",
                        format!(
                            "{dead} must be at least 3 × heartbeat_ms ({}) and at most 600000",
                            3 * hb
                        ),
                    ));
                }
                Timing::new(hb, dead)
            }
        };
        if let Some(d) = self.drift_ppm {
            t = t.with_drift(d);
        }
        if let Some(l) = self.lease_ms {
            t.lease_ms = l;
        }
        t.check().map_err(|e| ("timing", e))?;
        Ok(t)
    }
}

/// `[quorum]`: votequorum-like options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuorumConfig {
    /// Two-node cluster: one vote is quorate (expected votes 2). Implies `wait_for_all`.
    pub two_node: bool,
    /// Not quorate until every configured node has been a member of one view at once.
    pub wait_for_all: bool,
    /// Overrides the expected votes (default: the sum of all nodes' votes).
    pub expected_votes: Option<u32>,
}

/// Which engine the daemon runs (`backend = "builtin"`, the default, `"corosync"` or `"etcd"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BackendKind {
    /// The built-in protocol of this module.
    #[default]
    Builtin,
    /// Corosync's views, read from the local Corosync.
    Corosync,
    /// Views kept in etcd (member keys under leases), with the built-in failure detector
    /// revoking a dead node's lease.
    Etcd,
}

/// The default TTL of an etcd member lease, in seconds.
pub const DEFAULT_ETCD_LEASE_TTL_S: u64 = 10;

fn default_lease_ttl() -> u64 {
    DEFAULT_ETCD_LEASE_TTL_S
}

/// `[etcd]`: how a node of `backend = "etcd"` reaches etcd.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtcdConfig {
    /// The etcd members' client URLs (`http://host:port` or `https://host:port`), at least
    /// one; the client spreads requests over them and fails over when one dies.
    pub endpoints: Vec<String>,
    /// The CA certificate (PEM) that signed the members' certificates (TLS).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// This node's client certificate (PEM), with `key_file` (TLS client authentication).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// The private key (PEM) of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The etcd user (with `password_file`), when etcd has authentication on.
    #[serde(default)]
    pub user: Option<String>,
    /// A root-only file (mode 0600 or 0400) holding `user`'s password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// The key prefix of this cluster (default `/ocf/<cluster>/`); must start and end with `/`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// The TTL of this node's member lease, in seconds (2 to 300, default 10). A node cut off
    /// from etcd stops being primary after half of it; a node dead without the detector
    /// noticing leaves the view after it.
    #[serde(default = "default_lease_ttl")]
    pub lease_ttl_s: u64,
}

impl std::fmt::Debug for EtcdConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Paths only; the password itself is never read into the config.
        f.debug_struct("EtcdConfig")
            .field("endpoints", &self.endpoints)
            .field("ca_file", &self.ca_file)
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("user", &self.user)
            .field("password_file", &self.password_file)
            .field("prefix", &self.prefix)
            .field("lease_ttl_s", &self.lease_ttl_s)
            .finish()
    }
}

/// One `[[nodes]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    /// The node's id, unique in the cluster.
    pub id: u32,
    /// The node's name, unique in the cluster.
    pub name: NodeName,
    /// The UDP address the node listens on.
    pub address: SocketAddr,
    /// The votes it brings to quorum (default 1).
    #[serde(default = "one")]
    pub votes: u32,
}

fn one() -> u32 {
    1
}

fn default_max_clients() -> usize {
    super::daemon::local_api::DEFAULT_MAX_CLIENTS
}

/// A validated node configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The cluster's name (part of every packet's authentication, so clusters never mix).
    pub cluster: String,
    /// This node's id; must be one of `nodes`. Required by the built-in backend (ids start at
    /// 1, so 0 means "not set"); refused with Corosync, which knows the local node's id.
    #[serde(default)]
    pub node_id: u32,
    /// The shared cluster key file (`ocf keygen` writes one). Required by the built-in
    /// backend; not used with Corosync (its own `authkey` protects its traffic).
    #[serde(default)]
    pub key_file: PathBuf,
    /// The local API socket (default `/run/ocf/<cluster>-<node_id>.sock`, or
    /// `/run/ocf/<cluster>.sock` with Corosync). The daemon replaces only a stale socket of
    /// its own there (it locks `<socket>.lock`); anything else at the path is an error.
    pub socket: Option<PathBuf>,
    /// The group of the socket, whose members may use it (the socket's mode is always 0660:
    /// its owner, root, and this group). Default: the daemon's own group. A group this
    /// system does not know stops the daemon at start.
    #[serde(default)]
    pub socket_group: Option<String>,
    /// Where the daemon keeps its state (its incident log), created mode 0700. Default: the
    /// socket path with `.state` in place of its extension (`/run/ocf/<cluster>-<id>.state`).
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// The most local API connections served at once (subscribers included), 1 to 65536,
    /// default 256. Past it a new client gets one "busy" error line and is closed.
    #[serde(default = "default_max_clients")]
    pub max_clients: usize,
    /// The membership engine (default `builtin`).
    #[serde(default)]
    pub backend: BackendKind,
    /// Failure-detector timing.
    #[serde(default)]
    pub timing: TimingConfig,
    /// Quorum options.
    #[serde(default)]
    pub quorum: QuorumConfig,
    /// `[etcd]`: required with `backend = "etcd"`, refused with the others.
    #[serde(default)]
    pub etcd: Option<EtcdConfig>,
    /// Every node of the cluster, this one included. Required by the built-in backend; refused
    /// with Corosync, whose nodelist is the truth.
    #[serde(default)]
    pub nodes: Vec<NodeEntry>,
    /// `[fencing]`: options for this node's fence devices.
    #[serde(default)]
    pub fencing: FencingOptions,
    /// `[[devices]]`: the fence devices this node owns (none by default).
    #[serde(default)]
    pub devices: Vec<DeviceEntry>,
    /// `[[levels]]`: the fencing topology, per target (none by default: every device that
    /// can fence a target is tried, in file order).
    #[serde(default)]
    pub levels: Vec<LevelEntry>,
}

impl NodeConfig {
    /// Reads and validates a config file: a regular file of at most [`MAX_CONFIG_BYTES`]
    /// (a device, a FIFO or a huge file is refused without reading it to the end).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let (text, _) =
            read_regular_string(path, MAX_CONFIG_BYTES).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
        Self::parse(&text, path)
    }

    /// Parses and validates config text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: describe_toml_error(text, &e),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key: &str, problem: String| ConfigError::Invalid {
            path: path.to_owned(),
            key: key.to_owned(),
            problem,
        };
        if self.cluster.is_empty()
            || self.cluster.len() > 64
            || !self
                .cluster
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(invalid(
                "cluster",
                "must be 1 to 64 characters of letters, digits, '-', '_' or '.'".into(),
            ));
        }
        if !(1..=65_536).contains(&self.max_clients) {
            return Err(invalid(
                "max_clients",
                format!("{} is out of range 1..=65536", self.max_clients),
            ));
        }
        if self.socket_group.as_deref() == Some("") {
            return Err(invalid(
                "socket_group",
                "is empty; name a group, or remove the key to keep the daemon's own group".into(),
            ));
        }
        if self.etcd.is_some() && self.backend != BackendKind::Etcd {
            return Err(invalid(
                "etcd",
                "is only used with backend = \"etcd\"; remove the [etcd] table or set the backend"
                    .into(),
            ));
        }
        check_tables(&self.fencing, &self.devices, &self.levels).map_err(|source| {
            ConfigError::Fencing {
                path: path.to_owned(),
                source: Box::new(source),
            }
        })?;
        match self.backend {
            BackendKind::Builtin => self.validate_builtin(path),
            BackendKind::Corosync => self.validate_corosync(path),
            BackendKind::Etcd => {
                self.validate_builtin(path)?;
                self.validate_etcd(path)
            }
        }
    }

    /// With Corosync the node list and this node's id come from corosync; a second list here
    /// could only disagree with it.
    fn validate_corosync(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key: &str, problem: &str| ConfigError::Invalid {
            path: path.to_owned(),
            key: key.to_owned(),
            problem: problem.to_owned(),
        };
        if !self.nodes.is_empty() {
            return Err(invalid(
                "nodes",
                "backend \"corosync\" takes the nodes from corosync's nodelist \
                 (corosync.conf); remove the [[nodes]] entries",
            ));
        }
        if self.node_id != 0 {
            return Err(invalid(
                "node_id",
                "backend \"corosync\" reads this node's id from corosync; remove `node_id`",
            ));
        }
        Ok(())
    }

    /// `[etcd]` is there with usable endpoints, prefix, TTL and credentials.
    fn validate_etcd(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key: &str, problem: String| ConfigError::Invalid {
            path: path.to_owned(),
            key: key.to_owned(),
            problem,
        };
        let Some(etcd) = &self.etcd else {
            return Err(invalid(
                "etcd",
                "backend \"etcd\" needs an [etcd] table with `endpoints = [\"http://host:2379\", ...]`"
                    .into(),
            ));
        };
        if etcd.endpoints.is_empty() {
            return Err(invalid(
                "etcd.endpoints",
                "name at least one etcd member (`http://host:2379`)".into(),
            ));
        }
        for (i, e) in etcd.endpoints.iter().enumerate() {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(invalid(
                    &format!("etcd.endpoints[{i}]"),
                    format!("{e:?} is not an http:// or https:// URL"),
                ));
            }
        }
        if let Some(p) = &etcd.prefix
            && (!p.starts_with('/') || !p.ends_with('/') || p.len() < 2)
        {
            return Err(invalid(
                "etcd.prefix",
                format!("{p:?} must start and end with '/' (like \"/ocf/c1/\")"),
            ));
        }
        if !(2..=300).contains(&etcd.lease_ttl_s) {
            return Err(invalid(
                "etcd.lease_ttl_s",
                format!(
                    "{} is out of range 2..=300 (etcd's shortest lease is 2 s at its default timing)",
                    etcd.lease_ttl_s
                ),
            ));
        }
        if etcd.cert_file.is_some() != etcd.key_file.is_some() {
            return Err(invalid(
                "etcd.cert_file",
                "a client certificate needs its key: give both cert_file and key_file, or neither"
                    .into(),
            ));
        }
        if etcd.user.is_some() != etcd.password_file.is_some() {
            return Err(invalid(
                "etcd.user",
                "give both `user` and `password_file`, or neither".into(),
            ));
        }
        Ok(())
    }

    fn validate_builtin(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key: &str, problem: String| ConfigError::Invalid {
            path: path.to_owned(),
            key: key.to_owned(),
            problem,
        };
        if self.node_id == 0 {
            return Err(invalid(
                "node_id",
                "is required with backend \"builtin\" or \"etcd\": this node's id, one of the [[nodes]] ids \
                 (ids start at 1)"
                    .into(),
            ));
        }
        if self.key_file.as_os_str().is_empty() {
            return Err(invalid(
                "key_file",
                "is required with backend \"builtin\" or \"etcd\": the shared cluster key file \
                 (`ocf keygen PATH` writes one)"
                    .into(),
            ));
        }
        if let Err((key, problem)) = self.timing.timing() {
            return Err(invalid(key, problem));
        }
        if self.nodes.is_empty() {
            return Err(invalid(
                "nodes",
                "at least one [[nodes]] entry is needed with backend \"builtin\" or \"etcd\""
                    .into(),
            ));
        }
        let (mut ids, mut names, mut addrs) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        for (i, n) in self.nodes.iter().enumerate() {
            if n.id == 0 {
                return Err(invalid(
                    &format!("nodes[{i}].id"),
                    "0 is not a node id; ids start at 1".into(),
                ));
            }
            if !ids.insert(n.id) {
                return Err(invalid(
                    &format!("nodes[{i}].id"),
                    format!("id {} appears twice", n.id),
                ));
            }
            if !names.insert(n.name.clone()) {
                return Err(invalid(
                    &format!("nodes[{i}].name"),
                    format!("name {} appears twice", n.name),
                ));
            }
            if !addrs.insert(n.address) {
                return Err(invalid(
                    &format!("nodes[{i}].address"),
                    format!("address {} appears twice", n.address),
                ));
            }
            if n.votes > 1000 {
                return Err(invalid(
                    &format!("nodes[{i}].votes"),
                    format!("{} is out of range 0..=1000", n.votes),
                ));
            }
        }
        if !ids.contains(&self.node_id) {
            return Err(invalid(
                "node_id",
                format!("{} is not the id of any [[nodes]] entry", self.node_id),
            ));
        }
        if self.quorum.two_node && self.nodes.len() != 2 {
            return Err(invalid(
                "quorum.two_node",
                format!("needs exactly 2 nodes, the config has {}", self.nodes.len()),
            ));
        }
        if self.quorum.expected_votes == Some(0) {
            return Err(invalid(
                "quorum.expected_votes",
                "must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// This node's id.
    pub fn local_id(&self) -> NodeId {
        NodeId::new(self.node_id)
    }

    /// This node's entry.
    pub fn local_entry(&self) -> Option<&NodeEntry> {
        self.nodes.iter().find(|n| n.id == self.node_id)
    }

    /// The node with this id.
    pub fn entry(&self, id: NodeId) -> Option<&NodeEntry> {
        self.nodes.iter().find(|n| n.id == id.get())
    }

    /// The local API socket path: `socket`, or `/run/ocf/<cluster>-<node_id>.sock` (built-in),
    /// `/run/ocf/<cluster>.sock` (Corosync: one daemon per host).
    pub fn socket_path(&self) -> PathBuf {
        self.socket.clone().unwrap_or_else(|| match self.backend {
            BackendKind::Corosync => PathBuf::from(format!("/run/ocf/{}.sock", self.cluster)),
            BackendKind::Builtin | BackendKind::Etcd => {
                PathBuf::from(format!("/run/ocf/{}-{}.sock", self.cluster, self.node_id))
            }
        })
    }

    /// The daemon's state directory: `state_dir`, else beside the socket.
    pub fn state_path(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| self.socket_path().with_extension("state"))
    }

    /// The etcd key prefix of this cluster: `[etcd] prefix`, or `/ocf/<cluster>/`.
    pub fn etcd_prefix(&self) -> String {
        self.etcd
            .as_ref()
            .and_then(|e| e.prefix.clone())
            .unwrap_or_else(|| format!("/ocf/{}/", self.cluster))
    }

    /// The protocol's view of the cluster: ids, votes, quorum options and timing.
    pub fn cluster_spec(&self) -> Arc<ClusterSpec> {
        let nodes = self
            .nodes
            .iter()
            .map(|n| NodeSpec {
                id: NodeId::new(n.id),
                votes: n.votes,
            })
            .collect();
        Arc::new(ClusterSpec::new(
            nodes,
            QuorumOptions {
                two_node: self.quorum.two_node,
                wait_for_all: self.quorum.wait_for_all || self.quorum.two_node,
                expected_votes: self.quorum.expected_votes,
            },
            // Checked at load; a config built by hand falls back to the defaults.
            self.timing
                .timing()
                .unwrap_or_else(|_| Timing::from_budget(DEFAULT_DETECT_MS)),
        ))
    }
}

/// `line N: `the line`: what is wrong`, naming the key the way the file spells it. A line
/// that names a secret parameter (`password = ...` in a device's `params`) is not quoted, nor
/// are the values the parser's message quotes: the error must not carry the secret.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    match e.span() {
        Some(span) => {
            let start = span.start.min(text.len());
            let line_no = text[..start].matches('\n').count() + 1;
            let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
            let secret = line
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                .any(ocf_fencing::is_secret_parameter);
            if secret {
                let message: String = message
                    .split('`')
                    .enumerate()
                    .map(|(i, part)| {
                        if i % 2 == 1 {
                            "<value not shown>"
                        } else {
                            part
                        }
                    })
                    .collect();
                format!("line {line_no} (not quoted: it names a secret): {message}")
            } else {
                format!("line {line_no}: `{line}`: {message}")
            }
        }
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
cluster = "c1"
node_id = 1
key_file = "/etc/ocf/authkey"
[[nodes]]
id = 1
name = "n1"
address = "127.0.0.1:7401"
[[nodes]]
id = 2
name = "n2"
address = "127.0.0.1:7402"
votes = 2
"#;

    fn parse(text: &str) -> Result<NodeConfig, ConfigError> {
        NodeConfig::parse(text, Path::new("node.toml"))
    }

    #[test]
    fn defaults_apply() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.timing, TimingConfig::default());
        assert_eq!(c.socket_path(), PathBuf::from("/run/ocf/c1-1.sock"));
        assert_eq!(c.nodes[0].votes, 1);
        assert_eq!(c.nodes[1].votes, 2);
        assert_eq!(c.cluster_spec().expected_votes(), 3);
        assert_eq!(c.backend, BackendKind::Builtin);
        assert_eq!(c.max_clients, 256);
        assert_eq!(c.socket_group, None);
        let e = parse(&GOOD.replace("node_id = 1", "node_id = 1\nbackend = \"etcd\"")).unwrap_err();
        assert!(e.to_string().contains("backend"), "{e}");
    }

    #[test]
    fn etcd_needs_its_table_and_checks_it() {
        let with = |table: &str| {
            parse(&format!(
                "{}\n[etcd]\n{table}\n",
                GOOD.replace("node_id = 1", "node_id = 1\nbackend = \"etcd\"")
            ))
        };
        let c = with("endpoints = [\"http://127.0.0.1:2379\"]").unwrap();
        assert_eq!(c.backend, BackendKind::Etcd);
        assert_eq!(c.etcd_prefix(), "/ocf/c1/");
        assert_eq!(
            c.etcd.as_ref().unwrap().lease_ttl_s,
            DEFAULT_ETCD_LEASE_TTL_S
        );
        assert_eq!(c.socket_path(), PathBuf::from("/run/ocf/c1-1.sock"));
        let c =
            with("endpoints = [\"https://e:2379\"]\nprefix = \"/x/\"\nlease_ttl_s = 3").unwrap();
        assert_eq!(c.etcd_prefix(), "/x/");
        for (table, key) in [
            ("endpoints = []", "etcd.endpoints"),
            ("endpoints = [\"127.0.0.1:2379\"]", "etcd.endpoints[0]"),
            (
                "endpoints = [\"http://e:1\"]\nlease_ttl_s = 1",
                "etcd.lease_ttl_s",
            ),
            (
                "endpoints = [\"http://e:1\"]\nprefix = \"ocf\"",
                "etcd.prefix",
            ),
            (
                "endpoints = [\"http://e:1\"]\ncert_file = \"/c\"",
                "etcd.cert_file",
            ),
            ("endpoints = [\"http://e:1\"]\nuser = \"u\"", "etcd.user"),
            ("endpoints = [\"http://e:1\"]\npassword = \"p\"", "secret"),
        ] {
            let e = with(table).unwrap_err();
            assert!(e.to_string().contains(key), "{table}: {e}");
        }
        // The table is refused where it would not be used.
        let e = parse(&format!("{GOOD}\n[etcd]\nendpoints = [\"http://e:1\"]\n")).unwrap_err();
        assert!(e.to_string().contains("etcd"), "{e}");
        // The detector needs the built-in keys too.
        let e =
            parse("cluster = \"c1\"\nbackend = \"etcd\"\n[etcd]\nendpoints = [\"http://e:1\"]\n")
                .unwrap_err();
        assert!(e.to_string().contains("node_id"), "{e}");
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = parse(&GOOD.replace("node_id = 1", "node_id = 1\nnodeid = 3")).unwrap_err();
        assert!(e.to_string().contains("nodeid"), "{e}");
        let e = parse(&GOOD.replace("votes = 2", "votes = 2\nweight = 1")).unwrap_err();
        assert!(e.to_string().contains("weight"), "{e}");
        let e = parse(&format!("{GOOD}\n[timing]\nheartbeat = 5\n")).unwrap_err();
        assert!(e.to_string().contains("heartbeat"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let e = parse(&format!("{GOOD}\n[timing]\ndead_ms = 100\n")).unwrap_err();
        assert!(e.to_string().contains("timing.dead_ms"), "{e}");
        let e = parse(&format!(
            "{GOOD}\n[timing]\ndetect_ms = 500\nheartbeat_ms = 100\n"
        ))
        .unwrap_err();
        assert!(e.to_string().contains("timing.detect_ms"), "{e}");
        let e = parse(&format!(
            "{GOOD}\n[timing]\ndetect_ms = 500\nlease_ms = 390\n"
        ))
        .unwrap_err();
        assert!(e.to_string().contains("> dead_ms = 400"), "{e}");
        let c = parse(&format!(
            "{GOOD}\n[timing]\ndetect_ms = 1000\ndrift_ppm = 50000\n"
        ))
        .unwrap();
        let t = c.timing.timing().unwrap();
        assert_eq!((t.heartbeat_ms, t.dead_ms, t.drift_ppm), (200, 800, 50_000));
        assert!(t.lease_wait() <= t.dead_ms);
        let e = parse(&GOOD.replace("node_id = 1", "node_id = 9")).unwrap_err();
        assert!(e.to_string().contains("node_id"), "{e}");
        let e = parse(&GOOD.replace("127.0.0.1:7402", "127.0.0.1:7401")).unwrap_err();
        assert!(e.to_string().contains("nodes[1].address"), "{e}");
        let e = parse(&GOOD.replace("127.0.0.1:7402", "nowhere")).unwrap_err();
        assert!(e.to_string().contains("address"), "{e}");
        let e = parse(&GOOD.replace("\"n2\"", "\"bad name\"")).unwrap_err();
        assert!(e.to_string().contains("name"), "{e}");
        let e = parse(&format!("{GOOD}\n[quorum]\ntwo_node = 3\n")).unwrap_err();
        assert!(e.to_string().contains("two_node"), "{e}");
        let e = parse(&GOOD.replace("id = 2", "id = 0")).unwrap_err();
        assert!(e.to_string().contains("nodes[1].id"), "{e}");
        let e = parse(&GOOD.replace("node_id = 1", "node_id = 1\nmax_clients = 0")).unwrap_err();
        assert!(e.to_string().contains("`max_clients`"), "{e}");
        let e =
            parse(&GOOD.replace("node_id = 1", "node_id = 1\nsocket_group = \"\"")).unwrap_err();
        assert!(e.to_string().contains("`socket_group`"), "{e}");
        let c = parse(&GOOD.replace(
            "node_id = 1",
            "node_id = 1\nmax_clients = 9\nsocket_group = \"ocf\"",
        ))
        .unwrap();
        assert_eq!((c.max_clients, c.socket_group.as_deref()), (9, Some("ocf")));
    }

    #[test]
    fn builtin_needs_its_node_id_key_and_nodes() {
        let e = parse(&GOOD.replace("node_id = 1\n", "")).unwrap_err();
        assert!(e.to_string().contains("`node_id`: is required"), "{e}");
        let e = parse(&GOOD.replace("key_file = \"/etc/ocf/authkey\"\n", "")).unwrap_err();
        assert!(e.to_string().contains("`key_file`: is required"), "{e}");
        let only_head = GOOD.split("[[nodes]]").next().unwrap();
        let e = parse(only_head).unwrap_err();
        assert!(e.to_string().contains("[[nodes]] entry is needed"), "{e}");
    }

    #[test]
    fn corosync_needs_no_nodes_and_refuses_a_second_list() {
        let c = parse("cluster = \"c1\"\nbackend = \"corosync\"\n").unwrap();
        assert_eq!(c.backend, BackendKind::Corosync);
        assert!(c.nodes.is_empty());
        assert_eq!(c.socket_path(), PathBuf::from("/run/ocf/c1.sock"));
        let c =
            parse("cluster = \"c1\"\nbackend = \"corosync\"\nsocket = \"/tmp/x.sock\"\n").unwrap();
        assert_eq!(c.socket_path(), PathBuf::from("/tmp/x.sock"));
        let e = parse(&GOOD.replace("node_id = 1", "backend = \"corosync\"")).unwrap_err();
        assert!(
            e.to_string().contains("`nodes`") && e.to_string().contains("nodelist"),
            "{e}"
        );
        let e = parse("cluster = \"c1\"\nbackend = \"corosync\"\nnode_id = 2\n").unwrap_err();
        assert!(e.to_string().contains("`node_id`"), "{e}");
        let e = parse("backend = \"corosync\"\n").unwrap_err();
        assert!(e.to_string().contains("cluster"), "{e}");
    }

    const FENCING: &str = r#"
[fencing]
lost_node_action = "off"
device_timeout_s = 30
[[devices]]
id = "null"
agent = "native:null"
hosts = ["n1", "n2"]
[[devices]]
id = "pdu1"
agent = "fence_apc"
host_map = { n1 = "1", n2 = "2" }
params = { ip = "10.0.0.5", username = "fence" }
secret_files = { password = "/etc/ocf/pdu1.password" }
timeout_s = 20
[[levels]]
target = "n1"
level = 1
devices = ["pdu1"]
[[levels]]
target = "n1"
level = 2
devices = ["null"]
"#;

    #[test]
    fn fencing_tables_parse_with_both_backends() {
        for head in [GOOD, "cluster = \"c1\"\nbackend = \"corosync\"\n"] {
            let c = parse(&format!("{head}{FENCING}")).unwrap();
            assert_eq!(c.devices.len(), 2);
            assert_eq!(c.levels.len(), 2);
            assert_eq!(
                c.fencing.lost_node_action,
                crate::fencing::node_devices::LostNodeAction::Off
            );
        }
        let c = parse(GOOD).unwrap();
        assert!(c.devices.is_empty() && c.levels.is_empty());
        assert_eq!(c.fencing, FencingOptions::default());
    }

    #[test]
    fn fencing_mistakes_are_refused_at_load() {
        let e = parse(&format!(
            "{GOOD}{}",
            FENCING.replace("timeout_s = 20", "timeout = 20")
        ))
        .unwrap_err();
        assert!(e.to_string().contains("timeout"), "{e}");
        let e = parse(&format!(
            "{GOOD}{}",
            FENCING.replace("level = 2", "level = 1")
        ))
        .unwrap_err();
        assert!(e.to_string().contains("`levels[1].level`"), "{e}");
        assert!(matches!(e, ConfigError::Fencing { .. }), "{e}");
        let e = parse(&format!(
            "{GOOD}{}",
            FENCING.replace("username = \"fence\"", "password = \"hunter2\"")
        ))
        .unwrap_err();
        assert!(
            e.to_string().contains("device pdu1: `params.password`"),
            "{e}"
        );
        assert!(!format!("{e} {e:?}").contains("hunter2"), "{e:?}");
        let e = parse(&format!(
            "{GOOD}{}",
            FENCING.replace("[fencing]", "[fencing]\nspeed = 1")
        ))
        .unwrap_err();
        assert!(e.to_string().contains("speed"), "{e}");
        // A parse error on a line holding a secret quotes neither the line nor the value.
        for bad in [
            "params = { password = \"hunter2\", ip = 5 }",
            "params = { password = 7654321 }",
        ] {
            let e = parse(&format!(
                "{GOOD}[[devices]]\nid = \"d\"\nagent = \"fence_apc\"\n{bad}\n"
            ))
            .unwrap_err();
            let shown = format!("{e} {e:?}");
            assert!(
                !shown.contains("hunter2") && !shown.contains("7654321"),
                "{shown}"
            );
            assert!(shown.contains("line 17"), "{shown}");
        }
    }
}
