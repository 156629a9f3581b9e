//! Membership events, after the OCF draft's `OC_EV_MS_*` codes.

use serde::{Deserialize, Serialize};

use crate::View;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A new view was installed and this partition is (still) primary, or quorum did not
    /// change (`OC_EV_MS_NEW_MEMBERSHIP`).
    NewMembership,
    /// A new view was installed and this partition lost quorum (`OC_EV_MS_NOT_PRIMARY`).
    NotPrimary,
    /// A new view was installed and this partition regained quorum (`OC_EV_MS_PRIMARY_RESTORED`).
    PrimaryRestored,
    /// This node was removed from the cluster or lost its engine (`OC_EV_MS_EVICTED`); the
    /// event's view is the last one it had installed.
    Evicted,
}

impl EventKind {
    /// The kind for a newly installed view, given whether the previous one was quorate.
    ///
    /// ```
    /// use ocf_membership::EventKind;
    /// assert_eq!(EventKind::for_transition(Some(true), false), EventKind::NotPrimary);
    /// assert_eq!(EventKind::for_transition(Some(false), true), EventKind::PrimaryRestored);
    /// assert_eq!(EventKind::for_transition(None, false), EventKind::NotPrimary);
    /// assert_eq!(EventKind::for_transition(Some(true), true), EventKind::NewMembership);
    /// ```
    pub fn for_transition(was_quorate: Option<bool>, is_quorate: bool) -> Self {
        match (was_quorate, is_quorate) {
            (Some(true) | None, false) => Self::NotPrimary,
            (Some(false), true) => Self::PrimaryRestored,
            _ => Self::NewMembership,
        }
    }

    /// The OCF draft's name for this kind.
    pub fn ocf_name(self) -> &'static str {
        match self {
            Self::NewMembership => "OC_EV_MS_NEW_MEMBERSHIP",
            Self::NotPrimary => "OC_EV_MS_NOT_PRIMARY",
            Self::PrimaryRestored => "OC_EV_MS_PRIMARY_RESTORED",
            Self::Evicted => "OC_EV_MS_EVICTED",
        }
    }
}

/// One membership event as delivered to a subscriber.
///
/// `seq` numbers the events of one node's membership source from 1 upwards, with no gaps: two
/// subscribers on one node see the same `seq` with the same kind and view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MembershipEvent {
    /// Position in this node's event sequence.
    pub seq: u64,
    /// What happened.
    pub kind: EventKind,
    /// The view that was installed (for [`EventKind::Evicted`], the last one installed).
    pub view: View,
    /// When the event took effect on its node, in microseconds since the Unix epoch, where
    /// the engine knows it. A lapsed lease takes effect when it ran out, which may be before
    /// the event is delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_us: Option<u64>,
    /// For a newly installed view: when the node stopped acting on its previous view (it
    /// agreed to this one), in microseconds since the Unix epoch, if it was primary until
    /// then. Between that instant and `at_us` the node is in transition and not primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_primary_until_us: Option<u64>,
}

impl MembershipEvent {
    /// Builds an event (with no time stamps; see [`MembershipEvent::at`]).
    pub fn new(seq: u64, kind: EventKind, view: View) -> Self {
        Self {
            seq,
            kind,
            view,
            at_us: None,
            prior_primary_until_us: None,
        }
    }

    /// The same event, stamped with when it took effect and, for an install, when the node
    /// stopped acting on its previous view (both in microseconds since the Unix epoch).
    ///
    /// ```
    /// use ocf_membership::{EventKind, MembershipEvent, Quorum, View, ViewId};
    /// use ocf_core::NodeId;
    /// let view = View::new(ViewId::new(1, NodeId::new(1), 1), vec![], None, Quorum::majority(0, 1));
    /// let e = MembershipEvent::new(1, EventKind::NotPrimary, view).at(1_700_000_000_000_000, None);
    /// assert_eq!(e.at_us, Some(1_700_000_000_000_000));
    /// ```
    #[must_use]
    pub fn at(mut self, at_us: u64, prior_primary_until_us: Option<u64>) -> Self {
        self.at_us = Some(at_us);
        self.prior_primary_until_us = prior_primary_until_us;
        self
    }
}
