//! The devices against the real peers: fence-agents' `fence_dummy`, cluster-glue's
//! `stonith -t null`, and the native devices.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use ocf_core::NodeName;
use ocf_fencing::{
    DeviceAction, DeviceParams, FenceAction, FenceDevice, FenceError, FenceErrorKind, PowerState,
    Targets,
};
use ocf_ref::fencing::devices::agent::{self, AgentDevice};
use ocf_ref::fencing::devices::native::{ManualDevice, NullDevice};
use ocf_ref::fencing::devices::stonith::{self, StonithDevice};

const T: Duration = Duration::from_secs(30);

fn n(s: &str) -> NodeName {
    s.parse().unwrap()
}

fn fence_dummy() -> PathBuf {
    agent::resolve_agent("fence_dummy", &agent::agents_dir()).expect("fence-agents installed")
}

/// A fence_dummy device for node `n1` whose power state lives in a temp dir.
fn dummy(dir: &tempfile::TempDir, extra: &[(&str, &str)]) -> AgentDevice {
    let mut params = DeviceParams::new();
    params.insert(
        "status_file",
        dir.path().join("state").display().to_string(),
    );
    for (k, v) in extra {
        params.insert(*k, *v);
    }
    AgentDevice::new(
        "dummy".parse().unwrap(),
        fence_dummy(),
        params,
        Targets::hosts([n("n1")]),
    )
}

#[tokio::test]
async fn fence_dummy_powers_off_and_on_through_its_status_file() {
    let dir = tempfile::tempdir().unwrap();
    let dev = dummy(&dir, &[]);
    // No status file yet: fence_dummy reports off.
    assert_eq!(dev.status(&n("n1"), T).await.unwrap(), PowerState::Off);
    dev.fence(&n("n1"), FenceAction::On, T).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("state")).unwrap(),
        "on"
    );
    assert_eq!(dev.status(&n("n1"), T).await.unwrap(), PowerState::On);
    dev.fence(&n("n1"), FenceAction::Off, T).await.unwrap();
    assert_eq!(dev.status(&n("n1"), T).await.unwrap(), PowerState::Off);
    dev.fence(&n("n1"), FenceAction::Reboot, T).await.unwrap();
    assert_eq!(dev.status(&n("n1"), T).await.unwrap(), PowerState::On);
    dev.monitor(T).await.unwrap();
    dev.validate(T).await.unwrap();
}

#[tokio::test]
async fn fence_dummy_meta_data_parses() {
    let dir = tempfile::tempdir().unwrap();
    let md = dummy(&dir, &[])
        .metadata(Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(md.name, "fence_dummy");
    assert!(md.parameter("status_file").is_some());
    assert!(md.parameter("action").unwrap().required);
    assert!(md.supports(DeviceAction::Reboot));
    assert!(md.supports(DeviceAction::ValidateAll));
    assert!(!md.supports(DeviceAction::List));
    // A single-host agent: no plug is sent.
    assert_eq!(md.plug_parameter(), None);
}

#[tokio::test]
async fn fence_dummy_type_fail_fails_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let dev = dummy(&dir, &[("type", "fail"), ("power_timeout", "1")]);
    let e = dev.fence(&n("n1"), FenceAction::Off, T).await.unwrap_err();
    assert_eq!(e.kind(), FenceErrorKind::Failed, "{e}");
    assert!(e.to_string().contains("dummy"), "{e}");
}

#[tokio::test]
async fn nodes_outside_the_host_list_are_refused_without_running_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let dev = dummy(&dir, &[]);
    let e = dev.fence(&n("n9"), FenceAction::Off, T).await.unwrap_err();
    assert!(matches!(e, FenceError::NotATarget { .. }), "{e}");
    assert!(!dir.path().join("state").exists());
    assert!(!dev.can_fence(&n("n9"), T).await.unwrap());
    assert!(dev.can_fence(&n("n1"), T).await.unwrap());
}

#[tokio::test]
async fn an_agent_past_its_timeout_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    // fence_dummy's own wait for a failing power change is 20 s; ours is 1 s.
    let dev = dummy(&dir, &[("type", "fail")]);
    let e = dev
        .fence(&n("n1"), FenceAction::Off, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(e, FenceError::DeviceTimedOut { .. }), "{e}");
}

