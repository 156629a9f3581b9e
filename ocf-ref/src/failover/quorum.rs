//! The fencing policy that membership gives the fencer: fence only from a quorate view.

use std::sync::Arc;

use async_trait::async_trait;
use ocf_fencing::{FenceRequest, FencingPolicy, Refusal};
use ocf_membership::Membership;

/// Refuses every fence request unless the local node is a member of a quorate view, so a node
/// cut off in a minority can never shoot the majority.
pub struct QuorumPolicy {
    membership: Arc<dyn Membership>,
}

impl QuorumPolicy {
    /// A policy that asks `membership` before every fence.
    pub fn new(membership: Arc<dyn Membership>) -> Self {
        Self { membership }
    }
}

impl std::fmt::Debug for QuorumPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuorumPolicy").finish_non_exhaustive()
    }
}

#[async_trait]
impl FencingPolicy for QuorumPolicy {
    async fn check(&self, request: &FenceRequest) -> Result<(), Refusal> {
        let refuse = |reason: String| Err(Refusal::new("quorum", reason));
        let local = match self.membership.local_node().await {
            Ok(id) => id,
            Err(e) => return refuse(format!("membership cannot say who this node is: {e}")),
        };
        match self.membership.current_view().await {
            Ok(Some(view)) if view.is_quorate() && view.contains(local) => Ok(()),
            Ok(Some(view)) => refuse(format!(
                "node {local} is in view {} without quorum ({} of {} votes needed); not fencing {}",
                view.id, view.quorum.votes, view.quorum.threshold, request.target
            )),
            Ok(None) => refuse(format!(
                "node {local} has installed no view yet; not fencing {}",
                request.target
            )),
            Err(e) => refuse(format!("membership unavailable: {e}")),
        }
    }
}
