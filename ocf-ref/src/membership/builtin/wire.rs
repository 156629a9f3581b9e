//! The packet format: a binary encoding of [`Envelope`], authenticated with HMAC-SHA256.
//!
//! ```text
//! "OCM1" | sender u32 | incarnation u64 | sequence u64 | payload ... | tag [32]
//! ```
//!
//! Integers are big-endian. The tag is HMAC-SHA256 under the cluster key over the cluster
//! name (length-prefixed) followed by every byte before the tag, so a packet of another
//! cluster or a forged one fails verification before any payload byte is parsed. The
//! sequence number is fresh per packet within one incarnation; [`ReplayGuard`] rejects a
//! repeat or an older incarnation. Packets are at most [`MAX_PACKET`] bytes; decoding never
//! panics and never allocates more than the packet's length allows.

use std::collections::HashMap;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use ocf_core::NodeId;
use ocf_membership::ViewId;
use sha2::Sha256;

use crate::membership::builtin::key::ClusterKey;
use crate::membership::protocol::message::{
    Body, CommittedView, Envelope, Proposal, ProposedMember, Update, ViewMember,
};

/// The largest packet sent or accepted, in bytes (fits a UDP datagram on any path).
pub const MAX_PACKET: usize = 65_000;
/// The most gossip records in one packet.
pub const MAX_GOSSIP: usize = 64;
const MAGIC: &[u8; 4] = b"OCM1";
const TAG_LEN: usize = 32;
const HEADER_LEN: usize = 4 + 4 + 8 + 8;

/// Why a packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Shorter than a header and tag, or longer than [`MAX_PACKET`].
    #[error("packet size out of bounds")]
    Size,
    /// Not our magic or version.
    #[error("not an ocf membership packet")]
    Magic,
    /// The tag does not verify: forged, corrupted, or another cluster or key.
    #[error("authentication failed (wrong cluster key or name?)")]
    Forged,
    /// Authenticated but not decodable (a bug or a newer peer).
    #[error("malformed payload")]
    Malformed,
    /// A sequence number already seen, or an older incarnation.
    #[error("replayed packet")]
    Replayed,
    /// Encoding would exceed [`MAX_PACKET`] (a view too large for one datagram).
    #[error("message too large for one packet")]
    TooLarge,
}

/// Authenticates packets of one cluster.
#[derive(Clone)]
pub struct Codec {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Codec(<keyed>)")
    }
}

impl Codec {
    /// A codec for `cluster` under `key`.
    pub fn new(cluster: &str, key: &ClusterKey) -> Self {
        // HMAC accepts keys of any length, so this cannot fail; fall back to an empty key
        // rather than panic if the library ever changes its mind.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.expose()).unwrap_or_else(|_| {
            <Hmac<Sha256> as hmac::digest::KeyInit>::new(
                &hmac::digest::Key::<Hmac<Sha256>>::default(),
            )
        });
        mac.update(&(cluster.len() as u32).to_be_bytes());
        mac.update(cluster.as_bytes());
        Self { mac }
    }

    /// Encodes and signs `env` with sequence number `seq`.
    pub fn encode(&self, env: &Envelope, seq: u64) -> Result<Vec<u8>, WireError> {
        let mut w = Vec::with_capacity(128);
        w.extend_from_slice(MAGIC);
        w.extend_from_slice(&env.from.get().to_be_bytes());
        w.extend_from_slice(&env.inc.to_be_bytes());
        w.extend_from_slice(&seq.to_be_bytes());
        encode_payload(env, &mut w)?;
        if w.len() + TAG_LEN > MAX_PACKET {
            return Err(WireError::TooLarge);
        }
        let mut mac = self.mac.clone();
        mac.update(&w);
        w.extend_from_slice(&mac.finalize().into_bytes());
        Ok(w)
    }

    /// Verifies and decodes a packet, returning the envelope and its sequence number.
    /// Replays are not checked here: pass the result through a [`ReplayGuard`].
    pub fn decode(&self, packet: &[u8]) -> Result<(Envelope, u64), WireError> {
        if packet.len() < HEADER_LEN + TAG_LEN || packet.len() > MAX_PACKET {
            return Err(WireError::Size);
        }
        if &packet[..4] != MAGIC {
            return Err(WireError::Magic);
        }
        let (signed, tag) = packet.split_at(packet.len() - TAG_LEN);
        let mut mac = self.mac.clone();
        mac.update(signed);
        mac.verify_slice(tag).map_err(|_| WireError::Forged)?;
        decode_signed(signed)
    }
}

