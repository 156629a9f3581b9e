//! The cluster fencer's protocol as a pure state machine: no clock, no socket, no devices.
//! The driver ([`super::ClusterFencer`]) and the simulator ([`super::sim`]) feed it views,
//! messages, client requests, device results and ticks, and carry out what it outputs.
//!
//! `FENCING.md` beside the parent module describes the design and its invariants; in short:
//! - the **authority** of a primary view (its coordinator) is the only node that appends to
//!   the fencing log; it starts its epoch by gathering every member's table (`Sync`), so an
//!   incident that a previous authority started is carried on, never forgotten;
//! - every member applies the log in order ([`table::Table`]), so every member holds the same
//!   history and answers its own clients when an incident it knows closes;
//! - one incident per target at a time; requests join it (or are answered from history);
//!   exactly one node runs the devices per attempt, never the target itself, and a new attempt
//!   is assigned only after the previous one ended or its node left the view;
//! - nothing is decided or run outside a primary view.

pub mod message;
pub mod table;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ocf_core::{NodeId, NodeName};
use ocf_fencing::{
    FenceAction, FenceError, FenceEvent, FenceId, FenceOutcome, FenceRecord, FenceRequest,
    IncidentId, LevelAttempt, RequesterId, UnixMillis,
};
use ocf_membership::ViewId;

use crate::fencing::incident_name;
use message::{Caps, Msg, Op, ReqId};
use table::{Applied, Stored, Table, death_of};

/// How often unanswered messages are sent again.
pub const RESEND_MS: u64 = 100;
/// The most bytes of records or entries packed into one message.
pub const PACK_BYTES: usize = 40_000;
/// The most parts a member's state may come in (a history of 500 records needs about 13); a
/// `Sync` claiming more is ignored rather than waited for.
pub const MAX_SYNC_CHUNKS: u32 = 256;

/// The protocol's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Finished incidents kept in the table.
    pub history_limit: usize,
    /// What the authority does to a node lost from the primary view (`None`: nothing, and
    /// the node-death event says no fencing is configured).
    pub lost_node_action: Option<FenceAction>,
    /// How long the fencing of a lost node may take.
    pub lost_node_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            history_limit: 500,
            lost_node_action: Some(FenceAction::Reboot),
            lost_node_timeout: Duration::from_secs(120),
        }
    }
}

/// A view as the fencer needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewInfo {
    /// Its id.
    pub id: ViewId,
    /// Its members, sorted by id.
    pub members: Vec<(NodeId, NodeName)>,
    /// Whether it is a primary (quorate) view.
    pub primary: bool,
}

impl ViewInfo {
    /// The authority of the view: its coordinator if a member, else its lowest member.
    pub fn authority(&self) -> Option<NodeId> {
        if self
            .members
            .iter()
            .any(|(id, _)| *id == self.id.coordinator)
        {
            return Some(self.id.coordinator);
        }
        self.members.iter().map(|(id, _)| *id).min()
    }

    fn name_of(&self, node: NodeId) -> Option<&NodeName> {
        self.members
            .iter()
            .find(|(id, _)| *id == node)
            .map(|(_, n)| n)
    }

    fn has_name(&self, name: &NodeName) -> bool {
        self.members.iter().any(|(_, n)| n == name)
    }
}

/// What the state machine asks its driver to do.
#[derive(Debug, Clone)]
pub enum Out {
    /// Send a message to a peer.
    Send {
        /// The peer.
        to: NodeId,
        /// The message.
        msg: Msg,
    },
    /// Run this node's devices for attempt `attempt` of incident `id`, then call
    /// [`FenceNode::executed`].
    Execute {
        /// The incident.
        id: FenceId,
        /// The attempt.
        attempt: u32,
        /// The request to give the local fencer.
        request: FenceRequest,
    },
    /// The final answer to a local client's request.
    Answer {
        /// The request.
        req: ReqId,
        /// Its outcome.
        result: Result<FenceRecord, FenceError>,
    },
    /// An event for this node's subscribers.
    Event(FenceEvent),
}

#[derive(Debug, Clone)]
struct Pending {
    request: FenceRequest,
    deadline_ms: UnixMillis,
    logged: Option<FenceId>,
    next_send_ms: UnixMillis,
}

#[derive(Debug, Clone)]
struct Running {
    done: Option<Msg>,
    next_send_ms: UnixMillis,
    started: bool,
}

#[derive(Debug)]
struct SyncWait {
    /// Per member: how many chunks it sends, and which arrived.
    got: BTreeMap<NodeId, (u32, BTreeSet<u32>)>,
    records: Vec<Stored>,
    next_id: FenceId,
    last_primary: Option<(ViewId, Vec<NodeName>)>,
}

#[derive(Debug)]
struct Authority {
    syncing: Option<SyncWait>,
    /// The epoch's log; entry `k` (from 1) is `log[k - 1 - base]`.
    log: Vec<Op>,
    base: u64,
    acked: BTreeMap<NodeId, u64>,
    sent: BTreeMap<NodeId, u64>,
    /// The last entry every member holds.
    commit: u64,
    /// The commit each follower was last told.
    told: BTreeMap<NodeId, u64>,
    /// The commit each follower says it applied (a lost commit message is sent again).
    committed_at: BTreeMap<NodeId, u64>,
    caps: BTreeMap<NodeId, Caps>,
    queued: Vec<(ReqId, FenceRequest)>,
    next_resend_ms: UnixMillis,
}

impl Authority {
    fn len(&self) -> u64 {
        self.base + self.log.len() as u64
    }

    /// The entries from number `first` on that fit one message (at least one, if any).
    fn pack_from(&self, first: u64) -> Vec<Op> {
        let mut ops = Vec::new();
        let mut bytes = 0;
        let start = first.saturating_sub(1).saturating_sub(self.base);
        let Ok(start) = usize::try_from(start) else {
            return ops;
        };
        if first <= self.base {
            return ops;
        }
        for op in self.log.iter().skip(start) {
            let size = serde_json::to_vec(op).map_or(0, |v| v.len());
            if !ops.is_empty() && bytes + size > PACK_BYTES {
                break;
            }
            bytes += size;
            ops.push(op.clone());
        }
        ops
    }
}

#[derive(Debug)]
struct Follower {
    authority: NodeId,
    /// The last entry received in order.
    applied: u64,
    /// The last entry applied to the committed table.
    committed: u64,
    /// Entries received and not yet committed, from `committed + 1`.
    held: std::collections::VecDeque<Op>,
    next_sync_ms: UnixMillis,
}

