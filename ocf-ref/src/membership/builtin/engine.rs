//! The built-in engine: the protocol core over UDP, publishing into an [`EventHub`], behind
//! the [`Membership`] trait.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use ocf_core::{NodeId, NodeName};
use ocf_membership::{
    EventKind, Member, Membership, MembershipError, MembershipEvent, Subscription, View,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::fencing::cluster::link::LinkEnds;

use crate::membership::builtin::hub::EventHub;
use crate::membership::builtin::key::ClusterKey;
use crate::membership::builtin::transport::{Primacy, Report, TransportStats, UdpTransport};
use crate::membership::builtin::wire::Codec;
use crate::membership::config::NodeConfig;
use crate::membership::protocol::{Event, Node};

/// Why the built-in engine did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The configured node id is not among the nodes.
    #[error("node {node} is not in the cluster's [[nodes]]")]
    NotInCluster {
        /// The id.
        node: NodeId,
    },
    /// The UDP address could not be bound.
    #[error(
        "cannot bind membership address {address} of node {node}: {source} (is another `ocf node` running, or is the address wrong?)"
    )]
    Bind {
        /// The node.
        node: NodeId,
        /// The address.
        address: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Turns the core's events into API events: member names, votes, joined and left.
#[derive(Debug)]
pub struct ViewTranslator {
    names: BTreeMap<NodeId, (NodeName, u32)>,
    previous: Option<View>,
}

impl ViewTranslator {
    /// A translator for the nodes of `config`.
    pub fn new(config: &NodeConfig) -> Self {
        Self {
            names: config
                .nodes
                .iter()
                .map(|n| (NodeId::new(n.id), (n.name.clone(), n.votes)))
                .collect(),
            previous: None,
        }
    }

    /// A translator from explicit names and votes.
    pub fn from_names(names: BTreeMap<NodeId, (NodeName, u32)>) -> Self {
        Self {
            names,
            previous: None,
        }
    }

    /// The API event for a core event.
    pub fn translate(&mut self, e: &Event) -> MembershipEvent {
        let build = |previous: Option<&View>| {
            let members = e
                .view
                .members
                .iter()
                .map(|m| {
                    let (name, votes) = self.names.get(&m.id).cloned().unwrap_or_else(|| {
                        (
                            NodeName::new(format!("node{}", m.id)).unwrap_or_else(|_| {
                                NodeName::new("unknown").unwrap_or_else(|_| unreachable!())
                            }),
                            0,
                        )
                    });
                    Member::new(m.id, name)
                        .with_votes(votes)
                        .with_born_on(m.born_on)
                })
                .collect();
            View::new(e.view.id, members, previous, e.quorum)
        };
        if e.kind == EventKind::Evicted {
            let view = self.previous.clone().unwrap_or_else(|| build(None));
            return MembershipEvent::new(e.seq, e.kind, view);
        }
        let view = build(self.previous.as_ref());
        self.previous = Some(view.clone());
        MembershipEvent::new(e.seq, e.kind, view)
    }
}

/// A running built-in membership node.
#[derive(Debug)]
pub struct BuiltinEngine {
    local: NodeId,
    hub: Arc<EventHub>,
    stats: Arc<TransportStats>,
    stop: std::sync::Mutex<Option<oneshot::Sender<()>>>,
    task: Option<JoinHandle<()>>,
    address: std::net::SocketAddr,
    fence_link: std::sync::Mutex<Option<LinkEnds>>,
}

impl BuiltinEngine {
    /// Starts the node of `config` with `key`: binds its UDP address and runs the protocol.
    /// Its incarnation is the wall clock in milliseconds, so a restarted node is a new one.
    pub async fn start(config: &NodeConfig, key: &ClusterKey) -> Result<Self, EngineError> {
        let local = config.local_id();
        let entry = config
            .local_entry()
            .ok_or(EngineError::NotInCluster { node: local })?;
        let spec = config.cluster_spec();
        let inc = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_millis() as u64);
        let seed = rand::random::<u64>();
        let node = Node::new(spec, local, inc, seed, 0)
            .ok_or(EngineError::NotInCluster { node: local })?;
        let peers: HashMap<NodeId, std::net::SocketAddr> = config
            .nodes
            .iter()
            .map(|n| (NodeId::new(n.id), n.address))
            .collect();
        let codec = Codec::new(&config.cluster, key);
        let transport = UdpTransport::bind(entry.address, peers, codec)
            .await
            .map_err(|source| EngineError::Bind {
                node: local,
                address: entry.address,
                source,
            })?;
        let (fence_link, engine_ends) = crate::fencing::cluster::link::pair();
        let transport = transport.with_link(engine_ends);
        let address = transport.local_addr().unwrap_or(entry.address);
        let stats = transport.stats();
        let hub = Arc::new(EventHub::new(format!(
            "builtin membership of node {local} in cluster {}",
            config.cluster
        )));
        let (stop_tx, stop_rx) = oneshot::channel();
        let mut translator = ViewTranslator::new(config);
        let publish_to = Arc::clone(&hub);
        let task = tokio::spawn(async move {
            transport
                .run(
                    node,
                    move |report| match report {
                        Report::Event {
                            event,
                            at_us,
                            prior_primary_until_us,
                        } => {
                            let event = translator
                                .translate(&event)
                                .at(at_us, prior_primary_until_us);
                            tracing::info!(
                                seq = event.seq,
                                kind = ?event.kind,
                                view = %event.view.id,
                                members = event.view.members().len(),
                                quorate = event.view.is_quorate(),
                                "membership event"
                            );
                            publish_to.publish(event);
                        }
                        Report::Primacy(p) => publish_to.set_primary_until(match p {
                            // Not primary at all: the deadline is now.
                            Primacy::Not => Some(std::time::Instant::now()),
                            Primacy::Until(t) => Some(t),
                            Primacy::Unbounded => None,
                        }),
                    },
                    stop_rx,
                )
                .await;
        });
        tracing::info!(node = %local, %address, incarnation = inc, "membership node started");
        Ok(Self {
            local,
            hub,
            stats,
            stop: std::sync::Mutex::new(Some(stop_tx)),
            task: Some(task),
            address,
            fence_link: std::sync::Mutex::new(Some(fence_link)),
        })
    }

    /// The cluster fencer's link over this engine's authenticated transport; `None` after
    /// the first call (one fencer per engine).
    pub fn take_fence_link(&self) -> Option<LinkEnds> {
        self.fence_link
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// The transport's counters.
    pub fn stats(&self) -> &Arc<TransportStats> {
        &self.stats
    }

    /// The event hub (for serving it).
    pub fn hub(&self) -> &Arc<EventHub> {
        &self.hub
    }

    /// The UDP address bound.
    pub fn address(&self) -> std::net::SocketAddr {
        self.address
    }

    /// Stops the node: it stops sending and receiving, subscribers get `Evicted` with the
    /// last view (this node has left), and then the end of their stream. Safe to call more
    /// than once.
    pub fn stop(&self) {
        let stop = self
            .stop
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(stop) = stop {
            let _ = stop.send(());
            self.hub.close_evicted();
        }
        self.hub.close();
    }

    /// Stops the node and waits until its UDP socket is closed.
    pub async fn shutdown(mut self) {
        self.stop();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for BuiltinEngine {
    fn drop(&mut self) {
        self.hub.close();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[async_trait]
impl Membership for BuiltinEngine {
    async fn local_node(&self) -> Result<NodeId, MembershipError> {
        Ok(self.local)
    }

    async fn current_view(&self) -> Result<Option<View>, MembershipError> {
        Ok(self.hub.current())
    }

    async fn subscribe(&self) -> Result<Box<dyn Subscription>, MembershipError> {
        Ok(Box::new(self.hub.subscribe()))
    }
}
