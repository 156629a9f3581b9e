#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The conformance tester in the library: it passes a good agent and names what a bad one
//! gets wrong (idempotence, probe semantics, advertised timeouts).

#[path = "support/faulty_agent.rs"]
mod faulty_agent;

use faulty_agent::Faulty;

use ocf_conformance::{CheckOutcome, Report};
use ocf_ref::resources::NativeDummy;
use ocf_ref::resources::tester::{TestConfig, test_agent};

/// How check `name` ended, in the JSON's word (`pass`, `fail`, `skip`, `warn`).
fn status(report: &Report, name: &str) -> Option<&'static str> {
    report
        .checks
        .iter()
        .find(|c| c.name == name)
        .map(|c| match c.outcome {
            CheckOutcome::Pass => "pass",
            CheckOutcome::Fail(_) => "fail",
            CheckOutcome::Warn(_) => "warn",
            _ => "skip",
        })
}

#[tokio::test]
async fn the_native_dummy_passes() {
    let mut seen = 0;
    let report = test_agent(&NativeDummy::new(), &TestConfig::new("t"), |_| seen += 1).await;
    assert!(report.passed(), "{report}");
    assert_eq!(seen, report.checks.len(), "progress saw every check");
    assert_eq!(status(&report, "resources.monitor_migrated"), Some("pass"));
    assert_eq!(status(&report, "resources.reload_agent"), Some("pass"));
    // Not a script: the unknown-action probe is skipped, not failed.
    assert_eq!(status(&report, "lint.unknown_action"), Some("skip"));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["schema"], 1);
    assert_eq!(json["suite"], "resources");
    assert_eq!(json["passed"], true);
    assert_eq!(json["implementation"], "ocf:native:Dummy");
    assert!(json["duration_ms"].is_u64(), "{json}");
}

/// A native agent that gets things wrong on purpose.
#[tokio::test]
async fn a_correct_minimal_agent_passes_with_skips() {
    let report = test_agent(&Faulty::new(), &TestConfig::new("t"), |_| {}).await;
    assert!(report.passed(), "{report}");
    assert_eq!(status(&report, "resources.validate_all"), Some("skip"));
    assert_eq!(status(&report, "resources.promote"), Some("skip"));
}

#[tokio::test]
async fn a_non_idempotent_start_fails() {
    let agent = Faulty {
        strict_start: true,
        ..Faulty::new()
    };
    let report = test_agent(&agent, &TestConfig::new("t"), |_| {}).await;
    assert!(!report.passed());
    assert_eq!(status(&report, "resources.start_idempotent"), Some("fail"));
    // The resource was still stopped at the end.
    assert!(!agent.is_running());
}

#[tokio::test]
async fn a_probe_that_errors_fails_and_the_lifecycle_is_not_run() {
    let agent = Faulty {
        bad_probe: true,
        ..Faulty::new()
    };
    let report = test_agent(&agent, &TestConfig::new("t"), |_| {}).await;
    assert!(!report.passed());
    assert_eq!(status(&report, "resources.probe_stopped"), Some("fail"));
    // Nothing was started: the lifecycle is skipped, not run.
    assert_eq!(status(&report, "resources.start"), Some("skip"));
}

#[tokio::test]
async fn an_action_past_its_advertised_timeout_fails() {
    let agent = Faulty {
        slow_stop: true,
        ..Faulty::new()
    };
    let report = test_agent(&agent, &TestConfig::new("t"), |_| {}).await;
    assert!(!report.passed());
    let stop = report
        .checks
        .iter()
        .find(|c| c.name == "resources.stop")
        .unwrap();
    let CheckOutcome::Fail(why) = &stop.outcome else {
        panic!("stop did not fail: {report}");
    };
    assert!(why.contains("advertised timeout of 100 ms"), "{why}");
    assert_eq!(status(&report, "resources.within_timeouts"), Some("fail"));
}

#[tokio::test]
async fn unknown_parameters_fail_before_anything_runs() {
    let config = TestConfig::new("t").params([("nope".to_owned(), "1".to_owned())].into());
    let report = test_agent(&NativeDummy::new(), &config, |_| {}).await;
    assert!(!report.passed());
    assert_eq!(status(&report, "resources.params_valid"), Some("fail"));
    assert_eq!(status(&report, "resources.start"), None);
}

// --- Stricter than ocf-tester: what it catches, `ocf ra test` catches too -------------------
//
// Each lax fixture (tests/fixtures/resource.d/lax) breaks one rule. The test runs the real
// ocf-tester on it to prove the rule is one ocf-tester enforces, then `ocf ra test`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// An OCF root in a temp dir (world-readable, as ocf-tester runs meta-data as `nobody`)
/// holding copies of the lax fixtures, and the state files the agents keep.
struct LaxRoot {
    dir: tempfile::TempDir,
}

impl LaxRoot {
    fn new() -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let lax = dir.path().join("resource.d/lax");
        std::fs::create_dir_all(&lax).unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/resource.d/lax");
        for e in std::fs::read_dir(src).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), lax.join(e.file_name())).unwrap();
        }
        for d in [dir.path(), &dir.path().join("resource.d"), &lax] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Self { dir }
    }

    fn agent(&self, name: &str) -> PathBuf {
        self.dir.path().join("resource.d/lax").join(name)
    }

    fn state(&self, name: &str) -> String {
        format!("state={}", self.dir.path().join(name).display())
    }
}

