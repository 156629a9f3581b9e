//! `ocf power` as Slurm's SuspendProgram and ResumeProgram, against a real Slurm and real
//! `ocf node` processes with a spy fence agent: Slurm powering n3 down while an HA manager
//! fences n3 off is one device action and both succeed; a resume whose device fails is
//! reported to Slurm (the node stays out), in the exit code and in the JSON.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod nodes_support;
mod slurm_support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nodes_support::{Layout, Nodes, OCF};
use ocf_fencing::{FenceAction, FenceRequest, Fencer};
use slurm_support::Slurm;

const WAIT: Duration = Duration::from_secs(60);

/// A hook script as Slurm runs it (no PATH, one hostlist argument): `ocf power VERB` with a
/// fixed config; its stdout, stderr, exit code and environment are kept in `dir`.
fn hook(dir: &Path, verb: &str, config: &Path) -> PathBuf {
    let path = dir.join(format!("{verb}.sh"));
    let out = dir.join(verb);
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nenv > {out}.env\n{OCF} power {verb} --json --config {} --timeout 30 \"$1\" >> {out}.out 2>> {out}.err\necho $? >> {out}.rc\n",
            config.display(),
            out = out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn power_conf(dir: &Path, config: &Path) -> String {
    format!(
        "SuspendProgram={}\nResumeProgram={}\nSuspendTime=3600\nSuspendTimeout=30\nResumeTimeout=60\nSlurmctldParameters=power_save_interval=1\n",
        hook(dir, "off", config).display(),
        hook(dir, "on", config).display()
    )
}

fn wait_file(path: &Path, what: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().any(|l| !l.trim().is_empty()) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: nothing in {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slurm_power_down_and_an_ha_fence_at_once_are_one_device_action() {
    let nodes = Nodes::start(
        3,
        &Layout {
            with_device: vec![1, 2, 3],
            delay_s: 3,
            ..Layout::default()
        },
    );
    nodes.wait_for_view(&[0, 1, 2]).await;
    let hooks = nodes.dir.path().join("hooks");
    std::fs::create_dir(&hooks).unwrap();
    let slurm = Slurm::start(
        &["n1", "n2", "n3"],
        &power_conf(&hooks, &nodes.nodes[0].config),
    );

    // The HA manager on n2 fences n3 off; at the same moment Slurm powers n3 down.
    let ha = nodes.nodes[1].fencer();
    let ha_request = tokio::spawn(async move {
        ha.fence(
            FenceRequest::new(
                "n3".parse().unwrap(),
                FenceAction::Off,
                "ha@n2".parse().unwrap(),
            )
            .with_timeout(Duration::from_secs(50)),
        )
        .await
    });
    let (code, _, err) = slurm.scontrol(&["update", "NodeName=n3", "State=POWER_DOWN_FORCE"]);
    assert_eq!(code, 0, "{err}");

    let ha_record = ha_request.await.unwrap().expect("the HA fence succeeded");
    assert!(ha_record.succeeded());
    let out = wait_file(&hooks.join("off.out"), "SuspendProgram");
    let results: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), 1, "{out}");
    assert_eq!(results[0]["node"], "n3");
    assert_eq!(results[0]["ok"], true, "{out}");
    assert_eq!(results[0]["record"], ha_record.id, "{out}");
    assert_eq!(
        wait_file(&hooks.join("off.rc"), "SuspendProgram's exit").trim(),
        "0"
    );
    assert_eq!(
        nodes.calls(),
        vec![("off".to_owned(), "n3".to_owned())],
        "{}",
        nodes.logs()
    );
    eprintln!("device calls: {:?}", nodes.calls());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_power_on_keeps_the_node_out_and_names_it() {
    let nodes = Nodes::start(
        3,
        &Layout {
            with_device: vec![1, 2, 3],
            delay_s: 0,
            ..Layout::default()
        },
    );
    nodes.wait_for_view(&[0, 1, 2]).await;
    let hooks = nodes.dir.path().join("hooks");
    std::fs::create_dir(&hooks).unwrap();
    let slurm = Slurm::start(
        &["n1", "n2", "n3"],
        &power_conf(&hooks, &nodes.nodes[0].config),
    );

    let (code, _, err) = slurm.scontrol(&["update", "NodeName=n3", "State=POWER_DOWN_FORCE"]);
    assert_eq!(code, 0, "{err}");
    wait_file(&hooks.join("off.rc"), "SuspendProgram's exit");
    slurm.wait_node("n3", "powered down", WAIT, |s, _| {
        s.contains("POWERED_DOWN")
    });

    // The device now refuses to power on.
    std::fs::write(nodes.dir.path().join("agents/fail_on"), "").unwrap();
    let (code, _, err) = slurm.scontrol(&["update", "NodeName=n3", "State=POWER_UP"]);
    assert_eq!(code, 0, "{err}");
    let rc = wait_file(&hooks.join("on.rc"), "ResumeProgram's exit");
    assert_eq!(rc.trim(), "70");
    let stderr = std::fs::read_to_string(hooks.join("on.err")).unwrap();
    assert!(stderr.contains("power on failed on n3"), "{stderr}");
    let out = std::fs::read_to_string(hooks.join("on.out")).unwrap();
    let result: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(result["node"], "n3");
    assert_eq!(result["ok"], false);
    let env = std::fs::read_to_string(hooks.join("on.env")).unwrap();
    assert!(env.contains("SLURM_CONF="), "{env}");
    // Slurm knows at once, and the node stays out.
    let (state, reason) = slurm.wait_node("n3", "DOWN by ocf", WAIT, |s, r| {
        s.contains("DOWN") && r.is_some_and(|r| r.starts_with("ocf: power on failed"))
    });
    eprintln!(
        "after the failed resume: {state} {reason:?}; env had SLURM_RESUME_FILE: {}",
        env.contains("SLURM_RESUME_FILE")
    );
    assert!(nodes.calls().iter().any(|(a, p)| a == "on" && p == "n3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_powered_off_by_slurm_is_not_fenced_again_when_it_leaves_the_view() {
    let mut nodes = Nodes::start(
        3,
        &Layout {
            with_device: vec![1, 2, 3],
            delay_s: 0,
            ..Layout::default()
        },
    );
    nodes.wait_for_view(&[0, 1, 2]).await;
    let hooks = nodes.dir.path().join("hooks");
    std::fs::create_dir(&hooks).unwrap();
    let slurm = Slurm::start(
        &["n1", "n2", "n3"],
        &power_conf(&hooks, &nodes.nodes[0].config),
    );
    let (code, _, err) = slurm.scontrol(&["update", "NodeName=n3", "State=POWER_DOWN_FORCE"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        wait_file(&hooks.join("off.rc"), "SuspendProgram's exit").trim(),
        "0"
    );

    // The power is cut: n3's ocf node is gone, the others see it leave.
    nodes.nodes[2].kill9();
    nodes.wait_for_view(&[0, 1]).await;
    // Whatever the cluster fencer decides about the lost n3 is in its history once the
    // next incident (a fence request about n1's neighbour n2, asked now) has been decided
    // after it: the authority handles the view change before any later request.
    let record = nodes.nodes[0]
        .fencer()
        .fence(
            FenceRequest::new(
                "n2".parse().unwrap(),
                FenceAction::Off,
                "probe@n1".parse().unwrap(),
            )
            .with_timeout(Duration::from_secs(50)),
        )
        .await
        .unwrap();
    assert!(record.succeeded());
    let history = nodes.nodes[0]
        .fencer()
        .history(&ocf_fencing::HistoryFilter::all().target("n3".parse().unwrap()))
        .await
        .unwrap();
    assert_eq!(
        history.len(),
        1,
        "n3 was fenced again after its power-off: {history:#?}"
    );
    assert_eq!(
        nodes.calls(),
        vec![
            ("off".to_owned(), "n3".to_owned()),
            ("off".to_owned(), "n2".to_owned())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scontrol_reboot_runs_ocf_power_reboot_from_the_controller() {
    let nodes = Nodes::start(
        3,
        &Layout {
            with_device: vec![1, 2, 3],
            delay_s: 0,
            ..Layout::default()
        },
    );
    nodes.wait_for_view(&[0, 1, 2]).await;
    let hooks = nodes.dir.path().join("hooks");
    std::fs::create_dir(&hooks).unwrap();
    let conf = format!(
        "RebootProgram={}\nSlurmctldParameters=reboot_from_controller\nResumeTimeout=60\n",
        hook(&hooks, "reboot", &nodes.nodes[0].config).display()
    );
    let mut slurm = Slurm::start(&["n1", "n2", "n3"], &conf);
    let (code, _, err) = slurm.scontrol(&["reboot", "n2,n3"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        wait_file(&hooks.join("reboot.rc"), "RebootProgram's exit").trim(),
        "0"
    );
    let out = std::fs::read_to_string(hooks.join("reboot.out")).unwrap();
    let mut done: Vec<(String, bool)> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| {
            (
                v["node"].as_str().unwrap().to_owned(),
                v["ok"].as_bool().unwrap(),
            )
        })
        .collect();
    done.sort();
    assert_eq!(
        done,
        vec![("n2".to_owned(), true), ("n3".to_owned(), true)],
        "{out}"
    );
    let mut calls = nodes.calls();
    calls.sort();
    assert_eq!(
        calls,
        vec![
            ("reboot".to_owned(), "n2".to_owned()),
            ("reboot".to_owned(), "n3".to_owned())
        ]
    );
    // The "rebooted" slurmds come back with a new boot time: Slurm completes the reboot.
    for n in ["n2", "n3"] {
        slurm.kill9_slurmd(n);
        slurm.start_slurmd(n, true);
    }
    for n in ["n2", "n3"] {
        slurm.wait_node(n, "back from its reboot", WAIT, |s, _| {
            s == "IDLE" || (s.starts_with("IDLE") && !s.contains("REBOOT"))
        });
    }
}
