//! Secrets given to fence devices never reach argv (world-readable through `ps`), Debug
//! output, errors or the history; they reach the agent on stdin (fence-agents) or in the
//! environment (`stonith -E`) only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ocf_fencing::{
    DeviceParams, FenceAction, FenceDevice, FenceRequest, Fencer, FencerAdmin, HistoryFilter,
    Targets,
};
use ocf_ref::fencing::devices::agent::AgentDevice;
use ocf_ref::fencing::devices::stonith::StonithDevice;
use ocf_ref::fencing::fencer::LocalFencer;

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

// --- Redaction that neither corrupts output nor shows a secret's shape -------------------

/// The real fence_ipmilan, with `/bin/echo` standing in for ipmitool: in verbose mode it logs
/// the ipmitool command line it ran, password (`-P`) and Kg key (`-y`) included.
fn ipmilan_with_echo(extra: &[(&str, &str)]) -> AgentDevice {
    let mut p = DeviceParams::new();
    for (k, v) in [
        ("ip", "127.0.0.1"),
        ("username", "admin"),
        ("lanplus", "1"),
        ("verbose", "1"),
        ("ipmitool_path", "/bin/echo"),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    {
        p.insert(k, v);
    }
    AgentDevice::new(
        "ipmi".parse().unwrap(),
        "/usr/sbin/fence_ipmilan",
        p,
        Targets::hosts(["n1".parse().unwrap()]),
    )
}

/// Every `<` in `text` starts a whole marker: no marker was cut by another secret.
fn markers_whole(text: &str) -> bool {
    text.match_indices('<')
        .all(|(i, _)| text[i..].starts_with("<redacted>"))
}

#[tokio::test]
async fn a_one_letter_password_is_hidden_without_mangling_fence_ipmilan_output() {
    let dev = ipmilan_with_echo(&[("password", "o")]);
    let run = dev
        .run(ocf_fencing::DeviceAction::Status, None, T)
        .await
        .unwrap();
    let out = format!("{}{}", run.stdout, run.stderr);
    // The command line echoed with the password as a whole token: hidden.
    assert!(
        out.contains("-U admin -P <redacted> -L ADMINISTRATOR"),
        "{out}"
    );
    // Words holding the letter stay whole (the old redaction printed "ADMINISTRAT<redacted>R",
    // "p<redacted>wer" and so spelled out the password).
    assert!(out.contains("chassis power status"), "{out}");
    assert!(
        out.contains("Unable to obtain correct plug status"),
        "{out}"
    );
    assert_eq!(out.matches("<redacted>").count(), 1, "{out}");
    assert!(!out.contains(" o "), "{out}");
}

#[tokio::test]
async fn two_short_secrets_keep_their_markers_whole() {
    // "<redacted>" holds both: a second pass for the second secret used to cut the first
    // one's marker ("<red<redacted>ed>"). fencing.py itself logs the Kg key in clear.
    let dev = ipmilan_with_echo(&[("password", "red"), ("hexadecimal_kg", "act")]);
    let run = dev
        .run(ocf_fencing::DeviceAction::Status, None, T)
        .await
        .unwrap();
    let out = format!("{}{}", run.stdout, run.stderr);
    assert!(
        out.contains("-P <redacted> -L ADMINISTRATOR -y <redacted> -N 2"),
        "{out}"
    );
    assert!(markers_whole(&out), "{out}");
    assert!(!out.contains(" red ") && !out.contains(" act "), "{out}");
}

/// A 1 MiB loop device, detached on drop.
struct Loop {
    dev: String,
    _file: tempfile::NamedTempFile,
}

impl Loop {
    fn new() -> Self {
        let file = tempfile::NamedTempFile::new().unwrap();
        file.as_file().set_len(1 << 20).unwrap();
        let out = std::process::Command::new("losetup")
            .args(["-f", "--show"])
            .arg(file.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "losetup: {out:?}");
        Self {
            dev: String::from_utf8(out.stdout).unwrap().trim().to_owned(),
            _file: file,
        }
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup")
            .args(["-d", &self.dev])
            .status();
    }
}

#[tokio::test]
async fn fence_scsi_reservation_key_is_not_a_secret() {
    let disk = Loop::new();
    let mut p = DeviceParams::new();
    p.insert("key", "1a2b");
    p.insert("devices", disk.dev.as_str());
    p.insert("verbose", "1");
    // Nothing touches the disk: /bin/echo stands in for the sg3-utils commands.
    for tool in ["sg_persist_path", "sg_turs_path", "vgs_path"] {
        p.insert(tool, "/bin/echo");
    }
    assert!(!p.get("key").unwrap().is_secret());
    let dev = AgentDevice::new(
        "scsi".parse().unwrap(),
        "/usr/sbin/fence_scsi",
        p.clone(),
        Targets::hosts(["n1".parse().unwrap()]),
    );
    // fence_scsi's meta-data (`--key=[key]`) does not make it one either.
    let md = ocf_fencing::FenceDevice::metadata(&dev, Duration::from_secs(20))
        .await
        .unwrap();
    assert!(!md.parameter("key").unwrap().secret);
    assert!(
        !ocf_ref::fencing::devices::agent::with_metadata_secrets(&p, &md)
            .get("key")
            .unwrap()
            .is_secret()
    );
    let run = dev
        .run(ocf_fencing::DeviceAction::Status, None, T)
        .await
        .unwrap();
    let out = format!("{}{}", run.stdout, run.stderr);
    assert!(
        out.contains("No registration for key 1a2b on device"),
        "{out}"
    );
    assert!(!out.contains("<redacted>"), "{out}");
}

#[tokio::test]
async fn meta_data_marks_a_secret_its_name_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = params();
    p.insert("pin", "4711-Xq");
    assert!(!p.get("pin").unwrap().is_secret(), "not by its name");
    let dev = AgentDevice::new(
        "spy".parse().unwrap(),
        spy(&dir),
        p,
        Targets::host_map([("n1".parse().unwrap(), "1".to_owned())]),
    );
    let e = dev
        .fence(&"n1".parse().unwrap(), FenceAction::Off, T)
        .await
        .unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(shown.contains("and pin <redacted>"), "{shown}");
    assert!(
        !shown.contains("4711-Xq") && !shown.contains(PASSWORD),
        "{shown}"
    );
    assert!(records(dir.path(), "stdin.").contains("pin=4711-Xq\n"));
    // Once the meta-data is known, the device's Debug hides it too.
    assert!(!format!("{dev:?}").contains("4711-Xq"), "{dev:?}");
}