/// Runs the real ocf-tester on `agent`: whether it passed, and what it printed.
fn ocf_tester(agent: &Path, params: &[&str]) -> (bool, String) {
    let mut cmd = Command::new("/usr/sbin/ocf-tester");
    cmd.env("OCF_ROOT", "/usr/lib/ocf")
        .args(["-n", "ocf-lax-test"]);
    for p in params {
        cmd.args(["-o", p]);
    }
    let out = cmd.arg(agent).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Runs `ocf ra test AGENT -p ... --json` with `OCF_ROOT` at `root`: its exit code and report.
fn ocf_ra_test(root: &Path, agent: &str, params: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ocf"));
    cmd.env("OCF_ROOT", root)
        .args(["ra", "test", agent, "--json"]);
    for p in params {
        cmd.args(["-p", p]);
    }
    let out = cmd.output().unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{agent}: {e}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), report)
}

/// The outcome and reason of check `name` in a JSON report.
fn check_of(report: &serde_json::Value, name: &str) -> (String, String) {
    let Some(c) = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
    else {
        panic!("no check {name}: {report}");
    };
    (
        c["outcome"].as_str().unwrap().to_owned(),
        c["reason"].as_str().unwrap_or_default().to_owned(),
    )
}

#[test]
fn a_broken_recurring_monitor_fails_as_in_ocf_tester() {
    let root = LaxRoot::new();
    // ocf-tester may leave its resource running (it aborts on some failures): its own state.
    let (passed, out) = ocf_tester(
        &root.agent("recurring-monitor"),
        &[&root.state("tester-state")],
    );
    assert!(!passed, "{out}");
    assert!(
        out.contains("Monitoring an active resource should return 0"),
        "{out}"
    );
    let state = root.state("recurring");
    let (code, report) = ocf_ra_test(root.dir.path(), "ocf:lax:recurring-monitor", &[&state]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(check_of(&report, "resources.monitor_running").0, "pass");
    let (status, detail) = check_of(&report, "resources.monitor_recurring");
    assert_eq!(status, "fail", "{detail}");
    assert!(detail.contains("expected 0"), "{detail}");
    // The resource was stopped at the end.
    assert!(!root.dir.path().join("recurring").exists());
}

#[test]
fn a_second_promote_or_demote_that_fails_fails_as_in_ocf_tester() {
    for (again, ocf_tester_says, check) in [
        (
            "promote",
            "Promoting a promoted resource should not fail",
            "resources.promote_idempotent",
        ),
        (
            "demote",
            "Demoting a demoted resource should not fail",
            "resources.demote_idempotent",
        ),
    ] {
        let root = LaxRoot::new();
        let state = root.state("promotable");
        let refuse = format!("refuse_again={again}");
        let (passed, out) = ocf_tester(
            &root.agent("promote-twice"),
            &[&root.state("tester-state"), &refuse],
        );
        assert!(!passed, "{again}: {out}");
        assert!(out.contains(ocf_tester_says), "{again}: {out}");
        let (code, report) =
            ocf_ra_test(root.dir.path(), "ocf:lax:promote-twice", &[&state, &refuse]);
        assert_eq!(code, Some(1), "{again}: {report}");
        assert_eq!(check_of(&report, check).0, "fail", "{again}: {report}");
        assert_eq!(check_of(&report, "resources.promote").0, "pass");
        assert_eq!(check_of(&report, "resources.demote").0, "pass");
        assert!(!root.dir.path().join("promotable").exists(), "{again}");
    }
}

#[test]
fn answering_2_to_unadvertised_actions_fails_as_in_ocf_tester() {
    let root = LaxRoot::new();
    let state = root.state("two");
    let (passed, out) = ocf_tester(&root.agent("answers-two"), &[&root.state("tester-state")]);
    assert!(!passed, "{out}");
    assert!(
        out.contains("The notify action cannot fail and must return 0"),
        "{out}"
    );
    let (code, report) = ocf_ra_test(root.dir.path(), "ocf:lax:answers-two", &[&state]);
    assert_eq!(code, Some(1), "{report}");
    let (status, detail) = check_of(&report, "resources.unadvertised_actions");
    assert_eq!(status, "fail", "{detail}");
    for action in ["notify", "promote", "demote", "reload", "migrate_to"] {
        assert!(
            detail.contains(&format!("{action} is not advertised but answered")),
            "{action}: {detail}"
        );
    }
    // What it does implement passes: only the unimplemented answers fail it.
    assert_eq!(check_of(&report, "resources.monitor_recurring").0, "pass");
    assert_eq!(check_of(&report, "resources.stop_idempotent").0, "pass");
}

#[test]
fn dummy_and_stateful_pass_the_stricter_checks() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new("/usr/lib/ocf");
    // ocf-tester leaves Dummy running (its last migrate_from starts it): its own state file.
    let dummy_state = format!("state={}", dir.path().join("tester-dummy").display());
    // A control: the ocf-tester harness above can pass an agent.
    let (passed, out) = ocf_tester(&root.join("resource.d/heartbeat/Dummy"), &[&dummy_state]);
    assert!(passed, "{out}");
    for (agent, file) in [
        ("ocf:heartbeat:Dummy", "dummy"),
        ("ocf:pacemaker:Stateful", "stateful"),
    ] {
        let state = format!("state={}", dir.path().join(file).display());
        let (code, report) = ocf_ra_test(root, agent, &[&state]);
        assert_eq!(code, Some(0), "{agent}: {report}");
        for check in [
            "resources.monitor_recurring",
            "resources.unadvertised_actions",
            "resources.start_idempotent",
            "resources.stop_idempotent",
        ] {
            assert_eq!(check_of(&report, check).0, "pass", "{agent} {check}");
        }
        if agent.ends_with("Stateful") {
            for check in [
                "resources.notify",
                "resources.demote_unpromoted",
                "resources.promote_idempotent",
                "resources.monitor_promoted_recurring",
                "resources.demote_idempotent",
            ] {
                assert_eq!(check_of(&report, check).0, "pass", "{agent} {check}");
            }
        }
    }
}