/// The first byte of a message's body: which message it is. The numbers are the wire
/// format: never renumber or reuse one.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// [`Body::Ping`].
    Ping = 0,
    /// [`Body::Ack`].
    Ack = 1,
    /// [`Body::PingReq`].
    PingReq = 2,
    /// [`Body::RelayPing`].
    RelayPing = 3,
    /// [`Body::RelayAck`].
    RelayAck = 4,
    /// [`Body::IndirectAck`].
    IndirectAck = 5,
    /// [`Body::Notice`].
    Notice = 6,
    /// [`Body::Propose`].
    Propose = 7,
    /// [`Body::Accept`].
    Accept = 8,
    /// [`Body::Reject`].
    Reject = 9,
    /// [`Body::Commit`].
    Commit = 10,
    /// [`Body::ViewReq`].
    ViewReq = 11,
    /// [`Body::Nack`].
    Nack = 12,
    /// [`Body::LeaseReq`].
    LeaseReq = 13,
    /// [`Body::LeaseGrant`].
    LeaseGrant = 14,
    /// [`Body::App`].
    App = 15,
}

impl Tag {
    /// Every tag, in the order of its number.
    const ALL: [Tag; 16] = [
        Tag::Ping,
        Tag::Ack,
        Tag::PingReq,
        Tag::RelayPing,
        Tag::RelayAck,
        Tag::IndirectAck,
        Tag::Notice,
        Tag::Propose,
        Tag::Accept,
        Tag::Reject,
        Tag::Commit,
        Tag::ViewReq,
        Tag::Nack,
        Tag::LeaseReq,
        Tag::LeaseGrant,
        Tag::App,
    ];

    /// The tag of `body`.
    pub fn of(body: &Body) -> Self {
        match body {
            Body::Ping { .. } => Self::Ping,
            Body::Ack { .. } => Self::Ack,
            Body::PingReq { .. } => Self::PingReq,
            Body::RelayPing { .. } => Self::RelayPing,
            Body::RelayAck { .. } => Self::RelayAck,
            Body::IndirectAck { .. } => Self::IndirectAck,
            Body::Notice => Self::Notice,
            Body::Propose(_) => Self::Propose,
            Body::Accept { .. } => Self::Accept,
            Body::Reject { .. } => Self::Reject,
            Body::Commit(_) => Self::Commit,
            Body::ViewReq { .. } => Self::ViewReq,
            Body::Nack { .. } => Self::Nack,
            Body::LeaseReq { .. } => Self::LeaseReq,
            Body::LeaseGrant { .. } => Self::LeaseGrant,
            Body::App(_) => Self::App,
        }
    }
}

impl TryFrom<u8> for Tag {
    type Error = WireError;

    /// The tag numbered `byte`; [`WireError::Malformed`] for a number no message has.
    fn try_from(byte: u8) -> Result<Self, WireError> {
        Self::ALL
            .get(usize::from(byte))
            .copied()
            .ok_or(WireError::Malformed)
    }
}

/// Parses the signed part of a packet (header and payload). Public so the fuzz target can
/// reach the parser without forging tags; it never panics on any input.
pub fn decode_signed(signed: &[u8]) -> Result<(Envelope, u64), WireError> {
    let mut r = Reader(signed);
    if r.take(4)? != MAGIC {
        return Err(WireError::Magic);
    }
    let from = NodeId::new(r.u32()?);
    let inc = r.u64()?;
    let seq = r.u64()?;
    let refute = r.u32()?;
    let view = r.opt_view_id()?;
    let gossip = read_gossip(&mut r)?;
    let body = read_body(&mut r)?;
    if !r.0.is_empty() {
        return Err(WireError::Malformed);
    }
    Ok((
        Envelope {
            from,
            inc,
            refute,
            view,
            gossip,
            body,
        },
        seq,
    ))
}

fn read_gossip(r: &mut Reader<'_>) -> Result<Vec<Update>, WireError> {
    let n = r.u8()? as usize;
    if n > MAX_GOSSIP {
        return Err(WireError::Malformed);
    }
    let mut gossip = Vec::with_capacity(n);
    for _ in 0..n {
        gossip.push(Update {
            node: NodeId::new(r.u32()?),
            inc: r.u64()?,
            refute: r.u32()?,
            dead: r.bool()?,
        });
    }
    Ok(gossip)
}

