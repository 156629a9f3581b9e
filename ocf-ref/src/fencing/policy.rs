//! Fencing policies of the reference implementation: the quorum rule, which joins the fencer
//! to membership.
//!
//! A node in a partition without quorum must never shoot anyone: the majority on the other
//! side is the one that decides. [`QuorumPolicy`] refuses every request unless the local
//! node is a member of a quorate view, as its membership source reports it now.
//!
//! The incident "node N was lost in view V" has one name, made by
//! [`incident_name::node_lost`](crate::fencing::incident_name::node_lost).

use std::sync::Arc;

use async_trait::async_trait;
use ocf_fencing::{FenceRequest, FencingPolicy, Refusal};
use ocf_membership::Membership;

/// Refuses fencing unless this node is in a quorate view.
pub struct QuorumPolicy {
    membership: Arc<dyn Membership>,
}

impl std::fmt::Debug for QuorumPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuorumPolicy").finish_non_exhaustive()
    }
}

impl QuorumPolicy {
    /// The policy over a membership source.
    pub fn new(membership: Arc<dyn Membership>) -> Self {
        Self { membership }
    }
}

const NAME: &str = "quorum";

#[async_trait]
impl FencingPolicy for QuorumPolicy {
    async fn check(&self, request: &FenceRequest) -> Result<(), Refusal> {
        let refuse = |reason: String| Err(Refusal::new(NAME, reason));
        let local = match self.membership.local_node().await {
            Ok(id) => id,
            Err(e) => return refuse(format!("membership cannot say who this node is: {e}")),
        };
        let view = match self.membership.current_view().await {
            Ok(Some(v)) => v,
            Ok(None) => {
                return refuse(
                    "no membership view is installed yet; wait for the cluster to form".into(),
                );
            }
            Err(e) => return refuse(format!("membership is unavailable: {e}")),
        };
        if !view.contains(local) {
            return refuse(format!(
                "this node ({local}) is not a member of view {}",
                view.id
            ));
        }
        if !view.is_quorate() {
            return refuse(format!(
                "view {} has no quorum ({} of {} votes); only the quorate partition may fence {}",
                view.id,
                view.quorum().votes,
                view.quorum().expected_votes,
                request.target
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocf_core::NodeId;
    use ocf_fencing::FenceAction;
    use ocf_membership::{Member, MembershipError, Quorum, Subscription, View, ViewId};

    /// A membership source that reports one fixed view (a single-node setup's, or a test's).
    struct FixedView {
        local: NodeId,
        view: Option<View>,
    }

    #[async_trait]
    impl Membership for FixedView {
        async fn local_node(&self) -> Result<NodeId, MembershipError> {
            Ok(self.local)
        }
        async fn current_view(&self) -> Result<Option<View>, MembershipError> {
            Ok(self.view.clone())
        }
        async fn subscribe(&self) -> Result<Box<dyn Subscription>, MembershipError> {
            Err(MembershipError::NotImplemented {
                operation: "subscribe",
                implementer: "FixedView",
            })
        }
    }

    fn view(members: &[u32], votes: u32, expected: u32) -> View {
        let members = members
            .iter()
            .map(|&i| Member::new(NodeId::new(i), format!("n{i}").parse().unwrap()))
            .collect();
        View::new(
            ViewId::new(7, NodeId::new(1), 0),
            members,
            None,
            Quorum::majority(votes, expected),
        )
    }

    fn req() -> FenceRequest {
        FenceRequest::new(
            "n3".parse().unwrap(),
            FenceAction::Reboot,
            "t@n1".parse().unwrap(),
        )
    }

    async fn check(local: u32, view: Option<View>) -> Result<(), Refusal> {
        QuorumPolicy::new(Arc::new(FixedView {
            local: NodeId::new(local),
            view,
        }))
        .check(&req())
        .await
    }

    #[tokio::test]
    async fn only_a_member_of_a_quorate_view_may_fence() {
        assert!(check(1, Some(view(&[1, 2], 2, 3))).await.is_ok());
        let minority = check(1, Some(view(&[1], 1, 3))).await.unwrap_err();
        assert!(minority.reason.contains("no quorum"), "{minority}");
        let outsider = check(9, Some(view(&[1, 2], 2, 3))).await.unwrap_err();
        assert!(outsider.reason.contains("not a member"), "{outsider}");
        assert!(check(1, None).await.is_err());
    }
}
