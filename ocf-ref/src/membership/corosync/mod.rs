//! Membership over Corosync: the views of the engine every Pacemaker cluster already runs,
//! behind the same [`Membership`] trait as the built-in protocol.
//!
//! Enabled by the `corosync` cargo feature (links `libcpg`, `libquorum`, `libvotequorum` and
//! `libcmap`). ocf never runs a second membership beside Corosync: it reads Corosync's.
//!
//! # Running ocf over Corosync
//!
//! - Build with `--features corosync` (Debian: `libcpg-dev libquorum-dev libvotequorum-dev
//!   libcmap-dev`, installed by `scripts/install-peers.sh`).
//! - Run on a node whose corosync is up, as root, or as a user or group that corosync.conf
//!   allows (`uidgid { uid: USER }` / `uidgid { gid: GROUP }`).
//! - `ocf members --backend corosync [--json|--watch]` prints this node's view or streams its
//!   events (see `ocf_ref::cli::corosync`); a program uses [`CorosyncMembership`] as any
//!   [`Membership`].
//! - `ocf node --config F` with `backend = "corosync"` (and no `[[nodes]]`) serves these views
//!   on the node's local socket ([`daemon::start`](super::daemon::start)), so
//!   `ocf members --config F` and [`DaemonClient`](crate::membership::daemon::DaemonClient) work unchanged.
//! - Views come from Corosync alone: ocf adds no membership protocol and no timing of its own,
//!   so the totem `token` timeout in corosync.conf decides how fast a dead node leaves the view.
//!
//! # Mapping
//!
//! | ocf | Corosync |
//! |---|---|
//! | [`ViewId`](ocf_membership::ViewId) | the totem ring id: `instance` = ring sequence, `coordinator` = the ring's representative node id, `epoch` = 0 |
//! | members, joined, left | the member list of the quorum service's notification (model v1, which carries the ring id); joined/left against the view this node installed before. Without a quorum provider, CPG's totem ring callback |
//! | `quorate` | the quorum service's quorate flag |
//! | votes, expected votes, threshold | `votequorum_getinfo`: `total_votes`, `node_expected_votes`, `quorum`; each member's `node_votes` |
//! | names | cmap `nodelist.node.N.name`, else `ring0_addr`, else `node<ID>` |
//! | `born_on` | the first view in which this client saw the node join (unknown for nodes already present when it connected) |
//! | new membership / not primary / primary restored | the change of the quorate flag between consecutive views |
//! | evicted | this node is not in the ring, or the IPC connection to corosync broke (corosync stopped or restarted) |
//!
//! The client also joins the CPG group `ocf` (configurable), which is where agreed-order
//! messages between ocf processes travel and where corosync reports the totem ring.
//!
//! # The fence link
//!
//! With `backend = "corosync"` the cluster fencer's daemons talk over a CPG group of their
//! own, as Pacemaker's fencer does: [`cpg_link`]`(cluster)` joins `ocf-fence-<cluster>` and
//! returns a [`CpgLink`] whose [`LinkEnds`](crate::fencing::cluster::link::LinkEnds) the fencer
//! uses like any other link. Messages are multicast in agreed order with a 9-byte header naming
//! the destination node; each node keeps those addressed to it, with `peer` = the sender's
//! Corosync node id (the same [`NodeId`] the views carry). Corosync authenticates and orders
//! them; a message with a malformed header is counted ([`LinkStats::malformed`]) and dropped;
//! payloads over [`MAX_LINK_PAYLOAD`](crate::fencing::cluster::link::MAX_LINK_PAYLOAD) are
//! refused with a warning; `CS_ERR_TRY_AGAIN` (flow control) is retried, while dispatching, for
//! at most [`fence_link::TRY_AGAIN_BOUND`]. When corosync goes away the fencer's incoming stream
//! ends; dropping the link (or [`CpgLink::close`]) leaves the group.
//!
//! # Faults
//!
//! - corosync not running: [`CorosyncMembership::connect`] fails with
//!   [`MembershipError::Unavailable`] naming corosync.
//! - a non-root client that corosync refuses: [`MembershipError::PermissionDenied`], saying how to
//!   allow it (`uidgid` in corosync.conf).
//! - corosync stops or restarts under a running client: subscribers get an
//!   [`EventKind::Evicted`](ocf_membership::EventKind::Evicted) event with the last view, the
//!   client reconnects with exponential backoff, and events resume (with `seq` continuing).
//! - `CS_ERR_TRY_AGAIN` (corosync busy synchronizing) is retried for at most
//!   [`CorosyncOptions::try_again_bound`].
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), ocf_membership::MembershipError> {
//! use ocf_membership::Membership;
//! use ocf_ref::membership::corosync::CorosyncMembership;
//!
//! let membership = CorosyncMembership::connect().await?;
//! if let Some(view) = membership.current_view().await? {
//!     println!("view {} quorate={}", view.id, view.is_quorate());
//! }
//! let mut events = membership.subscribe().await?;
//! while let Some(event) = events.next_event().await? {
//!     println!("{} {:?} {}", event.seq, event.kind, event.view.id);
//! }
//! # Ok(()) }
//! ```

mod engine;
mod error;
pub mod fence_link;
mod ffi;
mod mapping;

pub use fence_link::{CpgLink, CpgLinkError, LinkStats, cpg_link};

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ocf_core::NodeId;
use ocf_membership::{Membership, MembershipError, MembershipEvent, Subscription, View};
use tokio::sync::broadcast;

use engine::Shared;

/// How a [`CorosyncMembership`] talks to corosync.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CorosyncOptions {
    /// The CPG group ocf processes join (at most 128 bytes). Default `ocf`.
    pub group: String,
    /// How long a call answered with `CS_ERR_TRY_AGAIN` is retried before giving up.
    /// Default 5 s; corosync answers so while it synchronizes a membership change, which takes
    /// about a token timeout.
    pub try_again_bound: Duration,
    /// The first pause before reconnecting after corosync went away; doubled on each failure.
    /// Default 100 ms.
    pub reconnect_initial: Duration,
    /// The longest pause between reconnection attempts. Default 5 s.
    pub reconnect_max: Duration,
    /// How long [`CorosyncMembership::connect`] waits for the first view before returning
    /// anyway (then [`Membership::current_view`] is `None` until it arrives). Default 5 s.
    pub first_view_timeout: Duration,
    /// Events kept for slow subscribers before they get [`MembershipError::Lagged`].
    /// Default 1024.
    pub event_capacity: usize,
}

