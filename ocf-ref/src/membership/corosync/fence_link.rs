//! The cluster fencer's link over a Corosync CPG group, as Pacemaker's fencer uses one.
//!
//! [`cpg_link`] joins the group `ocf-fence-<cluster>` and hands the fencer the usual
//! [`LinkEnds`]. Every outgoing [`LinkMessage`] is multicast to the group in agreed order with a
//! small header naming its destination node; every link delivers the messages addressed to its
//! own node (with `peer` = the sender's Corosync node id, as the membership engine maps it) and
//! drops the rest. Corosync authenticates the senders (the cluster's `authkey`) and orders the
//! messages, so the link adds neither.
//!
//! Wire format of one CPG message: `b"OCFL"`, a version byte (1), the destination node id as a
//! big-endian `u32`, then the payload (at most [`MAX_LINK_PAYLOAD`] bytes). A message that does
//! not parse so is counted ([`LinkStats::malformed`]) and dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ocf_core::NodeId;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::engine::retry;
use super::ffi::{Cpg, CsError, Notification, code};
use crate::fencing::cluster::link::{EngineEnds, LinkEnds, LinkMessage, MAX_LINK_PAYLOAD, pair};

/// The prefix of every fence link group; the cluster's name follows.
pub const GROUP_PREFIX: &str = "ocf-fence-";

/// The longest CPG group name Corosync accepts, in bytes.
pub const MAX_GROUP_NAME: usize = 128;

/// How long a call answered with `CS_ERR_TRY_AGAIN` (corosync busy or its queues full) is
/// retried before giving up: joining then fails with [`CpgLinkError::Busy`]; a message is
/// dropped (the fencer re-sends what matters).
pub const TRY_AGAIN_BOUND: Duration = Duration::from_secs(5);

const MAGIC: &[u8; 4] = b"OCFL";
const VERSION: u8 = 1;
const HEADER_LEN: usize = 9;

/// Why [`cpg_link`] could not join the fence link's group.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CpgLinkError {
    /// `ocf-fence-<cluster>` is longer than Corosync's 128 bytes.
    #[error(
        "fence link group name {group:?} is {len} bytes, over Corosync's limit of {max}; \
         use a shorter cluster name"
    )]
    NameTooLong {
        /// The group name asked for.
        group: String,
        /// Its length in bytes.
        len: usize,
        /// The limit ([`MAX_GROUP_NAME`]).
        max: usize,
    },
    /// Corosync cannot be reached over its local IPC.
    #[error(
        "fence link group {group}: cannot reach corosync ({reason}); is corosync running on \
         this node (`corosync-cfgtool -s`)?"
    )]
    Unavailable {
        /// The group name.
        group: String,
        /// The failed call and its `cs_error_t`.
        reason: String,
    },
    /// Corosync refused this process.
    #[error(
        "fence link group {group}: corosync refused this process ({reason}); run as root, or \
         allow its user or group with `uidgid {{ uid: USER }}` in corosync.conf"
    )]
    PermissionDenied {
        /// The group name.
        group: String,
        /// The failed call and its `cs_error_t`.
        reason: String,
    },
    /// Corosync answered `CS_ERR_TRY_AGAIN` for longer than [`TRY_AGAIN_BOUND`].
    #[error(
        "fence link group {group}: corosync stayed busy for {waited:?} (probably synchronizing \
         a membership change); try again later"
    )]
    Busy {
        /// The group name.
        group: String,
        /// How long the call was retried.
        waited: Duration,
    },
    /// This process is already in the group (one link per cluster per process).
    #[error(
        "fence link group {group}: this process has already joined it; keep one link per \
         cluster per process"
    )]
    AlreadyJoined {
        /// The group name.
        group: String,
    },
    /// Any other failure of a Corosync call.
    #[error("fence link group {group}: {reason}")]
    Corosync {
        /// The group name.
        group: String,
        /// The failed call and its `cs_error_t`.
        reason: String,
    },
}