#[tokio::test]
async fn a_missing_agent_is_a_config_error() {
    let e = agent::resolve_agent("fence_nonexistent_xyz", &agent::agents_dir()).unwrap_err();
    assert!(e.to_string().contains("ocf fence agents"), "{e}");
    assert!(agent::resolve_agent("ls", &agent::agents_dir()).is_err());
}

#[tokio::test]
async fn installed_agents_are_listed() {
    let agents = agent::list_agents(&agent::agents_dir()).unwrap();
    assert!(agents.iter().any(|a| a.name == "fence_dummy"), "{agents:?}");
    assert!(agents.iter().all(|a| a.name.starts_with("fence_")));
}

fn null_device(targets: Targets) -> StonithDevice {
    let params: DeviceParams = [("hostlist", "a b")].into_iter().collect();
    StonithDevice::new("null".parse().unwrap(), "null", params, targets)
}

#[tokio::test]
async fn stonith_null_lists_and_resets_its_hosts() {
    let dev = null_device(Targets::Dynamic);
    assert_eq!(dev.list_targets(T).await.unwrap(), vec![n("a"), n("b")]);
    assert!(dev.can_fence(&n("a"), T).await.unwrap());
    dev.fence(&n("a"), FenceAction::Reboot, T).await.unwrap();
    dev.fence(&n("b"), FenceAction::Off, T).await.unwrap();
    dev.fence(&n("b"), FenceAction::On, T).await.unwrap();
    dev.monitor(T).await.unwrap();
    // The null plugin would say yes to any name; the device refuses unlisted ones.
    let e = dev
        .fence(&n("c"), FenceAction::Reboot, T)
        .await
        .unwrap_err();
    assert!(matches!(e, FenceError::NotATarget { .. }), "{e}");
    let e = dev.status(&n("a"), T).await.unwrap_err();
    assert_eq!(e.kind(), FenceErrorKind::Unsupported);
}

