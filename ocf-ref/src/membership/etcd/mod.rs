//! Membership on etcd (feature `etcd`): for HPC clusters of thousands of nodes, where Corosync's
//! ring and the built-in engine's one coordinator do not reach.
//!
//! How it maps etcd onto views ([`table`] is the pure half, [`engine`] drives it):
//! - each node holds a lease (`[etcd] lease_ttl_s`) and a member key under it,
//!   `<prefix>members/<node id>`, whose value names the node ([`keys::MemberRecord`]);
//! - the view is the member keys at the revision of the last change; its id is
//!   `(instance = that revision, coordinator = 0, epoch = etcd's cluster id)`, so "same view id
//!   ⇒ same members" holds by etcd's linearizability: every node applies the same ordered
//!   history of changes and installs views only at revisions that changed the member set, with
//!   the members etcd held at that revision (one per watch response: a burst of changes costs
//!   one view, and a node may skip intermediate views, never disagree on one). A node joining installs the view of its own join: the members read *at*
//!   the revision of its key's creation (a key left by an earlier process of the node is
//!   removed first, so every join is a change every watcher sees);
//! - primary = this node reaches a quorate etcd and holds its lease: it stops being primary as
//!   soon as no keep-alive succeeded for half the TTL (before its lease can expire elsewhere),
//!   and is `Evicted` when etcd says its lease is gone (then it joins again with a new lease);
//! - fast detection: the nodes run the built-in engine among themselves over UDP as a failure
//!   detector ([`BuiltinEngine`](crate::membership::builtin::BuiltinEngine), same `[[nodes]]`,
//!   key and `[timing]`); when its (quorate) view drops a node, any member deletes the node's
//!   key in a transaction guarded by the lease it held when suspected, then revokes that lease.
//!   Death → view takes detection + one commit, not a TTL. A node the detector cannot see
//!   (not in `[[nodes]]`, or the detector's own partition is not quorate) leaves by its TTL;
//! - the daemon watches etcd and fans out to its local clients through the
//!   [`EventHub`](crate::membership::builtin::hub::EventHub): clients never watch etcd. A lost
//!   watch is re-opened from the last revision seen; a compaction gap re-reads the members and
//!   installs at most one view. A keep-alive stream that stops answering (a leader change) is
//!   re-opened;
//! - the fence authority: [`guard::EtcdFenceGuard`], a create-if-absent transaction on
//!   `<prefix>fence/<incident>/<attempt>`, so exactly one node runs an attempt. The cluster
//!   fencer's datagrams ride on the detector's authenticated UDP transport.
//!
//! Timing arithmetic (detect = the built-in budget `[timing] detect_ms`, TTL = `lease_ttl_s`):
//! a crashed node leaves the view after about detect + one commit when the detector sees it,
//! after TTL (+ up to 0.5 s) otherwise; a node cut off from etcd stops being primary after
//! TTL/2 without a keep-alive answer, and its peers install a view without it after TTL.
//! Keep-alives go out every TTL/5.

pub mod connect;
pub mod engine;
pub mod error;
pub mod guard;
pub mod keys;
pub mod table;

pub use engine::{EtcdEngine, EtcdStats};
pub use error::EtcdError;
/// The etcd client crate the engine uses, re-exported so that tests, benchmarks and tools
/// talk to etcd with the same version.
pub use etcd_client;
pub use guard::EtcdFenceGuard;
