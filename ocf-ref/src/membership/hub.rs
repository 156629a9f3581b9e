//! The one ordered event log of a node: every subscriber, local or over the daemon's socket,
//! sees the same events with the same `seq`, starting just after the view it was handed.
//!
//! Any engine (the built-in protocol, Corosync) publishes into a hub; the hub implements the
//! subscription half of [`Membership`](ocf_membership::Membership).

use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use ocf_membership::{EventKind, MembershipError, MembershipEvent, Subscription, View};
use tokio::sync::broadcast;

/// How many events a slow subscriber may fall behind before it is told it lagged.
pub const HUB_CAPACITY: usize = 1024;

#[derive(Debug, Default)]
struct HubState {
    current: Option<View>,
    last_seq: u64,
}

/// The event log of one membership source.
#[derive(Debug)]
pub struct EventHub {
    engine: String,
    state: Mutex<HubState>,
    tx: broadcast::Sender<MembershipEvent>,
}

impl EventHub {
    /// An empty hub; `engine` names the source in errors.
    pub fn new(engine: impl Into<String>) -> Self {
        let (tx, _) = broadcast::channel(HUB_CAPACITY);
        Self {
            engine: engine.into(),
            state: Mutex::new(HubState::default()),
            tx,
        }
    }

    /// Publishes the next event. Events whose `seq` is not above the last one are ignored,
    /// so the log stays gapless and ordered whatever the source does.
    pub fn publish(&self, event: MembershipEvent) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if event.seq <= state.last_seq {
            return;
        }
        state.last_seq = event.seq;
        if event.kind != EventKind::Evicted {
            state.current = Some(event.view.clone());
        }
        // No receiver is fine: nobody subscribed yet.
        let _ = self.tx.send(event);
    }

    /// The view installed now.
    pub fn current(&self) -> Option<View> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .current
            .clone()
    }

    /// A subscription starting just after the current view. The lock makes the hand-over
    /// exact: no event is both in the initial view and in the stream, none is in neither.
    pub fn subscribe(&self) -> HubSubscription {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        HubSubscription {
            engine: self.engine.clone(),
            initial: state.current.clone(),
            rx: self.tx.subscribe(),
        }
    }
}

/// A subscriber's stream from an [`EventHub`].
#[derive(Debug)]
pub struct HubSubscription {
    engine: String,
    initial: Option<View>,
    rx: broadcast::Receiver<MembershipEvent>,
}

#[async_trait]
impl Subscription for HubSubscription {
    fn initial_view(&self) -> Option<&View> {
        self.initial.as_ref()
    }

    async fn next_event(&mut self) -> Result<Option<MembershipEvent>, MembershipError> {
        match self.rx.recv().await {
            Ok(e) => Ok(Some(e)),
            Err(broadcast::error::RecvError::Closed) => Ok(None),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(engine = %self.engine, missed, "membership subscriber lagged");
                Err(MembershipError::Lagged { missed })
            }
        }
    }
}