fn read_body(r: &mut Reader<'_>) -> Result<Body, WireError> {
    Ok(match Tag::try_from(r.u8()?)? {
        Tag::Ping => Body::Ping { probe: r.u32()? },
        Tag::Ack => Body::Ack { probe: r.u32()? },
        Tag::PingReq => Body::PingReq {
            probe: r.u32()?,
            target: NodeId::new(r.u32()?),
        },
        Tag::RelayPing => Body::RelayPing {
            probe: r.u32()?,
            origin: NodeId::new(r.u32()?),
        },
        Tag::RelayAck => Body::RelayAck {
            probe: r.u32()?,
            origin: NodeId::new(r.u32()?),
        },
        Tag::IndirectAck => Body::IndirectAck {
            probe: r.u32()?,
            target: NodeId::new(r.u32()?),
        },
        Tag::Notice => Body::Notice,
        Tag::Propose => Body::Propose(Arc::new(read_proposal(r)?)),
        Tag::Accept => Body::Accept {
            id: r.view_id()?,
            born_on: r.opt_view_id()?,
        },
        Tag::Reject => Body::Reject {
            id: r.view_id()?,
            highest: r.view_id()?,
        },
        Tag::Commit => Body::Commit(Arc::new(read_commit(r)?)),
        Tag::ViewReq => Body::ViewReq { id: r.view_id()? },
        Tag::Nack => Body::Nack {
            probe: r.u32()?,
            target: NodeId::new(r.u32()?),
        },
        Tag::LeaseReq => Body::LeaseReq { seq: r.u32()? },
        Tag::LeaseGrant => Body::LeaseGrant { seq: r.u32()? },
        Tag::App => {
            let n = r.u32()? as usize;
            Body::App(Arc::new(r.take(n)?.to_vec()))
        }
    })
}

fn read_proposal(r: &mut Reader<'_>) -> Result<Proposal, WireError> {
    let id = r.view_id()?;
    let n = r.count(12)?;
    let mut members = Vec::with_capacity(n);
    for _ in 0..n {
        members.push(ProposedMember {
            id: NodeId::new(r.u32()?),
            inc: r.u64()?,
        });
    }
    if !members.windows(2).all(|w| w[0].id < w[1].id) {
        return Err(WireError::Malformed);
    }
    Ok(Proposal { id, members })
}

fn read_commit(r: &mut Reader<'_>) -> Result<CommittedView, WireError> {
    let id = r.view_id()?;
    let n = r.count(32)?;
    let mut members = Vec::with_capacity(n);
    for _ in 0..n {
        members.push(ViewMember {
            id: NodeId::new(r.u32()?),
            inc: r.u64()?,
            born_on: r.view_id()?,
        });
    }
    if !members.windows(2).all(|w| w[0].id < w[1].id) {
        return Err(WireError::Malformed);
    }
    Ok(CommittedView { id, members })
}

fn put_view_id(w: &mut Vec<u8>, id: ViewId) {
    w.extend_from_slice(&id.instance.to_be_bytes());
    w.extend_from_slice(&id.coordinator.get().to_be_bytes());
    w.extend_from_slice(&id.epoch.to_be_bytes());
}

fn put_opt_view_id(w: &mut Vec<u8>, id: Option<ViewId>) {
    match id {
        None => w.push(0),
        Some(id) => {
            w.push(1);
            put_view_id(w, id);
        }
    }
}

fn put_count(w: &mut Vec<u8>, n: usize) -> Result<(), WireError> {
    let n = u32::try_from(n).map_err(|_| WireError::TooLarge)?;
    w.extend_from_slice(&n.to_be_bytes());
    Ok(())
}

