//! The replicated incident table: every member applies the authority's log to its own copy,
//! so `ocf fence history` shows the same records on every member.

use std::collections::BTreeMap;

use ocf_core::NodeName;
use ocf_fencing::{
    DeathCause, Execution, FenceAction, FenceEvent, FenceId, FenceOutcome, FenceRecord, IncidentId,
    NodeDeath, UnixMillis,
};
use ocf_membership::ViewId;
use serde::{Deserialize, Serialize};

use super::message::{Op, ReqId};

/// One incident as every member stores it: the record clients see, and the bookkeeping the
/// authority needs to carry it on after a failover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// The record.
    pub record: FenceRecord,
    /// Every request merged into it, in log order.
    pub reqs: Vec<ReqId>,
    /// When it must have ended.
    pub deadline_ms: UnixMillis,
    /// For a lost node's incident: the view it was lost in.
    pub lost_in: Option<String>,
    /// Whether it ended because no node had a device for the target.
    pub no_device: bool,
    /// Its node-death event, once closed with one.
    pub death: Option<Box<NodeDeath>>,
    /// The target came back into the view after this incident: it answers no later request.
    pub superseded: bool,
    /// The epoch (the primary view's instance) in which this copy last changed. Primary views
    /// follow one another, and each authority starts from everything its members knew, so a
    /// copy changed in a later epoch supersedes one changed in an earlier epoch.
    #[serde(default)]
    pub epoch: u64,
}

impl Stored {
    /// Whether it is still in flight.
    pub fn is_open(&self) -> bool {
        self.record.outcome.is_none()
    }

    /// The attempt in progress, if any: its number and node.
    pub fn running(&self) -> Option<&Execution> {
        self.record
            .executions
            .last()
            .filter(|e| e.outcome.is_none())
    }

    /// How far it has come, for merging two copies: closed beats open, more executions and
    /// more requesters beat fewer.
    fn progress(&self) -> (bool, usize, bool, usize, bool) {
        let ended = self
            .record
            .executions
            .iter()
            .filter(|e| e.outcome.is_some())
            .count();
        (
            !self.is_open(),
            self.record.executions.len(),
            ended == self.record.executions.len(),
            self.reqs.len(),
            self.superseded,
        )
    }
}

/// What applying an entry means for the node that applied it.
#[derive(Debug, Clone)]
pub enum Applied {
    /// An event for this node's subscribers.
    Event(FenceEvent),
    /// Incident `id` closed: every local request merged into it gets its record.
    Closed(FenceId),
    /// Request `req` joined incident `id` (answered at once when it is closed).
    Joined(ReqId, FenceId),
    /// Attempt `attempt` of `id` runs on the node named so, by the merged table at an epoch's
    /// start (that node may not know it yet: it missed the assignment, or restarted since).
    Running(FenceId, u32, NodeName),
    /// Attempt `attempt` of `id` is this node's to run (checked by the caller).
    Assigned(FenceId, u32, ocf_core::NodeId),
}

/// The table of incidents, bounded to a history limit.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// The incidents by number.
    pub incidents: BTreeMap<FenceId, Stored>,
    /// The next incident number.
    pub next_id: FenceId,
    /// The last primary view applied, with its members' names.
    pub last_primary: Option<(ViewId, Vec<NodeName>)>,
    /// The epoch entries are applied in now (stamped on every copy they change).
    pub epoch: u64,
    limit: usize,
}

impl Table {
    /// An empty table keeping at most `limit` finished incidents.
    pub fn new(limit: usize) -> Self {
        Self {
            incidents: BTreeMap::new(),
            next_id: 1,
            last_primary: None,
            epoch: 0,
            limit: limit.max(1),
        }
    }

    /// The open incident for `target`, if any.
    pub fn open_for(&self, target: &NodeName) -> Option<&Stored> {
        self.incidents
            .values()
            .find(|s| s.is_open() && s.record.target == *target)
    }

