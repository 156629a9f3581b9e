#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Script and native agents: the real agents' lifecycle, the exact OCF environment, parameter
//! validation, and the broken fixtures (`tests/fixtures/resource.d/broken`), each giving its
//! own typed outcome and leaving no process behind.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ocf_ref::process::group_alive;
use ocf_ref::resources::{NativeDummy, ScriptAgent, list};
use ocf_resources::env::{Notify, NotifyType};
use ocf_resources::validate::ParamProblem;
use ocf_resources::{
    Action, ActionRequest, AgentOutcome, ExitCode, ResourceAgent, ResourceError, Status,
};

const SYSTEM_ROOT: &str = "/usr/lib/ocf";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn fixture(kind: &str) -> ScriptAgent {
    ScriptAgent::new(fixtures(), format!("ocf:broken:{kind}").parse().unwrap())
        .with_kill_grace(Duration::from_millis(200))
}

fn req(action: Action) -> ActionRequest {
    ActionRequest::new(action, "t", Duration::from_secs(20))
}

/// Waits (up to 5 s) for a process group to vanish (killed members are reaped by init).
/// The timeouts below leave the fixtures a second to write their pid file and fork, even on
/// a loaded machine.
async fn group_gone(pgid: u32) -> bool {
    for _ in 0..250 {
        if !group_alive(pgid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

fn read_pid(path: &Path) -> u32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Runs `request` on a broken fixture agent, which writes its process group id to the
/// `pidfile` parameter; returns the outcome and that group id.
async fn run_broken(agent: &ScriptAgent, request: ActionRequest) -> (AgentOutcome, u32) {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let out = agent
        .execute(request.param("pidfile", pidfile.display().to_string()))
        .await
        .unwrap();
    (out, read_pid(&pidfile))
}

/// Runs `steps` on the system agent `id` with its own state file, checking each exit code.
async fn run_steps(id: &str, steps: &[(Action, ExitCode)]) {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("agent.state").display().to_string();
    let agent = ScriptAgent::new(SYSTEM_ROOT, id.parse().unwrap());
    for &(action, code) in steps {
        let out = agent
            .execute(req(action).param("state", state.clone()))
            .await
            .unwrap();
        assert_eq!(
            out.exit_code(),
            Some(code),
            "{id} {action}: {}",
            out.summary()
        );
        assert!(out.succeeded(action), "{id} {action}: {}", out.summary());
    }
}

#[tokio::test]
async fn heartbeat_dummy_lifecycle() {
    run_steps(
        "ocf:heartbeat:Dummy",
        &[
            (Action::Monitor, ExitCode::NotRunning),
            (Action::Start, ExitCode::Success),
            (Action::Start, ExitCode::Success),
            (Action::Monitor, ExitCode::Success),
            (Action::Stop, ExitCode::Success),
            (Action::Stop, ExitCode::Success),
            (Action::Monitor, ExitCode::NotRunning),
        ],
    )
    .await;
}

#[tokio::test]
async fn pacemaker_stateful_promotes() {
    run_steps(
        "ocf:pacemaker:Stateful",
        &[
            (Action::Start, ExitCode::Success),
            (Action::Promote, ExitCode::Success),
            (Action::Monitor, ExitCode::RunningPromoted),
            (Action::Demote, ExitCode::Success),
            (Action::Monitor, ExitCode::Success),
            (Action::Stop, ExitCode::Success),
            (Action::Monitor, ExitCode::NotRunning),
        ],
    )
    .await;
}

#[tokio::test]
async fn the_environment_is_exactly_ocf_1_1() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("env");
    let agent = ScriptAgent::new(fixtures(), "ocf:test:envdump".parse().unwrap());
    // A stray variable of ours must not reach the agent.
    let request = ActionRequest::new(Action::Notify, "inst-1", Duration::from_millis(1500))
        .param("out", out_file.display().to_string())
        .param("count", "3")
        .meta("clone_max", "2")
        .interval(Duration::from_secs(10))
        .check_level(10)
        .notify(Notify::new(NotifyType::Post, Action::Start).list("start_uname", ["n1", "n2"]));
    let out = agent.execute(request).await.unwrap();
    assert_eq!(
        out.exit_code(),
        Some(ExitCode::Success),
        "{}",
        out.summary()
    );
    let env = std::fs::read_to_string(&out_file).unwrap();
    let has = |line: &str| env.lines().any(|l| l == line);
    for line in [
        "ARGV=notify",
        &format!("OCF_ROOT={}", fixtures().display()),
        "OCF_RA_VERSION_MAJOR=1",
        "OCF_RA_VERSION_MINOR=1",
        "OCF_RESOURCE_INSTANCE=inst-1",
        "OCF_RESOURCE_TYPE=envdump",
        "OCF_RESOURCE_PROVIDER=test",
        "OCF_RESKEY_count=3",
        "OCF_RESKEY_CRM_meta_clone_max=2",
        "OCF_RESKEY_CRM_meta_timeout=1500",
        "OCF_RESKEY_CRM_meta_interval=10000",
        "OCF_CHECK_LEVEL=10",
        "OCF_RESKEY_CRM_meta_notify_type=post",
        "OCF_RESKEY_CRM_meta_notify_operation=start",
        "OCF_RESKEY_CRM_meta_notify_start_uname=n1 n2",
        "OCF_RESKEY_CRM_meta_notify_stop_uname=",
    ] {
        assert!(has(line), "missing {line:?} in:\n{env}");
    }
    // Nothing else OCF-ish: no defaults for unset parameters, no tracing, nothing inherited.
    let ocf: Vec<&str> = env.lines().filter(|l| l.starts_with("OCF_")).collect();
    assert_eq!(ocf.len(), 12 + 18, "unexpected OCF variables: {ocf:#?}");
    assert!(!env.contains("OCF_TRACE_RA"));
    assert!(
        !env.contains("CARGO_"),
        "our environment leaked into the agent"
    );
}

#[tokio::test]
async fn the_agent_judges_its_parameters_and_strict_mode_refuses_only_starts() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("env").display().to_string();
    let agent = ScriptAgent::new(fixtures(), "ocf:test:envdump".parse().unwrap());
    let bad = req(Action::Start)
        .param("count", "many")
        .param("flag", "perhaps")
        .param("wait", "a while")
        .param("mode", "c")
        .param("colour", "red");

    // Strict mode refuses a start, naming every problem, and runs nothing.
    let err = agent.execute(bad.clone().validate(true)).await.unwrap_err();
    let ResourceError::InvalidParameters(v) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(v.problems.len(), 6, "{err}"); // colour unknown, out missing, four types
    assert!(
        v.problems
            .contains(&ParamProblem::Missing { name: "out".into() })
    );
    assert!(v.problems.contains(&ParamProblem::Unknown {
        name: "colour".into()
    }));
    assert!(
        !Path::new(&out_file).exists(),
        "the agent ran despite invalid parameters"
    );

    // Strict mode never blocks a monitor or a stop: they reach the agent.
    for action in [Action::Monitor, Action::Stop] {
        let mut r = bad.clone().param("out", out_file.clone()).validate(true);
        r.action = action;
        let out = agent.execute(r).await.unwrap();
        assert!(out.exit_code().is_some(), "{action}: {out:?}");
        assert!(Path::new(&out_file).exists(), "{action} did not run");
        std::fs::remove_file(&out_file).unwrap();
    }

    // By default the agent runs as given, and its answer is the outcome.
    let out = agent
        .execute(bad.param("out", out_file.clone()))
        .await
        .unwrap();
    assert_eq!(out.exit_code(), Some(ExitCode::Success));
    assert!(Path::new(&out_file).exists());
}

#[tokio::test]
async fn broken_hang_times_out_and_its_group_is_gone() {
    let (out, pgid) = run_broken(
        &fixture("hang"),
        ActionRequest::new(Action::Start, "t", Duration::from_secs(1)),
    )
    .await;
    assert_eq!(
        out.status,
        Status::TimedOut {
            after: Duration::from_secs(1)
        }
    );
    assert!(out.timed_out() && !out.succeeded(Action::Start));
    assert!(group_gone(pgid).await, "hang left processes behind");
}

#[tokio::test]
async fn broken_fork_ignoring_sigterm_is_killed_with_its_child() {
    let (out, pgid) = run_broken(
        &fixture("fork-ignore-term"),
        ActionRequest::new(Action::Monitor, "t", Duration::from_secs(1)),
    )
    .await;
    assert!(
        matches!(out.status, Status::TimedOut { .. }),
        "{}",
        out.summary()
    );
    assert!(
        out.stdout.starts_with("forked "),
        "output before the kill is kept: {:?}",
        out.stdout
    );
    assert!(
        group_gone(pgid).await,
        "the SIGTERM-ignoring child survived"
    );
}

#[tokio::test]
async fn broken_flood_is_captured_up_to_the_bound() {
    let agent = fixture("flood").with_output_limit(64 * 1024);
    let (out, pgid) = run_broken(&agent, req(Action::Monitor)).await;
    assert_eq!(out.exit_code(), Some(ExitCode::Success));
    assert!(out.stdout_truncated);
    assert_eq!(out.stdout.len(), 64 * 1024);
    assert!(group_gone(pgid).await);
}

#[tokio::test]
async fn broken_exit42_is_an_unknown_exit_code() {
    let (out, pgid) = run_broken(&fixture("exit42"), req(Action::Monitor)).await;
    assert_eq!(out.status, Status::UnknownExitCode { code: 42 });
    assert!(group_gone(pgid).await);
    assert_eq!(out.exit_code(), None);
    assert!(!out.succeeded(Action::Monitor));
}

#[tokio::test]
async fn broken_killed_is_a_signal_death() {
    let (out, pgid) = run_broken(&fixture("killed"), req(Action::Monitor)).await;
    assert_eq!(out.status, Status::Signaled { signal: 9 });
    assert!(group_gone(pgid).await);
}

#[tokio::test]
async fn broken_bad_meta_gives_a_typed_meta_data_error() {
    let agent = fixture("bad-meta");
    let err = agent.metadata().await.unwrap_err();
    assert!(
        matches!(
            &err,
            ResourceError::Metadata {
                source: ocf_resources::MetadataError::Unclosed { .. },
                ..
            }
        ),
        "{err:?}"
    );
    // Strict mode needs the meta-data, so a strict start fails the same way; a strict monitor
    // and a plain start run (the agent's answer is the truth).
    let err = agent
        .execute(req(Action::Start).validate(true))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ocf_resources::ResourceErrorKind::Metadata);
    let out = agent
        .execute(req(Action::Monitor).validate(true))
        .await
        .unwrap();
    assert!(out.exit_code().is_some(), "{out:?}");
    let out = agent.execute(req(Action::Start)).await.unwrap();
    assert_eq!(out.exit_code(), Some(ExitCode::Success));
}

