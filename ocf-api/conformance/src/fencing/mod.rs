//! The fencing suites: one for a single [`FenceDevice`](ocf_fencing::FenceDevice), one for a
//! [`Fencer`](ocf_fencing::Fencer).
//!
//! - [`run_device`] checks a device you configured for the test: what it lists, that it
//!   refuses nodes it does not serve with a typed error, and (when you say it is safe) a power
//!   round trip confirmed by `status`.
//! - [`run_fencer`] checks a fencer your [`FencerHarness`] builds, by registering the suite's
//!   own counting [`TestDevice`]s: merging, topology order, "all devices of a level",
//!   failure and no-device answers, history and policy refusal, and the event stream: its
//!   order, its end (`Ok(None)`) and what lagging means (the stream goes on after the gap).

mod device;
mod events;
mod fencer;
mod test_device;

pub use device::{DeviceOptions, run_device, run_device_with_progress};
pub use fencer::{FencerHarness, FencerOptions, run_fencer, run_fencer_with_progress};
pub use test_device::{DeviceCall, Journal, TestDevice};

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::sync::Arc;
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;

    use async_trait::async_trait;
    use ocf_core::NodeName;
    use ocf_fencing::FenceAction::{Off, On, Reboot};

    use super::*;
    use crate::{CheckOutcome, Clock};

    /// A clock whose sleeps never end: fine for work that is always ready at once.
    struct Frozen;

    #[async_trait]
    impl Clock for Frozen {
        async fn sleep(&self, _duration: Duration) {
            std::future::pending::<()>().await;
        }
    }

    /// Runs a future whose every step is ready at once (no runtime in this crate).
    fn ready<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(out) => out,
            Poll::Pending => panic!("the future waited on something"),
        }
    }

    fn n(s: &str) -> NodeName {
        s.parse().unwrap()
    }

    fn device(journal: &Journal) -> TestDevice {
        TestDevice::new(
            "t".parse().unwrap(),
            [n("a"), n("b")],
            Arc::new(Frozen),
            journal.clone(),
        )
    }

    #[test]
    fn the_test_device_conforms_and_journals_its_round_trip() {
        let journal = Journal::new();
        let options = DeviceOptions::new(n("a"), n("ghost")).power_cycle(true);
        let report = ready(run_device(&device(&journal), &Frozen, &options));
        report.assert_passed();
        assert_eq!(report.checks.len(), 11, "{report}");
        let actions: Vec<_> = journal.calls().iter().map(|c| c.action).collect();
        assert_eq!(
            actions,
            [Off, On, Reboot],
            "the non-target never reached it"
        );
    }

    #[test]
    fn a_failing_device_fails_the_round_trip_but_not_the_rest() {
        let journal = Journal::new();
        let options = DeviceOptions::new(n("b"), n("ghost")).power_cycle(true);
        let report = ready(run_device(&device(&journal).failing(), &Frozen, &options));
        let failed: Vec<&str> = report.failures().map(|c| c.name).collect();
        assert_eq!(
            failed,
            ["fence_device.off", "fence_device.on", "fence_device.reboot"],
            "{report}"
        );
        // Found on, left on: nothing to restore.
        assert_eq!(
            report.outcome("fence_device.restored"),
            Some(&CheckOutcome::Pass)
        );
    }

    #[test]
    fn a_device_that_does_not_list_its_target_fails() {
        let journal = Journal::new();
        let options = DeviceOptions::new(n("c"), n("ghost"));
        let report = ready(run_device(&device(&journal), &Frozen, &options));
        let failed: Vec<&str> = report.failures().map(|c| c.name).collect();
        assert_eq!(
            failed,
            [
                "fence_device.targets_listed",
                "fence_device.can_fence",
                "fence_device.status"
            ],
            "{report}"
        );
        assert!(journal.calls().is_empty());
    }
}
