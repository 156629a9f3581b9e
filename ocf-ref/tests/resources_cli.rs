#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `ocf ra` as a user runs it: list, meta, run (exit codes) and test, with `OCF_ROOT`
//! honoured, against the real agents and the broken fixtures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const OCF: &str = env!("CARGO_BIN_EXE_ocf");

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn ocf(args: &[&str]) -> Output {
    Command::new(OCF)
        .args(args)
        .env_remove("OCF_ROOT")
        .env("OCF_CACHE_DIR", "") // no meta-data cache: nothing written outside the test
        .output()
        .unwrap()
}

fn ocf_in(root: &Path, args: &[&str]) -> Output {
    Command::new(OCF)
        .args(args)
        .env("OCF_ROOT", root)
        .env("OCF_CACHE_DIR", "")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn list_shows_installed_agents_and_honours_ocf_root() {
    let out = ocf(&["ra", "list", "--provider", "pacemaker"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.lines().any(|l| l == "ocf:pacemaker:Stateful"),
        "{stdout}"
    );

    let out = ocf_in(&fixtures(), &["ra", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"ocf:broken:hang") && ids.contains(&"ocf:test:envdump"),
        "{ids:?}"
    );
    assert!(
        !ids.iter().any(|i| i.contains("heartbeat")),
        "OCF_ROOT ignored: {ids:?}"
    );
}

#[test]
fn meta_prints_parsed_meta_data() {
    let out = ocf(&["ra", "meta", "ocf:pacemaker:Stateful", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["name"], "Stateful");
    assert_eq!(json["api_version"], "1.1");
    let out = ocf(&["ra", "meta", "ocf:heartbeat:Dummy"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("monitor"));

    let out = ocf_in(&fixtures(), &["ra", "meta", "ocf:broken:bad-meta"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cut short"),
        "{}",
        text(&out)
    );
    let out = ocf(&["ra", "meta", "heartbeat:Dummy"]);
    assert_eq!(
        out.status.code(),
        Some(64),
        "a malformed id is a usage error: {}",
        text(&out)
    );
}

#[test]
fn run_exits_with_the_agents_ocf_code() {
    let dir = tempfile::tempdir().unwrap();
    let state = format!("state={}", dir.path().join("d.state").display());
    let run = |action: &str| {
        ocf(&[
            "ra",
            "run",
            "ocf:heartbeat:Dummy",
            action,
            "-p",
            &state,
            "--instance",
            "cli",
        ])
    };
    assert_eq!(run("monitor").status.code(), Some(7));
    assert_eq!(run("start").status.code(), Some(0));
    assert_eq!(run("monitor").status.code(), Some(0));
    assert_eq!(run("stop").status.code(), Some(0));
    let out = ocf(&[
        "ra",
        "run",
        "ocf:heartbeat:Dummy",
        "monitor",
        "-p",
        &state,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(7));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["outcome"]["status"]["kind"], "exited");
    assert_eq!(json["outcome"]["status"]["code"], 7);

    // Parameters ocf finds wrong: a warning naming the problem, and the agent's own answer
    // (Dummy ignores an unknown parameter and starts).
    let with_colour = |action: &str, strict: bool| {
        let mut args = vec![
            "ra",
            "run",
            "ocf:heartbeat:Dummy",
            action,
            "-p",
            &state,
            "-p",
            "colour=red",
        ];
        if strict {
            args.push("--strict");
        }
        ocf(&args)
    };
    let out = with_colour("start", true);
    assert_eq!(
        out.status.code(),
        Some(65),
        "strict refuses: {}",
        text(&out)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("colour"));
    assert_eq!(
        with_colour("monitor", true).status.code(),
        Some(7),
        "not started"
    );
    let out = with_colour("start", false);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("colour"));
    assert_eq!(with_colour("monitor", true).status.code(), Some(0));
    assert_eq!(
        with_colour("stop", true).status.code(),
        Some(0),
        "strict never blocks a stop"
    );
}

#[test]
fn run_reports_broken_agents_clearly() {
    let root = fixtures();
    let out = ocf_in(
        &root,
        &[
            "ra",
            "run",
            "ocf:broken:hang",
            "start",
            "--timeout",
            "300ms",
        ],
    );
    assert_eq!(out.status.code(), Some(124), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("timed out after 300 ms"),
        "{}",
        text(&out)
    );

    let out = ocf_in(&root, &["ra", "run", "ocf:broken:exit42", "start"]);
    assert_eq!(out.status.code(), Some(42), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an OCF exit code"));

    let out = ocf_in(
        &root,
        &["ra", "run", "ocf:broken:killed", "monitor", "--json"],
    );
    assert_eq!(out.status.code(), Some(128 + 9), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["outcome"]["status"]["kind"], "signaled");

    let out = ocf_in(&root, &["ra", "run", "ocf:broken:not-executable", "start"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let out = ocf_in(&root, &["ra", "run", "ocf:broken:absent", "start"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not installed"));
}

#[test]
fn test_passes_dummy_and_stateful() {
    let dir = tempfile::tempdir().unwrap();
    for agent in [
        "ocf:heartbeat:Dummy",
        "ocf:pacemaker:Dummy",
        "ocf:pacemaker:Stateful",
    ] {
        let state = format!(
            "state={}",
            dir.path().join(agent.replace(':', "-")).display()
        );
        let out = ocf(&["ra", "test", agent, "-p", &state, "--json"]);
        assert_eq!(out.status.code(), Some(0), "{agent}: {}", text(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["schema"], 1);
        assert_eq!(report["passed"], true);
        let checks = report["checks"].as_array().unwrap();
        let status_of = |name: &str| {
            checks
                .iter()
                .find(|c| c["name"] == name)
                .map(|c| c["outcome"].as_str().unwrap().to_owned())
        };
        assert_eq!(
            status_of("resources.start_idempotent").as_deref(),
            Some("pass")
        );
        assert_eq!(
            status_of("resources.monitor_stopped").as_deref(),
            Some("pass")
        );
        let promoted = status_of("resources.monitor_promoted");
        if agent.ends_with("Stateful") {
            assert_eq!(promoted.as_deref(), Some("pass"), "{agent}");
        } else {
            assert_eq!(promoted.as_deref(), Some("skip"), "{agent}");
        }
        assert!(
            !dir.path().join(agent.replace(':', "-")).exists(),
            "{agent} left its state behind"
        );
    }
}

#[test]
fn test_fails_broken_agents_with_reasons() {
    let root = fixtures();
    let out = ocf_in(&root, &["ra", "test", "ocf:broken:bad-meta"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FAIL  resources.metadata:"), "{stdout}");

    // exit42's monitor of a stopped resource returns 42: mandatory failure, explained.
    let out = ocf_in(&root, &["ra", "test", "ocf:broken:exit42", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed: Vec<&serde_json::Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["outcome"] == "fail")
        .collect();
    assert!(
        failed
            .iter()
            .any(|c| c["reason"].as_str().unwrap().contains("42")),
        "{failed:#?}"
    );
}

/// The keys of a JSON object, sorted.
fn keys(v: &serde_json::Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn ra_test_and_fence_test_print_one_json_shape() {
    let dir = tempfile::tempdir().unwrap();
    let state = format!("state={}", dir.path().join("ra-state").display());
    let ra = ocf(&["ra", "test", "ocf:heartbeat:Dummy", "-p", &state, "--json"]);
    assert_eq!(ra.status.code(), Some(0), "{}", text(&ra));
    let sf = format!("status_file={}", dir.path().join("fence-state").display());
    let fence = ocf(&["fence", "test", "fence_dummy", "-p", &sf, "--json"]);
    assert_eq!(fence.status.code(), Some(0), "{}", text(&fence));
    let ra: serde_json::Value = serde_json::from_slice(&ra.stdout).unwrap();
    let fence: serde_json::Value = serde_json::from_slice(&fence.stdout).unwrap();
    let top = [
        "checks",
        "duration_ms",
        "implementation",
        "passed",
        "schema",
        "suite",
    ];
    for report in [&ra, &fence] {
        assert_eq!(keys(report), top, "{report}");
        assert_eq!(report["schema"], 1);
        for c in report["checks"].as_array().unwrap() {
            let mut k = keys(c);
            k.retain(|k| k != "reason" && k != "duration_ms");
            assert_eq!(k, ["name", "outcome", "promise"], "{c}");
            let outcome = c["outcome"].as_str().unwrap();
            assert!(["pass", "fail", "skip", "warn"].contains(&outcome), "{c}");
            assert_eq!(c.get("reason").is_some(), outcome != "pass", "{c}");
        }
    }
    assert_eq!(ra["suite"], "resources");
    assert_eq!(fence["suite"], "fence_device");
}

#[test]
fn a_missing_agent_gets_the_cli_s_advice_and_the_library_s_reason() {
    let root = fixtures();
    let out = ocf_in(&root, &["ra", "meta", "ocf:broken:no-such-agent"]);
    assert_eq!(out.status.code(), Some(70), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The library says what and where; the command line says what to run.
    assert!(
        stderr.contains("ocf:broken:no-such-agent not found"),
        "{stderr}"
    );
    assert!(stderr.contains("no-such-agent"), "{stderr}");
    assert!(
        stderr.contains("`ocf ra list` shows the installed agents"),
        "{stderr}"
    );
}
