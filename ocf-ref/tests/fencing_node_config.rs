//! Fence devices declared in `node.toml`, checked against the real agents (fence-agents'
//! `fence_dummy` and `fence_apc`, cluster-glue's `stonith -t null`) and built into a fencer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use ocf_core::NodeName;
use ocf_fencing::{FenceAction, FenceRequest, Fencer, FencerAdmin, PowerState};
use ocf_ref::bounded_read::PrivateReadError;
use ocf_ref::fencing::devices::agent::ParamProblem;
use ocf_ref::fencing::fencer::FencerConfig;
use ocf_ref::fencing::node_devices::{
    DeviceSummary, LostNodeAction, NodeDevices, NodeDevicesError, build_fencer,
};
use ocf_ref::membership::config::{ConfigError, NodeConfig};

const HEAD: &str = "cluster = \"c1\"\nbackend = \"corosync\"\n";

fn n(s: &str) -> NodeName {
    s.parse().unwrap()
}

fn parse(tables: &str) -> Result<NodeConfig, ConfigError> {
    NodeConfig::parse(&format!("{HEAD}{tables}"), Path::new("node.toml"))
}

async fn build(tables: &str) -> Result<NodeDevices, NodeDevicesError> {
    build_fencer(&parse(tables).unwrap(), FencerConfig::default()).await
}

/// Writes `content` to `dir/name` with `mode`; returns the path as TOML-ready text.
fn write(dir: &Path, name: &str, content: &str, mode: u32) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path.display().to_string()
}

/// The device and key an error names, as `device/field`.
fn named(e: &NodeDevicesError) -> String {
    format!("{}/{}", e.device().map_or("-", |d| d.as_str()), e.field())
}

fn reboot(target: &str) -> FenceRequest {
    FenceRequest::new(n(target), FenceAction::Reboot, "test@n9".parse().unwrap())
        .with_timeout(Duration::from_secs(60))
}

#[tokio::test]
async fn a_good_config_builds_a_fencer_that_fences_through_its_devices() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // The status file's path reaches fence_dummy from a secret file: proof that a secret
    // file's content is what the agent gets.
    let secret = write(
        dir.path(),
        "status.path",
        &format!("{}\n", state.display()),
        0o600,
    );
    let node = build(&format!(
        r#"
[fencing]
lost_node_action = "off"
device_timeout_s = 40
[[devices]]
id = "dummy"
agent = "fence_dummy"
hosts = ["n1"]
secret_files = {{ status_file = "{secret}" }}
timeout_s = 20
[[devices]]
id = "null"
agent = "native:null"
hosts = ["n1", "n2"]
[[devices]]
id = "glue"
agent = "stonith:null"
hosts = ["n3"]
params = {{ hostlist = "n3" }}
[[levels]]
target = "n1"
level = 2
devices = ["null"]
[[levels]]
target = "n1"
level = 1
devices = ["dummy"]
"#
    ))
    .await
    .unwrap();
    assert_eq!(node.lost_node_action, LostNodeAction::Off);
    assert_eq!(
        node.devices,
        [
            DeviceSummary::new("dummy".parse().unwrap(), Some(vec![n("n1")])),
            DeviceSummary::new("null".parse().unwrap(), Some(vec![n("n1"), n("n2")])),
            DeviceSummary::new("glue".parse().unwrap(), Some(vec![n("n3")])),
        ]
    );
    let ids: Vec<String> = node
        .fencer
        .devices()
        .await
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(ids, ["dummy", "null", "glue"]);
    let levels = node.fencer.topology(&n("n1")).await.unwrap();
    assert_eq!(levels.len(), 2);
    assert_eq!(levels[0].devices[0].as_str(), "dummy", "level 1 first");
    let shown = format!("{node:?}");
    assert!(!shown.contains(&state.display().to_string()), "{shown}");

    // n1: level 1 is fence_dummy, which powers the node through its status file.
    let record = node.fencer.fence(reboot("n1")).await.unwrap();
    assert!(record.succeeded(), "{record:?}");
    assert_eq!(std::fs::read_to_string(&state).unwrap(), "on");
    let dummy = node.fencer.device(&"dummy".parse().unwrap()).unwrap();
    assert_eq!(
        dummy
            .status(&n("n1"), Duration::from_secs(30))
            .await
            .unwrap(),
        PowerState::On
    );
    // n2 has no levels: the null device, the only one listing it, fences it.
    let record = node.fencer.fence(reboot("n2")).await.unwrap();
    assert!(record.succeeded(), "{record:?}");
    // n3 through cluster-glue's null plugin.
    let record = node.fencer.fence(reboot("n3")).await.unwrap();
    assert!(record.succeeded(), "{record:?}");
    // A node no device lists is not fenced.
    assert!(node.fencer.fence(reboot("n4")).await.is_err());
}

