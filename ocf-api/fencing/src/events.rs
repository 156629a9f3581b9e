//! Fencing events: what a subscriber to a [`Fencer`](crate::Fencer) sees, and how its stream
//! ends.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{FenceError, FenceRecord};

/// Something that happened to a fencing incident.
///
/// ```
/// use ocf_fencing::{FenceAction, FenceEvent, FenceRecord};
/// let record = FenceRecord::start(7, "n3".parse().unwrap(), FenceAction::Off, "ha@n1".parse().unwrap(), None);
/// let event = FenceEvent::Started { record: Box::new(record) };
/// assert_eq!(event.record().id, 7);
/// assert!(serde_json::to_string(&event).unwrap().starts_with(r#"{"event":"started","record":{"id":7"#));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FenceEvent {
    /// An incident started; its record is in flight (no outcome yet).
    Started {
        /// The record as it started.
        record: Box<FenceRecord>,
    },
    /// An incident ended; its record holds the outcome and every requester merged into it.
    Finished {
        /// The record as it ended.
        record: Box<FenceRecord>,
    },
}

impl FenceEvent {
    /// The incident's record.
    pub fn record(&self) -> &FenceRecord {
        match self {
            Self::Started { record } | Self::Finished { record } => record,
        }
    }
}

/// One subscriber's stream of [`FenceEvent`]s, in the order the fencer made them.
///
/// How it ends, and what an error in it means, is the same for every implementation (the
/// conformance suite checks it):
/// - `Ok(Some(event))`: the next event.
/// - `Ok(None)`: **the end**. The fencer shut down (for an in-process fencer: its last handle
///   was dropped) and no event will follow; every later call answers `Ok(None)` again. The end
///   of a stream is never an error.
/// - `Err(FenceError::Lagged { missed })`: this subscriber fell behind and `missed` events
///   were dropped for it. **The stream goes on** with the events after the gap: keep calling.
///   The records those events were about are in the fencer's history.
/// - Any other `Err`: the stream failed (a remote fencer's connection broke); it is over, and
///   a new [`Fencer::subscribe`](crate::Fencer::subscribe) is the way back.
#[async_trait]
pub trait FenceEventStream: Send {
    /// The next event, waiting for it; `Ok(None)` once the fencer has shut down.
    async fn next_event(&mut self) -> Result<Option<FenceEvent>, FenceError>;
}

crate::forward_pointers!(FenceEventStream for [&mut T, Box<T>] {
    async fn next_event(&mut self) -> Result<Option<FenceEvent>, FenceError> {
        (**self).next_event().await
    }
});
