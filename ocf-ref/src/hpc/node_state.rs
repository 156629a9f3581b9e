//! One node's state as the scheduler and the cluster see it: whether it is in the view, its
//! holds with their owners (read from Slurm, where they are kept: see
//! [`crate::hpc::slurm::holds`]) and the last fencing incident about it.
//!
//! Nothing here is a second store: the view and the fence history come from the node's own
//! daemon (socket), the holds from slurmctld. A source that does not answer in time is named
//! in `unavailable` instead of guessed.

use std::time::Duration;

use ocf_core::NodeName;
use ocf_fencing::{FenceAction, Fencer, HistoryFilter};
use ocf_membership::Membership;
use serde::Serialize;

use super::slurm::holds::HoldView;
use super::slurm::scontrol::Scontrol;
use crate::fencing::daemon_fencer::DaemonFencer;
use crate::membership::daemon::DaemonClient;

/// One hold on the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct NodeHold {
    /// `fencing`, `power`, `health` (ocf's), `slurm`, or `other` (an admin, ...).
    pub owner: String,
    /// Why.
    pub reason: String,
    /// Who set it and since when, as its keeper records it.
    pub since: Option<String>,
}

/// The last fencing incident about the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LastFence {
    /// The record's id.
    pub record: u64,
    /// The action.
    pub action: FenceAction,
    /// Whether it was confirmed.
    pub succeeded: bool,
    /// The incident.
    pub incident: Option<String>,
    /// When it ended (ms since the Unix epoch), if it has.
    pub ended_ms: Option<u64>,
}

/// A node's state.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct NodeState {
    /// The node.
    pub node: String,
    /// Whether it is a member of the view its daemon has installed (`None`: the daemon did
    /// not answer).
    pub in_view: Option<bool>,
    /// Its holds, every owner's.
    pub holds: Vec<NodeHold>,
    /// The last fencing incident about it.
    pub last_fence: Option<LastFence>,
    /// Sources that did not answer, and why.
    pub unavailable: Vec<String>,
}

/// Gathers `node`'s state from the daemon at `socket` and, when given, Slurm (as
/// `slurm_name`); each source bounded by `timeout`.
pub async fn node_state(
    node: &NodeName,
    socket: &std::path::Path,
    slurm: Option<(&Scontrol, &str)>,
    timeout: Duration,
) -> NodeState {
    let mut state = NodeState {
        node: node.to_string(),
        in_view: None,
        holds: Vec::new(),
        last_fence: None,
        unavailable: Vec::new(),
    };
    let client = DaemonClient::new(socket).with_timeout(timeout);
    match client.current_view().await {
        Ok(Some(v)) => state.in_view = Some(v.members().iter().any(|m| m.name == *node)),
        Ok(None) => state.in_view = Some(false),
        Err(e) => state
            .unavailable
            .push(format!("node daemon at {}: {e}", socket.display())),
    }
    let fencer = DaemonFencer::new(socket).with_timeout(timeout);
    match tokio::time::timeout(
        timeout,
        fencer.history(&HistoryFilter::all().target(node.clone()).limit(1)),
    )
    .await
    {
        Ok(Ok(records)) => {
            state.last_fence = records.last().map(|r| LastFence {
                record: r.id,
                action: r.action,
                succeeded: r.succeeded(),
                incident: r.incident.as_ref().map(ToString::to_string),
                ended_ms: r.ended_ms,
            });
        }
        Ok(Err(e)) => state.unavailable.push(format!("fence history: {e}")),
        Err(_) => state.unavailable.push(format!(
            "fence history: no answer within {} ms",
            timeout.as_millis()
        )),
    }
    if let Some((scontrol, name)) = slurm {
        match tokio::time::timeout(timeout, scontrol.node(name)).await {
            Ok(Ok(n)) => {
                let view = HoldView::of(&n);
                if view.owner != "free" {
                    state.holds.push(NodeHold {
                        owner: view.owner.to_owned(),
                        reason: view.reason.unwrap_or_else(|| view.state.clone()),
                        since: view.since,
                    });
                }
            }
            Ok(Err(e)) => state.unavailable.push(format!("slurm: {e}")),
            Err(_) => state.unavailable.push(format!(
                "slurm: no answer within {} ms",
                timeout.as_millis()
            )),
        }
    }
    state
}
