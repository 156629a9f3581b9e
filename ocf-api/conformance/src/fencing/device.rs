//! The fence device suite: the promises of [`FenceDevice`], checked on one device.

use std::future::Future;
use std::time::Duration;

use ocf_core::NodeName;
use ocf_fencing::{DeviceAction, FenceAction, FenceDevice, FenceError, FenceErrorKind, PowerState};

use crate::{Check, CheckOutcome, Clock, Report, timeout};

/// What to test a device with.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeviceOptions {
    /// A node the device is configured to fence.
    pub target: NodeName,
    /// A node the device must refuse (a name that is no real host).
    pub non_target: NodeName,
    /// Run the power round trip (off, on, reboot of [`DeviceOptions::target`]). Only for
    /// simulators or a node you can spare: it cuts real power.
    pub power_cycle: bool,
    /// The device reports per-node power state (`status`). cluster-glue plugins cannot.
    pub status: bool,
    /// The time each device operation may take.
    pub timeout: Duration,
    /// How much longer than [`DeviceOptions::timeout`] the suite waits before it calls an
    /// operation hung (a device must give up in time by itself).
    pub grace: Duration,
}

impl DeviceOptions {
    /// Options for a device that fences `target` and must refuse `non_target`: status
    /// supported, no power round trip, 30 s per operation.
    pub fn new(target: NodeName, non_target: NodeName) -> Self {
        Self {
            target,
            non_target,
            power_cycle: false,
            status: true,
            timeout: Duration::from_secs(30),
            grace: Duration::from_secs(5),
        }
    }

    /// Allows (or forbids) the power round trip.
    #[must_use]
    pub fn power_cycle(mut self, on: bool) -> Self {
        self.power_cycle = on;
        self
    }

    /// Declares whether the device reports per-node power state.
    #[must_use]
    pub fn status(mut self, on: bool) -> Self {
        self.status = on;
        self
    }

