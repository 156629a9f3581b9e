//! A conformance check of a fence agent (`ocf fence test`): what Pacemaker's fencer relies on,
//! checked against the agent itself.
//!
//! Checks, in order: meta-data (runs, parses, names itself, lists the fencing actions), the
//! parameters given against the meta-data, `validate-all`, `monitor`, `status`, `list` (for
//! multi-host agents), an unknown action (must fail), and a power round trip
//! (`off`, `status` says off, `on`, `status` says on, `reboot`, `status` says on, then the
//! initial state restored).
//!
//! The round trip cuts real power on real hardware, so it runs only when asked
//! ([`TestOptions::power_cycle`]) or for agents known to simulate (`fence_dummy`); otherwise
//! those checks are reported as skipped, with the way to run them.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ocf_core::NodeName;
use ocf_fencing::{DeviceAction, DeviceMetadata, DeviceParams, FenceAction, Targets};
use serde::Serialize;

use super::agent::{self, AgentDevice, AgentRun};

/// Agents that only pretend, whose power round trip is always safe.
pub const SIMULATORS: &[&str] = &["fence_dummy"];

/// What to test.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TestOptions {
    /// The agent's path.
    pub agent: PathBuf,
    /// Its parameters (secrets kept as secrets).
    pub params: DeviceParams,
    /// The node to query and power-cycle on a multi-host agent (sent as the plug).
    pub target: Option<NodeName>,
    /// Run the power round trip even on an agent that may drive real hardware.
    pub power_cycle: bool,
    /// The time each agent call may take.
    pub timeout: Duration,
}

impl TestOptions {
    /// Options for `agent` with no parameters, no target, no power cycle, 30 s per call.
    pub fn new(agent: impl Into<PathBuf>) -> Self {
        Self {
            agent: agent.into(),
            params: DeviceParams::new(),
            target: None,
            power_cycle: false,
            timeout: Duration::from_secs(30),
        }
    }
}

/// How one check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// It met the expectation.
    Pass,
    /// It did not: the agent is not conformant (or not configured right).
    Fail,
    /// Worth a look, but Pacemaker copes.
    Warn,
    /// Not run (the reason says why and how to run it).
    Skip,
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Its name (`metadata`, `monitor`, `off`, ...).
    pub name: String,
    /// How it ended.
    pub verdict: Verdict,
    /// What was seen (agent output redacted).
    pub detail: String,
    /// How long it took, in milliseconds.
    pub elapsed_ms: u64,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    /// The agent's name.
    pub agent: String,
    /// Its path.
    pub path: PathBuf,
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
    /// True when no check failed.
    pub passed: bool,
}

struct Recorder {
    checks: Vec<Check>,
}

impl Recorder {
    fn add(&mut self, name: &str, verdict: Verdict, detail: impl Into<String>, started: Instant) {
        self.checks.push(Check {
            name: name.to_owned(),
            verdict,
            detail: detail.into(),
            elapsed_ms: ocf_core::millis::as_millis(started.elapsed()),
        });
    }

    fn skip(&mut self, name: &str, why: &str) {
        self.add(name, Verdict::Skip, why, Instant::now());
    }
}

fn outcome_line(run: &AgentRun) -> String {
    if run.success() {
        format!("exit 0 in {} ms", run.elapsed_ms)
    } else {
        run.reason()
    }
}