#[derive(Debug)]
enum Role {
    Outside,
    Follower(Follower),
    Authority(Box<Authority>),
}

/// One node's cluster fencer.
#[derive(Debug)]
pub struct FenceNode {
    me: NodeId,
    name: NodeName,
    inc: u64,
    caps: Caps,
    settings: Settings,
    /// What every member of the view holds: the history, and the source of every answer
    /// and event.
    committed: Table,
    /// The authority's working copy: `committed` and the entries not yet held by every
    /// member. Decisions are made on it; nothing outside the log depends on it.
    table: Table,
    view: Option<ViewInfo>,
    role: Role,
    primary_now: bool,
    next_req: u64,
    pending: BTreeMap<ReqId, Pending>,
    running: BTreeMap<(FenceId, u32), Running>,
    batch: Option<Batch>,
}

/// What a batch ([`FenceNode::batch_begin`]) holds back until its end.
#[derive(Debug, Default)]
struct Batch {
    /// The authority's log grew: flush it once at the end.
    flush: bool,
    /// The follower received entries: one acknowledgement (the highest) at the end.
    ack: Option<(NodeId, ViewId, u64, u64)>,
}

impl FenceNode {
    /// The fencer of node `me` (named `name`), incarnation `inc`, whose devices can fence
    /// what `caps` says.
    pub fn new(me: NodeId, name: NodeName, inc: u64, caps: Caps, settings: Settings) -> Self {
        Self {
            me,
            name,
            inc,
            caps,
            table: Table::new(settings.history_limit),
            committed: Table::new(settings.history_limit),
            settings,
            view: None,
            role: Role::Outside,
            primary_now: false,
            next_req: 0,
            pending: BTreeMap::new(),
            running: BTreeMap::new(),
            batch: None,
        }
    }

    /// The replicated table (the history every member shows): the entries every member of
    /// the view holds.
    pub fn committed(&self) -> &Table {
        &self.committed
    }

    /// Whether this node is its view's authority and has finished gathering the members'
    /// state.
    pub fn is_acting_authority(&self) -> bool {
        matches!(&self.role, Role::Authority(a) if a.syncing.is_none())
    }

    /// A line about this node's role, for a simulation's report.
    pub fn describe(&self) -> String {
        let role = match &self.role {
            Role::Outside => "outside".to_owned(),
            Role::Follower(f) => format!("follower of {} applied {}", f.authority, f.applied),
            Role::Authority(a) => format!(
                "authority syncing {:?} log {} acked {:?}",
                a.syncing.as_ref().map(|s| s.got.clone()),
                a.len(),
                a.acked
            ),
        };
        format!(
            "{} view {:?} primary {} {role} pending {} running {:?}",
            self.name,
            self.view.as_ref().map(|v| v.id.to_string()),
            self.primary_now,
            self.pending.len(),
            self.running.keys().collect::<Vec<_>>()
        )
    }

    /// The node the current view makes the authority.
    pub fn authority(&self) -> Option<NodeId> {
        match &self.role {
            Role::Outside => None,
            Role::Follower(f) => Some(f.authority),
            Role::Authority(_) => Some(self.me),
        }
    }

    /// The records matching `target` (all when `None`), oldest first.
    pub fn history(&self, target: Option<&NodeName>) -> Vec<FenceRecord> {
        self.committed
            .incidents
            .values()
            .filter(|s| target.is_none_or(|t| s.record.target == *t))
            .map(|s| s.record.clone())
            .collect()
    }

    /// The primacy lease changed: while not primary, nothing is decided or run here.
    pub fn set_primary(&mut self, now: UnixMillis, primary: bool, out: &mut Vec<Out>) {
        self.primary_now = primary;
        if primary {
            self.tick(now, out);
        }
    }

    /// A new view was installed.
    pub fn install_view(&mut self, now: UnixMillis, view: ViewInfo, out: &mut Vec<Out>) {
        let member = view.members.iter().any(|(id, _)| *id == self.me);
        self.primary_now = view.primary && member;
        let authority = view.authority();
        let id = view.id;
        self.table.epoch = id.instance;
        self.committed.epoch = id.instance;
        self.view = Some(view);
        if !self.primary_now {
            self.role = Role::Outside;
            self.refuse_all_pending(out);
            return;
        }
        if authority == Some(self.me) {
            let mut got = BTreeMap::new();
            if let Some(v) = &self.view {
                for (m, _) in &v.members {
                    if *m != self.me {
                        got.insert(*m, (u32::MAX, BTreeSet::new()));
                    }
                }
            }
            self.role = Role::Authority(Box::new(Authority {
                syncing: Some(SyncWait {
                    got,
                    records: Vec::new(),
                    next_id: 1,
                    last_primary: None,
                }),
                log: Vec::new(),
                base: 0,
                acked: BTreeMap::new(),
                sent: BTreeMap::new(),
                commit: 0,
                told: BTreeMap::new(),
                committed_at: BTreeMap::new(),
                caps: BTreeMap::new(),
                queued: Vec::new(),
                next_resend_ms: now,
            }));
            self.try_finish_sync(now, out);
        } else if let Some(authority) = authority {
            self.role = Role::Follower(Follower {
                authority,
                applied: 0,
                committed: 0,
                held: std::collections::VecDeque::new(),
                next_sync_ms: now,
            });
            self.send_sync(now, id, authority, out);
        }
        // Pending requests go to the new authority at once.
        for p in self.pending.values_mut() {
            p.next_send_ms = now;
        }
        for r in self.running.values_mut() {
            r.next_send_ms = now;
        }
        self.tick(now, out);
    }

    /// A client of this node asks for a fence; its answer comes as [`Out::Answer`].
    pub fn request(&mut self, now: UnixMillis, request: FenceRequest, out: &mut Vec<Out>) -> ReqId {
        self.next_req += 1;
        let req = ReqId {
            node: self.me,
            inc: self.inc,
            n: self.next_req,
        };
        if matches!(self.role, Role::Outside) || !self.primary_now {
            out.push(Out::Answer {
                req,
                result: Err(self.not_quorate(&request.target)),
            });
            return req;
        }
        let deadline_ms = now.saturating_add(ocf_core::millis::as_millis(request.timeout));
        self.pending.insert(
            req,
            Pending {
                request,
                deadline_ms,
                logged: None,
                next_send_ms: now,
            },
        );
        self.tick(now, out);
        req
    }

