//! The etcd engine: a lease and a member key per node, views from the watched member keys,
//! the built-in detector revoking a dead node's lease. See the module documentation for the
//! mapping and its invariants.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use etcd_client::{
    Client, Compare, CompareOp, EventType, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse,
    WatchOptions, WatchResponse, WatchStream,
};
use ocf_core::NodeId;
use ocf_membership::{EventKind, Membership, MembershipError, MembershipEvent, Subscription, View};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

use super::connect::{connect, request_timeout};
use super::error::EtcdError;
use super::keys::{KeyLayout, MemberRecord};
use super::table::{Change, MemberEntry, MemberTable};
use crate::fencing::cluster::link::LinkEnds;
use crate::membership::builtin::BuiltinEngine;
use crate::membership::builtin::hub::{EventHub, HubSubscription};
use crate::membership::builtin::key::ClusterKey;
use crate::membership::config::NodeConfig;

/// How often a lost watch is tried again.
const REWATCH_EVERY: Duration = Duration::from_millis(500);
/// The longest wait between two join attempts while etcd is unreachable.
const MAX_JOIN_BACKOFF: Duration = Duration::from_secs(2);
/// How long a full read of the members may take: it grows with the cluster (10,000 members
/// are about a megabyte), and nothing waits on it but this node's own view.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The operation name of a full read of the members.
const READ_MEMBERS: &str = "read members";
/// How long a leaving node waits for its lease's revocation.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Counters of what the engine did, for tests, benchmarks and `stats`.
#[derive(Debug, Default)]
pub struct EtcdStats {
    /// Member keys this node deleted because the detector declared their node dead.
    pub revokes: AtomicU64,
    /// Times this node learnt its own lease or key was gone (and joined again).
    pub evictions: AtomicU64,
    /// Watches re-opened after a lost stream or a compaction.
    pub watch_restarts: AtomicU64,
    /// Keep-alive streams re-opened after one stopped answering.
    pub keepalive_reopens: AtomicU64,
    /// Full re-reads of the members after a compaction gap.
    pub rereads: AtomicU64,
}

/// A running etcd membership node.
pub struct EtcdEngine {
    local: NodeId,
    hub: Arc<EventHub>,
    detector: Arc<BuiltinEngine>,
    client: Client,
    layout: KeyLayout,
    lease: Arc<AtomicI64>,
    stats: Arc<EtcdStats>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for EtcdEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdEngine")
            .field("local", &self.local)
            .field("prefix", &self.layout.prefix())
            .field("lease", &self.lease_id())
            .finish_non_exhaustive()
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

impl EtcdEngine {
    /// Starts the node of `config` (`backend = "etcd"`): connects to etcd, starts the failure
    /// detector (the built-in engine on the node's `[[nodes]]` address, with `key`), then
    /// joins in the background: a node that cannot reach etcd yet keeps trying, with no view
    /// and not primary meanwhile.
    pub async fn start(config: &NodeConfig, key: &ClusterKey) -> Result<Self, EtcdError> {
        let local = config.local_id();
        let etcd = config
            .etcd
            .as_ref()
            .ok_or(EtcdError::NotConfigured { node: local })?;
        let entry = config
            .local_entry()
            .ok_or(EtcdError::NotInCluster { node: local })?;
        let client = connect(etcd).await?;
        let detector = Arc::new(BuiltinEngine::start(config, key).await.map_err(|source| {
            EtcdError::Detector {
                node: local,
                source,
            }
        })?);
        let layout = KeyLayout::new(config.etcd_prefix());
        let hub = Arc::new(EventHub::new(format!(
            "etcd membership of node {local} in cluster {}",
            config.cluster
        )));
        hub.set_primary_until(Some(Instant::now()));
        let expected_votes = config
            .quorum
            .expected_votes
            .unwrap_or_else(|| config.nodes.iter().map(|n| n.votes).sum());
        let record = MemberRecord {
            id: local.get(),
            name: entry.name.clone(),
            votes: entry.votes,
            inc: now_us() / 1000,
        };
        let lease = Arc::new(AtomicI64::new(0));
        let stats = Arc::new(EtcdStats::default());
        let runner = Runner {
            me: local,
            client: client.clone(),
            layout: layout.clone(),
            record,
            ttl_s: etcd.lease_ttl_s,
            timeout: request_timeout(etcd.lease_ttl_s),
            hub: Arc::clone(&hub),
            table: MemberTable::new(0, expected_votes),
            expected_votes,
            seq: 0,
            previous: None,
            primary_until: None,
            lease: Arc::clone(&lease),
            detector: detector.hub().subscribe(),
            detector_open: true,
            revoked: BTreeSet::new(),
            background: JoinSet::new(),
            stats: Arc::clone(&stats),
            last_rev: 0,
        };
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(run_until_stopped(
            runner,
            stop_rx,
            client.clone(),
            Arc::clone(&lease),
            Arc::clone(&hub),
            Arc::clone(&detector),
        ));
        tracing::info!(node = %local, prefix = layout.prefix(), endpoints = ?etcd.endpoints, ttl_s = etcd.lease_ttl_s, "etcd membership node started");
        Ok(Self {
            local,
            hub,
            detector,
            client,
            layout,
            lease,
            stats,
            stop: Mutex::new(Some(stop_tx)),
            task: Mutex::new(Some(task)),
        })
    }

