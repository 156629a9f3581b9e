//! The fencer's state and the one decision every request goes through: [`State::admit`].
//!
//! `admit` is synchronous and touches nothing but the state: it decides whether a request is
//! refused, joins the incident in flight, waits for a different action to finish, is answered
//! from the history, or starts a new incident. The async side (waiting, running devices)
//! lives in the parent module and in [`super::incident`], so this decision is unit-tested
//! without a runtime.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use ocf_core::NodeName;
use ocf_fencing::{
    DeviceId, FenceAction, FenceDevice, FenceError, FenceId, FenceRecord, FenceRequest, Refusal,
    TopologyLevel,
};
use tokio::sync::watch;

/// What an incident's waiters receive once it ends.
pub(super) type Shared = Option<Result<FenceRecord, FenceError>>;

/// An incident in flight for one target.
pub(super) struct InFlight {
    pub(super) id: FenceId,
    pub(super) action: FenceAction,
    pub(super) done: watch::Receiver<Shared>,
}

/// Everything the fencer knows, behind one lock.
#[derive(Default)]
pub(super) struct State {
    /// Registration order is the order devices are tried without a topology.
    pub(super) devices: Vec<Arc<dyn FenceDevice>>,
    pub(super) topology: HashMap<NodeName, Vec<TopologyLevel>>,
    /// Per-device overrides of the default device timeout.
    pub(super) device_timeouts: HashMap<DeviceId, Duration>,
    pub(super) in_flight: HashMap<NodeName, InFlight>,
    /// Oldest first; holds the in-flight records too.
    pub(super) history: VecDeque<FenceRecord>,
    pub(super) next_id: FenceId,
}

/// One level's devices by id, resolved to the registered device when there is one.
pub(super) type Level = Vec<(DeviceId, Option<Arc<dyn FenceDevice>>)>;

/// The devices an incident will try, taken when it starts.
pub(super) enum Plan {
    /// Configured levels: device ids, resolved (or not) to registered devices.
    Topology(Vec<Level>),
    /// No topology: every registered device, to be asked whether it can fence the target.
    Any(Vec<Arc<dyn FenceDevice>>),
}

/// The time each device operation may take: the device's own setting, else the default.
pub(super) struct Timeouts {
    pub(super) default: Duration,
    pub(super) per_device: HashMap<DeviceId, Duration>,
}

impl Timeouts {
    pub(super) fn of(&self, id: &DeviceId) -> Duration {
        self.per_device.get(id).copied().unwrap_or(self.default)
    }
}

/// A new incident, admitted: its record is in the history and its target is in flight. The
/// caller runs it and finishes it through `tx`.
pub(super) struct Start {
    pub(super) id: FenceId,
    /// The record as it started (for the `Started` event).
    pub(super) record: FenceRecord,
    pub(super) tx: watch::Sender<Shared>,
    pub(super) rx: watch::Receiver<Shared>,
    pub(super) plan: Plan,
    pub(super) timeouts: Timeouts,
}

/// What the fencer does with a request.
pub(super) enum Admission {
    /// The policy refused it; no device is touched.
    Refused(FenceError),
    /// It joined incident `id`, in flight with the same action: wait for that result.
    Joined {
        id: FenceId,
        done: watch::Receiver<Shared>,
    },
    /// An incident with another action is in flight for the target: wait for it to end, then
    /// ask again.
    Queued { done: watch::Receiver<Shared> },
    /// The incident the request names already succeeded on this target and action: its record
    /// (with the requester added), at once.
    Answered(FenceRecord),
    /// A new incident.
    Started(Box<Start>),
}

impl State {
    /// The record of incident `id`, if the history still holds it.
    pub(super) fn record_mut(&mut self, id: FenceId) -> Option<&mut FenceRecord> {
        self.history.iter_mut().rev().find(|r| r.id == id)
    }

    /// Drops the oldest finished records beyond `limit`; records in flight always stay.
    pub(super) fn trim(&mut self, limit: usize) {
        while self.history.len() > limit {
            match self.history.iter().position(|r| !r.is_pending()) {
                Some(i) => {
                    self.history.remove(i);
                }
                None => break,
            }
        }
    }

