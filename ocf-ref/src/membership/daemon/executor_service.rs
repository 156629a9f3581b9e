//! The daemon's executor requests (`exec_*`, see [`ExecRequest`]) answered by the executor
//! it owns: the node's one local resource manager, shared by every client.
//!
//! Operations belong to the executor, not to the connection: an `exec_execute` runs in its
//! own task, so a client that hangs up while it waits frees its connection at once and the
//! operation still runs, into the resource's history and to every subscriber. The daemon
//! bounds what clients can pile up (resources, recurring operations, an operation's timeout;
//! see [`local_api`](super::local_api)); a request past a bound is `invalid_request` saying
//! which.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use ocf_resources::executor::{ExecutorAdmin, Operation, RecurringId};
use ocf_resources::{ResourceError, ResultStream};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;

use super::local_api::{
    ExecReply, ExecRequest, MAX_EXEC_RECURRING, MAX_EXEC_RESOURCES, MAX_EXEC_TIMEOUT,
};
use super::write_reply;

/// The executor a daemon serves, with the bookkeeping that bounds it.
pub(super) struct ServedExecutor {
    executor: Arc<dyn ExecutorAdmin>,
    /// Each registered resource's recurring operations started through the socket.
    books: Mutex<BTreeMap<String, BTreeSet<RecurringId>>>,
}

impl ServedExecutor {
    /// Serves `executor`.
    pub(super) fn new(executor: Arc<dyn ExecutorAdmin>) -> Self {
        Self {
            executor,
            books: Mutex::new(BTreeMap::new()),
        }
    }

