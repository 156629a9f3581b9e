//! `ocf fence ...` end to end, against the real `fence_dummy`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

fn ocf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ocf"))
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn agents_lists_fence_dummy_as_text_and_json() {
    let out = ocf(&["fence", "agents"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).lines().any(|l| l == "fence_dummy"));
    let out = ocf(&["fence", "agents", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "fence_dummy")
    );
}

#[test]
fn the_agents_directory_can_be_overridden() {
    let dir = tempfile::tempdir().unwrap();
    let spy = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fence_spy");
    std::fs::copy(spy, dir.path().join("fence_spy")).unwrap();
    std::fs::write(dir.path().join("fence_not_executable"), "").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ocf"))
        .args(["fence", "agents"])
        .env("OCF_FENCE_AGENTS_DIR", dir.path())
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), "fence_spy\n");
    let out = Command::new(env!("CARGO_BIN_EXE_ocf"))
        .args(["fence", "meta", "fence_spy", "--json"])
        .env("OCF_FENCE_AGENTS_DIR", dir.path())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["name"], "fence_spy");
}

#[test]
fn meta_prints_parameters_and_actions() {
    let out = ocf(&["fence", "meta", "fence_dummy"]);
    assert!(out.status.success());
    let s = text(&out.stdout);
    assert!(s.starts_with("fence_dummy - Dummy fence agent"), "{s}");
    assert!(s.contains("status_file"), "{s}");
    assert!(s.contains("Actions: "), "{s}");
    let out = ocf(&["fence", "meta", "fence_dummy", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["name"], "fence_dummy");
    assert!(
        v["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "reboot")
    );
}

#[test]
fn run_drives_fence_dummy_and_mirrors_its_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let sf = format!("status_file={}", dir.path().join("state").display());
    let out = ocf(&[
        "fence",
        "run",
        "fence_dummy",
        "--action",
        "status",
        "-p",
        &sf,
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "off is exit 2: {}",
        text(&out.stderr)
    );
    let out = ocf(&[
        "fence",
        "run",
        "fence_dummy",
        "--action",
        "on",
        "-p",
        &sf,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["action"], "on");
    let out = ocf(&[
        "fence",
        "run",
        "fence_dummy",
        "--action",
        "status",
        "-p",
        &sf,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["power"], "on");
    let out = ocf(&[
        "fence",
        "run",
        "fence_dummy",
        "--action",
        "reboot",
        "-p",
        &sf,
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("state")).unwrap(),
        "on"
    );
}

#[test]
fn run_warns_about_parameters_but_the_agent_answers() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let sf = format!("status_file={}", state.display());
    let run = |extra: &[&str]| {
        let mut args = vec!["fence", "run", "fence_dummy", "-p", &sf, "-p", "colour=red"];
        args.extend_from_slice(extra);
        ocf(&args)
    };
    // Strict mode refuses a power action whose parameters fail the check, before the agent.
    let out = run(&["--action", "on", "--strict"]);
    assert_eq!(out.status.code(), Some(65), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("colour"));
    assert!(!state.exists(), "the agent must not have run");
    // Without it, ocf warns and the agent's own answer is the result.
    let out = run(&["--action", "on"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("warning") && err.contains("colour"), "{err}");
    assert!(state.exists(), "the agent ran");
    // Strict mode never refuses a status: a refused status would read as a failed device.
    let out = run(&["--action", "status", "--strict"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = run(&["--action", "on", "--no-validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("warning"));
}

#[test]
fn params_on_stdin_are_bounded_and_bad_lines_are_usage_errors() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let feed = |input: Vec<u8>| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ocf"))
            .args([
                "fence",
                "run",
                "fence_dummy",
                "-a",
                "status",
                "--params-stdin",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // The reader may stop early (past its bound): a broken pipe is expected then.
        let _ = stdin.write_all(&input);
        drop(stdin);
        child.wait_with_output().unwrap()
    };
    let out = feed(b"not-a-pair\n".to_vec());
    assert_eq!(out.status.code(), Some(64), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("not-a-pair"),
        "a bare line may be a password"
    );
    let out = feed(vec![b'a'; 3 * 1024 * 1024]);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("more than"));
}

#[test]
fn run_of_a_failing_agent_exits_1_and_a_missing_one_70() {
    let out = ocf(&[
        "fence",
        "run",
        "fence_dummy",
        "--action",
        "off",
        "-p",
        "type=fail",
        "-p",
        "power_timeout=1",
        "--target",
        "n1",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let out = ocf(&["fence", "run", "fence_nope", "--action", "off"]);
    assert_eq!(out.status.code(), Some(70));
    assert!(text(&out.stderr).contains("ocf fence agents"));
    let out = ocf(&["fence", "run", "fence_dummy", "--action", "explode"]);
    assert_eq!(
        out.status.code(),
        Some(64),
        "clap usage error (EX_USAGE, not 2)"
    );
}

#[test]
fn test_passes_fence_dummy_with_its_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let sf = format!("status_file={}", dir.path().join("state").display());
    let out = ocf(&["fence", "test", "fence_dummy", "-p", &sf, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema"], 1);
    assert_eq!(v["suite"], "fence_device");
    assert_eq!(v["implementation"], "fence_dummy");
    assert_eq!(v["passed"], true);
    let checks = v["checks"].as_array().unwrap();
    for name in [
        "fence_device.metadata",
        "fence_device.monitor",
        "fence_device.status",
        "fence_device.refuses_non_target",
        "fence_device.off",
        "fence_device.on",
        "fence_device.reboot",
        "fence_device.restored",
        "agent.unknown_action",
    ] {
        let c = checks.iter().find(|c| c["name"] == name).unwrap();
        assert_eq!(c["outcome"], "pass", "{c}");
    }
    let out = ocf(&["fence", "test", "fence_dummy", "-p", &sf]);
    assert!(text(&out.stdout).contains("fence_dummy: conformant"));
}

#[test]
fn test_fails_an_agent_that_accepts_unknown_actions_and_skips_power_on_real_ones() {
    let dir = tempfile::tempdir().unwrap();
    let spy = dir.path().join("fence_spy");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fence_spy"),
        &spy,
    )
    .unwrap();
    let out = ocf(&[
        "fence",
        "test",
        spy.to_str().unwrap(),
        "--target",
        "alpha",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = v["checks"].as_array().unwrap();
    let get = |n: &str| checks.iter().find(|c| c["name"] == n).unwrap()["outcome"].clone();
    assert_eq!(get("agent.unknown_action"), "fail");
    assert_eq!(get("agent.list"), "pass");
    assert_eq!(get("fence_device.status"), "pass");
    assert_eq!(
        get("fence_device.off"),
        "skip",
        "no --power-cycle: real hardware is not touched"
    );
}

#[test]
fn plugins_lists_cluster_glue_types() {
    let out = ocf(&["fence", "plugins"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(
        s.lines().any(|l| l == "null") && s.lines().any(|l| l == "meatware"),
        "{s}"
    );
    let out = ocf(&["fence", "plugins", "--json"]);
    let v: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v.iter().any(|p| p == "external/ssh"), "{v:?}");
}

#[test]
fn members_without_a_config_is_a_usage_error() {
    let out = ocf(&["members"]);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out.stderr));
}
