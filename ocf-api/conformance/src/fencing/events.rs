//! The fencer suite's event checks: order, end and lag, as [`FenceEventStream`] documents them.

use ocf_core::NodeName;
use ocf_fencing::{
    FenceAction, FenceError, FenceErrorKind, FenceEvent, FenceEventStream, FenceRecord, FencerAdmin,
};

use super::fencer::{FencerHarness, FencerRun, node};
use crate::{CheckOutcome, timeout};

const EVENTS: &str =
    "a subscriber sees an incident Started, then Finished with the record its requester got";
const STREAM_END: &str =
    "once the fencer shuts down, a subscription answers Ok(None), and again Ok(None)";
const LAG: &str =
    "a subscriber that falls behind gets Lagged { missed } once, then the events after the gap";

/// What a subscription gave the suite.
enum Subscribed {
    Stream(Box<dyn FenceEventStream>),
    /// The fencer declared it has no events (`NotImplemented`, `Unsupported`).
    Unsupported(String),
}

async fn subscribe(f: &dyn FencerAdmin) -> Result<Subscribed, String> {
    match f.subscribe().await {
        Ok(s) => Ok(Subscribed::Stream(s)),
        Err(e) if e.kind() == FenceErrorKind::Unsupported => {
            Ok(Subscribed::Unsupported(e.to_string()))
        }
        Err(e) => Err(format!("subscribe(): {e}")),
    }
}

impl FencerRun<'_> {
    /// The next event, or why there was none in time.
    async fn next(
        &self,
        stream: &mut dyn FenceEventStream,
    ) -> Result<Result<Option<FenceEvent>, FenceError>, String> {
        let limit = self.options.request_timeout;
        timeout(self.clock.as_ref(), limit, stream.next_event())
            .await
            .ok_or_else(|| format!("no event within {} ms", ocf_core::millis::as_millis(limit)))
    }

    /// Fences `target` with a fresh device; the record its requester got.
    async fn fence_once(
        &self,
        f: &dyn FencerAdmin,
        target: &NodeName,
        device: &str,
    ) -> Result<FenceRecord, String> {
        self.register(f, self.device(device, &[target])?).await?;
        self.fence(f, target, FenceAction::Off, 0)
            .await?
            .map_err(|e| format!("fencing {target} failed: {e}"))
    }

    pub(super) async fn check_events(&mut self, f: &dyn FencerAdmin) {
        let result = async {
            let mut stream = match subscribe(f).await? {
                Subscribed::Stream(s) => s,
                Subscribed::Unsupported(why) => return Ok(Some(why)),
            };
            let t = node("conf-events")?;
            let got = self.fence_once(f, &t, "conf-events-dev").await?;
            let mut started = false;
            loop {
                let event = match self.next(stream.as_mut()).await? {
                    Ok(Some(e)) => e,
                    Ok(None) => return Err("the stream ended while the fencer runs".into()),
                    Err(e) => return Err(format!("the stream failed after two events: {e}")),
                };
                if event.record().map(|r| r.id) != Some(got.id) {
                    continue;
                }
                match event {
                    FenceEvent::Started { record } if !started => {
                        if !record.is_pending() {
                            return Err(format!(
                                "Started carries an outcome: {:?}",
                                record.outcome
                            ));
                        }
                        started = true;
                    }
                    FenceEvent::Finished { record } if started => {
                        if *record != got {
                            return Err(format!(
                                "Finished carries {record:?}, the requester got {got:?}"
                            ));
                        }
                        return Ok(None);
                    }
                    other => return Err(format!("out of order: {other:?}")),
                }
            }
        }
        .await;
        self.record_skippable("fencer.events", EVENTS, result);
    }

    pub(super) async fn check_stream_end(&mut self, harness: &dyn FencerHarness) {
        let result = async {
            let fresh = harness.fencer().await?;
            let mut stream = match subscribe(fresh.as_ref()).await? {
                Subscribed::Stream(s) => s,
                Subscribed::Unsupported(why) => return Ok(Some(why)),
            };
            harness.shut_down(fresh).await;
            for call in ["first", "second"] {
                match self.next(stream.as_mut()).await {
                    Ok(Ok(None)) => {}
                    Ok(Ok(Some(e))) => {
                        return Err(format!(
                            "the {call} call after shutdown gave an event: {e:?}"
                        ));
                    }
                    Ok(Err(e)) => {
                        return Err(format!(
                            "the {call} call after shutdown gave an error, not Ok(None): {e}"
                        ));
                    }
                    Err(why) => return Err(format!("the {call} call after shutdown: {why}")),
                }
            }
            Ok(None)
        }
        .await;
        self.record_skippable("fencer.stream_end", STREAM_END, result);
    }

    pub(super) async fn check_lag(&mut self, harness: &dyn FencerHarness) {
        let Some(buffer) = harness.event_buffer() else {
            let why = "the harness does not declare its event buffer".to_owned();
            self.record("fencer.lag", LAG, CheckOutcome::Skip(why));
            return;
        };
        let result = async {
            let f = harness.fencer().await?;
            let mut stream = match subscribe(f.as_ref()).await? {
                Subscribed::Stream(s) => s,
                Subscribed::Unsupported(why) => return Ok(Some(why)),
            };
            // Two events per incident: buffer + 1 incidents overflow any buffer of that size.
            let t = node("conf-lag")?;
            self.register(f.as_ref(), self.device("conf-lag-dev", &[&t])?)
                .await?;
            let mut last = None;
            for i in 0..=buffer {
                let r = self.fence(f.as_ref(), &t, FenceAction::Off, i).await?;
                last = Some(r.map_err(|e| format!("fencing {t} failed: {e}"))?);
            }
            let last = last.ok_or("no incident ran")?;
            self.read_past_lag(stream.as_mut(), last.id).await?;
            Ok(None)
        }
        .await;
        self.record_skippable("fencer.lag", LAG, result);
    }

    /// Reads until the `Finished` event of incident `last`, requiring one `Lagged` on the way.
    async fn read_past_lag(
        &self,
        stream: &mut dyn FenceEventStream,
        last: u64,
    ) -> Result<(), String> {
        let mut lagged = false;
        loop {
            match self.next(stream).await? {
                Err(FenceError::Lagged { missed }) if !lagged && missed > 0 => lagged = true,
                Err(e) => return Err(format!("expected one Lagged, then events; got {e}")),
                Ok(None) => return Err("the stream ended instead of going on after the gap".into()),
                Ok(Some(FenceEvent::Finished { record })) if record.id == last => {
                    return if lagged {
                        Ok(())
                    } else {
                        Err(
                            "every event arrived although the subscriber never read: no Lagged"
                                .into(),
                        )
                    };
                }
                Ok(Some(_)) => {}
            }
        }
    }

    /// Records a check that passes (`Ok(None)`), is skipped because the fencer declared it has
    /// no events (`Ok(Some(why))`), or fails.
    fn record_skippable(
        &mut self,
        name: &'static str,
        promise: &'static str,
        result: Result<Option<String>, String>,
    ) {
        let outcome = match result {
            Ok(None) => CheckOutcome::Pass,
            Ok(Some(why)) => CheckOutcome::Skip(format!("the fencer has no events: {why}")),
            Err(why) => CheckOutcome::Fail(why),
        };
        self.record(name, promise, outcome);
    }
}
