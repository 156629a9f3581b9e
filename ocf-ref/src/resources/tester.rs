//! `ocf ra test`: a conformance check of one agent against the OCF RA API, stricter than
//! `ocf-tester`.
//!
//! What it checks, in order: meta-data runs, parses (1.0 and 1.1 forms) and advertises the
//! mandatory actions with timeouts; the parameters match the meta-data; validate-all; monitor
//! of the stopped resource returns 7; start, start again (idempotent), monitor returns 0;
//! promote, monitor returns 8, demote, monitor returns 0 (promotable agents); reload /
//! reload-agent and migrate_to/migrate_from when advertised; stop, stop again, monitor returns
//! 7. Every run gets the action's advertised timeout and must finish within it. Advisory
//! checks (an unknown action returns 3, well-typed defaults) are reported but do not fail the
//! run. The resource is stopped at the end even when a check fails.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use ocf_resources::metadata::{ContentType, Metadata};
use ocf_resources::validate::{is_boolean, is_integer, validate};
use ocf_resources::{Action, ActionRequest, AgentId, ExitCode, Outcome, ResourceAgent, Status};
use serde::Serialize;

/// The timeout for an action the meta-data gives none for.
pub const FALLBACK_TIMEOUT: Duration = Duration::from_secs(20);

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

struct Run<'a, P: FnMut(&Check)> {
    agent: &'a dyn ResourceAgent,
    config: &'a TestConfig,
    meta: Option<Metadata>,
    checks: Vec<Check>,
    progress: P,
    node: String,
}

impl<P: FnMut(&Check)> Run<'_, P> {
    fn record(
        &mut self,
        name: &str,
        mandatory: bool,
        status: CheckStatus,
        detail: String,
        duration: Option<Duration>,
    ) -> bool {
        let check = Check {
            name: name.to_owned(),
            mandatory,
            status,
            detail,
            duration,
        };
        (self.progress)(&check);
        self.checks.push(check);
        status == CheckStatus::Pass
    }

    fn skip(&mut self, name: &str, why: &str) {
        self.record(name, true, CheckStatus::Skip, why.to_owned(), None);
    }

    fn timeout(&self, action: Action) -> Duration {
        self.meta
            .as_ref()
            .and_then(|m| m.timeout_for(action))
            .unwrap_or(FALLBACK_TIMEOUT)
    }

    async fn invoke(&self, action: Action) -> Result<Outcome, String> {
        // meta-data must work without any parameter (OCF 1.1), so it gets none.
        let params = if action == Action::MetaData {
            BTreeMap::new()
        } else {
            self.config.params.clone()
        };
        let mut req =
            ActionRequest::new(action, self.config.instance.clone(), self.timeout(action))
                .params(params)
                // Parameters are checked once, as a check of their own.
                .validate(false);
        if matches!(action, Action::MigrateTo | Action::MigrateFrom) {
            req = req
                .meta(ocf_resources::env::META_MIGRATE_TARGET, self.node.clone())
                .meta(ocf_resources::env::META_MIGRATE_SOURCE, self.node.clone());
        }
        self.agent.execute(req).await.map_err(|e| e.to_string())
    }

    /// Runs `action` and checks its exit code is `expect`; false when it is not.
    async fn expect(
        &mut self,
        name: &str,
        action: Action,
        expect: ExitCode,
        mandatory: bool,
    ) -> bool {
        let timeout = self.timeout(action);
        match self.invoke(action).await {
            Err(e) => self.record(name, mandatory, CheckStatus::Fail, e, None),
            Ok(o) => {
                let (status, detail) = judge(&o, expect, timeout);
                self.record(name, mandatory, status, detail, Some(o.duration))
            }
        }
    }
}

