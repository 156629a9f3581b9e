//! What the cluster fencers of two nodes say to each other, and the log they share.

use ocf_core::{NodeId, NodeName};
use ocf_fencing::{
    FenceAction, FenceId, FenceOutcome, FenceRequest, IncidentId, LevelAttempt, NodeDeath,
    RequesterId, UnixMillis,
};
use ocf_membership::ViewId;
use serde::{Deserialize, Serialize};

use super::table::Stored;

/// One client request, named the same on every node: the node that took it, that node's
/// incarnation, and its number there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReqId {
    /// The node whose client asked.
    pub node: NodeId,
    /// That node's fencer incarnation (a restarted daemon numbers afresh).
    pub inc: u64,
    /// The request's number on that node.
    pub n: u64,
}

/// What a node's devices can fence, as it tells the authority.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caps {
    /// Targets named by a static host list, a host map or a topology level of this node.
    pub targets: Vec<NodeName>,
    /// Whether some device of this node has a dynamic host list (it must be asked).
    pub dynamic: bool,
}

impl Caps {
    /// How well this node suits fencing `target`: 2 named, 1 maybe (dynamic), 0 not at all.
    pub fn rank(&self, target: &NodeName) -> u8 {
        if self.targets.contains(target) {
            2
        } else {
            u8::from(self.dynamic)
        }
    }
}

/// One entry of the authority's log. Every member applies the same entries in the same
/// order, so every member holds the same table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// A new incident, started by `req`.
    Open {
        /// Its number.
        id: FenceId,
        /// The node to fence.
        target: NodeName,
        /// What to do.
        action: FenceAction,
        /// The incident name the first request carried (or the authority gave it).
        incident: Option<IncidentId>,
        /// Who asked first.
        requester: RequesterId,
        /// That request.
        req: Option<ReqId>,
        /// When it opened.
        at_ms: UnixMillis,
        /// When it must have ended.
        deadline_ms: UnixMillis,
        /// For the fencing of a node lost from a view: that view, as text.
        lost_in: Option<String>,
    },
    /// Another request joins incident `id` (in flight, or finished: answered from history).
    Join {
        /// The incident.
        id: FenceId,
        /// Who asks.
        requester: RequesterId,
        /// The request.
        req: ReqId,
    },
    /// Node `node` is to run the devices for attempt `attempt` of `id`.
    Assign {
        /// The incident.
        id: FenceId,
        /// The attempt's number, from 1.
        attempt: u32,
        /// The executing node.
        node: NodeId,
        /// Its name.
        name: NodeName,
        /// When.
        at_ms: UnixMillis,
    },
    /// Attempt `attempt` of `id` ended.
    Executed {
        /// The incident.
        id: FenceId,
        /// The attempt.
        attempt: u32,
        /// The levels it ran, with their device attempts.
        levels: Vec<LevelAttempt>,
        /// How it ended.
        outcome: FenceOutcome,
        /// Whether it ended because the node had no device for the target.
        no_device: bool,
        /// When.
        at_ms: UnixMillis,
    },
    /// Incident `id` ended.
    Close {
        /// The incident.
        id: FenceId,
        /// How.
        outcome: FenceOutcome,
        /// Whether no node had a device for the target.
        no_device: bool,
        /// When.
        at_ms: UnixMillis,
        /// The node-death event it makes, if any.
        death: Option<Box<NodeDeath>>,
    },
    /// `target` came back into the primary view: a later request for it is a new incident.
    Rejoined {
        /// The node.
        target: NodeName,
    },
    /// The authority's merged record of one incident, at the start of its epoch.
    Put {
        /// The record and its bookkeeping.
        stored: Box<Stored>,
    },
    /// The primary view the authority started its epoch in, and the next incident number.
    Epoch {
        /// The view.
        view: ViewId,
        /// Its members' names.
        members: Vec<NodeName>,
        /// The next incident number.
        next_id: FenceId,
    },
}

/// A message between the fencers of two nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "m", rename_all = "snake_case")]
pub enum Msg {
    /// A client request, to the authority (re-sent until it is in the log).
    Ask {
        /// Its id.
        req: ReqId,
        /// The request.
        request: FenceRequest,
    },
    /// Several client requests of one node, to the authority: a burst of requests packed
    /// into one message (each re-sent until it is in the log, as with [`Msg::Ask`]).
    Asks {
        /// The requests and their ids.
        asks: Vec<(ReqId, FenceRequest)>,
    },
    /// A member's state, to the authority of a new epoch (one of `chunks` parts).
    Sync {
        /// The epoch (the view) it is for.
        epoch: ViewId,
        /// This part's number, from 0.
        chunk: u32,
        /// How many parts.
        chunks: u32,
        /// What this node can fence.
        caps: Caps,
        /// The next incident number this node knows of.
        next_id: FenceId,
        /// The last primary view this node applied.
        last_primary: Option<(ViewId, Vec<NodeName>)>,
        /// Its records (this part's share).
        records: Vec<Stored>,
    },
    /// Log entries from the authority, `first` being the number of the first.
    Entries {
        /// The epoch.
        epoch: ViewId,
        /// The number of `ops[0]` in the epoch's log, from 1.
        first: u64,
        /// The entries.
        ops: Vec<Op>,
        /// The last entry every member of the view holds: the follower applies entries up
        /// to it (answers, events and executions follow), and holds the rest.
        #[serde(default)]
        commit: u64,
    },
    /// A follower has applied the epoch's log up to `applied`.
    Ack {
        /// The epoch.
        epoch: ViewId,
        /// The last entry received in order.
        applied: u64,
        /// The last entry committed (so a lost commit is told again).
        #[serde(default)]
        committed: u64,
    },
    /// An executor's result, to the authority (re-sent until it is in the log).
    Done {
        /// The incident.
        id: FenceId,
        /// The attempt.
        attempt: u32,
        /// The levels run.
        levels: Vec<LevelAttempt>,
        /// How it ended.
        outcome: FenceOutcome,
        /// Whether the node had no device for the target.
        no_device: bool,
    },
}

impl Msg {
    /// The message as bytes for a link.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing these types cannot fail (no maps with non-string keys, no floats).
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A message from a link's bytes; `None` for anything that is not one.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}
