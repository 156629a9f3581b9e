//! The one ordered event log of a node: every subscriber, local or over the daemon's socket,
//! sees the same events with the same `seq`, starting just after the view it was handed.
//!
//! The built-in engine publishes into a hub (Corosync's backend keeps a log of its own with the
//! same hand-over); the hub implements the subscription half of
//! [`Membership`](ocf_membership::Membership), with its stream contract: `Ok(None)` once
//! closed, for ever; `Lagged`, then the events after the gap, for a subscriber that fell more
//! than [`HUB_CAPACITY`] events behind.

use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use async_trait::async_trait;
use ocf_membership::{EventKind, MembershipError, MembershipEvent, Subscription, View};
use tokio::sync::broadcast;

/// How many events a slow subscriber may fall behind before it is told it lagged.
pub const HUB_CAPACITY: usize = 1024;

#[derive(Debug)]
struct HubState {
    current: Option<View>,
    /// Set by an engine with primacy leases: the current view counts as quorate only until
    /// this instant unless the engine moves it.
    primary_until: Option<Instant>,
    last_seq: u64,
    /// `None` once the source has shut down: subscribers then see the end of the stream.
    tx: Option<broadcast::Sender<MembershipEvent>>,
}

/// The event log of one membership source.
#[derive(Debug)]
pub struct EventHub {
    engine: String,
    state: Mutex<HubState>,
}

impl EventHub {
    /// An empty hub; `engine` names the source in errors.
    pub fn new(engine: impl Into<String>) -> Self {
        let (tx, _) = broadcast::channel(HUB_CAPACITY);
        Self {
            engine: engine.into(),
            state: Mutex::new(HubState {
                current: None,
                primary_until: None,
                last_seq: 0,
                tx: Some(tx),
            }),
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
        if event.kind == EventKind::Evicted {
            // Evicted means not primary, in the current view too.
            if let Some(v) = state.current.as_mut() {
                v.mark_not_quorate();
            }
        } else {
            state.current = Some(event.view.clone());
        }
        if let Some(tx) = &state.tx {
            // No receiver is fine: nobody subscribed yet.
            let _ = tx.send(event);
        }
    }

    /// The source lost its engine: publishes `Evicted` with the last view installed (if there
    /// was one), then ends every subscription.
    pub fn close_evicted(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let (Some(view), Some(tx)) = (state.current.clone(), state.tx.take()) {
            state.last_seq += 1;
            let _ = tx.send(MembershipEvent::new(
                state.last_seq,
                EventKind::Evicted,
                view,
            ));
        }
        state.tx = None;
    }

    /// Ends every subscription (after the events already published): the source stopped.
    pub fn close(&self) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).tx = None;
    }

    /// Tells the hub until when this node is primary (an engine with leases calls it after
    /// every change): past `until`, [`EventHub::current`] reports the view as not quorate
    /// even before the engine's event about it arrives. `None`: no deadline.
    pub fn set_primary_until(&self, until: Option<Instant>) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .primary_until = until;
    }

    /// The view installed now, quorate only while this node is primary.
    pub fn current(&self) -> Option<View> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut view = state.current.clone()?;
        if state.primary_until.is_some_and(|t| Instant::now() >= t) {
            view.mark_not_quorate();
        }
        Some(view)
    }

    /// A subscription starting just after the current view. The lock makes the hand-over
    /// exact: no event is both in the initial view and in the stream, none is in neither.
    pub fn subscribe(&self) -> HubSubscription {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let rx = match &state.tx {
            Some(tx) => tx.subscribe(),
            // Closed: a receiver whose sender is gone reports the end at once.
            None => broadcast::channel(1).1,
        };
        HubSubscription {
            engine: self.engine.clone(),
            initial: state.current.clone(),
            rx,
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

#[cfg(test)]
mod tests {
    use super::*;
    use ocf_core::NodeId;
    use ocf_membership::{Member, Quorum, ViewId};

    fn event(seq: u64) -> MembershipEvent {
        let view = View::new(
            ViewId::new(seq, NodeId::new(1), 0),
            vec![Member::new(NodeId::new(1), "n1".parse().unwrap())],
            None,
            Quorum::majority(1, 1),
        );
        MembershipEvent::new(seq, EventKind::NewMembership, view)
    }

    /// Subscribers that join while events are published get exactly the events after their
    /// initial view: no gap, no repeat.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn subscribers_joining_mid_stream_see_no_gap() {
        let hub = std::sync::Arc::new(EventHub::new("test"));
        let publisher = {
            let hub = std::sync::Arc::clone(&hub);
            tokio::spawn(async move {
                for seq in 1..=500 {
                    hub.publish(event(seq));
                    if seq % 50 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        };
        let mut subs = Vec::new();
        for _ in 0..20 {
            subs.push(hub.subscribe());
            tokio::task::yield_now().await;
        }
        publisher.await.unwrap();
        hub.publish(event(500)); // a repeat is ignored
        for mut s in subs {
            let mut expect = s.initial_view().map_or(1, |v| v.id.instance + 1);
            while expect <= 500 {
                let e = s.next_event().await.unwrap().unwrap();
                assert_eq!(e.seq, expect);
                expect += 1;
            }
        }
        assert_eq!(hub.current().unwrap().id.instance, 500);
    }
}
