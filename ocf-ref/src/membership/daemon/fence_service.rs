//! The daemon's fencing requests: `fence`, `fence_history` and `fence_subscribe` answered by
//! the fencer it serves (see [`local_api`](super::local_api) for the lines).
//!
//! A client that hangs up is noticed at once (end of file on the read half) and its
//! connection freed; the fencer's incident is not cancelled: the fencer runs it in its own
//! task and keeps its record, this side only stops waiting.

use std::sync::Arc;

use ocf_core::NodeName;
use ocf_fencing::{FenceDevice, FenceError, FenceRequest, Fencer, HistoryFilter};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;

use super::local_api::{FENCE_REPLY_GRACE, FENCE_TARGETS_TIMEOUT, FenceReply, MAX_FENCE_TIMEOUT};
use super::write_reply;

/// The error of a daemon that serves no fencer.
fn no_fencer() -> FenceError {
    FenceError::unavailable(
        "this node daemon serves no fencer (its membership only); ask a daemon that runs the \
         cluster fencer",
    )
}

/// Asks the fencer and waits for its answer, at most the request's timeout (capped at
/// [`MAX_FENCE_TIMEOUT`]) plus [`FENCE_REPLY_GRACE`]. `None`: the client hung up while it
/// waited (the incident carries on in the fencer).
pub(super) async fn fence(
    fencer: Option<&Arc<dyn Fencer>>,
    mut request: FenceRequest,
    reader: &mut BufReader<OwnedReadHalf>,
) -> Option<FenceReply> {
    let Some(fencer) = fencer else {
        return Some(FenceReply::error(no_fencer()));
    };
    request.timeout = request.timeout.min(MAX_FENCE_TIMEOUT);
    let wait = request.timeout + FENCE_REPLY_GRACE;
    let target = request.target.clone();
    let action = request.action;
    let requester = request.requester.clone();
    let timeout_ms = u64::try_from(request.timeout.as_millis()).unwrap_or(u64::MAX);
    let answer = {
        let call = tokio::time::timeout(wait, fencer.fence(request));
        tokio::pin!(call);
        let mut watching = true;
        loop {
            tokio::select! {
                answer = &mut call => break answer,
                // Bytes already buffered or arriving: `fill_buf` answers at once without
                // consuming them, so stop watching (they are the next request) rather than spin.
                read = reader.fill_buf(), if watching => match read {
                    Ok([]) | Err(_) => {
                        tracing::info!(%target, %action, %requester,
                            "fence requester hung up before the outcome; the incident goes on");
                        return None;
                    }
                    Ok(_) => watching = false,
                },
            }
        }
    };
    Some(match answer {
        Ok(Ok(record)) => FenceReply {
            record: Some(record),
            ..FenceReply::ok()
        },
        Ok(Err(e)) => FenceReply::error(e),
        // The fencer did not answer even past the request's timeout: answer for it.
        Err(_) => FenceReply::error(FenceError::TimedOut {
            target,
            action,
            timeout_ms,
        }),
    })
}

/// The fencer's history, or its error.
pub(super) async fn history(
    fencer: Option<&Arc<dyn Fencer>>,
    filter: &HistoryFilter,
) -> FenceReply {
    let Some(fencer) = fencer else {
        return FenceReply::error(no_fencer());
    };
    match fencer.history(filter).await {
        Ok(records) => FenceReply {
            records: Some(records),
            ..FenceReply::ok()
        },
        Err(e) => FenceReply::error(e),
    }
}

/// The nodes `devices` can fence, sorted and each once: configured host lists as they are,
/// the other devices asked (at once, each within [`FENCE_TARGETS_TIMEOUT`]). A device that
/// cannot answer is named in `target_errors`; the others still count.
pub(super) async fn targets(
    fencer: Option<&Arc<dyn Fencer>>,
    devices: &[Arc<dyn FenceDevice>],
) -> FenceReply {
    if fencer.is_none() {
        return FenceReply::error(no_fencer());
    }
    let mut asks = tokio::task::JoinSet::new();
    for device in devices {
        let device = Arc::clone(device);
        asks.spawn(async move {
            let id = device.id().clone();
            (id, device.list_targets(FENCE_TARGETS_TIMEOUT).await)
        });
    }
    let mut targets: Vec<NodeName> = Vec::new();
    let mut target_errors = Vec::new();
    while let Some(joined) = asks.join_next().await {
        match joined {
            Ok((_, Ok(nodes))) => targets.extend(nodes),
            Ok((id, Err(e))) => {
                tracing::warn!(device = %id, error = %e, "fence device could not list its targets");
                target_errors.push(e.to_string());
            }
            Err(e) => target_errors.push(format!("listing a device's targets failed: {e}")),
        }
    }
    targets.sort();
    targets.dedup();
    target_errors.sort();
    FenceReply {
        targets: Some(targets),
        target_errors,
        ..FenceReply::ok()
    }
}

/// Streams the fencer's events until its stream ends or fails, the server stops (both end
/// with the `end` line) or the client hangs up; a lag is reported and streaming goes on.
pub(super) async fn subscribe(
    fencer: Option<&Arc<dyn Fencer>>,
    mut stopping: watch::Receiver<bool>,
    mut reader: BufReader<OwnedReadHalf>,
    mut w: OwnedWriteHalf,
) -> std::io::Result<()> {
    let Some(fencer) = fencer else {
        return write_reply(&mut w, &FenceReply::error(no_fencer())).await;
    };
    let mut stream = match fencer.subscribe().await {
        Ok(s) => s,
        Err(e) => return write_reply(&mut w, &FenceReply::error(e)).await,
    };
    write_reply(&mut w, &FenceReply::ok()).await?;
    let end = FenceReply {
        end: true,
        ..FenceReply::ok()
    };
    let mut scratch = [0u8; 512];
    loop {
        let next = {
            let event = stream.next_event();
            tokio::pin!(event);
            loop {
                tokio::select! {
                    e = &mut event => break e,
                    () = stopped(&mut stopping) => {
                        return write_reply(&mut w, &end).await;
                    }
                    n = reader.read(&mut scratch) => match n {
                        // The client hung up (or broke): free its slot now.
                        Ok(0) | Err(_) => return Ok(()),
                        // Bytes after `fence_subscribe` mean nothing; read and drop them.
                        Ok(_) => {}
                    },
                }
            }
        };
        let reply = match next {
            Ok(Some(event)) => FenceReply {
                fence_event: Some(event),
                ..FenceReply::ok()
            },
            Ok(None) => return write_reply(&mut w, &end).await,
            // A lag is reported and the stream goes on after the gap.
            Err(e @ FenceError::Lagged { .. }) => FenceReply::error(e),
            Err(e) => return write_reply(&mut w, &FenceReply::error(e)).await,
        };
        write_reply(&mut w, &reply).await?;
    }
}

/// Returns once the server stops (or is gone).
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns must not live across an await of the caller.
    let _ = stopping.wait_for(|stop| *stop).await.map(|_| ());
}
