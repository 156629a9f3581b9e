//! A client of a node daemon's executor: implements [`Executor`] and [`ExecutorAdmin`] over
//! the daemon's local socket (the `exec_*` lines of
//! [`local_api`](crate::membership::daemon::local_api)), so a cluster manager in another
//! process registers resources, runs operations and recurring monitors, reads history and
//! follows results through the node.
//!
//! The resources and their operations belong to the daemon: a client that exits cancels
//! nothing, and the next client finds the resources, their recurring monitors and their
//! history. Each call opens its own connection (a subscription keeps its own for its life).
//! Errors are the typed [`ResourceError`] the daemon's executor gave (same
//! [`kind`](ResourceError::kind)); a socket that cannot be reached, a daemon that hangs up
//! without an answer, and a reply that cannot be read are [`ResourceError::Closed`] naming
//! the socket. Connecting, sending and every answer but `execute`'s have a deadline
//! ([`DEFAULT_TIMEOUT`]); `execute` waits for the operation's timeout plus
//! [`EXECUTE_GRACE`] (queueing behind the resource's other operations included).
//!
//! A subscription reads its connection all the time into a bounded buffer
//! ([`DaemonExecutor::with_subscriber_buffer`]); a reader that falls further behind gets one
//! [`ResourceError::Lagged`] and then the results after the gap, as the in-process executor's
//! streams do.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use ocf_resources::ResourceError;
use ocf_resources::executor::{
    Executor, ExecutorAdmin, Operation, OperationResult, RecurringId, ResourceSpec, ResultStream,
};
use serde::Serialize;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::membership::daemon::local_api::{ExecReply, ExecRequest, MAX_EXEC_TIMEOUT};
use crate::membership::daemon::reply_line::read_reply_line;

/// How long connecting, sending and a one-line answer may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long past an operation's own timeout `execute` waits for its result (the operation
/// may queue behind others on its resource).
pub const EXECUTE_GRACE: Duration = Duration::from_secs(60);
/// How many results a subscription keeps for a reader that does not keep up, by default.
pub const DEFAULT_SUBSCRIBER_BUFFER: usize = 4096;

/// An [`ExecutorAdmin`] backed by a node daemon's socket.
#[derive(Debug, Clone)]
pub struct DaemonExecutor {
    path: PathBuf,
    timeout: Duration,
    buffer: usize,
}

impl DaemonExecutor {
    /// A client of the daemon at `path` (nothing is connected until a call), with the
    /// [`DEFAULT_TIMEOUT`] and [`DEFAULT_SUBSCRIBER_BUFFER`].
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            timeout: DEFAULT_TIMEOUT,
            buffer: DEFAULT_SUBSCRIBER_BUFFER,
        }
    }

    /// The same client, giving connecting, sending and one-line answers `timeout`.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The same client, keeping up to `n` (at least 1) results for a subscriber that does not
    /// read.
    #[must_use]
    pub fn with_subscriber_buffer(mut self, n: usize) -> Self {
        self.buffer = n.max(1);
        self
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn closed(&self, what: impl std::fmt::Display) -> ResourceError {
        closed_at(&self.path, what)
    }

    async fn deadline<T>(
        &self,
        limit: Duration,
        what: &str,
        f: impl Future<Output = Result<T, ResourceError>>,
    ) -> Result<T, ResourceError> {
        tokio::time::timeout(limit, f).await.unwrap_or_else(|_| {
            Err(self.closed(format!(
                "{what} did not finish within {} ms",
                limit.as_millis()
            )))
        })
    }

    /// Connects and sends `request`, within the deadline.
    async fn open(&self, request: &ExecRequest) -> Result<Lines, ResourceError> {
        self.deadline(self.timeout, "connecting and sending the request", async {
            let stream = crate::membership::daemon::local_socket::connect(&self.path)
                .await
                .map_err(|e| {
                    self.closed(format!(
                        "cannot connect ({e}); is the node daemon for this socket running?"
                    ))
                })?;
            let (r, mut w) = stream.into_split();
            let line = encode(request).map_err(|e| self.closed(e))?;
            let written = w.write_all(&line).await;
            let mut lines = Lines {
                path: self.path.clone(),
                reader: BufReader::new(r),
                _writer: w,
            };
            if let Err(e) = written {
                return Err(match lines.next().await {
                    Err(said) => said,
                    Ok(_) => self.closed(format!("cannot send the request: {e}")),
                });
            }
            Ok(lines)
        })
        .await
    }

    /// One request, one answer within `limit`.
    async fn call(
        &self,
        request: &ExecRequest,
        limit: Duration,
    ) -> Result<ExecReply, ResourceError> {
        let mut lines = self.open(request).await?;
        self.deadline(limit, "waiting for the answer", lines.one())
            .await
    }
}

