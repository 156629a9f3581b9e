//! `ocf slurm bridge`: Slurm learns of a dead node from ocf ([`crate::hpc::slurm::bridge`]);
//! `ocf slurm holds`: who holds each Slurm node out ([`crate::hpc::slurm::holds`]).
//!
//! Runs until stopped; prints one line per thing it did (one JSON object per line with
//! `--json`). Exits 70 only when it cannot go on: `scontrol` missing, its state file
//! unreadable or unwritable, a bad `--map`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use ocf_core::NodeName;

use super::output::print_json_line;
use super::{CliResult, Failure};
use crate::hpc::health::HealthCheck;
use crate::hpc::slurm::bridge::Bridge;
use crate::hpc::slurm::holds::HoldView;
use crate::hpc::slurm::ledger::Ledger;
use crate::hpc::slurm::scontrol::Scontrol;
use crate::membership::config::NodeConfig;

/// `ocf slurm` subcommands.
#[derive(Debug, Subcommand)]
pub enum SlurmCommand {
    /// Set nodes DOWN in Slurm once ocf has fenced them, and resume them when they come back.
    Bridge(BridgeArgs),
    /// Show who holds each Slurm node out of service: ocf, Slurm or another owner, the
    /// reason, and who set it when.
    Holds(HoldsArgs),
}

/// `ocf slurm holds`.
#[derive(Debug, Args)]
pub struct HoldsArgs {
    /// Only these nodes (a hostlist, `n[1-3]`).
    #[arg(value_name = "HOSTLIST")]
    pub hosts: Option<String>,
    /// Slurm's configuration (given to scontrol as `SLURM_CONF`).
    #[arg(long, env = "SLURM_CONF", value_name = "PATH")]
    pub slurm_conf: Option<PathBuf>,
    /// Print one JSON object per node.
    #[arg(long)]
    pub json: bool,
}

/// `ocf slurm bridge`.
#[derive(Debug, Args)]
pub struct BridgeArgs {
    /// The local node's configuration file; its daemon's socket is used.
    #[arg(long)]
    pub config: PathBuf,
    /// Slurm's configuration (given to scontrol as `SLURM_CONF`).
    #[arg(long, value_name = "PATH")]
    pub slurm_conf: Option<PathBuf>,
    /// The scontrol to run (default: from PATH, else /usr/bin/scontrol).
    #[arg(long, value_name = "PATH")]
    pub scontrol: Option<PathBuf>,
    /// An ocf node's Slurm name, `OCF=SLURM` (repeatable; names map one to one otherwise).
    #[arg(long = "map", value_name = "OCF=SLURM")]
    pub map: Vec<String>,
    /// Where the bridge remembers what it did (default: `<socket>.slurm-bridge.json`).
    #[arg(long, value_name = "PATH")]
    pub state: Option<PathBuf>,
    /// Resume a node only when this OCF agent's monitor passes for it (`ocf:heartbeat:Dummy`).
    #[arg(long, value_name = "AGENT")]
    pub health_agent: Option<String>,
    /// A parameter of the health agent, `KEY=VALUE` (repeatable; `%n` in the value is the
    /// node's name).
    #[arg(long = "health-param", value_name = "KEY=VALUE")]
    pub health_params: Vec<String>,
    /// Seconds one health check may take.
    #[arg(long, value_name = "SECS", default_value_t = 20)]
    pub health_timeout: u64,
    /// The OCF root the health agent is found under.
    #[arg(long, env = "OCF_ROOT", default_value = "/usr/lib/ocf")]
    pub ocf_root: PathBuf,
    /// Print one JSON object per line.
    #[arg(long)]
    pub json: bool,
}

/// Runs an `ocf slurm` subcommand.
pub async fn run(command: SlurmCommand) -> CliResult {
    match command {
        SlurmCommand::Bridge(args) => bridge(args).await,
        SlurmCommand::Holds(args) => holds(args).await,
    }
}

async fn holds(args: HoldsArgs) -> CliResult {
    let only = match &args.hosts {
        Some(expr) => Some(crate::hpc::hostlist::expand(expr).map_err(Failure::usage)?),
        None => None,
    };
    let nodes = Scontrol::new(args.slurm_conf).nodes().await?;
    let mut out = std::io::stdout().lock();
    for n in nodes
        .iter()
        .filter(|n| only.as_ref().is_none_or(|o| o.contains(&n.name)))
    {
        let view = HoldView::of(n);
        if args.json {
            serde_json::to_writer(&mut out, &view)?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "{} {} owner={} reason={} since={}",
                view.node,
                view.state,
                view.owner,
                view.reason.as_deref().unwrap_or("-"),
                view.since.as_deref().unwrap_or("-")
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_map(items: &[String]) -> Result<BTreeMap<NodeName, String>, Failure> {
    let mut map = BTreeMap::new();
    for item in items {
        let (ocf, slurm) = item
            .split_once('=')
            .filter(|(_, s)| !s.is_empty() && !s.contains(char::is_whitespace))
            .ok_or_else(|| Failure::usage(format!("--map {item:?}: expected OCF=SLURM")))?;
        let ocf: NodeName = ocf
            .parse()
            .map_err(|e| Failure::usage(format!("--map {item:?}: {e}")))?;
        map.insert(ocf, slurm.to_owned());
    }
    Ok(map)
}

async fn bridge(args: BridgeArgs) -> CliResult {
    let config = NodeConfig::load(&args.config)?;
    let map = parse_map(&args.map)?;
    let socket = config.socket_path();
    let state = args.state.unwrap_or_else(|| {
        let mut p = socket.clone().into_os_string();
        p.push(".slurm-bridge.json");
        PathBuf::from(p)
    });
    let ledger = Ledger::load(&state)?;
    let mut slurm = Scontrol::new(args.slurm_conf);
    if let Some(p) = args.scontrol {
        slurm = slurm.with_program(p);
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    eprintln!(
        "ocf: slurm bridge on {} (state {})",
        socket.display(),
        state.display()
    );
    let mut bridge = Bridge::new(&socket, slurm, ledger)
        .with_map(map)
        .with_report(tx);
    if let Some(agent) = &args.health_agent {
        let id = agent
            .parse()
            .map_err(|e| Failure::usage(format!("--health-agent {agent:?}: {e}")))?;
        let mut params = BTreeMap::new();
        for p in &args.health_params {
            let (k, v) = p.split_once('=').ok_or_else(|| {
                Failure::usage(format!("--health-param {p:?}: expected KEY=VALUE"))
            })?;
            params.insert(k.to_owned(), v.to_owned());
        }
        bridge = bridge.with_health(HealthCheck::new(
            &args.ocf_root,
            id,
            params,
            std::time::Duration::from_secs(args.health_timeout.max(1)),
        ));
    }
    let task = tokio::spawn(bridge.run());
    while let Some(action) = rx.recv().await {
        let written = if args.json {
            print_json_line(&action)
        } else {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{} {} ({}): {}{}",
                action.action,
                action.slurm_node,
                action.node,
                action.detail,
                action
                    .incident
                    .as_ref()
                    .map(|i| format!(" [{i}]"))
                    .unwrap_or_default()
            )
            .and_then(|()| out.flush())
        };
        if let Err(e) = written
            && e.kind() == std::io::ErrorKind::BrokenPipe
        {
            break;
        }
    }
    task.await??;
    Ok(ExitCode::SUCCESS)
}
