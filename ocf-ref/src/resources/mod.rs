//! Resource agents: the real OCF scripts, native Rust agents, and an executor over both.
//!
//! - [`script`]: runs the executables under `$OCF_ROOT/resource.d/<provider>/<type>` with the
//!   exact OCF 1.1 environment, each in its own process group, with timeouts and bounded
//!   output.
//! - [`native`]: agents written in Rust behind the same trait ([`native::NativeDummy`]).
//! - [`directory`]: lists the installed agents.
//! - [`metadata_cache`]: agents' meta-data kept on disk between one-shot runs.
//! - [`registry`]: finds the agent for an id, native or script, and shares it.
//! - [`executor`]: named resources, one operation at a time each, recurring monitors, history
//!   and a result stream ([`executor::LocalExecutor`]).
//! - [`daemon_executor`]: the executor a node daemon serves, reached over its socket
//!   ([`daemon_executor::DaemonExecutor`]).
//! - [`tester`]: a conformance check of one agent, stricter than `ocf-tester`.

use std::path::PathBuf;

pub mod daemon_executor;
pub mod directory;
pub mod executor;
pub mod metadata_cache;
pub mod native;
pub mod registry;
pub mod script;
pub mod tester;

pub use directory::{AgentEntry, ListError, list};
pub use executor::{ExecutorConfig, LocalExecutor};
pub use metadata_cache::MetadataCache;
pub use native::NativeDummy;
pub use registry::AgentRegistry;
pub use script::{RawRun, ScriptAgent};

/// The agents' root: `$OCF_ROOT` when set and non-empty, else `/usr/lib/ocf`.
pub fn ocf_root() -> PathBuf {
    std::env::var_os(ocf_resources::env::OCF_ROOT)
        .filter(|v| !v.is_empty())
        .map_or_else(
            || PathBuf::from(ocf_resources::env::DEFAULT_OCF_ROOT),
            PathBuf::from,
        )
}
