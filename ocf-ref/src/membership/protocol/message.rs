//! The protocol's messages: what one node says to another.
//!
//! Every message is an [`Envelope`]: the sender's identity and liveness record, the id of the
//! view it has installed (so peers notice they are behind), a few piggybacked [`Update`]s
//! (gossip), and one [`Body`].

use std::sync::Arc;

use ocf_core::NodeId;
use ocf_membership::ViewId;

/// A liveness record about one node, spread by gossip.
///
/// Records order by `(inc, refute, dead)`: a newer incarnation beats everything older, a node
/// refutes a death or suspicion by raising `refute`, and at equal `(inc, refute)` death wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Update {
    /// The node the record is about.
    pub node: NodeId,
    /// Its process incarnation.
    pub inc: u64,
    /// Its refutation counter within that incarnation.
    pub refute: u32,
    /// True: declared dead; false: alive.
    pub dead: bool,
}

impl Update {
    /// The ordering key; the larger record wins.
    pub fn key(&self) -> (u64, u32, bool) {
        (self.inc, self.refute, self.dead)
    }
}

/// A member of a proposed view: the node and the incarnation the coordinator saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProposedMember {
    /// The node.
    pub id: NodeId,
    /// The incarnation the coordinator proposes; a restarted node never accepts an old one.
    pub inc: u64,
}

/// A view proposed by a coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Proposal {
    /// The new view's id.
    pub id: ViewId,
    /// The proposed members, sorted by id.
    pub members: Vec<ProposedMember>,
}

/// A member of a committed view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ViewMember {
    /// The node.
    pub id: NodeId,
    /// Its incarnation in this view.
    pub inc: u64,
    /// The view (of this incarnation) in which it joined.
    pub born_on: ViewId,
}

/// A view every member acknowledged; the only kind a node installs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CommittedView {
    /// The view's id.
    pub id: ViewId,
    /// The members, sorted by id.
    pub members: Vec<ViewMember>,
}

impl CommittedView {
    /// The member entry for `node`.
    pub fn member(&self, node: NodeId) -> Option<&ViewMember> {
        self.members
            .binary_search_by_key(&node, |m| m.id)
            .ok()
            .map(|i| &self.members[i])
    }

    /// True when `node` is a member with incarnation `inc`.
    pub fn contains(&self, node: NodeId, inc: u64) -> bool {
        self.member(node).is_some_and(|m| m.inc == inc)
    }
}

/// What a message asks or tells.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Body {
    /// A direct probe; answered with [`Body::Ack`].
    Ping {
        /// The prober's probe number.
        probe: u32,
    },
    /// The answer to a [`Body::Ping`].
    Ack {
        /// The probe answered.
        probe: u32,
    },
    /// "Please probe `target` for me" (an indirect probe).
    PingReq {
        /// The origin's probe number.
        probe: u32,
        /// The node to probe.
        target: NodeId,
    },
    /// A probe sent by a helper on behalf of `origin`.
    RelayPing {
        /// The origin's probe number.
        probe: u32,
        /// Who asked for the probe.
        origin: NodeId,
    },
    /// The answer to a [`Body::RelayPing`], sent back to the helper.
    RelayAck {
        /// The origin's probe number.
        probe: u32,
        /// Who asked for the probe.
        origin: NodeId,
    },
    /// The helper's report to the origin that `target` answered.
    IndirectAck {
        /// The origin's probe number.
        probe: u32,
        /// The node that answered.
        target: NodeId,
    },
    /// Nothing but the envelope's gossip (a death notice to the coordinator, a refutation).
    Notice,
    /// A coordinator proposes a view.
    Propose(Arc<Proposal>),
    /// A member accepts a proposal and tells the view it joined in (if it is in one).
    Accept {
        /// The proposal accepted.
        id: ViewId,
        /// The accepting node's `born_on` in its installed view, if that view holds it.
        born_on: Option<ViewId>,
    },
    /// A member refuses a proposal because it has seen a higher view id.
    Reject {
        /// The proposal refused.
        id: ViewId,
        /// The highest view id the member installed or accepted.
        highest: ViewId,
    },
    /// A coordinator commits a view every member accepted.
    Commit(Arc<CommittedView>),
    /// "Send me your installed view": a node that saw a higher view id in a header asks.
    ViewReq {
        /// The id seen.
        id: ViewId,
    },
    /// A helper's report that `target` did not answer its relayed probe in time: the origin
    /// learns the helper is alive (so its own links work) and gets one independent
    /// confirmation of its suspicion (Lifeguard's nack).
    Nack {
        /// The origin's probe number.
        probe: u32,
        /// The node that stayed silent.
        target: NodeId,
    },
    /// "Grant me primacy in the view in my header": sent to every member once per period.
    LeaseReq {
        /// The requester's lease request number.
        seq: u32,
    },
    /// The answer to a [`Body::LeaseReq`]: the sender has the same view installed, has
    /// accepted nothing newer, and promises not to accept a view without the requester until
    /// `lease_wait` after this grant.
    LeaseGrant {
        /// The request granted.
        seq: u32,
    },
    /// A payload of a service that rides the authenticated transport (the cluster fencer's
    /// messages). The protocol ignores it; the transport hands it to the service's link.
    App(Arc<Vec<u8>>),
}

/// One message with its sender's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The sender.
    pub from: NodeId,
    /// The sender's process incarnation.
    pub inc: u64,
    /// The sender's refutation counter.
    pub refute: u32,
    /// The id of the view the sender has installed.
    pub view: Option<ViewId>,
    /// Piggybacked liveness records.
    pub gossip: Vec<Update>,
    /// The message proper.
    pub body: Body,
}
