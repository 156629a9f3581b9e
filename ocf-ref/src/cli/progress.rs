//! Progress of long CLI work on stderr, never on stdout (which carries the data): text lines
//! (`[  1.2 s /  120 s] fence: ...`) or, with `--json`, JSON lines
//! `{"progress": phase, "message": ..., "elapsed_ms": N, "deadline_ms": N}`.

use std::time::{Duration, Instant};

use ocf_core::NodeName;
use ocf_fencing::{FenceEvent, FenceRecord, Fencer};

/// Where long work reports how it goes.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    json: bool,
    started: Instant,
    deadline: Option<Duration>,
}

impl Progress {
    /// Progress from now, as JSON lines when `json`, against `deadline` when given.
    pub fn new(json: bool, deadline: Option<Duration>) -> Self {
        Self {
            json,
            started: Instant::now(),
            deadline,
        }
    }

    /// One line: `phase` (a word, such as `quorum` or `fence`) and what is happening.
    pub fn say(&self, phase: &str, message: &str) {
        let elapsed = self.started.elapsed();
        if self.json {
            let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
            let line = serde_json::json!({
                "progress": phase,
                "message": message,
                "elapsed_ms": ms(elapsed),
                "deadline_ms": self.deadline.map(ms),
            });
            eprintln!("{line}");
        } else {
            let of = self
                .deadline
                .map_or_else(String::new, |d| format!(" / {:>4.0} s", d.as_secs_f64()));
            eprintln!("[{:>6.1} s{of}] {phase}: {message}", elapsed.as_secs_f64());
        }
    }
}

/// How often a wait with nothing new says it still waits.
const STILL_WAITING: Duration = Duration::from_secs(5);

fn attempts(record: &FenceRecord) -> String {
    let executors: Vec<String> = record
        .executions
        .iter()
        .map(|e| format!("#{} on {}", e.attempt, e.node))
        .collect();
    let devices: usize = record.levels.iter().map(|l| l.attempts.len()).sum();
    format!(
        "{} execution(s) [{}], {devices} device attempt(s)",
        record.executions.len(),
        executors.join(", ")
    )
}

/// Shows `event` when it is about `target`; true for its `Finished`.
fn report(progress: &Progress, target: &NodeName, event: &FenceEvent) -> bool {
    match event {
        FenceEvent::Started { record } if &record.target == target => {
            progress.say(
                "fence",
                &format!(
                    "{} of {} started (record #{}{}): {}",
                    record.action,
                    target,
                    record.id,
                    record
                        .incident
                        .as_ref()
                        .map(|i| format!(", incident {i}"))
                        .unwrap_or_default(),
                    attempts(record)
                ),
            );
            false
        }
        FenceEvent::Finished { record } if &record.target == target => {
            progress.say(
                "fence",
                &format!(
                    "{} of {} finished: {:?} after {}",
                    record.action,
                    target,
                    record.outcome,
                    attempts(record)
                ),
            );
            true
        }
        FenceEvent::NodeDeath { death } if &death.target == target => {
            progress.say(
                "fence",
                &format!(
                    "node-death event for {target} (incident {})",
                    death.incident
                ),
            );
            false
        }
        _ => false,
    }
}

/// Runs `work` (a fence of `target` through `fencer`), reporting the fencer's events about
/// `target` (started, each attempt and retry as the record shows them, finished) and, every
/// few seconds of silence, that it still waits.
pub async fn fencing<T>(
    progress: &Progress,
    fencer: &dyn Fencer,
    target: &NodeName,
    work: impl Future<Output = T>,
) -> T {
    let stream = tokio::time::timeout(Duration::from_secs(2), fencer.subscribe()).await;
    let Ok(Ok(mut stream)) = stream else {
        return work.await;
    };
    tokio::pin!(work);
    let mut following = true;
    let mut started = false;
    let mut finished = false;
    loop {
        tokio::select! {
            done = &mut work => {
                // The outcome's own events travel beside the answer: show the ones already
                // on their way (briefly), so the progress ends with how it ended. An answer
                // from history (no incident started for it) has none coming: no wait.
                let until = tokio::time::Instant::now() + Duration::from_millis(300);
                while following && started && !finished {
                    match tokio::time::timeout_at(until, stream.next_event()).await {
                        Ok(Ok(Some(ev))) => finished = report(progress, target, &ev),
                        _ => break,
                    }
                }
                return done;
            }
            ev = stream.next_event(), if following => match ev {
                Ok(Some(ev)) => {
                    started |= matches!(&ev, FenceEvent::Started { record } if &record.target == target);
                    finished |= report(progress, target, &ev);
                }
                Err(ocf_fencing::FenceError::Lagged { .. }) => {}
                Ok(None) | Err(_) => following = false,
            },
            () = tokio::time::sleep(STILL_WAITING) => {
                progress.say("fence", &format!("still waiting for the fence of {target}"));
            }
        }
    }
}
