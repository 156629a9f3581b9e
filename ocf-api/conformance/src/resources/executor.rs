//! The executor suite: any [`ExecutorAdmin`], through the promises [`Executor`] and
//! [`ResultStream`] document.
//!
//! | check | promise |
//! |---|---|
//! | `executor.register` | a registered resource is listed by `resources()`; a second one with its name is `AlreadyRegistered` |
//! | `executor.execute` | `execute` runs an operation and returns its result, which is then in the resource's history |
//! | `executor.unknown` | an operation on a resource that is not registered is `UnknownResource`; cancelling an unknown recurring operation is `UnknownOperation` |
//! | `executor.recurring` | a recurring operation with a zero interval is `InvalidRequest`; one with an interval sends its runs to subscribers until cancelled |
//! | `executor.results` | a subscriber sees the result `execute` returned |
//! | `executor.unregister` | an unregistered resource is no longer listed |
//! | `executor.stream_end` | once the executor shuts down, a subscription answers `Ok(None)`, and again `Ok(None)` |
//! | `executor.lag` | a subscriber that falls behind gets `Lagged { missed }` once, then the results after the gap (when the harness declares its buffer) |
//!
//! ```rust,no_run
//! # async fn example(harness: &dyn ocf_conformance::resources::executor::ExecutorHarness) {
//! use ocf_conformance::resources::executor::{self, ExecutorOptions};
//! let report = executor::run(harness, &ExecutorOptions::default()).await;
//! report.assert_passed();
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ocf_resources::{
    Action, Executor, ExecutorAdmin, Operation, OperationResult, ResourceError, ResourceErrorKind,
    ResourceSpec, ResultStream,
};

use crate::{CheckOutcome, Clock, Report, timeout};

const REGISTER: &str =
    "a registered resource is listed; a second registration of its name is AlreadyRegistered";
const EXECUTE: &str =
    "execute runs an operation and returns its result, which is then in the resource's history";
const UNKNOWN: &str =
    "an unknown resource is UnknownResource; an unknown recurring operation is UnknownOperation";
const RECURRING: &str = "a zero interval is InvalidRequest; a recurring operation's runs reach subscribers until it is cancelled";
const RESULTS: &str = "a subscriber sees the result execute returned";
const UNREGISTER: &str = "an unregistered resource is no longer listed";
const STREAM_END: &str =
    "once the executor shuts down, a subscription answers Ok(None), and again Ok(None)";
const LAG: &str =
    "a subscriber that falls behind gets Lagged { missed } once, then the results after the gap";

/// What an implementation gives the executor suite: fresh executors, a resource they can
/// run, and time.
#[async_trait]
pub trait ExecutorHarness: Send + Sync {
    /// A name for reports, such as `LocalExecutor`.
    fn implementation(&self) -> String;

    /// The clock the suite waits on.
    fn clock(&self) -> Arc<dyn Clock>;

    /// A fresh executor with no resources.
    async fn executor(&self) -> Result<Arc<dyn ExecutorAdmin>, String>;

    /// A resource called `name` that the executor can run, whose start, monitor and stop
    /// succeed quickly and touch nothing outside the harness (a dummy agent).
    fn resource(&self, name: &str) -> ResourceSpec;

    /// How many results an executor from [`ExecutorHarness::executor`] keeps for a
    /// subscriber that does not read, when the harness declares it: the suite then makes one
    /// lag and checks the stream goes on. `None` (the default) skips that check.
    fn subscriber_buffer(&self) -> Option<usize> {
        None
    }

    /// Shuts an executor from this harness down, so that its result streams end. The default
    /// drops it, which ends an in-process executor whose last handle it was.
    async fn shut_down(&self, executor: Arc<dyn ExecutorAdmin>) {
        drop(executor);
    }
}

/// How the executor suite runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ExecutorOptions {
    /// The timeout of every operation the suite runs, and how long it waits for a result on
    /// a stream.
    pub operation_timeout: Duration,
    /// The interval of the recurring operation the suite starts (short: it waits for a run).
    pub recurring_interval: Duration,
}