#[tokio::test]
async fn no_fencing_tables_give_a_fencer_without_devices() {
    let node = build("").await.unwrap();
    assert!(node.devices.is_empty());
    assert!(node.fencer.devices().await.unwrap().is_empty());
    assert_eq!(node.lost_node_action, LostNodeAction::Reboot);
    // The built-in backend's configs too.
    let builtin = NodeConfig::parse(
        "cluster = \"c1\"\nnode_id = 1\nkey_file = \"/etc/ocf/authkey\"\n[[nodes]]\nid = 1\nname = \"n1\"\naddress = \"127.0.0.1:7401\"\n",
        Path::new("node.toml"),
    )
    .unwrap();
    let node = build_fencer(&builtin, FencerConfig::default())
        .await
        .unwrap();
    assert!(node.devices.is_empty());
}

#[tokio::test]
async fn a_secret_file_must_be_private_to_its_owner() {
    let dir = tempfile::tempdir().unwrap();
    let tables = |path: &str| {
        format!(
            r#"
[[devices]]
id = "pdu1"
agent = "fence_apc"
host_map = {{ n1 = "1", n2 = "2" }}
params = {{ ip = "192.0.2.5", username = "fence" }}
secret_files = {{ password = "{path}" }}
"#
        )
    };
    let private = write(dir.path(), "private", "s3cr3t-pw\n", 0o600);
    let node = build(&tables(&private)).await.unwrap();
    assert_eq!(node.devices[0].hosts.as_ref().unwrap().len(), 2);
    assert!(node.fencer.device(&"pdu1".parse().unwrap()).is_some());
    let shown = format!("{node:?}");
    assert!(!shown.contains("s3cr3t-pw"), "{shown}");

    let exposed = write(dir.path(), "exposed", "s3cr3t-pw\n", 0o644);
    let e = build(&tables(&exposed)).await.unwrap_err();
    assert!(
        matches!(
            &e,
            NodeDevicesError::SecretFile {
                source: PrivateReadError::Exposed { mode: 0o644, .. },
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(named(&e), "pdu1/secret_files.password");
    assert!(e.to_string().contains("chmod 600"), "{e}");
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("s3cr3t-pw"), "{shown}");

    let e = build(&tables(&dir.path().join("absent").display().to_string()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            NodeDevicesError::SecretFile {
                source: PrivateReadError::Read(_),
                ..
            }
        ),
        "{e}"
    );
    let two_lines = write(dir.path(), "two", "a\nb\n", 0o600);
    let e = build(&tables(&two_lines)).await.unwrap_err();
    assert!(matches!(&e, NodeDevicesError::SecretValue { .. }), "{e}");
    assert_eq!(named(&e), "pdu1/secret_files.password");
    let empty = write(dir.path(), "empty", "\n", 0o400);
    let e = build(&tables(&empty)).await.unwrap_err();
    assert!(matches!(&e, NodeDevicesError::SecretValue { .. }), "{e}");
}

#[tokio::test]
async fn an_inline_secret_is_refused() {
    let tables = r#"
[[devices]]
id = "pdu1"
agent = "fence_apc"
hosts = ["n1"]
params = { ip = "192.0.2.5", username = "fence", password = "hunter2" }
"#;
    let e = parse(tables).unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(shown.contains("device pdu1: `params.password`"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    // A config changed after loading is checked again when built.
    let mut config = parse(&tables.replace(", password = \"hunter2\"", "")).unwrap();
    config.devices[0].params.insert("password", "hunter2");
    let e = build_fencer(&config, FencerConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(&e, NodeDevicesError::InlineSecret { .. }), "{e}");
    assert_eq!(named(&e), "pdu1/params.password");
}

/// A fence agent whose meta-data marks `pin` secret through its getopt placeholder only.
const PINPAD: &str = r#"#!/bin/sh
while read -r line; do case "$line" in action=metadata) meta=1;; esac; done
if [ "$meta" = 1 ]; then echo x >> "$(dirname "$0")/metadata.log"; cat <<'XML'
<?xml version="1.0" ?>
<resource-agent name="fence_pinpad" shortdesc="test agent">
<parameters>
<parameter name="action" required="1"><getopt mixed="-o, --action=[action]"/><content type="string" default="reboot"/></parameter>
<parameter name="pin" required="1"><getopt mixed="--pin=[password]"/><content type="string"/></parameter>
<parameter name="plug" required="1"><getopt mixed="-n, --plug=[id]"/><content type="string"/></parameter>
</parameters>
<actions><action name="on"/><action name="off"/><action name="reboot"/><action name="status"/><action name="list"/><action name="monitor"/><action name="metadata"/></actions>
</resource-agent>
XML
fi
exit 0
"#;

#[tokio::test]
async fn a_parameter_the_meta_data_calls_secret_may_not_be_inline() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "fence_pinpad", PINPAD, 0o755);
    let agents = dir.path().display();
    let e = build(&format!(
        "[fencing]\nagents_dir = \"{agents}\"\n[[devices]]\nid = \"pad\"\nagent = \"fence_pinpad\"\nhosts = [\"n1\"]\nparams = {{ pin = \"4711\" }}\n"
    ))
    .await
    .unwrap_err();
    assert!(matches!(&e, NodeDevicesError::InlineSecret { .. }), "{e}");
    assert_eq!(named(&e), "pad/params.pin");
    assert!(!format!("{e} {e:?}").contains("4711"));
    let pin = write(dir.path(), "pin", "4711", 0o600);
    let node = build(&format!(
        "[fencing]\nagents_dir = \"{agents}\"\n[[devices]]\nid = \"pad\"\nagent = \"fence_pinpad\"\nhosts = [\"n1\"]\nsecret_files = {{ pin = \"{pin}\" }}\n"
    ))
    .await
    .unwrap();
    assert_eq!(node.devices.len(), 1);
}

#[tokio::test]
async fn each_agent_is_asked_for_its_meta_data_once() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "fence_pinpad", PINPAD, 0o755);
    let pin = write(dir.path(), "pin", "4711\n", 0o600);
    let device = |id: &str, host: &str| {
        format!(
            "[[devices]]\nid = \"{id}\"\nagent = \"fence_pinpad\"\nhost_map = {{ {host} = \"7\" }}\nsecret_files = {{ pin = \"{pin}\" }}\n"
        )
    };
    let node = build(&format!(
        "[fencing]\nagents_dir = \"{}\"\n{}{}",
        dir.path().display(),
        device("pad1", "n1"),
        device("pad2", "n2")
    ))
    .await
    .unwrap();
    let log = dir.path().join("metadata.log");
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 1);
    // Fencing through both devices asks the agent again for nothing but the action.
    for target in ["n1", "n2"] {
        let record = node.fencer.fence(reboot(target)).await.unwrap();
        assert!(record.succeeded(), "{record:?}");
    }
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 1);
}