// --- Parameters reach the agent exactly as given, or are refused ---------------------------

fn spy_with(dir: &tempfile::TempDir, params: &[(&str, &str)]) -> AgentDevice {
    AgentDevice::new(
        "spy".parse().unwrap(),
        spy(dir),
        params.iter().copied().collect(),
        Targets::host_map([("n1".parse().unwrap(), "1".to_owned())]),
    )
}

#[tokio::test]
async fn values_fence_agents_would_change_are_refused_naming_the_parameter() {
    use ocf_fencing::{FenceError, ParamRefusal};
    for (name, value, refusal) in [
        // fencing.py strips the line: the agent would get "hunter2".
        ("password", "hunter2 ", ParamRefusal::EdgeWhitespace),
        ("login", "\tadmin", ParamRefusal::EdgeWhitespace),
        // fencing.py skips the line as a comment: the option would vanish.
        ("#login", "admin", ParamRefusal::CommentName),
        // fencing.py removes the quotes.
        ("password", "\"quoted\"", ParamRefusal::Quoted),
        ("login", "a\nplug=7", ParamRefusal::LineBreak),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let dev = spy_with(&dir, &[(name, value)]);
        let e = dev
            .fence(&"n1".parse().unwrap(), FenceAction::Reboot, T)
            .await
            .unwrap_err();
        match &e {
            FenceError::BadParameter {
                parameter,
                refusal: r,
                ..
            } => {
                assert_eq!(parameter, name);
                assert_eq!(*r, refusal, "{name}={value:?}");
            }
            other => panic!("{name}={value:?}: {other}"),
        }
        assert!(e.to_string().contains(name), "{e}");
        assert!(!e.to_string().contains(value.trim()), "value shown: {e}");
        // The agent never ran a power action with the changed value.
        assert!(
            !records(dir.path(), "stdin.").contains("action=reboot"),
            "{name}={value:?} reached the agent"
        );
    }
}

