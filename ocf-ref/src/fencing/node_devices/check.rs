//! The checks that need no agent: names, ids, targets, timeouts, inline secrets, levels.
//! Pure and synchronous, so `node.toml` is refused at load and tests need no agents.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use ocf_core::NodeName;
use ocf_fencing::{DeviceId, DeviceParams, Targets, TopologyLevel, is_secret_parameter};

use super::error::NodeDevicesError;
use super::tables::{DeviceEntry, FencingOptions, LevelEntry, LostNodeAction};
use crate::fencing::devices::agent::NOT_AGENTS;

/// The longest timeout accepted, in seconds (an hour: longer is a typo), for `timeout_s`
/// and `fencing.device_timeout_s`.
///
/// ```
/// assert_eq!(ocf_ref::fencing::node_devices::MAX_TIMEOUT_S, 3600);
/// ```
pub const MAX_TIMEOUT_S: u64 = 3600;

/// What drives a device, from its `agent` key.
///
/// ```
/// use ocf_ref::fencing::node_devices::AgentKind;
/// assert_eq!(AgentKind::parse("fence_apc"), Ok(AgentKind::FenceAgent("fence_apc".into())));
/// assert_eq!(AgentKind::parse("stonith:external/ipmi"), Ok(AgentKind::Stonith("external/ipmi".into())));
/// assert_eq!(AgentKind::parse("native:null"), Ok(AgentKind::NativeNull));
/// assert!(AgentKind::parse("/usr/sbin/fence_apc").is_err());
/// assert!(AgentKind::parse("stonith:external/../../bin/sh").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AgentKind {
    /// A fence-agents executable (`fence_apc`), found in the agents directory.
    FenceAgent(String),
    /// A cluster-glue stonith plugin type (`null`, `external/ipmi`).
    Stonith(String),
    /// [`NullDevice`](crate::fencing::devices::native::NullDevice): succeeds, touches nothing.
    NativeNull,
    /// [`ManualDevice`](crate::fencing::devices::native::ManualDevice): waits for an operator.
    NativeManual,
}

impl AgentKind {
    /// Parses an `agent` value. Refuses a path (`/`), `..`, names of other characters than
    /// letters, digits, `_`, `-` and `.`, `fence_*` programs that are not agents
    /// (`fence_ack_manual`) and unknown `native:` kinds, with what would be right.
    pub fn parse(agent: &str) -> Result<Self, String> {
        let plain = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s != "."
                && s != ".."
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        };
        if agent.contains("..") {
            return Err("may not contain `..`".into());
        }
        if let Some(plugin) = agent.strip_prefix("stonith:") {
            // cluster-glue's types are `name` or `external/name` (its one subdirectory).
            let ok = match plugin.split_once('/') {
                None => plain(plugin),
                Some((dir, name)) => dir == "external" && plain(name),
            };
            return if ok {
                Ok(Self::Stonith(plugin.to_owned()))
            } else {
                Err(
                    "is not a cluster-glue plugin type: write stonith:<type> or \
                     stonith:external/<type>, as `ocf fence plugins` lists them"
                        .into(),
                )
            };
        }
        if let Some(native) = agent.strip_prefix("native:") {
            return match native {
                "null" => Ok(Self::NativeNull),
                "manual" => Ok(Self::NativeManual),
                _ => Err("is not a native device: write native:null or native:manual".into()),
            };
        }
        if agent.contains('/') {
            return Err(
                "is a path: name the agent (fence_ipmilan) and set fencing.agents_dir if it is \
                 installed elsewhere"
                    .into(),
            );
        }
        if !agent.starts_with("fence_") || !plain(agent) {
            return Err(
                "is not a fence agent's name (fence_*), stonith:<type>, native:null \
                        or native:manual"
                    .into(),
            );
        }
        if NOT_AGENTS.contains(&agent) {
            return Err("is the operator's acknowledgement command, not a fence agent".into());
        }
        Ok(Self::FenceAgent(agent.to_owned()))
    }

    /// Whether it is a native device (no agent, no parameters).
    ///
    /// ```
    /// use ocf_ref::fencing::node_devices::AgentKind;
    /// assert!(AgentKind::NativeNull.is_native());
    /// assert!(!AgentKind::Stonith("null".into()).is_native());
    /// ```
    pub fn is_native(&self) -> bool {
        matches!(self, Self::NativeNull | Self::NativeManual)
    }
}

