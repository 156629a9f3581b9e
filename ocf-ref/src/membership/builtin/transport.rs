//! The UDP driver: runs one protocol [`Node`] over a tokio UDP socket.
//!
//! Every packet is encoded and authenticated by [`Codec`]; received packets pass the MAC check
//! and the [`ReplayGuard`] before the node sees them. Malformed, forged, replayed packets and
//! packets from unknown senders are dropped and counted by reason in [`TransportStats`], never
//! a panic. The first rejection of each reason from each peer address is logged at warn level,
//! then at most one a minute per reason and peer ([`REJECT_LOG_INTERVAL`]), with the number
//! left unlogged in between, so a flood of garbage cannot flood the log.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ocf_core::NodeId;
use serde::{Deserialize, Serialize};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

use crate::fencing::cluster::link::{EngineEnds, LinkMessage};
use crate::membership::builtin::wire::{Codec, MAX_PACKET, ReplayGuard, WireError};
use crate::membership::protocol::message::Body;
use crate::membership::protocol::{Event, Node, Output};

/// Counters of the transport, readable while it runs.
#[derive(Debug, Default)]
pub struct TransportStats {
    /// Packets sent.
    pub sent: AtomicU64,
    /// Packets accepted and handed to the protocol.
    pub received: AtomicU64,
    /// Packets dropped as malformed (size, magic, payload).
    pub malformed: AtomicU64,
    /// Packets dropped because authentication failed.
    pub forged: AtomicU64,
    /// Packets dropped as replays.
    pub replayed: AtomicU64,
    /// Packets dropped because their sender is not a configured node.
    pub unknown_sender: AtomicU64,
    /// Messages not sent because they did not fit one packet.
    pub too_large: AtomicU64,
}

impl TransportStats {
    /// The counters now, as plain numbers (what the daemon's `stats` request reports).
    pub fn snapshot(&self) -> PacketCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PacketCounts {
            sent: get(&self.sent),
            received: get(&self.received),
            too_large: get(&self.too_large),
            rejected: RejectedCounts {
                malformed: get(&self.malformed),
                forged: get(&self.forged),
                replayed: get(&self.replayed),
                unknown_sender: get(&self.unknown_sender),
            },
        }
    }
}

/// A snapshot of [`TransportStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PacketCounts {
    /// Packets sent.
    pub sent: u64,
    /// Packets accepted and handed to the protocol.
    pub received: u64,
    /// Messages not sent because they did not fit one packet.
    pub too_large: u64,
    /// Packets dropped, by reason.
    pub rejected: RejectedCounts,
}

/// Received packets dropped, by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RejectedCounts {
    /// Too short, too long, or not an ocf membership packet (magic or version), or
    /// authenticated but undecodable.
    pub malformed: u64,
    /// Authentication failed: forged, corrupted, or sent under another cluster key or another
    /// cluster name (the MAC covers both, so these cannot be told apart).
    pub forged: u64,
    /// A sequence number already seen, or an older incarnation.
    pub replayed: u64,
    /// Authenticated, but from a node id that is not in the config's `[[nodes]]`.
    pub unknown_sender: u64,
}

impl RejectedCounts {
    /// All rejected packets.
    pub fn total(&self) -> u64 {
        self.malformed + self.forged + self.replayed + self.unknown_sender
    }
}

/// Why a received packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Rejection {
    Malformed,
    Forged,
    Replayed,
    UnknownSender,
}

impl Rejection {
    fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Forged => "forged",
            Self::Replayed => "replayed",
            Self::UnknownSender => "unknown_sender",
        }
    }
}

/// The shortest interval between two warnings of one rejection reason from one peer address.
pub const REJECT_LOG_INTERVAL: Duration = Duration::from_secs(60);
/// How many (peer, reason) pairs the rate limiter remembers; spoofed source addresses cannot
/// grow it past this.
const REJECT_LOG_PEERS: usize = 1024;

/// When each (peer, reason) was last logged, and how many went unlogged since.
#[derive(Debug, Default)]
struct RejectLog {
    last: HashMap<(SocketAddr, Rejection), (Instant, u64)>,
}