impl CpgLinkError {
    fn from_cs(group: &str, e: &CsError) -> Self {
        let group = group.to_string();
        let reason = e.to_string();
        match e.code() {
            None | Some(code::LIBRARY | code::BAD_HANDLE) => Self::Unavailable { group, reason },
            Some(code::ACCESS | code::SECURITY) => Self::PermissionDenied { group, reason },
            Some(code::TRY_AGAIN) => Self::Busy {
                group,
                waited: TRY_AGAIN_BOUND,
            },
            Some(code::EXIST) => Self::AlreadyJoined { group },
            Some(_) => Self::Corosync { group, reason },
        }
    }
}

/// Counters of one link since it joined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkStats {
    /// Messages multicast to the group.
    pub sent: u64,
    /// Messages delivered to the fencer.
    pub delivered: u64,
    /// Messages on the group addressed to another node (skipped, as they should be).
    pub other_destination: u64,
    /// Messages on the group whose header did not parse (dropped).
    pub malformed: u64,
    /// Outgoing payloads over [`MAX_LINK_PAYLOAD`] (refused).
    pub refused: u64,
    /// Outgoing messages dropped because corosync stayed busy for [`TRY_AGAIN_BOUND`].
    pub send_gave_up: u64,
    /// Incoming messages dropped because the fencer's queue was full.
    pub incoming_full: u64,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    delivered: AtomicU64,
    other_destination: AtomicU64,
    malformed: AtomicU64,
    refused: AtomicU64,
    send_gave_up: AtomicU64,
    incoming_full: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64) -> u64 {
        counter.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn snapshot(&self) -> LinkStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LinkStats {
            sent: get(&self.sent),
            delivered: get(&self.delivered),
            other_destination: get(&self.other_destination),
            malformed: get(&self.malformed),
            refused: get(&self.refused),
            send_gave_up: get(&self.send_gave_up),
            incoming_full: get(&self.incoming_full),
        }
    }
}

/// A joined fence link: the fencer's ends (taken once with [`CpgLink::take_ends`]) and the
/// task that carries them over the CPG group.
///
/// Dropping it (or [`CpgLink::close`]) leaves the group and closes the connection to corosync;
/// the fencer's `incoming` then ends. When corosync goes away, `incoming` ends too
/// (`recv` answers `None`) and sends fail; the link does not reconnect (open a new one).
pub struct CpgLink {
    group: String,
    local: NodeId,
    ends: Option<LinkEnds>,
    members: watch::Receiver<Vec<NodeId>>,
    processes: watch::Receiver<Vec<(NodeId, u32)>>,
    counters: Arc<Counters>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for CpgLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpgLink")
            .field("group", &self.group)
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

/// Joins the fence link group of `cluster` (`ocf-fence-<cluster>`) on the local corosync and
/// starts carrying the fencer's messages over it. Must be called inside a tokio runtime; the
/// link's task runs on it.
///
/// `CS_ERR_TRY_AGAIN` is retried for at most [`TRY_AGAIN_BOUND`]. Fails with a
/// [`CpgLinkError`] naming the group: name too long (checked before connecting), corosync
/// unreachable or refusing, busy, or this process already in the group.
pub async fn cpg_link(cluster: &str) -> Result<CpgLink, CpgLinkError> {
    let group = format!("{GROUP_PREFIX}{cluster}");
    if group.len() > MAX_GROUP_NAME {
        return Err(CpgLinkError::NameTooLong {
            len: group.len(),
            group,
            max: MAX_GROUP_NAME,
        });
    }
    let fail = |e: CsError| CpgLinkError::from_cs(&group, &e);
    let (sink, notifications) = mpsc::unbounded_channel();
    let cpg = retry(TRY_AGAIN_BOUND, || Cpg::connect(sink.clone()))
        .await
        .map_err(fail)?;
    let local = retry(TRY_AGAIN_BOUND, || cpg.local_node())
        .await
        .map_err(fail)?;
    retry(TRY_AGAIN_BOUND, || cpg.join(&group))
        .await
        .map_err(fail)?;
    let local = NodeId::new(local);
    let (fencer, engine) = pair();
    let (members_tx, members) = watch::channel(Vec::new());
    let (processes_tx, processes) = watch::channel(Vec::new());
    let counters = Arc::new(Counters::default());
    let (stop, stopped) = oneshot::channel();
    tracing::info!(group = %group, node = %local, "joined the fence link's CPG group");
    let carrier = Carrier {
        cpg,
        group: group.clone(),
        local,
        notifications,
        members: members_tx,
        processes: processes_tx,
        counters: Arc::clone(&counters),
        incoming_dropping: false,
    };
    let task = tokio::spawn(carrier.run(engine, stopped));
    Ok(CpgLink {
        group,
        local,
        ends: Some(fencer),
        members,
        processes,
        counters,
        stop: Some(stop),
        task: Some(task),
    })
}

impl CpgLink {
    /// The fencer's ends of the link; `Some` the first time only.
    pub fn take_ends(&mut self) -> Option<LinkEnds> {
        self.ends.take()
    }

