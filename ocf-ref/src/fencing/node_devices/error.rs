//! What is wrong with a node's fencing tables: one variant per mistake, each naming the
//! device (or the level) and the key.

use std::path::PathBuf;

use ocf_core::NodeName;
use ocf_fencing::{DeviceId, FenceError};

use crate::bounded_read::PrivateReadError;
use crate::fencing::devices::agent::ParamProblem;

/// Why a node's devices were not built. Every message names the device (or the level) and
/// the key, never a secret's value. [`NodeDevicesError::device`] and
/// [`NodeDevicesError::field`] give them to a program.
///
/// ```
/// use ocf_ref::fencing::node_devices::NodeDevicesError;
/// let e = NodeDevicesError::InlineSecret { device: "pdu1".parse().unwrap(), parameter: "password".into() };
/// assert_eq!(e.field(), "params.password");
/// assert!(e.to_string().contains("pdu1") && e.to_string().contains("secret_files"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeDevicesError {
    /// Two `[[devices]]` entries share an id.
    #[error(
        "device {device}: `id`: declared twice (devices[{index}] repeats it); give each device its own id"
    )]
    DuplicateDevice {
        /// The id.
        device: DeviceId,
        /// The index of the second entry in `[[devices]]`.
        index: usize,
    },
    /// `agent` is not a name this daemon accepts (a path, `..`, an unknown prefix).
    #[error("device {device}: `agent`: {agent:?} {problem}")]
    BadAgentName {
        /// The device.
        device: DeviceId,
        /// The name given.
        agent: String,
        /// What is wrong and what would be right.
        problem: String,
    },
    /// The agent or plugin is not installed.
    #[error("device {device}: `agent`: {agent} is not installed: {problem}")]
    UnknownAgent {
        /// The device.
        device: DeviceId,
        /// The agent.
        agent: String,
        /// Where it was looked for.
        problem: String,
    },
    /// The agent's meta-data could not be read.
    #[error("device {device}: `agent`: cannot read {agent}'s meta-data: {source}")]
    Metadata {
        /// The device.
        device: DeviceId,
        /// The agent.
        agent: String,
        /// What the agent did.
        source: Box<FenceError>,
    },
    /// `hosts` or `host_map` is wrong (empty, both given, a native device without them, an
    /// agent that cannot list its targets without them).
    #[error("device {device}: `{field}`: {problem}")]
    Targets {
        /// The device.
        device: DeviceId,
        /// `hosts` or `host_map`.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// A secret parameter is written in `params`.
    #[error(
        "device {device}: `params.{parameter}`: a secret may not be written in node.toml; put \
         it in a root-only file and name it in `secret_files = {{ {parameter} = \"/etc/ocf/...\" }}`"
    )]
    InlineSecret {
        /// The device.
        device: DeviceId,
        /// The parameter.
        parameter: String,
    },
    /// A parameter is given both in `params` and in `secret_files`.
    #[error("device {device}: `secret_files.{parameter}`: also given in `params`; keep one")]
    SecretTwice {
        /// The device.
        device: DeviceId,
        /// The parameter.
        parameter: String,
    },
    /// A secret file could not be read, or others may read it.
    #[error("device {device}: `secret_files.{parameter}`: {source}")]
    SecretFile {
        /// The device.
        device: DeviceId,
        /// The parameter.
        parameter: String,
        /// Why (names the file).
        source: PrivateReadError,
    },
    /// A secret file's content is not one value.
    #[error("device {device}: `secret_files.{parameter}`: {path}: {problem}")]
    SecretValue {
        /// The device.
        device: DeviceId,
        /// The parameter.
        parameter: String,
        /// The file.
        path: PathBuf,
        /// What is wrong (never the content).
        problem: &'static str,
    },
    /// A parameter does not fit the agent's meta-data: missing, unknown, of the wrong type.
    #[error("device {device}: `params.{}`: {problem}", problem.parameter())]
    Parameter {
        /// The device.
        device: DeviceId,
        /// What is wrong.
        problem: ParamProblem,
    },
    /// A key that this kind of device does not take (`params` on `native:null`).
    #[error("device {device}: `{field}`: {problem}")]
    NotForThisAgent {
        /// The device.
        device: DeviceId,
        /// The key.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// A timeout out of range (`timeout_s`, or `fencing.device_timeout_s` when `device` is
    /// `None`).
    #[error("{}`{field}`: {value} is out of range 1..=3600 (seconds)", device.as_ref().map(|d| format!("device {d}: ")).unwrap_or_default())]
    Timeout {
        /// The device, or `None` for `[fencing]`.
        device: Option<DeviceId>,
        /// The key.
        field: &'static str,
        /// The value given.
        value: u64,
    },
    /// `fencing.agents_dir` is not an absolute directory.
    #[error("`fencing.agents_dir`: {path}: {problem}")]
    AgentsDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong.
        problem: &'static str,
    },
    /// A level number is 0.
    #[error("`levels[{index}].level`: 0 for target {target}; levels count from 1")]
    LevelZero {
        /// The index in `[[levels]]`.
        index: usize,
        /// The target.
        target: NodeName,
    },
    /// A level number appears twice for one target.
    #[error(
        "`levels[{index}].level`: level {level} of target {target} is declared twice; merge the two or renumber one"
    )]
    LevelRepeated {
        /// The index of the second entry in `[[levels]]`.
        index: usize,
        /// The target.
        target: NodeName,
        /// The level.
        level: u32,
    },
    /// A level names no device.
    #[error("`levels[{index}].devices`: level {level} of target {target} names no device")]
    LevelEmpty {
        /// The index in `[[levels]]`.
        index: usize,
        /// The target.
        target: NodeName,
        /// The level.
        level: u32,
    },
    /// A level names a device no `[[devices]]` entry declares.
    #[error(
        "`levels[{index}].devices`: level {level} of target {target} names device {device}, which no [[devices]] entry of this node declares"
    )]
    LevelUnknownDevice {
        /// The index in `[[levels]]`.
        index: usize,
        /// The target.
        target: NodeName,
        /// The level.
        level: u32,
        /// The device named.
        device: DeviceId,
    },
    /// A level names a device whose `hosts`/`host_map` does not include its target.
    #[error(
        "`levels[{index}].devices`: level {level} of target {target} names device {device}, whose hosts do not include {target}"
    )]
    LevelNotATarget {
        /// The index in `[[levels]]`.
        index: usize,
        /// The target.
        target: NodeName,
        /// The level.
        level: u32,
        /// The device named.
        device: DeviceId,
    },
    /// The fencer refused a device.
    #[error("device {device}: the fencer refused it: {source}")]
    Register {
        /// The device.
        device: DeviceId,
        /// The fencer's answer.
        source: Box<FenceError>,
    },
    /// The fencer refused the levels of a target.
    #[error("`levels`: the fencer refused the levels of target {target}: {source}")]
    Topology {
        /// The target.
        target: NodeName,
        /// The fencer's answer.
        source: Box<FenceError>,
    },
}

