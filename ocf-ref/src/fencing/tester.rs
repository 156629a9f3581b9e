//! A conformance check of a fence agent (`ocf fence test`): what Pacemaker's fencer relies on,
//! checked against the agent itself.
//!
//! The device checks are the [`ocf_conformance::fencing`] device suite's (`fence_device.*`:
//! meta-data, targets, `monitor`, `status`, refusing a node it does not serve, and a power
//! round trip: `off`, `status` says off, `on`, `status` says on, `reboot`, `status` says on,
//! then the initial state restored), run on an [`AgentDevice`]. Only what is particular to a
//! fence-agents script is checked here (`agent.*`): the parameters given against its
//! meta-data, `validate-all`, `list` (multi-host agents), an unknown action (must fail), how it
//! names itself and which actions it lists.
//!
//! The round trip cuts real power on real hardware, so it runs only when asked
//! ([`TestOptions::power_cycle`]) or for agents known to simulate (`fence_dummy`); otherwise
//! those checks are reported as skipped, with the way to run them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ocf_conformance::CheckOutcome;
use ocf_conformance::fencing::{DeviceOptions, run_device};
use ocf_core::NodeName;
use ocf_fencing::{DeviceAction, DeviceMetadata, DeviceParams, Targets};
use serde::Serialize;

use super::devices::agent::{self, AgentDevice, AgentRun};
use crate::conformance::TokioClock;

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

    fn add_suite(&mut self, c: &ocf_conformance::Check, skip_why: Option<&str>) {
        let (verdict, detail) = match (&c.outcome, skip_why) {
            (_, Some(why)) => (Verdict::Skip, why.to_owned()),
            (CheckOutcome::Pass, None) => (Verdict::Pass, c.promise.to_owned()),
            (CheckOutcome::Fail(why), None) => (Verdict::Fail, why.clone()),
            (CheckOutcome::Skip(why), None) => (Verdict::Skip, why.clone()),
            // A future outcome kind: shown, but it does not fail the test.
            (other, None) => (Verdict::Warn, format!("{other:?}")),
        };
        self.checks.push(Check {
            name: c.name.to_owned(),
            verdict,
            detail,
            elapsed_ms: c.duration.map_or(0, ocf_core::millis::as_millis),
        });
    }
}

fn outcome_line(run: &AgentRun) -> String {
    if run.success() {
        format!("exit 0 in {} ms", run.elapsed_ms)
    } else {
        run.reason()
    }
}

/// The node name the device stands for when no `--target` is given (a single-host agent
/// such as `fence_dummy` controls one node whatever it is called).
const UNNAMED_TARGET: &str = "the-fenced-node";

/// A node no agent under test serves: the device must refuse it.
const NON_TARGET: &str = "ocf-test-no-such-node";

/// The suite's checks about the target, skipped for a multi-host agent without `--target`.
const TARGET_CHECKS: [&str; 7] = [
    "fence_device.targets_listed",
    "fence_device.can_fence",
    "fence_device.status",
    "fence_device.off",
    "fence_device.on",
    "fence_device.reboot",
    "fence_device.restored",
];

