//! The one task per [`CorosyncMembership`](super::CorosyncMembership) that owns the Corosync
//! connections: it waits on their fds, dispatches their callbacks, turns the notifications into
//! views and events, and fans them out so every local subscriber sees the same sequence. When
//! corosync goes away it publishes an evicted event and reconnects with backoff.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ocf_core::{NodeId, NodeName};
use ocf_membership::{EventKind, MembershipEvent, Quorum, View};
use tokio::sync::{broadcast, mpsc};

use super::CorosyncOptions;
use super::ffi::{Cmap, Cpg, CsError, Notification, Quorum as QuorumService, Votequorum, code};
use super::mapping::{Observation, ViewTracker, fallback_name, node_name, nodelist_index};

/// What the task shares with handles and subscribers.
pub(crate) struct Shared {
    state: Mutex<State>,
}

struct State {
    current: Option<View>,
    seq: u64,
    local: Option<NodeId>,
    /// `None` once closed: subscribers then see the end of their stream.
    events: Option<broadcast::Sender<MembershipEvent>>,
}

impl Shared {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                current: None,
                seq: 0,
                local: None,
                events: Some(broadcast::channel(capacity.max(1)).0),
            }),
        }
    }

    /// Ends every subscription (after the events already published); later subscriptions
    /// end at once.
    pub(crate) fn close(&self) {
        self.lock().events = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Numbers, records and broadcasts one event. Done under the lock so that a subscription
    /// taken concurrently sees either the view before it (and then the event) or the view after
    /// it (and not the event): never both, never neither.
    fn publish(&self, kind: EventKind, view: View) {
        let mut state = self.lock();
        state.seq += 1;
        state.current = (kind != EventKind::Evicted).then(|| view.clone());
        if let Some(events) = &state.events {
            // No receiver is fine: nobody subscribed yet.
            let _ = events.send(MembershipEvent::new(state.seq, kind, view));
        }
    }

    fn set_local(&self, local: NodeId) {
        self.lock().local = Some(local);
    }

    /// The view installed now.
    pub(crate) fn current(&self) -> Option<View> {
        self.lock().current.clone()
    }

    /// The local node id, once known.
    pub(crate) fn local(&self) -> Option<NodeId> {
        self.lock().local
    }

    /// The view installed now and a receiver of every event after it.
    pub(crate) fn subscribe(&self) -> (Option<View>, broadcast::Receiver<MembershipEvent>) {
        let state = self.lock();
        let events = match &state.events {
            Some(tx) => tx.subscribe(),
            // Closed: a receiver whose sender is gone reports the end at once.
            None => broadcast::channel(1).1,
        };
        (state.current.clone(), events)
    }
}

/// Open connections to corosync's services.
pub(crate) struct Connection {
    cpg: Cpg,
    quorum: QuorumService,
    votequorum: Option<Votequorum>,
    cmap: Cmap,
    notifications: mpsc::UnboundedReceiver<Notification>,
    local: u32,
    names: HashMap<u32, NodeName>,
    /// Votes per node, as votequorum last reported them.
    votes: HashMap<u32, u32>,
}

impl Connection {
    /// The local node id.
    pub(crate) fn local(&self) -> NodeId {
        NodeId::new(self.local)
    }
}

