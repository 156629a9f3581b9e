//! The client side of a node's incident log: `incident_note` and `incident_notes` over the
//! daemon's socket, and the explanation of an incident as one node gives it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ocf_fencing::{Fencer, HistoryFilter};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::record::{Explanation, Note, explain, last_incident};
use crate::fencing::daemon_fencer::DaemonFencer;
use crate::membership::daemon::local_api::{NotesReply, Request};
use crate::membership::daemon::reply_line::read_reply_line;

/// How long one exchange with a node may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a node's record could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExplainError {
    /// The node could not be asked, or refused.
    #[error("node daemon at {path}: {reason}")]
    Node {
        /// Its socket.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The node's fencer could not give its history.
    #[error("node daemon at {path}: fence history: {source}")]
    History {
        /// Its socket.
        path: PathBuf,
        /// Why.
        source: ocf_fencing::FenceError,
    },
    /// Neither `--last` found an incident nor does the node know the one named.
    #[error("node daemon at {path} knows no incident {incident}")]
    Unknown {
        /// Its socket.
        path: PathBuf,
        /// The incident asked for (`the last one` for `--last`).
        incident: String,
    },
}

async fn exchange(path: &Path, request: &Request) -> Result<NotesReply, ExplainError> {
    let fail = |reason: String| ExplainError::Node {
        path: path.to_owned(),
        reason,
    };
    let io = async {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|e| fail(format!("cannot connect: {e}")))?;
        let (r, mut w) = stream.into_split();
        let mut line = serde_json::to_vec(request).map_err(|e| fail(e.to_string()))?;
        line.push(b'\n');
        w.write_all(&line)
            .await
            .map_err(|e| fail(format!("cannot send: {e}")))?;
        let answer = read_reply_line(&mut BufReader::new(r))
            .await
            .map_err(|e| fail(e.to_string()))?
            .ok_or_else(|| fail("the daemon closed the connection without an answer".into()))?;
        let reply: NotesReply =
            serde_json::from_slice(&answer).map_err(|e| fail(format!("unreadable reply: {e}")))?;
        if !reply.ok {
            return Err(fail(reply.error.unwrap_or_else(|| "refused".into())));
        }
        Ok(reply)
    };
    tokio::time::timeout(TIMEOUT, io)
        .await
        .unwrap_or_else(|_| Err(fail(format!("no answer within {TIMEOUT:?}"))))
}

/// Keeps `note` in the incident log of the node at `path`.
pub async fn note(path: &Path, note: Note) -> Result<(), ExplainError> {
    exchange(path, &Request::IncidentNote { note })
        .await
        .map(|_| ())
}

/// The notes of the node at `path`.
pub async fn notes(path: &Path) -> Result<Vec<Note>, ExplainError> {
    Ok(exchange(path, &Request::IncidentNotes)
        .await?
        .notes
        .unwrap_or_default())
}

/// The explanation of `incident` (the newest one when `None`) as the node at `path` gives it.
pub async fn explain_at(path: &Path, incident: Option<&str>) -> Result<Explanation, ExplainError> {
    let notes = notes(path).await?;
    let records = DaemonFencer::new(path)
        .history(&HistoryFilter::all())
        .await
        .map_err(|source| ExplainError::History {
            path: path.to_owned(),
            source,
        })?;
    let unknown = |incident: &str| ExplainError::Unknown {
        path: path.to_owned(),
        incident: incident.to_owned(),
    };
    let name = match incident {
        Some(i) => i.to_owned(),
        None => last_incident(&notes, &records).ok_or_else(|| unknown("(the last one)"))?,
    };
    explain(&name, &notes, &records).ok_or_else(|| unknown(&name))
}