impl RejectLog {
    /// `Some(suppressed since the last warning)` when this rejection should be logged now.
    fn should_log(&mut self, from: SocketAddr, why: Rejection, now: Instant) -> Option<u64> {
        if self.last.len() >= REJECT_LOG_PEERS && !self.last.contains_key(&(from, why)) {
            self.last
                .retain(|_, (at, _)| now.duration_since(*at) < REJECT_LOG_INTERVAL);
            if self.last.len() >= REJECT_LOG_PEERS {
                return None;
            }
        }
        match self.last.entry((from, why)) {
            Entry::Vacant(v) => {
                v.insert((now, 0));
                Some(0)
            }
            Entry::Occupied(mut o) => {
                let (at, suppressed) = o.get_mut();
                if now.duration_since(*at) >= REJECT_LOG_INTERVAL {
                    let n = *suppressed;
                    *at = now;
                    *suppressed = 0;
                    Some(n)
                } else {
                    *suppressed += 1;
                    None
                }
            }
        }
    }
}

/// What the transport tells its owner as the node runs.
#[derive(Debug)]
pub enum Report {
    /// The core emitted an event; the stamps are microseconds since the Unix epoch.
    Event {
        /// The event.
        event: Event,
        /// When it took effect.
        at_us: u64,
        /// For an install: when the node stopped acting on its previous view.
        prior_primary_until_us: Option<u64>,
    },
    /// The node's primacy changed deadline.
    Primacy(Primacy),
}

/// Until when a node is primary, as its transport reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Primacy {
    /// Not primary.
    Not,
    /// Primary until this instant unless another grant arrives.
    Until(Instant),
    /// Primary with no deadline: its own votes are a majority.
    Unbounded,
}

/// The UDP side of one node.
#[derive(Debug)]
pub struct UdpTransport {
    socket: UdpSocket,
    codec: Codec,
    guard: ReplayGuard,
    peers: HashMap<NodeId, SocketAddr>,
    seq: u64,
    stats: Arc<TransportStats>,
    reject_log: RejectLog,
    app: Option<EngineEnds>,
}

impl UdpTransport {
    /// Binds `local` and sends to `peers` (every configured node; the own entry is ignored).
    pub async fn bind(
        local: SocketAddr,
        peers: HashMap<NodeId, SocketAddr>,
        codec: Codec,
    ) -> std::io::Result<Self> {
        let socket = UdpSocket::bind(local).await?;
        enlarge_receive_buffer(&socket);
        Ok(Self {
            socket,
            codec,
            guard: ReplayGuard::default(),
            peers,
            seq: 0,
            stats: Arc::new(TransportStats::default()),
            reject_log: RejectLog::default(),
            app: None,
        })
    }

    /// Carries a service's link (the cluster fencer's) over this transport: payloads from
    /// `ends.outgoing` go to their peer as authenticated [`Body::App`] packets, and every such
    /// packet received goes to `ends.incoming` (dropped when that queue is full: the
    /// service re-sends).
    #[must_use]
    pub fn with_link(mut self, ends: EngineEnds) -> Self {
        self.app = Some(ends);
        self
    }