    /// Sets the time each operation may take.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Runs the fence device suite against `device`.
///
/// | check | promise |
/// |---|---|
/// | `fence_device.metadata` | the meta-data answers, names the device's kind and lists `off` or `reboot` |
/// | `fence_device.targets_listed` | `list_targets` holds the target and not the non-target |
/// | `fence_device.can_fence` | `can_fence` is true for the target and false for the non-target |
/// | `fence_device.monitor` | `monitor` succeeds |
/// | `fence_device.status` | `status` of the target answers `on` or `off` (when declared) |
/// | `fence_device.refuses_non_target` | an operation on the non-target fails with a typed "not a target" error (`FenceErrorKind::NoDevice`) |
/// | `fence_device.off` | `off` is confirmed, and status then says off |
/// | `fence_device.on` | `on` is confirmed, and status then says on |
/// | `fence_device.reboot` | `reboot` is confirmed, and status then says on |
/// | `fence_device.restored` | the target is left in the power state it was found in |
/// | `fence_device.within_timeout` | every operation returned within its timeout |
pub async fn run_device(
    device: &dyn FenceDevice,
    clock: &dyn Clock,
    options: &DeviceOptions,
) -> Report {
    run_device_with_progress(device, clock, options, &mut |_| {}).await
}

/// Runs the fence device suite, calling `progress` after each check.
pub async fn run_device_with_progress(
    device: &dyn FenceDevice,
    clock: &dyn Clock,
    options: &DeviceOptions,
    progress: &mut (dyn FnMut(&Check) + Send),
) -> Report {
    let mut run = DeviceRun {
        clock,
        options,
        report: Report::new("fence_device", device.id().to_string()),
        progress,
        late: Vec::new(),
    };
    let o = options;
    let t = o.timeout;

    let (md, took) = run.call(DeviceAction::Metadata, device.metadata(t)).await;
    let supports_on = md.as_ref().map_or(true, |m| m.supports(DeviceAction::On));
    let outcome = match md {
        Err(e) => CheckOutcome::Fail(e.to_string()),
        Ok(m) if m.name.trim().is_empty() => CheckOutcome::Fail("the meta-data has no name".into()),
        Ok(m) if !(m.supports(DeviceAction::Off) || m.supports(DeviceAction::Reboot)) => {
            CheckOutcome::Fail(format!(
                "{} lists neither off nor reboot (it lists: {})",
                m.name,
                m.actions.join(" ")
            ))
        }
        Ok(_) => CheckOutcome::Pass,
    };
    run.record(
        "fence_device.metadata",
        "the meta-data answers, names the device's kind and lists off or reboot",
        outcome,
        took,
    );

    let (listed, took) = run.call(DeviceAction::List, device.list_targets(t)).await;
    let outcome = match listed {
        Err(e) => CheckOutcome::Fail(e.to_string()),
        Ok(l) if !l.contains(&o.target) => {
            CheckOutcome::Fail(format!("{} is not among {l:?}", o.target))
        }
        Ok(l) if l.contains(&o.non_target) => {
            CheckOutcome::Fail(format!("the non-target {} is listed", o.non_target))
        }
        Ok(_) => CheckOutcome::Pass,
    };
    run.record(
        "fence_device.targets_listed",
        "list_targets holds the target and not the non-target",
        outcome,
        took,
    );

    let (yes, took_yes) = run
        .call(DeviceAction::List, device.can_fence(&o.target, t))
        .await;
    let (no, took_no) = run
        .call(DeviceAction::List, device.can_fence(&o.non_target, t))
        .await;
    let outcome = match (yes, no) {
        (Err(e), _) | (_, Err(e)) => CheckOutcome::Fail(e.to_string()),
        (Ok(false), _) => CheckOutcome::Fail(format!("can_fence({}) is false", o.target)),
        (_, Ok(true)) => CheckOutcome::Fail(format!("can_fence({}) is true", o.non_target)),
        (Ok(true), Ok(false)) => CheckOutcome::Pass,
    };
    run.record(
        "fence_device.can_fence",
        "can_fence is true for the target and false for the non-target",
        outcome,
        took_yes.zip(took_no).map(|(a, b)| a + b),
    );

    let (mon, took) = run.call(DeviceAction::Monitor, device.monitor(t)).await;
    run.record(
        "fence_device.monitor",
        "monitor succeeds",
        mon.map_or_else(
            |e| CheckOutcome::Fail(e.to_string()),
            |()| CheckOutcome::Pass,
        ),
        took,
    );

    let status_promise = "status of the target answers on or off";
    let initial = if o.status {
        let (st, took) = run
            .call(DeviceAction::Status, device.status(&o.target, t))
            .await;
        let (outcome, initial) = match st {
            Err(e) => (CheckOutcome::Fail(e.to_string()), None),
            Ok(PowerState::Unknown) => (
                CheckOutcome::Fail("the device answered, but could not tell".into()),
                None,
            ),
            Ok(s) => (CheckOutcome::Pass, Some(s)),
        };
        run.record("fence_device.status", status_promise, outcome, took);
        initial
    } else {
        run.skip(
            "fence_device.status",
            status_promise,
            "per-node status not declared",
        );
        None
    };

    let promise = "an operation on the non-target fails with a typed not-a-target error";
    let (refused, took) = if o.power_cycle {
        run.call(
            DeviceAction::Off,
            device.fence(&o.non_target, FenceAction::Off, t),
        )
        .await
        .map_err_kind()
    } else {
        run.call(DeviceAction::Status, device.status(&o.non_target, t))
            .await
            .map_err_kind()
    };
    let outcome = match refused {
        Ok(()) => CheckOutcome::Fail(format!("the device accepted {}", o.non_target)),
        Err((FenceErrorKind::NoDevice, _)) => CheckOutcome::Pass,
        Err((kind, why)) => CheckOutcome::Fail(format!(
            "refused, but as {kind:?}, not NoDevice (FenceError::NotATarget): {why}"
        )),
    };
    run.record("fence_device.refuses_non_target", promise, outcome, took);

    run.round_trip(device, initial, supports_on).await;

    let late = std::mem::take(&mut run.late);
    run.record(
        "fence_device.within_timeout",
        "every operation returned within its timeout",
        if late.is_empty() {
            CheckOutcome::Pass
        } else {
            CheckOutcome::Fail(late.join("; "))
        },
        None,
    );
    run.report
}

/// The three power checks, in order, with their promises.
const ROUND_TRIP: [(&str, &str, FenceAction, PowerState); 3] = [
    (
        "fence_device.off",
        "off is confirmed, and status then says off",
        FenceAction::Off,
        PowerState::Off,
    ),
    (
        "fence_device.on",
        "on is confirmed, and status then says on",
        FenceAction::On,
        PowerState::On,
    ),
    (
        "fence_device.reboot",
        "reboot is confirmed, and status then says on",
        FenceAction::Reboot,
        PowerState::On,
    ),
];

const RESTORED: (&str, &str) = (
    "fence_device.restored",
    "the target is left in the power state it was found in",
);

struct DeviceRun<'a> {
    clock: &'a dyn Clock,
    options: &'a DeviceOptions,
    report: Report,
    progress: &'a mut (dyn FnMut(&Check) + Send),
    late: Vec<String>,
}