    /// The event hub (for serving it).
    pub fn hub(&self) -> &Arc<EventHub> {
        &self.hub
    }

    /// The failure detector: the built-in engine among the configured nodes.
    pub fn detector(&self) -> &Arc<BuiltinEngine> {
        &self.detector
    }

    /// The etcd client (cheap to clone; the fence guard shares it).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The cluster's key layout.
    pub fn layout(&self) -> &KeyLayout {
        &self.layout
    }

    /// The lease this node holds now, if it joined.
    pub fn lease_id(&self) -> Option<i64> {
        Some(self.lease.load(Ordering::Relaxed)).filter(|&l| l != 0)
    }

    /// What the engine did so far.
    pub fn stats(&self) -> &Arc<EtcdStats> {
        &self.stats
    }

    /// The cluster fencer's link, over the detector's authenticated UDP transport; `None`
    /// after the first call.
    pub fn take_fence_link(&self) -> Option<LinkEnds> {
        self.detector.take_fence_link()
    }

    /// Leaves the cluster: revokes this node's lease (its peers install a view without it at
    /// once), then subscribers get `Evicted` with the last view and the end of their stream;
    /// the detector stops. Returns at once; [`EtcdEngine::shutdown`] waits. Safe to call more
    /// than once.
    pub fn stop(&self) {
        let stop = self
            .stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
    }

    /// Stops as [`EtcdEngine::stop`] does and waits until the node has left.
    pub async fn shutdown(&self) {
        self.stop();
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// Stops at once without a word to etcd or the peers, as `kill -9` would (tests): the
    /// lease is left to the detector's revoke or to its TTL. Subscribers get `Evicted`, then
    /// the end.
    pub fn abort(&self) {
        if let Some(task) = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
        self.detector.stop();
        self.hub.close_evicted();
        self.hub.close();
    }
}

impl Drop for EtcdEngine {
    fn drop(&mut self) {
        if let Some(task) = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
        self.hub.close();
    }
}

#[async_trait]
impl Membership for EtcdEngine {
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

/// Runs the node until `stop`, then leaves: revokes the lease, ends the streams, stops the
/// detector.
async fn run_until_stopped(
    runner: Runner,
    stop: oneshot::Receiver<()>,
    mut client: Client,
    lease: Arc<AtomicI64>,
    hub: Arc<EventHub>,
    detector: Arc<BuiltinEngine>,
) {
    tokio::select! {
        _ = stop => {}
        () = runner.run() => {}
    }
    let id = lease.swap(0, Ordering::Relaxed);
    if id != 0 {
        match tokio::time::timeout(LEAVE_TIMEOUT, client.lease_revoke(id)).await {
            Ok(Ok(_)) => tracing::info!(lease = id, "left etcd: lease revoked"),
            Ok(Err(e)) => {
                tracing::warn!(lease = id, error = %e, "leaving: cannot revoke the lease; it expires by its TTL");
            }
            Err(_) => tracing::warn!(
                lease = id,
                "leaving: etcd did not answer the revoke; the lease expires by its TTL"
            ),
        }
    }
    hub.set_primary_until(Some(Instant::now()));
    hub.close_evicted();
    hub.close();
    detector.stop();
}

/// What the keep-alive task reports.
#[derive(Debug)]
enum KeepAlive {
    /// etcd renewed the lease for a request sent at this instant.
    Alive(Instant),
    /// A keep-alive failed; the stream is re-opened.
    Failing(String),
    /// etcd says the lease is gone.
    Lost,
}

/// What to do after a watch response.
enum AfterWatch {
    Keep,
    Reopen,
    /// This node's own key is gone: leave and join again.
    Rejoin,
}

/// The engine's state, owned by its one task.
struct Runner {
    me: NodeId,
    client: Client,
    layout: KeyLayout,
    record: MemberRecord,
    ttl_s: u64,
    timeout: Duration,
    hub: Arc<EventHub>,
    table: MemberTable,
    expected_votes: u32,
    seq: u64,
    /// The last view installed (not quorate after an eviction).
    previous: Option<View>,
    primary_until: Option<Instant>,
    lease: Arc<AtomicI64>,
    detector: HubSubscription,
    detector_open: bool,
    /// Leases this node already asked etcd to revoke.
    revoked: BTreeSet<i64>,
    /// Revocations in flight (aborted with the runner).
    background: JoinSet<()>,
    stats: Arc<EtcdStats>,
    /// The last revision of the member keys this node has applied.
    last_rev: i64,
}

impl Runner {
    async fn run(mut self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.join().await {
                Ok(lease) => {
                    backoff = Duration::from_millis(100);
                    self.follow(lease).await;
                }
                Err(e) => {
                    tracing::warn!(node = %self.me, error = %e, "cannot join etcd yet; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_JOIN_BACKOFF);
                }
            }
        }
    }