#[tokio::test]
async fn broken_not_executable_and_missing_are_distinct() {
    let out = fixture("not-executable")
        .execute(req(Action::Start))
        .await
        .unwrap();
    assert!(
        matches!(out.status, Status::NotExecutable { .. }),
        "{}",
        out.summary()
    );
    // Executable, but its `#!` interpreter is missing: not executable either, also when the
    // parameter validation tries meta-data first.
    let out = fixture("no-interpreter")
        .execute(req(Action::Start))
        .await
        .unwrap();
    assert!(
        matches!(out.status, Status::NotExecutable { .. }),
        "{}",
        out.summary()
    );
    let out = fixture("absent").execute(req(Action::Start)).await.unwrap();
    assert!(
        matches!(out.status, Status::NotInstalled { .. }),
        "{}",
        out.summary()
    );
}

#[tokio::test]
async fn the_fixture_directory_lists_with_the_non_executable_marked() {
    let agents = list(&fixtures(), Some("broken")).unwrap();
    let names: Vec<_> = agents
        .iter()
        .map(|a| a.id.agent_type().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "bad-meta",
            "exit42",
            "flood",
            "fork-ignore-term",
            "hang",
            "killed",
            "no-interpreter",
            "not-executable"
        ]
    );
    assert!(
        agents
            .iter()
            .all(|a| a.executable == (a.id.agent_type() != "not-executable"))
    );
    assert!(list(Path::new("/nonexistent"), None).is_err());
}

