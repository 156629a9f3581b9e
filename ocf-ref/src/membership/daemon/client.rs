//! A client of a node daemon: implements [`Membership`] over the local socket, so any process
//! on the node shares the daemon's one membership.
//!
//! Every call has a deadline ([`DEFAULT_TIMEOUT`], or [`DaemonClient::with_timeout`]): connecting,
//! sending the request and reading the answer (for a subscription: its first line, the view)
//! must finish within it, else the call fails with [`MembershipError::TimedOut`] naming the
//! socket. A stuck daemon, or one whose listen queue is full, never hangs a client. Events of
//! a subscription have no deadline: a stable cluster may be quiet for days.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use ocf_core::NodeId;
use ocf_membership::{Membership, MembershipError, MembershipEvent, Subscription, View};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedReadHalf;

use crate::membership::daemon::local_api::{DaemonStats, Reply, Request};
use crate::membership::daemon::reply_line::{ReplyLineError, read_reply_line};

/// How long a call may take by default: connect, request and answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A [`Membership`] backed by a node daemon's socket.
#[derive(Debug, Clone)]
pub struct DaemonClient {
    path: PathBuf,
    timeout: Duration,
}

impl DaemonClient {
    /// A client of the daemon at `path` (nothing is connected until a call), with the
    /// [`DEFAULT_TIMEOUT`].
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same client, giving each call `timeout` (connect, request and answer).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The deadline of each call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The daemon's counters: its clients, and the built-in engine's packets sent, received
    /// and rejected by reason.
    pub async fn stats(&self) -> Result<DaemonStats, MembershipError> {
        let reply = self.call(&Request::Stats).await?;
        reply
            .stats
            .ok_or_else(|| self.protocol("stats reply without stats"))
    }

    /// Sends `request` and reads its one answer, within the deadline.
    async fn call(&self, request: &Request) -> Result<Reply, MembershipError> {
        self.deadline(async { self.open(request).await?.one().await })
            .await
    }

    /// Runs `f` within the deadline, or fails with [`MembershipError::TimedOut`].
    async fn deadline<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, MembershipError>>,
    ) -> Result<T, MembershipError> {
        tokio::time::timeout(self.timeout, f)
            .await
            .unwrap_or_else(|_| {
                Err(MembershipError::TimedOut {
                    engine: self.engine(),
                    after_ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
                })
            })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn engine(&self) -> String {
        format!("node daemon at {}", self.path.display())
    }

    async fn open(&self, request: &Request) -> Result<Lines, MembershipError> {
        let stream = crate::membership::daemon::local_socket::connect(&self.path)
            .await
            .map_err(|e| {
                let reason =
                    format!("cannot connect ({e}); is the node daemon for this socket running?");
                if e.kind() == std::io::ErrorKind::PermissionDenied {
                    MembershipError::permission_denied(self.engine(), reason).with_cause(e)
                } else {
                    MembershipError::unavailable(self.engine(), reason).with_cause(e)
                }
            })?;
        let (r, mut w) = stream.into_split();
        let mut line = serde_json::to_vec(request).map_err(|e| {
            MembershipError::protocol(self.engine(), format!("cannot encode the request: {e}"))
                .with_cause(e)
        })?;
        line.push(b'\n');
        let written = w.write_all(&line).await;
        // The write half stays open inside `Lines` so the daemon keeps the stream alive.
        let mut lines = Lines {
            engine: self.engine(),
            reader: BufReader::new(r),
            _writer: w,
        };
        if let Err(e) = written {
            // A daemon that refused this client (busy) said why before hanging up.
            return Err(match lines.next().await {
                Err(said) => said,
                Ok(_) => MembershipError::unavailable(
                    self.engine(),
                    format!("cannot send the request: {e}"),
                )
                .with_cause(e),
            });
        }
        Ok(lines)
    }

    fn protocol(&self, reason: &str) -> MembershipError {
        MembershipError::protocol(self.engine(), reason)
    }
}

struct Lines {
    engine: String,
    reader: BufReader<OwnedReadHalf>,
    _writer: tokio::net::unix::OwnedWriteHalf,
}

impl std::fmt::Debug for Lines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lines")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