    fn request_error(&self, operation: &'static str, source: etcd_client::Error) -> EtcdError {
        EtcdError::Request {
            operation,
            node: self.me,
            source,
        }
    }

    /// Runs `f` with the request timeout (a longer one for a full read of the members).
    async fn timed<T>(
        &self,
        operation: &'static str,
        f: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, EtcdError> {
        let limit = if operation == READ_MEMBERS {
            READ_TIMEOUT
        } else {
            self.timeout
        };
        match tokio::time::timeout(limit, f).await {
            Ok(r) => r.map_err(|e| self.request_error(operation, e)),
            Err(_) => Err(EtcdError::TimedOut {
                operation,
                node: self.me,
                after_ms: limit.as_millis() as u64,
            }),
        }
    }

    fn set_primary_until(&mut self, until: Instant) {
        self.primary_until = Some(until);
        self.hub.set_primary_until(Some(until));
    }

    fn is_primary(&self) -> bool {
        self.primary_until.is_some_and(|t| Instant::now() < t)
    }

    fn half_ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_s * 500)
    }

    /// Grants a lease, creates this node's key under it (removing a key an earlier process of
    /// this node left), reads the members at that revision and installs that view.
    async fn join(&mut self) -> Result<i64, EtcdError> {
        let mut client = self.client.clone();
        let sent = Instant::now();
        let ttl = i64::try_from(self.ttl_s).unwrap_or(10);
        let grant = self
            .timed("lease grant", client.lease_grant(ttl, None))
            .await?;
        let lease = grant.id();
        if let Some(h) = grant.header() {
            self.table = MemberTable::new(h.cluster_id(), self.expected_votes);
        }
        self.lease.store(lease, Ordering::Relaxed);
        let key = self.layout.member_key(self.me);
        let value = self.record.to_value();
        let mut created = None;
        for _ in 0..3 {
            let txn = Txn::new()
                .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(
                    key.clone(),
                    value.clone(),
                    Some(PutOptions::new().with_lease(lease)),
                )])
                .or_else([TxnOp::get(key.clone(), None)]);
            let r = self.timed("join", client.txn(txn)).await?;
            if r.succeeded() {
                created = r.header().map(etcd_client::ResponseHeader::revision);
                break;
            }
            // An earlier process of this node left its key: remove it (guarded by its
            // lease), so this join is a change every watcher sees.
            let old = r.op_responses().into_iter().find_map(|op| match op {
                TxnOpResponse::Get(g) => g.kvs().first().map(etcd_client::KeyValue::lease),
                _ => None,
            });
            if let Some(old) = old {
                tracing::info!(node = %self.me, old_lease = old, "removing the member key of an earlier process of this node");
                let txn = Txn::new()
                    .when([Compare::lease(key.clone(), CompareOp::Equal, old)])
                    .and_then([TxnOp::delete(key.clone(), None)]);
                self.timed("remove old member key", client.txn(txn)).await?;
                if old != 0 {
                    let _ = self
                        .timed("revoke old lease", client.lease_revoke(old))
                        .await;
                }
            }
        }
        let rev = created.ok_or_else(|| EtcdError::Protocol {
            operation: "join",
            node: self.me,
            reason: format!("could not create member key {key}: it keeps coming back"),
        })?;
        self.set_primary_until(sent + self.half_ttl());
        // The members exactly as of this join: the view every watcher installs at `rev`.
        let read = self
            .timed(
                READ_MEMBERS,
                client.get(
                    self.layout.members_prefix(),
                    Some(GetOptions::new().with_prefix().with_revision(rev)),
                ),
            )
            .await;
        let (entries, at) = match read {
            Ok(r) => (self.entries(r.kvs()), rev),
            Err(e) => {
                // Compacted already (or a hiccup): read now; that revision's view it is.
                tracing::debug!(error = %e, "reading the members at the join revision failed; reading the latest");
                let r = self
                    .timed(
                        READ_MEMBERS,
                        client.get(
                            self.layout.members_prefix(),
                            Some(GetOptions::new().with_prefix()),
                        ),
                    )
                    .await?;
                let at = r
                    .header()
                    .map_or(rev, etcd_client::ResponseHeader::revision);
                (self.entries(r.kvs()), at)
            }
        };
        self.table.replace(entries);
        self.last_rev = at;
        self.install(at);
        tracing::info!(node = %self.me, lease, revision = at, members = self.table.len(), "joined etcd membership");
        Ok(lease)
    }

