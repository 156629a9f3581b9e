//! `ocf members --backend corosync` (the library function behind it), run as a separate
//! process against a real single-node corosync: the JSON view, the event stream, and the exit
//! when corosync is not running.

#![cfg(all(feature = "corosync", feature = "cli"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod corosync_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use corosync_support::{
    Corosync, can_run, corosync_conf, in_netns, quorumtool_members, runtime, workdir, write,
};

/// Set (to `json`, `text` or `watch`) for the child process running the command.
const CHILD: &str = "OCF_COROSYNC_CLI_CHILD";

/// The command half of the tests below: they run this binary again with only this test
/// selected. Without the variable it returns at once.
#[test]
fn child_runs_members() {
    let Some(mode) = std::env::var_os(CHILD) else {
        return;
    };
    let (json, watch) = match mode.to_str() {
        Some("json") => (true, false),
        Some("watch") => (true, true),
        _ => (false, false),
    };
    let result = runtime().block_on(ocf_ref::cli::corosync::run_members(json, watch));
    match result {
        Ok(code) => std::process::exit(i32::from(code != std::process::ExitCode::SUCCESS)),
        Err(e) => {
            eprintln!("ocf: {e}");
            std::process::exit(70);
        }
    }
}

fn child(mode: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child_runs_members", "--nocapture"])
        .env(CHILD, mode);
    cmd
}

fn single_node(dir: &std::path::Path) -> Corosync {
    let conf = dir.join("corosync.conf");
    let nodes = [(7, "solo".to_string(), "127.0.0.1".to_string())];
    write(&conf, &corosync_conf("ocfcli", 1000, &nodes));
    let c = Corosync::start(None, &conf, &dir.join("state"), &dir.join("corosync.log"));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while quorumtool_members(None).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "corosync did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    c
}

#[test]
fn members_json_and_not_running() {
    if !can_run("members_json_and_not_running") {
        return;
    }
    in_netns(None, || {
        // No corosync in this fresh namespace: a clear message and a non-zero exit.
        let out = child("json").output().unwrap();
        assert_eq!(out.status.code(), Some(70));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("corosync") && err.contains("running"), "{err}");

        let dir = workdir();
        let _corosync = single_node(dir.path());
        let out = child("json").output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let start = stdout.find("\n{").unwrap() + 1;
        let end = stdout.rfind("\n}").unwrap() + 2;
        let view: serde_json::Value = serde_json::from_str(&stdout[start..end]).unwrap();
        assert_eq!(view["members"][0]["id"], 7);
        assert_eq!(view["members"][0]["name"], "solo");
        assert_eq!(view["quorate"], true);
        assert_eq!(view["view_id"]["coordinator"], 7);
    })
    .join()
    .unwrap();
}

#[test]
fn members_watch_streams_events() {
    if !can_run("members_watch_streams_events") {
        return;
    }
    in_netns(None, || {
        let dir = workdir();
        let mut corosync = single_node(dir.path());
        let mut watcher = child("watch")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = watcher.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) {
                    let _ = tx.send(event);
                }
            }
        });
        // Give the watcher time to subscribe, then take corosync away: it reports evicted.
        std::thread::sleep(Duration::from_secs(1));
        corosync.kill9();
        let event = rx.recv_timeout(Duration::from_secs(30));
        let _ = watcher.kill();
        let _ = watcher.wait();
        let event = event.expect("an event line from --watch");
        assert_eq!(event["kind"], "evicted", "{event}");
        // seq 1 installed the view the watcher started from.
        assert_eq!(event["seq"], 2);
        assert_eq!(event["view"]["members"][0]["name"], "solo");
    })
    .join()
    .unwrap();
}
