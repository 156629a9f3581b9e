//! `ocf ra test`: a conformance check of one agent against the OCF RA API, stricter than
//! `ocf-tester`.
//!
//! The checks are the [`ocf_conformance::resources`] suite's (`resources.*`: meta-data in its
//! 1.0 and 1.1 forms, parameters, validate-all, the probe and a recurring monitor, start, stop,
//! promote and demote each twice, notify, 3 from every optional action the meta-data does not
//! advertise, reload, migration, every action within its advertised timeout), the same a
//! vendor runs on a native agent. Everything `ocf-tester` fails an agent for, these fail it
//! for too (the tests run both on agents that break one rule each). This module adds what only a command-line checker of scripts gives: advisory `lint.*`
//! checks (well-typed meta-data values, an unknown action returning 3), reported but never
//! failing the run, and a report with the agent's id and wall time. The resource is stopped at
//! the end even when a check fails.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use ocf_conformance::CheckOutcome;
use ocf_conformance::resources;
use ocf_resources::metadata::{ContentType, Metadata};
use ocf_resources::validate::{is_boolean, is_integer};
use ocf_resources::{AgentId, ResourceAgent};
use serde::Serialize;

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

/// The result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// It passed.
    Pass,
    /// It failed.
    Fail,
    /// It did not apply or could not run (the detail says why).
    Skip,
}

/// One check of the report.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// A failure of a mandatory check fails the test; others are advice.
    pub mandatory: bool,
    /// The result.
    pub status: CheckStatus,
    /// Why it passed, failed or was skipped.
    pub detail: String,
    /// How long the action took, for checks that ran one.
    #[serde(with = "ocf_core::millis::option", rename = "duration_ms")]
    pub duration: Option<Duration>,
}

/// The report of a test.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// The agent tested.
    pub agent: AgentId,
    /// True when every mandatory check passed.
    pub passed: bool,
    /// The checks, in the order run.
    pub checks: Vec<Check>,
    /// Wall time of the whole test.
    #[serde(with = "ocf_core::millis", rename = "duration_ms")]
    pub duration: Duration,
}

impl Report {
    /// True when every mandatory check passed.
    pub fn passed(&self) -> bool {
        self.passed
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == CheckStatus::Fail)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Testing {}", self.agent)?;
        for c in &self.checks {
            let tag = match (c.status, c.mandatory) {
                (CheckStatus::Pass, _) => "PASS",
                (CheckStatus::Fail, true) => "FAIL",
                (CheckStatus::Fail, false) => "WARN",
                (CheckStatus::Skip, _) => "SKIP",
            };
            let took = c
                .duration
                .map(|d| format!(" [{} ms]", d.as_millis()))
                .unwrap_or_default();
            writeln!(f, "  {tag}  {}{took}: {}", c.name, c.detail)?;
        }
        let failed = self
            .checks
            .iter()
            .filter(|c| c.mandatory && c.status == CheckStatus::Fail)
            .count();
        let warned = self
            .checks
            .iter()
            .filter(|c| !c.mandatory && c.status == CheckStatus::Fail)
            .count();
        writeln!(
            f,
            "{}: {} checks, {failed} failed, {warned} warnings, {} ms",
            if self.passed { "PASSED" } else { "FAILED" },
            self.checks.len(),
            self.duration.as_millis()
        )
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

impl From<&ocf_conformance::Check> for Check {
    fn from(c: &ocf_conformance::Check) -> Self {
        let (status, detail) = match &c.outcome {
            CheckOutcome::Pass => (CheckStatus::Pass, c.promise.to_owned()),
            CheckOutcome::Fail(why) => (CheckStatus::Fail, why.clone()),
            CheckOutcome::Skip(why) => (CheckStatus::Skip, why.clone()),
            // A future outcome kind: shown, but it does not fail the test.
            other => (CheckStatus::Skip, format!("{other:?}")),
        };
        Self {
            name: c.name.to_owned(),
            mandatory: true,
            status,
            detail,
            duration: c.duration,
        }
    }
}

/// Tests `agent` with `config`, calling `progress` after each check (for a live display).
///
/// The OCF rules are [`ocf_conformance::resources`]' checks (`resources.*`), run as they are;
/// this adds the advice only a command-line checker gives (`lint.*`: well-typed meta-data
/// values, and for scripts, an unknown action returning 3), which never fails the test.
pub async fn test_agent(
    agent: &dyn ResourceAgent,
    config: &TestConfig,
    mut progress: impl FnMut(&Check) + Send,
) -> Report {
    let started = Instant::now();
    let options = resources::Options::new(config.instance.clone())
        .params(config.params.clone())
        .node(hostname());
    let mut checks: Vec<Check> = Vec::new();
    let suite = resources::run_with_progress(
        agent,
        &TokioClock::new(),
        &options,
        &mut |c: &ocf_conformance::Check| {
            let check = Check::from(c);
            progress(&check);
            checks.push(check);
        },
    )
    .await;
    let mut advise = |name: &str, status: CheckStatus, detail: String, took: Option<Duration>| {
        let check = Check {
            name: name.to_owned(),
            mandatory: false,
            status,
            detail,
            duration: took,
        };
        progress(&check);
        checks.push(check);
    };
    if suite.outcome("resources.metadata") == Some(&CheckOutcome::Pass) {
        if let Ok(meta) = agent.metadata().await {
            let found = lint(&meta);
            if found.is_empty() {
                advise(
                    "lint.metadata_values",
                    CheckStatus::Pass,
                    "types, defaults, timeouts, roles".to_owned(),
                    None,
                );
            } else {
                advise(
                    "lint.metadata_values",
                    CheckStatus::Fail,
                    found.join("; "),
                    None,
                );
            }
        }
    }
    let (status, detail, took) = check_unknown_action(config).await;
    advise("lint.unknown_action", status, detail, took);
    let passed = !checks
        .iter()
        .any(|c| c.mandatory && c.status == CheckStatus::Fail);
    Report {
        agent: agent.id().clone(),
        passed,
        checks,
        duration: started.elapsed(),
    }
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
async fn check_unknown_action(config: &TestConfig) -> (CheckStatus, String, Option<Duration>) {
    let Some(script) = config.script.clone() else {
        return (
            CheckStatus::Skip,
            "only scripts take arbitrary actions".to_owned(),
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
            crate::process::Termination::Exited(3) => (
                CheckStatus::Pass,
                "returned 3".to_owned(),
                Some(done.elapsed),
            ),
            other => (
                CheckStatus::Fail,
                format!("expected 3, got {other:?}"),
                Some(done.elapsed),
            ),
        },
        Err(e) => (CheckStatus::Fail, e.to_string(), None),
    }
}
