//! Errors of membership sources.
//!
//! Callers match on [`MembershipError::kind`]; variants carry the detail (which engine or
//! endpoint, why). Variants with an underlying cause (an OS error on the daemon's socket, a
//! JSON error in its reply) keep it as their [`std::error::Error::source`], shared behind an
//! `Arc`, so the error stays `Clone`.
//!
//! The end of a subscription is never an error: [`Subscription::next_event`] answers `Ok(None)`
//! then (see [`Subscription`] for the whole contract).
//!
//! [`Subscription`]: crate::Subscription
//! [`Subscription::next_event`]: crate::Subscription::next_event

use std::sync::Arc;

/// The underlying cause of a [`MembershipError`], shared so that the error stays `Clone`.
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong talking to a membership source.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum MembershipError {
    /// The engine (a daemon, a socket, Corosync) cannot be reached, or the connection to it
    /// broke.
    #[error("membership engine {engine} is unavailable: {reason}")]
    Unavailable {
        /// Which engine or endpoint.
        engine: String,
        /// Why, with the way out where one is known.
        reason: String,
        /// The error underneath (the socket's), when there is one.
        #[source]
        source: Option<Cause>,
    },
    /// The engine refused this client.
    #[error("membership engine {engine} refused access: {reason}")]
    PermissionDenied {
        /// Which engine or endpoint.
        engine: String,
        /// Why, and how to be allowed.
        reason: String,
        /// The error underneath (the socket's), when there is one.
        #[source]
        source: Option<Cause>,
    },
    /// A subscriber fell behind and `missed` events were dropped for it. The subscription goes
    /// on with the events after the gap (each carries its whole view, so the next one brings
    /// the subscriber up to date).
    #[error(
        "membership subscriber fell behind and missed {missed} events; the stream goes on after the gap"
    )]
    Lagged {
        /// How many events were missed.
        missed: u64,
    },
    /// The engine said something this client cannot understand.
    #[error("membership protocol error from {engine}: {reason}")]
    Protocol {
        /// Which engine or endpoint.
        engine: String,
        /// What was wrong.
        reason: String,
        /// The error underneath (the parser's), when there is one.
        #[source]
        source: Option<Cause>,
    },
    /// The engine did not answer in time: a stuck or overloaded daemon. The call was given up;
    /// retrying later is safe.
    #[error(
        "membership engine {engine} did not answer within {after_ms} ms; is it stuck or overloaded?"
    )]
    TimedOut {
        /// Which engine or endpoint.
        engine: String,
        /// How long the client waited, in milliseconds.
        after_ms: u64,
    },
    /// The implementation does not offer this operation.
    #[error("{implementer} does not implement {operation}")]
    NotImplemented {
        /// The operation asked for.
        operation: &'static str,
        /// The implementation that lacks it.
        implementer: &'static str,
    },
}

/// The kind of a [`MembershipError`], for callers that match on what happened, not on details.
///
/// ```
/// use ocf_membership::{MembershipError, MembershipErrorKind};
/// let e = MembershipError::unavailable("corosync", "not running");
/// assert_eq!(e.kind(), MembershipErrorKind::Unavailable);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MembershipErrorKind {
    /// [`MembershipError::Unavailable`]: the engine cannot be reached; a subscription that
    /// fails so is over.
    Unavailable,
    /// [`MembershipError::PermissionDenied`].
    PermissionDenied,
    /// [`MembershipError::Lagged`]: a subscriber missed events; its stream goes on.
    Lagged,
    /// [`MembershipError::Protocol`].
    Protocol,
    /// [`MembershipError::TimedOut`].
    TimedOut,
    /// [`MembershipError::NotImplemented`].
    Unsupported,
}

impl MembershipError {
    /// What kind of failure this is.
    pub fn kind(&self) -> MembershipErrorKind {
        match self {
            Self::Unavailable { .. } => MembershipErrorKind::Unavailable,
            Self::PermissionDenied { .. } => MembershipErrorKind::PermissionDenied,
            Self::Lagged { .. } => MembershipErrorKind::Lagged,
            Self::Protocol { .. } => MembershipErrorKind::Protocol,
            Self::TimedOut { .. } => MembershipErrorKind::TimedOut,
            Self::NotImplemented { .. } => MembershipErrorKind::Unsupported,
        }
    }

    /// `engine` is unavailable for `reason`, with no underlying error.
    pub fn unavailable(engine: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Unavailable {
            engine: engine.into(),
            reason: reason.into(),
            source: None,
        }
    }

    /// `engine` refused this client for `reason`, with no underlying error.
    pub fn permission_denied(engine: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::PermissionDenied {
            engine: engine.into(),
            reason: reason.into(),
            source: None,
        }
    }

    /// `engine` said something unreadable (`reason`), with no underlying error.
    pub fn protocol(engine: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Protocol {
            engine: engine.into(),
            reason: reason.into(),
            source: None,
        }
    }

    /// The same error with `cause` as its source (for the variants that carry one; others
    /// are returned unchanged).
    ///
    /// ```
    /// use std::io;
    /// use ocf_membership::MembershipError;
    /// let os = io::Error::from(io::ErrorKind::ConnectionRefused);
    /// let e = MembershipError::unavailable("daemon at /run/ocf.sock", "cannot connect").with_cause(os);
    /// let back = e.cause().and_then(|c| c.downcast_ref::<io::Error>()).unwrap();
    /// assert_eq!(back.kind(), io::ErrorKind::ConnectionRefused);
    /// ```
    #[must_use]
    pub fn with_cause(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        match &mut self {
            Self::Unavailable { source, .. }
            | Self::PermissionDenied { source, .. }
            | Self::Protocol { source, .. } => *source = Some(Arc::new(cause)),
            _ => {}
        }
        self
    }

    /// The underlying cause itself (the `io::Error`, the parser's error), ready to downcast.
    /// [`std::error::Error::source`] gives the same cause behind its shared pointer.
    pub fn cause(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match self {
            Self::Unavailable { source, .. }
            | Self::PermissionDenied { source, .. }
            | Self::Protocol { source, .. } => source.as_deref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::io;

    use super::*;

    #[test]
    fn a_cause_is_kept_through_clones() {
        let e = MembershipError::unavailable("daemon at /x", "connection lost")
            .with_cause(io::Error::from(io::ErrorKind::BrokenPipe));
        let copy = e.clone();
        assert_eq!(copy.kind(), MembershipErrorKind::Unavailable);
        let os = copy.cause().and_then(|c| c.downcast_ref::<io::Error>());
        assert_eq!(os.map(io::Error::kind), Some(io::ErrorKind::BrokenPipe));
        assert_eq!(
            copy.source().map(ToString::to_string),
            Some(io::Error::from(io::ErrorKind::BrokenPipe).to_string())
        );
        assert_eq!(
            MembershipError::Lagged { missed: 2 }.kind(),
            MembershipErrorKind::Lagged
        );
        // Variants without a cause ignore one.
        let lag = MembershipError::Lagged { missed: 2 }.with_cause(io::Error::other("x"));
        assert!(lag.source().is_none());
    }
}