/// One device as checked, ready to build once its secrets are read and its agent asked.
///
/// ```
/// use ocf_fencing::Targets;
/// use ocf_ref::fencing::node_devices::{AgentKind, DeviceEntry, FencingOptions, check_tables};
/// let d: DeviceEntry = toml::from_str("id = \"p\"\nagent = \"fence_apc\"\nhost_map = { n1 = \"3\" }").unwrap();
/// let plan = check_tables(&FencingOptions::default(), &[d], &[]).unwrap();
/// assert_eq!(plan.devices[0].kind, AgentKind::FenceAgent("fence_apc".into()));
/// assert_eq!(plan.devices[0].targets.plug_for(&"n1".parse().unwrap()), Some("3"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DevicePlan {
    /// Its id.
    pub id: DeviceId,
    /// What drives it.
    pub kind: AgentKind,
    /// `agent` as written.
    pub agent: String,
    /// The nodes it fences (or [`Targets::Dynamic`]).
    pub targets: Targets,
    /// The parameters written in `node.toml` (no secret by name).
    pub params: DeviceParams,
    /// Secret parameters and their files, not read yet.
    pub secret_files: BTreeMap<String, PathBuf>,
    /// Its own operation timeout.
    pub timeout: Option<Duration>,
}

/// A node's fencing tables as checked: what [`super::build_fencer`] builds.
///
/// ```
/// use ocf_ref::fencing::node_devices::{FencingOptions, LostNodeAction, check_tables};
/// let plan = check_tables(&FencingOptions::default(), &[], &[]).unwrap();
/// assert!(plan.devices.is_empty() && plan.topology.is_empty());
/// assert_eq!(plan.lost_node_action, LostNodeAction::Reboot);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FencingPlan {
    /// `fencing.agents_dir`, if given.
    pub agents_dir: Option<PathBuf>,
    /// What the cluster does to a lost node.
    pub lost_node_action: LostNodeAction,
    /// `fencing.device_timeout_s`.
    pub device_timeout: Option<Duration>,
    /// The devices, in file order.
    pub devices: Vec<DevicePlan>,
    /// The levels of each target, in rank order.
    pub topology: BTreeMap<NodeName, Vec<TopologyLevel>>,
}

fn timeout(
    device: Option<&DeviceId>,
    field: &'static str,
    value: Option<u64>,
) -> Result<Option<Duration>, NodeDevicesError> {
    match value {
        None => Ok(None),
        Some(s) if (1..=MAX_TIMEOUT_S).contains(&s) => Ok(Some(Duration::from_secs(s))),
        Some(s) => Err(NodeDevicesError::Timeout {
            device: device.cloned(),
            field,
            value: s,
        }),
    }
}