    /// The incident that answers a new request for `target` and `action` from history: the
    /// last incident of the target, if it succeeded with that action (or carries the
    /// request's incident name) and the target has not come back since.
    pub fn answer_from_history(
        &self,
        target: &NodeName,
        action: FenceAction,
        incident: Option<&IncidentId>,
    ) -> Option<&Stored> {
        if let Some(name) = incident {
            if let Some(s) = self.incidents.values().rev().find(|s| {
                s.record.incident.as_ref() == Some(name)
                    && s.record.target == *target
                    && s.record.succeeded()
            }) {
                return Some(s);
            }
        }
        let last = self
            .incidents
            .values()
            .rev()
            .find(|s| s.record.target == *target)?;
        (last.record.succeeded() && last.record.action == action && !last.superseded)
            .then_some(last)
    }

    /// Whether request `req` is already in the log.
    pub fn has_req(&self, req: &ReqId) -> Option<FenceId> {
        self.incidents
            .iter()
            .find(|(_, s)| s.reqs.contains(req))
            .map(|(id, _)| *id)
    }

    /// Merges another member's copy of an incident into this table (the more advanced copy
    /// wins; requests and requesters of both are kept, each requester once).
    pub fn merge(&mut self, other: Stored) {
        let id = other.record.id;
        self.next_id = self.next_id.max(id + 1);
        match self.incidents.get_mut(&id) {
            None => {
                self.incidents.insert(id, other);
            }
            Some(mine) => {
                let mut reqs = mine.reqs.clone();
                let mut requesters = mine.record.requesters.clone();
                for r in &other.reqs {
                    if !reqs.contains(r) {
                        reqs.push(*r);
                    }
                }
                for who in &other.record.requesters {
                    if !requesters.contains(who) {
                        requesters.push(who.clone());
                    }
                }
                if (other.epoch, other.progress()) > (mine.epoch, mine.progress()) {
                    *mine = other;
                }
                mine.reqs = reqs;
                mine.record.requesters = requesters;
            }
        }
    }

    /// Applies one log entry; what it means locally is pushed to `out`. Every copy it changes
    /// is stamped with the current epoch.
    pub fn apply(&mut self, op: Op, out: &mut Vec<Applied>) {
        let touched: Vec<FenceId> = match &op {
            Op::Open { id, .. }
            | Op::Join { id, .. }
            | Op::Assign { id, .. }
            | Op::Executed { id, .. }
            | Op::Close { id, .. } => vec![*id],
            Op::Put { stored } => vec![stored.record.id],
            Op::Rejoined { target } => self
                .incidents
                .values()
                .filter(|s| s.record.target == *target)
                .map(|s| s.record.id)
                .collect(),
            Op::Epoch { .. } => Vec::new(),
        };
        self.apply_op(op, out);
        for id in touched {
            if let Some(s) = self.incidents.get_mut(&id) {
                s.epoch = self.epoch;
            }
        }
    }

    fn apply_op(&mut self, op: Op, out: &mut Vec<Applied>) {
        match op {
            Op::Open {
                id,
                target,
                action,
                incident,
                requester,
                req,
                at_ms,
                deadline_ms,
                lost_in,
            } => {
                let mut record = FenceRecord::start(id, target, action, requester, incident);
                record.started_ms = at_ms;
                let stored = Stored {
                    record,
                    reqs: req.into_iter().collect(),
                    deadline_ms,
                    lost_in,
                    no_device: false,
                    death: None,
                    superseded: false,
                    epoch: self.epoch,
                };
                self.next_id = self.next_id.max(id + 1);
                out.push(Applied::Event(FenceEvent::Started {
                    record: Box::new(stored.record.clone()),
                }));
                if let Some(req) = req {
                    out.push(Applied::Joined(req, id));
                }
                self.incidents.insert(id, stored);
            }
            Op::Join { id, requester, req } => {
                if let Some(s) = self.incidents.get_mut(&id) {
                    if !s.reqs.contains(&req) {
                        s.reqs.push(req);
                        // A requester that asks again is listed once (a scheduler retrying
                        // every minute must not grow the record without end).
                        if !s.record.requesters.contains(&requester) {
                            s.record.requesters.push(requester);
                        }
                    }
                    out.push(Applied::Joined(req, id));
                }
            }
            Op::Assign {
                id,
                attempt,
                node,
                name,
                at_ms,
            } => {
                if let Some(s) = self.incidents.get_mut(&id) {
                    if !s.record.executions.iter().any(|e| e.attempt == attempt) {
                        s.record
                            .executions
                            .push(Execution::new(attempt, name, at_ms));
                        out.push(Applied::Assigned(id, attempt, node));
                    }
                }
            }
            Op::Executed {
                id,
                attempt,
                levels,
                outcome,
                no_device,
                at_ms,
            } => self.executed(id, attempt, levels, outcome, no_device, at_ms),
            Op::Close {
                id,
                outcome,
                no_device,
                at_ms,
                death,
            } => self.close(id, outcome, no_device, at_ms, death, out),
            Op::Rejoined { target } => {
                for s in self.incidents.values_mut() {
                    if s.record.target == target && !s.is_open() {
                        s.superseded = true;
                    }
                }
            }
            Op::Put { stored } => self.put(*stored, out),
            Op::Epoch {
                view,
                members,
                next_id,
            } => {
                self.last_primary = Some((view, members));
                self.next_id = self.next_id.max(next_id);
            }
        }
    }