    /// Decides what happens to `request`, given the policy's `verdict` on it; see the
    /// [parent module](super) for the rules. Changes the state for every answer but
    /// `Refused` and `Queued`.
    pub(super) fn admit(
        &mut self,
        request: &FenceRequest,
        verdict: &Result<(), Refusal>,
        default_timeout: Duration,
        history_limit: usize,
    ) -> Admission {
        if let Err(refusal) = verdict {
            return Admission::Refused(FenceError::Refused {
                target: request.target.clone(),
                refusal: refusal.clone(),
            });
        }
        if let Some(admission) = self.join(request) {
            return admission;
        }
        if let Some(record) = self.replay(request) {
            return Admission::Answered(record);
        }
        let start = self.start(request, default_timeout);
        self.trim(history_limit);
        Admission::Started(Box::new(start))
    }

    /// Joins or queues behind the incident in flight for the request's target, if any.
    fn join(&mut self, request: &FenceRequest) -> Option<Admission> {
        let (id, action, done) = self
            .in_flight
            .get(&request.target)
            .map(|f| (f.id, f.action, f.done.clone()))?;
        if action != request.action {
            return Some(Admission::Queued { done });
        }
        if let Some(r) = self.record_mut(id)
            && !r.requesters.contains(&request.requester)
        {
            r.requesters.push(request.requester.clone());
        }
        Some(Admission::Joined { id, done })
    }

    /// The succeeded incident the request names, with its requester added once.
    fn replay(&mut self, request: &FenceRequest) -> Option<FenceRecord> {
        let incident = request.incident.as_ref()?;
        let r = self.history.iter_mut().rev().find(|r| {
            r.target == request.target
                && r.action == request.action
                && r.incident.as_ref() == Some(incident)
                && r.succeeded()
        })?;
        if !r.requesters.contains(&request.requester) {
            r.requesters.push(request.requester.clone());
        }
        Some(r.clone())
    }

    /// Opens a new incident for the request and takes the devices it will try.
    fn start(&mut self, request: &FenceRequest, default_timeout: Duration) -> Start {
        let id = self.next_id;
        self.next_id += 1;
        let record = FenceRecord::start(
            id,
            request.target.clone(),
            request.action,
            request.requester.clone(),
            request.incident.clone(),
        );
        self.history.push_back(record.clone());
        let (tx, rx) = watch::channel(None);
        self.in_flight.insert(
            request.target.clone(),
            InFlight {
                id,
                action: request.action,
                done: rx.clone(),
            },
        );
        Start {
            id,
            record,
            tx,
            rx,
            plan: self.plan(&request.target),
            timeouts: Timeouts {
                default: default_timeout,
                per_device: self.device_timeouts.clone(),
            },
        }
    }