impl Default for ExecutorOptions {
    fn default() -> Self {
        Self {
            operation_timeout: Duration::from_secs(20),
            recurring_interval: Duration::from_millis(200),
        }
    }
}

/// Runs the executor suite against executors from `harness`.
pub async fn run(harness: &dyn ExecutorHarness, options: &ExecutorOptions) -> Report {
    let mut run = Run {
        report: Report::new("executor", harness.implementation()),
        clock: harness.clock(),
        options: options.clone(),
    };
    match harness.executor().await {
        Ok(exec) => {
            run.check_lifecycle(harness, exec.as_ref()).await;
            harness.shut_down(exec).await;
        }
        Err(why) => {
            run.report.record(
                "executor.register",
                REGISTER,
                CheckOutcome::Fail(format!("no executor: {why}")),
            );
        }
    }
    run.check_stream_end(harness).await;
    run.check_lag(harness).await;
    run.report
}

struct Run {
    report: Report,
    clock: Arc<dyn Clock>,
    options: ExecutorOptions,
}

/// Says whether `result` failed with an error of `kind`.
fn expect_kind<T: std::fmt::Debug>(
    what: &str,
    result: Result<T, ResourceError>,
    kind: ResourceErrorKind,
) -> Result<(), String> {
    match result {
        Err(e) if e.kind() == kind => Ok(()),
        Err(e) => Err(format!(
            "{what}: expected {kind:?}, got {:?}: {e}",
            e.kind()
        )),
        Ok(v) => Err(format!("{what}: expected {kind:?}, got Ok({v:?})")),
    }
}

impl Run {
    fn op(&self, action: Action) -> Operation {
        Operation::new(action, self.options.operation_timeout)
    }

    /// The next item of `stream`, or why there was none in time.
    async fn next(
        &self,
        stream: &mut dyn ResultStream,
    ) -> Result<Result<Option<OperationResult>, ResourceError>, String> {
        let limit = self.options.operation_timeout;
        timeout(self.clock.as_ref(), limit, stream.next_result())
            .await
            .ok_or_else(|| format!("no result within {} ms", ocf_core::millis::as_millis(limit)))
    }

    /// Reads `stream` until the result with `call_id`, failing on an error or the end.
    async fn read_until(&self, stream: &mut dyn ResultStream, call_id: u64) -> Result<(), String> {
        loop {
            match self.next(stream).await? {
                Ok(Some(r)) if r.call_id == call_id => return Ok(()),
                Ok(Some(_)) => {}
                Ok(None) => return Err("the stream ended while the executor runs".into()),
                Err(e) => return Err(format!("the stream failed: {e}")),
            }
        }
    }

    async fn check_lifecycle(&mut self, harness: &dyn ExecutorHarness, exec: &dyn ExecutorAdmin) {
        let spec = harness.resource("conf-exec");
        let name = spec.name.clone();
        let registered = check_register(exec, spec.clone()).await;
        let ok = registered.is_ok();
        self.report
            .record_result("executor.register", REGISTER, registered);
        if ok {
            self.check_registered(exec, &name).await;
        } else {
            let why = "the resource could not be registered".to_owned();
            for (check, promise) in [
                ("executor.execute", EXECUTE),
                ("executor.results", RESULTS),
                ("executor.recurring", RECURRING),
            ] {
                self.report
                    .record(check, promise, CheckOutcome::Skip(why.clone()));
            }
        }
        let unknown = check_unknown(exec, &name).await;
        self.report
            .record_result("executor.unknown", UNKNOWN, unknown);
        let unregistered = check_unregister(exec, &name, ok).await;
        self.report
            .record_result("executor.unregister", UNREGISTER, unregistered);
    }

