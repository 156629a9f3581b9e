//! A small failover manager: the three APIs put together the way a cluster manager uses them.
//!
//! It is not a Pacemaker clone. Its rules:
//! - **One actor.** On every node a manager follows the local membership, but only the
//!   lowest-id member of a quorate view acts ([`plan::is_acting`]). A minority never acts.
//! - **Fence before recovery.** A node that left the view is unclean until fenced; no resource
//!   is started anywhere while any unclean node is unfenced ([`plan::unclean_after`]).
//! - **One primary location.** Each resource runs on one node. The acting manager probes the
//!   members (a `monitor` on each executor) to learn where it runs, and starts it on the
//!   preferred member only when it runs nowhere ([`plan::choose_location`]).
//!
//! Each step is reported as a [`FailoverEvent`] to any number of subscribers.
//!
//! The manager reaches other nodes' executors through the [`Peer`] list. In one process (the
//! demo, the tests) those are the executors themselves; across machines they would be clients
//! of each node's daemon. Placement is rediscovered by probing, so a new acting node needs no
//! state from the old one.

pub mod plan;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use ocf_core::{NodeId, NodeName};
use ocf_fencing::{FenceAction, FenceEvent, FenceRequest, Fencer, NodeDeath, RequesterId};
use ocf_membership::{EventKind, Membership, MembershipError, MembershipErrorKind, View};
use ocf_resources::{Action, Executor, ExitCode, Operation};
use serde::Serialize;
use tokio::sync::{Mutex, broadcast, watch};

pub use crate::fencing::policy::QuorumPolicy;

/// A node the manager can place resources on.
#[derive(Clone)]
pub struct Peer {
    /// The node's id in the membership.
    pub id: NodeId,
    /// The node's name (what fence devices know it by).
    pub name: NodeName,
    /// The node's executor.
    pub executor: Arc<dyn Executor>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// One resource under the manager's care: its name in every executor, and where it prefers
/// to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePolicy {
    /// The resource's name, registered under the same name in every peer's executor.
    pub name: String,
    /// Preferred nodes, best first.
    pub prefer: Vec<NodeId>,
}

/// How the manager acts.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FailoverConfig {
    /// Timeout for each probe, start and stop.
    pub operation_timeout: Duration,
    /// What the fencer is asked to do to an unclean node.
    pub fence_action: FenceAction,
    /// Timeout for each fence request.
    pub fence_timeout: Duration,
    /// When set, recovery waits (at most this long) for the fencer's node-death event of a
    /// fenced node before anything is restarted: what a manager does with the cluster fencer,
    /// whose node-death event is the one cluster-wide word that a node is dead. `None`: the
    /// fence request's own success is enough (a fencer that sends no such event).
    pub await_node_death: Option<Duration>,
    /// The node daemons' sockets that get a recovery note (see [`crate::explain`]) for each
    /// resource restarted after an incident, so `ocf explain` on any of them shows it.
    pub note_to: Vec<std::path::PathBuf>,
}

impl Default for FailoverConfig {
    fn default() -> Self {
        Self {
            operation_timeout: Duration::from_secs(20),
            fence_action: FenceAction::Reboot,
            fence_timeout: Duration::from_secs(60),
            await_node_death: None,
            note_to: Vec::new(),
        }
    }
}

impl FailoverConfig {
    /// The same, noting each recovery in the incident logs of the daemons at `sockets`.
    #[must_use]
    pub fn note_to(mut self, sockets: Vec<std::path::PathBuf>) -> Self {
        self.note_to = sockets;
        self
    }

    /// The same, waiting up to `limit` for each fenced node's node-death event.
    #[must_use]
    pub fn await_node_death(mut self, limit: Duration) -> Self {
        self.await_node_death = Some(limit);
        self
    }
}

