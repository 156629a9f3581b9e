//! `ocf node state`: this node's holds with their owners, whether it is in the view, and the
//! last fencing incident about it ([`crate::hpc::node_state`]).
//!
//! It asks the node's daemon (socket) and, with `--slurm-conf` or `SLURM_CONF`, slurmctld,
//! each within `--timeout`; a source that does not answer is listed under `unavailable`
//! (exit 0 still: the answer says what is known). Holds are read from Slurm, which keeps
//! them; there is no state file of ocf's own to disagree with it.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::CliResult;
use super::output::print_json;
use crate::hpc::node_state::node_state;
use crate::hpc::slurm::scontrol::Scontrol;
use crate::membership::config::NodeConfig;

/// `ocf node` subcommands.
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Show this node's holds (owner, reason, since), whether it is in the view, and the
    /// last fencing incident about it.
    State(StateArgs),
}

/// `ocf node state`.
#[derive(Debug, Args)]
pub struct StateArgs {
    /// The node's configuration file; its daemon is asked, about the node it names.
    #[arg(long)]
    pub config: PathBuf,
    /// Slurm's configuration, to read the node's holds from slurmctld.
    #[arg(long, env = "SLURM_CONF", value_name = "PATH")]
    pub slurm_conf: Option<PathBuf>,
    /// The node's Slurm name (default: its ocf name).
    #[arg(long, value_name = "NAME")]
    pub slurm_name: Option<String>,
    /// Seconds each source may take to answer.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub timeout: u64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs an `ocf node` subcommand.
pub async fn run(command: NodeCommand) -> CliResult {
    match command {
        NodeCommand::State(args) => state(args).await,
    }
}

async fn state(args: StateArgs) -> CliResult {
    let config = NodeConfig::load(&args.config)?;
    let name = config
        .local_entry()
        .map(|e| e.name.clone())
        .ok_or_else(|| format!("{}: names no local node (node_id)", args.config.display()))?;
    let slurm_name = args
        .slurm_name
        .clone()
        .unwrap_or_else(|| name.as_str().to_owned());
    let scontrol = args
        .slurm_conf
        .clone()
        .map(|c| Scontrol::new(Some(c)).with_retries(1, Duration::ZERO));
    let timeout = Duration::from_secs(args.timeout.max(1));
    let st = node_state(
        &name,
        &config.socket_path(),
        scontrol.as_ref().map(|s| (s, slurm_name.as_str())),
        timeout,
    )
    .await;
    if args.json {
        print_json(&st)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    let view = match st.in_view {
        Some(true) => "in the view",
        Some(false) => "NOT in the view",
        None => "view unknown",
    };
    writeln!(out, "{} {view}", st.node)?;
    if st.holds.is_empty() {
        writeln!(out, "  no holds")?;
    }
    for h in &st.holds {
        writeln!(
            out,
            "  hold owner={} reason={} since={}",
            h.owner,
            h.reason,
            h.since.as_deref().unwrap_or("-")
        )?;
    }
    if let Some(f) = &st.last_fence {
        writeln!(
            out,
            "  last fence #{} {} {}{}",
            f.record,
            f.action,
            if f.succeeded {
                "confirmed"
            } else {
                "not confirmed"
            },
            f.incident
                .as_ref()
                .map(|i| format!(" ({i})"))
                .unwrap_or_default()
        )?;
    }
    for u in &st.unavailable {
        writeln!(out, "  unavailable: {u}")?;
    }
    Ok(ExitCode::SUCCESS)
}