fn judge(o: &Outcome, expect: ExitCode, timeout: Duration) -> (CheckStatus, String) {
    let limit = ocf_core::millis::as_millis(timeout);
    match &o.status {
        Status::Exited { code } if *code == expect => {
            (CheckStatus::Pass, format!("returned {}", code.code()))
        }
        Status::TimedOut { .. } => (
            CheckStatus::Fail,
            format!("did not finish within its advertised timeout of {limit} ms"),
        ),
        _ => {
            let stderr = o
                .stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(|l| format!("; stderr: {}", l.trim()))
                .unwrap_or_default();
            (
                CheckStatus::Fail,
                format!("expected {}, {}{stderr}", expect.code(), o.summary()),
            )
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Tests `agent` with `config`, calling `progress` after each check (for a live display).
pub async fn test_agent(
    agent: &dyn ResourceAgent,
    config: &TestConfig,
    progress: impl FnMut(&Check),
) -> Report {
    let started = Instant::now();
    let mut run = Run {
        agent,
        config,
        meta: None,
        checks: Vec::new(),
        progress,
        node: hostname(),
    };
    let proceed = check_metadata(&mut run).await;
    if proceed {
        check_lifecycle(&mut run).await;
    }
    let within = run
        .checks
        .iter()
        .filter(|c| c.detail.contains("advertised timeout"))
        .count();
    run.record(
        "every action finished within its advertised timeout",
        true,
        if within == 0 {
            CheckStatus::Pass
        } else {
            CheckStatus::Fail
        },
        if within == 0 {
            "no action timed out".to_owned()
        } else {
            format!("{within} action(s) timed out")
        },
        None,
    );
    let passed = !run
        .checks
        .iter()
        .any(|c| c.mandatory && c.status == CheckStatus::Fail);
    Report {
        agent: agent.id().clone(),
        passed,
        checks: run.checks,
        duration: started.elapsed(),
    }
}

/// The meta-data checks; false when the rest cannot run.
async fn check_metadata<P: FnMut(&Check)>(run: &mut Run<'_, P>) -> bool {
    let raw = match run.invoke(Action::MetaData).await {
        Ok(o) => o,
        Err(e) => {
            run.record("meta-data runs", true, CheckStatus::Fail, e, None);
            return false;
        }
    };
    let (status, detail) = judge(&raw, ExitCode::Success, run.timeout(Action::MetaData));
    if !run.record(
        "meta-data without parameters returns 0",
        true,
        status,
        detail,
        Some(raw.duration),
    ) {
        return false;
    }
    let meta = match Metadata::parse(raw.stdout.as_bytes()) {
        Ok(m) => m,
        Err(e) => {
            run.record(
                "meta-data parses",
                true,
                CheckStatus::Fail,
                e.to_string(),
                None,
            );
            return false;
        }
    };
    run.record(
        "meta-data parses",
        true,
        CheckStatus::Pass,
        format!(
            "{} parameters, {} actions",
            meta.parameters.len(),
            meta.actions.len()
        ),
        None,
    );
    let (status, detail) = match meta.api_version() {
        Some((1, minor @ (0 | 1))) => (CheckStatus::Pass, format!("OCF {}.{minor}", 1)),
        _ => (
            CheckStatus::Fail,
            format!(
                "<version> is {:?}; write 1.0 or 1.1",
                meta.api_version.as_deref().unwrap_or("missing")
            ),
        ),
    };
    run.record(
        "meta-data names OCF API 1.0 or 1.1",
        true,
        status,
        detail,
        None,
    );

    let mut missing = Vec::new();
    for a in [
        Action::Start,
        Action::Stop,
        Action::Monitor,
        Action::MetaData,
    ] {
        match meta.action(a) {
            None => missing.push(format!("{a} is not advertised")),
            Some(spec) if spec.timeout().is_none() => missing.push(format!(
                "{a} has no usable timeout ({:?})",
                spec.timeout.as_deref().unwrap_or("none")
            )),
            Some(_) => {}
        }
    }
    run.record(
        "meta-data advertises start, stop, monitor, meta-data with timeouts",
        true,
        if missing.is_empty() {
            CheckStatus::Pass
        } else {
            CheckStatus::Fail
        },
        if missing.is_empty() {
            "all four".to_owned()
        } else {
            missing.join("; ")
        },
        None,
    );
    let lint = lint(&meta);
    run.record(
        "meta-data values are well-formed",
        false,
        if lint.is_empty() {
            CheckStatus::Pass
        } else {
            CheckStatus::Fail
        },
        if lint.is_empty() {
            "types, defaults, timeouts, roles".to_owned()
        } else {
            lint.join("; ")
        },
        None,
    );
    let params_ok = match validate(&meta, &run.config.params) {
        Ok(()) => run.record(
            "parameters match the meta-data",
            true,
            CheckStatus::Pass,
            format!("{} given", run.config.params.len()),
            None,
        ),
        Err(e) => run.record(
            "parameters match the meta-data",
            true,
            CheckStatus::Fail,
            e.to_string(),
            None,
        ),
    };
    run.meta = Some(meta);
    params_ok
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

async fn check_lifecycle<P: FnMut(&Check)>(run: &mut Run<'_, P>) {
    let Some(meta) = run.meta.clone() else { return };
    if meta.advertises(Action::ValidateAll) {
        run.expect(
            "validate-all returns 0",
            Action::ValidateAll,
            ExitCode::Success,
            true,
        )
        .await;
    } else {
        run.skip("validate-all returns 0", "validate-all is not advertised");
    }
    if !run
        .expect(
            "monitor of the stopped resource returns 7",
            Action::Monitor,
            ExitCode::NotRunning,
            true,
        )
        .await
    {
        // Running already (or broken): a lifecycle test would change what it found.
        run.skip(
            "lifecycle",
            "the resource is not cleanly stopped before the test; stop it first",
        );
        return;
    }
    let started = run
        .expect("start returns 0", Action::Start, ExitCode::Success, true)
        .await;
    if started {
        run.expect(
            "start again returns 0 (idempotent)",
            Action::Start,
            ExitCode::Success,
            true,
        )
        .await;
        run.expect(
            "monitor of the started resource returns 0",
            Action::Monitor,
            ExitCode::Success,
            true,
        )
        .await;
        check_promotion(run, &meta).await;
        check_reload(run, &meta).await;
        check_migration(run, &meta).await;
    } else {
        run.skip("the started resource", "start failed");
    }
    run.expect("stop returns 0", Action::Stop, ExitCode::Success, true)
        .await;
    run.expect(
        "stop again returns 0 (idempotent)",
        Action::Stop,
        ExitCode::Success,
        true,
    )
    .await;
    run.expect(
        "monitor of the stopped resource returns 7 again",
        Action::Monitor,
        ExitCode::NotRunning,
        true,
    )
    .await;
    check_unknown_action(run).await;
}

async fn check_promotion<P: FnMut(&Check)>(run: &mut Run<'_, P>, meta: &Metadata) {
    if !meta.is_promotable() {
        run.skip(
            "promote/demote",
            "not promotable (promote and demote not advertised)",
        );
        return;
    }
    if run
        .expect(
            "promote returns 0",
            Action::Promote,
            ExitCode::Success,
            true,
        )
        .await
    {
        run.expect(
            "monitor of the promoted resource returns 8",
            Action::Monitor,
            ExitCode::RunningPromoted,
            true,
        )
        .await;
        run.expect("demote returns 0", Action::Demote, ExitCode::Success, true)
            .await;
        run.expect(
            "monitor of the demoted resource returns 0",
            Action::Monitor,
            ExitCode::Success,
            true,
        )
        .await;
    }
}

async fn check_reload<P: FnMut(&Check)>(run: &mut Run<'_, P>, meta: &Metadata) {
    let mut any = false;
    for action in [Action::ReloadAgent, Action::Reload] {
        if meta.advertises(action) {
            any = true;
            run.expect(
                &format!("{action} returns 0"),
                action,
                ExitCode::Success,
                true,
            )
            .await;
            run.expect(
                &format!("monitor after {action} returns 0"),
                Action::Monitor,
                ExitCode::Success,
                true,
            )
            .await;
        }
    }
    if !any {
        run.skip("reload", "neither reload nor reload-agent is advertised");
    }
}

async fn check_migration<P: FnMut(&Check)>(run: &mut Run<'_, P>, meta: &Metadata) {
    if !(meta.advertises(Action::MigrateTo) && meta.advertises(Action::MigrateFrom)) {
        run.skip(
            "migration",
            "migrate_to and migrate_from are not both advertised",
        );
        return;
    }
    // On one node the migration goes from here to here: away, then back.
    if run
        .expect(
            "migrate_to returns 0",
            Action::MigrateTo,
            ExitCode::Success,
            true,
        )
        .await
    {
        run.expect(
            "migrate_from returns 0",
            Action::MigrateFrom,
            ExitCode::Success,
            true,
        )
        .await;
        run.expect(
            "monitor after migration returns 0",
            Action::Monitor,
            ExitCode::Success,
            true,
        )
        .await;
    }
}

async fn check_unknown_action<P: FnMut(&Check)>(run: &mut Run<'_, P>) {
    let name = "an unknown action returns 3";
    let Some(script) = run.config.script.clone() else {
        run.record(
            name,
            false,
            CheckStatus::Skip,
            "only scripts take arbitrary actions".to_owned(),
            None,
        );
        return;
    };
    // The API's actions are a closed set, so this one bypasses the agent trait.
    let mut spec =
        crate::process::ProcessSpec::new(script.path, FALLBACK_TIMEOUT).arg("no-such-action");
    spec.env.push(("OCF_ROOT".into(), script.root.into()));
    spec.env.push((
        "OCF_RESOURCE_INSTANCE".into(),
        run.config.instance.clone().into(),
    ));
    spec.reap_group_on_exit = true;
    let (status, detail, took) = match crate::process::run(&spec).await {
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
    };
    run.record(name, false, status, detail, took);
}
