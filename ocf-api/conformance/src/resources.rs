//! The resources suite: the OCF Resource Agent API's action rules, checked on any
//! [`ResourceAgent`]. The executor's promises (registration, results, recurring operations,
//! and how a result stream ends and lags) are the [`executor`] suite's.
//!
//! The suite drives one instance through its whole life, the way a cluster manager would, and
//! checks each answer against the specification (OCF RA API 1.0 and 1.1). Every action gets
//! the timeout the agent advertises for it and must finish within it.
//!
//! | check | promise |
//! |---|---|
//! | `resources.metadata` | `metadata()` answers, and the meta-data names the agent |
//! | `resources.metadata_action` | the `meta-data` action, run without parameters, returns 0 and prints meta-data that parses |
//! | `resources.metadata_version` | the meta-data names OCF API version 1.0 or 1.1 |
//! | `resources.metadata_actions` | start, stop, monitor and meta-data are advertised, each with a usable timeout |
//! | `resources.capabilities` | the meta-data advertises exactly the capabilities the implementation declares |
//! | `resources.params_valid` | the test parameters match the meta-data (a harness check: nothing runs without it) |
//! | `resources.validate_all` | validate-all returns 0 |
//! | `resources.probe_stopped` | monitor of the stopped resource returns 7 (`OCF_NOT_RUNNING`), not an error |
//! | `resources.start` | start returns 0 |
//! | `resources.start_idempotent` | start of a started resource returns 0 |
//! | `resources.monitor_running` | monitor of the started resource returns 0 |
//! | `resources.monitor_recurring` | a recurring monitor (`OCF_RESKEY_CRM_meta_interval` = 10000) of the started resource returns 0 |
//! | `resources.notify` | notify returns 0 (when advertised) |
//! | `resources.unadvertised_actions` | every optional action the meta-data does not advertise answers 3 (`OCF_ERR_UNIMPLEMENTED`); notify may also answer 0 |
//! | `resources.demote_unpromoted` | demote of the started, unpromoted resource returns 0 (promotable agents) |
//! | `resources.promote` | promote returns 0 |
//! | `resources.promote_idempotent` | promote of a promoted resource returns 0 |
//! | `resources.monitor_promoted` | monitor of the promoted resource returns 8 (`OCF_RUNNING_PROMOTED`) |
//! | `resources.monitor_promoted_recurring` | a recurring monitor of the promoted resource returns 8 |
//! | `resources.demote` | demote returns 0 |
//! | `resources.demote_idempotent` | demote of a demoted resource returns 0 |
//! | `resources.monitor_demoted` | monitor of the demoted resource returns 0 |
//! | `resources.reload_agent` | reload-agent returns 0 and the resource still runs (when advertised) |
//! | `resources.reload` | reload returns 0 and the resource still runs (when advertised) |
//! | `resources.migrate_to` | migrate_to returns 0 (when migration is advertised) |
//! | `resources.migrate_from` | migrate_from returns 0 |
//! | `resources.monitor_migrated` | monitor after migration returns 0 |
//! | `resources.stop` | stop returns 0 |
//! | `resources.stop_idempotent` | stop of a stopped resource returns 0 |
//! | `resources.monitor_stopped` | monitor after stop returns 7 again |
//! | `resources.within_timeouts` | every action finished within its advertised timeout |
//!
//! The suite leaves the resource stopped whenever it started it, even after a failure. When
//! the first probe finds the resource running (or broken) it changes nothing and skips the
//! lifecycle checks.

pub mod executor;

use std::collections::BTreeMap;
use std::time::Duration;

use ocf_resources::metadata::Metadata;
use ocf_resources::validate::validate;
use ocf_resources::{Action, ActionRequest, AgentOutcome, ExitCode, ResourceAgent, Status};
use serde::Serialize;

use crate::{Check, CheckOutcome, Clock, Report, timeout};

