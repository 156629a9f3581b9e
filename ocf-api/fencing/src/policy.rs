//! The fencing policy: a hook the fencer consults before it touches any device.
//!
//! The membership layer implements "refuse unless this node is in a quorate view": a node in a
//! minority partition must never shoot the majority.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::FenceRequest;

/// Why a policy refused a request.
///
/// ```
/// use ocf_fencing::Refusal;
/// let r = Refusal::new("quorum", "this node is in a partition without quorum; wait for it to rejoin");
/// assert_eq!(r.to_string(), "refused by quorum: this node is in a partition without quorum; wait for it to rejoin");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("refused by {policy}: {reason}")]
#[non_exhaustive]
pub struct Refusal {
    /// Which policy refused.
    pub policy: String,
    /// Why, and what would change its mind.
    pub reason: String,
}

impl Refusal {
    /// A refusal by `policy` for `reason`.
    pub fn new(policy: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            policy: policy.into(),
            reason: reason.into(),
        }
    }
}

/// Decides whether the fencer may act on a request.
#[async_trait]
pub trait FencingPolicy: Send + Sync {
    /// `Ok` to let the request through, or why not.
    async fn check(&self, request: &FenceRequest) -> Result<(), Refusal>;
}

/// The policy that allows everything (tests, single-node tools that fence one device by hand).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

#[async_trait]
impl FencingPolicy for AllowAll {
    async fn check(&self, _request: &FenceRequest) -> Result<(), Refusal> {
        Ok(())
    }
}

crate::forward_pointers!(FencingPolicy for [&T, Box<T>, std::sync::Arc<T>] {
    async fn check(&self, request: &FenceRequest) -> Result<(), Refusal> {
        (**self).check(request).await
    }
});