fn closed_at(path: &Path, what: impl std::fmt::Display) -> ResourceError {
    ResourceError::Closed {
        what: format!("the node daemon's executor at {} ({what})", path.display()),
    }
}

fn encode<T: Serialize>(request: &T) -> Result<Vec<u8>, String> {
    let mut line =
        serde_json::to_vec(request).map_err(|e| format!("cannot encode the request: {e}"))?;
    line.push(b'\n');
    Ok(line)
}

/// The reply lines of one connection.
struct Lines {
    path: PathBuf,
    reader: BufReader<OwnedReadHalf>,
    /// Kept open so the daemon does not take the half-close for a hang-up.
    _writer: OwnedWriteHalf,
}

impl Lines {
    /// The next `ok` reply; an error reply is its typed error; `Ok(None)` at end of stream.
    async fn next(&mut self) -> Result<Option<ExecReply>, ResourceError> {
        let line = match read_reply_line(&mut self.reader).await {
            Ok(Some(line)) => line,
            Ok(None) => return Ok(None),
            Err(e) => return Err(closed_at(&self.path, e)),
        };
        let reply: ExecReply = serde_json::from_slice(&line)
            .map_err(|e| closed_at(&self.path, format!("unreadable reply: {e}")))?;
        if reply.ok {
            return Ok(Some(reply));
        }
        if let Some(e) = reply.exec_error {
            return Err(e.into_error());
        }
        Err(closed_at(
            &self.path,
            format!(
                "the daemon refused the request: {}",
                reply.error.as_deref().unwrap_or("no reason given")
            ),
        ))
    }

    async fn one(&mut self) -> Result<ExecReply, ResourceError> {
        self.next().await?.ok_or_else(|| {
            closed_at(
                &self.path,
                "the daemon closed the connection without an answer (it stopped or crashed)",
            )
        })
    }
}

#[async_trait]
impl Executor for DaemonExecutor {
    async fn execute(
        &self,
        resource: &str,
        operation: Operation,
    ) -> Result<OperationResult, ResourceError> {
        let wait = operation.timeout.min(MAX_EXEC_TIMEOUT) + EXECUTE_GRACE;
        let request = ExecRequest::ExecExecute {
            resource: resource.to_owned(),
            operation,
        };
        self.call(&request, wait)
            .await?
            .result
            .ok_or_else(|| self.closed("an execute reply without a result"))
    }

    async fn start_recurring(
        &self,
        resource: &str,
        operation: Operation,
    ) -> Result<RecurringId, ResourceError> {
        let request = ExecRequest::ExecStartRecurring {
            resource: resource.to_owned(),
            operation,
        };
        self.call(&request, self.timeout)
            .await?
            .recurring
            .ok_or_else(|| self.closed("a start_recurring reply without an id"))
    }

    async fn cancel_recurring(&self, resource: &str, id: RecurringId) -> Result<(), ResourceError> {
        let request = ExecRequest::ExecCancelRecurring {
            resource: resource.to_owned(),
            id,
        };
        self.call(&request, self.timeout).await.map(|_| ())
    }

    async fn history(&self, resource: &str) -> Result<Vec<OperationResult>, ResourceError> {
        let request = ExecRequest::ExecHistory {
            resource: resource.to_owned(),
        };
        self.call(&request, self.timeout)
            .await?
            .history
            .ok_or_else(|| self.closed("a history reply without a history"))
    }

    async fn subscribe(&self) -> Result<Box<dyn ResultStream>, ResourceError> {
        let mut lines = self.open(&ExecRequest::ExecSubscribe).await?;
        self.deadline(self.timeout, "subscribing", lines.one())
            .await?;
        let buffer = std::sync::Arc::new(Buffer {
            cap: self.buffer,
            state: std::sync::Mutex::new(BufferState {
                items: std::collections::VecDeque::new(),
                missed: 0,
            }),
            ready: tokio::sync::Notify::new(),
        });
        let (close, closed) = tokio::sync::oneshot::channel();
        tokio::spawn(pump(lines, std::sync::Arc::clone(&buffer), closed));
        Ok(Box::new(DaemonResultStream {
            buffer,
            _close: close,
            state: StreamState::Open,
        }))
    }
}

#[async_trait]
impl ExecutorAdmin for DaemonExecutor {
    async fn register(&self, resource: ResourceSpec) -> Result<(), ResourceError> {
        self.call(&ExecRequest::ExecRegister { resource }, self.timeout)
            .await
            .map(|_| ())
    }

