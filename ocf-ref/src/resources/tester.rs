//! `ocf ra test`: a conformance check of one agent against the OCF RA API, stricter than
//! `ocf-tester`.
//!
//! The checks are the [`ocf_conformance::resources`] suite's (`resources.*`: meta-data in its
//! 1.0 and 1.1 forms, parameters, validate-all, the probe and a recurring monitor, start, stop,
//! promote and demote each twice, notify, 3 from every optional action the meta-data does not
//! advertise, reload, migration, every action within its advertised timeout), the same a
//! vendor runs on a native agent. Everything `ocf-tester` fails an agent for, these fail it
//! for too (the tests run both on agents that break one rule each). This module adds what only a command-line checker of scripts gives: advisory `lint.*`
//! checks (well-typed meta-data values, an unknown action returning 3), reported as warnings
//! that never fail the run. The report is the suite's [`Report`] with the run's wall time: the
//! one report type, whose JSON (`"schema": 1`) `ocf fence test` prints too. The resource is stopped at
//! the end even when a check fails.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ocf_conformance::resources;
use ocf_conformance::{Check, CheckOutcome, Report};
use ocf_resources::ResourceAgent;
use ocf_resources::metadata::{ContentType, Metadata};
use ocf_resources::validate::{is_boolean, is_integer};

use crate::conformance::TokioClock;

/// The timeout for an action the meta-data gives none for.
pub const FALLBACK_TIMEOUT: Duration = resources::FALLBACK_TIMEOUT;

/// What to test with.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TestConfig {
    /// The instance name (`OCF_RESOURCE_INSTANCE`).
    pub instance: String,
    /// The parameters.
    pub params: BTreeMap<String, String>,
    /// For script agents, the executable and OCF root, to also try an unknown action.
    pub script: Option<ScriptLocation>,
}

/// Where a script agent is, for checks that run it directly.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ScriptLocation {
    /// The executable.
    pub path: std::path::PathBuf,
    /// The OCF root.
    pub root: std::path::PathBuf,
}

impl ScriptLocation {
    /// The location of a script agent.
    pub fn of(agent: &crate::resources::ScriptAgent) -> Self {
        Self {
            path: agent.path().to_path_buf(),
            root: agent.root().to_path_buf(),
        }
    }
}

impl TestConfig {
    /// A test of instance `instance` with no parameters.
    pub fn new(instance: impl Into<String>) -> Self {
        Self {
            instance: instance.into(),
            params: BTreeMap::new(),
            script: None,
        }
    }

    /// Sets the script location (see [`ScriptLocation::of`]).
    #[must_use]
    pub fn script(mut self, script: ScriptLocation) -> Self {
        self.script = Some(script);
        self
    }

    /// Sets the parameters.
    #[must_use]
    pub fn params(mut self, params: BTreeMap<String, String>) -> Self {
        self.params = params;
        self
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

const LINT_VALUES: &str =
    "meta-data values are well typed: integer and boolean defaults, known types, timeouts, roles";
const LINT_UNKNOWN: &str = "an action OCF does not define returns 3 (OCF_ERR_UNIMPLEMENTED)";

/// Tests `agent` with `config`, calling `progress` after each check (for a live display).
///
/// The OCF rules are [`ocf_conformance::resources`]' checks (`resources.*`), run as they are;
/// this adds the advice only a command-line checker gives (`lint.*`: well-typed meta-data
/// values, and for scripts, an unknown action returning 3), reported as
/// [`CheckOutcome::Warn`] when not met, so they never fail the test. The report is the
/// suite's own [`Report`] (suite `resources`), with the run's wall time.
pub async fn test_agent(
    agent: &dyn ResourceAgent,
    config: &TestConfig,
    mut progress: impl FnMut(&Check) + Send,
) -> Report {
    let started = Instant::now();
    let options = resources::Options::new(config.instance.clone())
        .params(config.params.clone())
        .node(hostname());
    let mut report =
        resources::run_with_progress(agent, &TokioClock::new(), &options, &mut |c: &Check| {
            progress(c);
        })
        .await;
    if report.outcome("resources.metadata") == Some(&CheckOutcome::Pass) {
        if let Ok(meta) = agent.metadata().await {
            let found = lint(&meta);
            let outcome = if found.is_empty() {
                CheckOutcome::Pass
            } else {
                CheckOutcome::Warn(found.join("; "))
            };
            report.record("lint.metadata_values", LINT_VALUES, outcome);
            if let Some(c) = report.checks.last() {
                progress(c);
            }
        }
    }
    let (outcome, took) = check_unknown_action(config).await;
    report.record_timed("lint.unknown_action", LINT_UNKNOWN, outcome, took);
    if let Some(c) = report.checks.last() {
        progress(c);
    }
    report.with_duration(started.elapsed())
}

/// Advisory findings about meta-data values (what real agents get wrong without harm).
fn lint(meta: &Metadata) -> Vec<String> {
    let mut found = Vec::new();
    for p in &meta.parameters {
        let d = p.content.default.as_deref().filter(|d| !d.is_empty());
        match (&p.content.kind, d) {
            (ContentType::Integer, Some(d)) if !is_integer(d) => {
                found.push(format!("{}: integer default {d:?}", p.name));
            }
            (ContentType::Boolean, Some(d)) if !is_boolean(d) => {
                found.push(format!("{}: boolean default {d:?}", p.name));
            }
            (ContentType::Other(t), _) => found.push(format!("{}: unknown type {t:?}", p.name)),
            _ => {}
        }
    }
    for a in &meta.actions {
        if a.action().is_none() {
            found.push(format!("unknown action {:?}", a.name));
        }
        if a.timeout.is_some() && a.timeout().is_none() {
            found.push(format!(
                "{}: bad timeout {:?}",
                a.name,
                a.timeout.as_deref().unwrap_or("")
            ));
        }
        if a.role.is_some() && a.role().is_none() {
            found.push(format!(
                "{}: unknown role {:?}",
                a.name,
                a.role.as_deref().unwrap_or("")
            ));
        }
    }
    found
}

/// Runs the script with an action OCF does not define: it must answer 3 (unimplemented).
async fn check_unknown_action(config: &TestConfig) -> (CheckOutcome, Option<Duration>) {
    let Some(script) = config.script.clone() else {
        return (
            CheckOutcome::Skip("only scripts take arbitrary actions".to_owned()),
            None,
        );
    };
    // The API's actions are a closed set, so this one bypasses the agent trait.
    let mut spec =
        crate::process::ProcessSpec::new(script.path, FALLBACK_TIMEOUT).arg("no-such-action");
    spec.env.push(("OCF_ROOT".into(), script.root.into()));
    spec.env.push((
        "OCF_RESOURCE_INSTANCE".into(),
        config.instance.clone().into(),
    ));
    spec.reap_group_on_exit = true;
    match crate::process::run(&spec).await {
        Ok(done) => match done.termination {
            crate::process::Termination::Exited(3) => (CheckOutcome::Pass, Some(done.elapsed)),
            other => (
                CheckOutcome::Warn(format!("expected 3, got {other:?}")),
                Some(done.elapsed),
            ),
        },
        Err(e) => (CheckOutcome::Warn(e.to_string()), None),
    }
}