    fn books(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, BTreeMap<String, BTreeSet<RecurringId>>>, ResourceError>
    {
        self.books.lock().map_err(|_| ResourceError::Closed {
            what: "the node daemon's executor".into(),
        })
    }
}

/// The error of a daemon that serves no executor.
fn no_executor() -> ResourceError {
    ResourceError::Closed {
        what: "this node daemon's executor (it serves none)".into(),
    }
}

fn too_many(what: &str, limit: usize) -> ResourceError {
    ResourceError::InvalidRequest {
        reason: format!("the node daemon's executor takes at most {limit} {what}"),
    }
}

fn capped(mut operation: Operation) -> Operation {
    operation.timeout = operation.timeout.min(MAX_EXEC_TIMEOUT);
    operation
}

/// What the connection does after a request.
pub(super) enum Flow {
    /// Read the next request.
    Continue,
    /// The connection is over (a subscription ended, the client hung up).
    Close,
}

/// Answers one executor request on the connection; a subscription keeps it until the end.
pub(super) async fn handle(
    served: Option<&Arc<ServedExecutor>>,
    request: ExecRequest,
    stopping: watch::Receiver<bool>,
    reader: &mut BufReader<OwnedReadHalf>,
    w: &mut OwnedWriteHalf,
) -> std::io::Result<Flow> {
    let Some(served) = served else {
        write_reply(w, &ExecReply::error(&no_executor())).await?;
        return Ok(match request {
            ExecRequest::ExecSubscribe => Flow::Close,
            _ => Flow::Continue,
        });
    };
    let reply = match request {
        ExecRequest::ExecSubscribe => {
            subscribe(served, stopping, reader, w).await?;
            return Ok(Flow::Close);
        }
        ExecRequest::ExecExecute {
            resource,
            operation,
        } => match execute(served, resource, capped(operation), reader).await {
            Some(reply) => reply,
            None => return Ok(Flow::Close),
        },
        other => answer(served, other).await,
    };
    write_reply(w, &reply).await?;
    Ok(Flow::Continue)
}

/// The one-line answers.
async fn answer(served: &ServedExecutor, request: ExecRequest) -> ExecReply {
    let exec = &served.executor;
    let done = |r: Result<(), ResourceError>| match r {
        Ok(()) => ExecReply::ok(),
        Err(e) => ExecReply::error(&e),
    };
    match request {
        ExecRequest::ExecRegister { resource } => {
            let name = resource.name.clone();
            let full = served
                .books()
                .map(|b| b.len() >= MAX_EXEC_RESOURCES && !b.contains_key(&name));
            match full {
                Err(e) => return ExecReply::error(&e),
                Ok(true) => return ExecReply::error(&too_many("resources", MAX_EXEC_RESOURCES)),
                Ok(false) => {}
            }
            let r = exec.register(resource).await;
            if r.is_ok()
                && let Ok(mut b) = served.books()
            {
                b.insert(name, BTreeSet::new());
            }
            done(r)
        }
        ExecRequest::ExecUnregister { name } => {
            let r = exec.unregister(&name).await;
            if r.is_ok()
                && let Ok(mut b) = served.books()
            {
                b.remove(&name);
            }
            done(r)
        }
        ExecRequest::ExecResources => match exec.resources().await {
            Ok(resources) => ExecReply {
                resources: Some(resources),
                ..ExecReply::ok()
            },
            Err(e) => ExecReply::error(&e),
        },
        ExecRequest::ExecStartRecurring {
            resource,
            operation,
        } => {
            let count = served
                .books()
                .map(|b| b.values().map(BTreeSet::len).sum::<usize>());
            match count {
                Err(e) => return ExecReply::error(&e),
                Ok(n) if n >= MAX_EXEC_RECURRING => {
                    return ExecReply::error(&too_many("recurring operations", MAX_EXEC_RECURRING));
                }
                Ok(_) => {}
            }
            match exec.start_recurring(&resource, capped(operation)).await {
                Ok(id) => {
                    if let Ok(mut b) = served.books() {
                        b.entry(resource).or_default().insert(id);
                    }
                    ExecReply {
                        recurring: Some(id),
                        ..ExecReply::ok()
                    }
                }
                Err(e) => ExecReply::error(&e),
            }
        }
        ExecRequest::ExecCancelRecurring { resource, id } => {
            let r = exec.cancel_recurring(&resource, id).await;
            if r.is_ok()
                && let Ok(mut b) = served.books()
                && let Some(ids) = b.get_mut(&resource)
            {
                ids.remove(&id);
            }
            done(r)
        }
        ExecRequest::ExecHistory { resource } => match exec.history(&resource).await {
            Ok(history) => ExecReply {
                history: Some(history),
                ..ExecReply::ok()
            },
            Err(e) => ExecReply::error(&e),
        },
        // Handled by the caller; answered here only for completeness.
        ExecRequest::ExecExecute { .. } | ExecRequest::ExecSubscribe => {
            ExecReply::error(&ResourceError::InvalidRequest {
                reason: "not a one-line request".into(),
            })
        }
    }
}

/// Runs one operation in its own task and waits for it; `None`: the client hung up while it
/// waited (the operation runs on, into the history).
async fn execute(
    served: &ServedExecutor,
    resource: String,
    operation: Operation,
    reader: &mut BufReader<OwnedReadHalf>,
) -> Option<ExecReply> {
    let exec = Arc::clone(&served.executor);
    let name = resource.clone();
    let task = tokio::spawn(async move { exec.execute(&resource, operation).await });
    tokio::pin!(task);
    let mut watching = true;
    let answer = loop {
        tokio::select! {
            answer = &mut task => break answer,
            read = reader.fill_buf(), if watching => match read {
                Ok([]) | Err(_) => {
                    tracing::debug!(resource = %name,
                        "executor client hung up before its result; the operation goes on");
                    return None;
                }
                // The next request, sent early: stop watching rather than spin.
                Ok(_) => watching = false,
            },
        }
    };
    Some(match answer {
        Ok(Ok(result)) => ExecReply {
            result: Some(result),
            ..ExecReply::ok()
        },
        Ok(Err(e)) => ExecReply::error(&e),
        Err(_) => ExecReply::error(&ResourceError::Closed {
            what: format!("the node daemon's executor (running an operation on {name})"),
        }),
    })
}

/// Streams the executor's results until the server stops (the `end` line), the executor's
/// stream ends or fails, or the client hangs up; a lag is reported and streaming goes on.
async fn subscribe(
    served: &ServedExecutor,
    mut stopping: watch::Receiver<bool>,
    reader: &mut BufReader<OwnedReadHalf>,
    w: &mut OwnedWriteHalf,
) -> std::io::Result<()> {
    let mut stream: Box<dyn ResultStream> = match served.executor.subscribe().await {
        Ok(s) => s,
        Err(e) => return write_reply(w, &ExecReply::error(&e)).await,
    };
    write_reply(w, &ExecReply::ok()).await?;
    let end = ExecReply {
        end: true,
        ..ExecReply::ok()
    };
    let mut scratch = [0u8; 512];
    loop {
        let next = {
            let result = stream.next_result();
            tokio::pin!(result);
            loop {
                tokio::select! {
                    r = &mut result => break r,
                    () = stopped(&mut stopping) => {
                        return write_reply(w, &end).await;
                    }
                    n = reader.read(&mut scratch) => match n {
                        Ok(0) | Err(_) => return Ok(()),
                        Ok(_) => {}
                    },
                }
            }
        };
        let reply = match next {
            Ok(Some(result)) => ExecReply {
                result: Some(result),
                ..ExecReply::ok()
            },
            Ok(None) => return write_reply(w, &end).await,
            Err(e @ ResourceError::Lagged { .. }) => ExecReply::error(&e),
            Err(e) => return write_reply(w, &ExecReply::error(&e)).await,
        };
        write_reply(w, &reply).await?;
    }
}

/// Returns once the server stops (or is gone).
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns must not live across an await of the caller.
    let _ = stopping.wait_for(|stop| *stop).await.map(|_| ());
}