    /// The checks that need the resource `name` registered; they leave it stopped.
    async fn check_registered(&mut self, exec: &dyn ExecutorAdmin, name: &str) {
        let subscribed = exec.subscribe().await;
        let executed = self.check_execute(exec, name).await;
        let call_id = executed.as_ref().ok().copied();
        self.report
            .record_result("executor.execute", EXECUTE, executed.map(|_| ()));
        let results = match (subscribed, call_id) {
            (Ok(mut s), Some(id)) => self.read_until(s.as_mut(), id).await,
            (Err(e), _) => Err(format!("subscribe(): {e}")),
            (_, None) => Err("execute failed, so there was no result to see".into()),
        };
        self.report
            .record_result("executor.results", RESULTS, results);
        let recurring = self.check_recurring(exec, name).await;
        self.report
            .record_result("executor.recurring", RECURRING, recurring);
        // Leave nothing running.
        let _ = exec.execute(name, self.op(Action::Stop)).await;
    }

    /// Starts the resource and checks the result is in its history; the result's call id.
    async fn check_execute(&self, exec: &dyn ExecutorAdmin, name: &str) -> Result<u64, String> {
        let r = exec
            .execute(name, self.op(Action::Start))
            .await
            .map_err(|e| format!("execute(start): {e}"))?;
        if !r.succeeded() || r.resource != name || r.action != Action::Start {
            return Err(format!("start of {name} answered {r:?}"));
        }
        let history = exec
            .history(name)
            .await
            .map_err(|e| format!("history(): {e}"))?;
        if !history.contains(&r) {
            return Err(format!("the history of {name} lacks the start's result"));
        }
        Ok(r.call_id)
    }

    async fn check_recurring(&self, exec: &dyn ExecutorAdmin, name: &str) -> Result<(), String> {
        expect_kind(
            "start_recurring with a zero interval",
            exec.start_recurring(name, self.op(Action::Monitor)).await,
            ResourceErrorKind::InvalidRequest,
        )?;
        let mut stream = exec
            .subscribe()
            .await
            .map_err(|e| format!("subscribe(): {e}"))?;
        let op = self
            .op(Action::Monitor)
            .every(self.options.recurring_interval);
        let id = exec
            .start_recurring(name, op)
            .await
            .map_err(|e| format!("start_recurring(monitor): {e}"))?;
        let seen = loop {
            match self.next(stream.as_mut()).await {
                Ok(Ok(Some(r))) if r.recurring == Some(id) => break Ok(r),
                Ok(Ok(Some(_))) => {}
                Ok(Ok(None)) => break Err("the stream ended while the executor runs".into()),
                Ok(Err(e)) => break Err(format!("the stream failed: {e}")),
                Err(why) => break Err(format!("no run of the recurring monitor: {why}")),
            }
        };
        let cancelled = exec.cancel_recurring(name, id).await;
        let r = seen?;
        cancelled.map_err(|e| format!("cancel_recurring({id}): {e}"))?;
        if r.interval != self.options.recurring_interval || !r.succeeded() {
            return Err(format!("the recurring monitor's run answered {r:?}"));
        }
        expect_kind(
            "cancelling it a second time",
            exec.cancel_recurring(name, id).await,
            ResourceErrorKind::UnknownOperation,
        )
    }

    async fn check_stream_end(&mut self, harness: &dyn ExecutorHarness) {
        let result = async {
            let fresh = harness.executor().await?;
            let mut stream = fresh
                .subscribe()
                .await
                .map_err(|e| format!("subscribe(): {e}"))?;
            harness.shut_down(fresh).await;
            for call in ["first", "second"] {
                match self.next(stream.as_mut()).await {
                    Ok(Ok(None)) => {}
                    Ok(Ok(Some(r))) => {
                        return Err(format!(
                            "the {call} call after shutdown gave a result: {r:?}"
                        ));
                    }
                    Ok(Err(e)) => {
                        return Err(format!(
                            "the {call} call after shutdown gave an error, not Ok(None): {e}"
                        ));
                    }
                    Err(why) => return Err(format!("the {call} call after shutdown: {why}")),
                }
            }
            Ok(())
        }
        .await;
        self.report
            .record_result("executor.stream_end", STREAM_END, result);
    }