/// Whether an error is of the expected kind.
type Kind = fn(&NodeDevicesError) -> bool;

#[tokio::test]
async fn agents_and_parameters_are_checked_against_the_real_agents() {
    let dir = tempfile::tempdir().unwrap();
    let status = dir.path().join("state").display().to_string();
    let cases: Vec<(String, &str, Kind)> = vec![
        (
            "agent = \"fence_nosuch\"\nhosts = [\"n1\"]".into(),
            "d/agent",
            |e| matches!(e, NodeDevicesError::UnknownAgent { .. }),
        ),
        (
            "agent = \"stonith:nosuch\"\nhosts = [\"n1\"]".into(),
            "d/agent",
            |e| matches!(e, NodeDevicesError::UnknownAgent { .. }),
        ),
        (
            "agent = \"fence_apc\"\nhosts = [\"n1\"]\nparams = { ip = \"192.0.2.5\" }".into(),
            "d/params.username",
            |e| {
                matches!(
                    e,
                    NodeDevicesError::Parameter {
                        problem: ParamProblem::Missing { .. },
                        ..
                    }
                )
            },
        ),
        (
            format!(
                "agent = \"fence_dummy\"\nhosts = [\"n1\"]\nparams = {{ status_file = \"{status}\", bogus = \"1\" }}"
            ),
            "d/params.bogus",
            |e| {
                matches!(
                    e,
                    NodeDevicesError::Parameter {
                        problem: ParamProblem::Unknown { .. },
                        ..
                    }
                )
            },
        ),
        (
            "agent = \"fence_dummy\"\nhosts = [\"n1\"]\nparams = { verbose_level = \"loud\" }"
                .into(),
            "d/params.verbose_level",
            |e| {
                matches!(
                    e,
                    NodeDevicesError::Parameter {
                        problem: ParamProblem::WrongType { .. },
                        ..
                    }
                )
            },
        ),
        (
            "agent = \"stonith:null\"\nhosts = [\"n1\"]".into(),
            "d/params.hostlist",
            |e| {
                matches!(
                    e,
                    NodeDevicesError::Parameter {
                        problem: ParamProblem::Missing { .. },
                        ..
                    }
                )
            },
        ),
        (
            // fence_dummy has no `list` action: it cannot be asked for its targets.
            format!("agent = \"fence_dummy\"\nparams = {{ status_file = \"{status}\" }}"),
            "d/hosts",
            |e| matches!(e, NodeDevicesError::Targets { .. }),
        ),
    ];
    for (device, field, kind) in cases {
        let e = build(&format!("[[devices]]\nid = \"d\"\n{device}\n"))
            .await
            .unwrap_err();
        assert_eq!(named(&e), field, "{device}: {e}");
        assert!(kind(&e), "{device}: {e:?}");
        assert!(e.to_string().contains("device d: `"), "{e}");
    }
    // An agents_dir without the agent.
    let e = build(&format!(
        "[fencing]\nagents_dir = \"{}\"\n[[devices]]\nid = \"d\"\nagent = \"fence_dummy\"\nhosts = [\"n1\"]\n",
        dir.path().display()
    ))
    .await
    .unwrap_err();
    assert!(matches!(&e, NodeDevicesError::UnknownAgent { .. }), "{e}");
}