impl NodeDevicesError {
    /// The device concerned (for a level, the device it names), if any.
    pub fn device(&self) -> Option<&DeviceId> {
        match self {
            Self::DuplicateDevice { device, .. }
            | Self::BadAgentName { device, .. }
            | Self::UnknownAgent { device, .. }
            | Self::Metadata { device, .. }
            | Self::Targets { device, .. }
            | Self::InlineSecret { device, .. }
            | Self::SecretTwice { device, .. }
            | Self::SecretFile { device, .. }
            | Self::SecretValue { device, .. }
            | Self::Parameter { device, .. }
            | Self::NotForThisAgent { device, .. }
            | Self::LevelUnknownDevice { device, .. }
            | Self::LevelNotATarget { device, .. }
            | Self::Register { device, .. } => Some(device),
            Self::Timeout { device, .. } => device.as_ref(),
            Self::AgentsDir { .. }
            | Self::LevelZero { .. }
            | Self::LevelRepeated { .. }
            | Self::LevelEmpty { .. }
            | Self::Topology { .. } => None,
        }
    }

    /// The key concerned: relative to the device's `[[devices]]` entry for a device
    /// (`agent`, `params.password`, `secret_files.password`), whole for the rest
    /// (`levels[2].devices`, `fencing.device_timeout_s`).
    pub fn field(&self) -> String {
        match self {
            Self::DuplicateDevice { .. } => "id".into(),
            Self::BadAgentName { .. }
            | Self::UnknownAgent { .. }
            | Self::Metadata { .. }
            | Self::Register { .. } => "agent".into(),
            Self::Targets { field, .. }
            | Self::NotForThisAgent { field, .. }
            | Self::Timeout { field, .. } => (*field).into(),
            Self::InlineSecret { parameter, .. } => format!("params.{parameter}"),
            Self::SecretTwice { parameter, .. }
            | Self::SecretFile { parameter, .. }
            | Self::SecretValue { parameter, .. } => format!("secret_files.{parameter}"),
            Self::Parameter { problem, .. } => format!("params.{}", problem.parameter()),
            Self::AgentsDir { .. } => "fencing.agents_dir".into(),
            Self::Topology { .. } => "levels".into(),
            Self::LevelZero { index, .. } | Self::LevelRepeated { index, .. } => {
                format!("levels[{index}].level")
            }
            Self::LevelEmpty { index, .. }
            | Self::LevelUnknownDevice { index, .. }
            | Self::LevelNotATarget { index, .. } => format!("levels[{index}].devices"),
        }
    }
}
