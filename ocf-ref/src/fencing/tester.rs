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
//! The report is the suites' own [`Report`] (suite `fence_device`), so `ocf fence test --json`
//! prints the same JSON shape (`"schema": 1`) as `ocf ra test --json`.
//!
//! The round trip cuts real power on real hardware, so it runs only when asked
//! ([`TestOptions::power_cycle`]) or for agents known to simulate (`fence_dummy`); otherwise
//! those checks are reported as skipped, with the way to run them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ocf_conformance::fencing::{DeviceOptions, run_device};
use ocf_conformance::{CheckOutcome, Report};
use ocf_core::NodeName;
use ocf_fencing::{DeviceAction, DeviceMetadata, DeviceParams, Targets};

use super::devices::agent::{self, AgentDevice};
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

/// The checks this module adds to the device suite's, with what each promises.
const PARAMETERS: (&str, &str) = (
    "agent.parameters",
    "every parameter given is one the agent's meta-data lists, with a value of its type",
);
const VALIDATE_ALL: (&str, &str) = (
    "agent.validate_all",
    "validate-all accepts the parameters without touching the device",
);
const LIST: (&str, &str) = ("agent.list", "a multi-host agent lists its plugs");
const UNKNOWN_ACTION: (&str, &str) = (
    "agent.unknown_action",
    "an unknown action fails by itself instead of acting",
);
const METADATA_NAME: (&str, &str) = (
    "agent.metadata_name",
    "the meta-data names the agent as it is installed",
);
const METADATA_ACTIONS: (&str, &str) = (
    "agent.metadata_actions",
    "the meta-data lists reboot, off, on, status and monitor",
);
const METADATA: (&str, &str) = (
    "fence_device.metadata",
    "the agent prints meta-data that parses",
);

/// Collects the checks into the suite's [`Report`].
struct Recorder {
    report: Report,
}

impl Recorder {
    fn add(
        &mut self,
        check: (&'static str, &'static str),
        outcome: CheckOutcome,
        started: Instant,
    ) {
        self.report
            .record_timed(check.0, check.1, outcome, Some(started.elapsed()));
    }

    fn skip(&mut self, check: (&'static str, &'static str), why: &str) {
        self.report
            .record(check.0, check.1, CheckOutcome::Skip(why.to_owned()));
    }

    fn add_suite(&mut self, c: &ocf_conformance::Check, skip_why: Option<&str>) {
        let outcome = match skip_why {
            Some(why) => CheckOutcome::Skip(why.to_owned()),
            None => c.outcome.clone(),
        };
        self.report
            .record_timed(c.name, c.promise, outcome, c.duration);
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
pub async fn test_agent(opts: &TestOptions) -> Report {
    let name = opts.agent.file_name().map_or_else(
        || opts.agent.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let test_started = Instant::now();
    let mut rec = Recorder {
        report: Report::new("fence_device", name.clone()),
    };
    let report = |rec: Recorder| rec.report.with_duration(test_started.elapsed());

    let started = Instant::now();
    let md = match agent::fetch_metadata(&opts.agent, opts.timeout).await {
        Ok(md) => md,
        Err(e) => {
            rec.add(METADATA, CheckOutcome::Fail(e.to_string()), started);
            return report(rec);
        }
    };
    let needs_plug = md.plug_parameter().is_some();

    let started = Instant::now();
    let problems = agent::check_params(&md, &opts.params, opts.target.is_some());
    if problems.is_empty() {
        rec.add(PARAMETERS, CheckOutcome::Pass, started);
    } else {
        rec.add(PARAMETERS, CheckOutcome::Fail(problems.join("; ")), started);
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
        let outcome = match dev.run(DeviceAction::ValidateAll, None, timeout).await {
            Ok(run) if run.success() => CheckOutcome::Pass,
            Ok(run) => CheckOutcome::Fail(run.reason()),
            Err(e) => CheckOutcome::Fail(e.to_string()),
        };
        rec.add(VALIDATE_ALL, outcome, started);
    } else {
        rec.skip(VALIDATE_ALL, "the agent does not list this action");
    }
}

/// `agent.list`: a multi-host agent lists its plugs.
async fn check_list(dev: &AgentDevice, timeout: Duration, rec: &mut Recorder) {
    let started = Instant::now();
    let outcome = match dev.list_plugs(timeout).await {
        Ok(_) => CheckOutcome::Pass,
        Err(e) => CheckOutcome::Warn(e.to_string()),
    };
    rec.add(LIST, outcome, started);
}

/// `agent.unknown_action`: an unknown action must fail, not power-cycle anything.
async fn check_unknown_action(agent: &Path, timeout: Duration, rec: &mut Recorder) {
    let started = Instant::now();
    let outcome = match bogus_action_run(agent, timeout).await {
        Ok(Some(0)) => CheckOutcome::Fail(
            "action=bogus exited 0: the agent ignores unknown actions".to_owned(),
        ),
        Ok(Some(_)) => CheckOutcome::Pass,
        Ok(None) => CheckOutcome::Fail("action=bogus did not exit by itself".to_owned()),
        Err(e) => CheckOutcome::Fail(e),
    };
    rec.add(UNKNOWN_ACTION, outcome, started);
}

fn check_metadata_shape(md: &DeviceMetadata, name: &str, rec: &mut Recorder) {
    let started = Instant::now();
    let outcome = if md.name == name {
        CheckOutcome::Pass
    } else {
        CheckOutcome::Warn(format!(
            "names itself {:?} but is installed as {name}",
            md.name
        ))
    };
    rec.add(METADATA_NAME, outcome, started);
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
    let outcome = if missing.is_empty() {
        CheckOutcome::Pass
    } else {
        CheckOutcome::Warn(format!("does not list: {}", missing.join(", ")))
    };
    rec.add(METADATA_ACTIONS, outcome, started);
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
