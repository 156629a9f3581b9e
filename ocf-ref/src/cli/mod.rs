//! The `ocf` command line. Each subcommand lives in its own module and is a thin layer over the
//! library: parse arguments, call the library, print text or `--json`.
//!
//! Exit codes (the full table is in `docs/src/cli.md`): 0 success; `ocf ra run` and
//! `ocf fence run` exit with the agent's own code; 64 (`EX_USAGE`) bad usage, clap's errors
//! included, so a usage error is never mistaken for an agent's 2 (`OCF_ERR_ARGS`, or "power is
//! off" from a fence agent's status); 65 (`EX_DATAERR`) `ocf ra run --strict` refused the
//! action; 70 (`EX_SOFTWARE`) an internal or environment failure (the message says which).

use std::error::Error;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[cfg(feature = "corosync")]
pub mod corosync;
pub mod demo;
pub mod explain;
pub mod fence;
pub mod node;
pub mod node_state;
pub mod output;
pub mod power;
pub mod progress;
pub mod ra;
pub mod ra_node;
pub mod slurm;
pub mod timing;

/// What every subcommand returns: its exit code, or an error to print.
pub type CliResult = Result<ExitCode, Box<dyn Error + Send + Sync>>;

/// The exit code for a failure that is not an agent's own result (BSD `EX_SOFTWARE`).
pub const EXIT_FAILURE: u8 = 70;

/// The exit code for bad usage: an unknown option, a malformed value (BSD `EX_USAGE`).
pub const EXIT_USAGE: u8 = 64;

/// The exit code when ocf refused to run an action because its input failed a check the user
/// asked for (`--strict`; BSD `EX_DATAERR`).
pub const EXIT_DATAERR: u8 = 65;

/// An error that ends `ocf` with a chosen exit code (instead of [`EXIT_FAILURE`]); built with
/// [`Failure::usage`] or [`Failure::data`].
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
#[non_exhaustive]
pub struct Failure {
    /// The process exit code.
    pub code: u8,
    /// What went wrong.
    #[source]
    pub source: Box<dyn Error + Send + Sync>,
}

impl Failure {
    /// A usage error: exit [`EXIT_USAGE`].
    pub fn usage(source: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        Self {
            code: EXIT_USAGE,
            source: source.into(),
        }
    }

    /// A refusal on bad input: exit [`EXIT_DATAERR`].
    pub fn data(source: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        Self {
            code: EXIT_DATAERR,
            source: source.into(),
        }
    }
}

/// The `ocf` command's arguments.
#[derive(Debug, Parser)]
#[command(
    name = "ocf",
    version,
    about = "Open Cluster Framework: membership, fencing and resource agents"
)]
pub struct Cli {
    /// More log output on stderr (repeat for more); `RUST_LOG` overrides it.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Resource agents: list, read meta-data, run an action, test conformance.
    #[command(subcommand)]
    Ra(ra::RaCommand),
    /// Fence agents and devices: list, read meta-data, run an action, test conformance.
    #[command(subcommand)]
    Fence(fence::FenceCommand),
    /// Run one membership node daemon.
    Node(node::NodeArgs),
    /// Print the current view (or watch events) as a node daemon or Corosync sees it.
    Members(node::MembersArgs),
    /// Write a new cluster key file (mode 0600).
    Keygen(node::KeygenArgs),
    /// Print the membership timers a node's configuration gives (refused with the arithmetic
    /// when they do not fit together).
    Timing(timing::TimingArgs),
    /// Power nodes off, on or reboot them through the cluster fencer (Slurm's power hooks).
    Power(power::PowerArgs),
    /// Slurm on ocf's node-death truth: the bridge that sets fenced nodes DOWN.
    #[command(subcommand)]
    Slurm(slurm::SlurmCommand),
    /// Form a cluster on loopback, kill a node, fence it and recover its resource.
    Demo(demo::DemoArgs),
    /// The causal record of an incident: detection, view change, fence decision, node death
    /// and recoveries.
    Explain(explain::ExplainArgs),
}

/// Parses the command line, runs the command on a tokio runtime and turns errors into a
/// message on stderr and a non-zero exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout and succeed; every other parse error is a usage
            // error, 64, never clap's default 2 (an agent's OCF_ERR_ARGS, a fence "off").
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_tracing(cli.verbose);
    // `ocf ra` runs one agent and waits: one thread is enough and starts faster.
    let mut builder = if matches!(cli.command, Command::Ra(_)) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ocf: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ocf: {}", error_chain(e.as_ref()));
            ExitCode::from(e.downcast_ref::<Failure>().map_or(EXIT_FAILURE, |f| f.code))
        }
    }
}

/// Runs one parsed command.
pub async fn run(command: Command) -> CliResult {
    match command {
        Command::Ra(c) => ra::run(c).await,
        Command::Fence(c) => fence::run(c).await,
        Command::Node(a) => node::run_node(a).await,
        Command::Members(a) => node::run_members(a).await,
        Command::Keygen(a) => node::run_keygen(a),
        Command::Timing(a) => timing::run_timing(&a),
        Command::Power(a) => power::run(a).await,
        Command::Slurm(c) => slurm::run(c).await,
        Command::Demo(a) => demo::run(a).await,
        Command::Explain(a) => explain::run(a).await,
    }
}

/// An error and its sources on one line: `outer: inner: root`.
pub fn error_chain(e: &(dyn Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
