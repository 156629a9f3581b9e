//! `ocf node`, `ocf members` and `ocf keygen`: membership.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use ocf_membership::{Membership, MembershipError, MembershipEvent, View};

use super::CliResult;
use super::output::{print_json, print_json_line};
use crate::membership::builtin::key::ClusterKey;
use crate::membership::config::NodeConfig;
use crate::membership::daemon;
use crate::membership::daemon::DaemonClient;
use crate::membership::daemon::local_api::DaemonStats;

/// `ocf node` arguments.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct NodeArgs {
    /// The node's configuration file (TOML).
    #[arg(long, required = true)]
    pub config: Option<PathBuf>,
    /// Instead of running the daemon: ask about this node.
    #[command(subcommand)]
    pub command: Option<super::node_state::NodeCommand>,
}

/// Which membership engine `ocf members` asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Backend {
    /// The built-in engine, through the node daemon's socket.
    #[default]
    Builtin,
    /// Corosync's CPG/quorum services on this host.
    Corosync,
}

/// `ocf members` arguments.
#[derive(Debug, Args)]
pub struct MembersArgs {
    /// The node's configuration file; its daemon is asked.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Print events as they happen instead of the current view.
    #[arg(long, conflicts_with = "stats")]
    pub watch: bool,
    /// Print the daemon's counters instead of the view: its clients, and the packets it sent,
    /// received and rejected (malformed, forged, replayed, unknown sender).
    #[arg(long)]
    pub stats: bool,
    /// Give up when the daemon has not answered within this many seconds (connect, request
    /// and answer; a watch's events have no deadline).
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = parse_timeout)]
    pub timeout: f64,
    /// Which engine to ask.
    #[arg(long, value_enum, default_value_t = Backend::Builtin)]
    pub backend: Backend,
}

fn parse_timeout(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Ok(s),
        _ => Err(format!("{text:?} is not a number of seconds in (0, 86400]")),
    }
}

/// `ocf keygen` arguments.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the key (created with mode 0600; an existing file is not overwritten).
    pub path: PathBuf,
}

/// Runs `ocf node`: the membership daemon of the config's backend (built-in or Corosync),
/// until SIGINT or SIGTERM.
pub async fn run_node(args: NodeArgs) -> CliResult {
    if let Some(command) = args.command {
        return super::node_state::run(command).await;
    }
    let Some(path) = args.config else {
        return Err(super::Failure::usage("ocf node needs --config FILE").into());
    };
    let config = NodeConfig::load(&path)?;
    let daemon = daemon::start(&config).await?;
    let local = daemon.membership().local_node().await?;
    eprintln!(
        "ocf node {local} of cluster {}: {}",
        config.cluster,
        daemon.describe()
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    daemon.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

fn view_text(view: Option<&View>) -> String {
    let Some(v) = view else {
        return "no view installed yet".to_owned();
    };
    let members: Vec<String> = v
        .members()
        .iter()
        .map(|m| format!("{}({})", m.name, m.id))
        .collect();
    format!(
        "view {} {} votes {}/{}: {}",
        v.id,
        if v.is_quorate() {
            "quorate"
        } else {
            "NOT quorate"
        },
        v.quorum().votes,
        v.quorum().expected_votes,
        members.join(" ")
    )
}

fn event_text(e: &MembershipEvent) -> String {
    let ids = |ids: &[ocf_core::NodeId]| {
        ids.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        "#{} {} joined [{}] left [{}] {}",
        e.seq,
        e.kind.ocf_name(),
        ids(e.view.joined()),
        ids(e.view.left()),
        view_text(Some(&e.view))
    )
}

fn stats_text(s: &DaemonStats) -> String {
    let mut text = format!(
        "clients {}/{} (refused busy: {})",
        s.clients, s.max_clients, s.refused_busy
    );
    if let Some(p) = &s.packets {
        let r = &p.rejected;
        let _ = write!(
            text,
            "\npackets sent {} received {} too large {}\nrejected {}: malformed {} forged {} \
             replayed {} unknown sender {}",
            p.sent,
            p.received,
            p.too_large,
            r.total(),
            r.malformed,
            r.forged,
            r.replayed,
            r.unknown_sender
        );
    }
    text
}

/// Runs `ocf members`.
pub async fn run_members(args: MembersArgs) -> CliResult {
    if args.backend == Backend::Corosync {
        if args.stats {
            return Err(
                "--stats asks a node daemon for its counters: use --config FILE, \
                 not --backend corosync"
                    .into(),
            );
        }
        #[cfg(feature = "corosync")]
        return super::corosync::run_members_with_timeout(
            args.json,
            args.watch,
            std::time::Duration::from_secs_f64(args.timeout),
        )
        .await;
        #[cfg(not(feature = "corosync"))]
        return Err(
            "this ocf was built without the corosync backend; rebuild with `--features corosync`"
                .into(),
        );
    }
    let Some(config_path) = args.config else {
        return Err(super::Failure::usage(
            "`ocf members` needs --config FILE (the node's config names its daemon's socket)",
        )
        .into());
    };
    let config = NodeConfig::load(&config_path)?;
    let client = DaemonClient::new(config.socket_path())
        .with_timeout(std::time::Duration::from_secs_f64(args.timeout));
    if args.stats {
        let stats = client.stats().await?;
        if args.json {
            print_json(&stats)?;
        } else {
            println!("{}", stats_text(&stats));
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !args.watch {
        let view = client.current_view().await?;
        if args.json {
            print_json(&view)?;
        } else {
            println!("{}", view_text(view.as_ref()));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut sub = client.subscribe().await?;
    if args.json {
        print_json_line(&serde_json::json!({ "initial_view": sub.initial_view() }))?;
    } else {
        println!("{}", view_text(sub.initial_view()));
    }
    loop {
        let event = match sub.next_event().await {
            Ok(Some(event)) => event,
            // The end: the daemon stopped serving.
            Ok(None) => break,
            // Events were dropped for us; the stream goes on after the gap.
            Err(MembershipError::Lagged { missed }) => {
                eprintln!("fell behind: {missed} events were missed; watching on");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if args.json {
            print_json_line(&event)?;
        } else {
            println!("{}", event_text(&event));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `ocf keygen`.
#[allow(clippy::needless_pass_by_value)] // the signature every subcommand shares
pub fn run_keygen(args: KeygenArgs) -> CliResult {
    ClusterKey::random().write_new(&args.path)?;
    eprintln!(
        "wrote a new cluster key to {} (mode 0600)",
        args.path.display()
    );
    Ok(ExitCode::SUCCESS)
}