fn encode_payload(env: &Envelope, w: &mut Vec<u8>) -> Result<(), WireError> {
    w.extend_from_slice(&env.refute.to_be_bytes());
    put_opt_view_id(w, env.view);
    let gossip = &env.gossip[..env.gossip.len().min(MAX_GOSSIP)];
    w.push(gossip.len() as u8);
    for u in gossip {
        w.extend_from_slice(&u.node.get().to_be_bytes());
        w.extend_from_slice(&u.inc.to_be_bytes());
        w.extend_from_slice(&u.refute.to_be_bytes());
        w.push(u8::from(u.dead));
    }
    let pair = |w: &mut Vec<u8>, a: u32, b: u32| {
        w.extend_from_slice(&a.to_be_bytes());
        w.extend_from_slice(&b.to_be_bytes());
    };
    w.push(Tag::of(&env.body) as u8);
    match &env.body {
        Body::Ping { probe } | Body::Ack { probe } => w.extend_from_slice(&probe.to_be_bytes()),
        Body::PingReq { probe, target }
        | Body::IndirectAck { probe, target }
        | Body::Nack { probe, target } => pair(w, *probe, target.get()),
        Body::RelayPing { probe, origin } | Body::RelayAck { probe, origin } => {
            pair(w, *probe, origin.get());
        }
        Body::Notice => {}
        Body::Propose(p) => {
            put_view_id(w, p.id);
            put_count(w, p.members.len())?;
            for m in &p.members {
                w.extend_from_slice(&m.id.get().to_be_bytes());
                w.extend_from_slice(&m.inc.to_be_bytes());
            }
        }
        Body::Accept { id, born_on } => {
            put_view_id(w, *id);
            put_opt_view_id(w, *born_on);
        }
        Body::Reject { id, highest } => {
            put_view_id(w, *id);
            put_view_id(w, *highest);
        }
        Body::Commit(v) => {
            put_view_id(w, v.id);
            put_count(w, v.members.len())?;
            for m in &v.members {
                w.extend_from_slice(&m.id.get().to_be_bytes());
                w.extend_from_slice(&m.inc.to_be_bytes());
                put_view_id(w, m.born_on);
            }
        }
        Body::ViewReq { id } => put_view_id(w, *id),
        Body::LeaseReq { seq } | Body::LeaseGrant { seq } => {
            w.extend_from_slice(&seq.to_be_bytes());
        }
        Body::App(bytes) => {
            let n = u32::try_from(bytes.len()).map_err(|_| WireError::TooLarge)?;
            w.extend_from_slice(&n.to_be_bytes());
            w.extend_from_slice(bytes);
        }
    }
    Ok(())
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.0.len() < n {
            return Err(WireError::Malformed);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        self.take(N)?.try_into().map_err(|_| WireError::Malformed)
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }
    fn bool(&mut self) -> Result<bool, WireError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(WireError::Malformed),
        }
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    /// A element count, refused when the remaining bytes cannot hold that many elements of
    /// `each` bytes: no allocation larger than the packet.
    fn count(&mut self, each: usize) -> Result<usize, WireError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(each) > self.0.len() {
            return Err(WireError::Malformed);
        }
        Ok(n)
    }
    fn view_id(&mut self) -> Result<ViewId, WireError> {
        Ok(ViewId::new(
            self.u64()?,
            NodeId::new(self.u32()?),
            self.u64()?,
        ))
    }
    fn opt_view_id(&mut self) -> Result<Option<ViewId>, WireError> {
        if self.bool()? {
            Ok(Some(self.view_id()?))
        } else {
            Ok(None)
        }
    }
}

/// The replay window per sender: the highest incarnation seen, and the sequence numbers
/// seen within the last 64 of the highest.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    senders: HashMap<NodeId, Window>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    inc: u64,
    top: u64,
    /// Bit `i` set: `top - i` was seen.
    seen: u64,
}

