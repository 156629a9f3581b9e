//! The cluster fencer's driver: runs one node's [`FenceNode`] against a real membership, a
//! real link and the node's own devices, and serves it as a [`Fencer`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use ocf_core::{NodeId, NodeName};
use ocf_fencing::UnixMillis;
use ocf_fencing::history::now_millis;
use ocf_fencing::{
    FenceError, FenceEvent, FenceEventStream, FenceId, FenceRecord, FenceRequest, Fencer,
    HistoryFilter,
};
use ocf_membership::{EventKind, Membership, View};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::link::{LinkEnds, LinkMessage, MAX_LINK_PAYLOAD};
use super::protocol::message::{Caps, Msg, ReqId};
use super::protocol::{FenceNode, Out, Settings, ViewInfo};

/// How often the protocol's timers run.
const TICK: Duration = Duration::from_millis(50);
/// How many client calls may wait for the driver at once.
const COMMANDS: usize = 4096;
/// The most messages (or client calls) already waiting that are handled as one batch, whose
/// log entries and acknowledgements go out once, packed ([`FenceNode::batch_begin`]).
const BATCH: usize = 256;

/// A claim on one attempt of one incident, made by the executor just before it runs its
/// devices: a second line of defence for engines with a linearizable store (etcd: a
/// create-if-absent transaction on `/ocf/<cluster>/fence/<incident>/<attempt>`), so that
/// exactly one node runs an attempt even if two believed themselves assigned.
#[async_trait]
pub trait ExecutionGuard: Send + Sync {
    /// Claims attempt `attempt` of incident `incident` for this node: `Ok(true)` when this
    /// node now holds it (or held it already), `Ok(false)` when another node does.
    async fn claim(&self, incident: FenceId, attempt: u32) -> Result<bool, FenceError>;
}

/// What a [`ClusterFencer`] needs besides its membership, link and devices.
#[derive(Clone)]
#[non_exhaustive]
pub struct ClusterOptions {
    /// The protocol's settings.
    pub settings: Settings,
    /// What this node's devices can fence (told to the authority).
    pub caps: Caps,
    /// How many events a subscriber may fall behind before it misses some.
    pub event_buffer: usize,
    /// The claim made before each execution, if the engine has one.
    pub guard: Option<Arc<dyn ExecutionGuard>>,
    /// The processes whose fencer is running, when the membership engine cannot see a
    /// fencer die on its own (over Corosync, a node's corosync outlives its `ocf node`): the
    /// fencer then acts on the membership view limited to them.
    pub group: Option<watch::Receiver<Vec<(NodeId, u32)>>>,
}

impl ClusterOptions {
    /// Options with these capabilities and the default settings.
    pub fn new(caps: Caps) -> Self {
        Self {
            settings: Settings::default(),
            caps,
            event_buffer: 1024,
            guard: None,
            group: None,
        }
    }

    /// The same, acting on views limited to the fencer processes `group` lists (node, pid),
    /// with a view id that changes whenever that list does.
    #[must_use]
    pub fn with_group(mut self, group: watch::Receiver<Vec<(NodeId, u32)>>) -> Self {
        self.group = Some(group);
        self
    }

    /// The same, claiming each execution through `guard` first.
    #[must_use]
    pub fn with_guard(mut self, guard: Arc<dyn ExecutionGuard>) -> Self {
        self.guard = Some(guard);
        self
    }

    /// The same, with these settings.
    #[must_use]
    pub fn with_settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }
}

impl std::fmt::Debug for ClusterOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterOptions")
            .field("settings", &self.settings)
            .field("caps", &self.caps)
            .field("event_buffer", &self.event_buffer)
            .field("guard", &self.guard.is_some())
            .field("group", &self.group.is_some())
            .finish()
    }
}

enum Cmd {
    Fence(
        FenceRequest,
        oneshot::Sender<Result<FenceRecord, FenceError>>,
    ),
    History(HistoryFilter, oneshot::Sender<Vec<FenceRecord>>),
}

type Events = Arc<Mutex<Option<broadcast::Sender<FenceEvent>>>>;