#[tokio::test]
async fn stonith_null_meta_data_and_plugins() {
    let md = null_device(Targets::Dynamic)
        .metadata(Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(md.name, "null");
    assert!(md.parameter("hostlist").unwrap().required);
    let plugins = stonith::list_plugins(&stonith::stonith_program(), T)
        .await
        .unwrap();
    assert!(plugins.iter().any(|p| p == "null"), "{plugins:?}");
    assert!(plugins.iter().any(|p| p == "meatware"), "{plugins:?}");
}

#[tokio::test]
async fn stonith_with_a_host_map_uses_the_plug() {
    let dev = null_device(Targets::host_map([(n("node-a"), "a".to_owned())]));
    dev.fence(&n("node-a"), FenceAction::Reboot, T)
        .await
        .unwrap();
    assert!(dev.fence(&n("a"), FenceAction::Reboot, T).await.is_err());
}

#[tokio::test]
async fn stonith_with_a_bad_config_fails_with_the_plugin_code() {
    let dev = StonithDevice::new(
        "null".parse().unwrap(),
        "null",
        DeviceParams::new(),
        Targets::Dynamic,
    );
    let e = dev.list_targets(T).await.unwrap_err();
    assert_eq!(e.kind(), FenceErrorKind::Failed, "{e}");
}

#[tokio::test]
async fn null_device_remembers_power() {
    let dev = NullDevice::new("null".parse().unwrap(), [n("a")]);
    assert_eq!(dev.status(&n("a"), T).await.unwrap(), PowerState::On);
    dev.fence(&n("a"), FenceAction::Off, T).await.unwrap();
    assert_eq!(dev.status(&n("a"), T).await.unwrap(), PowerState::Off);
    assert_eq!(dev.fence_calls(), 1);
    assert!(dev.fence(&n("b"), FenceAction::Off, T).await.is_err());
}

#[tokio::test]
async fn manual_device_waits_for_the_operator_and_times_out_without_one() {
    let dev = ManualDevice::new("meat".parse().unwrap(), [n("a")]);
    let e = dev
        .fence(&n("a"), FenceAction::Reboot, Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(matches!(e, FenceError::DeviceTimedOut { .. }), "{e}");
    assert!(dev.pending().is_empty());
    assert!(!dev.acknowledge(&n("a")));

    let op = dev.clone();
    let task = tokio::spawn(async move { dev.fence(&n("a"), FenceAction::Off, T).await });
    op.wait_pending().await;
    assert_eq!(op.pending(), vec![n("a")]);
    assert!(op.acknowledge(&n("a")));
    task.await.unwrap().unwrap();
    assert!(op.pending().is_empty());
}

#[tokio::test]
async fn a_dynamic_list_on_an_agent_without_list_is_a_config_error() {
    let path = fence_dummy();
    let dev = AgentDevice::new(
        "dummy".parse().unwrap(),
        path,
        DeviceParams::new(),
        Targets::Dynamic,
    );
    let e = dev.list_targets(T).await.unwrap_err();
    assert_eq!(e.kind(), FenceErrorKind::Config, "{e}");
    assert!(e.to_string().contains("host list"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_installed_agent_meta_data_parses() {
    let agents = agent::list_agents(&agent::agents_dir()).unwrap();
    assert!(
        !agents.iter().any(|a| a.name == "fence_ack_manual"),
        "not an agent"
    );
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(4));
    let mut set = tokio::task::JoinSet::new();
    for a in agents.clone() {
        let limit = limit.clone();
        set.spawn(async move {
            let _permit = limit.acquire_owned().await.unwrap();
            let md = agent::fetch_metadata(&a.path, Duration::from_secs(60)).await;
            (a.name, md)
        });
    }
    let mut failures = Vec::new();
    let mut parsed = 0;
    while let Some(joined) = set.join_next().await {
        let (name, md) = joined.unwrap();
        match md {
            Ok(md) => {
                parsed += 1;
                assert!(!md.name.is_empty(), "{name}");
                assert!(
                    md.supports(DeviceAction::Off)
                        || md.supports(DeviceAction::Reboot)
                        || md.actions.iter().any(|a| a == "on"),
                    "{name}: {:?}",
                    md.actions
                );
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    eprintln!(
        "meta-data of {parsed} of {} installed fence agents parsed",
        agents.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(parsed >= 1);
}

/// An agent whose `metadata` hangs (a wedged BMC library, say) but whose `off` works.
fn slow_metadata_agent(dir: &tempfile::TempDir) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.path().join("fence_slowmeta");
    std::fs::write(
        &path,
        "#!/bin/sh\n\
         action=$(sed -n 's/^action=//p' | head -n 1)\n\
         case \"$action\" in\n\
           metadata) exec sleep 60 ;;\n\
           *) exit 0 ;;\n\
         esac\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test]
async fn a_fence_never_spends_more_than_its_own_time_on_meta_data() {
    let dir = tempfile::tempdir().unwrap();
    let dev = AgentDevice::new(
        "slowmeta".parse().unwrap(),
        slow_metadata_agent(&dir),
        DeviceParams::new(),
        Targets::hosts([n("n1")]),
    );
    // Meta-data gets a share of the 4 s, not its own 20 s; the agent runs in what is left.
    let budget = Duration::from_secs(4);
    let answer = tokio::time::timeout(
        budget + Duration::from_secs(3),
        dev.fence(&n("n1"), FenceAction::Off, budget),
    )
    .await
    .expect("the fence kept to its caller's time");
    answer.unwrap();
    // Asked directly with a short time, meta-data answers that it ran out of it.
    let e = dev.metadata(Duration::from_millis(300)).await.unwrap_err();
    assert_eq!(e.kind(), FenceErrorKind::TimedOut, "{e}");
}

#[tokio::test]
async fn an_agent_that_cannot_start_keeps_the_os_error_as_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fence_missing");
    let dev = AgentDevice::new(
        "missing".parse().unwrap(),
        &path,
        DeviceParams::new(),
        Targets::hosts([n("n1")]),
    );
    let e = dev.monitor(T).await.unwrap_err();
    assert_eq!(e.kind(), FenceErrorKind::Failed, "{e}");
    let cause = e.cause().expect("the spawn error is kept");
    assert!(
        cause
            .downcast_ref::<ocf_ref::process::SpawnError>()
            .is_some(),
        "{cause:?}"
    );
    // A clone (what every merged requester receives) keeps it too.
    assert!(std::error::Error::source(&e.clone()).is_some());
}
