//! `ocf ra`: resource agents.

use clap::Subcommand;

use super::CliResult;

/// `ocf ra` subcommands.
#[derive(Debug, Subcommand)]
pub enum RaCommand {
    /// List the installed agents.
    List,
}

/// Runs an `ocf ra` subcommand.
pub async fn run(command: RaCommand) -> CliResult {
    match command {
        RaCommand::List => Err("`ocf ra list` is not written yet".into()),
    }
}
