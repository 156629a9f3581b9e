//! A client of a node daemon's fencer: implements [`Fencer`] over the daemon's local socket
//! (the `fence`, `fence_history` and `fence_subscribe` lines of
//! [`local_api`](crate::membership::daemon::local_api)), so any process on the node asks the
//! fencer the daemon serves.
//!
//! Each call opens its own connection (a subscription keeps its own for its life). Errors are
//! the typed [`FenceError`] the daemon's fencer gave (`Failed` with its record, `NotQuorate`,
//! `NoDevice`, `Refused`, `TimedOut`, ...); a socket that cannot be reached, a daemon that
//! hangs up without an answer, and a reply that cannot be read are
//! [`FenceError::Unavailable`] naming the socket. Connecting, sending and (for `history` and
//! `subscribe`) the answer have a deadline ([`DEFAULT_TIMEOUT`]); a `fence` waits for its
//! outcome as long as the request's own timeout allows, plus a grace.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use ocf_core::NodeName;
use ocf_fencing::{
    FenceError, FenceEvent, FenceEventStream, FenceRecord, FenceRequest, Fencer, HistoryFilter,
};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::membership::daemon::local_api::{
    FENCE_REPLY_GRACE, FenceReply, MAX_FENCE_TIMEOUT, Request,
};
use crate::membership::daemon::reply_line::{ReplyLineError, read_reply_line};

/// How long connecting and sending a request may take, and how long `history` and
/// `subscribe` wait for their answer, by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A [`Fencer`] backed by a node daemon's socket.
#[derive(Debug, Clone)]
pub struct DaemonFencer {
    path: PathBuf,
    timeout: Duration,
}

impl DaemonFencer {
    /// A client of the daemon at `path` (nothing is connected until a call), with the
    /// [`DEFAULT_TIMEOUT`].
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same client, giving connecting, sending, and the answers of `history` and
    /// `subscribe` `timeout` (a `fence` waits as long as its request's timeout allows).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn unavailable(&self, what: impl std::fmt::Display) -> FenceError {
        FenceError::unavailable(format!("node daemon at {}: {what}", self.path.display()))
    }

    /// The nodes the daemon's own fence devices can fence, sorted ("what machines can you
    /// reset?"; the `fence_targets` line), with the errors of devices that could not say.
    /// Waits the client's timeout plus the daemon's
    /// [`FENCE_TARGETS_TIMEOUT`](crate::membership::daemon::local_api::FENCE_TARGETS_TIMEOUT).
    pub async fn targets(&self) -> Result<(Vec<NodeName>, Vec<String>), FenceError> {
        let mut lines = self.open(&Request::FenceTargets).await?;
        let wait = self.timeout + crate::membership::daemon::local_api::FENCE_TARGETS_TIMEOUT;
        let reply = self
            .deadline(wait, "waiting for the device targets", lines.one())
            .await?;
        let targets = reply
            .targets
            .ok_or_else(|| self.unavailable("a targets reply without targets"))?;
        Ok((targets, reply.target_errors))
    }

    fn io_unavailable(&self, what: &str, e: std::io::Error) -> FenceError {
        FenceError::Unavailable {
            reason: format!("node daemon at {}: {what}: {e}", self.path.display()),
            source: Some(std::sync::Arc::new(e)),
        }
    }

    /// Runs `f` within `limit`, or fails as unavailable saying what did not finish.
    async fn deadline<T>(
        &self,
        limit: Duration,
        what: &str,
        f: impl Future<Output = Result<T, FenceError>>,
    ) -> Result<T, FenceError> {
        tokio::time::timeout(limit, f).await.unwrap_or_else(|_| {
            Err(self.unavailable(format!(
                "{what} did not finish within {} ms",
                limit.as_millis()
            )))
        })
    }

    /// Connects and sends `request`, within the deadline.
    async fn open(&self, request: &Request) -> Result<Lines, FenceError> {
        self.deadline(self.timeout, "connecting and sending the request", async {
            let stream = crate::membership::daemon::local_socket::connect(&self.path)
                .await
                .map_err(|e| {
                    self.io_unavailable(
                        "cannot connect (is the node daemon for this socket running?)",
                        e,
                    )
                })?;
            let (r, mut w) = stream.into_split();
            let mut line = serde_json::to_vec(request)
                .map_err(|e| self.unavailable(format!("cannot encode the request: {e}")))?;
            line.push(b'\n');
            let written = w.write_all(&line).await;
            let mut lines = Lines {
                path: self.path.clone(),
                reader: BufReader::new(r),
                _writer: w,
            };
            if let Err(e) = written {
                // A daemon that refused this client (busy) said why before hanging up.
                return Err(match lines.next().await {
                    Err(said) => said,
                    Ok(_) => self.io_unavailable("cannot send the request", e),
                });
            }
            Ok(lines)
        })
        .await
    }
}

/// The reply lines of one connection.
struct Lines {
    path: PathBuf,
    reader: BufReader<OwnedReadHalf>,
    /// Kept open so the daemon does not take the half-close for a hang-up.
    _writer: OwnedWriteHalf,
}

