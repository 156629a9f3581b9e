#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Differential test: through `ocf ra run`, every installed agent gives the exit code it gives
//! when run by hand with the same OCF environment. The agent's own answer is the truth, so the
//! number of mismatches must be 0.
//!
//! Every installed agent (`/usr/lib/ocf/resource.d`) runs `meta-data`, `validate-all` and
//! `monitor` (a probe: no parameters, interval 0), once directly (`env -i ... agent action`)
//! and once as `ocf ra run agent action --timeout 10s`. The whole loop runs inside new PID,
//! network and mount namespaces (`unshare --pid --fork --kill-child --net --mount`), with
//! tmpfs over `/tmp` and `/run/resource-agents`: whatever an agent starts or writes dies or
//! vanishes with the namespace, even when the test fails. Runs are bounded (10 s each, as
//! both `timeout(1)` and ocf count it; both report a timeout as 124) and three run at once.
//!
//! `OCF_DIFFERENTIAL_BIN=/path/to/ocf` compares another build (e.g. an older one) instead of
//! this one (not under `/tmp`, which the namespace hides); the test prints every mismatch and
//! their count. Measured: the build before the hardening fix differed in 125 of 462 runs
//! (ocf's own parameter check answering 6 for the agent); this one in 0.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

const ROOT: &str = "/usr/lib/ocf";

/// Seconds each run may take (direct and through ocf alike).
const RUN_TIMEOUT_S: u32 = 10;

/// How many runs go at once (the machine has 2 cores; agents mostly wait).
const PARALLEL: u32 = 3;

/// Runs one `<provider> <type> <action>` both ways and prints
/// `ocf:<provider>:<type> <action> <direct code> <ocf code>`.
const RUN_ONE: &str = r#"
prov=$1 type=$2 action=$3
agent="$OCF_ROOT_DIR/resource.d/$prov/$type"
env -i PATH="$SAFE_PATH" HOME=/root \
    OCF_ROOT="$OCF_ROOT_DIR" OCF_RA_VERSION_MAJOR=1 OCF_RA_VERSION_MINOR=1 \
    OCF_RESOURCE_INSTANCE="$type" OCF_RESOURCE_TYPE="$type" OCF_RESOURCE_PROVIDER="$prov" \
    OCF_RESKEY_CRM_meta_timeout="${RUN_TIMEOUT}000" OCF_RESKEY_CRM_meta_interval=0 \
    timeout -k 2 "$RUN_TIMEOUT" "$agent" "$action" </dev/null >/dev/null 2>&1
direct=$?
env -i PATH="$SAFE_PATH" HOME=/root OCF_ROOT="$OCF_ROOT_DIR" OCF_CACHE_DIR=/tmp/ocf-cache \
    timeout -k 2 120 "$OCF_BIN" ra run "ocf:$prov:$type" "$action" --timeout "${RUN_TIMEOUT}s" \
    </dev/null >/dev/null 2>&1
through=$?
echo "ocf:$prov:$type $action $direct $through"
"#;

/// The namespace's init: private tmpfs mounts, loopback up, then the runs.
const LOOP: &str = r#"
set -u
mount -t tmpfs tmpfs /tmp || exit 90
mkdir -p /run/resource-agents && mount -t tmpfs tmpfs /run/resource-agents || exit 91
ip link set lo up 2>/dev/null
xargs -P "$PARALLEL" -n 3 sh -c "$RUN_ONE" sh
"#;

/// Kills the namespace (its init, and with it every process in it) if the test ends early.
struct Namespace(std::process::Child);

impl Drop for Namespace {
    fn drop(&mut self) {
        // --kill-child: the namespace's init dies with unshare, and every process with it.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Same answer: equal codes, or both timed out (timeout(1) gives 124, or 137 after -k).
fn agree(direct: i32, through: i32) -> bool {
    direct == through || (matches!(direct, 124 | 137) && through == 124)
}

#[test]
fn every_installed_agent_answers_the_same_through_ocf_as_run_by_hand() {
    if !Path::new(ROOT).join("resource.d").is_dir() {
        eprintln!("skipping: no agents under {ROOT}; run scripts/install-peers.sh");
        return;
    }
    if Command::new("unshare").arg("--version").output().is_err() {
        eprintln!("skipping: unshare (util-linux) is not installed");
        return;
    }
    let agents: Vec<_> = ocf_ref::resources::list(Path::new(ROOT), None)
        .unwrap()
        .into_iter()
        .filter(|a| a.executable)
        .collect();
    assert!(agents.len() > 10, "only {} agents installed", agents.len());
    let mut jobs = String::new();
    for a in &agents {
        for action in ["meta-data", "validate-all", "monitor"] {
            let _ = writeln!(jobs, "{} {} {action}", a.id.provider(), a.id.agent_type());
        }
    }

    let bin = std::env::var("OCF_DIFFERENTIAL_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_ocf").to_owned());
    let child = Command::new("unshare")
        .args(["--pid", "--fork", "--kill-child", "--net", "--mount"])
        .args(["--propagation", "private", "sh", "-c", LOOP])
        .env("RUN_ONE", RUN_ONE)
        .env("PARALLEL", PARALLEL.to_string())
        .env("RUN_TIMEOUT", RUN_TIMEOUT_S.to_string())
        .env("OCF_BIN", &bin)
        .env("OCF_ROOT_DIR", ROOT)
        .env("SAFE_PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ns = Namespace(child);
    {
        let mut stdin = ns.0.stdin.take().unwrap();
        stdin.write_all(jobs.as_bytes()).unwrap();
    }
    let stdout = ns.0.stdout.take().unwrap();
    let stderr = ns.0.stderr.take().unwrap();
    let err_reader =
        std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let out = std::io::read_to_string(stdout).unwrap();
    let status = ns.0.wait().unwrap();
    let err = err_reader.join().unwrap_or_default();
    assert!(
        status.success(),
        "the namespace loop failed: {status:?}\n{err}"
    );

    let mut runs = 0;
    let mut mismatches = Vec::new();
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [agent, action, direct, through] = f[..] else {
            panic!("bad line {line:?}");
        };
        let (direct, through): (i32, i32) = (direct.parse().unwrap(), through.parse().unwrap());
        runs += 1;
        if !agree(direct, through) {
            mismatches.push(format!(
                "{agent} {action}: {direct} by hand, {through} through ocf"
            ));
        }
    }
    eprintln!(
        "{runs} runs of {} agents through {bin}: {} mismatches",
        agents.len(),
        mismatches.len()
    );
    for m in &mismatches {
        eprintln!("  {m}");
    }
    assert_eq!(
        runs,
        agents.len() * 3,
        "some runs are missing:\n{out}\n{err}"
    );
    assert!(
        mismatches.is_empty(),
        "{} of {runs} runs differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