impl Lines {
    /// The next reply; `Ok(None)` at end of stream.
    async fn next(&mut self) -> Result<Option<Reply>, MembershipError> {
        let line = match read_reply_line(&mut self.reader).await {
            Ok(Some(line)) => line,
            Ok(None) => return Ok(None),
            Err(ReplyLineError::Broke(e)) => {
                return Err(MembershipError::unavailable(
                    &self.engine,
                    format!("connection broke: {e}"),
                )
                .with_cause(e));
            }
            Err(e) => return Err(MembershipError::protocol(&self.engine, e.to_string())),
        };
        let reply: Reply = serde_json::from_slice(&line).map_err(|e| {
            MembershipError::protocol(&self.engine, format!("unreadable reply: {e}")).with_cause(e)
        })?;
        if !reply.ok {
            if let Some(missed) = reply.missed {
                return Err(MembershipError::Lagged { missed });
            }
            if reply.busy {
                return Err(MembershipError::unavailable(
                    &self.engine,
                    reply.error.unwrap_or_else(|| "busy".into()),
                ));
            }
            return Err(MembershipError::protocol(
                &self.engine,
                reply.error.unwrap_or_else(|| "unspecified error".into()),
            ));
        }
        Ok(Some(reply))
    }

    async fn one(&mut self) -> Result<Reply, MembershipError> {
        self.next().await?.ok_or_else(|| self.hung_up())
    }

    /// The error for a connection the daemon closed without a word: it stopped or crashed.
    fn hung_up(&self) -> MembershipError {
        MembershipError::unavailable(
            &self.engine,
            "the daemon closed the connection without an answer (it stopped or crashed)",
        )
    }
}

#[async_trait]
impl Membership for DaemonClient {
    async fn local_node(&self) -> Result<NodeId, MembershipError> {
        let reply = self.call(&Request::LocalNode).await?;
        reply
            .node_id
            .ok_or_else(|| self.protocol("local_node reply without node_id"))
    }

    async fn current_view(&self) -> Result<Option<View>, MembershipError> {
        Ok(self.call(&Request::View).await?.view)
    }

    async fn subscribe(&self) -> Result<Box<dyn Subscription>, MembershipError> {
        let (lines, first) = self
            .deadline(async {
                let mut lines = self.open(&Request::Subscribe).await?;
                let first = lines.one().await?;
                Ok((lines, first))
            })
            .await?;
        Ok(Box::new(ClientSubscription {
            initial: first.view,
            lines,
            last_seq: None,
            pending: None,
            ended: false,
        }))
    }
}

/// A subscription over the daemon's socket.
///
/// It keeps the [`Subscription`] contract: the daemon's `end` line is `Ok(None)`, then
/// `Ok(None)` for ever; a lag (the daemon's, or a gap in `seq` seen here) is one
/// [`MembershipError::Lagged`] and the stream goes on; a connection closed without `end` (the
/// daemon crashed) is [`MembershipError::Unavailable`], and the stream is over.
#[derive(Debug)]
pub struct ClientSubscription {
    initial: Option<View>,
    lines: Lines,
    last_seq: Option<u64>,
    /// The event after a gap, held back while the gap is reported.
    pending: Option<MembershipEvent>,
    ended: bool,
}

#[async_trait]
impl Subscription for ClientSubscription {
    fn initial_view(&self) -> Option<&View> {
        self.initial.as_ref()
    }

    async fn next_event(&mut self) -> Result<Option<MembershipEvent>, MembershipError> {
        if self.ended {
            return Ok(None);
        }
        if let Some(event) = self.pending.take() {
            self.last_seq = Some(event.seq);
            return Ok(Some(event));
        }
        let reply = match self.lines.next().await {
            Ok(Some(reply)) => reply,
            Ok(None) => return Err(self.lines.hung_up()),
            Err(MembershipError::Lagged { missed }) => {
                // The daemon goes on after the gap; so do we, counting from the next event.
                self.last_seq = None;
                return Err(MembershipError::Lagged { missed });
            }
            Err(e) => return Err(e),
        };
        if reply.end {
            self.ended = true;
            return Ok(None);
        }
        let event = reply.event.ok_or_else(|| {
            MembershipError::protocol(&self.lines.engine, "subscription line without event")
        })?;
        // The daemon promises gapless numbers; a gap means events were lost on the way.
        if let Some(last) = self.last_seq
            && event.seq != last + 1
        {
            let missed = event.seq.saturating_sub(last + 1);
            self.pending = Some(event);
            return Err(MembershipError::Lagged { missed });
        }
        self.last_seq = Some(event.seq);
        Ok(Some(event))
    }
}