/// A call's answer: the value, or the error's kind and text.
trait KindResult<T> {
    fn map_err_kind(self) -> (Result<(), (FenceErrorKind, String)>, Option<Duration>);
}

impl KindResult<()> for (Result<(), FenceError>, Option<Duration>) {
    fn map_err_kind(self) -> (Result<(), (FenceErrorKind, String)>, Option<Duration>) {
        (self.0.map_err(|e| (e.kind(), e.to_string())), self.1)
    }
}

impl KindResult<PowerState> for (Result<PowerState, FenceError>, Option<Duration>) {
    fn map_err_kind(self) -> (Result<(), (FenceErrorKind, String)>, Option<Duration>) {
        (
            self.0.map(drop).map_err(|e| (e.kind(), e.to_string())),
            self.1,
        )
    }
}

impl DeviceRun<'_> {
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

    /// Runs one device operation under the clock; a hang or a device time-out is noted late.
    async fn call<T, F>(
        &mut self,
        what: DeviceAction,
        work: F,
    ) -> (Result<T, FenceError>, Option<Duration>)
    where
        F: Future<Output = Result<T, FenceError>>,
    {
        let limit = self.options.timeout.saturating_add(self.options.grace);
        let started = self.clock.now();
        match timeout(self.clock, limit, work).await {
            None => {
                let why = format!(
                    "{what} did not return within {} ms",
                    ocf_core::millis::as_millis(limit)
                );
                self.late.push(why.clone());
                (Err(FenceError::unavailable(why)), None)
            }
            Some(r) => {
                if let Err(e @ FenceError::DeviceTimedOut { .. }) = &r {
                    self.late.push(e.to_string());
                }
                let took = started
                    .zip(self.clock.now())
                    .map(|(a, b)| b.saturating_sub(a));
                (r, took)
            }
        }
    }

    async fn round_trip(
        &mut self,
        device: &dyn FenceDevice,
        initial: Option<PowerState>,
        supports_on: bool,
    ) {
        let o = self.options;
        if !o.power_cycle {
            for (name, promise, ..) in ROUND_TRIP {
                self.skip(
                    name,
                    promise,
                    "would cut real power: allow it with DeviceOptions::power_cycle",
                );
            }
            self.skip(RESTORED.0, RESTORED.1, "no power round trip");
            return;
        }
        if o.status && initial.is_none() {
            for (name, promise, ..) in ROUND_TRIP {
                self.skip(
                    name,
                    promise,
                    "status does not work, so the round trip cannot be checked",
                );
            }
            self.skip(RESTORED.0, RESTORED.1, "no power round trip");
            return;
        }
        for (name, promise, action, expect) in ROUND_TRIP {
            if action == FenceAction::On && !supports_on {
                self.skip(name, promise, "the device does not list on");
                continue;
            }
            let (done, took) = self
                .call(action.into(), device.fence(&o.target, action, o.timeout))
                .await;
            let outcome = match done {
                Err(e) => CheckOutcome::Fail(e.to_string()),
                Ok(()) if !o.status => CheckOutcome::Pass,
                Ok(()) => match self
                    .call(DeviceAction::Status, device.status(&o.target, o.timeout))
                    .await
                    .0
                {
                    Ok(s) if s == expect => CheckOutcome::Pass,
                    Ok(s) => CheckOutcome::Fail(format!("done, but status then says {s}")),
                    Err(e) => CheckOutcome::Fail(format!("done, but status then failed: {e}")),
                },
            };
            self.record(name, promise, outcome, took);
        }
        match initial {
            Some(PowerState::Off) => {
                let (done, took) = self
                    .call(
                        DeviceAction::Off,
                        device.fence(&o.target, FenceAction::Off, o.timeout),
                    )
                    .await;
                self.record(
                    RESTORED.0,
                    RESTORED.1,
                    done.map_or_else(
                        |e| CheckOutcome::Fail(e.to_string()),
                        |()| CheckOutcome::Pass,
                    ),
                    took,
                );
            }
            Some(_) => {
                self.record(RESTORED.0, RESTORED.1, CheckOutcome::Pass, None);
            }
            None => self.skip(
                RESTORED.0,
                RESTORED.1,
                "the initial state is unknown (no status): the target is left on",
            ),
        }
    }
}
