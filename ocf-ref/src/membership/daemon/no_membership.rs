//! A membership source with no view and no events, for a daemon socket that serves only a
//! fencer or an executor (tests, benchmarks, a host without a cluster).

use async_trait::async_trait;
use ocf_core::NodeId;
use ocf_membership::{Membership, MembershipError, Subscription, View};

/// Answers `local_node` with its id, `view` with none, and refuses `subscribe` as
/// unavailable (there are no events to give).
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use ocf_membership::Membership;
/// use ocf_ref::membership::daemon::NoMembership;
/// let m = NoMembership(ocf_core::NodeId::new(1));
/// assert_eq!(m.local_node().await.unwrap().get(), 1);
/// assert!(m.current_view().await.unwrap().is_none());
/// assert!(m.subscribe().await.is_err());
/// # });
/// ```
#[derive(Debug, Clone, Copy)]
pub struct NoMembership(pub NodeId);

#[async_trait]
impl Membership for NoMembership {
    async fn local_node(&self) -> Result<NodeId, MembershipError> {
        Ok(self.0)
    }

    async fn current_view(&self) -> Result<Option<View>, MembershipError> {
        Ok(None)
    }

    async fn subscribe(&self) -> Result<Box<dyn Subscription>, MembershipError> {
        Err(MembershipError::unavailable(
            "no membership",
            "this daemon serves no membership, so it has no events",
        ))
    }
}
