//! `ocf fence`: fence agents and devices.

use clap::Subcommand;

use super::CliResult;

/// `ocf fence` subcommands.
#[derive(Debug, Subcommand)]
pub enum FenceCommand {
    /// List the installed fence agents.
    Agents,
}

/// Runs an `ocf fence` subcommand.
pub async fn run(command: FenceCommand) -> CliResult {
    match command {
        FenceCommand::Agents => Err("`ocf fence agents` is not written yet".into()),
    }
}