    /// Starts a batch: until [`FenceNode::batch_end`], the log entries the authority appends
    /// and the acknowledgements a follower owes are held back, then sent once, packed. For a
    /// burst handled at one instant (many messages or requests already waiting): without it
    /// every joined request costs a message to each follower and an acknowledgement back.
    /// Nothing else changes: answers, executions and events come out at once as always.
    pub fn batch_begin(&mut self) {
        if self.batch.is_none() {
            self.batch = Some(Batch::default());
        }
    }

    /// Ends the batch: sends what it held back.
    pub fn batch_end(&mut self, now: UnixMillis, out: &mut Vec<Out>) {
        let Some(batch) = self.batch.take() else {
            return;
        };
        if let Some((to, epoch, applied, committed)) = batch.ack {
            out.push(Out::Send {
                to,
                msg: Msg::Ack {
                    epoch,
                    applied,
                    committed,
                },
            });
        }
        if batch.flush {
            self.flush(now, out);
        }
    }

    /// A message from peer `from`.
    pub fn receive(&mut self, now: UnixMillis, from: NodeId, msg: Msg, out: &mut Vec<Out>) {
        if from == self.me {
            return;
        }
        match msg {
            Msg::Ask { req, request } => {
                if req.node == from {
                    self.handle_ask(now, req, request, out);
                }
            }
            Msg::Asks { asks } => {
                // One batch for them all (unless the caller's batch holds them already).
                let own = self.batch.is_none();
                self.batch_begin();
                for (req, request) in asks {
                    if req.node == from {
                        self.handle_ask(now, req, request, out);
                    }
                }
                if own {
                    self.batch_end(now, out);
                }
            }
            Msg::Sync {
                epoch,
                chunk,
                chunks,
                caps,
                next_id,
                last_primary,
                records,
            } => self.handle_sync(
                now,
                from,
                epoch,
                (chunk, chunks),
                caps,
                next_id,
                last_primary,
                records,
                out,
            ),
            Msg::Entries {
                epoch,
                first,
                ops,
                commit,
            } => self.handle_entries(now, from, epoch, first, ops, commit, out),
            Msg::Ack {
                epoch,
                applied,
                committed,
            } => {
                if self.view.as_ref().is_some_and(|v| v.id == epoch) {
                    if let Role::Authority(a) = &mut self.role {
                        let e = a.acked.entry(from).or_insert(0);
                        *e = (*e).max(applied);
                        let c = a.committed_at.entry(from).or_insert(0);
                        *c = (*c).max(committed);
                    }
                    // The commit may advance: answers and events follow it.
                    self.flush(now, out);
                }
            }
            Msg::Done {
                id,
                attempt,
                levels,
                outcome,
                no_device,
            } => self.handle_done(now, from, id, attempt, levels, outcome, no_device, out),
        }
    }

    /// This node's devices finished attempt `attempt` of `id`.
    pub fn executed(
        &mut self,
        now: UnixMillis,
        id: FenceId,
        attempt: u32,
        result: Result<FenceRecord, FenceError>,
        out: &mut Vec<Out>,
    ) {
        let (levels, outcome, no_device) = match result {
            Ok(r) => (r.levels, FenceOutcome::Succeeded, false),
            Err(FenceError::NoDevice { target }) => (
                Vec::new(),
                FenceOutcome::Failed {
                    reason: format!("no device of this node can fence {target}"),
                },
                true,
            ),
            Err(FenceError::Failed { record, reason, .. }) => {
                let outcome = record
                    .outcome
                    .clone()
                    .unwrap_or(FenceOutcome::Failed { reason });
                (record.levels, outcome, false)
            }
            Err(FenceError::TimedOut { timeout_ms, .. }) => (
                Vec::new(),
                FenceOutcome::TimedOut {
                    after_ms: timeout_ms,
                },
                false,
            ),
            Err(e) => (
                Vec::new(),
                FenceOutcome::Failed {
                    reason: e.to_string(),
                },
                false,
            ),
        };
        let done = Msg::Done {
            id,
            attempt,
            levels,
            outcome,
            no_device,
        };
        if let Some(r) = self.running.get_mut(&(id, attempt)) {
            r.done = Some(done);
            r.next_send_ms = now;
        }
        self.tick(now, out);
    }

    /// Time passed: re-sends, deadlines, deferred work.
    pub fn tick(&mut self, now: UnixMillis, out: &mut Vec<Out>) {
        self.expire_pending(now, out);
        self.send_asks(now, out);
        self.send_dones(now, out);
        match &mut self.role {
            Role::Follower(f) => {
                if f.applied == 0 && now >= f.next_sync_ms {
                    let (authority, epoch) = (f.authority, self.view.as_ref().map(|v| v.id));
                    if let Some(epoch) = epoch {
                        self.send_sync(now, epoch, authority, out);
                    }
                }
            }
            Role::Authority(a) => {
                if a.syncing.is_none() && self.primary_now {
                    self.close_expired(now, out);
                    self.flush(now, out);
                }
            }
            Role::Outside => {}
        }
    }

    fn not_quorate(&self, target: &NodeName) -> FenceError {
        let reason = match &self.view {
            None => "no membership view is installed yet".to_owned(),
            Some(v) if !v.members.iter().any(|(id, _)| *id == self.me) => {
                format!("it is not a member of view {}", v.id)
            }
            Some(v) if !v.primary => format!("view {} has no quorum", v.id),
            Some(v) => format!("its primacy lease in view {} has lapsed", v.id),
        };
        FenceError::NotQuorate {
            target: target.clone(),
            node: self.name.to_string(),
            reason,
        }
    }

    fn refuse_all_pending(&mut self, out: &mut Vec<Out>) {
        for (req, p) in std::mem::take(&mut self.pending) {
            let mut e = self.not_quorate(&p.request.target);
            if p.logged.is_some() {
                if let FenceError::NotQuorate { reason, .. } = &mut e {
                    reason.push_str(
                        "; the request was taken before, and its outcome will be in the history \
                         of the quorate side",
                    );
                }
            }
            out.push(Out::Answer {
                req,
                result: Err(e),
            });
        }
    }

    fn expire_pending(&mut self, now: UnixMillis, out: &mut Vec<Out>) {
        let late: Vec<ReqId> = self
            .pending
            .iter()
            .filter(|(_, p)| now >= p.deadline_ms)
            .map(|(r, _)| *r)
            .collect();
        for req in late {
            if let Some(p) = self.pending.remove(&req) {
                out.push(Out::Answer {
                    req,
                    result: Err(FenceError::TimedOut {
                        target: p.request.target.clone(),
                        action: p.request.action,
                        timeout_ms: ocf_core::millis::as_millis(p.request.timeout),
                    }),
                });
            }
        }
    }

