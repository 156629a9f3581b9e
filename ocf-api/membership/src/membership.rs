//! The membership trait: what every engine offers its local clients.

use async_trait::async_trait;
use ocf_core::NodeId;

use crate::{MembershipError, MembershipEvent, View};

/// A node's source of agreed membership.
///
/// Implementations: the built-in protocol, Corosync, or a client of a node daemon that runs
/// either. Every clone or handle on one node must report the same views and events.
///
/// The trait is dyn-compatible: cluster managers hold `Box<dyn Membership>` or
/// `Arc<dyn Membership>` without knowing the engine.
#[async_trait]
pub trait Membership: Send + Sync {
    /// The local node's id.
    async fn local_node(&self) -> Result<NodeId, MembershipError>;

    /// The view installed now, or `None` before the first view is installed.
    async fn current_view(&self) -> Result<Option<View>, MembershipError>;

    /// A new subscription to this node's events, starting just after the view it reports as
    /// [`Subscription::initial_view`].
    async fn subscribe(&self) -> Result<Box<dyn Subscription>, MembershipError>;
}

/// One subscriber's ordered stream of membership events.
#[async_trait]
pub trait Subscription: Send {
    /// The view installed when the subscription began (`None` if there was none yet); the
    /// events that follow are exactly those installed after it, in order.
    fn initial_view(&self) -> Option<&View>;

    /// The next event, waiting for it; `Ok(None)` when the source has shut down cleanly.
    async fn next_event(&mut self) -> Result<Option<MembershipEvent>, MembershipError>;
}

#[async_trait]
impl<T: Membership + ?Sized> Membership for std::sync::Arc<T> {
    async fn local_node(&self) -> Result<NodeId, MembershipError> {
        (**self).local_node().await
    }
    async fn current_view(&self) -> Result<Option<View>, MembershipError> {
        (**self).current_view().await
    }
    async fn subscribe(&self) -> Result<Box<dyn Subscription>, MembershipError> {
        (**self).subscribe().await
    }
}

#[async_trait]
impl<T: Membership + ?Sized> Membership for Box<T> {
    async fn local_node(&self) -> Result<NodeId, MembershipError> {
        (**self).local_node().await
    }
    async fn current_view(&self) -> Result<Option<View>, MembershipError> {
        (**self).current_view().await
    }
    async fn subscribe(&self) -> Result<Box<dyn Subscription>, MembershipError> {
        (**self).subscribe().await
    }
}