/// What the manager did, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailoverEvent {
    /// The local membership installed a view.
    ViewInstalled {
        /// The local node.
        node: NodeId,
        /// The view's id, as text.
        view: String,
        /// Its members.
        members: Vec<NodeId>,
        /// The nodes that left since the previous view.
        left: Vec<NodeId>,
        /// Whether it is quorate.
        quorate: bool,
        /// Whether the local manager acts in it.
        acting: bool,
    },
    /// An unclean node was fenced.
    Fenced {
        /// The fenced node.
        node: NodeId,
        /// The fencer's record id.
        record: u64,
    },
    /// The fencer's node-death event for a fenced node arrived (with
    /// [`FailoverConfig::await_node_death`]): recovery may go on.
    NodeDeath {
        /// The dead node.
        node: NodeId,
        /// The incident that settled it.
        incident: String,
        /// How it is known (`fenced`, `not_fenced`).
        how: String,
    },
    /// Fencing an unclean node failed; recovery waits.
    FenceFailed {
        /// The node.
        node: NodeId,
        /// Why.
        reason: String,
    },
    /// A resource was started.
    Started {
        /// The resource.
        resource: String,
        /// Where.
        node: NodeId,
    },
    /// Starting a resource failed.
    StartFailed {
        /// The resource.
        resource: String,
        /// Where.
        node: NodeId,
        /// Why.
        reason: String,
    },
}

/// Aborts its task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Why the manager stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FailoverError {
    /// Its membership source failed.
    #[error("failover manager on node {node}: {source}")]
    Membership {
        /// The local node.
        node: NodeId,
        /// What failed.
        source: MembershipError,
    },
}

/// The failover manager of one node.
pub struct FailoverManager {
    local: NodeId,
    membership: Arc<dyn Membership>,
    fencer: Arc<dyn Fencer>,
    peers: BTreeMap<NodeId, Peer>,
    resources: Vec<ResourcePolicy>,
    config: FailoverConfig,
    events: broadcast::Sender<FailoverEvent>,
    unclean: Mutex<BTreeSet<NodeId>>,
    /// The node-death events the fencer sent since `run` started.
    deaths: watch::Sender<Vec<NodeDeath>>,
    /// The incidents settled and not yet recovered from (their recoveries get noted).
    settled: Mutex<Vec<String>>,
}

impl std::fmt::Debug for FailoverManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailoverManager")
            .field("local", &self.local)
            .field("peers", &self.peers.keys().collect::<Vec<_>>())
            .field("resources", &self.resources)
            .finish_non_exhaustive()
    }
}

impl FailoverManager {
    /// A manager for node `local`.
    pub fn new(
        local: NodeId,
        membership: Arc<dyn Membership>,
        fencer: Arc<dyn Fencer>,
        peers: impl IntoIterator<Item = Peer>,
        resources: Vec<ResourcePolicy>,
        config: FailoverConfig,
    ) -> Self {
        let (events, _) = broadcast::channel(1024);
        Self {
            local,
            membership,
            fencer,
            peers: peers.into_iter().map(|p| (p.id, p)).collect(),
            resources,
            config,
            events,
            unclean: Mutex::new(BTreeSet::new()),
            deaths: watch::Sender::new(Vec::new()),
            settled: Mutex::new(Vec::new()),
        }
    }