/// One node's share of the cluster fencer, a [`Fencer`] for the node's clients: a request
/// from any node joins the cluster's one incident for its target; exactly one node of the
/// primary partition runs the devices; every member keeps the same history and hears the
/// same events, including the node-death event.
///
/// Cheap to clone. It runs until [`ClusterFencer::shutdown`] or until the membership
/// source ends; then requests fail as unavailable and event streams end.
#[derive(Clone)]
pub struct ClusterFencer {
    commands: mpsc::Sender<Cmd>,
    events: Events,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
    name: NodeName,
}

impl std::fmt::Debug for ClusterFencer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterFencer")
            .field("node", &self.name)
            .finish_non_exhaustive()
    }
}

impl ClusterFencer {
    /// Starts the fencer of node `me` (named `name`): it follows `membership`, talks to its
    /// peers over `link`, and runs its devices through `executor` (the node's own
    /// [`LocalFencer`](crate::fencing::fencer::LocalFencer)) when the authority picks it.
    pub fn start(
        me: NodeId,
        name: NodeName,
        membership: Arc<dyn Membership>,
        link: LinkEnds,
        executor: Arc<dyn Fencer>,
        options: ClusterOptions,
    ) -> Self {
        let (commands, rx) = mpsc::channel(COMMANDS);
        let (events_tx, _) = broadcast::channel(options.event_buffer.max(1));
        let events: Events = Arc::new(Mutex::new(Some(events_tx)));
        let inc = now_millis();
        let node = FenceNode::new(me, name.clone(), inc, options.caps, options.settings);
        let driver = Driver {
            node,
            link,
            executor,
            guard: options.guard,
            events: Arc::clone(&events),
            waiting: BTreeMap::new(),
        };
        let task = tokio::spawn(driver.run(membership, rx, me, options.group));
        Self {
            commands,
            events,
            task: Arc::new(Mutex::new(Some(task))),
            name,
        }
    }

    /// Stops the fencer: waiting requests fail as unavailable, event streams end.
    pub async fn shutdown(&self) {
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    fn gone(&self) -> FenceError {
        FenceError::unavailable(format!("the cluster fencer of {} has stopped", self.name))
    }
}

#[async_trait]
impl Fencer for ClusterFencer {
    async fn fence(&self, request: FenceRequest) -> Result<FenceRecord, FenceError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Cmd::Fence(request, tx))
            .await
            .map_err(|_| self.gone())?;
        rx.await.map_err(|_| self.gone())?
    }

    async fn history(&self, filter: &HistoryFilter) -> Result<Vec<FenceRecord>, FenceError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Cmd::History(filter.clone(), tx))
            .await
            .map_err(|_| self.gone())?;
        rx.await.map_err(|_| self.gone())
    }

    async fn subscribe(&self) -> Result<Box<dyn FenceEventStream>, FenceError> {
        let rx = self
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(broadcast::Sender::subscribe);
        Ok(Box::new(ClusterEvents { rx }))
    }
}

struct ClusterEvents {
    rx: Option<broadcast::Receiver<FenceEvent>>,
}

