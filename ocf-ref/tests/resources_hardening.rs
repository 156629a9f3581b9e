#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Regression tests for the resource-agent hardening issue, each on real processes and real
//! agents, each failing on the behaviour it fixes:
//!
//! 1. ocf's parameter check never replaces the agent's answer (CLI and executor); `--strict`
//!    refuses only start-like actions.
//! 2. `-m interval=` / `-m timeout=` reach the agent.
//! 3. names that are not shell variable names, and bad instance names, are refused.
//! 4. `ocf ra list --provider ../../etc` is refused.
//! 5. usage errors exit 64, not 2.
//! 6. output past the bound is said to be cut; bytes pass through unchanged.
//! 7. the meta-data is cached by agent file, so a one-shot run does not run `meta-data` again.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use ocf_ref::resources::{AgentRegistry, ExecutorConfig, ListError, LocalExecutor, ScriptAgent};
use ocf_resources::executor::OpResult;
use ocf_resources::{
    Action, ActionRequest, EnvError, Executor, ExecutorAdmin, Operation, ResourceAgent,
    ResourceError, ResourceErrorKind, ResourceSpec,
};

const OCF: &str = env!("CARGO_BIN_EXE_ocf");

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Runs `ocf` with `OCF_ROOT` (or the system's) and the meta-data cache in `cache` (or none).
fn ocf_with(root: Option<&Path>, cache: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = Command::new(OCF);
    cmd.args(args);
    match root {
        Some(r) => cmd.env("OCF_ROOT", r),
        None => cmd.env_remove("OCF_ROOT"),
    };
    match cache {
        Some(c) => cmd.env("OCF_CACHE_DIR", c),
        None => cmd.env("OCF_CACHE_DIR", ""),
    };
    cmd.output().unwrap()
}

fn ocf(args: &[&str]) -> Output {
    ocf_with(None, None, args)
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A throw-away OCF root with agents written by the test (removed on drop).
struct TempRoot {
    dir: tempfile::TempDir,
}

impl TempRoot {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("resource.d/test")).unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `resource.d/test/<name>` with mode 0755, replacing it atomically.
    fn agent(&self, name: &str, script: &str) -> PathBuf {
        let path = self.path().join("resource.d/test").join(name);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, script).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path
    }
}

/// An agent that appends `<action>` to `$OCF_RESKEY_log` (or `<root>/calls`) on every run and
/// its OCF environment to `$OCF_RESKEY_out`; monitor answers 7. Its monitor advertises 33s.
fn spy_script(calls: &Path) -> String {
    format!(
        r#"#!/bin/sh
echo "$1" >> {calls}
case "$1" in
meta-data)
	cat <<END
<?xml version="1.0"?>
<resource-agent name="spy" version="1.0">
<version>1.1</version>
<shortdesc lang="en">spy</shortdesc>
<parameters>
<parameter name="out" required="1"><shortdesc lang="en">env dump</shortdesc><content type="string"/></parameter>
</parameters>
<actions>
<action name="start" timeout="20s"/>
<action name="stop" timeout="20s"/>
<action name="monitor" timeout="33s" interval="10s"/>
<action name="meta-data" timeout="5s"/>
</actions>
</resource-agent>
END
	exit 0;;
esac
[ -n "$OCF_RESKEY_out" ] && env | grep '^OCF_' | sort > "$OCF_RESKEY_out"
[ "$1" = monitor ] && exit 7
exit 0
"#,
        calls = calls.display()
    )
}

