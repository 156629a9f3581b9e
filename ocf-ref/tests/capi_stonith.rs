#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `stonith.h` from C: one reset client compiled against Debian's libstonith and against
//! ocf's libocf answers the same, line for line; and a C reset through type `ocf` merges with
//! a Rust client's request for the same node into one device action.

mod capi_support;
mod nodes_support;

use std::process::Command;
use std::time::Duration;

use capi_support::{VALGRIND_ERROR, checked, report};
use nodes_support::{Layout, Nodes};
use ocf_fencing::{FenceAction, FenceRequest, Fencer};

/// The lines where ocf is stricter than the `null` plugin: (line prefix, libstonith's
/// answer, ocf's answer).
const STRONGER: [(&str, &str, &str); 2] = [
    ("stronger: reset op 0: ", "0", "3"),
    ("stronger: reset op 4: ", "0", "3"),
];

#[test]
fn the_reset_client_answers_like_libstonith() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("stonith.cfg");
    std::fs::write(&config, "# hosts of the null device\nx Y\n").unwrap();
    let ocf_bin = capi_support::compile_ocf("reset_client.c", &dir.path().join("reset_ocf"));
    let log = dir.path().join("valgrind.log");
    let ocf = checked(&ocf_bin, &log)
        .args(["null"])
        .arg(&config)
        .output()
        .unwrap();
    let ocf_out = String::from_utf8_lossy(&ocf.stdout).into_owned();
    assert_ne!(ocf.status.code(), Some(VALGRIND_ERROR), "{}", report(&log));
    assert!(
        ocf.status.success(),
        "{ocf_out}\n{}",
        String::from_utf8_lossy(&ocf.stderr)
    );

    // What ocf says on its own (pointers libstonith would crash on).
    for expected in [
        "ocf-only: status NULL: 3",
        "ocf-only: reset NULL: 3",
        "ocf-only: hostlist NULL: NULL",
        "ocf-only: set NULL list: 3",
        "ocf-only: set NULL value: 3",
        "ocf-only: set good: 0",
        "ocf-only: reset NULL node: 3",
        "ocf-only: new NULL: NULL",
        "ocf-only: foreign handle status: 3",
        "ocf-only: last error set: 1",
    ] {
        assert!(
            ocf_out.lines().any(|l| l == expected),
            "{expected:?} missing:\n{ocf_out}"
        );
    }

    // The same program, statically linked, says the same.
    let static_bin =
        capi_support::compile_ocf_static("reset_client.c", &dir.path().join("reset_static"));
    let st = Command::new(&static_bin)
        .arg("null")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&st.stdout), ocf_out);

    if !capi_support::require(
        "cluster-glue-dev (libstonith)",
        capi_support::have_libstonith(),
    ) {
        return;
    }
    let glue_bin =
        capi_support::compile_libstonith("reset_client.c", &dir.path().join("reset_glue"));
    let glue = Command::new(&glue_bin)
        .arg("null")
        .arg(&config)
        .output()
        .unwrap();
    assert!(glue.status.success());
    let glue_out = String::from_utf8_lossy(&glue.stdout).into_owned();

    let ours: Vec<&str> = ocf_out
        .lines()
        .filter(|l| !l.starts_with("ocf-only: "))
        .collect();
    let theirs: Vec<&str> = glue_out.lines().collect();
    assert_eq!(
        ours.len(),
        theirs.len(),
        "ocf:\n{ocf_out}\nlibstonith:\n{glue_out}"
    );
    let mut compared = 0;
    for (o, g) in ours.iter().zip(&theirs) {
        if let Some((prefix, want_glue, want_ocf)) =
            STRONGER.iter().find(|(p, _, _)| o.starts_with(p))
        {
            assert_eq!(*g, format!("{prefix}{want_glue}"), "libstonith changed");
            assert_eq!(*o, format!("{prefix}{want_ocf}"));
            continue;
        }
        assert_eq!(o, g, "ocf:\n{ocf_out}\nlibstonith:\n{glue_out}");
        compared += 1;
    }
    // The comparison covered the whole program, not a prefix of it.
    assert!(compared >= 38, "only {compared} lines compared");
    eprintln!(
        "differential: {compared} lines the same as libstonith, {} stronger by design",
        STRONGER.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_c_reset_and_a_rust_request_are_one_device_action() {
    let nodes = Nodes::start(
        3,
        &Layout {
            with_device: vec![1, 2],
            delay_s: 2,
            ..Layout::default()
        },
    );
    nodes.wait_for_view(&[0, 1, 2]).await;
    let bin = capi_support::compile_ocf("reset_race.c", &nodes.dir.path().join("reset_race"));
    let log = nodes.dir.path().join("valgrind.log");
    let mut c = checked(&bin, &log);
    c.arg(&nodes.nodes[0].socket).arg("N3");
    let c_client = tokio::task::spawn_blocking(move || c.output().unwrap());
    // The Rust client asks on another node while the C client's request is under way.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let request = FenceRequest::new(
        "n3".parse().unwrap(),
        FenceAction::Reboot,
        "rust-client@n2".parse().unwrap(),
    )
    .with_timeout(Duration::from_secs(60));
    let rust = nodes.nodes[1].fencer().fence(request).await;
    let out = c_client.await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_ne!(out.status.code(), Some(VALGRIND_ERROR), "{}", report(&log));
    assert!(out.status.success(), "{text}\n{}", nodes.logs());
    let record = rust.unwrap_or_else(|e| panic!("the Rust request failed: {e}\n{text}"));
    for line in [
        "set: 0",
        "status: 0",
        "hostlist: n1 n2 n3",
        "reset: 0",
        "reset unknown: 4",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} missing:\n{text}");
    }
    let calls = nodes.calls();
    assert_eq!(calls.len(), 1, "device calls: {calls:?}\n{text}");
    let requesters: Vec<String> = record.requesters.iter().map(ToString::to_string).collect();
    assert!(
        requesters.iter().any(|r| r == "c-client@n1")
            && requesters.iter().any(|r| r == "rust-client@n2"),
        "one incident for both: {requesters:?}"
    );
}