    fn entries(&self, kvs: &[etcd_client::KeyValue]) -> Vec<(NodeId, MemberEntry)> {
        kvs.iter()
            .filter_map(|kv| match Change::from_kv(&self.layout, kv, false) {
                Some(Change::Put { id, entry }) => Some((id, entry)),
                _ => None,
            })
            .collect()
    }

    /// Installs the table as the view of `revision`.
    fn install(&mut self, revision: i64) {
        let quorate = self.is_primary();
        let view = self.table.view(revision, self.previous.as_ref(), quorate);
        let kind = EventKind::for_transition(self.previous.as_ref().map(View::is_quorate), quorate);
        self.seq += 1;
        tracing::info!(
            seq = self.seq,
            ?kind,
            view = %view.id,
            members = view.members().len(),
            quorate,
            "membership event"
        );
        self.hub
            .publish(MembershipEvent::new(self.seq, kind, view.clone()).at(now_us(), None));
        self.previous = Some(view);
    }

    /// This node's lease or key is gone: `Evicted` with the last view, not primary.
    fn evicted(&mut self) {
        self.stats.evictions.fetch_add(1, Ordering::Relaxed);
        self.primary_until = None;
        self.hub.set_primary_until(Some(Instant::now()));
        self.lease.store(0, Ordering::Relaxed);
        if let Some(mut view) = self.previous.take() {
            self.seq += 1;
            tracing::warn!(node = %self.me, view = %view.id, "evicted: this node's lease is gone; joining again");
            self.hub.publish(
                MembershipEvent::new(self.seq, EventKind::Evicted, view.clone()).at(now_us(), None),
            );
            view.mark_not_quorate();
            self.previous = Some(view);
        }
    }

    /// Follows etcd while this node holds `lease`: keep-alives, the watch, the detector.
    async fn follow(&mut self, lease: i64) {
        let (ka_tx, mut ka_rx) = mpsc::channel(16);
        let mut tasks = JoinSet::new();
        tasks.spawn(keep_alive(
            self.client.clone(),
            lease,
            self.ttl_s,
            ka_tx,
            Arc::clone(&self.stats),
        ));
        let mut watch = self.open_watch().await;
        let mut retry = tokio::time::interval(REWATCH_EVERY);
        loop {
            tokio::select! {
                ka = ka_rx.recv() => match ka {
                    Some(KeepAlive::Alive(sent)) => {
                        self.set_primary_until(sent + self.half_ttl());
                    }
                    Some(KeepAlive::Failing(why)) => {
                        tracing::debug!(node = %self.me, lease, why, "keep-alive failed");
                    }
                    Some(KeepAlive::Lost) | None => {
                        self.evicted();
                        return;
                    }
                },
                msg = next_watch(&mut watch) => {
                    let after = if let Ok(Some(resp)) = msg {
                        self.on_watch(&resp).await
                    } else {
                        tracing::debug!(node = %self.me, "membership watch lost; re-opening it");
                        AfterWatch::Reopen
                    };
                    match after {
                        AfterWatch::Keep => {}
                        AfterWatch::Reopen => watch = None,
                        AfterWatch::Rejoin => {
                            let mut client = self.client.clone();
                            let _ = self.timed("revoke own lease", client.lease_revoke(lease)).await;
                            self.evicted();
                            return;
                        }
                    }
                }
                ev = self.detector.next_event(), if self.detector_open => match ev {
                    Ok(Some(ev)) => self.on_detector(&ev),
                    Ok(None) => self.detector_open = false,
                    Err(_) => {} // lagged: the next event carries its whole view
                },
                _ = retry.tick() => {
                    if watch.is_none() {
                        watch = self.open_watch().await;
                    }
                }
                Some(_) = self.background.join_next(), if !self.background.is_empty() => {}
            }
        }
    }