/// The optional parts of the OCF API an agent implements.
///
/// Declare them in [`Options::capabilities`]; the suite then checks the meta-data advertises
/// exactly these (`resources.capabilities`) and runs the checks they enable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct Capabilities {
    /// `validate-all`.
    pub validate_all: bool,
    /// `promote` and `demote` (a promotable clone).
    pub promotable: bool,
    /// `reload`.
    pub reload: bool,
    /// `reload-agent` (OCF 1.1).
    pub reload_agent: bool,
    /// `migrate_to` and `migrate_from` (live migration).
    pub migrate: bool,
}

impl Capabilities {
    /// No optional capability: start, stop, monitor and meta-data only.
    pub fn none() -> Self {
        Self::default()
    }

    /// What `meta` advertises.
    pub fn from_metadata(meta: &Metadata) -> Self {
        Self {
            validate_all: meta.advertises(Action::ValidateAll),
            promotable: meta.is_promotable(),
            reload: meta.advertises(Action::Reload),
            reload_agent: meta.advertises(Action::ReloadAgent),
            migrate: meta.advertises(Action::MigrateTo) && meta.advertises(Action::MigrateFrom),
        }
    }

    /// Declares `validate-all`.
    #[must_use]
    pub fn validate_all(mut self, on: bool) -> Self {
        self.validate_all = on;
        self
    }

    /// Declares promote and demote.
    #[must_use]
    pub fn promotable(mut self, on: bool) -> Self {
        self.promotable = on;
        self
    }

    /// Declares `reload`.
    #[must_use]
    pub fn reload(mut self, on: bool) -> Self {
        self.reload = on;
        self
    }

    /// Declares `reload-agent`.
    #[must_use]
    pub fn reload_agent(mut self, on: bool) -> Self {
        self.reload_agent = on;
        self
    }

    /// Declares `migrate_to` and `migrate_from`.
    #[must_use]
    pub fn migrate(mut self, on: bool) -> Self {
        self.migrate = on;
        self
    }

    /// The differences from `advertised`, as sentences.
    fn differences(self, advertised: Self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, declared, seen) in [
            ("validate-all", self.validate_all, advertised.validate_all),
            ("promote/demote", self.promotable, advertised.promotable),
            ("reload", self.reload, advertised.reload),
            ("reload-agent", self.reload_agent, advertised.reload_agent),
            ("migrate_to/migrate_from", self.migrate, advertised.migrate),
        ] {
            match (declared, seen) {
                (true, false) => out.push(format!("{name} is declared but not advertised")),
                (false, true) => out.push(format!("{name} is advertised but not declared")),
                _ => {}
            }
        }
        out
    }
}

/// The timeout the suite uses for an action the meta-data gives none for.
pub const FALLBACK_TIMEOUT: Duration = Duration::from_secs(20);

/// What to test with.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// The instance name (`OCF_RESOURCE_INSTANCE`); use one nothing else runs under.
    pub instance: String,
    /// The instance parameters (`OCF_RESKEY_<name>`); they must match the meta-data.
    pub params: BTreeMap<String, String>,
    /// The capabilities the implementation declares; `None` takes what the meta-data
    /// advertises (and `resources.capabilities` is skipped).
    pub capabilities: Option<Capabilities>,
    /// The node name given as migration source and target (the migration goes from this node
    /// to itself).
    pub node: String,
    /// How much longer than an action's timeout the suite waits for `execute` to return before
    /// it calls the action hung.
    pub grace: Duration,
}

impl Options {
    /// Options for instance `instance`, no parameters, capabilities from the meta-data.
    pub fn new(instance: impl Into<String>) -> Self {
        Self {
            instance: instance.into(),
            params: BTreeMap::new(),
            capabilities: None,
            node: "localhost".to_owned(),
            grace: Duration::from_secs(5),
        }
    }

    /// Sets the parameters.
    #[must_use]
    pub fn params(mut self, params: BTreeMap<String, String>) -> Self {
        self.params = params;
        self
    }