#[async_trait]
impl FenceEventStream for ClusterEvents {
    async fn next_event(&mut self) -> Result<Option<FenceEvent>, FenceError> {
        let Some(rx) = &mut self.rx else {
            return Ok(None);
        };
        match rx.recv().await {
            Ok(e) => Ok(Some(e)),
            Err(broadcast::error::RecvError::Closed) => {
                self.rx = None;
                Ok(None)
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => Err(FenceError::Lagged { missed }),
        }
    }
}

struct Driver {
    node: FenceNode,
    link: LinkEnds,
    executor: Arc<dyn Fencer>,
    guard: Option<Arc<dyn ExecutionGuard>>,
    events: Events,
    waiting: BTreeMap<ReqId, oneshot::Sender<Result<FenceRecord, FenceError>>>,
}

/// A view as the protocol sees it; with a fencer group, limited to the nodes whose fencer
/// runs, under an id whose epoch says which fencer processes those are.
fn view_info(view: &View, me: NodeId, primary: bool, group: Option<&[(NodeId, u32)]>) -> ViewInfo {
    let mut members: Vec<(NodeId, NodeName)> = view
        .members()
        .iter()
        .filter(|m| group.is_none_or(|g| g.iter().any(|(n, _)| *n == m.id)))
        .map(|m| (m.id, m.name.clone()))
        .collect();
    members.sort_by_key(|(id, _)| *id);
    let mut id = view.id;
    if let Some(g) = group {
        // FNV-1a over the group: every node that sees the same group computes the same id.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for (n, pid) in g {
            for b in n.get().to_be_bytes().into_iter().chain(pid.to_be_bytes()) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        id.epoch ^= h;
    }
    let contains_me = members.iter().any(|(n, _)| *n == me);
    ViewInfo {
        id,
        members,
        primary: primary && view.is_quorate() && contains_me,
    }
}

/// What the driver last saw of membership, and what it gave the protocol.
#[derive(Default)]
struct Seen {
    /// The engine's latest view and whether it is primary.
    raw: Option<(View, bool)>,
    /// The id and primacy the protocol was last given.
    installed: Option<(ocf_membership::ViewId, bool)>,
}

impl Seen {
    /// Gives the protocol the view it should act on now, if that changed.
    fn apply(
        &mut self,
        node: &mut FenceNode,
        me: NodeId,
        group: Option<&[(NodeId, u32)]>,
        out: &mut Vec<Out>,
    ) {
        let Some((view, primary)) = &self.raw else {
            return;
        };
        let info = view_info(view, me, *primary, group);
        let now = now_millis();
        match &mut self.installed {
            Some((id, was)) if *id == info.id => {
                if *was != info.primary {
                    *was = info.primary;
                    node.set_primary(now, info.primary, out);
                }
            }
            _ => {
                self.installed = Some((info.id, info.primary));
                node.install_view(now, info, out);
            }
        }
    }
}

/// Waits for the fencer group to change: `true` when it did, `false` when its sender is gone;
/// pending for ever without a group.
async fn changed(group: &mut Option<watch::Receiver<Vec<(NodeId, u32)>>>) -> bool {
    match group {
        Some(g) => g.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

impl Driver {
    async fn run(
        mut self,
        membership: Arc<dyn Membership>,
        mut commands: mpsc::Receiver<Cmd>,
        me: NodeId,
        mut group: Option<watch::Receiver<Vec<(NodeId, u32)>>>,
    ) {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel();
        let mut sub = match membership.subscribe().await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "the cluster fencer cannot follow membership; it serves no requests");
                self.close();
                return;
            }
        };
        let mut seen = Seen::default();
        if let Some(v) = sub.initial_view().cloned() {
            seen.raw = Some((v, true));
        }
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut out = Vec::new();
        let g = group.as_ref().map(|g| g.borrow().clone());
        seen.apply(&mut self.node, me, g.as_deref(), &mut out);
        self.handle(out, &done_tx);
        loop {
            let mut out = Vec::new();
            // Set by the membership and group arms: only they can change the view.
            let mut view_news = false;
            tokio::select! {
                event = sub.next_event() => match event {
                    Ok(Some(e)) => {
                        view_news = true;
                        if e.kind == EventKind::Evicted {
                            let mut gone = view_info(&e.view, me, false, None);
                            gone.members.retain(|(id, _)| *id != me);
                            self.node.install_view(now_millis(), gone, &mut out);
                            seen = Seen::default();
                        } else {
                            let primary = matches!(e.kind, EventKind::NewMembership | EventKind::PrimaryRestored);
                            seen.raw = Some((e.view, primary));
                        }
                    }
                    Ok(None) => break,
                    Err(ocf_membership::MembershipError::Lagged { .. }) => {
                        // Re-read the view: the protocol needs only the latest.
                        if let Ok(Some(v)) = membership.current_view().await {
                            seen.raw = Some((v, true));
                            view_news = true;
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "membership stream failed; the cluster fencer stops");
                        break;
                    }
                },
                alive = changed(&mut group) => {
                    if !alive {
                        tracing::error!("the fencer group's watch ended; the cluster fencer stops");
                        break;
                    }
                    view_news = true;
                }
                msg = self.link.incoming.recv() => {
                    let Some(first) = msg else {
                        tracing::error!("the fencing link closed; the cluster fencer stops");
                        break;
                    };
                    // What else already waits is handled with it, as one batch.
                    let now = now_millis();
                    self.node.batch_begin();
                    self.receive(now, first, &mut out);
                    for _ in 1..BATCH {
                        let Ok(next) = self.link.incoming.try_recv() else { break };
                        self.receive(now, next, &mut out);
                    }
                    self.node.batch_end(now, &mut out);
                }
                cmd = commands.recv() => match cmd {
                    Some(first) => {
                        let now = now_millis();
                        self.node.batch_begin();
                        self.command(now, first, &mut out);
                        for _ in 1..BATCH {
                            let Ok(next) = commands.try_recv() else { break };
                            self.command(now, next, &mut out);
                        }
                        self.node.batch_end(now, &mut out);
                    }
                    None => break,
                },
                Some((id, attempt, result)) = done_rx.recv() => {
                    self.node.executed(now_millis(), id, attempt, result, &mut out);
                }
                _ = tick.tick() => self.node.tick(now_millis(), &mut out),
            }
            if view_news {
                let g = group.as_ref().map(|g| g.borrow().clone());
                seen.apply(&mut self.node, me, g.as_deref(), &mut out);
            }
            self.handle(out, &done_tx);
        }
        self.close();
    }

