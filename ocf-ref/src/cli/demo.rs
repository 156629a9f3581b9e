//! `ocf demo`: a failover on loopback, end to end.

use clap::Args;

use super::CliResult;

/// `ocf demo` arguments.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How many nodes to start.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Print one JSON object instead of the text timeline.
    #[arg(long)]
    pub json: bool,
}

/// Runs `ocf demo`.
pub async fn run(_args: DemoArgs) -> CliResult {
    Err("`ocf demo` is not written yet".into())
}