impl ReplayGuard {
    /// Records `(from, inc, seq)` and returns `Ok` the first time; a repeat, a sequence number
    /// more than 64 behind the newest, or an incarnation older than the newest is refused.
    pub fn check(&mut self, from: NodeId, inc: u64, seq: u64) -> Result<(), WireError> {
        let w = self.senders.entry(from).or_insert(Window {
            inc,
            top: seq,
            seen: 0,
        });
        if inc < w.inc {
            return Err(WireError::Replayed);
        }
        if inc > w.inc || w.seen == 0 {
            *w = Window {
                inc,
                top: seq,
                seen: 1,
            };
            return Ok(());
        }
        if seq > w.top {
            let shift = seq - w.top;
            w.seen = if shift >= 64 { 0 } else { w.seen << shift };
            w.seen |= 1;
            w.top = seq;
            return Ok(());
        }
        let back = w.top - seq;
        if back >= 64 || w.seen & (1 << back) != 0 {
            return Err(WireError::Replayed);
        }
        w.seen |= 1 << back;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> Codec {
        Codec::new("c1", &ClusterKey::from_bytes(vec![7u8; 32]))
    }

    fn vid(i: u64) -> ViewId {
        ViewId::new(i, NodeId::new(1), 99)
    }

    pub(crate) fn samples() -> Vec<Envelope> {
        let bodies = vec![
            Body::Ping { probe: 1 },
            Body::Ack { probe: 2 },
            Body::PingReq {
                probe: 3,
                target: NodeId::new(4),
            },
            Body::RelayPing {
                probe: 3,
                origin: NodeId::new(1),
            },
            Body::RelayAck {
                probe: 3,
                origin: NodeId::new(1),
            },
            Body::IndirectAck {
                probe: 3,
                target: NodeId::new(4),
            },
            Body::Notice,
            Body::Propose(Arc::new(Proposal {
                id: vid(5),
                members: vec![
                    ProposedMember {
                        id: NodeId::new(1),
                        inc: 10,
                    },
                    ProposedMember {
                        id: NodeId::new(2),
                        inc: 20,
                    },
                ],
            })),
            Body::Accept {
                id: vid(5),
                born_on: Some(vid(2)),
            },
            Body::Reject {
                id: vid(5),
                highest: vid(6),
            },
            Body::Commit(Arc::new(CommittedView {
                id: vid(5),
                members: vec![ViewMember {
                    id: NodeId::new(1),
                    inc: 10,
                    born_on: vid(1),
                }],
            })),
            Body::ViewReq { id: vid(7) },
            Body::Nack {
                probe: 8,
                target: NodeId::new(4),
            },
            Body::LeaseReq { seq: 9 },
            Body::LeaseGrant { seq: 10 },
            Body::App(Arc::new(b"fence".to_vec())),
        ];
        bodies
            .into_iter()
            .map(|body| Envelope {
                from: NodeId::new(1),
                inc: 10,
                refute: 2,
                view: Some(vid(4)),
                gossip: vec![Update {
                    node: NodeId::new(3),
                    inc: 30,
                    refute: 1,
                    dead: true,
                }],
                body,
            })
            .collect()
    }

    #[test]
    fn every_tag_reads_back_as_its_number() {
        for (i, tag) in Tag::ALL.iter().enumerate() {
            assert_eq!(*tag as usize, i);
            assert_eq!(Tag::try_from(*tag as u8), Ok(*tag));
        }
        assert_eq!(Tag::try_from(16), Err(WireError::Malformed));
        // Every sample encodes its body's tag right after the gossip.
        for env in samples() {
            assert_eq!(
                Tag::try_from(Tag::of(&env.body) as u8),
                Ok(Tag::of(&env.body))
            );
        }
    }

    #[test]
    fn every_body_round_trips() {
        let c = codec();
        for (i, env) in samples().into_iter().enumerate() {
            let bytes = c.encode(&env, i as u64).unwrap();
            assert_eq!(c.decode(&bytes).unwrap(), (env, i as u64));
        }
    }

    #[test]
    fn forged_truncated_and_foreign_packets_are_refused() {
        let c = codec();
        let bytes = c.encode(&samples()[0], 1).unwrap();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(c.decode(&b).is_err(), "flipping byte {i} went unnoticed");
        }
        assert_eq!(c.decode(&bytes[..bytes.len() - 1]), Err(WireError::Forged));
        let other = Codec::new("c2", &ClusterKey::from_bytes(vec![7u8; 32]));
        assert_eq!(other.decode(&bytes), Err(WireError::Forged));
        assert_eq!(c.decode(&[0u8; 10]), Err(WireError::Size));
    }

    #[test]
    fn replays_are_refused() {
        let mut g = ReplayGuard::default();
        let n = NodeId::new(1);
        assert!(g.check(n, 5, 10).is_ok());
        assert_eq!(g.check(n, 5, 10), Err(WireError::Replayed));
        assert!(g.check(n, 5, 8).is_ok());
        assert_eq!(g.check(n, 5, 8), Err(WireError::Replayed));
        assert!(g.check(n, 5, 200).is_ok());
        assert_eq!(g.check(n, 5, 100), Err(WireError::Replayed));
        assert_eq!(g.check(n, 4, 1000), Err(WireError::Replayed));
        assert!(g.check(n, 6, 0).is_ok());
        assert_eq!(g.check(n, 5, 1000), Err(WireError::Replayed));
    }
}
