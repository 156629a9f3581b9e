//! Time, supplied by the harness so the suites need no runtime of their own.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use async_trait::async_trait;

/// A source of delays: tokio's `sleep`, a simulator's virtual clock, or anything else.
#[async_trait]
pub trait Clock: Send + Sync {
    /// Completes after `duration`.
    async fn sleep(&self, duration: Duration);

    /// The time since a fixed point of the clock's choosing, when it can tell; suites use it
    /// only to report how long operations took. The default cannot tell.
    fn now(&self) -> Option<Duration> {
        None
    }
}

/// Runs `work` until it completes or `limit` passes on `clock`; `None` on time-out.
///
/// The work is polled first, so work that is already done wins over a zero limit.
pub async fn timeout<F: Future>(clock: &dyn Clock, limit: Duration, work: F) -> Option<F::Output> {
    let mut work = pin!(work);
    let mut alarm = clock.sleep(limit);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        match alarm.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}
