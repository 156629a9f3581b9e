#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The process runner (`ocf_ref::process`), which resource and fence agents run through:
//! timeouts stop the whole group, output is bounded, stdin is delivered, spawn errors typed.

use std::time::Duration;

use ocf_ref::process::{ProcessSpec, SpawnError, Termination, group_alive, run};

/// Waits (up to 5 s) for a process group to disappear: killed members are reaped by init a
/// moment after the kill, and `kill(-pgid, 0)` still sees them until then.
async fn group_gone(pgid: u32) -> bool {
    for _ in 0..250 {
        if !group_alive(pgid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

fn sh(script: &str, timeout: Duration) -> ProcessSpec {
    ProcessSpec::new("/bin/sh", timeout).arg("-c").arg(script)
}

#[tokio::test]
async fn exit_code_and_output_are_captured() {
    let done = run(&sh(
        "echo out; echo err >&2; exit 3",
        Duration::from_secs(10),
    ))
    .await
    .unwrap();
    assert_eq!(done.termination, Termination::Exited(3));
    assert_eq!(done.stdout, b"out\n");
    assert_eq!(done.stderr, b"err\n");
    assert!(!done.stdout_truncated && !done.stderr_truncated);
}

#[tokio::test]
async fn timeout_kills_the_whole_group_including_term_ignoring_children() {
    let mut spec = sh(
        "trap '' TERM; sleep 1000 & sleep 1000 & exec sleep 1000",
        Duration::from_millis(300),
    );
    spec.kill_grace = Duration::from_millis(200);
    let done = run(&spec).await.unwrap();
    assert_eq!(done.termination, Termination::TimedOut);
    assert!(done.pid > 1);
    assert!(
        group_gone(done.pid).await,
        "process group {} still alive after timeout",
        done.pid
    );
}

#[tokio::test]
async fn a_term_honouring_group_stops_on_sigterm() {
    let mut spec = sh("sleep 1000 & exec sleep 1000", Duration::from_millis(200));
    spec.kill_grace = Duration::from_secs(5);
    let done = run(&spec).await.unwrap();
    assert_eq!(done.termination, Termination::TimedOut);
    // It did not need the 5 s grace: SIGTERM was enough.
    assert!(done.elapsed < Duration::from_secs(5));
    assert!(group_gone(done.pid).await);
}

#[tokio::test]
async fn output_is_bounded_and_the_rest_discarded() {
    let mut spec = sh(
        "head -c 3000000 /dev/zero; head -c 10 /dev/zero >&2",
        Duration::from_secs(30),
    );
    spec.output_limit = 1000;
    let done = run(&spec).await.unwrap();
    assert_eq!(done.termination, Termination::Exited(0));
    assert_eq!(done.stdout.len(), 1000);
    assert!(done.stdout_truncated);
    assert_eq!(done.stderr.len(), 10);
    assert!(!done.stderr_truncated);
}

#[tokio::test]
async fn stdin_is_delivered_and_closed() {
    let spec = sh("cat; echo done", Duration::from_secs(10)).stdin(b"key=value\nport=1\n".to_vec());
    let done = run(&spec).await.unwrap();
    assert_eq!(done.stdout, b"key=value\nport=1\ndone\n");
}

#[tokio::test]
async fn a_grandchild_holding_the_pipe_does_not_block_the_result() {
    let mut spec = sh("sleep 30 & echo started", Duration::from_secs(10));
    spec.reap_group_on_exit = true;
    spec.kill_grace = Duration::from_millis(200);
    let done = run(&spec).await.unwrap();
    assert_eq!(done.termination, Termination::Exited(0));
    assert_eq!(done.stdout, b"started\n");
    assert!(
        group_gone(done.pid).await,
        "reap_group_on_exit left the sleep behind"
    );
}

#[tokio::test]
async fn signal_death_is_reported() {
    let done = run(&sh("kill -9 $$", Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(done.termination, Termination::Signaled(9));
}

#[tokio::test]
async fn environment_is_cleared_and_set() {
    let mut spec = ProcessSpec::new("/usr/bin/env", Duration::from_secs(10)).env("A_VAR", "1");
    spec.env_clear = true;
    let done = run(&spec).await.unwrap();
    assert_eq!(String::from_utf8(done.stdout).unwrap(), "A_VAR=1\n");
}

#[tokio::test]
async fn spawn_errors_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let err = run(&ProcessSpec::new(&missing, Duration::from_secs(1)))
        .await
        .unwrap_err();
    assert!(matches!(err, SpawnError::NotFound { .. }), "{err:?}");

    let plain = dir.path().join("plain");
    std::fs::write(&plain, "#!/bin/sh\nexit 0\n").unwrap();
    let err = run(&ProcessSpec::new(&plain, Duration::from_secs(1)))
        .await
        .unwrap_err();
    assert!(matches!(err, SpawnError::NotExecutable { .. }), "{err:?}");
}
