//! Who holds a Slurm node out of service, read from its state and reason.
//!
//! Slurm keeps one reason per node; ocf marks its own with [`OCF_REASON_PREFIX`]. The bridge
//! sets a node DOWN only when nobody else holds it (or only Slurm's own "Not responding"),
//! and resumes it only when the hold is still ocf's: an admin's DRAIN or DOWN, a health
//! script's reason, any other owner's hold is never overwritten nor cleared.

use super::scontrol::SlurmNode;

/// How every reason ocf sets starts.
pub const OCF_REASON_PREFIX: &str = "ocf: ";

/// The reasons slurmctld sets by itself; a hold with one of them is Slurm's own and ocf may
/// replace it with its better-informed one.
pub const SLURM_OWN_REASONS: &[&str] = &[
    "Not responding",
    "Node unexpectedly rebooted",
    "Node silently failed and came back",
];

/// Who holds a node out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HoldOwner {
    /// Nobody: it is not DOWN, DRAIN or FAIL.
    Free,
    /// ocf (its reason starts with [`OCF_REASON_PREFIX`]).
    Ocf,
    /// slurmctld itself (no reason, or one of [`SLURM_OWN_REASONS`]).
    Slurm,
    /// Someone else: an admin, a health script; the reason they gave.
    Other(String),
}

/// Who holds `node` out of service.
///
/// ```
/// use ocf_ref::hpc::slurm::holds::{owner, HoldOwner};
/// use ocf_ref::hpc::slurm::scontrol::SlurmNode;
/// let n = SlurmNode::parse("NodeName=n2 State=IDLE+DRAIN Reason=maint [root@2026-12-01T06:00:20]").unwrap();
/// assert_eq!(owner(&n), HoldOwner::Other("maint".into()));
/// ```
pub fn owner(node: &SlurmNode) -> HoldOwner {
    let held = ["DOWN", "DRAIN", "DRAINED", "DRAINING", "FAIL", "FAILING"]
        .iter()
        .any(|f| node.has_flag(f));
    if !held {
        return HoldOwner::Free;
    }
    match node.reason.as_deref() {
        Some(r) if r.starts_with(OCF_REASON_PREFIX) => HoldOwner::Ocf,
        None => HoldOwner::Slurm,
        Some(r) if SLURM_OWN_REASONS.iter().any(|s| r.starts_with(s)) => HoldOwner::Slurm,
        Some(r) => HoldOwner::Other(r.to_owned()),
    }
}

/// One node's hold as `ocf slurm holds` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct HoldView {
    /// The Slurm node.
    pub node: String,
    /// Its Slurm state.
    pub state: String,
    /// `free`; ocf's holds by what set them: `fencing`, `power`, `health`; `slurm`; `other`
    /// (an admin, a health script of someone else's).
    pub owner: &'static str,
    /// The reason of the hold.
    pub reason: Option<String>,
    /// Who set it and since when (`root@2026-12-01T06:00:20`), as Slurm records it.
    pub since: Option<String>,
}

impl HoldView {
    /// The view of `node`'s hold.
    pub fn of(node: &SlurmNode) -> Self {
        Self {
            node: node.name.clone(),
            state: node.state.clone(),
            owner: match owner(node) {
                HoldOwner::Free => "free",
                HoldOwner::Ocf => {
                    let r = node.reason.as_deref().unwrap_or_default();
                    let r = r.strip_prefix(OCF_REASON_PREFIX).unwrap_or(r);
                    if r.starts_with("health") {
                        "health"
                    } else if r.starts_with("power") {
                        "power"
                    } else {
                        "fencing"
                    }
                }
                HoldOwner::Slurm => "slurm",
                HoldOwner::Other(_) => "other",
            },
            reason: node.reason.clone(),
            since: node.set_by.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(state: &str, reason: Option<&str>) -> SlurmNode {
        let line = match reason {
            Some(r) => format!("NodeName=n1 State={state} Reason={r} [root@2026-12-01T06:00:20]"),
            None => format!("NodeName=n1 State={state}"),
        };
        SlurmNode::parse(&line).unwrap()
    }

    #[test]
    fn owners() {
        assert_eq!(owner(&node("IDLE", None)), HoldOwner::Free);
        assert_eq!(owner(&node("ALLOCATED", None)), HoldOwner::Free);
        assert_eq!(
            owner(&node("DOWN+NOT_RESPONDING", Some("Not responding"))),
            HoldOwner::Slurm
        );
        assert_eq!(
            owner(&node("DOWN", Some("ocf: fenced (reboot), incident x"))),
            HoldOwner::Ocf
        );
        assert_eq!(
            owner(&node("IDLE+DRAIN", Some("maint"))),
            HoldOwner::Other("maint".into())
        );
        assert_eq!(
            owner(&node("DOWN", Some("ocfish"))),
            HoldOwner::Other("ocfish".into())
        );
    }
}
