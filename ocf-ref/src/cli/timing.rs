//! `ocf timing`: the membership timers a node's configuration gives, and why.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::CliResult;
use super::output::print_json;
use crate::membership::config::NodeConfig;
use crate::membership::protocol::Timing;

/// `ocf timing` arguments.
#[derive(Debug, Args)]
pub struct TimingArgs {
    /// The node's configuration file (TOML).
    #[arg(long)]
    pub config: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Every timer derived from `[timing]`, in milliseconds (the JSON of `ocf timing --json`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TimingReport {
    /// The JSON shape's version.
    pub schema: u32,
    /// Probe period; also how often each node renews its lease with every member.
    pub heartbeat_ms: u64,
    /// Wait for a direct ack before asking helpers.
    pub ack_timeout_ms: u64,
    /// Silence after a failed probe before a confirmed suspect is declared dead.
    pub suspect_timeout_ms: u64,
    /// The same without confirmation from any helper (Lifeguard: twice as long).
    pub unconfirmed_suspect_timeout_ms: u64,
    /// Silence before a death, roughly.
    pub dead_ms: u64,
    /// How long one grant of primacy lasts, from when its request left.
    pub lease_ms: u64,
    /// Bound on clock rate error, ppm.
    pub drift_ppm: u32,
    /// Wait after the last grant to a node before a view may leave it out.
    pub lease_wait_ms: u64,
    /// `dead_ms - lease_wait_ms`: how much sooner leases run out than deaths are declared
    /// (never negative: a configuration where it would be is refused).
    pub lease_margin_ms: u64,
    /// Batching window before a coordinator proposes.
    pub settle_ms: u64,
    /// How long a coordinator waits for every member's answer.
    pub round_timeout_ms: u64,
    /// How long a new process only discovers peers.
    pub join_grace_ms: u64,
    /// From a death to the agreed view without it: least and most, on a healthy network.
    pub expected_detection_ms: [u64; 2],
}

impl TimingReport {
    /// The report for `t`.
    pub fn new(t: &Timing) -> Self {
        let (least, most) = t.expected_detection();
        Self {
            schema: 1,
            heartbeat_ms: t.heartbeat_ms,
            ack_timeout_ms: t.ack_timeout(),
            suspect_timeout_ms: t.suspect_timeout(),
            unconfirmed_suspect_timeout_ms: 2 * t.suspect_timeout(),
            dead_ms: t.dead_ms,
            lease_ms: t.lease_ms,
            drift_ppm: t.drift_ppm,
            lease_wait_ms: t.lease_wait(),
            lease_margin_ms: t.dead_ms.saturating_sub(t.lease_wait()),
            settle_ms: t.settle(),
            round_timeout_ms: t.round_timeout(),
            join_grace_ms: t.join_grace(),
            expected_detection_ms: [least, most],
        }
    }

    /// The text form: one timer a line, with what it is.
    pub fn text(&self) -> String {
        let r = self;
        format!(
            "probe period (heartbeat)      {:>6} ms   each node probes a peer and renews its lease\n\
             ack timeout                   {:>6} ms   then helpers probe indirectly\n\
             suspect timeout               {:>6} ms   confirmed by helpers ({} ms unconfirmed)\n\
             death after silence (dead)    {:>6} ms\n\
             primacy lease                 {:>6} ms   from when its request left\n\
             clock drift bound             {:>6} ppm\n\
             lease wait before exclusion   {:>6} ms   lease × (1+ρ)/(1−ρ) + margin\n\
             lease margin                  {:>6} ms   dead − lease wait (≥ 0, or refused)\n\
             settle (batching)             {:>6} ms\n\
             round timeout                 {:>6} ms\n\
             join grace                    {:>6} ms\n\
             expected death → view         {}–{} ms\n",
            r.heartbeat_ms,
            r.ack_timeout_ms,
            r.suspect_timeout_ms,
            r.unconfirmed_suspect_timeout_ms,
            r.dead_ms,
            r.lease_ms,
            r.drift_ppm,
            r.lease_wait_ms,
            r.lease_margin_ms,
            r.settle_ms,
            r.round_timeout_ms,
            r.join_grace_ms,
            r.expected_detection_ms[0],
            r.expected_detection_ms[1],
        )
    }
}

/// Runs `ocf timing`: loads the configuration (refused with the arithmetic when its timers do
/// not fit together) and prints the derived timers.
pub fn run_timing(args: &TimingArgs) -> CliResult {
    let config = NodeConfig::load(&args.config)?;
    let report = TimingReport::new(&config.cluster_spec().timing);
    if args.json {
        print_json(&report)?;
    } else {
        print!("{}", report.text());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_budget_gives_the_documented_timers() {
        let r = TimingReport::new(&Timing::from_budget(500));
        assert_eq!(r.heartbeat_ms, 100);
        assert_eq!(r.dead_ms, 400);
        assert_eq!(r.lease_ms, 300);
        assert_eq!(r.lease_wait_ms, 342);
        assert_eq!(r.lease_margin_ms, 58);
        assert!(r.text().contains("lease wait before exclusion      342 ms"));
    }
}