    /// A new subscriber to what this manager does from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<FailoverEvent> {
        self.events.subscribe()
    }

    /// Follows the membership until its stream ends, acting on each view.
    pub async fn run(&self) -> Result<(), FailoverError> {
        let wrap = |source| FailoverError::Membership {
            node: self.local,
            source,
        };
        // The fencer's node-death events are followed from before the first view, so none
        // that a fence request of this manager leads to is missed.
        let _deaths = match self.config.await_node_death {
            Some(_) => Some(self.follow_deaths().await),
            None => None,
        };
        let mut sub = self.membership.subscribe().await.map_err(wrap)?;
        let mut last: Option<View> = sub.initial_view().cloned();
        if let Some(view) = &last {
            self.on_view(view).await;
        }
        loop {
            let event = match sub.next_event().await {
                Ok(Some(event)) => event,
                Ok(None) => return Ok(()),
                // Missed events: the stream goes on; act on the view as it is now, since the
                // missed ones may have held a departure.
                Err(e) if e.kind() == MembershipErrorKind::Lagged => {
                    tracing::warn!(node = %self.local, error = %e, "membership events missed; re-reading the view");
                    if let Some(view) = self.membership.current_view().await.map_err(wrap)? {
                        // A departure may have been in the missed events: every member of
                        // the last view acted on that is not in this one left.
                        if let Some(prev) = &last {
                            let mut unclean = self.unclean.lock().await;
                            unclean.extend(prev.member_ids().filter(|n| !view.contains(*n)));
                        }
                        self.on_view(&view).await;
                        last = Some(view);
                    }
                    continue;
                }
                Err(e) => return Err(wrap(e)),
            };
            if event.kind == EventKind::Evicted {
                tracing::warn!(node = %self.local, "evicted from the cluster; not acting");
                continue;
            }
            self.on_view(&event.view).await;
            last = Some(event.view);
        }
    }

    /// Subscribes to the fencer's events and keeps the node-death ones (bounded: the newest
    /// 256); the returned guard stops following when dropped.
    async fn follow_deaths(&self) -> AbortOnDrop {
        let stream = match self.fencer.subscribe().await {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(node = %self.local, error = %e,
                    "cannot follow the fencer's node-death events; recovery after a fence will wait for them in vain");
                None
            }
        };
        let deaths = self.deaths.clone();
        let local = self.local;
        AbortOnDrop(tokio::spawn(async move {
            let Some(mut stream) = stream else { return };
            loop {
                match stream.next_event().await {
                    Ok(Some(FenceEvent::NodeDeath { death })) => deaths.send_modify(|d| {
                        if d.len() >= 256 {
                            d.remove(0);
                        }
                        d.push(*death);
                    }),
                    Ok(Some(_)) => {}
                    Err(e) if e.kind() == ocf_fencing::FenceErrorKind::Lagged => {
                        tracing::warn!(node = %local, error = %e, "fence events missed");
                    }
                    Ok(None) | Err(_) => return,
                }
            }
        }))
    }

    /// Waits for the node-death event of `target` in the incident of `record` (or `asked`).
    async fn node_death(
        &self,
        target: &NodeName,
        record: &ocf_fencing::FenceRecord,
        asked: &ocf_fencing::IncidentId,
        limit: Duration,
    ) -> Option<NodeDeath> {
        let mut rx = self.deaths.subscribe();
        let matches = |d: &NodeDeath| {
            &d.target == target
                && (record.incident.as_ref() == Some(&d.incident)
                    || &d.incident == asked
                    || d.record == Some(record.id))
        };
        tokio::time::timeout(limit, rx.wait_for(|v| v.iter().any(matches)))
            .await
            .ok()?
            .ok()?
            .iter()
            .find(|d| matches(d))
            .cloned()
    }

    /// Handles one installed view: remembers who left, and acts if this node is the actor.
    pub async fn on_view(&self, view: &View) {
        let acting = plan::is_acting(view, self.local);
        let unclean = {
            let mut unclean = self.unclean.lock().await;
            *unclean = plan::unclean_after(view, &unclean);
            unclean.remove(&self.local);
            unclean.clone()
        };
        self.emit(FailoverEvent::ViewInstalled {
            node: self.local,
            view: view.id.to_string(),
            members: view.member_ids().collect(),
            left: view.left().to_vec(),
            quorate: view.is_quorate(),
            acting,
        });
        if !acting {
            return;
        }
        if !self.fence_all(&unclean, view).await {
            tracing::warn!(node = %self.local, "fencing incomplete; no recovery in view {}", view.id);
            return;
        }
        let mut started = Vec::new();
        for resource in &self.resources {
            if let Some(s) = self.place(resource, view).await {
                started.push(s);
            }
        }
        let settled = std::mem::take(&mut *self.settled.lock().await);
        self.note_recoveries(&settled, &started).await;
    }

    /// Notes each resource started after each settled incident on the configured daemons.
    async fn note_recoveries(
        &self,
        incidents: &[String],
        started: &[(String, NodeId, Option<i32>)],
    ) {
        if self.config.note_to.is_empty() {
            return;
        }
        let by = format!("failover@node-{}", self.local);
        for incident in incidents {
            for (resource, node, code) in started {
                let name = self
                    .peers
                    .get(node)
                    .map_or_else(|| format!("node{node}"), |p| p.name.to_string());
                let note = crate::explain::Note::now(crate::explain::NoteKind::Recovery(
                    crate::explain::Recovery::new(incident, resource, name, *code, &by),
                ));
                for socket in &self.config.note_to {
                    if let Err(e) = crate::explain::client::note(socket, note.clone()).await {
                        tracing::debug!(error = %e, "recovery note not kept");
                    }
                }
            }
        }
    }

    /// Fences every unclean node; true when all were fenced.
    async fn fence_all(&self, unclean: &BTreeSet<NodeId>, view: &View) -> bool {
        let mut all = true;
        for &node in unclean {
            let Some(peer) = self.peers.get(&node) else {
                self.emit(FailoverEvent::FenceFailed {
                    node,
                    reason: format!("node {node} has no known name to fence it by"),
                });
                all = false;
                continue;
            };
            // Both ids are short ASCII built from numbers and a node name, but they are
            // checked types: a failure is reported, never a panic.
            let ids = (
                RequesterId::new(format!("failover@node-{}", self.local)),
                crate::fencing::incident_name::node_lost(&peer.name, &view.id),
            );
            let (Ok(requester), Ok(incident)) = ids else {
                self.emit(FailoverEvent::FenceFailed {
                    node,
                    reason: format!("cannot name a fence request for {}", peer.name),
                });
                all = false;
                continue;
            };
            let request = FenceRequest::new(peer.name.clone(), self.config.fence_action, requester)
                .with_timeout(self.config.fence_timeout)
                .with_incident(incident);
            let asked = request.incident.clone();
            match self.fencer.fence(request).await {
                Ok(record) => {
                    self.emit(FailoverEvent::Fenced {
                        node,
                        record: record.id,
                    });
                    if let (Some(limit), Some(asked)) = (self.config.await_node_death, asked) {
                        let Some(death) = self.node_death(&peer.name, &record, &asked, limit).await
                        else {
                            all = false;
                            self.emit(FailoverEvent::FenceFailed {
                                node,
                                reason: format!(
                                    "{} was fenced (record {}) but no node-death event came within {} ms",
                                    peer.name,
                                    record.id,
                                    limit.as_millis()
                                ),
                            });
                            continue;
                        };
                        self.settled.lock().await.push(death.incident.to_string());
                        self.emit(FailoverEvent::NodeDeath {
                            node,
                            incident: death.incident.to_string(),
                            how: if death.is_fenced() {
                                "fenced".into()
                            } else {
                                "not_fenced".into()
                            },
                        });
                    }
                    self.unclean.lock().await.remove(&node);
                }
                Err(e) => {
                    all = false;
                    self.emit(FailoverEvent::FenceFailed {
                        node,
                        reason: e.to_string(),
                    });
                }
            }
        }
        all
    }

    /// Makes sure `resource` runs on exactly one member, starting it where it belongs if it
    /// runs nowhere; what it started, where, with the agent's exit code.
    async fn place(
        &self,
        resource: &ResourcePolicy,
        view: &View,
    ) -> Option<(String, NodeId, Option<i32>)> {
        let running = self.probe(&resource.name, view).await;
        if !running.is_empty() {
            if running.len() > 1 {
                tracing::error!(resource = %resource.name, ?running, "active on more than one node");
            }
            return None;
        }
        let target = plan::choose_location(view, &resource.prefer)?;
        let peer = self.peers.get(&target)?;
        let op = Operation::new(Action::Start, self.config.operation_timeout);
        let executed = peer.executor.execute(&resource.name, op).await;
        let code = executed.as_ref().ok().and_then(|r| {
            r.outcome()
                .and_then(ocf_resources::AgentOutcome::exit_code)
                .map(|c| i32::from(c.code()))
        });
        let event = match executed {
            Ok(result) if result.succeeded() => FailoverEvent::Started {
                resource: resource.name.clone(),
                node: target,
            },
            Ok(result) => FailoverEvent::StartFailed {
                resource: resource.name.clone(),
                node: target,
                reason: result.outcome().map_or_else(
                    || format!("{:?}", result.result),
                    ocf_resources::AgentOutcome::summary,
                ),
            },
            Err(e) => FailoverEvent::StartFailed {
                resource: resource.name.clone(),
                node: target,
                reason: e.to_string(),
            },
        };
        let started = matches!(event, FailoverEvent::Started { .. });
        self.emit(event);
        started.then(|| (resource.name.clone(), target, code))
    }

    /// The members on which `resource` reports running (a `monitor` on each).
    async fn probe(&self, resource: &str, view: &View) -> Vec<NodeId> {
        let mut running = Vec::new();
        for node in view.member_ids() {
            let Some(peer) = self.peers.get(&node) else {
                continue;
            };
            let op = Operation::new(Action::Monitor, self.config.operation_timeout);
            if let Ok(result) = peer.executor.execute(resource, op).await {
                let code = result
                    .outcome()
                    .and_then(ocf_resources::AgentOutcome::exit_code);
                if matches!(code, Some(ExitCode::Success | ExitCode::RunningPromoted)) {
                    running.push(node);
                }
            }
        }
        running
    }

    fn emit(&self, event: FailoverEvent) {
        tracing::info!(node = %self.local, ?event, "failover");
        // No subscriber is not an error: the manager acts whether or not anyone watches.
        let _ = self.events.send(event);
    }
}