impl Lines {
    fn unavailable(&self, what: impl std::fmt::Display) -> FenceError {
        FenceError::unavailable(format!("node daemon at {}: {what}", self.path.display()))
    }

    /// The next reply, `ok` or not; `Ok(None)` at end of stream.
    async fn raw(&mut self) -> Result<Option<FenceReply>, FenceError> {
        let line = match read_reply_line(&mut self.reader).await {
            Ok(Some(line)) => line,
            Ok(None) => return Ok(None),
            Err(ReplyLineError::Broke(e)) => {
                return Err(FenceError::Unavailable {
                    reason: format!(
                        "node daemon at {}: connection broke: {e}",
                        self.path.display()
                    ),
                    source: Some(std::sync::Arc::new(e)),
                });
            }
            Err(e) => return Err(self.unavailable(e)),
        };
        serde_json::from_slice(&line)
            .map(Some)
            .map_err(|e| self.unavailable(format!("unreadable reply: {e}")))
    }

    /// The next `ok` reply; an error reply is its typed error. `Ok(None)` at end of stream.
    async fn next(&mut self) -> Result<Option<FenceReply>, FenceError> {
        let Some(reply) = self.raw().await? else {
            return Ok(None);
        };
        if reply.ok {
            return Ok(Some(reply));
        }
        if let Some(e) = reply.fence_error {
            return Err(e);
        }
        // A line of the daemon itself (busy, a request it could not read): no typed error.
        Err(self.unavailable(format!(
            "the daemon refused the request: {}",
            reply.error.as_deref().unwrap_or("no reason given")
        )))
    }

    /// The one answer of a request.
    async fn one(&mut self) -> Result<FenceReply, FenceError> {
        self.next().await?.ok_or_else(|| self.hung_up())
    }

    /// The error for a connection the daemon closed without a word: it stopped or crashed.
    fn hung_up(&self) -> FenceError {
        self.unavailable(
            "the daemon closed the connection without an answer (it stopped or crashed)",
        )
    }
}

#[async_trait]
impl Fencer for DaemonFencer {
    async fn fence(&self, request: FenceRequest) -> Result<FenceRecord, FenceError> {
        let wait = request.timeout.min(MAX_FENCE_TIMEOUT) + FENCE_REPLY_GRACE * 2;
        let mut lines = self.open(&Request::Fence { request }).await?;
        let reply = self
            .deadline(wait, "waiting for the fence's outcome", lines.one())
            .await?;
        reply
            .record
            .ok_or_else(|| self.unavailable("a fence reply without a record"))
    }

    async fn history(&self, filter: &HistoryFilter) -> Result<Vec<FenceRecord>, FenceError> {
        let request = Request::FenceHistory {
            filter: filter.clone(),
        };
        let mut lines = self.open(&request).await?;
        let reply = self
            .deadline(self.timeout, "waiting for the history", lines.one())
            .await?;
        reply
            .records
            .ok_or_else(|| self.unavailable("a history reply without records"))
    }

    async fn subscribe(&self) -> Result<Box<dyn FenceEventStream>, FenceError> {
        let mut lines = self.open(&Request::FenceSubscribe).await?;
        self.deadline(self.timeout, "subscribing", lines.one())
            .await?;
        Ok(Box::new(DaemonEventStream {
            lines,
            state: StreamState::Open,
        }))
    }
}

/// Where a [`DaemonEventStream`] is.
#[derive(Debug, Clone)]
enum StreamState {
    Open,
    /// The daemon said `end`: `Ok(None)` for ever.
    Ended,
    /// The stream failed with this error; it is over.
    Failed(FenceError),
}

/// A fence subscription over the daemon's socket.
///
/// It keeps the [`FenceEventStream`] contract: the daemon's `end` line is `Ok(None)`, then
/// `Ok(None)` for ever; a lag is one [`FenceError::Lagged`] and the stream goes on; any other
/// error (the fencer's, or a connection closed without `end`: the daemon crashed) ends it, and
/// every later call answers that error again.
pub struct DaemonEventStream {
    lines: Lines,
    state: StreamState,
}

impl std::fmt::Debug for DaemonEventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonEventStream")
            .field("path", &self.lines.path)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl FenceEventStream for DaemonEventStream {
    async fn next_event(&mut self) -> Result<Option<FenceEvent>, FenceError> {
        match &self.state {
            StreamState::Open => {}
            StreamState::Ended => return Ok(None),
            StreamState::Failed(e) => return Err(e.clone()),
        }
        let failed = |this: &mut Self, e: FenceError| {
            this.state = StreamState::Failed(e.clone());
            Err(e)
        };
        let reply = match self.lines.next().await {
            Ok(Some(reply)) => reply,
            Ok(None) => {
                let e = self.lines.unavailable(
                    "the daemon closed the fence subscription without its end line (it crashed)",
                );
                return failed(self, e);
            }
            Err(e @ FenceError::Lagged { .. }) => return Err(e),
            Err(e) => return failed(self, e),
        };
        if reply.end {
            self.state = StreamState::Ended;
            return Ok(None);
        }
        if let Some(event) = reply.fence_event {
            return Ok(Some(event));
        }
        let e = self
            .lines
            .unavailable("a fence subscription line without an event");
        failed(self, e)
    }
}
