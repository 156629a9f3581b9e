//! Running one incident: its levels in order, each device with the time it may use, and its
//! end, recorded exactly once.

use std::sync::Arc;
use std::time::Duration;

use ocf_core::NodeName;
use ocf_fencing::history::now_millis;
use ocf_fencing::{
    DeviceAction, DeviceAttempt, DeviceId, FenceAction, FenceDevice, FenceError, FenceEvent,
    FenceId, FenceOutcome, FenceRecord, FenceRequest, LevelAttempt,
};
use tokio::sync::watch;
use tokio::time::Instant;

use super::Inner;
use super::admit::{Level, Plan, Shared, Timeouts};

/// The result a requester receives for a finished record.
pub(super) fn result_of(record: FenceRecord) -> Result<FenceRecord, FenceError> {
    let reason = match &record.outcome {
        Some(FenceOutcome::Succeeded) => return Ok(record),
        Some(FenceOutcome::Failed { reason }) => reason.clone(),
        Some(FenceOutcome::TimedOut { after_ms }) => {
            format!("the incident ran out of time after {after_ms} ms")
        }
        // Future outcomes: treat anything not known as a failure, never as a success.
        _ => "unknown outcome".into(),
    };
    Err(FenceError::Failed {
        target: record.target.clone(),
        action: record.action,
        reason,
        record: Box::new(record),
    })
}

/// Finishes an incident exactly once: with its result, or (if the task died) as failed, so a
/// target is never left "in flight" forever.
pub(super) struct Completion {
    pub(super) inner: Arc<Inner>,
    pub(super) target: NodeName,
    pub(super) id: FenceId,
    pub(super) tx: Option<watch::Sender<Shared>>,
}

impl Completion {
    fn update_levels(&self, levels: &[LevelAttempt]) {
        let mut state = self.inner.lock();
        if let Some(r) = state.record_mut(self.id) {
            r.levels = levels.to_vec();
        }
    }

    fn finish(
        &mut self,
        levels: Vec<LevelAttempt>,
        outcome: FenceOutcome,
        error: Option<FenceError>,
    ) {
        let Some(tx) = self.tx.take() else { return };
        let mut state = self.inner.lock();
        let record = state.record_mut(self.id).map(|r| {
            r.levels = levels;
            r.outcome = Some(outcome);
            r.ended_ms = Some(now_millis());
            r.clone()
        });
        if state
            .in_flight
            .get(&self.target)
            .is_some_and(|f| f.id == self.id)
        {
            state.in_flight.remove(&self.target);
        }
        state.trim(self.inner.config.history_limit);
        drop(state);
        if let Some(r) = &record {
            // Nobody subscribed is fine.
            let _ = self.inner.events.send(FenceEvent::Finished {
                record: Box::new(r.clone()),
            });
        }
        let result = match (error, record) {
            (Some(e), _) => Err(e),
            (None, Some(r)) => result_of(r),
            (None, None) => Err(FenceError::unavailable(format!(
                "the record of incident {} was lost",
                self.id
            ))),
        };
        match &result {
            Ok(_) => tracing::info!(target = %self.target, incident = self.id, "fencing succeeded"),
            Err(e) => {
                tracing::error!(target = %self.target, incident = self.id, error = %e, "fencing failed");
            }
        }
        // Nobody listening is fine: the result is in the history.
        let _ = tx.send(Some(result));
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if self.tx.is_some() {
            self.finish(
                Vec::new(),
                FenceOutcome::Failed {
                    reason: "the fencing task stopped unexpectedly".into(),
                },
                None,
            );
        }
    }
}

pub(super) async fn run_incident(
    mut done: Completion,
    request: FenceRequest,
    deadline: Instant,
    plan: Plan,
    timeouts: Timeouts,
) {
    let target = &request.target;
    let levels: Vec<Level> = match plan {
        Plan::Topology(levels) => levels,
        Plan::Any(devices) => {
            capable(devices, target, deadline, done.inner.config.list_timeout).await
        }
    };
    if levels.is_empty() {
        let e = FenceError::NoDevice {
            target: target.clone(),
        };
        let outcome = FenceOutcome::Failed {
            reason: e.to_string(),
        };
        done.finish(Vec::new(), outcome, Some(e));
        return;
    }

    let mut attempts_by_level: Vec<LevelAttempt> = Vec::new();
    let mut last_failure = String::new();
    for (i, level) in levels.iter().enumerate() {
        let number = u32::try_from(i + 1).unwrap_or(u32::MAX);
        if Instant::now() >= deadline {
            break;
        }
        let (attempts, ok) = run_level(level, target, request.action, deadline, &timeouts).await;
        if let Some(reason) = attempts.iter().rev().find_map(failure_line) {
            last_failure = reason;
        }
        attempts_by_level.push(LevelAttempt::new(number, attempts, ok));
        done.update_levels(&attempts_by_level);
        if ok {
            done.finish(attempts_by_level, FenceOutcome::Succeeded, None);
            return;
        }
    }
    let outcome = if Instant::now() >= deadline {
        FenceOutcome::TimedOut {
            after_ms: ocf_core::millis::as_millis(request.timeout),
        }
    } else if last_failure.is_empty() {
        FenceOutcome::Failed {
            reason: "no level succeeded".into(),
        }
    } else {
        FenceOutcome::Failed {
            reason: last_failure,
        }
    };
    done.finish(attempts_by_level, outcome, None);
}

