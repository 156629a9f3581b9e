//! `ocf power off|on|reboot HOSTLIST`: power nodes through the cluster fencer
//! ([`crate::hpc::power`]), usable as Slurm's SuspendProgram, ResumeProgram and
//! RebootProgram (Slurm runs them with one hostlist argument, no `PATH`, and `SLURM_CONF`).
//!
//! Progress goes to stderr, one result per node to stdout (one JSON object per line with
//! `--json`). Exit 0 when every node succeeded; 70 naming the nodes that failed otherwise;
//! 64 for a bad hostlist. When `on` fails for a node and Slurm's config is known
//! (`--slurm-conf` or `SLURM_CONF`), the node is set DOWN in Slurm with ocf's reason (unless
//! another owner holds it), so it stays out and Slurm knows why at once.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use ocf_core::NodeName;
use ocf_fencing::FenceAction;

use super::output::print_json_line;
use super::{CliResult, Failure};
use crate::hpc::hostlist;
use crate::hpc::power::{PowerOptions, power};
use crate::hpc::slurm::holds::{self, HoldOwner, OCF_REASON_PREFIX};
use crate::hpc::slurm::scontrol::Scontrol;
use crate::membership::config::NodeConfig;

/// The node configuration read when `--config` is not given (Slurm's hooks pass no options).
pub const DEFAULT_CONFIG: &str = "/etc/ocf/node.toml";

/// What to do to the nodes.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PowerVerb {
    /// Power off (Slurm's SuspendProgram).
    Off,
    /// Power on and wait for the node to rejoin (Slurm's ResumeProgram).
    On,
    /// Reboot (Slurm's RebootProgram).
    Reboot,
}

/// `ocf power`.
#[derive(Debug, Args)]
pub struct PowerArgs {
    /// off, on or reboot.
    pub verb: PowerVerb,
    /// The nodes, as a hostlist (`n[2-3,7]`): how Slurm passes them.
    #[arg(value_name = "HOSTLIST", required_unless_present = "hosts")]
    pub hostlist: Option<String>,
    /// The nodes, as a hostlist (same as the positional argument).
    #[arg(long, value_name = "EXPR", conflicts_with = "hostlist")]
    pub hosts: Option<String>,
    /// The local node's configuration file; its daemon's fencer is asked.
    #[arg(long, default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Actions at once per fence device.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// The least milliseconds between two starts on one device.
    #[arg(long, value_name = "MS", default_value_t = 100)]
    pub min_gap_ms: u64,
    /// Each node's deadline in seconds (fencing, and rejoining for `on`).
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub timeout: u64,
    /// After `reboot`, also wait for the node to rejoin the view.
    #[arg(long)]
    pub wait_rejoin: bool,
    /// Slurm's configuration, to report a failed `on` to Slurm (default: `SLURM_CONF`).
    #[arg(long, env = "SLURM_CONF", value_name = "PATH")]
    pub slurm_conf: Option<PathBuf>,
    /// Print one JSON object per node.
    #[arg(long)]
    pub json: bool,
}

/// Runs `ocf power`.
pub async fn run(args: PowerArgs) -> CliResult {
    let expr = args.hostlist.or(args.hosts).unwrap_or_default();
    let names = hostlist::expand(&expr).map_err(Failure::usage)?;
    let hosts = names
        .iter()
        .map(|n| {
            n.parse::<NodeName>()
                .map_err(|e| Failure::usage(format!("{n:?} in {expr:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let config = NodeConfig::load(&args.config)?;
    let action = match args.verb {
        PowerVerb::Off => FenceAction::Off,
        PowerVerb::On => FenceAction::On,
        PowerVerb::Reboot => FenceAction::Reboot,
    };
    if let Ok(file) = std::env::var("SLURM_RESUME_FILE") {
        eprintln!("ocf: Slurm's resume file {file} (the nodes come from the hostlist argument)");
    }
    let options = PowerOptions {
        concurrency: args.concurrency.max(1),
        min_gap: Duration::from_millis(args.min_gap_ms),
        deadline: Duration::from_secs(args.timeout.max(1)),
        wait_rejoin: args.wait_rejoin,
    };
    eprintln!(
        "ocf: power {action} {} ({} nodes)",
        hostlist::compress(&names),
        hosts.len()
    );
    let progress: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(|line: &str| eprintln!("ocf: {line}"));
    let results = power(&config, action, &hosts, &options, progress).await;
    for r in &results {
        let written = if args.json {
            print_json_line(r)
        } else {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{} {} {}: {}",
                r.node,
                r.action,
                if r.ok { "ok" } else { "FAILED" },
                r.detail
            )
            .and_then(|()| out.flush())
        };
        written?;
    }
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| !r.ok)
        .map(|r| r.node.as_str())
        .collect();
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    if matches!(action, FenceAction::On)
        && let Some(conf) = args.slurm_conf
    {
        let slurm = Scontrol::new(Some(conf)).with_retries(3, Duration::from_millis(200));
        for r in results.iter().filter(|r| !r.ok) {
            let reason = format!("{OCF_REASON_PREFIX}power on failed: {}", r.detail);
            match slurm.node(&r.node).await {
                Ok(n) if matches!(holds::owner(&n), HoldOwner::Other(_)) => {
                    eprintln!(
                        "ocf: {} is held by another owner in Slurm; left as it is",
                        r.node
                    );
                }
                Ok(_) => {
                    if let Err(e) = slurm.set_down(&r.node, &reason).await {
                        eprintln!("ocf: cannot tell Slurm that {} failed: {e}", r.node);
                    }
                }
                Err(e) => eprintln!("ocf: cannot tell Slurm that {} failed: {e}", r.node),
            }
        }
    }
    Err(format!("power {action} failed on {}", hostlist::compress(&failed)).into())
}
