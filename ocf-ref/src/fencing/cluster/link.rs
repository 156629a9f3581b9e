//! The link between node daemons that the cluster fencer talks over.
//!
//! The fencer's protocol needs only best-effort datagrams between the daemons of one cluster:
//! it numbers, acknowledges and re-sends its own messages, so a link may lose, repeat or
//! reorder them. What a link must promise is **authenticity**: a payload comes from the
//! node it names, of this cluster. Each membership engine gives one:
//! - the built-in engine carries payloads over its own UDP transport, under the cluster key's
//!   HMAC with replay protection ([`crate::membership::builtin`]);
//! - over Corosync, a CPG group carries them (Corosync authenticates and orders them);
//! - a test or the simulator wires the ends together directly.

use ocf_core::NodeId;
use tokio::sync::mpsc;

/// The largest payload any link must carry, in bytes. The fencer splits what it sends so
/// that every message fits (a record with a thousand requesters is sent as deltas).
pub const MAX_LINK_PAYLOAD: usize = 60_000;

/// How many messages may wait in either direction before a link drops new ones (the
/// protocol re-sends what matters).
pub const LINK_QUEUE: usize = 4096;

/// One message on a link: the peer (the destination when sending, the sender when
/// receiving) and the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkMessage {
    /// The other node.
    pub peer: NodeId,
    /// The bytes, at most [`MAX_LINK_PAYLOAD`].
    pub payload: Vec<u8>,
}

/// The fencer's ends of a link: what it sends, and what peers sent it.
///
/// The engine holds the other ends: it takes from `outgoing`'s receiver and sends over its
/// transport, and feeds what it receives into `incoming`'s sender. When the engine stops,
/// `incoming` ends (`recv` answers `None`).
#[derive(Debug)]
pub struct LinkEnds {
    /// Messages to send (`peer` is the destination). A full queue drops the message.
    pub outgoing: mpsc::Sender<LinkMessage>,
    /// Messages received (`peer` is the authenticated sender).
    pub incoming: mpsc::Receiver<LinkMessage>,
}

/// The engine's side of a link, paired with [`LinkEnds`].
#[derive(Debug)]
pub struct EngineEnds {
    /// What the fencer wants sent.
    pub outgoing: mpsc::Receiver<LinkMessage>,
    /// Where received payloads go.
    pub incoming: mpsc::Sender<LinkMessage>,
}

/// A new link: the fencer's ends and the engine's.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use ocf_core::NodeId;
/// use ocf_ref::fencing::cluster::link::{pair, LinkMessage};
/// let (mut fencer, mut engine) = pair();
/// fencer.outgoing.try_send(LinkMessage { peer: NodeId::new(2), payload: b"hi".to_vec() }).unwrap();
/// assert_eq!(engine.outgoing.recv().await.unwrap().peer, NodeId::new(2));
/// engine.incoming.try_send(LinkMessage { peer: NodeId::new(2), payload: b"yo".to_vec() }).unwrap();
/// assert_eq!(fencer.incoming.recv().await.unwrap().payload, b"yo");
/// # });
/// ```
pub fn pair() -> (LinkEnds, EngineEnds) {
    let (out_tx, out_rx) = mpsc::channel(LINK_QUEUE);
    let (in_tx, in_rx) = mpsc::channel(LINK_QUEUE);
    (
        LinkEnds {
            outgoing: out_tx,
            incoming: in_rx,
        },
        EngineEnds {
            outgoing: out_rx,
            incoming: in_tx,
        },
    )
}
