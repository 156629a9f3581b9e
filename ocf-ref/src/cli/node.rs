//! `ocf node`, `ocf members` and `ocf keygen`: membership.

use std::path::PathBuf;

use clap::Args;

use super::CliResult;

/// `ocf node` arguments.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The node's configuration file (TOML).
    #[arg(long)]
    pub config: PathBuf,
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
    #[arg(long)]
    pub watch: bool,
}

/// `ocf keygen` arguments.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the key (created with mode 0600; an existing file is not overwritten).
    pub path: PathBuf,
}

/// Runs `ocf node`.
pub async fn run_node(_args: NodeArgs) -> CliResult {
    Err("`ocf node` is not written yet".into())
}

/// Runs `ocf members`.
pub async fn run_members(_args: MembersArgs) -> CliResult {
    Err("`ocf members` is not written yet".into())
}

/// Runs `ocf keygen`.
pub fn run_keygen(_args: KeygenArgs) -> CliResult {
    Err("`ocf keygen` is not written yet".into())
}