fn targets(d: &DeviceEntry, kind: &AgentKind) -> Result<Targets, NodeDevicesError> {
    let bad = |field: &'static str, problem: String| NodeDevicesError::Targets {
        device: d.id.clone(),
        field,
        problem,
    };
    let t = match (&d.hosts, &d.host_map) {
        (Some(_), Some(_)) => {
            return Err(bad(
                "host_map",
                "give `hosts` or `host_map`, not both".into(),
            ));
        }
        (Some(hosts), None) => {
            if hosts.is_empty() {
                return Err(bad(
                    "hosts",
                    "names no node; list the nodes or remove the key to ask the agent".into(),
                ));
            }
            let mut seen = BTreeSet::new();
            if let Some(twice) = hosts.iter().find(|h| !seen.insert(*h)) {
                return Err(bad("hosts", format!("{twice} is listed twice")));
            }
            Targets::hosts(hosts.iter().cloned())
        }
        (None, Some(map)) => {
            if map.is_empty() {
                return Err(bad(
                    "host_map",
                    "maps no node; map the nodes or remove the key to ask the agent".into(),
                ));
            }
            if let Some((node, _)) = map.iter().find(|(_, plug)| plug.is_empty()) {
                return Err(bad("host_map", format!("{node} maps to an empty plug")));
            }
            Targets::host_map(map.iter().map(|(n, p)| (n.clone(), p.clone())))
        }
        (None, None) => Targets::Dynamic,
    };
    if kind.is_native() && t == Targets::Dynamic {
        return Err(bad(
            "hosts",
            format!("{} cannot be asked for its targets: list them", d.agent),
        ));
    }
    if matches!(kind, AgentKind::NativeNull | AgentKind::NativeManual) && d.host_map.is_some() {
        return Err(bad(
            "host_map",
            format!("{} has no plugs: use `hosts`", d.agent),
        ));
    }
    Ok(t)
}

fn device_plan(d: &DeviceEntry) -> Result<DevicePlan, NodeDevicesError> {
    let kind = AgentKind::parse(&d.agent).map_err(|problem| NodeDevicesError::BadAgentName {
        device: d.id.clone(),
        agent: d.agent.clone(),
        problem,
    })?;
    let targets = targets(d, &kind)?;
    if kind.is_native() {
        let not = |field: &'static str| NodeDevicesError::NotForThisAgent {
            device: d.id.clone(),
            field,
            problem: format!("{} takes no parameters; remove the key", d.agent),
        };
        if !d.params.is_empty() {
            return Err(not("params"));
        }
        if !d.secret_files.is_empty() {
            return Err(not("secret_files"));
        }
    }
    for (name, value) in d.params.iter() {
        if value.is_secret() || is_secret_parameter(name) {
            return Err(NodeDevicesError::InlineSecret {
                device: d.id.clone(),
                parameter: name.to_owned(),
            });
        }
    }
    if let Some(name) = d.secret_files.keys().find(|k| d.params.contains(k)) {
        return Err(NodeDevicesError::SecretTwice {
            device: d.id.clone(),
            parameter: name.clone(),
        });
    }
    for (name, path) in &d.secret_files {
        if !path.is_absolute() {
            return Err(NodeDevicesError::SecretValue {
                device: d.id.clone(),
                parameter: name.clone(),
                path: path.clone(),
                problem: "is not an absolute path",
            });
        }
    }
    Ok(DevicePlan {
        id: d.id.clone(),
        kind,
        agent: d.agent.clone(),
        targets,
        params: d.params.clone(),
        secret_files: d.secret_files.clone(),
        timeout: timeout(Some(&d.id), "timeout_s", d.timeout_s)?,
    })
}

fn topology(
    levels: &[LevelEntry],
    devices: &[DevicePlan],
) -> Result<BTreeMap<NodeName, Vec<TopologyLevel>>, NodeDevicesError> {
    let mut ranked: BTreeMap<NodeName, BTreeMap<u32, TopologyLevel>> = BTreeMap::new();
    for (index, l) in levels.iter().enumerate() {
        if l.level == 0 {
            return Err(NodeDevicesError::LevelZero {
                index,
                target: l.target.clone(),
            });
        }
        if l.devices.is_empty() {
            return Err(NodeDevicesError::LevelEmpty {
                index,
                target: l.target.clone(),
                level: l.level,
            });
        }
        for id in &l.devices {
            let Some(device) = devices.iter().find(|d| &d.id == id) else {
                return Err(NodeDevicesError::LevelUnknownDevice {
                    index,
                    target: l.target.clone(),
                    level: l.level,
                    device: id.clone(),
                });
            };
            if device.targets.configured().is_some() && device.targets.plug_for(&l.target).is_none()
            {
                return Err(NodeDevicesError::LevelNotATarget {
                    index,
                    target: l.target.clone(),
                    level: l.level,
                    device: id.clone(),
                });
            }
        }
        let of_target = ranked.entry(l.target.clone()).or_default();
        if of_target
            .insert(l.level, TopologyLevel::new(l.devices.iter().cloned()))
            .is_some()
        {
            return Err(NodeDevicesError::LevelRepeated {
                index,
                target: l.target.clone(),
                level: l.level,
            });
        }
    }
    Ok(ranked
        .into_iter()
        .map(|(t, levels)| (t, levels.into_values().collect()))
        .collect())
}