    /// The CPG group this link joined.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// This node's id (Corosync's node id), the `peer` other links see for its messages.
    pub fn local_node(&self) -> NodeId {
        self.local
    }

    /// The nodes that have a link in the group now (sorted, each once), updated as links join
    /// and leave; empty until corosync reports the group after the join.
    pub fn members(&self) -> watch::Receiver<Vec<NodeId>> {
        self.members.clone()
    }

    /// The processes that have a link in the group now, as `(node, pid)` (sorted): a fencer
    /// that restarts on a node comes back with another pid, so the group changes even when
    /// its node list does not.
    pub fn processes(&self) -> watch::Receiver<Vec<(NodeId, u32)>> {
        self.processes.clone()
    }

    /// The link's counters so far.
    pub fn stats(&self) -> LinkStats {
        self.counters.snapshot()
    }

    /// Leaves the group, closes the connection to corosync and waits until that is done.
    pub async fn close(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for CpgLink {
    fn drop(&mut self) {
        // The task leaves the group and finalizes; if the runtime is already gone, dropping
        // the task's future finalizes the handle (which leaves the group too).
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Encodes the header of a message to `to`.
fn header(to: NodeId) -> [u8; HEADER_LEN] {
    let mut h = [0; HEADER_LEN];
    h[..4].copy_from_slice(MAGIC);
    h[4] = VERSION;
    h[5..].copy_from_slice(&to.get().to_be_bytes());
    h
}

/// Why a message on the group was not for the fencer.
#[derive(Debug, PartialEq, Eq)]
enum Decoded<'a> {
    /// A message to `to` carrying `payload`.
    Message { to: NodeId, payload: &'a [u8] },
    /// Not a fence link message of this version, or too large.
    Malformed(&'static str),
}

/// Parses one CPG message. Never panics, whatever the bytes.
fn decode(data: &[u8]) -> Decoded<'_> {
    let Some((head, payload)) = data.split_first_chunk::<HEADER_LEN>() else {
        return Decoded::Malformed("shorter than the header");
    };
    if &head[..4] != MAGIC {
        return Decoded::Malformed("bad magic");
    }
    if head[4] != VERSION {
        return Decoded::Malformed("unknown version");
    }
    if payload.len() > MAX_LINK_PAYLOAD {
        return Decoded::Malformed("payload over MAX_LINK_PAYLOAD");
    }
    let to = u32::from_be_bytes([head[5], head[6], head[7], head[8]]);
    Decoded::Message {
        to: NodeId::new(to),
        payload,
    }
}

/// A message waiting for corosync to take it (it answered `CS_ERR_TRY_AGAIN`).
struct Stuck {
    message: LinkMessage,
    give_up: Instant,
    next_try: Instant,
    pause: Duration,
}

/// The task's state: the CPG connection and where its notifications go.
struct Carrier {
    cpg: Cpg,
    group: String,
    local: NodeId,
    notifications: mpsc::UnboundedReceiver<Notification>,
    members: watch::Sender<Vec<NodeId>>,
    processes: watch::Sender<Vec<(NodeId, u32)>>,
    counters: Arc<Counters>,
    /// True while the fencer's incoming queue is full (warn once per episode).
    incoming_dropping: bool,
}

/// Why the task ended.
enum End {
    /// Closed by the owner, or the fencer dropped both ends: leave the group.
    Closed,
    /// The connection to corosync broke.
    Lost(String),
}

impl Carrier {
    async fn run(mut self, mut engine: EngineEnds, mut stopped: oneshot::Receiver<()>) {
        let end = self.serve(&mut engine, &mut stopped).await;
        match end {
            End::Closed => {
                let group = self.group.clone();
                match retry(Duration::from_secs(1), || self.cpg.leave(&group)).await {
                    Ok(()) => tracing::info!(group = %self.group, "left the fence link's group"),
                    Err(e) => {
                        tracing::debug!(group = %self.group, error = %e, "leaving the group");
                    }
                }
            }
            End::Lost(why) => {
                tracing::warn!(
                    group = %self.group,
                    reason = %why,
                    "lost corosync; the fence link is closed"
                );
            }
        }
        // Dropping `self.cpg` finalizes the handle; dropping `engine` ends the fencer's
        // incoming stream and fails its sends.
    }

    async fn serve(&mut self, engine: &mut EngineEnds, stopped: &mut oneshot::Receiver<()>) -> End {
        let mut stuck: Option<Stuck> = None;
        let mut outgoing_open = true;
        loop {
            let retry_at = stuck.as_ref().map(|s| s.next_try);
            tokio::select! {
                biased;
                _ = &mut *stopped => return End::Closed,
                ready = self.cpg.readable() => {
                    if let Err(e) = ready {
                        return End::Lost(format!("waiting on corosync's fd: {e}"));
                    }
                    match self.cpg.dispatch() {
                        Err(e) if e.is_try_again() => {}
                        Err(e) => return End::Lost(e.to_string()),
                        Ok(()) => {}
                    }
                    while let Ok(n) = self.notifications.try_recv() {
                        self.handle(n, &engine.incoming);
                    }
                }
                () = sleep_until(retry_at), if retry_at.is_some() => {
                    if let Some(s) = stuck.take() {
                        match self.send(s.message) {
                            Sent::Done => {}
                            Sent::Lost(why) => return End::Lost(why),
                            Sent::TryAgain(message) => {
                                stuck = self.still_stuck(message, s.give_up, s.pause);
                            }
                        }
                    }
                }
                next = engine.outgoing.recv(), if outgoing_open && stuck.is_none() => {
                    let Some(message) = next else {
                        outgoing_open = false;
                        if engine.incoming.is_closed() {
                            return End::Closed;
                        }
                        continue;
                    };
                    match self.send(message) {
                        Sent::Done => {}
                        Sent::Lost(why) => return End::Lost(why),
                        Sent::TryAgain(message) => {
                            let now = Instant::now();
                            stuck = self.still_stuck(
                                message,
                                now + TRY_AGAIN_BOUND,
                                Duration::from_millis(1),
                            );
                        }
                    }
                }
                () = engine.incoming.closed(), if !outgoing_open => return End::Closed,
            }
        }
    }

    /// Schedules another try of `message`, or drops it once `give_up` has passed.
    fn still_stuck(
        &self,
        message: LinkMessage,
        give_up: Instant,
        pause: Duration,
    ) -> Option<Stuck> {
        let Some((next_try, pause)) = backoff(Instant::now(), give_up, pause) else {
            let n = Counters::bump(&self.counters.send_gave_up);
            tracing::warn!(
                group = %self.group,
                to = %message.peer,
                dropped = n,
                "corosync stayed busy for {TRY_AGAIN_BOUND:?}; fence link message dropped"
            );
            return None;
        };
        Some(Stuck {
            message,
            give_up,
            next_try,
            pause,
        })
    }

    /// Multicasts one message.
    fn send(&self, message: LinkMessage) -> Sent {
        if message.payload.len() > MAX_LINK_PAYLOAD {
            Counters::bump(&self.counters.refused);
            tracing::warn!(
                group = %self.group,
                to = %message.peer,
                len = message.payload.len(),
                max = MAX_LINK_PAYLOAD,
                "fence link payload too large; refused"
            );
            return Sent::Done;
        }
        let head = header(message.peer);
        match self.cpg.mcast(&[&head, &message.payload]) {
            Ok(()) => {
                Counters::bump(&self.counters.sent);
                Sent::Done
            }
            Err(e) if e.is_try_again() => Sent::TryAgain(message),
            Err(e) if matches!(e.code(), None | Some(code::LIBRARY | code::BAD_HANDLE)) => {
                Sent::Lost(e.to_string())
            }
            Err(e) => {
                tracing::warn!(group = %self.group, to = %message.peer, error = %e,
                    "fence link message not sent");
                Sent::Done
            }
        }
    }

    /// Handles one notification of the CPG connection.
    fn handle(&mut self, n: Notification, incoming: &mpsc::Sender<LinkMessage>) {
        match n {
            Notification::GroupMessage { nodeid, pid, data } => match decode(&data) {
                Decoded::Malformed(why) => {
                    let count = Counters::bump(&self.counters.malformed);
                    tracing::warn!(
                        group = %self.group,
                        from = nodeid,
                        pid,
                        len = data.len(),
                        reason = why,
                        malformed = count,
                        "malformed message on the fence link's group; dropped"
                    );
                }
                Decoded::Message { to, .. } if to != self.local => {
                    Counters::bump(&self.counters.other_destination);
                }
                Decoded::Message { payload, .. } => {
                    let message = LinkMessage {
                        peer: NodeId::new(nodeid),
                        payload: payload.to_vec(),
                    };
                    self.deliver(message, incoming);
                }
            },
            Notification::GroupChange { members } => {
                let mut processes: Vec<(NodeId, u32)> = members
                    .iter()
                    .map(|&(n, pid)| (NodeId::new(n), pid))
                    .collect();
                processes.sort_unstable();
                self.processes.send_replace(processes);
                let mut nodes: Vec<NodeId> = members.iter().map(|&(n, _)| NodeId::new(n)).collect();
                nodes.sort_unstable();
                nodes.dedup();
                tracing::debug!(group = %self.group, members = ?nodes, "fence link group changed");
                self.members.send_replace(nodes);
            }
            other => tracing::trace!(notification = ?other, "corosync notification"),
        }
    }

    fn deliver(&mut self, message: LinkMessage, incoming: &mpsc::Sender<LinkMessage>) {
        match incoming.try_send(message) {
            Ok(()) => {
                Counters::bump(&self.counters.delivered);
                self.incoming_dropping = false;
            }
            Err(mpsc::error::TrySendError::Full(m)) => {
                let n = Counters::bump(&self.counters.incoming_full);
                if !self.incoming_dropping {
                    tracing::warn!(
                        group = %self.group,
                        from = %m.peer,
                        dropped = n,
                        "the fencer's incoming queue is full; fence link messages dropped"
                    );
                }
                self.incoming_dropping = true;
            }
            // The fencer no longer listens.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

/// The longest pause between two tries of a message corosync refused with `CS_ERR_TRY_AGAIN`.
const MAX_PAUSE: Duration = Duration::from_millis(100);

/// After a `CS_ERR_TRY_AGAIN` at `now`: when to try again (never after `give_up`) and the
/// pause after that one (doubling up to [`MAX_PAUSE`]); `None` once `give_up` has passed.
fn backoff(now: Instant, give_up: Instant, pause: Duration) -> Option<(Instant, Duration)> {
    if now >= give_up {
        return None;
    }
    Some(((now + pause).min(give_up), (pause * 2).min(MAX_PAUSE)))
}

/// What became of one send.
enum Sent {
    /// Multicast, or dropped for good (refused, or an error that retrying cannot fix).
    Done,
    /// Corosync is busy: try again later.
    TryAgain(LinkMessage),
    /// The connection broke.
    Lost(String),
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(to: u32, payload: &[u8]) -> Vec<u8> {
        let mut f = header(NodeId::new(to)).to_vec();
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn a_frame_round_trips() {
        let f = frame(7, b"hello");
        assert_eq!(
            decode(&f),
            Decoded::Message {
                to: NodeId::new(7),
                payload: b"hello"
            }
        );
        assert_eq!(
            decode(&frame(1, b"")),
            Decoded::Message {
                to: NodeId::new(1),
                payload: b""
            }
        );
    }

    #[test]
    fn malformed_frames_are_named() {
        assert_eq!(decode(b""), Decoded::Malformed("shorter than the header"));
        assert_eq!(
            decode(b"OCFL\x01\0\0"),
            Decoded::Malformed("shorter than the header")
        );
        let mut bad = frame(2, b"x");
        bad[0] = b'X';
        assert_eq!(decode(&bad), Decoded::Malformed("bad magic"));
        let mut bad = frame(2, b"x");
        bad[4] = 2;
        assert_eq!(decode(&bad), Decoded::Malformed("unknown version"));
        let big = frame(2, &vec![0; MAX_LINK_PAYLOAD + 1]);
        assert_eq!(
            decode(&big),
            Decoded::Malformed("payload over MAX_LINK_PAYLOAD")
        );
        let max = frame(2, &vec![0; MAX_LINK_PAYLOAD]);
        assert!(matches!(decode(&max), Decoded::Message { .. }));
    }

    #[tokio::test]
    async fn a_long_cluster_name_is_refused_before_connecting() {
        let err = cpg_link(&"c".repeat(MAX_GROUP_NAME)).await.unwrap_err();
        assert!(
            matches!(err, CpgLinkError::NameTooLong { len, max: MAX_GROUP_NAME, .. } if len == MAX_GROUP_NAME + GROUP_PREFIX.len()),
            "{err:?}"
        );
        assert!(err.to_string().contains("shorter cluster name"), "{err}");
    }

    #[test]
    fn try_again_backs_off_and_gives_up_at_the_bound() {
        let start = Instant::now();
        let give_up = start + TRY_AGAIN_BOUND;
        let (mut now, mut pause) = (start, Duration::from_millis(1));
        let mut tries = 0;
        while let Some((next, p)) = backoff(now, give_up, pause) {
            assert!(next > now && next <= give_up);
            assert!(p <= MAX_PAUSE && p >= pause);
            (now, pause) = (next, p);
            tries += 1;
        }
        assert_eq!(now, give_up, "the last try is at the bound");
        assert_eq!(pause, MAX_PAUSE);
        // 1, 2, 4, .., 64 ms, then 100 ms steps up to 5 s.
        assert!((50..=60).contains(&tries), "{tries} tries");
        assert!(backoff(give_up, give_up, pause).is_none());
    }

    proptest! {
        #[test]
        fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&data);
        }

        #[test]
        fn encode_then_decode(to in any::<u32>(), payload in proptest::collection::vec(any::<u8>(), 0..256)) {
            let f = frame(to, &payload);
            prop_assert_eq!(decode(&f), Decoded::Message { to: NodeId::new(to), payload: &payload });
        }
    }
}