/// One attempt's failure in a line (`device: reason`), or `None` if it succeeded.
fn failure_line(a: &DeviceAttempt) -> Option<String> {
    match &a.outcome {
        FenceOutcome::Failed { reason } => Some(format!("{}: {reason}", a.device)),
        FenceOutcome::TimedOut { after_ms } => {
            Some(format!("{}: timed out after {after_ms} ms", a.device))
        }
        _ => None,
    }
}

/// Without a topology: each device that says it can fence `target` is a level of its own, in
/// registration order. Each answer gets `list_timeout` at most, and never more than is left.
async fn capable(
    devices: Vec<Arc<dyn FenceDevice>>,
    target: &NodeName,
    deadline: Instant,
    list_timeout: Duration,
) -> Vec<Level> {
    let mut capable = Vec::new();
    for d in devices {
        let left = deadline.saturating_duration_since(Instant::now());
        let limit = list_timeout.min(left);
        match tokio::time::timeout(limit, d.can_fence(target, limit)).await {
            Ok(Ok(true)) => capable.push(vec![(d.id().clone(), Some(d))]),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                tracing::warn!(device = %d.id(), %target, error = %e, "cannot tell whether the device can fence the node");
            }
            Err(_) => {
                tracing::warn!(device = %d.id(), %target, "asking whether the device can fence the node timed out");
            }
        }
    }
    capable
}

/// Runs one level; returns its attempts and whether it succeeded.
async fn run_level(
    level: &[(DeviceId, Option<Arc<dyn FenceDevice>>)],
    target: &NodeName,
    action: FenceAction,
    deadline: Instant,
    timeouts: &Timeouts,
) -> (Vec<DeviceAttempt>, bool) {
    let mut attempts = Vec::new();
    if action == FenceAction::Reboot && level.len() > 1 {
        // Every supply off before any comes back, or the node never loses power.
        for (id, dev) in level {
            let a = attempt(
                id,
                dev.as_ref(),
                target,
                FenceAction::Off,
                deadline,
                timeouts,
            )
            .await;
            let ok = a.outcome.is_success();
            attempts.push(a);
            if !ok {
                return (attempts, false);
            }
        }
        for (id, dev) in level {
            let a = attempt(
                id,
                dev.as_ref(),
                target,
                FenceAction::On,
                deadline,
                timeouts,
            )
            .await;
            if !a.outcome.is_success() {
                tracing::warn!(device = %id, %target, "power on after a multi-device reboot failed; the node is fenced but stays off");
            }
            attempts.push(a);
        }
        return (attempts, true);
    }
    for (id, dev) in level {
        let a = attempt(id, dev.as_ref(), target, action, deadline, timeouts).await;
        let ok = a.outcome.is_success();
        attempts.push(a);
        if !ok {
            return (attempts, false);
        }
    }
    (attempts, true)
}

async fn attempt(
    id: &DeviceId,
    device: Option<&Arc<dyn FenceDevice>>,
    target: &NodeName,
    action: FenceAction,
    deadline: Instant,
    timeouts: &Timeouts,
) -> DeviceAttempt {
    let started = now_millis();
    let device_action = DeviceAction::from(action);
    let Some(device) = device else {
        return DeviceAttempt::new(
            id.clone(),
            device_action,
            FenceOutcome::Failed {
                reason: format!("device {id} is not registered"),
            },
            started,
            started,
        );
    };
    let limit = timeouts
        .of(id)
        .min(deadline.saturating_duration_since(Instant::now()));
    // A device that ignores its timeout still cannot hold the incident: some grace for it to
    // stop what it started (the process runner's SIGTERM..SIGKILL of an agent's group takes
    // up to its kill grace), then we stop waiting.
    let grace = Duration::from_secs(2);
    let outcome =
        match tokio::time::timeout(limit + grace, device.fence(target, action, limit)).await {
            Ok(Ok(())) => FenceOutcome::Succeeded,
            Ok(Err(FenceError::DeviceTimedOut { timeout_ms, .. })) => FenceOutcome::TimedOut {
                after_ms: timeout_ms,
            },
            Ok(Err(e)) => FenceOutcome::Failed {
                reason: e.to_string(),
            },
            Err(_) => FenceOutcome::TimedOut {
                after_ms: ocf_core::millis::as_millis(limit),
            },
        };
    DeviceAttempt::new(id.clone(), device_action, outcome, started, now_millis())
}