#[tokio::test]
async fn fence_dummy_gets_a_value_with_inner_spaces_exactly() {
    // What fencing.py keeps (inner and leading-after-'=' characters) is passed through.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("a state file");
    std::fs::write(&state, "on").unwrap();
    let mut p = DeviceParams::new();
    p.insert("status_file", state.display().to_string());
    let dev = AgentDevice::new(
        "dummy".parse().unwrap(),
        "/usr/sbin/fence_dummy",
        p,
        Targets::hosts(["n1".parse().unwrap()]),
    );
    dev.fence(&"n1".parse().unwrap(), FenceAction::Off, T)
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&state).unwrap(), "off");
}

#[test]
fn the_cli_refuses_instead_of_dropping_or_trimming() {
    for param in ["status_file=/tmp/ocf-never-written ", "#type=fail"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ocf"))
            .args([
                "fence",
                "run",
                "fence_dummy",
                "--action",
                "off",
                "-p",
                param,
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{param:?} accepted: {stderr}");
        let name = param.split('=').next().unwrap();
        assert!(stderr.contains(name), "{param:?}: {stderr}");
        assert!(stderr.contains("refused"), "{param:?}: {stderr}");
    }
    // `ocf fence test` names the refused parameter in its parameters check.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ocf"))
        .args(["fence", "test", "fence_dummy", "--json", "-p", "#type=fail"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "agent.parameters")
        .unwrap();
    assert_eq!(check["outcome"], "fail", "{check}");
    let detail = check["reason"].as_str().unwrap();
    assert!(
        detail.contains("\"#type\" refused") && detail.contains("comment"),
        "{detail}"
    );
    assert!(!Path::new("/tmp/ocf-never-written").exists());
}

#[tokio::test]
async fn stonith_env_carries_values_exactly_and_refuses_variables_it_acts_on() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("stonith");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nenv -0 > {d}/env\nprintf 'n1\\n'\n",
            d = dir.path().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut p = DeviceParams::new();
    p.insert("hostlist", " n1 #n2 \"x\" ");
    let dev = StonithDevice::new("ext".parse().unwrap(), "external/ssh", p, Targets::Dynamic)
        .with_program(&fake);
    dev.fence(&"n1".parse().unwrap(), FenceAction::Reboot, T)
        .await
        .unwrap();
    let env = std::fs::read(dir.path().join("env")).unwrap();
    assert!(
        env.split(|b| *b == 0)
            .any(|v| v == b"hostlist= n1 #n2 \"x\" "),
        "{}",
        String::from_utf8_lossy(&env)
    );
    std::fs::remove_file(dir.path().join("env")).unwrap();
    for name in ["LD_PRELOAD", "PATH", "BASH_ENV", "#hostlist"] {
        let mut p = DeviceParams::new();
        p.insert("hostlist", "n1");
        p.insert(name, "/tmp/x");
        let dev = StonithDevice::new("ext".parse().unwrap(), "external/ssh", p, Targets::Dynamic)
            .with_program(&fake);
        let e = dev
            .fence(&"n1".parse().unwrap(), FenceAction::Reboot, T)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, ocf_fencing::FenceError::BadParameter { parameter, .. } if parameter == name),
            "{name}: {e}"
        );
        assert!(!dir.path().join("env").exists(), "{name}: stonith ran");
    }
}
