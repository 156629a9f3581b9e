//! Secrets given to fence devices never reach argv (world-readable through `ps`), Debug
//! output, errors or the history; they reach the agent on stdin (fence-agents) or in the
//! environment (`stonith -E`) only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ocf_fencing::{
    DeviceParams, FenceAction, FenceDevice, FenceRequest, Fencer, HistoryFilter, Targets,
};
use ocf_ref::fencing::agent::AgentDevice;
use ocf_ref::fencing::fencer::LocalFencer;
use ocf_ref::fencing::stonith::StonithDevice;

const PASSWORD: &str = "hunter2-Zq9";
const T: Duration = Duration::from_secs(30);

/// A copy of the spy agent in its own temp dir (it writes its records beside itself).
fn spy(dir: &tempfile::TempDir) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fence_spy");
    let dst = dir.path().join("fence_spy");
    std::fs::copy(src, &dst).unwrap();
    dst
}

fn records(dir: &Path, prefix: &str) -> String {
    let mut all = String::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with(prefix) {
            all.push_str(&std::fs::read_to_string(e.path()).unwrap());
        }
    }
    all
}

fn params() -> DeviceParams {
    let mut p = DeviceParams::new();
    p.insert("login", "admin");
    p.insert("password", PASSWORD);
    p
}

#[tokio::test]
async fn the_password_goes_to_stdin_never_to_argv() {
    let dir = tempfile::tempdir().unwrap();
    let dev = AgentDevice::new(
        "spy".parse().unwrap(),
        spy(&dir),
        params(),
        Targets::host_map([("n1".parse().unwrap(), "1".to_owned())]),
    );
    dev.fence(&"n1".parse().unwrap(), FenceAction::Reboot, T)
        .await
        .unwrap();
    let argv = records(dir.path(), "argv.");
    let stdin = records(dir.path(), "stdin.");
    assert!(argv.contains("fence_spy"), "{argv}");
    assert!(!argv.contains(PASSWORD), "password in argv: {argv}");
    assert!(stdin.contains(&format!("password={PASSWORD}")), "{stdin}");
    assert!(stdin.contains("action=reboot\n"), "{stdin}");
    assert!(stdin.contains("plug=1\n"), "{stdin}");
    assert!(!format!("{dev:?}").contains(PASSWORD));
}

#[tokio::test]
async fn agent_output_echoing_the_password_is_redacted_in_errors_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let fencer = LocalFencer::new();
    let dev = AgentDevice::new(
        "spy".parse().unwrap(),
        spy(&dir),
        params(),
        Targets::Dynamic,
    );
    fencer.register_device(Arc::new(dev)).await.unwrap();
    let e = fencer
        .fence(FenceRequest::new(
            "beta".parse().unwrap(),
            FenceAction::Off,
            "test@here".parse().unwrap(),
        ))
        .await
        .unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(shown.contains("login refused"), "{shown}");
    assert!(!shown.contains(PASSWORD), "{shown}");
    let history = fencer.history(&HistoryFilter::all()).await.unwrap();
    let json = serde_json::to_string(&history).unwrap();
    assert!(json.contains("<redacted>"), "{json}");
    assert!(!json.contains(PASSWORD), "{json}");
    // The agent did get it, on stdin, and the dynamic list mapped beta to plug 2.
    let stdin = records(dir.path(), "stdin.");
    assert!(stdin.contains(PASSWORD));
    assert!(stdin.contains("plug=2\n"), "{stdin}");
}

#[tokio::test]
async fn the_cli_reads_secrets_from_stdin_and_never_prints_them() {
    let dir = tempfile::tempdir().unwrap();
    let agent = spy(&dir);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ocf"))
        .args(["fence", "run"])
        .arg(&agent)
        .args([
            "--action",
            "off",
            "--target",
            "n1",
            "--params-stdin",
            "--json",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "login=admin\npassword={PASSWORD}").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "off fails in the spy");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("login refused"), "{stdout}");
    assert!(
        !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
        "{stdout}\n{stderr}"
    );
    assert!(!records(dir.path(), "argv.").contains(PASSWORD));
    assert!(records(dir.path(), "stdin.").contains(PASSWORD));
}

#[tokio::test]
async fn stonith_gets_parameters_in_its_environment_not_argv() {
    let dir = tempfile::tempdir().unwrap();
    // A stand-in for the stonith command that records its argv and environment.
    let fake = dir.path().join("stonith");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > {d}/argv\nenv > {d}/env\nprintf 'n1\\n'\n",
            d = dir.path().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut p = DeviceParams::new();
    p.insert("ipaddr", "10.0.0.1");
    p.insert("password", PASSWORD);
    let dev = StonithDevice::new("ext".parse().unwrap(), "external/ipmi", p, Targets::Dynamic)
        .with_program(&fake);
    dev.fence(&"n1".parse().unwrap(), FenceAction::Reboot, T)
        .await
        .unwrap();
    let argv = std::fs::read_to_string(dir.path().join("argv")).unwrap();
    let env = std::fs::read_to_string(dir.path().join("env")).unwrap();
    assert_eq!(argv, "-t\nexternal/ipmi\n-E\n-T\nreset\nn1\n");
    assert!(env.contains(&format!("password={PASSWORD}")), "{env}");
    assert!(env.contains("ipaddr=10.0.0.1"), "{env}");
    assert!(!format!("{dev:?}").contains(PASSWORD));
}
