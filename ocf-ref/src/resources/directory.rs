//! Listing the installed agents: `$OCF_ROOT/resource.d/<provider>/<type>`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ocf_resources::{AgentId, AgentIdError};
use serde::Serialize;

/// One installed agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AgentEntry {
    /// Its id.
    pub id: AgentId,
    /// The file.
    pub path: PathBuf,
    /// True when the file has an execute bit (a file without one cannot run).
    pub executable: bool,
}

/// Why the agents cannot be listed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListError {
    /// The agent directory cannot be read.
    #[error("cannot read agent directory {path}: {source}; set OCF_ROOT to where resource.d is (now {root})", root = .root.display(), path = .path.display())]
    Unreadable {
        /// The OCF root used.
        root: PathBuf,
        /// The directory that failed.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The provider filter is not a safe directory name (`../../etc`, `a/b`): refused, so
    /// listing never reads outside `resource.d`.
    #[error(transparent)]
    BadProvider(#[from] AgentIdError),
}

/// The agent file for `id` under `root`.
pub fn agent_path(root: &Path, id: &AgentId) -> PathBuf {
    root.join("resource.d")
        .join(id.provider())
        .join(id.agent_type())
}

/// Lists the agents under `root/resource.d`, of one provider or all, sorted by id. Hidden
/// files (`.ocf-shellfuncs`) and directories are skipped; symlinks are followed. A provider
/// filter must be a safe name ([`check_provider`](ocf_resources::agent_id::check_provider)).
pub fn list(root: &Path, provider: Option<&str>) -> Result<Vec<AgentEntry>, ListError> {
    if let Some(p) = provider {
        ocf_resources::agent_id::check_provider(p)?;
    }
    let base = root.join("resource.d");
    let err = |path: &Path, source| ListError::Unreadable {
        root: root.to_path_buf(),
        path: path.to_path_buf(),
        source,
    };
    let mut providers = Vec::new();
    if let Some(p) = provider {
        providers.push(p.to_owned());
    } else {
        for entry in std::fs::read_dir(&base).map_err(|e| err(&base, e))? {
            let entry = entry.map_err(|e| err(&base, e))?;
            if entry.path().is_dir() {
                providers.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    let mut agents = Vec::new();
    for p in providers {
        let dir = base.join(&p);
        for entry in std::fs::read_dir(&dir).map_err(|e| err(&dir, e))? {
            let entry = entry.map_err(|e| err(&dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(id) = AgentId::new(p.clone(), name) else {
                continue; // hidden helpers and odd names are not agents
            };
            let path = entry.path();
            let Ok(meta) = std::fs::metadata(&path) else {
                continue; // a dangling symlink
            };
            if !meta.is_file() {
                continue;
            }
            agents.push(AgentEntry {
                id,
                path,
                executable: meta.permissions().mode() & 0o111 != 0,
            });
        }
    }
    agents.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(agents)
}
