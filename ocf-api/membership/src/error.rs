//! Errors of membership sources.

/// What went wrong talking to a membership source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MembershipError {
    /// The engine (a daemon, a socket, Corosync) cannot be reached.
    #[error("membership engine {engine} is unavailable: {reason}")]
    Unavailable {
        /// Which engine or endpoint.
        engine: String,
        /// Why, with the way out where one is known.
        reason: String,
    },
    /// The engine refused this client.
    #[error("membership engine {engine} refused access: {reason}")]
    PermissionDenied {
        /// Which engine or endpoint.
        engine: String,
        /// Why, and how to be allowed.
        reason: String,
    },
    /// The event stream ended (the engine stopped or the node was evicted).
    #[error("membership event stream of {engine} closed")]
    Closed {
        /// Which engine or endpoint.
        engine: String,
    },
    /// A subscriber fell so far behind that events were dropped; it must resubscribe.
    #[error("subscriber lagged behind and missed {missed} events")]
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