/// Runs `call` until it returns something other than `CS_ERR_TRY_AGAIN`, for at most `bound`.
pub(crate) async fn retry<T>(
    bound: Duration,
    mut call: impl FnMut() -> Result<T, CsError>,
) -> Result<T, CsError> {
    let deadline = tokio::time::Instant::now() + bound;
    let mut pause = Duration::from_millis(5);
    loop {
        match call() {
            Err(e) if e.is_try_again() && tokio::time::Instant::now() + pause < deadline => {
                tracing::debug!(error = %e, "corosync busy, retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            other => return other,
        }
    }
}

/// Connects to cmap, CPG (joining the options' group), quorum and votequorum, and starts
/// tracking quorum. `CS_ERR_TRY_AGAIN` is retried within the options' bound.
pub(crate) async fn open(options: &CorosyncOptions) -> Result<Connection, CsError> {
    let bound = options.try_again_bound;
    let (tx, notifications) = mpsc::unbounded_channel();
    let cmap = retry(bound, Cmap::connect).await?;
    let cpg = retry(bound, || Cpg::connect(tx.clone())).await?;
    let local = retry(bound, || cpg.local_node()).await?;
    match retry(bound, || cpg.join(&options.group)).await {
        // CPG admits one member per (node, process) per group: another handle of this process
        // joined already. Views do not depend on the join when a quorum provider runs.
        Err(e) if e.code() == Some(code::EXIST) => {
            tracing::debug!(group = %options.group, "this process is already in the CPG group");
        }
        other => other?,
    }
    let quorum = retry(bound, || QuorumService::connect(tx.clone())).await?;
    let votequorum = if quorum.has_provider() {
        match retry(bound, Votequorum::connect).await {
            Ok(v) => Some(v),
            // Another quorum provider: quorate still comes from the quorum service.
            Err(e) => {
                tracing::info!(error = %e, "votequorum not available; votes are counted per node");
                None
            }
        }
    } else {
        None
    };
    retry(bound, || quorum.track()).await?;
    let mut conn = Connection {
        cpg,
        quorum,
        votequorum,
        cmap,
        notifications,
        local,
        names: HashMap::new(),
        votes: HashMap::new(),
    };
    conn.names = read_nodelist(&conn.cmap);
    Ok(conn)
}

/// Node id → name from cmap's `nodelist.node.N.{nodeid,name,ring0_addr}`; entries without a
/// readable nodeid are skipped (their nodes get `node<ID>`).
fn read_nodelist(cmap: &Cmap) -> HashMap<u32, NodeName> {
    let mut names = HashMap::new();
    let keys = match cmap.keys("nodelist.node.") {
        Ok(keys) => keys,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read corosync's nodelist; nodes are named node<ID>");
            return names;
        }
    };
    let mut indices: Vec<u32> = keys.iter().filter_map(|k| nodelist_index(k)).collect();
    indices.sort_unstable();
    indices.dedup();
    for i in indices {
        let Ok(id) = cmap.get_u32(&format!("nodelist.node.{i}.nodeid")) else {
            continue;
        };
        let name = cmap.get_string(&format!("nodelist.node.{i}.name")).ok();
        let addr = cmap
            .get_string(&format!("nodelist.node.{i}.ring0_addr"))
            .ok();
        names.insert(id, node_name(id, name.as_deref(), addr.as_deref()));
    }
    names
}

/// Why serving a connection stopped.
enum Stop {
    /// The connection broke (corosync stopped or restarted).
    Lost(String),
}

/// The task: serves `first`, then reconnects with backoff forever (until aborted).
pub(crate) async fn run(shared: Arc<Shared>, options: CorosyncOptions, first: Connection) {
    let mut tracker = ViewTracker::default();
    let mut conn = Some(first);
    loop {
        let mut current = match conn.take() {
            Some(c) => c,
            None => reconnect(&options).await,
        };
        shared.set_local(current.local());
        let Stop::Lost(why) = serve(&shared, &mut tracker, &mut current, &options).await;
        tracing::warn!(reason = %why, "lost corosync; reporting eviction and reconnecting");
        drop(current);
        if let Some(last) = tracker.evict() {
            shared.publish(EventKind::Evicted, last);
        }
    }
}

/// Reconnects with exponential backoff until it succeeds.
async fn reconnect(options: &CorosyncOptions) -> Connection {
    let mut pause = options.reconnect_initial;
    loop {
        tokio::time::sleep(pause).await;
        match open(options).await {
            Ok(c) => {
                tracing::info!("reconnected to corosync");
                return c;
            }
            Err(e) => tracing::debug!(error = %e, retry_in = ?pause, "corosync still unavailable"),
        }
        pause = (pause * 2).min(options.reconnect_max);
    }
}

/// Dispatches one connection's callbacks until it breaks.
async fn serve(
    shared: &Shared,
    tracker: &mut ViewTracker,
    conn: &mut Connection,
    options: &CorosyncOptions,
) -> Stop {
    loop {
        let dispatched = tokio::select! {
            r = conn.cpg.readable() => ready_then(r, || conn.cpg.dispatch()),
            r = conn.quorum.readable() => ready_then(r, || conn.quorum.dispatch()),
        };
        if let Err(e) = dispatched {
            return Stop::Lost(e);
        }
        while let Ok(n) = conn.notifications.try_recv() {
            if let Err(e) = handle(shared, tracker, conn, n, options).await {
                return Stop::Lost(e.to_string());
            }
        }
    }
}

fn ready_then(
    ready: std::io::Result<()>,
    dispatch: impl FnOnce() -> Result<(), CsError>,
) -> Result<(), String> {
    ready.map_err(|e| format!("waiting on corosync's fd: {e}"))?;
    match dispatch() {
        Err(e) if e.is_try_again() => Ok(()),
        other => other.map_err(|e| e.to_string()),
    }
}

/// Turns one notification into at most one published event.
async fn handle(
    shared: &Shared,
    tracker: &mut ViewTracker,
    conn: &mut Connection,
    n: Notification,
    options: &CorosyncOptions,
) -> Result<(), CsError> {
    let (ring, members, quorate) = match n {
        Notification::Quorum {
            quorate,
            ring,
            members,
        } if conn.quorum.has_provider() => (ring, members, quorate),
        // Without a quorum provider corosync counts every ring as quorate; CPG's totem ring is
        // then the only source of views.
        Notification::TotemRing { ring, members } if !conn.quorum.has_provider() => {
            (ring, members, true)
        }
        other => {
            tracing::trace!(notification = ?other, "corosync notification");
            return Ok(());
        }
    };
    if !members.contains(&conn.local) {
        // The ring no longer holds this node: it has been evicted.
        if let Some(last) = tracker.evict() {
            shared.publish(EventKind::Evicted, last);
        }
        return Ok(());
    }
    let quorum = quorum_of(conn, &members, quorate, options).await?;
    if members.iter().any(|m| !conn.names.contains_key(m)) {
        conn.names = read_nodelist(&conn.cmap);
    }
    refresh_votes(conn, &members, quorum.votes, options).await;
    let votes = &conn.votes;
    let obs = Observation {
        ring,
        members,
        quorum,
    };
    let names = &conn.names;
    if let Some((kind, view)) = tracker.observe(
        &obs,
        |id| names.get(&id).cloned().unwrap_or_else(|| fallback_name(id)),
        |id| votes.get(&id).copied().unwrap_or(1),
    ) {
        shared.publish(kind, view);
    }
    Ok(())
}

/// Keeps `conn.votes` right for `members` with one IPC round trip per node only when needed:
/// for nodes never asked about, or for all when the cached votes no longer add up to the
/// partition's total (someone changed a node's votes).
async fn refresh_votes(
    conn: &mut Connection,
    members: &[u32],
    total_votes: u32,
    options: &CorosyncOptions,
) {
    let Some(vq) = &conn.votequorum else {
        return;
    };
    let cached: Option<u32> = members.iter().map(|m| conn.votes.get(m).copied()).sum();
    let stale: Vec<u32> = if cached.is_some_and(|sum| sum != total_votes) {
        members.to_vec()
    } else {
        members
            .iter()
            .copied()
            .filter(|m| !conn.votes.contains_key(m))
            .collect()
    };
    for m in stale {
        if let Ok(info) = retry(options.try_again_bound, || vq.info(m)).await {
            conn.votes.insert(m, info.node_votes);
        }
    }
}

/// The quorum numbers for a view: votequorum's, or a per-node count without it. Only a broken
/// connection is an error; any other failure of votequorum falls back to counting nodes.
async fn quorum_of(
    conn: &Connection,
    members: &[u32],
    quorate: bool,
    options: &CorosyncOptions,
) -> Result<Quorum, CsError> {
    let n = members.len() as u32;
    let counted = Quorum::reported(quorate, n, n, n / 2 + 1);
    let Some(vq) = &conn.votequorum else {
        return Ok(counted);
    };
    match retry(options.try_again_bound, || vq.info(conn.local)).await {
        Ok(info) => Ok(Quorum::reported(
            quorate,
            info.total_votes,
            info.expected_votes,
            info.quorum,
        )),
        Err(e) if matches!(e.code(), None | Some(code::LIBRARY | code::BAD_HANDLE)) => Err(e),
        Err(e) => {
            tracing::warn!(error = %e, "votequorum did not answer; counting one vote per node");
            Ok(counted)
        }
    }
}

/// Waits for `fut` at most `limit`; `None` on timeout.
pub(crate) async fn within<T>(limit: Duration, fut: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(limit, fut).await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy() -> CsError {
        CsError::Code {
            call: "cpg_join",
            code: code::TRY_AGAIN,
        }
    }

    #[tokio::test]
    async fn try_again_is_retried_until_it_clears() {
        let mut calls = 0;
        let result = retry(Duration::from_secs(5), || {
            calls += 1;
            if calls < 4 { Err(busy()) } else { Ok(calls) }
        })
        .await;
        assert_eq!(result.unwrap(), 4);
    }

    #[tokio::test]
    async fn try_again_gives_up_at_the_bound() {
        let mut calls = 0;
        let result: Result<(), CsError> = retry(Duration::from_millis(50), || {
            calls += 1;
            Err(busy())
        })
        .await;
        assert!(result.unwrap_err().is_try_again());
        assert!(calls > 1, "retried at least once");
    }

    #[tokio::test]
    async fn other_errors_are_not_retried() {
        let mut calls = 0;
        let result: Result<(), CsError> = retry(Duration::from_secs(5), || {
            calls += 1;
            Err(CsError::Code {
                call: "cmap_initialize",
                code: code::LIBRARY,
            })
        })
        .await;
        assert_eq!(result.unwrap_err().code(), Some(code::LIBRARY));
        assert_eq!(calls, 1);
    }

    #[test]
    fn subscribers_see_one_sequence() {
        use ocf_membership::{Member, ViewId};
        let shared = Shared::new(8);
        let view = |seq| {
            View::new(
                ViewId::new(seq, NodeId::new(1), 0),
                vec![Member::new(NodeId::new(1), fallback_name(1))],
                None,
                Quorum::majority(1, 1),
            )
        };
        let (none, mut early) = shared.subscribe();
        assert!(none.is_none());
        shared.publish(EventKind::NewMembership, view(1));
        let (initial, mut late) = shared.subscribe();
        assert_eq!(initial.unwrap().id.instance, 1);
        shared.publish(EventKind::Evicted, view(1));
        assert!(shared.current().is_none(), "no view while evicted");
        assert_eq!(early.try_recv().unwrap().seq, 1);
        let a = early.try_recv().unwrap();
        let b = late.try_recv().unwrap();
        assert_eq!(a, b);
        assert_eq!((a.seq, a.kind), (2, EventKind::Evicted));
    }
}