/// Runs the checks. Never panics on what the agent does; an agent that cannot even be
/// started gives a report with a failed `metadata` check.
pub async fn test_agent(opts: &TestOptions) -> TestReport {
    let name = opts.agent.file_name().map_or_else(
        || opts.agent.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut rec = Recorder { checks: Vec::new() };
    let report = |rec: Recorder| TestReport {
        agent: name.clone(),
        path: opts.agent.clone(),
        passed: rec.checks.iter().all(|c| c.verdict != Verdict::Fail),
        checks: rec.checks,
    };

    // Meta-data.
    let started = Instant::now();
    let md = match agent::fetch_metadata(&opts.agent, opts.timeout).await {
        Ok(md) => md,
        Err(e) => {
            rec.add("metadata", Verdict::Fail, e.to_string(), started);
            return report(rec);
        }
    };
    rec.add(
        "metadata",
        Verdict::Pass,
        format!(
            "{} parameters, actions: {}",
            md.parameters.len(),
            md.actions.join(" ")
        ),
        started,
    );
    check_metadata_shape(&md, &name, &mut rec);

    let started = Instant::now();
    let problems = agent::check_params(&md, &opts.params, opts.target.is_some());
    if problems.is_empty() {
        rec.add(
            "parameters",
            Verdict::Pass,
            "all given parameters are known and well-typed",
            started,
        );
    } else {
        rec.add("parameters", Verdict::Fail, problems.join("; "), started);
    }

    let targets = opts
        .target
        .clone()
        .map_or_else(|| Targets::hosts([]), |t| Targets::hosts([t]));
    let dev = match "under-test".parse() {
        Ok(id) => AgentDevice::new(id, &opts.agent, opts.params.clone(), targets),
        Err(_) => return report(rec),
    };
    let plug_name = md.plug_parameter().unwrap_or("plug");
    let plug = opts.target.as_ref().map(|t| (plug_name, t.as_str()));
    let needs_plug = md.plug_parameter().is_some();

    for (check, action) in [
        ("validate-all", DeviceAction::ValidateAll),
        ("monitor", DeviceAction::Monitor),
    ] {
        if !md.supports(action) {
            rec.skip(check, "the agent does not list this action");
            continue;
        }
        let started = Instant::now();
        match dev.run(action, None, opts.timeout).await {
            Ok(run) if run.success() => rec.add(check, Verdict::Pass, outcome_line(&run), started),
            Ok(run) => rec.add(check, Verdict::Fail, outcome_line(&run), started),
            Err(e) => rec.add(check, Verdict::Fail, e.to_string(), started),
        }
    }

    if needs_plug && md.supports(DeviceAction::List) {
        let started = Instant::now();
        match dev.list_plugs(opts.timeout).await {
            Ok(plugs) => rec.add(
                "list",
                Verdict::Pass,
                format!("{} plugs", plugs.len()),
                started,
            ),
            Err(e) => rec.add("list", Verdict::Warn, e.to_string(), started),
        }
    }

    // Robustness: an unknown action must fail, not power-cycle anything.
    let started = Instant::now();
    let bogus = bogus_action_run(&opts.agent, opts.timeout).await;
    match bogus {
        Ok(Some(0)) => rec.add(
            "unknown-action",
            Verdict::Fail,
            "action=bogus exited 0: the agent ignores unknown actions",
            started,
        ),
        Ok(Some(code)) => rec.add(
            "unknown-action",
            Verdict::Pass,
            format!("refused with exit {code}"),
            started,
        ),
        Ok(None) => rec.add(
            "unknown-action",
            Verdict::Fail,
            "action=bogus did not exit by itself",
            started,
        ),
        Err(e) => rec.add("unknown-action", Verdict::Fail, e, started),
    }

    if needs_plug && opts.target.is_none() {
        for c in ["status", "off", "on", "reboot"] {
            rec.skip(c, "a multi-host agent: give --target NODE (sent as plug=)");
        }
        return report(rec);
    }

    let started = Instant::now();
    let initial = match dev.run(DeviceAction::Status, plug, opts.timeout).await {
        Ok(run) => match run.exit_code {
            Some(0) => {
                rec.add("status", Verdict::Pass, "on (exit 0)", started);
                Some(FenceAction::On)
            }
            Some(2) => {
                rec.add("status", Verdict::Pass, "off (exit 2)", started);
                Some(FenceAction::Off)
            }
            _ => {
                rec.add("status", Verdict::Fail, outcome_line(&run), started);
                None
            }
        },
        Err(e) => {
            rec.add("status", Verdict::Fail, e.to_string(), started);
            None
        }
    };

    let safe = opts.power_cycle || SIMULATORS.contains(&name.as_str());
    if !safe {
        for c in ["off", "on", "reboot"] {
            rec.skip(
                c,
                "would cut real power: pass --power-cycle to run the round trip",
            );
        }
        return report(rec);
    }
    if initial.is_none() {
        for c in ["off", "on", "reboot"] {
            rec.skip(
                c,
                "status does not work, so the round trip cannot be checked",
            );
        }
        return report(rec);
    }

    for (action, expect) in [
        (DeviceAction::Off, 2),
        (DeviceAction::On, 0),
        (DeviceAction::Reboot, 0),
    ] {
        let check = action.as_str();
        if !md.supports(action) {
            rec.skip(check, "the agent does not list this action");
            continue;
        }
        let started = Instant::now();
        let run = match dev.run(action, plug, opts.timeout).await {
            Ok(run) => run,
            Err(e) => {
                rec.add(check, Verdict::Fail, e.to_string(), started);
                continue;
            }
        };
        if !run.success() {
            rec.add(check, Verdict::Fail, outcome_line(&run), started);
            continue;
        }
        match dev.run(DeviceAction::Status, plug, opts.timeout).await {
            Ok(st) if st.exit_code == Some(expect) => rec.add(
                check,
                Verdict::Pass,
                format!("done; status then exits {expect} as it should"),
                started,
            ),
            Ok(st) => rec.add(
                check,
                Verdict::Fail,
                format!(
                    "done, but status then says {} (expected exit {expect})",
                    outcome_line(&st)
                ),
                started,
            ),
            Err(e) => rec.add(
                check,
                Verdict::Fail,
                format!("done, but status failed: {e}"),
                started,
            ),
        }
    }

    if initial == Some(FenceAction::Off) {
        let started = Instant::now();
        match dev.run(DeviceAction::Off, plug, opts.timeout).await {
            Ok(run) if run.success() => rec.add(
                "restore",
                Verdict::Pass,
                "powered off again, as found",
                started,
            ),
            Ok(run) => rec.add("restore", Verdict::Fail, outcome_line(&run), started),
            Err(e) => rec.add("restore", Verdict::Fail, e.to_string(), started),
        }
    }
    report(rec)
}

fn check_metadata_shape(md: &DeviceMetadata, name: &str, rec: &mut Recorder) {
    let started = Instant::now();
    if md.name == name {
        rec.add(
            "metadata-name",
            Verdict::Pass,
            format!("names itself {name}"),
            started,
        );
    } else {
        rec.add(
            "metadata-name",
            Verdict::Warn,
            format!("names itself {:?} but is installed as {name}", md.name),
            started,
        );
    }
    let missing: Vec<&str> = [
        DeviceAction::Reboot,
        DeviceAction::Off,
        DeviceAction::On,
        DeviceAction::Status,
        DeviceAction::Monitor,
    ]
    .into_iter()
    .filter(|a| !md.supports(*a))
    .map(DeviceAction::as_str)
    .collect();
    let started = Instant::now();
    if missing.is_empty() {
        rec.add(
            "metadata-actions",
            Verdict::Pass,
            "lists reboot, off, on, status, monitor",
            started,
        );
    } else if missing.iter().any(|a| *a == "reboot" || *a == "off") {
        rec.add(
            "metadata-actions",
            Verdict::Fail,
            format!("does not list: {}", missing.join(", ")),
            started,
        );
    } else {
        rec.add(
            "metadata-actions",
            Verdict::Warn,
            format!("does not list: {}", missing.join(", ")),
            started,
        );
    }
}

/// Runs `action=bogus` with no other options; the exit code, or `None` if it did not exit.
async fn bogus_action_run(
    program: &std::path::Path,
    timeout: Duration,
) -> Result<Option<i32>, String> {
    let mut spec =
        crate::process::ProcessSpec::new(program, timeout).stdin(b"action=bogus\n".to_vec());
    spec.reap_group_on_exit = true;
    match crate::process::run(&spec).await {
        Ok(done) => Ok(match done.termination {
            crate::process::Termination::Exited(c) => Some(c),
            _ => None,
        }),
        Err(e) => Err(e.to_string()),
    }
}
