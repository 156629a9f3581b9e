//! Finding the agent for an id: native agents first, then scripts under the OCF root.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ocf_resources::{AgentId, ResourceAgent, ResourceError};

use crate::process;
use crate::resources::ScriptAgent;
use crate::resources::directory::agent_path;

/// Where an executor gets its agents. One [`ScriptAgent`] per id is kept and shared, so its
/// meta-data is read once however many resources use it.
pub struct AgentRegistry {
    root: PathBuf,
    kill_grace: Duration,
    output_limit: usize,
    native: Mutex<HashMap<AgentId, Arc<dyn ResourceAgent>>>,
    scripts: Mutex<HashMap<AgentId, Arc<ScriptAgent>>>,
}

impl std::fmt::Debug for AgentRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let native: Vec<String> = self
            .native
            .lock()
            .map(|m| m.keys().map(ToString::to_string).collect())
            .unwrap_or_default();
        f.debug_struct("AgentRegistry")
            .field("root", &self.root)
            .field("native", &native)
            .finish_non_exhaustive()
    }
}

impl AgentRegistry {
    /// A registry of the scripts under `root` and no native agents.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            kill_grace: process::DEFAULT_KILL_GRACE,
            output_limit: process::DEFAULT_OUTPUT_LIMIT,
            native: Mutex::new(HashMap::new()),
            scripts: Mutex::new(HashMap::new()),
        }
    }

    /// A registry of the scripts under `$OCF_ROOT` (default `/usr/lib/ocf`).
    pub fn from_env() -> Self {
        Self::new(super::ocf_root())
    }

    /// Sets the `SIGTERM`→`SIGKILL` grace for script agents created from now on.
    #[must_use]
    pub fn with_kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }

    /// Sets the output bound for script agents created from now on.
    #[must_use]
    pub fn with_output_limit(mut self, bytes: usize) -> Self {
        self.output_limit = bytes;
        self
    }

    /// The OCF root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Adds a native agent under its own id (it shadows a script of the same id).
    pub fn add_native(&self, agent: Arc<dyn ResourceAgent>) {
        if let Ok(mut m) = self.native.lock() {
            m.insert(agent.id().clone(), agent);
        }
    }

    /// The agent for `id`: a native one, else the script when its file exists.
    pub fn resolve(&self, id: &AgentId) -> Result<Arc<dyn ResourceAgent>, ResourceError> {
        if let Some(a) = self.native.lock().ok().and_then(|m| m.get(id).cloned()) {
            return Ok(a);
        }
        let path = agent_path(&self.root, id);
        if !path.exists() {
            return Err(ResourceError::AgentNotFound {
                agent: id.clone(),
                looked_in: format!("no native agent and no file {}", path.display()),
            });
        }
        let mut scripts = self.scripts.lock().map_err(|_| ResourceError::Closed {
            what: "agent registry (a thread panicked holding it)".to_owned(),
        })?;
        let agent = scripts.entry(id.clone()).or_insert_with(|| {
            Arc::new(
                ScriptAgent::new(&self.root, id.clone())
                    .with_kill_grace(self.kill_grace)
                    .with_output_limit(self.output_limit),
            )
        });
        Ok(agent.clone())
    }
}