    /// Adds one parameter.
    #[must_use]
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.insert(name.into(), value.into());
        self
    }

    /// Declares the implementation's capabilities.
    #[must_use]
    pub fn capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = Some(capabilities);
        self
    }

    /// Sets the node name used for migration.
    #[must_use]
    pub fn node(mut self, node: impl Into<String>) -> Self {
        self.node = node.into();
        self
    }
}

/// Runs the resources suite against `agent`.
pub async fn run(agent: &dyn ResourceAgent, clock: &dyn Clock, options: &Options) -> Report {
    run_with_progress(agent, clock, options, &mut |_| {}).await
}

/// Runs the resources suite, calling `progress` after each check (for a live display).
pub async fn run_with_progress(
    agent: &dyn ResourceAgent,
    clock: &dyn Clock,
    options: &Options,
    progress: &mut (dyn FnMut(&Check) + Send),
) -> Report {
    let mut run = Run {
        agent,
        clock,
        options,
        meta: Metadata::new(""),
        report: Report::new("resources", agent.id().to_string()),
        progress,
        late: Vec::new(),
    };
    if run.check_metadata().await {
        run.check_lifecycle().await;
    }
    let late = std::mem::take(&mut run.late);
    run.record(
        "resources.within_timeouts",
        "every action finished within its advertised timeout",
        if late.is_empty() {
            CheckOutcome::Pass
        } else {
            CheckOutcome::Fail(late.join("; "))
        },
        None,
    );
    run.report
}

struct Run<'a> {
    agent: &'a dyn ResourceAgent,
    clock: &'a dyn Clock,
    options: &'a Options,
    meta: Metadata,
    report: Report,
    progress: &'a mut (dyn FnMut(&Check) + Send),
    /// The actions that ran past their timeout.
    late: Vec<String>,
}

/// Why an action's outcome is not the expected one.
enum Miss {
    /// It could not be attempted, or it returned the wrong code.
    Wrong(String),
    /// It ran past its timeout.
    Late(String),
}

