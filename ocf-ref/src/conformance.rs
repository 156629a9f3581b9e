//! What the reference implementation needs to run the `ocf-conformance` suites: a [`Clock`]
//! on tokio's timer.

use std::time::Duration;

use async_trait::async_trait;
use ocf_conformance::Clock;

/// The suites' clock on tokio: `sleep` is `tokio::time::sleep`, `now` the time since creation.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    started: tokio::time::Instant,
}

impl TokioClock {
    /// A clock whose `now` counts from this moment.
    pub fn new() -> Self {
        Self {
            started: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Clock for TokioClock {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }

    fn now(&self) -> Option<Duration> {
        Some(self.started.elapsed())
    }
}
