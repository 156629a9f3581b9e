//! What a suite returns: one outcome per check. The one report type of the workspace: the
//! suites return it, and `ocf ra test` and `ocf fence test` print it (as text, or as JSON in
//! the shape [`Report::SCHEMA`] names).

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CheckOutcome {
    /// The implementation kept the promise.
    Pass,
    /// It did not; the reason says what was seen against what was promised.
    Fail(String),
    /// Not run: the implementation declared it lacks the capability, or an earlier failure
    /// left nothing to check.
    Skip(String),
    /// Advice: the implementation does something worth a look that its users cope with (a
    /// lint). It does not fail the report.
    Warn(String),
}

impl CheckOutcome {
    /// The reason a failure, skip or warning gives; `None` for a pass.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Pass => None,
            Self::Fail(why) | Self::Skip(why) | Self::Warn(why) => Some(why),
        }
    }
}

/// One named check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// A stable name, such as `membership.agreement`.
    pub name: &'static str,
    /// What the check promises, in one sentence.
    pub promise: &'static str,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: CheckOutcome,
    /// How long the operation it judged took, for checks that timed one.
    #[serde(
        rename = "duration_ms",
        with = "ocf_core::millis::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub duration: Option<Duration>,
}

/// The checks of one suite run against one implementation.
///
/// Its JSON (schema 1, [`Report::SCHEMA`]) is what `ocf ra test --json` and
/// `ocf fence test --json` print:
///
/// ```
/// use ocf_conformance::{CheckOutcome, Report};
/// let mut r = Report::new("resources", "ocf:heartbeat:Dummy");
/// r.record("resources.start", "start returns 0", CheckOutcome::Pass);
/// r.record("lint.unknown_action", "an unknown action returns 3", CheckOutcome::Warn("got 1".into()));
/// let json = serde_json::to_value(&r).unwrap();
/// assert_eq!(json["schema"], 1);
/// assert_eq!(json["passed"], true);
/// assert_eq!(json["checks"][0]["outcome"], "pass");
/// assert_eq!(json["checks"][1]["outcome"], "warn");
/// assert_eq!(json["checks"][1]["reason"], "got 1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// The suite's name (`resources`, `fence_device`, `executor`, ...).
    pub suite: &'static str,
    /// The implementation under test, as it named itself (an agent id, a fence agent's name).
    pub implementation: String,
    /// How long the whole run took, when the runner measured it.
    pub duration: Option<Duration>,
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
}

/// Schema 1: `schema`, `suite`, `implementation`, `passed` (no check failed), `duration_ms`
/// (when measured) and `checks`, each `{name, promise, outcome, reason?, duration_ms?}` with
/// `outcome` one of `pass`, `fail`, `skip`, `warn`.
impl Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Report", 6)?;
        st.serialize_field("schema", &Self::SCHEMA)?;
        st.serialize_field("suite", self.suite)?;
        st.serialize_field("implementation", &self.implementation)?;
        st.serialize_field("passed", &self.passed())?;
        match self.duration {
            Some(d) => st.serialize_field("duration_ms", &ocf_core::millis::as_millis(d))?,
            None => st.skip_field("duration_ms")?,
        }
        st.serialize_field("checks", &self.checks)?;
        st.end()
    }
}

impl Report {
    /// The version of the report's JSON shape.
    pub const SCHEMA: u32 = 1;

    /// An empty report.
    pub fn new(suite: &'static str, implementation: impl Into<String>) -> Self {
        Self {
            suite,
            implementation: implementation.into(),
            duration: None,
            checks: Vec::new(),
        }
    }

    /// Sets how long the whole run took.
    #[must_use]
    pub fn with_duration(mut self, duration: Duration) -> Self {
        self.duration = Some(duration);
        self
    }

    /// Records one check.
    pub fn record(&mut self, name: &'static str, promise: &'static str, outcome: CheckOutcome) {
        self.checks.push(Check {
            name,
            promise,
            outcome,
            duration: None,
        });
    }

    /// Records one check that judged an operation which took `duration`.
    pub fn record_timed(
        &mut self,
        name: &'static str,
        promise: &'static str,
        outcome: CheckOutcome,
        duration: Option<Duration>,
    ) {
        self.checks.push(Check {
            name,
            promise,
            outcome,
            duration,
        });
    }