    fn put(&mut self, stored: Stored, out: &mut Vec<Applied>) {
        let id = stored.record.id;
        self.next_id = self.next_id.max(id + 1);
        let was_open = self.incidents.get(&id).map(Stored::is_open);
        // A close this member missed in the last epoch is announced now, once.
        if was_open == Some(true) && !stored.is_open() {
            out.push(Applied::Event(FenceEvent::Finished {
                record: Box::new(stored.record.clone()),
            }));
            if let Some(death) = stored.death.clone() {
                out.push(Applied::Event(FenceEvent::NodeDeath { death }));
            }
        }
        for req in &stored.reqs {
            out.push(Applied::Joined(*req, id));
        }
        if let Some(e) = stored.running() {
            out.push(Applied::Running(id, e.attempt, e.node.clone()));
        }
        self.incidents.insert(id, stored);
    }

    fn executed(
        &mut self,
        id: FenceId,
        attempt: u32,
        levels: Vec<ocf_fencing::LevelAttempt>,
        outcome: FenceOutcome,
        no_device: bool,
        at_ms: UnixMillis,
    ) {
        if let Some(s) = self.incidents.get_mut(&id) {
            if let Some(e) = s
                .record
                .executions
                .iter_mut()
                .find(|e| e.attempt == attempt && e.outcome.is_none())
            {
                let node = e.node.clone();
                e.outcome = Some(outcome);
                e.ended_ms = Some(at_ms);
                let base = u32::try_from(s.record.levels.len()).unwrap_or(u32::MAX);
                s.record
                    .levels
                    .extend(levels.into_iter().enumerate().map(|(i, l)| {
                        let mut l = l.ran_on(node.clone());
                        l.level = if l.level == 0 {
                            base + u32::try_from(i).unwrap_or(0) + 1
                        } else {
                            l.level
                        };
                        l
                    }));
                s.no_device = no_device;
            }
        }
    }

    fn close(
        &mut self,
        id: FenceId,
        outcome: FenceOutcome,
        no_device: bool,
        at_ms: UnixMillis,
        death: Option<Box<NodeDeath>>,
        out: &mut Vec<Applied>,
    ) {
        if let Some(s) = self.incidents.get_mut(&id) {
            if s.is_open() {
                // An attempt still running when its incident ends (it ran out of time) ends
                // with it: its result, if it ever comes, is not the incident's.
                if let Some(e) = s
                    .record
                    .executions
                    .last_mut()
                    .filter(|e| e.outcome.is_none())
                {
                    e.outcome = Some(FenceOutcome::Failed {
                        reason: "the incident ended before this attempt reported".into(),
                    });
                    e.ended_ms = Some(at_ms);
                }
                s.record.outcome = Some(outcome);
                s.record.ended_ms = Some(at_ms);
                s.no_device = no_device;
                s.death.clone_from(&death);
                out.push(Applied::Event(FenceEvent::Finished {
                    record: Box::new(s.record.clone()),
                }));
                out.push(Applied::Closed(id));
                if let Some(death) = death {
                    out.push(Applied::Event(FenceEvent::NodeDeath { death }));
                }
            }
        }
        self.trim();
    }