    fn send_asks(&mut self, now: UnixMillis, out: &mut Vec<Out>) {
        let Some(authority) = self.authority() else {
            return;
        };
        let due: Vec<(ReqId, FenceRequest)> = self
            .pending
            .iter_mut()
            .filter(|(_, p)| p.logged.is_none() && now >= p.next_send_ms)
            .map(|(r, p)| {
                p.next_send_ms = now + RESEND_MS;
                (*r, p.request.clone())
            })
            .collect();
        if authority == self.me {
            for (req, request) in due {
                self.handle_ask(now, req, request, out);
            }
            return;
        }
        // A burst goes packed, so that it does not overrun the authority's socket.
        let mut parts: Vec<Vec<(ReqId, FenceRequest)>> = Vec::new();
        let mut bytes = 0;
        for ask in due {
            let size = serde_json::to_vec(&ask).map_or(0, |v| v.len());
            match parts.last_mut() {
                Some(part) if bytes + size <= PACK_BYTES => part.push(ask),
                _ => {
                    bytes = 0;
                    parts.push(vec![ask]);
                }
            }
            bytes += size;
        }
        for mut asks in parts {
            let msg = match asks.pop() {
                Some((req, request)) if asks.is_empty() => Msg::Ask { req, request },
                Some(last) => {
                    asks.push(last);
                    Msg::Asks { asks }
                }
                None => continue,
            };
            out.push(Out::Send { to: authority, msg });
        }
    }

    fn send_dones(&mut self, now: UnixMillis, out: &mut Vec<Out>) {
        // Results already in the log need no more sending.
        let table = &self.committed;
        self.running.retain(|(id, attempt), _| {
            table.incidents.get(id).is_some_and(|s| {
                s.record
                    .executions
                    .iter()
                    .any(|e| e.attempt == *attempt && e.outcome.is_none())
            })
        });
        let Some(authority) = self.authority() else {
            return;
        };
        let due: Vec<Msg> = self
            .running
            .values_mut()
            .filter(|r| r.done.is_some() && now >= r.next_send_ms)
            .filter_map(|r| {
                r.next_send_ms = now + RESEND_MS;
                r.done.clone()
            })
            .collect();
        for msg in due {
            if authority == self.me {
                if let Msg::Done {
                    id,
                    attempt,
                    levels,
                    outcome,
                    no_device,
                } = msg
                {
                    let me = self.me;
                    self.handle_done(now, me, id, attempt, levels, outcome, no_device, out);
                }
            } else {
                out.push(Out::Send { to: authority, msg });
            }
        }
        // Assignments not started (the lease had lapsed) start once primary again.
        if self.primary_now {
            let start: Vec<(FenceId, u32)> = self
                .running
                .iter()
                .filter(|(_, r)| !r.started)
                .map(|(k, _)| *k)
                .collect();
            for (id, attempt) in start {
                self.start_execution(now, id, attempt, out);
            }
        }
    }

