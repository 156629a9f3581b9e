//! A client of a node daemon: implements [`Membership`] over the local socket, so any process
//! on the node shares the daemon's one membership.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use ocf_core::NodeId;
use ocf_membership::{Membership, MembershipError, MembershipEvent, Subscription, View};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedReadHalf;

use super::local_api::{MAX_LINE, Reply, Request};

/// A [`Membership`] backed by a node daemon's socket.
#[derive(Debug, Clone)]
pub struct DaemonClient {
    path: PathBuf,
}

impl DaemonClient {
    /// A client of the daemon at `path` (nothing is connected until a call).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn engine(&self) -> String {
        format!("ocf node daemon at {}", self.path.display())
    }

    async fn open(&self, request: &Request) -> Result<Lines, MembershipError> {
        let stream = UnixStream::connect(&self.path).await.map_err(|e| {
            let reason = format!("{e}; is `ocf node` running with this config?");
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                MembershipError::PermissionDenied {
                    engine: self.engine(),
                    reason,
                }
            } else {
                MembershipError::Unavailable {
                    engine: self.engine(),
                    reason,
                }
            }
        })?;
        let (r, mut w) = stream.into_split();
        let mut line = serde_json::to_vec(request).map_err(|e| self.protocol(&e.to_string()))?;
        line.push(b'\n');
        w.write_all(&line).await.map_err(|e| self.unavailable(&e))?;
        // The write half stays open inside `Lines` so the daemon keeps the stream alive.
        Ok(Lines {
            engine: self.engine(),
            reader: BufReader::new(r),
            _writer: w,
        })
    }

    fn protocol(&self, reason: &str) -> MembershipError {
        MembershipError::Protocol {
            engine: self.engine(),
            reason: reason.to_owned(),
        }
    }

    fn unavailable(&self, e: &std::io::Error) -> MembershipError {
        MembershipError::Unavailable {
            engine: self.engine(),
            reason: e.to_string(),
        }
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
        let mut line = String::new();
        let n = (&mut self.reader)
            .take(MAX_LINE as u64)
            .read_line(&mut line)
            .await
            .map_err(|e| MembershipError::Unavailable {
                engine: self.engine.clone(),
                reason: e.to_string(),
            })?;
        if n == 0 {
            return Ok(None);
        }
        let reply: Reply =
            serde_json::from_str(line.trim()).map_err(|e| MembershipError::Protocol {
                engine: self.engine.clone(),
                reason: format!("unreadable reply: {e}"),
            })?;
        if !reply.ok {
            if let Some(missed) = reply.missed {
                return Err(MembershipError::Lagged { missed });
            }
            return Err(MembershipError::Protocol {
                engine: self.engine.clone(),
                reason: reply.error.unwrap_or_else(|| "unspecified error".into()),
            });
        }
        Ok(Some(reply))
    }

    async fn one(&mut self) -> Result<Reply, MembershipError> {
        self.next().await?.ok_or_else(|| MembershipError::Closed {
            engine: self.engine.clone(),
        })
    }
}

#[async_trait]
impl Membership for DaemonClient {
    async fn local_node(&self) -> Result<NodeId, MembershipError> {
        let reply = self.open(&Request::LocalNode).await?.one().await?;
        reply
            .node_id
            .ok_or_else(|| self.protocol("local_node reply without node_id"))
    }

    async fn current_view(&self) -> Result<Option<View>, MembershipError> {
        Ok(self.open(&Request::View).await?.one().await?.view)
    }

    async fn subscribe(&self) -> Result<Box<dyn Subscription>, MembershipError> {
        let mut lines = self.open(&Request::Subscribe).await?;
        let first = lines.one().await?;
        Ok(Box::new(ClientSubscription {
            initial: first.view,
            lines,
            last_seq: None,
        }))
    }
}

/// A subscription over the daemon's socket.
#[derive(Debug)]
pub struct ClientSubscription {
    initial: Option<View>,
    lines: Lines,
    last_seq: Option<u64>,
}

#[async_trait]
impl Subscription for ClientSubscription {
    fn initial_view(&self) -> Option<&View> {
        self.initial.as_ref()
    }

    async fn next_event(&mut self) -> Result<Option<MembershipEvent>, MembershipError> {
        let Some(reply) = self.lines.next().await? else {
            return Err(MembershipError::Closed {
                engine: self.lines.engine.clone(),
            });
        };
        if reply.end {
            return Ok(None);
        }
        let event = reply.event.ok_or_else(|| MembershipError::Protocol {
            engine: self.lines.engine.clone(),
            reason: "subscription line without event".into(),
        })?;
        // The daemon promises gapless numbers; a gap means events were lost on the way.
        if let Some(last) = self.last_seq
            && event.seq != last + 1
        {
            return Err(MembershipError::Lagged {
                missed: event.seq.saturating_sub(last + 1),
            });
        }
        self.last_seq = Some(event.seq);
        Ok(Some(event))
    }
}