fn calls(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn env_of(dump: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(dump)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

// 1. The agent's answer is the truth.

#[test]
fn a_probe_of_unconfigured_ping_answers_the_agents_7_with_a_warning() {
    if !Path::new("/usr/lib/ocf/resource.d/pacemaker/ping").exists() {
        eprintln!("skipping: ocf:pacemaker:ping is not installed");
        return;
    }
    // ping without host_list: the agent itself says "not running" (7) to a probe.
    let out = ocf(&["ra", "run", "ocf:pacemaker:ping", "monitor"]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    assert!(stderr(&out).contains("warning") && stderr(&out).contains("host_list"));

    let out = ocf(&["ra", "run", "ocf:pacemaker:ping", "monitor", "--json"]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["exit_code"], 7);
    assert_eq!(json["outcome"]["status"]["code"], 7);
    let warnings = json["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("host_list")),
        "{json}"
    );

    // Even --strict never blocks a monitor or a stop.
    let out = ocf(&["ra", "run", "ocf:pacemaker:ping", "monitor", "--strict"]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
}

#[test]
fn strict_refuses_only_a_start_and_runs_nothing_then() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("env");
    let out_param = format!("out={}", dump.display());
    let run = |action: &str, strict: bool| {
        let mut args = vec![
            "ra",
            "run",
            "ocf:test:envdump",
            action,
            "-p",
            &out_param,
            "-p",
            "count=many",
        ];
        if strict {
            args.push("--strict");
        }
        ocf_with(Some(&fixtures()), None, &args)
    };
    let out = run("start", true);
    assert_eq!(out.status.code(), Some(65), "{}", text(&out));
    assert!(stderr(&out).contains("count"), "{}", text(&out));
    assert!(!dump.exists(), "--strict refused, yet the agent ran");
    for (action, code) in [("stop", 0), ("monitor", 7)] {
        let out = run(action, true);
        assert_eq!(out.status.code(), Some(code), "{action}: {}", text(&out));
        assert!(dump.exists(), "--strict blocked a {action}");
        std::fs::remove_file(&dump).unwrap();
    }
    let out = run("start", false);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stderr(&out).contains("warning"), "{}", text(&out));
    assert!(dump.exists());
}

#[tokio::test]
async fn the_executor_runs_what_its_check_dislikes_and_strict_never_blocks_a_stop() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("env");
    let exec = LocalExecutor::new(
        Arc::new(AgentRegistry::new(fixtures())),
        ExecutorConfig::default(),
    );
    // `count` is not an integer: ocf's check dislikes it, the agent does not care.
    exec.register(
        ResourceSpec::new("r1", "ocf:test:envdump".parse().unwrap())
            .param("out", dump.display().to_string())
            .param("count", "many"),
    )
    .await
    .unwrap();
    let op = |a| Operation::new(a, Duration::from_secs(20));
    let r = exec.execute("r1", op(Action::Monitor)).await.unwrap();
    assert!(
        matches!(&r.result, OpResult::Completed { outcome } if outcome.exit_code() == Some(ocf_resources::ExitCode::NotRunning)),
        "{:?}",
        r.result
    );
    let r = exec
        .execute("r1", op(Action::Start).validate(true))
        .await
        .unwrap();
    assert!(
        matches!(&r.result, OpResult::Error { message } if message.contains("count")),
        "{:?}",
        r.result
    );
    std::fs::remove_file(&dump).unwrap();
    for action in [Action::Stop, Action::Monitor] {
        let r = exec.execute("r1", op(action).validate(true)).await.unwrap();
        assert!(
            matches!(&r.result, OpResult::Completed { .. }),
            "strict blocked {action}: {:?}",
            r.result
        );
        assert!(dump.exists(), "{action} did not reach the agent");
        std::fs::remove_file(&dump).unwrap();
    }
    let r = exec.execute("r1", op(Action::Start)).await.unwrap();
    assert!(r.succeeded(), "{:?}", r.result);
}

// 2. -m interval / -m timeout reach the agent.

#[test]
fn meta_interval_and_timeout_reach_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("env");
    let out_param = format!("out={}", dump.display());
    let run = |extra: &[&str]| {
        let mut args = vec!["ra", "run", "ocf:test:envdump", "monitor", "-p", &out_param];
        args.extend_from_slice(extra);
        let out = ocf_with(Some(&fixtures()), None, &args);
        assert_eq!(out.status.code(), Some(7), "{extra:?}: {}", text(&out));
        env_of(&dump)
    };
    let interval = "OCF_RESKEY_CRM_meta_interval";
    let timeout = "OCF_RESKEY_CRM_meta_timeout";
    let env = run(&[]);
    assert_eq!(env[interval], "0", "a probe by default");
    assert_eq!(env[timeout], "20000", "the advertised monitor timeout");
    let env = run(&["-m", "interval=10s"]);
    assert_eq!(env[interval], "10000");
    let env = run(&["-m", "interval=5000", "-m", "timeout=7s"]);
    assert_eq!(env[interval], "5000", "a bare number is milliseconds");
    assert_eq!(env[timeout], "7000");
    let env = run(&["-m", "timeout=9000", "--timeout", "30s"]);
    assert_eq!(env[timeout], "9000", "what the caller said, verbatim");
    let env = run(&["-m", "target-role=Started"]);
    assert_eq!(
        env["OCF_RESKEY_CRM_meta_target_role"], "Started",
        "'-' becomes '_', as Pacemaker passes it"
    );
    let out = ocf_with(
        Some(&fixtures()),
        None,
        &[
            "ra",
            "run",
            "ocf:test:envdump",
            "monitor",
            "-m",
            "interval=soon",
        ],
    );
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
}

// 3. Names a shell agent could not read are refused.