    fn receive(&mut self, now: UnixMillis, message: LinkMessage, out: &mut Vec<Out>) {
        let LinkMessage { peer, payload } = message;
        if let Some(msg) = Msg::decode(&payload) {
            self.node.receive(now, peer, msg, out);
        } else {
            tracing::debug!(%peer, "dropped an undecodable fencing message");
        }
    }

    fn command(&mut self, now: UnixMillis, cmd: Cmd, out: &mut Vec<Out>) {
        match cmd {
            Cmd::Fence(request, reply) => {
                let req = self.node.request(now, request, out);
                self.waiting.insert(req, reply);
            }
            Cmd::History(filter, reply) => {
                let mut records = self.node.history(filter.target.as_ref());
                if let Some(limit) = filter.limit {
                    let skip = records.len().saturating_sub(limit);
                    records.drain(..skip);
                }
                let _ = reply.send(records);
            }
        }
    }

    fn handle(
        &mut self,
        out: Vec<Out>,
        done: &mpsc::UnboundedSender<(FenceId, u32, Result<FenceRecord, FenceError>)>,
    ) {
        for o in out {
            match o {
                Out::Send { to, msg } => {
                    let payload = msg.encode();
                    if payload.len() > MAX_LINK_PAYLOAD {
                        tracing::warn!(peer = %to, bytes = payload.len(), "fencing message too large for the link; dropped");
                        continue;
                    }
                    // A full queue drops it; the protocol re-sends.
                    let _ = self
                        .link
                        .outgoing
                        .try_send(LinkMessage { peer: to, payload });
                }
                Out::Execute {
                    id,
                    attempt,
                    request,
                } => {
                    tracing::info!(target = %request.target, action = %request.action, incident = id, attempt, "this node runs the fence");
                    let executor = Arc::clone(&self.executor);
                    let guard = self.guard.clone();
                    let done = done.clone();
                    tokio::spawn(async move {
                        let claimed = match &guard {
                            None => Ok(true),
                            Some(g) => g.claim(id, attempt).await,
                        };
                        let result = match claimed {
                            Ok(true) => executor.fence(request).await,
                            Ok(false) => Err(FenceError::unavailable(format!(
                                "attempt {attempt} of incident {id} is held by another node"
                            ))),
                            Err(e) => Err(e),
                        };
                        let _ = done.send((id, attempt, result));
                    });
                }
                Out::Answer { req, result } => {
                    if let Some(reply) = self.waiting.remove(&req) {
                        let _ = reply.send(result);
                    }
                }
                Out::Event(e) => {
                    if let FenceEvent::NodeDeath { death } = &e {
                        tracing::info!(target = %death.target, incident = %death.incident, fenced = death.is_fenced(), "node death");
                    }
                    if let Some(tx) = self
                        .events
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .as_ref()
                    {
                        let _ = tx.send(e);
                    }
                }
            }
        }
    }

    fn close(&mut self) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        for (_, reply) in std::mem::take(&mut self.waiting) {
            let _ = reply.send(Err(FenceError::unavailable("the cluster fencer stopped")));
        }
    }
}
