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
///
/// How it ends, and what an error in it means, is the same for every implementation (the
/// conformance suite checks it), and the same as for the fencer's event stream:
/// - `Ok(Some(event))`: the next event.
/// - `Ok(None)`: **the end**. The source shut down (an engine stopped, a daemon stopped
///   serving) and no event will follow; every later call answers `Ok(None)` again. A node that
///   leaves the cluster first delivers [`EventKind::Evicted`](crate::EventKind::Evicted) with
///   its last view. The end of a stream is never an error.
/// - `Err(MembershipError::Lagged { missed })`: this subscriber fell behind and `missed`
///   events were dropped for it. **The stream goes on** with the events after the gap: keep
///   calling. Every event carries its whole view, so the next one brings the subscriber up to
///   date (its `joined`/`left` are relative to a view the subscriber did not see: compare with
///   the last view you saw, or call [`Membership::current_view`]).
/// - Any other `Err`: the stream failed (a daemon's connection broke); it is over, and a new
///   [`Membership::subscribe`] is the way back.
#[async_trait]
pub trait Subscription: Send {
    /// The view installed when the subscription began (`None` if there was none yet); the
    /// events that follow are exactly those installed after it, in order.
    fn initial_view(&self) -> Option<&View>;

    /// The next event, waiting for it; `Ok(None)` once the source has shut down (see the
    /// trait's documentation for the whole contract).
    async fn next_event(&mut self) -> Result<Option<MembershipEvent>, MembershipError>;
}

crate::forward_pointers!(Membership for [&T, Box<T>, std::sync::Arc<T>] {
    async fn local_node(&self) -> Result<NodeId, MembershipError> {
        (**self).local_node().await
    }
    async fn current_view(&self) -> Result<Option<View>, MembershipError> {
        (**self).current_view().await
    }
    async fn subscribe(&self) -> Result<Box<dyn Subscription>, MembershipError> {
        (**self).subscribe().await
    }
});

crate::forward_pointers!(Subscription for [&mut T, Box<T>] {
    fn initial_view(&self) -> Option<&View> {
        (**self).initial_view()
    }
    async fn next_event(&mut self) -> Result<Option<MembershipEvent>, MembershipError> {
        (**self).next_event().await
    }
});