#[tokio::test]
async fn native_dummy_behaves_like_the_script_dummy() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("n.state").display().to_string();
    let agent = NativeDummy::new();
    for params in [vec![], vec![("state", state.as_str())]] {
        let run = |a| {
            let mut r = req(a);
            for (k, v) in &params {
                r = r.param(*k, *v);
            }
            agent.execute(r)
        };
        for (action, code) in [
            (Action::Monitor, ExitCode::NotRunning),
            (Action::Start, ExitCode::Success),
            (Action::Start, ExitCode::Success),
            (Action::Monitor, ExitCode::Success),
            (Action::Stop, ExitCode::Success),
            (Action::Stop, ExitCode::Success),
            (Action::Monitor, ExitCode::NotRunning),
            (Action::Promote, ExitCode::ErrUnimplemented),
        ] {
            let out = run(action).await.unwrap();
            assert_eq!(out.exit_code(), Some(code), "{action} with {params:?}");
        }
    }
    // Its meta-data is real meta-data; a slow action times out.
    let meta = agent.metadata().await.unwrap();
    assert!(meta.advertises(Action::ReloadAgent));
    let out = agent
        .execute(
            ActionRequest::new(Action::Start, "slow", Duration::from_millis(50))
                .param("delay", "10s"),
        )
        .await
        .unwrap();
    assert!(out.timed_out());
    let err = agent
        .execute(req(Action::Start).param("delay", "soon").validate(true))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ocf_resources::ResourceErrorKind::InvalidParameters
    );
    // Not strict, and never for a monitor: the agent answers.
    let out = agent
        .execute(req(Action::Monitor).param("delay", "soon").validate(true))
        .await
        .unwrap();
    assert!(out.exit_code().is_some(), "{out:?}");
}