/// The complete example of the guide's "From C" chapter, as printed there.
fn guide_example() -> String {
    let guide = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/src/c.md"),
    )
    .unwrap();
    let start = guide
        .find("```c\n/* who.c")
        .expect("the example in docs/src/c.md")
        + 5;
    let end = start + guide[start..].find("```").unwrap();
    guide[start..end].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guides_example_builds_from_the_installed_library_and_resets_once() {
    let nodes = Nodes::start(
        3,
        &Layout {
            with_device: vec![1],
            ..Layout::default()
        },
    );
    let dir = nodes.dir.path().to_owned();
    // Installed by the documented command, found by pkg-config.
    let prefix = dir.join("prefix");
    let install = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/install-capi"
    ))
    .arg("--prefix")
    .arg(&prefix)
    .arg("--from")
    .arg(capi_support::lib_dir())
    .output()
    .unwrap();
    assert!(
        install.status.success(),
        "{}",
        String::from_utf8_lossy(&install.stderr)
    );
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "ocf"])
        .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
        .output()
        .unwrap();
    assert!(flags.status.success());
    let source = dir.join("who.c");
    std::fs::write(&source, guide_example()).unwrap();
    let bin = dir.join("who");
    let cc = Command::new("cc")
        .args(["-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&bin)
        .arg(&source)
        .args(String::from_utf8_lossy(&flags.stdout).split_whitespace())
        .arg(format!("-Wl,-rpath,{}", prefix.join("lib").display()))
        .output()
        .unwrap();
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );

    nodes.wait_for_view(&[0, 1, 2]).await;
    let log = dir.join("valgrind.log");
    let mut run = checked(&bin, &log);
    run.args(["--once", "N3"])
        .env("OCF_SOCKET", &nodes.nodes[0].socket);
    let out = tokio::task::spawn_blocking(move || run.output().unwrap())
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_ne!(out.status.code(), Some(VALGRIND_ERROR), "{}", report(&log));
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "can reset: n1 n2 n3", "{text}");
    assert_eq!(lines[1], "reset N3: done", "{text}");
    assert!(
        lines[2].starts_with("membership ") && lines[2].ends_with("(primary): n1(me) n2 n3"),
        "{text}"
    );
    assert_eq!(nodes.calls().len(), 1, "{:?}", nodes.calls());
}

/// A node that accepts and hangs up at once: each call is `S_ACCESS` (or a failed
/// activation), and the C program lives (a `SIGPIPE` would kill it).
#[test]
fn a_node_that_hangs_up_is_an_error_not_a_signal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rude.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = std::sync::Arc::clone(&stop);
    // The node reads each request and hangs up without an answer, except that it gives its
    // id to `local_node` first: the membership client's next request (`subscribe`) then goes
    // to a closed socket, where a SIGPIPE would come.
    let rude = std::thread::spawn(move || {
        use std::io::{BufRead, Write};
        let mut hung_up = 0u32;
        for s in listener.incoming() {
            if stopping.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let Ok(mut s) = s else { continue };
            let mut line = String::new();
            let _ = std::io::BufReader::new(&s).read_line(&mut line);
            if line.contains("local_node") {
                let _ = s.write_all(b"{\"ok\":true,\"node_id\":1}\n");
            }
            drop(s);
            hung_up += 1;
        }
        hung_up
    });
    let bin = capi_support::compile_ocf("hangup_client.c", &dir.path().join("hangup"));
    let out = Command::new(&bin).arg(&path).arg("300").output().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(std::os::unix::net::UnixStream::connect(&path));
    let hung_up = rude.join().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "killed or failed: {:?} {text}",
        out.status
    );
    assert_eq!(text.trim(), "ok=0 access=300 other=0 activations_failed=30");
    assert!(hung_up >= 300, "the node hung up on {hung_up} calls");
}