    /// The counters.
    pub fn stats(&self) -> Arc<TransportStats> {
        Arc::clone(&self.stats)
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Runs `node` until `stop` fires (or its sender is dropped), passing every event and
    /// every change of the primacy deadline to `on_report` in order.
    pub async fn run(
        mut self,
        mut node: Node,
        mut on_report: impl FnMut(Report) + Send,
        mut stop: oneshot::Receiver<()>,
    ) {
        // The node's millisecond clock starts on a whole wall-clock millisecond, so the
        // stamps of every node on one machine quantise alike: two instants in different
        // milliseconds keep their order across processes, whichever node stamped them.
        let wall_now_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let into_ms = wall_now_us % 1000;
        let now = Instant::now();
        let start = now
            .checked_sub(Duration::from_micros(into_ms))
            .unwrap_or(now);
        let start_wall_us = wall_now_us - into_ms;
        let wall_us = |node_ms: u64| start_wall_us + node_ms * 1000;
        let mut buf = vec![0u8; MAX_PACKET + 1];
        let mut out = Vec::new();
        let mut deadline = Primacy::Not;
        let (mut app_out, app_in) = match self.app.take() {
            Some(e) => (Some(e.outgoing), Some(e.incoming)),
            None => (None, None),
        };
        loop {
            // Sleep until the node next needs time (its tick cadence or its lease's end), at
            // most MAX_SLEEP; a packet wakes it sooner.
            let wake_ms = node
                .next_deadline()
                .unwrap_or(0)
                .min(now_ms(start).saturating_add(MAX_SLEEP_MS));
            let wake = start + Duration::from_millis(wake_ms);
            tokio::select! {
                _ = &mut stop => return,
                Some(m) = recv_app(&mut app_out) => {
                    let env = crate::membership::protocol::Envelope {
                        from: node.id(),
                        inc: node.incarnation(),
                        refute: 0,
                        view: None,
                        gossip: Vec::new(),
                        body: Body::App(Arc::new(m.payload)),
                    };
                    self.send(m.peer, &env).await;
                }
                () = tokio::time::sleep_until(wake.into()) => {
                    node.tick(now_ms(start), &mut out);
                }
                r = self.socket.recv_from(&mut buf) => {
                    match r {
                        Ok((len, from)) => {
                            match self.accept(&buf[..len], from) {
                                Some(crate::membership::protocol::Envelope { from, body: Body::App(payload), .. }) => {
                                    if let Some(tx) = &app_in {
                                        let payload = Arc::unwrap_or_clone(payload);
                                        // A full queue drops it; the service re-sends.
                                        let _ = tx.try_send(LinkMessage { peer: from, payload });
                                    }
                                }
                                Some(env) => node.handle(now_ms(start), env, &mut out),
                                None => {}
                            }
                        }
                        Err(e) => {
                            // ICMP errors of earlier sends surface here on Linux; not fatal.
                            tracing::debug!(error = %e, "membership socket receive error");
                        }
                    }
                }
            }
            for o in out.drain(..) {
                match o {
                    Output::Send { to, msg } => self.send(to, &msg).await,
                    Output::Event(e) => {
                        let at_us = wall_us(e.at);
                        let prior_primary_until_us = e.prior_primary_until.map(wall_us);
                        on_report(Report::Event {
                            event: e,
                            at_us,
                            prior_primary_until_us,
                        });
                    }
                }
            }
            let now = match node.primary_deadline() {
                None => Primacy::Not,
                Some(u64::MAX) => Primacy::Unbounded,
                Some(ms) => Primacy::Until(start + Duration::from_millis(ms)),
            };
            if now != deadline {
                deadline = now;
                on_report(Report::Primacy(now));
            }
        }
    }

    fn accept(
        &mut self,
        packet: &[u8],
        from: SocketAddr,
    ) -> Option<crate::membership::protocol::Envelope> {
        match self.codec.decode(packet) {
            Ok((env, seq)) => {
                if !self.peers.contains_key(&env.from) {
                    self.reject(from, Rejection::UnknownSender, &|| {
                        format!("sender node {} is not in [[nodes]]", env.from)
                    });
                    return None;
                }
                if self.guard.check(env.from, env.inc, seq).is_err() {
                    self.reject(from, Rejection::Replayed, &|| {
                        format!(
                            "replay of node {} (incarnation {}, seq {seq})",
                            env.from, env.inc
                        )
                    });
                    return None;
                }
                self.stats.received.fetch_add(1, Ordering::Relaxed);
                Some(env)
            }
            Err(WireError::Forged) => {
                self.reject(from, Rejection::Forged, &|| {
                    "authentication failed: another cluster key or cluster name, or forged"
                        .to_owned()
                });
                None
            }
            Err(e) => {
                self.reject(from, Rejection::Malformed, &|| e.to_string());
                None
            }
        }
    }

    /// Counts a dropped packet and warns about it unless this peer's rejections of this kind
    /// were logged less than [`REJECT_LOG_INTERVAL`] ago.
    fn reject(&mut self, from: SocketAddr, why: Rejection, detail: &dyn Fn() -> String) {
        let counter = match why {
            Rejection::Malformed => &self.stats.malformed,
            Rejection::Forged => &self.stats.forged,
            Rejection::Replayed => &self.stats.replayed,
            Rejection::UnknownSender => &self.stats.unknown_sender,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(suppressed) = self.reject_log.should_log(from, why, Instant::now()) {
            tracing::warn!(
                peer = %from,
                reason = why.as_str(),
                unlogged_since_last = suppressed,
                "dropped membership packet: {}",
                detail()
            );
        }
    }

    async fn send(&mut self, to: NodeId, msg: &crate::membership::protocol::Envelope) {
        let Some(&addr) = self.peers.get(&to) else {
            return;
        };
        self.seq += 1;
        match self.codec.encode(msg, self.seq) {
            Ok(bytes) => {
                if let Err(e) = self.socket.send_to(&bytes, addr).await {
                    tracing::debug!(node = %to, %addr, error = %e, "membership send failed");
                } else {
                    self.stats.sent.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => {
                tracing::warn!(node = %to, error = %e, "membership message not sent");
                self.stats.too_large.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The receive buffer asked for the node's socket: a burst of fencing requests (a thousand
/// clients asking at once) or a view of many members must not overflow the kernel's default
/// (about 208 KiB), or heartbeats are lost with them.
pub const RECEIVE_BUFFER: usize = 4 << 20;

/// Asks for [`RECEIVE_BUFFER`]: beyond `net.core.rmem_max` when the daemon may (root), else as
/// much as the system allows. Never fatal: a smaller buffer only costs re-sends.
fn enlarge_receive_buffer(socket: &UdpSocket) {
    use nix::sys::socket::{setsockopt, sockopt};
    if setsockopt(socket, sockopt::RcvBufForce, &RECEIVE_BUFFER).is_err() {
        if let Err(e) = setsockopt(socket, sockopt::RcvBuf, &RECEIVE_BUFFER) {
            tracing::debug!(error = %e, "cannot enlarge the membership socket's receive buffer");
        }
    }
}

/// The next payload a service wants sent; pending for ever when there is no service or it
/// has gone.
async fn recv_app(
    rx: &mut Option<tokio::sync::mpsc::Receiver<LinkMessage>>,
) -> Option<LinkMessage> {
    match rx {
        Some(r) => {
            if let Some(m) = r.recv().await {
                Some(m)
            } else {
                *rx = None;
                std::future::pending().await
            }
        }
        None => std::future::pending().await,
    }
}

/// The longest the driver sleeps between two ticks, whatever the node's next deadline.
const MAX_SLEEP_MS: u64 = 50;

fn now_ms(start: Instant) -> u64 {
    start.elapsed().as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_socket_gets_the_large_receive_buffer_the_system_allows() {
        use nix::sys::socket::{getsockopt, sockopt};
        let key = crate::membership::builtin::key::ClusterKey::random();
        let t = UdpTransport::bind(
            "127.0.0.1:0".parse().unwrap(),
            HashMap::new(),
            Codec::new("c", &key),
        )
        .await
        .unwrap();
        let got = getsockopt(&t.socket, sockopt::RcvBuf).unwrap();
        let max: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        // Linux reports twice what was set; root may go beyond rmem_max.
        let floor = if nix::unistd::geteuid().is_root() {
            RECEIVE_BUFFER
        } else {
            RECEIVE_BUFFER.min(max)
        };
        assert!(got >= floor, "receive buffer {got} < {floor}");
    }

    #[test]
    fn rejections_are_logged_once_per_minute_per_peer_and_reason() {
        let mut log = RejectLog::default();
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let t0 = Instant::now();
        assert_eq!(log.should_log(a, Rejection::Forged, t0), Some(0));
        assert_eq!(log.should_log(a, Rejection::Forged, t0), None);
        assert_eq!(log.should_log(a, Rejection::Forged, t0), None);
        assert_eq!(log.should_log(a, Rejection::Malformed, t0), Some(0));
        assert_eq!(log.should_log(b, Rejection::Forged, t0), Some(0));
        let later = t0 + REJECT_LOG_INTERVAL;
        assert_eq!(log.should_log(a, Rejection::Forged, later), Some(2));
        assert_eq!(log.should_log(a, Rejection::Forged, later), None);
    }

    #[test]
    fn spoofed_addresses_cannot_grow_the_log_past_its_bound() {
        let mut log = RejectLog::default();
        let t0 = Instant::now();
        for port in 0..5000u16 {
            let from = SocketAddr::from(([10, 0, 0, 1], port));
            let _ = log.should_log(from, Rejection::Forged, t0);
        }
        assert_eq!(log.last.len(), REJECT_LOG_PEERS);
        let from = SocketAddr::from(([10, 0, 0, 2], 1));
        let later = t0 + REJECT_LOG_INTERVAL;
        assert_eq!(log.should_log(from, Rejection::Forged, later), Some(0));
        assert_eq!(log.last.len(), 1);
    }
}