    async fn unregister(&self, name: &str) -> Result<(), ResourceError> {
        let request = ExecRequest::ExecUnregister {
            name: name.to_owned(),
        };
        self.call(&request, self.timeout).await.map(|_| ())
    }

    async fn resources(&self) -> Result<Vec<ResourceSpec>, ResourceError> {
        self.call(&ExecRequest::ExecResources, self.timeout)
            .await?
            .resources
            .ok_or_else(|| self.closed("a resources reply without resources"))
    }
}

/// One item of a subscription's buffer.
enum Item {
    Result(OperationResult),
    End,
    Failed(ResourceError),
}

/// A subscription's buffer, shared by its pump and its reader: like a broadcast channel's
/// slot of one receiver, it keeps the newest `cap` results and counts the ones it dropped.
struct Buffer {
    cap: usize,
    state: std::sync::Mutex<BufferState>,
    ready: tokio::sync::Notify,
}

struct BufferState {
    items: std::collections::VecDeque<Item>,
    missed: u64,
}

impl Buffer {
    fn push(&self, item: Item) {
        if let Ok(mut s) = self.state.lock() {
            if matches!(item, Item::Result(_)) && s.items.len() >= self.cap {
                s.items.pop_front();
                s.missed += 1;
            }
            s.items.push_back(item);
        }
        self.ready.notify_one();
    }

    fn lagged(&self, missed: u64) {
        if let Ok(mut s) = self.state.lock() {
            s.missed = s.missed.saturating_add(missed);
        }
        self.ready.notify_one();
    }

    /// The next item: a lag first when results were dropped.
    async fn pop(&self) -> Result<Item, u64> {
        loop {
            {
                let Ok(mut s) = self.state.lock() else {
                    return Ok(Item::Failed(ResourceError::Closed {
                        what: "the node daemon's executor subscription".into(),
                    }));
                };
                if s.missed > 0 {
                    return Err(std::mem::take(&mut s.missed));
                }
                if let Some(item) = s.items.pop_front() {
                    return Ok(item);
                }
            }
            self.ready.notified().await;
        }
    }
}

/// Reads the subscription's lines into `buffer` until the end, a failure, or the reader is
/// gone (`closed` resolves).
async fn pump(
    mut lines: Lines,
    buffer: std::sync::Arc<Buffer>,
    mut closed: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        let next = tokio::select! {
            n = lines.next() => n,
            _ = &mut closed => return,
        };
        let item = match next {
            Ok(Some(reply)) if reply.end => Item::End,
            Ok(Some(reply)) => match reply.result {
                Some(r) => Item::Result(r),
                None => Item::Failed(closed_at(
                    &lines.path,
                    "a subscription line without a result",
                )),
            },
            Ok(None) => Item::Failed(closed_at(
                &lines.path,
                "the daemon closed the subscription without its end line (it crashed)",
            )),
            Err(ResourceError::Lagged { missed }) => {
                buffer.lagged(missed);
                continue;
            }
            Err(e) => Item::Failed(e),
        };
        let last = !matches!(item, Item::Result(_));
        buffer.push(item);
        if last {
            return;
        }
    }
}

#[derive(Debug, Clone)]
enum StreamState {
    Open,
    Ended,
    Failed(ResourceError),
}

/// A result subscription over the daemon's socket.
///
/// It keeps the [`ResultStream`] contract: the daemon's `end` line is `Ok(None)`, then
/// `Ok(None)` for ever; a lag (the daemon's, or this side's buffer overflowing) is one
/// [`ResourceError::Lagged`] and the stream goes on; a connection closed without `end` (the
/// daemon crashed) is [`ResourceError::Closed`], and every later call answers it again.
pub struct DaemonResultStream {
    buffer: std::sync::Arc<Buffer>,
    /// Dropped with the stream: the pump then stops and the connection closes.
    _close: tokio::sync::oneshot::Sender<()>,
    state: StreamState,
}

impl std::fmt::Debug for DaemonResultStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonResultStream")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl ResultStream for DaemonResultStream {
    async fn next_result(&mut self) -> Result<Option<OperationResult>, ResourceError> {
        match &self.state {
            StreamState::Open => {}
            StreamState::Ended => return Ok(None),
            StreamState::Failed(e) => return Err(e.clone()),
        }
        match self.buffer.pop().await {
            Ok(Item::Result(r)) => Ok(Some(r)),
            Err(missed) => Err(ResourceError::Lagged { missed }),
            Ok(Item::End) => {
                self.state = StreamState::Ended;
                Ok(None)
            }
            Ok(Item::Failed(e)) => {
                self.state = StreamState::Failed(e.clone());
                Err(e)
            }
        }
    }
}