impl Run<'_> {
    fn record(
        &mut self,
        name: &'static str,
        promise: &'static str,
        outcome: CheckOutcome,
        duration: Option<Duration>,
    ) -> bool {
        self.report
            .record_shown((name, promise), outcome, duration, self.progress)
    }

    fn skip(&mut self, name: &'static str, promise: &'static str, why: &str) {
        self.record(name, promise, CheckOutcome::Skip(why.to_owned()), None);
    }

    fn timeout_for(&self, action: Action) -> Duration {
        self.meta.timeout_for(action).unwrap_or(FALLBACK_TIMEOUT)
    }

    /// Runs `action` with the advertised timeout; the outcome, or why there is none.
    async fn invoke(&mut self, action: Action) -> Result<AgentOutcome, Miss> {
        self.invoke_every(action, Duration::ZERO).await
    }

    /// Runs `action` as one run of a recurring operation of `interval` (zero: a one-shot
    /// run, which for monitor is a probe).
    async fn invoke_every(
        &mut self,
        action: Action,
        interval: Duration,
    ) -> Result<AgentOutcome, Miss> {
        let limit = self.timeout_for(action);
        // meta-data must work without any parameter, so it gets none.
        let params = if action == Action::MetaData {
            BTreeMap::new()
        } else {
            self.options.params.clone()
        };
        let mut req = ActionRequest::new(action, self.options.instance.clone(), limit)
            .params(params)
            // The parameters are checked once, as a check of their own.
            .validate(false)
            .interval(interval);
        if matches!(action, Action::MigrateTo | Action::MigrateFrom) {
            req = req
                .meta(
                    ocf_resources::env::META_MIGRATE_TARGET,
                    self.options.node.clone(),
                )
                .meta(
                    ocf_resources::env::META_MIGRATE_SOURCE,
                    self.options.node.clone(),
                );
        }
        let waited = limit.saturating_add(self.options.grace);
        let late = |detail: String| format!("{action}: {detail}");
        match timeout(self.clock, waited, self.agent.execute(req)).await {
            None => {
                let why = format!(
                    "did not return within its advertised timeout of {} ms (waited {} ms)",
                    ocf_core::millis::as_millis(limit),
                    ocf_core::millis::as_millis(waited)
                );
                self.late.push(late(why.clone()));
                Err(Miss::Late(why))
            }
            Some(Err(e)) => Err(Miss::Wrong(format!("could not run {action}: {e}"))),
            Some(Ok(o)) if matches!(o.status, Status::TimedOut { .. }) || o.duration > limit => {
                let why = format!(
                    "did not finish within its advertised timeout of {} ms ({})",
                    ocf_core::millis::as_millis(limit),
                    o.summary()
                );
                self.late.push(late(why.clone()));
                Err(Miss::Late(why))
            }
            Some(Ok(o)) => Ok(o),
        }
    }

    /// Runs `action`, records whether it returned `expect`; true when it did.
    async fn expect(
        &mut self,
        name: &'static str,
        promise: &'static str,
        action: Action,
        expect: ExitCode,
    ) -> bool {
        self.expect_every(name, promise, action, Duration::ZERO, expect)
            .await
    }

    /// [`Run::expect`] for one run of a recurring operation of `interval`.
    async fn expect_every(
        &mut self,
        name: &'static str,
        promise: &'static str,
        action: Action,
        interval: Duration,
        expect: ExitCode,
    ) -> bool {
        match self.invoke_every(action, interval).await {
            Err(Miss::Wrong(why) | Miss::Late(why)) => {
                self.record(name, promise, CheckOutcome::Fail(why), None)
            }
            Ok(o) => {
                let outcome = judge(&o, expect);
                self.record(name, promise, outcome, Some(o.duration))
            }
        }
    }

    /// The meta-data checks; false when the lifecycle cannot run.
    async fn check_metadata(&mut self) -> bool {
        let promise = "metadata() answers with meta-data that names the agent";
        let meta = match timeout(self.clock, FALLBACK_TIMEOUT, self.agent.metadata()).await {
            None => Err(format!(
                "metadata() did not return within {} ms",
                FALLBACK_TIMEOUT.as_millis()
            )),
            Some(Err(e)) => Err(e.to_string()),
            Some(Ok(m)) if m.name.trim().is_empty() => {
                Err("the meta-data has no name (<resource-agent name=...>)".to_owned())
            }
            Some(Ok(m)) => Ok(m),
        };
        let meta = match meta {
            Ok(m) => {
                self.record("resources.metadata", promise, CheckOutcome::Pass, None);
                m
            }
            Err(why) => {
                self.record("resources.metadata", promise, CheckOutcome::Fail(why), None);
                return false;
            }
        };
        self.meta = meta;
        self.check_metadata_action().await;
        self.check_metadata_contents();
        self.check_capabilities();
        let params = match validate(&self.meta, &self.options.params) {
            Ok(()) => CheckOutcome::Pass,
            Err(e) => CheckOutcome::Fail(e.to_string()),
        };
        self.record(
            "resources.params_valid",
            "the test parameters match the meta-data",
            params,
            None,
        )
    }

    /// `resources.metadata_action`: the action prints the meta-data `metadata()` gave.
    async fn check_metadata_action(&mut self) {
        let promise = "the meta-data action, run without parameters, returns 0 and prints meta-data that parses";
        match self.invoke(Action::MetaData).await {
            Err(Miss::Wrong(why) | Miss::Late(why)) => {
                self.record(
                    "resources.metadata_action",
                    promise,
                    CheckOutcome::Fail(why),
                    None,
                );
            }
            Ok(o) => {
                let outcome = match judge(&o, ExitCode::Success) {
                    CheckOutcome::Pass => match Metadata::parse(o.stdout.as_bytes()) {
                        Ok(printed) if printed.name == self.meta.name => CheckOutcome::Pass,
                        Ok(printed) => CheckOutcome::Fail(format!(
                            "it prints meta-data for {:?}, but metadata() says {:?}",
                            printed.name, self.meta.name
                        )),
                        Err(e) => CheckOutcome::Fail(format!("its output does not parse: {e}")),
                    },
                    other => other,
                };
                self.record(
                    "resources.metadata_action",
                    promise,
                    outcome,
                    Some(o.duration),
                );
            }
        }
    }

    /// `resources.metadata_version` and `resources.metadata_actions`.
    fn check_metadata_contents(&mut self) {
        let version = match self.meta.api_version() {
            Some((1, 0 | 1)) => CheckOutcome::Pass,
            _ => CheckOutcome::Fail(format!(
                "<version> is {:?}; write 1.0 or 1.1",
                self.meta.api_version.as_deref().unwrap_or("missing")
            )),
        };
        self.record(
            "resources.metadata_version",
            "the meta-data names OCF API version 1.0 or 1.1",
            version,
            None,
        );

        let mut missing = Vec::new();
        for a in [
            Action::Start,
            Action::Stop,
            Action::Monitor,
            Action::MetaData,
        ] {
            match self.meta.action(a) {
                None => missing.push(format!("{a} is not advertised")),
                Some(spec) if spec.timeout().is_none() => missing.push(format!(
                    "{a} has no usable timeout ({:?})",
                    spec.timeout.as_deref().unwrap_or("none")
                )),
                Some(_) => {}
            }
        }
        self.record(
            "resources.metadata_actions",
            "start, stop, monitor and meta-data are advertised, each with a usable timeout",
            if missing.is_empty() {
                CheckOutcome::Pass
            } else {
                CheckOutcome::Fail(missing.join("; "))
            },
            None,
        );
    }

    /// `resources.capabilities`: what is declared is what the meta-data advertises.
    fn check_capabilities(&mut self) {
        let promise =
            "the meta-data advertises exactly the capabilities the implementation declares";
        let advertised = Capabilities::from_metadata(&self.meta);
        match self.options.capabilities {
            None => self.skip(
                "resources.capabilities",
                promise,
                "no capabilities declared: taken from the meta-data",
            ),
            Some(declared) => {
                let diff = declared.differences(advertised);
                self.record(
                    "resources.capabilities",
                    promise,
                    if diff.is_empty() {
                        CheckOutcome::Pass
                    } else {
                        CheckOutcome::Fail(diff.join("; "))
                    },
                    None,
                );
            }
        }
    }

    /// Why a capability's checks are skipped: not declared, or (with nothing declared) not
    /// advertised.
    fn absent(&self, what: &str) -> String {
        if self.options.capabilities.is_some() {
            format!("{what} not declared")
        } else {
            format!("{what} not advertised")
        }
    }

    /// What the suite exercises: the declared capabilities, or the advertised ones.
    fn capabilities(&self) -> Capabilities {
        self.options
            .capabilities
            .unwrap_or_else(|| Capabilities::from_metadata(&self.meta))
    }

    async fn check_lifecycle(&mut self) {
        let caps = self.capabilities();
        let promise = "validate-all returns 0";
        if caps.validate_all {
            self.expect(
                "resources.validate_all",
                promise,
                Action::ValidateAll,
                ExitCode::Success,
            )
            .await;
        } else {
            self.skip(
                "resources.validate_all",
                promise,
                "validate-all not declared",
            );
        }
        if !self
            .expect(
                "resources.probe_stopped",
                "monitor of the stopped resource returns 7 (OCF_NOT_RUNNING)",
                Action::Monitor,
                ExitCode::NotRunning,
            )
            .await
        {
            // Running already, or broken: the lifecycle would change what it found.
            for (name, promise) in LIFECYCLE {
                self.skip(
                    name,
                    promise,
                    "the resource was not cleanly stopped before the test; stop it first",
                );
            }
            return;
        }
        let started = self
            .expect(
                "resources.start",
                "start returns 0",
                Action::Start,
                ExitCode::Success,
            )
            .await;
        if started {
            self.expect(
                "resources.start_idempotent",
                "start of a started resource returns 0",
                Action::Start,
                ExitCode::Success,
            )
            .await;
            self.expect(
                LIFECYCLE[2].0,
                LIFECYCLE[2].1,
                Action::Monitor,
                ExitCode::Success,
            )
            .await;
            // A probe (interval 0) and a recurring monitor take different paths in many
            // agents; the cluster runs the recurring one for the resource's whole life.
            self.expect_every(
                LIFECYCLE[3].0,
                LIFECYCLE[3].1,
                Action::Monitor,
                RECURRING_INTERVAL,
                ExitCode::Success,
            )
            .await;
            self.check_optional_actions(caps).await;
            self.check_promotion(caps).await;
            self.check_reload(caps).await;
            self.check_migration(caps).await;
        } else {
            for (name, promise) in &LIFECYCLE[1..LIFECYCLE.len() - 3] {
                self.skip(name, promise, "start failed");
            }
        }
        self.expect(
            "resources.stop",
            "stop returns 0",
            Action::Stop,
            ExitCode::Success,
        )
        .await;
        self.expect(
            "resources.stop_idempotent",
            "stop of a stopped resource returns 0",
            Action::Stop,
            ExitCode::Success,
        )
        .await;
        self.expect(
            "resources.monitor_stopped",
            "monitor after stop returns 7 again",
            Action::Monitor,
            ExitCode::NotRunning,
        )
        .await;
    }

    /// notify when advertised; and every optional action the meta-data does not advertise
    /// must answer 3, so a cluster manager can tell "not implemented" from "failed".
    async fn check_optional_actions(&mut self, caps: Capabilities) {
        let (name, promise) = LIFECYCLE[4];
        if self.meta.advertises(Action::Notify) {
            self.expect(name, promise, Action::Notify, ExitCode::Success)
                .await;
        } else {
            self.skip(name, promise, "notify not advertised");
        }
        let declared = |a: Action| match a {
            Action::ValidateAll => caps.validate_all,
            Action::Promote | Action::Demote => caps.promotable,
            Action::Reload => caps.reload,
            Action::ReloadAgent => caps.reload_agent,
            Action::MigrateTo | Action::MigrateFrom => caps.migrate,
            _ => false,
        };
        let mut wrong = Vec::new();
        let mut ran = 0;
        for action in OPTIONAL_ACTIONS {
            if self.meta.advertises(action) || declared(action) {
                continue;
            }
            ran += 1;
            match self.invoke(action).await {
                Err(Miss::Wrong(why) | Miss::Late(why)) => wrong.push(format!("{action}: {why}")),
                Ok(o) => {
                    let code = o.exit_code();
                    let fine = code == Some(ExitCode::ErrUnimplemented)
                        || (action == Action::Notify && code == Some(ExitCode::Success));
                    if !fine {
                        wrong.push(format!(
                            "{action} is not advertised but answered {}; answer 3 (OCF_ERR_UNIMPLEMENTED) or advertise it",
                            o.summary()
                        ));
                    }
                }
            }
        }
        let (name, promise) = LIFECYCLE[5];
        if ran == 0 {
            self.skip(name, promise, "every optional action is advertised");
        } else if wrong.is_empty() {
            self.record(name, promise, CheckOutcome::Pass, None);
        } else {
            self.record(name, promise, CheckOutcome::Fail(wrong.join("; ")), None);
        }
    }

    async fn check_promotion(&mut self, caps: Capabilities) {
        let steps = &LIFECYCLE[6..14];
        if !caps.promotable {
            for (name, promise) in steps {
                self.skip(
                    name,
                    promise,
                    "not promotable (promote/demote not declared)",
                );
            }
            return;
        }
        // A cluster manager demotes whatever it is unsure of: an unpromoted instance too.
        self.expect(steps[0].0, steps[0].1, Action::Demote, ExitCode::Success)
            .await;
        if !self
            .expect(steps[1].0, steps[1].1, Action::Promote, ExitCode::Success)
            .await
        {
            for (name, promise) in &steps[2..] {
                self.skip(name, promise, "promote failed");
            }
            return;
        }
        self.expect(steps[2].0, steps[2].1, Action::Promote, ExitCode::Success)
            .await;
        self.expect(
            steps[3].0,
            steps[3].1,
            Action::Monitor,
            ExitCode::RunningPromoted,
        )
        .await;
        self.expect_every(
            steps[4].0,
            steps[4].1,
            Action::Monitor,
            RECURRING_INTERVAL,
            ExitCode::RunningPromoted,
        )
        .await;
        if self
            .expect(steps[5].0, steps[5].1, Action::Demote, ExitCode::Success)
            .await
        {
            self.expect(steps[6].0, steps[6].1, Action::Demote, ExitCode::Success)
                .await;
            self.expect(steps[7].0, steps[7].1, Action::Monitor, ExitCode::Success)
                .await;
        } else {
            for (name, promise) in &steps[6..] {
                self.skip(name, promise, "demote failed");
            }
        }
    }

    async fn check_reload(&mut self, caps: Capabilities) {
        for (declared, action, (name, promise)) in [
            (caps.reload_agent, Action::ReloadAgent, LIFECYCLE[14]),
            (caps.reload, Action::Reload, LIFECYCLE[15]),
        ] {
            if !declared {
                let why = self.absent(action.as_str());
                self.skip(name, promise, &why);
                continue;
            }
            let outcome = match self.invoke(action).await {
                Err(Miss::Wrong(why) | Miss::Late(why)) => CheckOutcome::Fail(why),
                Ok(o) => match judge(&o, ExitCode::Success) {
                    CheckOutcome::Pass => match self.invoke(Action::Monitor).await {
                        Err(Miss::Wrong(why) | Miss::Late(why)) => {
                            CheckOutcome::Fail(format!("monitor after {action}: {why}"))
                        }
                        Ok(m) => match judge(&m, ExitCode::Success) {
                            CheckOutcome::Fail(why) => {
                                CheckOutcome::Fail(format!("monitor after {action}: {why}"))
                            }
                            other => other,
                        },
                    },
                    other => other,
                },
            };
            self.record(name, promise, outcome, None);
        }
    }

    async fn check_migration(&mut self, caps: Capabilities) {
        let steps = &LIFECYCLE[16..19];
        if !caps.migrate {
            let why = self.absent("migrate_to/migrate_from");
            for (name, promise) in steps {
                self.skip(name, promise, &why);
            }
            return;
        }
        // On one node the migration goes from here to here: away, then back.
        if !self
            .expect(steps[0].0, steps[0].1, Action::MigrateTo, ExitCode::Success)
            .await
        {
            for (name, promise) in &steps[1..] {
                self.skip(name, promise, "migrate_to failed");
            }
            return;
        }
        self.expect(
            steps[1].0,
            steps[1].1,
            Action::MigrateFrom,
            ExitCode::Success,
        )
        .await;
        self.expect(steps[2].0, steps[2].1, Action::Monitor, ExitCode::Success)
            .await;
    }
}