    /// Records a timed check, shows it to `progress`, and says whether it passed: the step
    /// every suite takes after each check.
    pub(crate) fn record_shown(
        &mut self,
        check: (&'static str, &'static str),
        outcome: CheckOutcome,
        duration: Option<Duration>,
        progress: &mut (dyn FnMut(&Check) + Send),
    ) -> bool {
        let passed = outcome == CheckOutcome::Pass;
        self.record_timed(check.0, check.1, outcome, duration);
        if let Some(c) = self.checks.last() {
            progress(c);
        }
        passed
    }

    /// The outcome of the check called `name`, if it ran.
    pub fn outcome(&self, name: &str) -> Option<&CheckOutcome> {
        self.checks
            .iter()
            .find(|c| c.name == name)
            .map(|c| &c.outcome)
    }

    /// Records a pass or a failure from a `Result`.
    pub fn record_result(
        &mut self,
        name: &'static str,
        promise: &'static str,
        result: Result<(), String>,
    ) {
        let outcome = match result {
            Ok(()) => CheckOutcome::Pass,
            Err(reason) => CheckOutcome::Fail(reason),
        };
        self.record(name, promise, outcome);
    }

    /// True when no check failed (skips do not count against it).
    pub fn passed(&self) -> bool {
        !self
            .checks
            .iter()
            .any(|c| matches!(c.outcome, CheckOutcome::Fail(_)))
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks
            .iter()
            .filter(|c| matches!(c.outcome, CheckOutcome::Fail(_)))
    }

    /// Panics with the whole report when a check failed: for use inside `#[test]`s.
    #[track_caller]
    pub fn assert_passed(&self) {
        assert!(self.passed(), "conformance failures:\n{self}");
    }
}

impl fmt::Display for Report {
    /// One line per check (`pass`, `FAIL`, `skip`, `warn`, its time when measured, and the
    /// reason), then a summary line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} on {}:", self.suite, self.implementation)?;
        for c in &self.checks {
            let tag = match &c.outcome {
                CheckOutcome::Pass => "pass",
                CheckOutcome::Fail(_) => "FAIL",
                CheckOutcome::Warn(_) => "warn",
                CheckOutcome::Skip(_) => "skip",
            };
            let took = c
                .duration
                .map(|d| format!(" [{} ms]", d.as_millis()))
                .unwrap_or_default();
            match c.outcome.reason() {
                Some(why) => writeln!(f, "  {tag}  {}{took}: {why}", c.name)?,
                None => writeln!(f, "  {tag}  {}{took}", c.name)?,
            }
        }
        let count = |pick: fn(&CheckOutcome) -> bool| {
            self.checks.iter().filter(|c| pick(&c.outcome)).count()
        };
        let failed = count(|o| matches!(o, CheckOutcome::Fail(_)));
        let warned = count(|o| matches!(o, CheckOutcome::Warn(_)));
        let took = self
            .duration
            .map(|d| format!(", {} ms", d.as_millis()))
            .unwrap_or_default();
        writeln!(
            f,
            "{}: {} ({}: {} checks, {failed} failed, {warned} warnings{took})",
            self.implementation,
            if self.passed() {
                "conformant"
            } else {
                "NOT conformant"
            },
            self.suite,
            self.checks.len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_fails_the_report_and_a_skip_does_not() {
        let mut r = Report::new("s", "impl");
        r.record("a", "p", CheckOutcome::Pass);
        r.record("b", "p", CheckOutcome::Skip("no".into()));
        assert!(r.passed());
        r.record_result("c", "p", Err("broken".into()));
        assert!(!r.passed());
        assert_eq!(r.failures().count(), 1);
        assert!(r.to_string().contains("FAIL  c: broken"));
        r.record("d", "p", CheckOutcome::Warn("odd".into()));
        assert!(!r.passed());
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["schema"], Report::SCHEMA);
        assert_eq!(json["passed"], false);
        assert!(json.get("duration_ms").is_none());
        assert_eq!(json["checks"][2]["outcome"], "fail");
        assert_eq!(json["checks"][2]["reason"], "broken");
        assert_eq!(json["checks"][3]["outcome"], "warn");
        assert!(json["checks"][0].get("reason").is_none());
    }

    #[test]
    fn a_warning_alone_does_not_fail_the_report() {
        let mut r = Report::new("s", "impl").with_duration(Duration::from_millis(7));
        r.record("a", "p", CheckOutcome::Warn("odd".into()));
        assert!(r.passed());
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["passed"], true);
        assert_eq!(json["duration_ms"], 7);
        assert!(
            r.to_string()
                .contains("impl: conformant (s: 1 checks, 0 failed, 1 warnings, 7 ms)")
        );
    }
}
