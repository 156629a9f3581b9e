//! The UDP driver: runs one protocol [`Node`] over a tokio UDP socket.
//!
//! Every packet is encoded and authenticated by [`Codec`]; received packets pass the MAC check
//! and the [`ReplayGuard`] before the node sees them. Malformed, forged and replayed packets
//! are dropped and counted in [`TransportStats`], never a panic.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ocf_core::NodeId;
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

use super::protocol::{Event, Node, Output};
use super::wire::{Codec, MAX_PACKET, ReplayGuard, WireError};

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

/// The UDP side of one node.
#[derive(Debug)]
pub struct UdpTransport {
    socket: UdpSocket,
    codec: Codec,
    guard: ReplayGuard,
    peers: HashMap<NodeId, SocketAddr>,
    seq: u64,
    stats: Arc<TransportStats>,
}

impl UdpTransport {
    /// Binds `local` and sends to `peers` (every configured node; the own entry is ignored).
    pub async fn bind(
        local: SocketAddr,
        peers: HashMap<NodeId, SocketAddr>,
        codec: Codec,
    ) -> std::io::Result<Self> {
        let socket = UdpSocket::bind(local).await?;
        Ok(Self {
            socket,
            codec,
            guard: ReplayGuard::default(),
            peers,
            seq: 0,
            stats: Arc::new(TransportStats::default()),
        })
    }

    /// The counters.
    pub fn stats(&self) -> Arc<TransportStats> {
        Arc::clone(&self.stats)
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Runs `node` until `stop` fires (or its sender is dropped), passing every event to
    /// `on_event` in order.
    pub async fn run(
        mut self,
        mut node: Node,
        mut on_event: impl FnMut(Event) + Send,
        mut stop: oneshot::Receiver<()>,
    ) {
        let start = Instant::now();
        let tick = Duration::from_millis(10);
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut buf = vec![0u8; MAX_PACKET + 1];
        let mut out = Vec::new();
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = interval.tick() => {
                    node.tick(now_ms(start), &mut out);
                }
                r = self.socket.recv_from(&mut buf) => {
                    match r {
                        Ok((len, _from)) => {
                            if let Some(env) = self.accept(&buf[..len]) {
                                node.handle(now_ms(start), env, &mut out);
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
                    Output::Event(e) => on_event(e),
                }
            }
        }
    }

    fn accept(&mut self, packet: &[u8]) -> Option<super::protocol::Envelope> {
        let count = |c: &AtomicU64| {
            c.fetch_add(1, Ordering::Relaxed);
        };
        match self.codec.decode(packet) {
            Ok((env, seq)) => {
                if !self.peers.contains_key(&env.from) {
                    count(&self.stats.unknown_sender);
                    return None;
                }
                if self.guard.check(env.from, env.inc, seq).is_err() {
                    count(&self.stats.replayed);
                    return None;
                }
                count(&self.stats.received);
                Some(env)
            }
            Err(WireError::Forged) => {
                count(&self.stats.forged);
                None
            }
            Err(e) => {
                tracing::debug!(error = %e, "dropped membership packet");
                count(&self.stats.malformed);
                None
            }
        }
    }

    async fn send(&mut self, to: NodeId, msg: &super::protocol::Envelope) {
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

fn now_ms(start: Instant) -> u64 {
    start.elapsed().as_millis() as u64
}