/// The interval of the recurring monitors the suite runs (`OCF_RESKEY_CRM_meta_interval`).
pub const RECURRING_INTERVAL: Duration = Duration::from_secs(10);

/// The optional actions an agent must answer 3 to when it does not advertise them.
const OPTIONAL_ACTIONS: [Action; 8] = [
    Action::Notify,
    Action::Promote,
    Action::Demote,
    Action::Reload,
    Action::ReloadAgent,
    Action::MigrateTo,
    Action::MigrateFrom,
    Action::ValidateAll,
];

/// The lifecycle checks after the first probe, in order (for skipping them by name).
const LIFECYCLE: [(&str, &str); 22] = [
    ("resources.start", "start returns 0"),
    (
        "resources.start_idempotent",
        "start of a started resource returns 0",
    ),
    (
        "resources.monitor_running",
        "monitor of the started resource returns 0",
    ),
    (
        "resources.monitor_recurring",
        "a recurring monitor (interval 10 s) of the started resource returns 0",
    ),
    ("resources.notify", "notify returns 0 (when advertised)"),
    (
        "resources.unadvertised_actions",
        "optional actions the meta-data does not advertise answer 3 (OCF_ERR_UNIMPLEMENTED)",
    ),
    (
        "resources.demote_unpromoted",
        "demote of the started, unpromoted resource returns 0",
    ),
    ("resources.promote", "promote returns 0"),
    (
        "resources.promote_idempotent",
        "promote of a promoted resource returns 0",
    ),
    (
        "resources.monitor_promoted",
        "monitor of the promoted resource returns 8 (OCF_RUNNING_PROMOTED)",
    ),
    (
        "resources.monitor_promoted_recurring",
        "a recurring monitor of the promoted resource returns 8",
    ),
    ("resources.demote", "demote returns 0"),
    (
        "resources.demote_idempotent",
        "demote of a demoted resource returns 0",
    ),
    (
        "resources.monitor_demoted",
        "monitor of the demoted resource returns 0",
    ),
    (
        "resources.reload_agent",
        "reload-agent returns 0 and the resource still runs",
    ),
    (
        "resources.reload",
        "reload returns 0 and the resource still runs",
    ),
    ("resources.migrate_to", "migrate_to returns 0"),
    ("resources.migrate_from", "migrate_from returns 0"),
    (
        "resources.monitor_migrated",
        "monitor after migration returns 0",
    ),
    ("resources.stop", "stop returns 0"),
    (
        "resources.stop_idempotent",
        "stop of a stopped resource returns 0",
    ),
    (
        "resources.monitor_stopped",
        "monitor after stop returns 7 again",
    ),
];