    /// The devices an incident for `target` tries: its topology, else every device.
    fn plan(&self, target: &NodeName) -> Plan {
        let Some(levels) = self.topology.get(target) else {
            return Plan::Any(self.devices.clone());
        };
        let resolve = |id: &DeviceId| {
            let dev = self.devices.iter().find(|d| d.id() == id).cloned();
            (id.clone(), dev)
        };
        Plan::Topology(
            levels
                .iter()
                .map(|l| l.devices.iter().map(resolve).collect())
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use ocf_fencing::{FenceOutcome, IncidentId};

    use super::*;

    const LIMIT: usize = 10;
    const DEVICE: Duration = Duration::from_secs(60);

    fn request(action: FenceAction, who: &str) -> FenceRequest {
        FenceRequest::new("n3".parse().unwrap(), action, who.parse().unwrap())
    }

    fn admit(state: &mut State, request: &FenceRequest) -> Admission {
        state.admit(request, &Ok(()), DEVICE, LIMIT)
    }

    /// Ends the incident in flight for n3 with `outcome`, as the incident task does.
    fn finish(state: &mut State, outcome: FenceOutcome) {
        let target: NodeName = "n3".parse().unwrap();
        let f = state.in_flight.remove(&target).unwrap();
        state.record_mut(f.id).unwrap().outcome = Some(outcome);
    }

    #[test]
    fn a_refused_request_changes_nothing() {
        let mut state = State::default();
        let verdict = Err(Refusal::new("quorum", "no quorum"));
        let a = state.admit(&request(FenceAction::Off, "a@n1"), &verdict, DEVICE, LIMIT);
        assert!(matches!(a, Admission::Refused(FenceError::Refused { .. })));
        assert!(state.history.is_empty() && state.in_flight.is_empty());
    }

    #[test]
    fn the_same_action_joins_and_another_action_queues() {
        let mut state = State::default();
        let Admission::Started(start) = admit(&mut state, &request(FenceAction::Reboot, "a@n1"))
        else {
            panic!("the first request starts an incident");
        };
        match admit(&mut state, &request(FenceAction::Reboot, "b@n2")) {
            Admission::Joined { id, .. } => assert_eq!(id, start.id),
            _ => panic!("the same action joins"),
        }
        assert!(matches!(
            admit(&mut state, &request(FenceAction::On, "c@n2")),
            Admission::Queued { .. }
        ));
        let record = state.record_mut(start.id).unwrap();
        assert_eq!(
            record.requesters.len(),
            2,
            "the queued one is not a requester"
        );
        assert_eq!(state.history.len(), 1);
    }

    #[test]
    fn a_succeeded_incident_answers_a_late_request_naming_it_once() {
        let mut state = State::default();
        let incident = IncidentId::new("n3@view-7").unwrap();
        let named = |who| request(FenceAction::Off, who).with_incident(incident.clone());
        assert!(matches!(
            admit(&mut state, &named("a@n1")),
            Admission::Started(_)
        ));
        finish(&mut state, FenceOutcome::Succeeded);
        for _ in 0..2 {
            match admit(&mut state, &named("b@n2")) {
                Admission::Answered(r) => assert_eq!(r.requesters.len(), 2),
                _ => panic!("answered from the history"),
            }
        }
        // Without the incident id, or for another action, it is a new incident.
        assert!(matches!(
            admit(&mut state, &request(FenceAction::Off, "c@n1")),
            Admission::Started(_)
        ));
    }

    #[test]
    fn a_failed_incident_is_not_replayed() {
        let mut state = State::default();
        let incident = IncidentId::new("n3@view-7").unwrap();
        let named = |who| request(FenceAction::Off, who).with_incident(incident.clone());
        admit(&mut state, &named("a@n1"));
        finish(
            &mut state,
            FenceOutcome::Failed {
                reason: "no power".into(),
            },
        );
        assert!(matches!(
            admit(&mut state, &named("b@n2")),
            Admission::Started(_)
        ));
    }

    #[test]
    fn the_history_stays_bounded_but_keeps_incidents_in_flight() {
        let mut state = State::default();
        for i in 0..LIMIT + 5 {
            let r = FenceRequest::new(
                format!("n{i}").parse().unwrap(),
                FenceAction::Off,
                "a@n1".parse().unwrap(),
            );
            assert!(matches!(admit(&mut state, &r), Admission::Started(_)));
        }
        assert_eq!(state.history.len(), LIMIT + 5, "all still in flight");
        let done: Vec<NodeName> = state.in_flight.keys().cloned().collect();
        for t in done {
            let f = state.in_flight.remove(&t).unwrap();
            state.record_mut(f.id).unwrap().outcome = Some(FenceOutcome::Succeeded);
        }
        admit(&mut state, &request(FenceAction::Off, "a@n1"));
        assert_eq!(state.history.len(), LIMIT);
        assert!(state.history.back().unwrap().is_pending());
    }

    #[test]
    fn a_new_incident_takes_the_topology_or_every_device() {
        let mut state = State::default();
        let Admission::Started(start) = admit(&mut state, &request(FenceAction::Off, "a@n1"))
        else {
            panic!()
        };
        assert!(matches!(start.plan, Plan::Any(ref d) if d.is_empty()));
        finish(&mut state, FenceOutcome::Succeeded);
        state.topology.insert(
            "n3".parse().unwrap(),
            vec![TopologyLevel::new(["psu-a".parse().unwrap()])],
        );
        let Admission::Started(start) = admit(&mut state, &request(FenceAction::Off, "a@n1"))
        else {
            panic!()
        };
        match &start.plan {
            Plan::Topology(levels) => {
                assert_eq!(levels.len(), 1);
                assert_eq!(levels[0][0].0.as_str(), "psu-a");
                assert!(levels[0][0].1.is_none(), "not registered");
            }
            Plan::Any(_) => panic!("the topology decides"),
        }
    }
}
