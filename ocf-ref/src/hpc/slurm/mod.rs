//! Slurm on ocf's node-death truth: `scontrol` as the one door to slurmctld, who holds a
//! node ([`holds`]), and the bridge that turns the cluster fencer's node-death events into
//! DOWN states with ocf's reason, and resumes nodes that come back.

pub mod bridge;
pub mod holds;
pub mod ledger;
pub mod scontrol;
