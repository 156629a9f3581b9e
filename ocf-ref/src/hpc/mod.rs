//! HPC on the same truth as HA: hostlists as Slurm writes them, the Slurm bridge that sets a
//! dead node DOWN once the cluster fencer has confirmed it, power actions (Slurm's suspend,
//! resume and reboot hooks) through that same fencer, health checks that gate a node's
//! return, and a node's state with the owners of its holds. The guide's chapter is
//! `docs/src/hpc.md`.

pub mod health;
pub mod hostlist;
pub mod node_state;
pub mod power;
pub mod slurm;