/// Runs the checks. Never panics on what the agent does.
///
/// The device checks are [`ocf_conformance::fencing::run_device`]'s (`fence_device.*`), run on
/// an [`AgentDevice`] over the agent; this adds the checks only a fence-agents script needs
/// (`agent.*`: its parameters against its meta-data, `validate-all`, `list`, an unknown action,
/// how it names itself and which actions it lists).
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

    let started = Instant::now();
    let md = match agent::fetch_metadata(&opts.agent, opts.timeout).await {
        Ok(md) => md,
        Err(e) => {
            rec.add(
                "fence_device.metadata",
                Verdict::Fail,
                e.to_string(),
                started,
            );
            return report(rec);
        }
    };
    let needs_plug = md.plug_parameter().is_some();

    let started = Instant::now();
    let problems = agent::check_params(&md, &opts.params, opts.target.is_some());
    if problems.is_empty() {
        rec.add(
            "agent.parameters",
            Verdict::Pass,
            "all given parameters are known and well-typed",
            started,
        );
    } else {
        rec.add(
            "agent.parameters",
            Verdict::Fail,
            problems.join("; "),
            started,
        );
    }

    let (Ok(target), Ok(non_target), Ok(id)) = (
        opts.target
            .clone()
            .map_or_else(|| UNNAMED_TARGET.parse(), Ok),
        NON_TARGET.parse::<NodeName>(),
        "under-test".parse(),
    ) else {
        return report(rec);
    };
    let dev = AgentDevice::new(
        id,
        &opts.agent,
        opts.params.clone(),
        Targets::hosts([target.clone()]),
    );
    let untargeted = needs_plug && opts.target.is_none();
    let safe = (opts.power_cycle || SIMULATORS.contains(&name.as_str())) && !untargeted;
    let options = DeviceOptions::new(target, non_target)
        .power_cycle(safe)
        .status(!untargeted)
        .timeout(opts.timeout);
    let suite = run_device(&dev, &TokioClock::new(), &options).await;
    for c in &suite.checks {
        let skip = if untargeted && TARGET_CHECKS.contains(&c.name) {
            Some("a multi-host agent: give --target NODE (sent as plug=)")
        } else if !safe
            && matches!(c.outcome, CheckOutcome::Skip(_))
            && c.name != "fence_device.status"
        {
            Some("would cut real power: pass --power-cycle to run the round trip")
        } else {
            None
        };
        rec.add_suite(c, skip);
    }

    check_metadata_shape(&md, &name, &mut rec);
    check_validate_all(&dev, &md, opts.timeout, &mut rec).await;
    if needs_plug && md.supports(DeviceAction::List) {
        check_list(&dev, opts.timeout, &mut rec).await;
    }
    check_unknown_action(&opts.agent, opts.timeout, &mut rec).await;
    report(rec)
}

/// `agent.validate_all`: the agent accepts its parameters without touching the device.
async fn check_validate_all(
    dev: &AgentDevice,
    md: &DeviceMetadata,
    timeout: Duration,
    rec: &mut Recorder,
) {
    let started = Instant::now();
    if md.supports(DeviceAction::ValidateAll) {
        match dev.run(DeviceAction::ValidateAll, None, timeout).await {
            Ok(run) if run.success() => {
                rec.add(
                    "agent.validate_all",
                    Verdict::Pass,
                    outcome_line(&run),
                    started,
                );
            }
            Ok(run) => rec.add(
                "agent.validate_all",
                Verdict::Fail,
                outcome_line(&run),
                started,
            ),
            Err(e) => rec.add("agent.validate_all", Verdict::Fail, e.to_string(), started),
        }
    } else {
        rec.skip("agent.validate_all", "the agent does not list this action");
    }
}

/// `agent.list`: a multi-host agent lists its plugs.
async fn check_list(dev: &AgentDevice, timeout: Duration, rec: &mut Recorder) {
    let started = Instant::now();
    match dev.list_plugs(timeout).await {
        Ok(plugs) => rec.add(
            "agent.list",
            Verdict::Pass,
            format!("{} plugs", plugs.len()),
            started,
        ),
        Err(e) => rec.add("agent.list", Verdict::Warn, e.to_string(), started),
    }
}

/// `agent.unknown_action`: an unknown action must fail, not power-cycle anything.
async fn check_unknown_action(agent: &Path, timeout: Duration, rec: &mut Recorder) {
    let started = Instant::now();
    match bogus_action_run(agent, timeout).await {
        Ok(Some(0)) => rec.add(
            "agent.unknown_action",
            Verdict::Fail,
            "action=bogus exited 0: the agent ignores unknown actions",
            started,
        ),
        Ok(Some(code)) => rec.add(
            "agent.unknown_action",
            Verdict::Pass,
            format!("refused with exit {code}"),
            started,
        ),
        Ok(None) => rec.add(
            "agent.unknown_action",
            Verdict::Fail,
            "action=bogus did not exit by itself",
            started,
        ),
        Err(e) => rec.add("agent.unknown_action", Verdict::Fail, e, started),
    }
}

fn check_metadata_shape(md: &DeviceMetadata, name: &str, rec: &mut Recorder) {
    let started = Instant::now();
    if md.name == name {
        rec.add(
            "agent.metadata_name",
            Verdict::Pass,
            format!("names itself {name}"),
            started,
        );
    } else {
        rec.add(
            "agent.metadata_name",
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
    // Lacking both off and reboot fails fence_device.metadata; the others are advice.
    if missing.is_empty() {
        rec.add(
            "agent.metadata_actions",
            Verdict::Pass,
            "lists reboot, off, on, status, monitor",
            started,
        );
    } else {
        rec.add(
            "agent.metadata_actions",
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