/// Checks a node's fencing tables without running anything: agent names, unique device ids,
/// `hosts`/`host_map`, timeouts, no secret written inline, secret files named by absolute
/// paths, and levels (numbered from 1, once per target, naming declared devices that can
/// fence the target). Returns the first problem found, in file order.
///
/// What needs the agents (installed, their parameters, the secret files' modes) is checked by
/// [`super::build_fencer`].
///
/// ```
/// use ocf_ref::fencing::node_devices::{DeviceEntry, FencingOptions, LevelEntry, check_tables};
/// let devices: Vec<DeviceEntry> = vec![toml::from_str("id = \"null\"\nagent = \"native:null\"\nhosts = [\"n1\"]").unwrap()];
/// let levels: Vec<LevelEntry> = vec![toml::from_str("target = \"n1\"\nlevel = 0\ndevices = [\"null\"]").unwrap()];
/// let e = check_tables(&FencingOptions::default(), &devices, &levels).unwrap_err();
/// assert_eq!(e.field(), "levels[0].level");
/// assert!(check_tables(&FencingOptions::default(), &devices, &[]).is_ok());
/// ```
pub fn check_tables(
    fencing: &FencingOptions,
    devices: &[DeviceEntry],
    levels: &[LevelEntry],
) -> Result<FencingPlan, NodeDevicesError> {
    if let Some(dir) = &fencing.agents_dir {
        if !dir.is_absolute() {
            return Err(NodeDevicesError::AgentsDir {
                path: dir.clone(),
                problem: "is not an absolute path",
            });
        }
    }
    let device_timeout = timeout(None, "fencing.device_timeout_s", fencing.device_timeout_s)?;
    let mut plans: Vec<DevicePlan> = Vec::with_capacity(devices.len());
    for (index, d) in devices.iter().enumerate() {
        if plans.iter().any(|p| p.id == d.id) {
            return Err(NodeDevicesError::DuplicateDevice {
                device: d.id.clone(),
                index,
            });
        }
        plans.push(device_plan(d)?);
    }
    let topology = topology(levels, &plans)?;
    Ok(FencingPlan {
        agents_dir: fencing.agents_dir.clone(),
        lost_node_action: fencing.lost_node_action,
        device_timeout,
        devices: plans,
        topology,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(text: &str) -> DeviceEntry {
        toml::from_str(text).unwrap()
    }

    fn level(text: &str) -> LevelEntry {
        toml::from_str(text).unwrap()
    }

    fn null(id: &str, hosts: &str) -> DeviceEntry {
        device(&format!(
            "id = \"{id}\"\nagent = \"native:null\"\nhosts = {hosts}"
        ))
    }

    fn check(
        devices: &[DeviceEntry],
        levels: &[LevelEntry],
    ) -> Result<FencingPlan, NodeDevicesError> {
        check_tables(&FencingOptions::default(), devices, levels)
    }

    #[test]
    fn agent_names_are_parsed_or_refused() {
        for good in [
            "fence_apc",
            "fence_ipmilan",
            "stonith:null",
            "stonith:external/ipmi",
            "native:manual",
        ] {
            assert!(AgentKind::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "/usr/sbin/fence_apc",
            "../fence_apc",
            "fence_..",
            "fence_a/b",
            "fence_ack_manual",
            "apc",
            "fence_a b",
            "stonith:",
            "stonith:external/",
            "stonith:other/ipmi",
            "stonith:external/a/b",
            "stonith:../x",
            "native:simulated",
            "",
        ] {
            assert!(AgentKind::parse(bad).is_err(), "{bad}");
        }
        let e = check(&[device("id = \"d\"\nagent = \"fence_x/../y\"")], &[]).unwrap_err();
        assert!(
            matches!(e, NodeDevicesError::BadAgentName { ref device, .. } if device.as_str() == "d"),
            "{e}"
        );
        assert_eq!(e.field(), "agent");
    }

    #[test]
    fn duplicate_ids_and_targets_are_refused() {
        let e = check(&[null("a", "[\"n1\"]"), null("a", "[\"n2\"]")], &[]).unwrap_err();
        assert!(
            matches!(e, NodeDevicesError::DuplicateDevice { index: 1, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("device a: `id`"), "{e}");
        let e = check(&[null("a", "[]")], &[]).unwrap_err();
        assert_eq!(e.field(), "hosts", "{e}");
        let e = check(&[null("a", "[\"n1\", \"n1\"]")], &[]).unwrap_err();
        assert!(e.to_string().contains("n1 is listed twice"), "{e}");
        let e = check(&[device("id = \"a\"\nagent = \"native:null\"")], &[]).unwrap_err();
        assert_eq!(e.field(), "hosts", "{e}");
        let e = check(
            &[device(
                "id = \"a\"\nagent = \"fence_apc\"\nhosts = [\"n1\"]\nhost_map = { n1 = \"1\" }",
            )],
            &[],
        )
        .unwrap_err();
        assert_eq!(e.field(), "host_map", "{e}");
        let e = check(
            &[device(
                "id = \"a\"\nagent = \"fence_apc\"\nhost_map = { n1 = \"\" }",
            )],
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("empty plug"), "{e}");
        let plan = check(&[device("id = \"a\"\nagent = \"fence_apc\"")], &[]).unwrap();
        assert_eq!(plan.devices[0].targets, Targets::Dynamic);
    }

    #[test]
    fn secrets_stay_out_of_the_file() {
        let e = check(
            &[device("id = \"pdu\"\nagent = \"fence_apc\"\nparams = { ip = \"10.0.0.5\", password = \"hunter2\" }")],
            &[],
        )
        .unwrap_err();
        assert!(
            matches!(e, NodeDevicesError::InlineSecret { ref parameter, .. } if parameter == "password"),
            "{e}"
        );
        assert_eq!(e.field(), "params.password");
        assert!(!e.to_string().contains("hunter2") && !format!("{e:?}").contains("hunter2"));
        let e = check(
            &[device("id = \"pdu\"\nagent = \"fence_apc\"\nparams = { passwd = \"x\" }\nsecret_files = { passwd = \"/etc/x\" }")],
            &[],
        )
        .unwrap_err();
        // `passwd` inline is caught first; a non-secret name given twice is its own error.
        assert!(matches!(e, NodeDevicesError::InlineSecret { .. }), "{e}");
        let e = check(
            &[device("id = \"pdu\"\nagent = \"fence_apc\"\nparams = { username = \"x\" }\nsecret_files = { username = \"/etc/x\" }")],
            &[],
        )
        .unwrap_err();
        assert!(matches!(e, NodeDevicesError::SecretTwice { .. }), "{e}");
        let e = check(
            &[device(
                "id = \"pdu\"\nagent = \"fence_apc\"\nsecret_files = { password = \"pw.txt\" }",
            )],
            &[],
        )
        .unwrap_err();
        assert_eq!(e.field(), "secret_files.password", "{e}");
        let e = check(
            &[device(
                "id = \"n\"\nagent = \"native:null\"\nhosts = [\"n1\"]\nparams = { ip = \"1\" }",
            )],
            &[],
        )
        .unwrap_err();
        assert_eq!(e.field(), "params", "{e}");
    }

    #[test]
    fn timeouts_are_bounded() {
        let e = check(
            &[device("id = \"a\"\nagent = \"fence_apc\"\ntimeout_s = 0")],
            &[],
        )
        .unwrap_err();
        assert!(
            matches!(e, NodeDevicesError::Timeout { value: 0, .. }),
            "{e}"
        );
        assert_eq!(e.field(), "timeout_s");
        let o: FencingOptions = toml::from_str("device_timeout_s = 99999").unwrap();
        let e = check_tables(&o, &[], &[]).unwrap_err();
        assert_eq!(e.field(), "fencing.device_timeout_s", "{e}");
        let o: FencingOptions =
            toml::from_str("device_timeout_s = 5\nagents_dir = \"sbin\"").unwrap();
        let e = check_tables(&o, &[], &[]).unwrap_err();
        assert_eq!(e.field(), "fencing.agents_dir", "{e}");
        let plan = check(
            &[device("id = \"a\"\nagent = \"fence_apc\"\ntimeout_s = 30")],
            &[],
        )
        .unwrap();
        assert_eq!(plan.devices[0].timeout, Some(Duration::from_secs(30)));
    }

    #[test]
    fn levels_are_checked_and_ranked() {
        let devices = [null("a", "[\"n1\", \"n2\"]"), null("b", "[\"n1\"]")];
        let plan = check(
            &devices,
            &[
                level("target = \"n1\"\nlevel = 3\ndevices = [\"b\"]"),
                level("target = \"n1\"\nlevel = 1\ndevices = [\"a\", \"b\"]"),
                level("target = \"n2\"\nlevel = 1\ndevices = [\"a\"]"),
            ],
        )
        .unwrap();
        let n1 = &plan.topology[&"n1".parse::<NodeName>().unwrap()];
        assert_eq!(n1.len(), 2);
        assert_eq!(n1[0].devices.len(), 2, "level 1 first");
        let cases = [
            (
                "target = \"n1\"\nlevel = 0\ndevices = [\"a\"]",
                "levels[0].level",
            ),
            (
                "target = \"n1\"\nlevel = 1\ndevices = []",
                "levels[0].devices",
            ),
            (
                "target = \"n1\"\nlevel = 1\ndevices = [\"zz\"]",
                "levels[0].devices",
            ),
            (
                "target = \"n2\"\nlevel = 1\ndevices = [\"b\"]",
                "levels[0].devices",
            ),
        ];
        for (text, field) in cases {
            let e = check(&devices, &[level(text)]).unwrap_err();
            assert_eq!(e.field(), field, "{text}: {e}");
        }
        let e = check(&devices, &[level(cases[0].0)]).unwrap_err();
        assert!(matches!(e, NodeDevicesError::LevelZero { .. }), "{e}");
        let e = check(&devices, &[level(cases[2].0)]).unwrap_err();
        assert!(
            matches!(e, NodeDevicesError::LevelUnknownDevice { ref device, .. } if device.as_str() == "zz"),
            "{e}"
        );
        assert_eq!(e.device().map(DeviceId::as_str), Some("zz"));
        let e = check(&devices, &[level(cases[3].0)]).unwrap_err();
        assert!(matches!(e, NodeDevicesError::LevelNotATarget { .. }), "{e}");
        let twice = level("target = \"n1\"\nlevel = 2\ndevices = [\"a\"]");
        let e = check(&devices, &[twice.clone(), twice]).unwrap_err();
        assert!(
            matches!(
                e,
                NodeDevicesError::LevelRepeated {
                    index: 1,
                    level: 2,
                    ..
                }
            ),
            "{e}"
        );
    }
}