    /// A watch of the member keys from the revision after the last one applied.
    async fn open_watch(&mut self) -> Option<WatchStream> {
        let mut client = self.client.clone();
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(self.last_rev + 1);
        match self
            .timed(
                "watch members",
                client.watch(self.layout.members_prefix(), Some(options)),
            )
            .await
        {
            Ok(w) => {
                self.stats.watch_restarts.fetch_add(1, Ordering::Relaxed);
                Some(w)
            }
            Err(e) => {
                tracing::debug!(node = %self.me, error = %e, "cannot open the membership watch yet");
                None
            }
        }
    }

    /// Applies a watch response's changes in order and installs one view, at the revision of
    /// its last member change: every id installed is the member set etcd held at that
    /// revision, so nodes agree whichever views they skip, and a burst of thousands of
    /// expiries costs one view per response, not one per key.
    async fn on_watch(&mut self, resp: &WatchResponse) -> AfterWatch {
        if resp.canceled() {
            if resp.compact_revision() > 0 {
                tracing::warn!(node = %self.me, from = self.last_rev + 1, compacted = resp.compact_revision(), "membership watch fell behind a compaction; re-reading the members");
                self.reread().await;
            }
            return AfterWatch::Reopen;
        }
        let mut changed_at: Option<i64> = None;
        let mut seen = false;
        for ev in resp.events() {
            let Some(kv) = ev.kv() else { continue };
            let rev = kv.mod_revision();
            if rev <= self.last_rev {
                continue; // applied already (a re-opened watch may repeat)
            }
            let deleted = ev.event_type() == EventType::Delete;
            if let Some(c) = Change::from_kv(&self.layout, kv, deleted)
                && self.table.apply(c)
            {
                changed_at = Some(rev);
            }
            seen = true;
            self.last_rev = self.last_rev.max(rev);
        }
        if let Some(r) = changed_at {
            self.install(r);
        }
        if seen && self.table.get(self.me).is_none() {
            return AfterWatch::Rejoin;
        }
        AfterWatch::Keep
    }

    /// After a compaction gap: the members now, and at most one view for them.
    async fn reread(&mut self) {
        self.stats.rereads.fetch_add(1, Ordering::Relaxed);
        let mut client = self.client.clone();
        let read = self
            .timed(
                READ_MEMBERS,
                client.get(
                    self.layout.members_prefix(),
                    Some(GetOptions::new().with_prefix()),
                ),
            )
            .await;
        match read {
            Ok(r) => {
                let rev = r
                    .header()
                    .map_or(self.last_rev, etcd_client::ResponseHeader::revision);
                let entries = self.entries(r.kvs());
                if self.table.replace(entries) {
                    self.install(rev);
                }
                self.last_rev = rev;
            }
            Err(e) => {
                tracing::warn!(node = %self.me, error = %e, "re-reading the members failed; the watch will try again");
            }
        }
    }

    /// The detector's quorate view dropped nodes: delete their member keys, guarded by the
    /// lease each held when suspected, and revoke those leases.
    fn on_detector(&mut self, ev: &MembershipEvent) {
        if ev.kind == EventKind::Evicted || !ev.view.is_quorate() {
            return;
        }
        for &id in ev.view.left() {
            if id == self.me {
                continue;
            }
            let Some(entry) = self.table.get(id) else {
                continue;
            };
            let lease = entry.lease;
            if !self.revoked.insert(lease) {
                continue;
            }
            tracing::info!(node = %self.me, suspect = %id, lease, detector_view = %ev.view.id, "the detector declared a member dead; revoking its lease");
            self.background.spawn(revoke(
                self.client.clone(),
                self.layout.member_key(id),
                lease,
                id,
                self.timeout,
                Arc::clone(&self.stats),
            ));
        }
    }
}

