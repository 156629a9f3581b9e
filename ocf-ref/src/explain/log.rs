//! A node's incident log: the newest [`MAX_NOTES`] notes, in memory and in
//! `<state dir>/incidents.jsonl` (one JSON note a line), so they survive a restart of the
//! daemon. The file is appended to and rewritten with the newest notes once it holds twice
//! the bound; a line that does not parse (a torn write at a crash) is skipped on reading.

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::record::Note;

/// How many notes a node keeps.
pub const MAX_NOTES: usize = 2000;

/// Why the log could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("incident log {path}: {source}")]
pub struct IncidentLogError {
    /// The file or directory.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

/// A node's bounded, on-disk incident log.
#[derive(Debug)]
pub struct IncidentLog {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    notes: VecDeque<Note>,
    lines_in_file: usize,
}

impl IncidentLog {
    /// Opens (creating, mode 0700) `dir` and reads the notes kept there.
    pub fn open(dir: &Path) -> Result<Self, IncidentLogError> {
        let err = |path: &Path| {
            let path = path.to_owned();
            move |source| IncidentLogError { path, source }
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode_0700()
            .create(dir)
            .map_err(err(dir))?;
        let path = dir.join("incidents.jsonl");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(err(&path)(e)),
        };
        let lines_in_file = text.lines().count();
        let mut notes: VecDeque<Note> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        while notes.len() > MAX_NOTES {
            notes.pop_front();
        }
        Ok(Self {
            path,
            state: Mutex::new(State {
                notes,
                lines_in_file,
            }),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps `note` (a failure to write the file is logged; the note stays in memory).
    pub fn append(&self, note: Note) {
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        if s.notes.len() >= MAX_NOTES {
            s.notes.pop_front();
        }
        let line = serde_json::to_string(&note);
        s.notes.push_back(note);
        let written = if s.lines_in_file + 1 >= 2 * MAX_NOTES {
            self.rewrite(&s.notes)
                .map(|()| s.lines_in_file = s.notes.len())
        } else {
            line.map_err(std::io::Error::other)
                .and_then(|line| {
                    let mut f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&self.path)?;
                    writeln!(f, "{line}")
                })
                .map(|()| s.lines_in_file += 1)
        };
        if let Err(e) = written {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot write the incident log");
        }
    }

    fn rewrite(&self, notes: &VecDeque<Note>) -> std::io::Result<()> {
        let tmp = self.path.with_extension("jsonl.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        for n in notes {
            let line = serde_json::to_string(n).map_err(std::io::Error::other)?;
            writeln!(f, "{line}")?;
        }
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)
    }

    /// Every note kept, oldest first.
    pub fn notes(&self) -> Vec<Note> {
        self.state
            .lock()
            .map(|s| s.notes.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// `DirBuilder::mode(0o700)` as a chainable call.
trait Mode0700 {
    fn mode_0700(&mut self) -> &mut Self;
}

impl Mode0700 for std::fs::DirBuilder {
    fn mode_0700(&mut self) -> &mut Self {
        use std::os::unix::fs::DirBuilderExt;
        self.mode(0o700)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::record::{NoteKind, Recovery};

    #[test]
    fn notes_survive_a_reopen_and_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let log = IncidentLog::open(&dir.path().join("state")).unwrap();
        for i in 0..(2 * MAX_NOTES + 10) {
            log.append(Note::now(NoteKind::Recovery(Recovery::new(
                format!("i{i}"),
                "r",
                "n1",
                Some(0),
                "t",
            ))));
        }
        assert_eq!(log.notes().len(), MAX_NOTES);
        let again = IncidentLog::open(&dir.path().join("state")).unwrap();
        assert_eq!(again.notes(), log.notes());
        let lines = std::fs::read_to_string(log.path()).unwrap().lines().count();
        assert!(lines < 2 * MAX_NOTES, "{lines} lines on disk");
    }
}
