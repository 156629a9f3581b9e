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
    let supports_on = run.check_metadata(device).await;
    run.check_listing(device).await;
    run.check_monitor(device).await;
    let initial = run.check_status(device).await;
    run.check_refusal(device).await;
    run.round_trip(device, initial, supports_on).await;
    run.check_within_timeout();
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

impl DeviceRun<'_> {
    /// `fence_device.metadata`; whether the device says it supports `on`.
    async fn check_metadata(&mut self, device: &dyn FenceDevice) -> bool {
        let (md, took) = self
            .call(
                DeviceAction::Metadata,
                device.metadata(self.options.timeout),
            )
            .await;
        let supports_on = md.as_ref().map_or(true, |m| m.supports(DeviceAction::On));
        let outcome = match md {
            Err(e) => CheckOutcome::Fail(e.to_string()),
            Ok(m) if m.name.trim().is_empty() => {
                CheckOutcome::Fail("the meta-data has no name".into())
            }
            Ok(m) if !(m.supports(DeviceAction::Off) || m.supports(DeviceAction::Reboot)) => {
                CheckOutcome::Fail(format!(
                    "{} lists neither off nor reboot (it lists: {})",
                    m.name,
                    m.actions.join(" ")
                ))
            }
            Ok(_) => CheckOutcome::Pass,
        };
        self.record(
            "fence_device.metadata",
            "the meta-data answers, names the device's kind and lists off or reboot",
            outcome,
            took,
        );
        supports_on
    }

    /// `fence_device.targets_listed` and `fence_device.can_fence`.
    async fn check_listing(&mut self, device: &dyn FenceDevice) {
        let (listed, took) = self
            .call(
                DeviceAction::List,
                device.list_targets(self.options.timeout),
            )
            .await;
        let outcome = match listed {
            Err(e) => CheckOutcome::Fail(e.to_string()),
            Ok(l) if !l.contains(&self.options.target) => {
                CheckOutcome::Fail(format!("{} is not among {l:?}", self.options.target))
            }
            Ok(l) if l.contains(&self.options.non_target) => CheckOutcome::Fail(format!(
                "the non-target {} is listed",
                self.options.non_target
            )),
            Ok(_) => CheckOutcome::Pass,
        };
        self.record(
            "fence_device.targets_listed",
            "list_targets holds the target and not the non-target",
            outcome,
            took,
        );

        let (yes, took_yes) = self
            .call(
                DeviceAction::List,
                device.can_fence(&self.options.target, self.options.timeout),
            )
            .await;
        let (no, took_no) = self
            .call(
                DeviceAction::List,
                device.can_fence(&self.options.non_target, self.options.timeout),
            )
            .await;
        let outcome = match (yes, no) {
            (Err(e), _) | (_, Err(e)) => CheckOutcome::Fail(e.to_string()),
            (Ok(false), _) => {
                CheckOutcome::Fail(format!("can_fence({}) is false", self.options.target))
            }
            (_, Ok(true)) => {
                CheckOutcome::Fail(format!("can_fence({}) is true", self.options.non_target))
            }
            (Ok(true), Ok(false)) => CheckOutcome::Pass,
        };
        self.record(
            "fence_device.can_fence",
            "can_fence is true for the target and false for the non-target",
            outcome,
            took_yes.zip(took_no).map(|(a, b)| a + b),
        );
    }

    /// `fence_device.monitor`.
    async fn check_monitor(&mut self, device: &dyn FenceDevice) {
        let (mon, took) = self
            .call(DeviceAction::Monitor, device.monitor(self.options.timeout))
            .await;
        self.record(
            "fence_device.monitor",
            "monitor succeeds",
            mon.map_or_else(
                |e| CheckOutcome::Fail(e.to_string()),
                |()| CheckOutcome::Pass,
            ),
            took,
        );
    }

    /// `fence_device.status`; the target's power state as found, when the device tells.
    async fn check_status(&mut self, device: &dyn FenceDevice) -> Option<PowerState> {
        let status_promise = "status of the target answers on or off";
        if self.options.status {
            let (st, took) = self
                .call(
                    DeviceAction::Status,
                    device.status(&self.options.target, self.options.timeout),
                )
                .await;
            let (outcome, initial) = match st {
                Err(e) => (CheckOutcome::Fail(e.to_string()), None),
                Ok(PowerState::Unknown) => (
                    CheckOutcome::Fail("the device answered, but could not tell".into()),
                    None,
                ),
                Ok(s) => (CheckOutcome::Pass, Some(s)),
            };
            self.record("fence_device.status", status_promise, outcome, took);
            initial
        } else {
            self.skip(
                "fence_device.status",
                status_promise,
                "per-node status not declared",
            );
            None
        }
    }

    /// `fence_device.refuses_non_target`.
    async fn check_refusal(&mut self, device: &dyn FenceDevice) {
        let promise = "an operation on the non-target fails with a typed not-a-target error";
        let (refused, took) = if self.options.power_cycle {
            self.call(
                DeviceAction::Off,
                device.fence(
                    &self.options.non_target,
                    FenceAction::Off,
                    self.options.timeout,
                ),
            )
            .await
            .map_err_kind()
        } else {
            self.call(
                DeviceAction::Status,
                device.status(&self.options.non_target, self.options.timeout),
            )
            .await
            .map_err_kind()
        };
        let outcome = match refused {
            Ok(()) => {
                CheckOutcome::Fail(format!("the device accepted {}", self.options.non_target))
            }
            Err((FenceErrorKind::NoDevice, _)) => CheckOutcome::Pass,
            Err((kind, why)) => CheckOutcome::Fail(format!(
                "refused, but as {kind:?}, not NoDevice (FenceError::NotATarget): {why}"
            )),
        };
        self.record("fence_device.refuses_non_target", promise, outcome, took);
    }

    /// `fence_device.within_timeout`: every operation so far returned in time.
    fn check_within_timeout(&mut self) {
        let late = std::mem::take(&mut self.late);
        self.record(
            "fence_device.within_timeout",
            "every operation returned within its timeout",
            if late.is_empty() {
                CheckOutcome::Pass
            } else {
                CheckOutcome::Fail(late.join("; "))
            },
            None,
        );
    }
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