/// The next watch response, or never when there is no watch.
async fn next_watch(
    watch: &mut Option<WatchStream>,
) -> Result<Option<WatchResponse>, etcd_client::Error> {
    match watch {
        Some(w) => w.message().await,
        None => std::future::pending().await,
    }
}

fn lease_gone(e: &etcd_client::Error) -> bool {
    e.to_string().contains("lease not found")
}

/// Deletes `key` if it is still under `lease`, then revokes `lease`: a node that was only
/// suspected loses its lease too, and joins again.
async fn revoke(
    mut client: Client,
    key: String,
    lease: i64,
    node: NodeId,
    timeout: Duration,
    stats: Arc<EtcdStats>,
) {
    let txn = Txn::new()
        .when([Compare::lease(key.clone(), CompareOp::Equal, lease)])
        .and_then([TxnOp::delete(key.clone(), None)]);
    match tokio::time::timeout(timeout, client.txn(txn)).await {
        Ok(Ok(r)) if r.succeeded() => {
            stats.revokes.fetch_add(1, Ordering::Relaxed);
            tracing::info!(suspect = %node, lease, key, "deleted the dead member's key");
        }
        Ok(Ok(_)) => {
            tracing::debug!(suspect = %node, lease, "the suspect's key had moved on already");
        }
        Ok(Err(e)) => {
            tracing::warn!(suspect = %node, lease, error = %e, "cannot delete the dead member's key; its lease expires by its TTL");
        }
        Err(_) => {
            tracing::warn!(suspect = %node, lease, "etcd did not answer the delete; the lease expires by its TTL");
        }
    }
    let _ = tokio::time::timeout(timeout, client.lease_revoke(lease)).await;
}

/// Renews `lease` every TTL/5 over one keep-alive stream, re-opening the stream whenever an
/// answer does not come within that period (etcd-client's stream is not re-opened after a
/// leader loss by itself). Reports every renewal, failure and the lease's loss.
async fn keep_alive(
    mut client: Client,
    lease: i64,
    ttl_s: u64,
    tx: mpsc::Sender<KeepAlive>,
    stats: Arc<EtcdStats>,
) {
    let period = Duration::from_millis((ttl_s * 1000 / 5).max(100));
    loop {
        let opened = tokio::time::timeout(period, client.lease_keep_alive(lease)).await;
        let (mut keeper, mut stream) = match opened {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) if lease_gone(&e) => {
                let _ = tx.send(KeepAlive::Lost).await;
                return;
            }
            Ok(Err(e)) => {
                if tx.send(KeepAlive::Failing(e.to_string())).await.is_err() {
                    return;
                }
                tokio::time::sleep(period / 2).await;
                continue;
            }
            Err(_) => {
                if tx
                    .send(KeepAlive::Failing(
                        "opening the keep-alive stream timed out".into(),
                    ))
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            }
        };
        loop {
            let sent = Instant::now();
            if let Err(e) = keeper.keep_alive().await {
                let _ = tx.send(KeepAlive::Failing(e.to_string())).await;
                break;
            }
            match tokio::time::timeout(period, stream.message()).await {
                Ok(Ok(Some(r))) if r.ttl() > 0 => {
                    if tx.send(KeepAlive::Alive(sent)).await.is_err() {
                        return;
                    }
                }
                Ok(Ok(Some(_))) => {
                    let _ = tx.send(KeepAlive::Lost).await;
                    return;
                }
                Ok(Err(e)) if lease_gone(&e) => {
                    let _ = tx.send(KeepAlive::Lost).await;
                    return;
                }
                Ok(Err(e)) => {
                    let _ = tx.send(KeepAlive::Failing(e.to_string())).await;
                    break;
                }
                Ok(Ok(None)) => {
                    let _ = tx
                        .send(KeepAlive::Failing("the keep-alive stream ended".into()))
                        .await;
                    break;
                }
                Err(_) => {
                    let _ = tx
                        .send(KeepAlive::Failing(
                            "no keep-alive answer within a period".into(),
                        ))
                        .await;
                    break;
                }
            }
            tokio::time::sleep_until((sent + period).into()).await;
        }
        stats.keepalive_reopens.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
