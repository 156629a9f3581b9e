//! The bridge's memory across restarts: which incidents it has handled (so none is applied
//! twice) and which Slurm nodes it holds DOWN (so it resumes only its own, once the node has
//! left the view and come back). One small JSON file, replaced atomically on every change.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How many handled incidents are remembered (the oldest are forgotten first; the fence
/// history a restarted bridge reads is far shorter).
pub const MAX_HANDLED: usize = 4096;

/// A file the ledger could not read or write.
#[derive(Debug, thiserror::Error)]
#[error("slurm bridge state file {path}: {reason}")]
#[non_exhaustive]
pub struct LedgerError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub reason: String,
}

/// A DOWN that ocf set on a Slurm node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// The incident that caused it.
    pub incident: String,
    /// Whether the node has been seen out of the view since (a node is resumed only when it
    /// comes back, never while the view still holds its old self).
    pub absent_seen: bool,
}

/// What the bridge remembers.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Ledger {
    handled: VecDeque<String>,
    holds: BTreeMap<String, Hold>,
    #[serde(skip)]
    path: Option<PathBuf>,
}

impl Ledger {
    /// The ledger kept at `path` (empty when the file does not exist yet).
    ///
    /// # Errors
    /// A file that exists but cannot be read or parsed (it is never silently reset: that
    /// would apply old incidents again).
    pub fn load(path: &Path) -> Result<Self, LedgerError> {
        let err = |reason: String| LedgerError {
            path: path.to_owned(),
            reason,
        };
        let mut ledger = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice::<Self>(&bytes).map_err(|e| {
                err(format!(
                    "not a bridge state file ({e}); move it away to start afresh"
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::default(),
            Err(e) => return Err(err(e.to_string())),
        };
        ledger.path = Some(path.to_owned());
        Ok(ledger)
    }

    /// A ledger kept in memory only.
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// Whether `incident` was handled already.
    pub fn handled(&self, incident: &str) -> bool {
        self.handled.iter().any(|i| i == incident)
    }

    /// Remembers `incident` as handled.
    pub fn mark_handled(&mut self, incident: &str) {
        if !self.handled(incident) {
            self.handled.push_back(incident.to_owned());
            while self.handled.len() > MAX_HANDLED {
                self.handled.pop_front();
            }
        }
    }

    /// The holds ocf has on Slurm nodes.
    pub fn holds(&self) -> &BTreeMap<String, Hold> {
        &self.holds
    }

    /// Remembers a hold on `node`.
    pub fn hold(&mut self, node: &str, hold: Hold) {
        self.holds.insert(node.to_owned(), hold);
    }

    /// Marks `node`'s hold as having seen the node out of the view; true if it changed.
    pub fn saw_absent(&mut self, node: &str) -> bool {
        match self.holds.get_mut(node) {
            Some(h) if !h.absent_seen => {
                h.absent_seen = true;
                true
            }
            _ => false,
        }
    }

    /// Forgets the hold on `node`.
    pub fn release(&mut self, node: &str) {
        self.holds.remove(node);
    }

    /// Writes the file (a temporary beside it, then a rename); nothing for an in-memory one.
    ///
    /// # Errors
    /// The file could not be written.
    pub fn save(&self) -> Result<(), LedgerError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let err = |reason: String| LedgerError {
            path: path.clone(),
            reason,
        };
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| err(e.to_string()))?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes).map_err(|e| err(format!("writing {}: {e}", tmp.display())))?;
        std::fs::rename(&tmp, path).map_err(|e| err(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_restart_and_refuses_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bridge.json");
        let mut l = Ledger::load(&path).unwrap();
        l.mark_handled("n3@left-view-4.1.0");
        l.hold(
            "n3",
            Hold {
                incident: "n3@left-view-4.1.0".into(),
                absent_seen: true,
            },
        );
        l.save().unwrap();
        let l = Ledger::load(&path).unwrap();
        assert!(l.handled("n3@left-view-4.1.0"));
        assert!(!l.handled("n3@left-view-5.1.0"));
        assert_eq!(l.holds().len(), 1);
        std::fs::write(&path, "{not json").unwrap();
        let e = Ledger::load(&path).unwrap_err();
        assert!(e.to_string().contains("bridge.json"), "{e}");
    }
}
