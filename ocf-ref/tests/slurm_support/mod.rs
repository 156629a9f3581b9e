//! A real Slurm on one machine for the HPC tests: munged, slurmctld and one slurmd per node
//! (`NodeName=nX NodeHostname=localhost NodeAddr=127.0.0.1 Port=<free port>`), all in a
//! scratch directory. On drop every daemon gets SIGTERM, then SIGKILL if it lingers, and is
//! reaped; the directory goes with it. Also a runner for `ocf slurm bridge` that collects
//! its JSON lines.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::BufRead as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One daemon we started: stopped by pid and waited for on drop.
pub struct Daemon {
    pub name: String,
    child: Option<Child>,
}

impl Daemon {
    fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Self {
        let log = std::fs::File::create(log).expect("log");
        let err = log.try_clone().expect("log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self {
            name: name.to_owned(),
            child: Some(child),
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL; reaped either way.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(c.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
    }
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port()
}

/// munged, slurmctld and the slurmds, with their scratch directory.
pub struct Slurm {
    pub conf: PathBuf,
    pub dir: tempfile::TempDir,
    // Field order is drop order: the slurmds first, then slurmctld, then munged.
    slurmds: Vec<Daemon>,
    slurmctld: Option<Daemon>,
    munged: Option<Daemon>,
}

impl Slurm {
    /// Starts a controller and one slurmd per name (`extra` is appended to slurm.conf), and
    /// waits until Slurm answers for every node.
    pub fn start(nodes: &[&str], extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let munge = d.join("munge");
        std::fs::create_dir(&munge).expect("munge dir");
        std::fs::set_permissions(&munge, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let key = d.join("munge.key");
        let bytes: Vec<u8> = (0..1024).map(|_| rand::random::<u8>()).collect();
        std::fs::write(&key, bytes).expect("key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).expect("chmod");
        let socket = munge.join("munge.socket");
        let munged = Daemon::spawn(
            "munged",
            Command::new("/usr/sbin/munged")
                .arg("-F")
                .arg(format!("--key-file={}", key.display()))
                .arg(format!("--socket={}", socket.display()))
                .arg(format!("--pid-file={}", munge.join("munged.pid").display()))
                .arg(format!("--log-file={}", munge.join("munged.log").display()))
                .arg(format!("--seed-file={}", munge.join("seed").display())),
            &d.join("munged.out"),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "munged did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        for sub in ["state", "spool", "log"] {
            std::fs::create_dir(d.join(sub)).expect("dir");
        }
        let mut conf = format!(
            "ClusterName=ocft\nSlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort={}\n\
             AuthType=auth/munge\nAuthInfo=socket={}\nCredType=cred/munge\nSlurmUser=root\n\
             SlurmdUser=root\nStateSaveLocation={}\nSlurmdSpoolDir={}/%n\n\
             SlurmctldPidFile={}/slurmctld.pid\nSlurmdPidFile={}/slurmd-%n.pid\n\
             SlurmctldLogFile={}/slurmctld.log\nSlurmdLogFile={}/slurmd-%n.log\n\
             ProctrackType=proctrack/pgid\nTaskPlugin=task/none\nSchedulerType=sched/builtin\n\
             SelectType=select/linear\nReturnToService=1\nSlurmdTimeout=10\nMpiDefault=none\n\
             DebugFlags=NO_CONF_HASH\n",
            free_tcp_port(),
            socket.display(),
            d.join("state").display(),
            d.join("spool").display(),
            d.display(),
            d.display(),
            d.join("log").display(),
            d.join("log").display(),
        );
        conf.push_str(extra);
        conf.push('\n');
        for n in nodes {
            let _ = writeln!(
                conf,
                "NodeName={n} NodeHostname=localhost NodeAddr=127.0.0.1 Port={} CPUs=1 State=UNKNOWN",
                free_tcp_port()
            );
            std::fs::create_dir(d.join("spool").join(n)).expect("spool");
        }
        let _ = writeln!(
            conf,
            "PartitionName=p Nodes={} Default=YES MaxTime=INFINITE State=UP",
            nodes.join(",")
        );
        let conf_path = d.join("slurm.conf");
        std::fs::write(&conf_path, conf).expect("slurm.conf");
        let mut s = Self {
            conf: conf_path,
            dir,
            slurmds: Vec::new(),
            slurmctld: None,
            munged: Some(munged),
        };
        s.start_slurmctld();
        for n in nodes {
            s.start_slurmd(n, false);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = nodes.iter().all(|n| {
                s.node(n).is_some_and(|(state, _)| {
                    state.starts_with("IDLE") && !state.contains("NOT_RESPONDING")
                })
            });
            if ready {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "Slurm did not come up\n{}",
                s.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts slurmctld (again: it reads its saved state).
    pub fn start_slurmctld(&mut self) {
        let mut cmd = Command::new("/usr/sbin/slurmctld");
        cmd.args(["-D", "-f"]).arg(&self.conf);
        if self.slurmctld.is_none() && !self.dir.path().join("state/node_state").exists() {
            cmd.arg("-i");
        }
        let log = self.dir.path().join("slurmctld.out");
        let _ = std::fs::remove_file(&log);
        self.slurmctld = Some(Daemon::spawn("slurmctld", &mut cmd, &log));
    }

    /// Stops slurmctld (SIGTERM, waited for).
    pub fn stop_slurmctld(&mut self) {
        if let Some(mut c) = self.slurmctld.take() {
            c.stop(Duration::from_secs(15));
        }
    }

    /// Starts (or restarts, with `-b`: a new boot time) the slurmd of `node`.
    pub fn start_slurmd(&mut self, node: &str, reboot: bool) {
        self.slurmds.retain(|d| d.name != node || d.child.is_some());
        let mut cmd = Command::new("/usr/sbin/slurmd");
        cmd.args(["-D", "-N", node, "-f"]).arg(&self.conf);
        if reboot {
            cmd.arg("-b");
        }
        let log = self.dir.path().join(format!("slurmd-{node}.out"));
        self.slurmds.push(Daemon::spawn(node, &mut cmd, &log));
    }

    /// kill -9 of `node`'s slurmd.
    pub fn kill9_slurmd(&mut self, node: &str) {
        for d in self.slurmds.iter_mut().filter(|d| d.name == node) {
            d.kill9();
        }
        self.slurmds.retain(|d| d.name != node);
    }

    /// Runs scontrol with our config; (exit code, stdout, stderr).
    pub fn scontrol(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new("/usr/bin/scontrol")
            .args(args)
            .env("SLURM_CONF", &self.conf)
            .output()
            .expect("scontrol");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// A node's state and reason (the reason without Slurm's `[user@time]`).
    pub fn node(&self, name: &str) -> Option<(String, Option<String>)> {
        let (code, out, _) = self.scontrol(&["-o", "show", "node", name]);
        if code != 0 {
            return None;
        }
        let n = ocf_ref::hpc::slurm::scontrol::SlurmNode::parse(out.lines().next()?)?;
        Some((n.state, n.reason))
    }

    /// Waits until `pred` holds for `node`'s (state, reason).
    pub fn wait_node(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str, Option<&str>) -> bool,
    ) -> (String, Option<String>) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((s, r)) = self.node(name)
                && pred(&s, r.as_deref())
            {
                return (s, r);
            }
            assert!(
                Instant::now() < deadline,
                "{name} never became {what}: now {:?}\n{}",
                self.node(name),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The tail of slurmctld's log, for failure messages.
    pub fn logs(&self) -> String {
        let log =
            std::fs::read_to_string(self.dir.path().join("log/slurmctld.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(25).collect();
        let mut out = String::from("--- slurmctld ---\n");
        for l in tail.iter().rev() {
            let _ = writeln!(out, "{l}");
        }
        out
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        // SIGTERM to every slurmd at once, then wait for them all (each takes ~2 s).
        for d in &mut self.slurmds {
            if let Some(pid) = d.pid().and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
        for d in &mut self.slurmds {
            d.stop(Duration::from_secs(10));
        }
        if let Some(mut c) = self.slurmctld.take() {
            c.stop(Duration::from_secs(15));
        }
        if let Some(mut m) = self.munged.take() {
            m.stop(Duration::from_secs(5));
        }
    }
}

/// A running `ocf slurm bridge --json`, its lines collected as they come.
pub struct BridgeProc {
    child: Option<Child>,
    pub lines: Arc<Mutex<Vec<serde_json::Value>>>,
    pub stderr: PathBuf,
}

impl BridgeProc {
    /// Starts the bridge for the node config `config`, remembering in `state`.
    pub fn start(config: &Path, slurm_conf: &Path, state: &Path, stderr: &Path) -> Self {
        Self::start_with(config, slurm_conf, state, stderr, &[])
    }

    /// As [`BridgeProc::start`], with more arguments.
    pub fn start_with(
        config: &Path,
        slurm_conf: &Path,
        state: &Path,
        stderr: &Path,
        extra: &[&str],
    ) -> Self {
        let log = std::fs::File::create(stderr).expect("log");
        let mut child = Command::new(crate::nodes_support::ocf())
            .args(["slurm", "bridge", "--json", "--config"])
            .arg(config)
            .arg("--slurm-conf")
            .arg(slurm_conf)
            .arg("--state")
            .arg(state)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("ocf slurm bridge");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("stdout");
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                if let Ok(v) = serde_json::from_str(&line) {
                    sink.lock().expect("lock").push(v);
                }
            }
        });
        Self {
            child: Some(child),
            lines,
            stderr: stderr.to_owned(),
        }
    }

    /// The actions so far about `node` (`down`, `resume`, `kept`, ...).
    pub fn actions(&self, node: &str) -> Vec<serde_json::Value> {
        self.lines
            .lock()
            .expect("lock")
            .iter()
            .filter(|v| v["node"] == node)
            .cloned()
            .collect()
    }

    /// Waits for an action `action` about `node`, and returns it.
    pub fn wait_action(&self, node: &str, action: &str, timeout: Duration) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self
                .actions(node)
                .into_iter()
                .find(|v| v["action"] == action)
            {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "the bridge never did {action} on {node}; it did {:?}\n{}",
                self.lines.lock().expect("lock"),
                std::fs::read_to_string(&self.stderr).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until its log says it has caught up from the fence history.
    pub fn wait_caught_up(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !std::fs::read_to_string(&self.stderr)
            .unwrap_or_default()
            .contains("caught up")
        {
            assert!(Instant::now() < deadline, "the bridge never caught up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for BridgeProc {
    fn drop(&mut self) {
        self.kill9();
    }
}