    /// Drops the oldest finished incidents beyond the limit (open ones are never dropped).
    pub fn trim(&mut self) {
        let finished = self.incidents.values().filter(|s| !s.is_open()).count();
        let mut excess = finished.saturating_sub(self.limit);
        if excess == 0 {
            return;
        }
        let drop: Vec<FenceId> = self
            .incidents
            .iter()
            .filter(|(_, s)| !s.is_open())
            .map(|(id, _)| *id)
            .take_while(|_| {
                let go = excess > 0;
                excess = excess.saturating_sub(1);
                go
            })
            .collect();
        for id in drop {
            self.incidents.remove(&id);
        }
    }
}

/// The node-death event of an incident that just closed, if it makes one: a confirmed
/// `off` or `reboot`, or a lost node nobody could fence because none is configured.
pub fn death_of(
    stored: &Stored,
    outcome: &FenceOutcome,
    no_device: bool,
    at_ms: UnixMillis,
) -> Option<NodeDeath> {
    let r = &stored.record;
    let cause = if outcome.is_success() && r.action != FenceAction::On {
        DeathCause::Fenced { action: r.action }
    } else if no_device && stored.lost_in.is_some() {
        // Closed before any attempt: the authority's reason says why (`lost_node_action =
        // "none"`, or no member with a device for the target). After attempts, every executor
        // found no device.
        let reason = match outcome {
            FenceOutcome::Failed { reason } if r.executions.is_empty() => reason.clone(),
            _ => format!("no fence device of any member can fence {}", r.target),
        };
        DeathCause::NotFenced { reason }
    } else {
        return None;
    };
    let device = r
        .levels
        .iter()
        .rev()
        .find(|l| l.succeeded)
        .and_then(|l| l.attempts.last())
        .map(|a| a.device.clone());
    Some(NodeDeath {
        target: r.target.clone(),
        // The authority names every incident it opens.
        incident: r.incident.clone()?,
        view: stored.lost_in.clone(),
        cause,
        device,
        at_ms,
        record: Some(r.id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lost(executions: usize) -> Stored {
        let mut record = FenceRecord::start(
            1,
            "n1".parse().unwrap(),
            FenceAction::Off,
            "ocf@n3".parse().unwrap(),
            Some("n1@left-view-2.3.0".parse().unwrap()),
        );
        for attempt in 1..=executions {
            let mut e = Execution::new(u32::try_from(attempt).unwrap(), "n3".parse().unwrap(), 0);
            e.ended_ms = Some(0);
            e.outcome = Some(FenceOutcome::Failed {
                reason: "no device of this node can fence n1".into(),
            });
            record.executions.push(e);
        }
        Stored {
            record,
            reqs: Vec::new(),
            deadline_ms: 0,
            lost_in: Some("2.3.0".into()),
            no_device: true,
            death: None,
            superseded: false,
            epoch: 0,
        }
    }

    /// Regression: with `lost_node_action = "none"` the node-death event said "no fence
    /// device of any member can fence n1" although members had one (found by
    /// `tests/fencing_partition.rs`); it must give the authority's reason.
    #[test]
    fn a_lost_node_not_fenced_by_policy_says_so() {
        let policy = FenceOutcome::Failed {
            reason: "lost_node_action is \"none\": the cluster does not fence lost nodes".into(),
        };
        let d = death_of(&lost(0), &policy, true, 5).unwrap();
        assert_eq!(
            d.cause,
            DeathCause::NotFenced {
                reason: "lost_node_action is \"none\": the cluster does not fence lost nodes"
                    .into()
            }
        );
        assert!(!d.is_fenced() && d.device.is_none());
        assert_eq!(d.incident.as_str(), "n1@left-view-2.3.0");
    }

    #[test]
    fn a_lost_node_no_executor_could_fence_says_no_device() {
        let failed = FenceOutcome::Failed {
            reason: "n3: no device of this node can fence n1".into(),
        };
        let d = death_of(&lost(1), &failed, true, 5).unwrap();
        assert_eq!(
            d.cause,
            DeathCause::NotFenced {
                reason: "no fence device of any member can fence n1".into()
            }
        );
    }
}
