//! The one name of an incident.
//!
//! Requests about one event merge cluster-wide only if every requester names the event the
//! same way. A node lost from a membership view is *the* fencing event, and every caller in
//! the project (the cluster fencer's own fencing of lost nodes, the failover manager, the CLI,
//! the Slurm bridge) names it with [`node_lost`]: `<node>@left-view-<view id>`, where the view
//! id is that of the first view installed without the node (`instance.coordinator.epoch`).
//! Every node that installed that view computes the same name, so an HA manager on n1 and a
//! scheduler on n2 asking about the same loss join one incident.

use ocf_core::NodeName;
use ocf_fencing::{IncidentId, InvalidId};
use ocf_membership::ViewId;

/// The incident "`target` was lost in view `view`": `n3@left-view-42.1.0`.
///
/// Fails only when the whole is longer than an incident id may be (256 bytes): a node name
/// of more than about 190 bytes. Callers report that rather than panic.
///
/// ```
/// use ocf_core::NodeId;
/// use ocf_membership::ViewId;
/// use ocf_ref::fencing::incident_name::node_lost;
/// let i = node_lost(&"n3".parse().unwrap(), &ViewId::new(42, NodeId::new(1), 0)).unwrap();
/// assert_eq!(i.as_str(), "n3@left-view-42.1.0");
/// ```
pub fn node_lost(target: &NodeName, view: &ViewId) -> Result<IncidentId, InvalidId> {
    IncidentId::new(format!("{target}@left-view-{view}"))
}