    async fn check_lag(&mut self, harness: &dyn ExecutorHarness) {
        let Some(buffer) = harness.subscriber_buffer() else {
            let why = "the harness does not declare its subscriber buffer".to_owned();
            self.report
                .record("executor.lag", LAG, CheckOutcome::Skip(why));
            return;
        };
        let result = async {
            let exec = harness.executor().await?;
            let outcome = self.make_lag(harness, exec.as_ref(), buffer).await;
            harness.shut_down(exec).await;
            outcome
        }
        .await;
        self.report.record_result("executor.lag", LAG, result);
    }

    /// Runs `buffer + 1` operations past a subscriber that does not read, then reads: one
    /// `Lagged`, then results up to the last operation's.
    async fn make_lag(
        &self,
        harness: &dyn ExecutorHarness,
        exec: &dyn ExecutorAdmin,
        buffer: usize,
    ) -> Result<(), String> {
        let spec = harness.resource("conf-lag");
        let name = spec.name.clone();
        exec.register(spec)
            .await
            .map_err(|e| format!("register(): {e}"))?;
        let mut stream = exec
            .subscribe()
            .await
            .map_err(|e| format!("subscribe(): {e}"))?;
        let mut last = 0;
        for _ in 0..=buffer {
            last = exec
                .execute(&name, self.op(Action::Monitor))
                .await
                .map_err(|e| format!("execute(monitor): {e}"))?
                .call_id;
        }
        let mut lagged = false;
        loop {
            match self.next(stream.as_mut()).await? {
                Err(ResourceError::Lagged { missed }) if !lagged && missed > 0 => lagged = true,
                Err(e) => return Err(format!("expected one Lagged, then results; got {e}")),
                Ok(None) => {
                    return Err("the stream ended instead of going on after the gap".into());
                }
                Ok(Some(r)) if r.call_id == last => {
                    return if lagged {
                        Ok(())
                    } else {
                        Err(
                            "every result arrived although the subscriber never read: no Lagged"
                                .into(),
                        )
                    };
                }
                Ok(Some(_)) => {}
            }
        }
    }
}

async fn check_register(exec: &dyn ExecutorAdmin, spec: ResourceSpec) -> Result<(), String> {
    let name = spec.name.clone();
    exec.register(spec.clone())
        .await
        .map_err(|e| format!("register({name}): {e}"))?;
    let listed = exec
        .resources()
        .await
        .map_err(|e| format!("resources(): {e}"))?;
    if !listed.iter().any(|r| r.name == name) {
        return Err(format!("resources() does not list {name}"));
    }
    expect_kind(
        "registering the name again",
        exec.register(spec).await,
        ResourceErrorKind::AlreadyRegistered,
    )
}

async fn check_unknown(exec: &dyn Executor, name: &str) -> Result<(), String> {
    let missing = "conf-no-such-resource";
    let op = Operation::new(Action::Monitor, Duration::from_secs(5));
    expect_kind(
        "execute on an unknown resource",
        exec.execute(missing, op).await,
        ResourceErrorKind::UnknownResource,
    )?;
    expect_kind(
        "history of an unknown resource",
        exec.history(missing).await,
        ResourceErrorKind::UnknownResource,
    )?;
    expect_kind(
        "cancelling a recurring operation that was never started",
        exec.cancel_recurring(name, ocf_resources::RecurringId(u64::MAX))
            .await,
        ResourceErrorKind::UnknownOperation,
    )
}

async fn check_unregister(
    exec: &dyn ExecutorAdmin,
    name: &str,
    registered: bool,
) -> Result<(), String> {
    if !registered {
        return Ok(());
    }
    exec.unregister(name)
        .await
        .map_err(|e| format!("unregister({name}): {e}"))?;
    let listed = exec
        .resources()
        .await
        .map_err(|e| format!("resources(): {e}"))?;
    if listed.iter().any(|r| r.name == name) {
        return Err(format!("resources() still lists {name} after unregister"));
    }
    expect_kind(
        "unregistering it again",
        exec.unregister(name).await,
        ResourceErrorKind::UnknownResource,
    )
}