#[test]
fn structural_mistakes_are_refused_when_node_toml_is_loaded() {
    let null = |id: &str| {
        format!("[[devices]]\nid = \"{id}\"\nagent = \"native:null\"\nhosts = [\"n1\"]\n")
    };
    let level = |l: u32, devices: &str| {
        format!("[[levels]]\ntarget = \"n1\"\nlevel = {l}\ndevices = {devices}\n")
    };
    let cases = [
        (format!("{}{}", null("a"), null("a")), "a: `id`"),
        (
            "[[devices]]\nid = \"d\"\nagent = \"../../bin/fence_x\"\n".to_owned(),
            "device d: `agent`",
        ),
        (
            "[[devices]]\nid = \"d\"\nagent = \"/usr/sbin/fence_apc\"\n".to_owned(),
            "device d: `agent`",
        ),
        (
            "[[devices]]\nid = \"d\"\nagent = \"stonith:external/../../x\"\n".to_owned(),
            "device d: `agent`",
        ),
        (
            format!("{}{}", null("a"), level(1, "[\"b\"]")),
            "`levels[0].devices`",
        ),
        (
            format!("{}{}", null("a"), level(0, "[\"a\"]")),
            "`levels[0].level`",
        ),
        (
            format!(
                "{}{}{}",
                null("a"),
                level(1, "[\"a\"]"),
                level(1, "[\"a\"]")
            ),
            "`levels[1].level`",
        ),
        (
            format!("{}timeout_s = 0\n", null("a")),
            "device a: `timeout_s`",
        ),
        (
            "[[devices]]\nid = \"d\"\nagent = \"fence_apc\"\nhosts = [\"n1\"]\nfoo = 1\n"
                .to_owned(),
            "foo",
        ),
        (
            "[[levels]]\ntarget = \"n1\"\nlevel = 1\ndevices = [\"a\"]\nkind = \"x\"\n".to_owned(),
            "kind",
        ),
    ];
    for (tables, named) in cases {
        let e = parse(&tables).unwrap_err();
        assert!(e.to_string().contains(named), "{tables}: {e}");
    }
}

#[tokio::test]
async fn device_timeouts_reach_the_fencer() {
    let dir = tempfile::tempdir().unwrap();
    let status = dir.path().join("state").display().to_string();
    // fence_dummy sleeps exactly 1 s before it acts (random_sleep_range = 1): past a 1 s
    // limit whatever the machine's speed, well within the default 60 s.
    let tables = |fencing: &str, device: &str| {
        format!(
            "[fencing]\n{fencing}\n[[devices]]\nid = \"slow\"\nagent = \"fence_dummy\"\nhosts = [\"n1\"]\nparams = {{ status_file = \"{status}\", random_sleep_range = \"1\" }}\n{device}\n"
        )
    };
    let node = build(&tables("", "")).await.unwrap();
    let record = node.fencer.fence(reboot("n1")).await.unwrap();
    assert!(record.succeeded(), "{record:?}");
    for (fencing, device) in [("", "timeout_s = 1"), ("device_timeout_s = 1", "")] {
        let node = build(&tables(fencing, device)).await.unwrap();
        let outcome = node.fencer.fence(reboot("n1")).await;
        let shown = format!("{outcome:?}");
        assert!(
            outcome.is_err_and(|e| e.to_string().contains("timed out")),
            "{fencing} {device}: {shown}"
        );
    }
}