#[test]
fn parameter_and_instance_names_a_shell_cannot_read_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("env");
    let out_param = format!("out={}", dump.display());
    for bad in ["my-param=1", "a b=1", "$(id)=1", "1x=1"] {
        let out = ocf_with(
            Some(&fixtures()),
            None,
            &[
                "ra",
                "run",
                "ocf:test:envdump",
                "start",
                "-p",
                &out_param,
                "-p",
                bad,
            ],
        );
        assert_eq!(out.status.code(), Some(64), "{bad}: {}", text(&out));
        let name = bad.split_once('=').unwrap().0;
        assert!(
            stderr(&out).contains(name) && stderr(&out).contains("[A-Za-z_][A-Za-z0-9_]*"),
            "{bad}: {}",
            text(&out)
        );
    }
    for bad in ["a\nb", "a;b", "", "-x", "a/b", "a b"] {
        let instance = format!("--instance={bad}");
        let out = ocf_with(
            Some(&fixtures()),
            None,
            &[
                "ra",
                "run",
                "ocf:test:envdump",
                "start",
                "-p",
                &out_param,
                &instance,
            ],
        );
        assert_eq!(out.status.code(), Some(64), "{bad:?}: {}", text(&out));
        assert!(stderr(&out).contains("instance"), "{bad:?}: {}", text(&out));
    }
    assert!(!dump.exists(), "the agent ran with a refused name");
    let out = ocf_with(
        Some(&fixtures()),
        None,
        &[
            "ra",
            "run",
            "ocf:test:envdump",
            "start",
            "-p",
            &out_param,
            "--instance",
            "web:0",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[tokio::test]
async fn the_library_refuses_bad_names_before_running_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("env");
    let agent = ScriptAgent::new(fixtures(), "ocf:test:envdump".parse().unwrap());
    let req = |instance: &str| {
        ActionRequest::new(Action::Start, instance, Duration::from_secs(20))
            .param("out", dump.display().to_string())
    };
    let err = agent
        .execute(req("web").param("my-param", "1"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ResourceError::Env(EnvError::BadParamName { name }) if name == "my-param"),
        "{err:?}"
    );
    assert_eq!(err.kind(), ResourceErrorKind::InvalidRequest);
    let err = agent.execute(req("a\nb")).await.unwrap_err();
    assert!(
        matches!(&err, ResourceError::Env(EnvError::BadInstance { .. })),
        "{err:?}"
    );
    assert!(!dump.exists(), "the agent ran");

    // The executor refuses them at registration.
    let exec = LocalExecutor::new(
        Arc::new(AgentRegistry::new(fixtures())),
        ExecutorConfig::default(),
    );
    for spec in [
        ResourceSpec::new("ok", "ocf:test:envdump".parse().unwrap()).param("a b", "1"),
        ResourceSpec::new("x;y", "ocf:test:envdump".parse().unwrap()),
        ResourceSpec::new("ok", "ocf:test:envdump".parse().unwrap()).meta("$(id)", "1"),
    ] {
        let err = exec.register(spec).await.unwrap_err();
        assert_eq!(err.kind(), ResourceErrorKind::InvalidRequest, "{err}");
    }
}

// 4. Listing stays inside resource.d.

#[test]
fn list_refuses_a_provider_that_is_a_path() {
    for bad in ["../../etc", "..", "a/b", "heart beat", "$(id)"] {
        let out = ocf(&["ra", "list", "--provider", bad]);
        assert_eq!(out.status.code(), Some(64), "{bad}: {}", text(&out));
        assert!(out.stdout.is_empty(), "{bad}: listed {}", text(&out));
    }
    let err = ocf_ref::resources::list(&fixtures(), Some("../../etc")).unwrap_err();
    assert!(matches!(err, ListError::BadProvider(_)), "{err:?}");
    let out = ocf(&["ra", "run", "ocf:../etc:passwd", "monitor"]);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
}

// 5. Usage errors have their own code.

#[test]
fn usage_errors_exit_64_and_help_exits_0() {
    for args in [
        &["ra", "run"][..],
        &["ra", "run", "ocf:heartbeat:Dummy", "frobnicate"],
        &[
            "ra",
            "run",
            "ocf:heartbeat:Dummy",
            "monitor",
            "--timeout",
            "0s",
        ],
        &["--no-such-flag"],
        &["ra"],
        &["fence", "run", "fence_dummy", "--action", "explode"],
    ] {
        let out = ocf(args);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", text(&out));
    }
    for args in [&["--help"][..], &["--version"], &["ra", "run", "--help"]] {
        let out = ocf(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        assert!(!out.stdout.is_empty());
    }
}

// 6. Output: truncation said, bytes unchanged.

#[test]
fn output_past_the_bound_is_said_to_be_cut() {
    let root = fixtures();
    let out = ocf_with(
        Some(&root),
        None,
        &["ra", "run", "ocf:broken:flood", "start"],
    );
    assert_eq!(out.status.code(), Some(0), "the agent's own code");
    assert_eq!(out.stdout.len(), 1 << 20, "the first MiB passes through");
    assert!(
        stderr(&out).contains("stdout truncated") && stderr(&out).contains("104857600"),
        "{}",
        stderr(&out)
    );
    let out = ocf_with(
        Some(&root),
        None,
        &["ra", "run", "ocf:broken:flood", "start", "--json"],
    );
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["truncated"], true);
    assert_eq!(json["outcome"]["stdout_truncated"], true);
}

#[test]
fn bytes_that_are_not_utf8_pass_through_unchanged() {
    let root = TempRoot::new();
    root.agent(
        "binary",
        "#!/bin/sh\nprintf 'a\\377\\376b\\n'\nprintf 'e\\300\\n' >&2\nexit 0\n",
    );
    let out = ocf_with(
        Some(root.path()),
        None,
        &["ra", "run", "ocf:test:binary", "start", "--no-validate"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(out.stdout, b"a\xff\xfeb\n", "stdout rewritten");
    assert!(
        out.stderr.starts_with(b"e\xc0\n"),
        "stderr rewritten: {:?}",
        out.stderr
    );
    let out = ocf_with(
        Some(root.path()),
        None,
        &["ra", "run", "ocf:test:binary", "start", "--json"],
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["stdout_base64"], "Yf/+Ygo=", "{json}");
    assert_eq!(json["stderr_base64"], "ZcAK", "{json}");
    assert_eq!(json["truncated"], false);
    // UTF-8 output carries no base64 copy.
    root.agent("text", "#!/bin/sh\necho 'h\u{e9}llo'\nexit 0\n");
    let out = ocf_with(
        Some(root.path()),
        None,
        &["ra", "run", "ocf:test:text", "start", "--json"],
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["outcome"]["stdout"], "h\u{e9}llo\n");
    assert!(json.get("stdout_base64").is_none(), "{json}");
}

// 7. The meta-data is not read again on every call.

#[test]
fn meta_data_is_cached_by_agent_file_and_refreshed_when_it_changes() {
    let root = TempRoot::new();
    let cache = tempfile::tempdir().unwrap();
    let log = root.path().join("calls");
    let dump = root.path().join("env");
    root.agent("spy", &spy_script(&log));
    let out_param = format!("out={}", dump.display());
    let monitor = || {
        let out = ocf_with(
            Some(root.path()),
            Some(cache.path()),
            &["ra", "run", "ocf:test:spy", "monitor", "-p", &out_param],
        );
        assert_eq!(out.status.code(), Some(7), "{}", text(&out));
        assert_eq!(
            env_of(&dump)["OCF_RESKEY_CRM_meta_timeout"],
            "33000",
            "the advertised timeout, cached or not"
        );
    };
    monitor();
    monitor();
    monitor();
    assert_eq!(calls(&log), ["meta-data", "monitor", "monitor", "monitor"]);

    // A changed agent file misses the cache.
    std::fs::remove_file(&log).unwrap();
    root.agent("spy", &format!("{}\n# changed\n", spy_script(&log)));
    monitor();
    monitor();
    assert_eq!(calls(&log), ["meta-data", "monitor", "monitor"]);

    // `ocf ra meta` always asks the agent.
    std::fs::remove_file(&log).unwrap();
    let out = ocf_with(
        Some(root.path()),
        Some(cache.path()),
        &["ra", "meta", "ocf:test:spy", "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(calls(&log), ["meta-data"]);

    // With --timeout and --no-validate nothing but the action runs, cache or not.
    std::fs::remove_file(&log).unwrap();
    let out = ocf_with(
        Some(root.path()),
        None,
        &[
            "ra",
            "run",
            "ocf:test:spy",
            "monitor",
            "--timeout",
            "5s",
            "--no-validate",
        ],
    );
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    assert_eq!(calls(&log), ["monitor"]);
}

#[tokio::test]
async fn a_cache_directory_others_can_write_is_not_trusted() {
    let root = TempRoot::new();
    let cache_dir = tempfile::tempdir().unwrap();
    let log = root.path().join("calls");
    root.agent("spy", &spy_script(&log));
    let id: ocf_resources::AgentId = "ocf:test:spy".parse().unwrap();
    let cache = ocf_ref::resources::MetadataCache::new(cache_dir.path());
    let agent = || ScriptAgent::new(root.path(), id.clone()).with_metadata_cache(cache.clone());
    agent().metadata().await.unwrap();
    agent().metadata().await.unwrap();
    assert_eq!(calls(&log), ["meta-data"], "the second read hit the cache");
    std::fs::set_permissions(
        cache_dir.path().join("metadata"),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    agent().metadata().await.unwrap();
    assert_eq!(
        calls(&log),
        ["meta-data", "meta-data"],
        "a world-writable cache was used"
    );
}