/// Pass when `o` exited with `expect`; otherwise the reason, with the agent's last stderr line.
fn judge(o: &AgentOutcome, expect: ExitCode) -> CheckOutcome {
    match &o.status {
        Status::Exited { code } if *code == expect => CheckOutcome::Pass,
        _ => {
            let stderr = o
                .stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(|l| format!("; stderr: {}", l.trim()))
                .unwrap_or_default();
            CheckOutcome::Fail(format!(
                "expected {}, {}{stderr}",
                expect.code(),
                o.summary()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_names_are_unique_and_prefixed() {
        let mut names: Vec<&str> = LIFECYCLE.iter().map(|(n, _)| *n).collect();
        assert!(names.iter().all(|n| n.starts_with("resources.")));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), LIFECYCLE.len());
        // The slices the suite skips by.
        assert_eq!(LIFECYCLE[6].0, "resources.demote_unpromoted");
        assert_eq!(LIFECYCLE[13].0, "resources.monitor_demoted");
        assert_eq!(LIFECYCLE[14].0, "resources.reload_agent");
        assert_eq!(LIFECYCLE[16].0, "resources.migrate_to");
        assert_eq!(LIFECYCLE[LIFECYCLE.len() - 3].0, "resources.stop");
    }

    #[test]
    fn capability_differences_name_both_directions() {
        let declared = Capabilities::none().promotable(true);
        let advertised = Capabilities::none().reload(true);
        let diff = declared.differences(advertised);
        assert_eq!(diff.len(), 2, "{diff:?}");
        assert!(diff[0].contains("declared but not advertised"));
        assert!(diff[1].contains("advertised but not declared"));
        assert!(declared.differences(declared).is_empty());
    }

    #[test]
    fn judge_names_the_code_and_the_last_stderr_line() {
        let o = AgentOutcome::exited(ExitCode::ErrGeneric, Duration::ZERO)
            .with_output(String::new(), "first\nlast words\n\n".into());
        match judge(&o, ExitCode::NotRunning) {
            CheckOutcome::Fail(why) => {
                assert!(why.contains("expected 7"), "{why}");
                assert!(why.contains("last words"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            judge(
                &AgentOutcome::exited(ExitCode::NotRunning, Duration::ZERO),
                ExitCode::NotRunning
            ),
            CheckOutcome::Pass
        );
    }
}