impl Default for CorosyncOptions {
    fn default() -> Self {
        Self {
            group: "ocf".into(),
            try_again_bound: Duration::from_secs(5),
            reconnect_initial: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            first_view_timeout: Duration::from_secs(5),
            event_capacity: 1024,
        }
    }
}

impl CorosyncOptions {
    /// Sets the CPG group name.
    #[must_use]
    pub fn with_group(mut self, group: impl Into<String>) -> Self {
        self.group = group.into();
        self
    }

    /// Sets the bounds of reconnection backoff.
    #[must_use]
    pub fn with_reconnect(mut self, initial: Duration, max: Duration) -> Self {
        self.reconnect_initial = initial;
        self.reconnect_max = max;
        self
    }
}

/// The local corosync's membership, as a [`Membership`].
///
/// Clones share one connection and one event sequence. The connection lives on a tokio task
/// that ends when the last clone is dropped; it must be created inside a tokio runtime.
#[derive(Clone)]
pub struct CorosyncMembership {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    local: NodeId,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for CorosyncMembership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CorosyncMembership")
            .field("local", &self.inner.local)
            .finish_non_exhaustive()
    }
}

impl CorosyncMembership {
    /// Connects to the local corosync with default options and waits (briefly) for its view.
    pub async fn connect() -> Result<Self, MembershipError> {
        Self::connect_with(CorosyncOptions::default()).await
    }

    /// Connects to the local corosync and waits up to `options.first_view_timeout` for its
    /// current view.
    ///
    /// Fails with [`MembershipError::Unavailable`] when corosync is not running and
    /// [`MembershipError::PermissionDenied`] when it refuses this user.
    pub async fn connect_with(options: CorosyncOptions) -> Result<Self, MembershipError> {
        let conn = engine::open(&options)
            .await
            .map_err(|e| error::membership_error(e, options.try_again_bound))?;
        let local = conn.local();
        let shared = Arc::new(Shared::new(options.event_capacity));
        let (_, mut first) = shared.subscribe();
        let wait = options.first_view_timeout;
        let task = tokio::spawn(engine::run(Arc::clone(&shared), options, conn));
        let membership = Self {
            inner: Arc::new(Inner {
                shared,
                local,
                task,
            }),
        };
        if engine::within(wait, first.recv()).await.is_none() {
            tracing::warn!(timeout = ?wait, "no view from corosync yet");
        }
        Ok(membership)
    }
}

impl CorosyncMembership {
    /// Stops following corosync (corosync itself keeps running): every subscription of every
    /// clone ends (`Ok(None)`) after the events already published.
    pub fn close(&self) {
        self.inner.task.abort();
        self.inner.shared.close();
    }
}

#[async_trait]
impl Membership for CorosyncMembership {
    async fn local_node(&self) -> Result<NodeId, MembershipError> {
        Ok(self.inner.shared.local().unwrap_or(self.inner.local))
    }

    /// The installed view; `None` before the first and while corosync is away (after an
    /// evicted event, until the reconnection installs a view again).
    async fn current_view(&self) -> Result<Option<View>, MembershipError> {
        Ok(self.inner.shared.current())
    }

    async fn subscribe(&self) -> Result<Box<dyn Subscription>, MembershipError> {
        let (initial, events) = self.inner.shared.subscribe();
        Ok(Box::new(CorosyncSubscription { initial, events }))
    }
}

/// One subscriber's events from a [`CorosyncMembership`].
struct CorosyncSubscription {
    initial: Option<View>,
    events: broadcast::Receiver<MembershipEvent>,
}

#[async_trait]
impl Subscription for CorosyncSubscription {
    fn initial_view(&self) -> Option<&View> {
        self.initial.as_ref()
    }

    async fn next_event(&mut self) -> Result<Option<MembershipEvent>, MembershipError> {
        match self.events.recv().await {
            Ok(event) => Ok(Some(event)),
            Err(broadcast::error::RecvError::Closed) => Ok(None),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                Err(MembershipError::Lagged { missed })
            }
        }
    }
}
