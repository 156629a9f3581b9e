//! What a suite returns: one outcome per check.

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The suite's name.
    pub suite: &'static str,
    /// The implementation under test, as it named itself.
    pub implementation: String,
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
}

impl Report {
    /// An empty report.
    pub fn new(suite: &'static str, implementation: impl Into<String>) -> Self {
        Self {
            suite,
            implementation: implementation.into(),
            checks: Vec::new(),
        }
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
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} on {}:", self.suite, self.implementation)?;
        for c in &self.checks {
            match &c.outcome {
                CheckOutcome::Pass => writeln!(f, "  pass  {}", c.name)?,
                CheckOutcome::Fail(why) => writeln!(f, "  FAIL  {}: {why}", c.name)?,
                CheckOutcome::Skip(why) => writeln!(f, "  skip  {}: {why}", c.name)?,
            }
        }
        Ok(())
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
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["checks"][2]["outcome"], "fail");
        assert_eq!(json["checks"][2]["reason"], "broken");
    }
}