    fn send_sync(&mut self, now: UnixMillis, epoch: ViewId, to: NodeId, out: &mut Vec<Out>) {
        if let Role::Follower(f) = &mut self.role {
            f.next_sync_ms = now + RESEND_MS * 3;
        }
        // Everything this node knows, held entries included: an entry every member of the
        // last primary held (committed there) reaches the next authority this way.
        let chunks = pack(self.table.incidents.values().cloned().collect());
        let n = u32::try_from(chunks.len()).unwrap_or(u32::MAX);
        for (i, records) in chunks.into_iter().enumerate() {
            out.push(Out::Send {
                to,
                msg: Msg::Sync {
                    epoch,
                    chunk: u32::try_from(i).unwrap_or(u32::MAX),
                    chunks: n,
                    caps: self.caps.clone(),
                    next_id: self.table.next_id,
                    last_primary: self.table.last_primary.clone(),
                    records,
                },
            });
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_sync(
        &mut self,
        now: UnixMillis,
        from: NodeId,
        epoch: ViewId,
        (chunk, chunks): (u32, u32),
        caps: Caps,
        next_id: FenceId,
        last_primary: Option<(ViewId, Vec<NodeName>)>,
        records: Vec<Stored>,
        out: &mut Vec<Out>,
    ) {
        if self.view.as_ref().map(|v| v.id) != Some(epoch) {
            return;
        }
        let Role::Authority(a) = &mut self.role else {
            return;
        };
        a.caps.insert(from, caps);
        let Some(sync) = &mut a.syncing else {
            return;
        };
        let Some((want, got)) = sync.got.get_mut(&from) else {
            return;
        };
        if chunk >= chunks || chunks > MAX_SYNC_CHUNKS || got.contains(&chunk) {
            return;
        }
        *want = chunks;
        got.insert(chunk);
        sync.records.extend(records);
        sync.next_id = sync.next_id.max(next_id);
        if let Some(lp) = last_primary {
            if sync
                .last_primary
                .as_ref()
                .is_none_or(|(v, _)| lp.0.instance > v.instance)
            {
                sync.last_primary = Some(lp);
            }
        }
        self.try_finish_sync(now, out);
    }

    fn try_finish_sync(&mut self, now: UnixMillis, out: &mut Vec<Out>) {
        let Role::Authority(a) = &mut self.role else {
            return;
        };
        let complete = a.syncing.as_ref().is_some_and(|s| {
            s.got
                .values()
                .all(|(want, got)| *want != u32::MAX && got.len() as u64 == u64::from(*want))
        });
        if !complete {
            return;
        }
        let Some(sync) = a.syncing.take() else {
            return;
        };
        let Some(view) = self.view.clone() else {
            return;
        };
        for s in sync.records {
            self.table.merge(s);
        }
        // Incident numbers stay unique even when a majority restarted with empty tables while
        // a minority kept old incidents: each epoch numbers from its start time (ms << 10) at
        // least, so two epochs (never primary at once) never hand out the same number.
        self.table.next_id = self
            .table
            .next_id
            .max(sync.next_id)
            .max(now.saturating_mul(1 << 10));
        let last_primary = match (self.table.last_primary.clone(), sync.last_primary) {
            (Some(a), Some(b)) => Some(if b.0.instance > a.0.instance { b } else { a }),
            (a, b) => a.or(b),
        };
        // The epoch's log starts with the merged table, so every member holds it.
        let puts: Vec<Stored> = self.table.incidents.values().cloned().collect();
        for stored in puts {
            self.append(Op::Put {
                stored: Box::new(stored),
            });
        }
        let names: Vec<NodeName> = view.members.iter().map(|(_, n)| n.clone()).collect();
        self.append(Op::Epoch {
            view: view.id,
            members: names.clone(),
            next_id: self.table.next_id,
        });
        if let Some((_, before)) = &last_primary {
            for back in names.iter().filter(|n| !before.contains(n)) {
                self.append(Op::Rejoined {
                    target: back.clone(),
                });
            }
            for lost in before.iter().filter(|n| !names.contains(n)) {
                self.open_lost(now, lost, &view, out);
            }
        }
        self.carry_on(now, &view, out);
        self.flush(now, out);
    }

    /// Carries on every incident a previous authority left open: an executor still in the
    /// view reports; one that is gone leaves an attempt with an unknown outcome, run again.
    fn carry_on(&mut self, now: UnixMillis, view: &ViewInfo, out: &mut Vec<Out>) {
        let open: Vec<FenceId> = self
            .table
            .incidents
            .values()
            .filter(|s| s.is_open())
            .map(|s| s.record.id)
            .collect();
        for id in open {
            let running = self
                .table
                .incidents
                .get(&id)
                .and_then(|s| s.running().map(|e| (e.attempt, e.node.clone())));
            match running {
                Some((_, node)) if view.has_name(&node) => {} // its executor reports
                Some((attempt, node)) => {
                    self.append(Op::Executed {
                        id,
                        attempt,
                        levels: Vec::new(),
                        outcome: FenceOutcome::Failed {
                            reason: format!(
                                "executor {node} left the view during the attempt; its \
                                     outcome is unknown, so the action is run again"
                            ),
                        },
                        no_device: false,
                        at_ms: now,
                    });
                    self.assign_next(now, id, out);
                }
                None => self.assign_next(now, id, out),
            }
        }
    }

    fn open_lost(&mut self, now: UnixMillis, lost: &NodeName, view: &ViewInfo, out: &mut Vec<Out>) {
        let Ok(incident) = incident_name::node_lost(lost, &view.id) else {
            tracing::warn!(node = %lost, "cannot name the incident of a lost node");
            return;
        };
        if self
            .table
            .incidents
            .values()
            .any(|s| s.record.incident.as_ref() == Some(&incident))
        {
            return;
        }
        if self.table.open_for(lost).is_some() {
            return; // an incident in flight already settles it
        }
        if self
            .table
            .answer_from_history(lost, FenceAction::Off, None)
            .is_some()
        {
            // Powered off on purpose (a confirmed `off`, the node not back since: a
            // scheduler's power saving): its death was announced then; a lost-node action now
            // would power it back on.
            return;
        }
        let Ok(requester) = RequesterId::new(format!("ocf@{}", self.name)) else {
            return;
        };
        let id = self.table.next_id;
        let (action, deadline) = match self.settings.lost_node_action {
            Some(a) => (
                a,
                now.saturating_add(ocf_core::millis::as_millis(self.settings.lost_node_timeout)),
            ),
            None => (FenceAction::Off, now),
        };
        self.append(Op::Open {
            id,
            target: lost.clone(),
            action,
            incident: Some(incident),
            requester,
            req: None,
            at_ms: now,
            deadline_ms: deadline,
            lost_in: Some(view.id.to_string()),
        });
        if self.settings.lost_node_action.is_none() {
            let outcome = FenceOutcome::Failed {
                reason: "lost_node_action is \"none\": the cluster does not fence lost nodes"
                    .into(),
            };
            self.close(now, id, outcome, true, out);
        } else {
            self.assign_next(now, id, out);
        }
    }

    fn handle_ask(
        &mut self,
        now: UnixMillis,
        req: ReqId,
        request: FenceRequest,
        out: &mut Vec<Out>,
    ) {
        if !self.primary_now || !self.is_acting_authority() {
            return; // the asker sends again
        }
        if self.table.has_req(&req).is_some() {
            return;
        }
        let requester = request.requester.clone();
        if let Some(open) = self.table.open_for(&request.target) {
            if open.record.action == request.action {
                let id = open.record.id;
                self.append(Op::Join { id, requester, req });
            } else if let Role::Authority(a) = &mut self.role {
                if !a.queued.iter().any(|(r, _)| *r == req) {
                    a.queued.push((req, request));
                }
            }
            self.flush(now, out);
            return;
        }
        if let Some(done) = self.table.answer_from_history(
            &request.target,
            request.action,
            request.incident.as_ref(),
        ) {
            let id = done.record.id;
            self.append(Op::Join { id, requester, req });
            self.flush(now, out);
            return;
        }
        let id = self.table.next_id;
        let incident = request
            .incident
            .clone()
            .or_else(|| IncidentId::new(format!("{}@fence-{id}", request.target)).ok());
        let deadline_ms = now.saturating_add(ocf_core::millis::as_millis(request.timeout));
        self.append(Op::Open {
            id,
            target: request.target.clone(),
            action: request.action,
            incident,
            requester,
            req: Some(req),
            at_ms: now,
            deadline_ms,
            lost_in: None,
        });
        self.assign_next(now, id, out);
        self.flush(now, out);
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_done(
        &mut self,
        now: UnixMillis,
        from: NodeId,
        id: FenceId,
        attempt: u32,
        levels: Vec<LevelAttempt>,
        outcome: FenceOutcome,
        no_device: bool,
        out: &mut Vec<Out>,
    ) {
        if !self.primary_now || !self.is_acting_authority() {
            return;
        }
        let Some(view) = &self.view else { return };
        let Some(from_name) = view.name_of(from).cloned() else {
            return;
        };
        let current = self
            .table
            .incidents
            .get(&id)
            .and_then(Stored::running)
            .is_some_and(|e| e.attempt == attempt && e.node == from_name);
        if !current {
            return;
        }
        let success = outcome.is_success();
        self.append(Op::Executed {
            id,
            attempt,
            levels,
            outcome,
            no_device,
            at_ms: now,
        });
        if success {
            self.close(now, id, FenceOutcome::Succeeded, false, out);
        } else {
            self.assign_next(now, id, out);
        }
        self.flush(now, out);
    }

    /// Picks the next executor of `id`, or closes it when there is none left.
    fn assign_next(&mut self, now: UnixMillis, id: FenceId, out: &mut Vec<Out>) {
        let Some(stored) = self.table.incidents.get(&id) else {
            return;
        };
        if now >= stored.deadline_ms {
            let after_ms = stored.deadline_ms.saturating_sub(stored.record.started_ms);
            self.close(now, id, FenceOutcome::TimedOut { after_ms }, false, out);
            return;
        }
        // Another incident already fenced the target with this action, and the target has not
        // come back since (two incidents for one loss, opened on both sides of a partition
        // and merged at the heal): this one is answered by it, never shot again.
        let answered = self
            .table
            .answer_from_history(&stored.record.target, stored.record.action, None)
            .is_some_and(|s| s.record.id != id);
        if answered {
            self.close(now, id, FenceOutcome::Succeeded, false, out);
            return;
        }
        let Some(view) = &self.view else { return };
        let Role::Authority(a) = &self.role else {
            return;
        };
        let target = &stored.record.target;
        let tried: Vec<&NodeName> = stored.record.executions.iter().map(|e| &e.node).collect();
        let mut candidates: Vec<(u8, NodeId, NodeName)> = view
            .members
            .iter()
            .filter(|(_, name)| name != target && !tried.contains(&name))
            .filter_map(|(node, name)| {
                let caps = if *node == self.me {
                    Some(&self.caps)
                } else {
                    a.caps.get(node)
                };
                let rank = caps.map_or(0, |c| c.rank(target));
                (rank > 0).then(|| (rank, *node, name.clone()))
            })
            .collect();
        candidates.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
        if let Some((_, node, name)) = candidates.first() {
            let attempt = u32::try_from(stored.record.executions.len() + 1).unwrap_or(u32::MAX);
            let (node, name) = (*node, name.clone());
            self.append(Op::Assign {
                id,
                attempt,
                node,
                name,
                at_ms: now,
            });
        } else {
            let executions = &stored.record.executions;
            let no_device = executions.is_empty()
                || self.table.incidents.get(&id).is_some_and(|s| s.no_device && executions.len() == 1)
                || executions.iter().all(|e| {
                    matches!(&e.outcome, Some(FenceOutcome::Failed { reason }) if reason.starts_with("no device"))
                });
            let reason = executions
                .iter()
                .rev()
                .find_map(|e| match &e.outcome {
                    Some(FenceOutcome::Failed { reason }) => Some(format!("{}: {reason}", e.node)),
                    Some(FenceOutcome::TimedOut { after_ms }) => {
                        Some(format!("{}: timed out after {after_ms} ms", e.node))
                    }
                    _ => None,
                })
                .unwrap_or_else(|| format!("no member can fence {target}"));
            self.close(now, id, FenceOutcome::Failed { reason }, no_device, out);
        }
    }

    fn close(
        &mut self,
        now: UnixMillis,
        id: FenceId,
        outcome: FenceOutcome,
        no_device: bool,
        out: &mut Vec<Out>,
    ) {
        let Some(stored) = self.table.incidents.get(&id) else {
            return;
        };
        let target = stored.record.target.clone();
        // One node-death per loss: none when another incident already fenced the target and
        // it has not come back since.
        let dead_already = outcome.is_success()
            && self
                .table
                .answer_from_history(&target, stored.record.action, None)
                .is_some_and(|s| s.record.id != id);
        let death = death_of(stored, &outcome, no_device, now)
            .filter(|_| !dead_already)
            .map(Box::new);
        self.append(Op::Close {
            id,
            outcome,
            no_device,
            at_ms: now,
            death,
        });
        // Requests queued behind it (another action for the target) are decided now.
        let queued = match &mut self.role {
            Role::Authority(a) => {
                let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut a.queued)
                    .into_iter()
                    .partition(|(_, r)| r.target == target);
                a.queued = rest;
                mine
            }
            _ => Vec::new(),
        };
        for (req, request) in queued {
            self.handle_ask(now, req, request, out);
        }
    }

    fn close_expired(&mut self, now: UnixMillis, out: &mut Vec<Out>) {
        let late: Vec<(FenceId, UnixMillis)> = self
            .table
            .incidents
            .values()
            .filter(|s| s.is_open() && now >= s.deadline_ms)
            .map(|s| {
                (
                    s.record.id,
                    s.deadline_ms.saturating_sub(s.record.started_ms),
                )
            })
            .collect();
        for (id, after_ms) in late {
            self.close(now, id, FenceOutcome::TimedOut { after_ms }, false, out);
        }
    }

    /// Appends to the log (authority only) and applies the entry to the working table; the
    /// committed table, answers and events follow once every member holds it.
    fn append(&mut self, op: Op) {
        let Role::Authority(a) = &mut self.role else {
            return;
        };
        a.log.push(op.clone());
        // The working copy only: answers, events and executions follow the commit.
        let mut ignored = Vec::new();
        self.table.apply(op, &mut ignored);
    }

    /// Sends every follower the entries it has not been sent.
    fn flush(&mut self, now: UnixMillis, out: &mut Vec<Out>) {
        if let Some(batch) = &mut self.batch {
            batch.flush = true;
            return;
        }
        let Some(view) = &self.view else { return };
        let epoch = view.id;
        let followers: Vec<NodeId> = view
            .members
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| *id != self.me)
            .collect();
        let Role::Authority(a) = &mut self.role else {
            return;
        };
        if a.syncing.is_some() {
            return;
        }
        let len = a.len();
        // Committed: what every member of the (primary) view holds, so every later primary
        // view has a member that holds it.
        let min_acked = view_min(&a.acked, view, self.me).unwrap_or(len).min(len);
        let mut newly = Vec::new();
        if min_acked > a.commit {
            for k in a.commit + 1..=min_acked {
                if let Some(op) = usize::try_from(k - 1 - a.base)
                    .ok()
                    .and_then(|i| a.log.get(i))
                {
                    newly.push(op.clone());
                }
            }
            a.commit = min_acked;
        }
        let commit = a.commit;
        let resend = now >= a.next_resend_ms;
        if resend {
            a.next_resend_ms = now + RESEND_MS;
        }
        for f in followers {
            let acked = a.acked.get(&f).copied().unwrap_or(0);
            let mut sent = a.sent.get(&f).copied().unwrap_or(0);
            if resend && acked < len {
                sent = acked; // what was not acknowledged goes again
            }
            let mut any = false;
            while sent < len {
                let first = sent + 1;
                let ops = a.pack_from(first);
                if ops.is_empty() {
                    break; // entries below `base` were acknowledged by everyone
                }
                sent = first + ops.len() as u64 - 1;
                any = true;
                out.push(Out::Send {
                    to: f,
                    msg: Msg::Entries {
                        epoch,
                        first,
                        ops,
                        commit,
                    },
                });
            }
            // A follower learns of a commit with the next entries, or alone.
            let told = a.told.get(&f).copied().unwrap_or(0);
            let holds = a.committed_at.get(&f).copied().unwrap_or(0);
            if !any && (told < commit || (resend && holds < commit)) {
                out.push(Out::Send {
                    to: f,
                    msg: Msg::Entries {
                        epoch,
                        first: len + 1,
                        ops: Vec::new(),
                        commit,
                    },
                });
            }
            a.sent.insert(f, sent);
            a.told.insert(f, commit);
        }
        // Entries every follower holds and that are committed are dropped from the log.
        if commit > a.base {
            let drop = usize::try_from(commit - a.base)
                .unwrap_or(0)
                .min(a.log.len());
            a.log.drain(..drop);
            a.base += drop as u64;
        }
        let mut applied = Vec::new();
        for op in newly {
            self.committed.apply(op, &mut applied);
        }
        self.on_applied(now, applied, out);
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_entries(
        &mut self,
        now: UnixMillis,
        from: NodeId,
        epoch: ViewId,
        first: u64,
        ops: Vec<Op>,
        commit: u64,
        out: &mut Vec<Out>,
    ) {
        if self.view.as_ref().map(|v| v.id) != Some(epoch) {
            return;
        }
        let Role::Follower(f) = &mut self.role else {
            return;
        };
        if f.authority != from {
            return;
        }
        for (k, op) in (first..).zip(ops) {
            if k == f.applied + 1 {
                // The latest state (for the next epoch's merge) has it at once; the
                // committed table (answers, events, executions) once every member holds it.
                let mut ignored = Vec::new();
                self.table.apply(op.clone(), &mut ignored);
                f.held.push_back(op);
                f.applied = k;
            } else if k > f.applied + 1 {
                break;
            }
        }
        let ack = f.applied;
        let upto = commit.min(f.applied);
        let mut newly = Vec::new();
        while f.committed < upto {
            match f.held.pop_front() {
                Some(op) => newly.push(op),
                None => break,
            }
            f.committed += 1;
        }
        let committed = f.committed;
        match &mut self.batch {
            // Acknowledgements are cumulative: the last one says it all.
            Some(batch) => batch.ack = Some((from, epoch, ack, committed)),
            None => out.push(Out::Send {
                to: from,
                msg: Msg::Ack {
                    epoch,
                    applied: ack,
                    committed,
                },
            }),
        }
        let mut applied = Vec::new();
        for op in newly {
            self.committed.apply(op, &mut applied);
        }
        self.on_applied(now, applied, out);
    }

    /// What the entries just applied mean here: events, answers, executions.
    fn on_applied(&mut self, now: UnixMillis, applied: Vec<Applied>, out: &mut Vec<Out>) {
        for a in applied {
            match a {
                Applied::Event(e) => out.push(Out::Event(e)),
                Applied::Joined(req, id) => {
                    if let Some(p) = self.pending.get_mut(&req) {
                        p.logged = Some(id);
                    }
                    self.answer_if_closed(id, out);
                }
                Applied::Closed(id) => self.answer_if_closed(id, out),
                Applied::Running(id, attempt, node) => {
                    // The merged table says this node runs the attempt, and it does not know
                    // it: it never got the assignment, or it restarted since. Either way the
                    // authority waits for it, and an unknown outcome means running it (again).
                    if node == self.name && !self.running.contains_key(&(id, attempt)) {
                        self.running.insert(
                            (id, attempt),
                            Running {
                                done: None,
                                next_send_ms: now,
                                started: false,
                            },
                        );
                        if self.primary_now {
                            self.start_execution(now, id, attempt, out);
                        }
                    }
                }
                Applied::Assigned(id, attempt, node) => {
                    if node == self.me {
                        self.running.insert(
                            (id, attempt),
                            Running {
                                done: None,
                                next_send_ms: now,
                                started: false,
                            },
                        );
                        if self.primary_now {
                            self.start_execution(now, id, attempt, out);
                        }
                    }
                }
            }
        }
    }

    fn start_execution(&mut self, now: UnixMillis, id: FenceId, attempt: u32, out: &mut Vec<Out>) {
        let Some(stored) = self.committed.incidents.get(&id) else {
            return;
        };
        let Some(r) = self.running.get_mut(&(id, attempt)) else {
            return;
        };
        if r.started {
            return;
        }
        r.started = true;
        // Another incident fenced the target already and it has not come back since (an
        // attempt assigned before a partition, run after the heal): the device is not touched;
        // the authority then closes this incident as answered by that one.
        if let Some(by) = self
            .committed
            .answer_from_history(&stored.record.target, stored.record.action, None)
            .filter(|s| s.record.id != id)
        {
            r.done = Some(Msg::Done {
                id,
                attempt,
                levels: Vec::new(),
                outcome: FenceOutcome::Failed {
                    reason: format!(
                        "not run: incident {} fenced {} already",
                        by.record.id, by.record.target
                    ),
                },
                no_device: false,
            });
            r.next_send_ms = now;
            return;
        }
        if now >= stored.deadline_ms || !stored.is_open() {
            // Too late to act: say so rather than touch the device.
            r.done = Some(Msg::Done {
                id,
                attempt,
                levels: Vec::new(),
                outcome: FenceOutcome::TimedOut { after_ms: 0 },
                no_device: false,
            });
            r.next_send_ms = now;
            return;
        }
        let left = stored.deadline_ms.saturating_sub(now).max(1);
        let Ok(requester) = RequesterId::new(format!("ocf-cluster@{}", self.name)) else {
            return;
        };
        let mut request = FenceRequest::new(
            stored.record.target.clone(),
            stored.record.action,
            requester,
        )
        .with_timeout(Duration::from_millis(left));
        if let Ok(i) = IncidentId::new(format!("cluster-{id}-{attempt}-{}", self.inc)) {
            request = request.with_incident(i);
        }
        out.push(Out::Execute {
            id,
            attempt,
            request,
        });
    }

    fn answer_if_closed(&mut self, id: FenceId, out: &mut Vec<Out>) {
        let Some(stored) = self.committed.incidents.get(&id) else {
            return;
        };
        if stored.is_open() {
            return;
        }
        let mine: Vec<ReqId> = stored
            .reqs
            .iter()
            .filter(|r| self.pending.contains_key(r))
            .copied()
            .collect();
        for req in mine {
            self.pending.remove(&req);
            out.push(Out::Answer {
                req,
                result: result_of(stored),
            });
        }
    }
}

/// The lowest acknowledgement among the view's followers.
fn view_min(acked: &BTreeMap<NodeId, u64>, view: &ViewInfo, me: NodeId) -> Option<u64> {
    view.members
        .iter()
        .filter(|(id, _)| *id != me)
        .map(|(id, _)| acked.get(id).copied().unwrap_or(0))
        .min()
}

/// The answer a requester gets for a closed incident.
pub fn result_of(stored: &Stored) -> Result<FenceRecord, FenceError> {
    let record = stored.record.clone();
    match &record.outcome {
        Some(FenceOutcome::Succeeded) => Ok(record),
        _ if stored.no_device => Err(FenceError::NoDevice {
            target: record.target.clone(),
        }),
        Some(FenceOutcome::Failed { reason }) => Err(FenceError::Failed {
            target: record.target.clone(),
            action: record.action,
            reason: reason.clone(),
            record: Box::new(record),
        }),
        Some(FenceOutcome::TimedOut { after_ms }) => Err(FenceError::Failed {
            target: record.target.clone(),
            action: record.action,
            reason: format!("the incident ran out of time after {after_ms} ms"),
            record: Box::new(record),
        }),
        _ => Err(FenceError::Failed {
            target: record.target.clone(),
            action: record.action,
            reason: "unknown outcome".into(),
            record: Box::new(record),
        }),
    }
}

/// The record cut to fit one message: a record with so many requesters that it would not
/// fit keeps the first ones (the rest still got their answers from their own nodes).
fn fit(mut stored: Stored) -> Stored {
    loop {
        let size = serde_json::to_vec(&stored).map_or(0, |v| v.len());
        let n = stored.reqs.len().max(stored.record.requesters.len());
        if size <= PACK_BYTES || n <= 1 {
            return stored;
        }
        tracing::warn!(
            incident = stored.record.id,
            requesters = n,
            "a fencing record too large for one message is sent with its first requesters only"
        );
        stored.reqs.truncate(n / 2);
        stored.record.requesters.truncate(n / 2);
    }
}

/// Splits records into parts of at most [`PACK_BYTES`] each (always at least one part).
fn pack(records: Vec<Stored>) -> Vec<Vec<Stored>> {
    let mut parts = vec![Vec::new()];
    let mut bytes = 0;
    for r in records {
        let r = fit(r);
        let size = serde_json::to_vec(&r).map_or(0, |v| v.len());
        if bytes + size > PACK_BYTES && parts.last().is_some_and(|p: &Vec<Stored>| !p.is_empty()) {
            parts.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        if let Some(p) = parts.last_mut() {
            p.push(r);
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name(i: u32) -> NodeName {
        format!("n{i}").parse().unwrap()
    }

    fn view(instance: u64, members: &[u32]) -> ViewInfo {
        ViewInfo {
            id: ViewId::new(instance, NodeId::new(members[0]), 0),
            members: members.iter().map(|&m| (NodeId::new(m), name(m))).collect(),
            primary: members.len() * 2 > 3,
        }
    }

    fn request(target: u32) -> FenceRequest {
        FenceRequest::new(name(target), FenceAction::Reboot, "t@n1".parse().unwrap())
    }

    fn caps_all() -> Caps {
        Caps {
            targets: (1..=3).map(name).collect(),
            dynamic: false,
        }
    }

    #[test]
    fn only_a_primary_view_decides_and_no_node_runs_its_own_fence() {
        let mut out = Vec::new();
        let mut n1 = FenceNode::new(NodeId::new(1), name(1), 1, caps_all(), Settings::default());
        n1.install_view(0, view(1, &[1]), &mut out);
        // One member of three is no majority: refused at once, typed.
        n1.request(1, request(2), &mut out);
        assert!(matches!(
            out.pop(),
            Some(Out::Answer {
                result: Err(FenceError::NotQuorate { .. }),
                ..
            })
        ));
        // A primary view of two, n1 its authority: n2 has no device for n3, n1 has.
        let mut n1 = FenceNode::new(NodeId::new(1), name(1), 1, caps_all(), Settings::default());
        n1.install_view(0, view(1, &[1, 2]), &mut out);
        assert!(!n1.is_acting_authority(), "waits for n2's state first");
        out.clear();
        let sync = Msg::Sync {
            epoch: ViewId::new(1, NodeId::new(1), 0),
            chunk: 0,
            chunks: 1,
            caps: Caps::default(),
            next_id: 1,
            last_primary: None,
            records: Vec::new(),
        };
        n1.receive(5, NodeId::new(2), sync, &mut out);
        assert!(n1.is_acting_authority());
        out.clear();
        n1.request(10, request(3), &mut out);
        // Nothing runs until n2 holds the decision too.
        assert!(out.iter().all(|o| !matches!(o, Out::Execute { .. })));
        let ack = |applied| Msg::Ack {
            epoch: ViewId::new(1, NodeId::new(1), 0),
            applied,
            committed: 0,
        };
        n1.receive(11, NodeId::new(2), ack(100), &mut out);
        let runs: Vec<_> = out
            .iter()
            .filter_map(|o| match o {
                Out::Execute { request, .. } => Some(request.target.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(runs, vec![name(3)], "n1 runs the fence of n3 itself");
        // n1 is never asked to run the fence of n1: n2 has no device, so it closes as no device.
        out.clear();
        n1.request(20, request(1), &mut out);
        n1.receive(21, NodeId::new(2), ack(200), &mut out);
        assert!(out.iter().all(|o| !matches!(o, Out::Execute { .. })));
        assert!(out.iter().any(|o| matches!(
            o,
            Out::Answer {
                result: Err(FenceError::NoDevice { .. }),
                ..
            }
        )));
    }

    #[test]
    fn a_sync_that_claims_too_many_parts_is_not_waited_for() {
        let mut out = Vec::new();
        let mut n1 = FenceNode::new(NodeId::new(1), name(1), 1, caps_all(), Settings::default());
        n1.install_view(0, view(1, &[1, 2]), &mut out);
        let sync = |chunk, chunks| Msg::Sync {
            epoch: ViewId::new(1, NodeId::new(1), 0),
            chunk,
            chunks,
            caps: Caps::default(),
            next_id: 1,
            last_primary: None,
            records: Vec::new(),
        };
        n1.receive(1, NodeId::new(2), sync(0, u32::MAX), &mut out);
        assert!(!n1.is_acting_authority());
        n1.receive(2, NodeId::new(2), sync(0, 1), &mut out);
        assert!(n1.is_acting_authority());
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Msg::decode(&bytes);
        }

        #[test]
        fn decoding_arbitrary_json_never_panics(text in "\\{\"m\":\"(ask|sync|entries|ack|done)\"[ -~]{0,200}\\}") {
            let _ = Msg::decode(text.as_bytes());
        }
    }
}
