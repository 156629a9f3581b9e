//! The Slurm bridge: a client of the local `ocf node` that runs beside slurmctld.
//!
//! - On the fencer's node-death event (sent only after fencing is confirmed, or when the
//!   cluster does not fence) it sets the node DOWN in Slurm with ocf's reason,
//!   `ocf: fenced (reboot), incident n3@left-view-4.1.0`, unless another owner (an admin, a
//!   health script) holds the node: their hold is kept as it is ([`super::holds`]).
//! - Power actions (`ocf power`, requester `power@…`) are Slurm's own and are not deaths.
//! - When a node it holds has left the view and is back in it, it resumes the node in Slurm,
//!   only if the hold is still ocf's.
//! - It remembers what it did in a [`Ledger`]; on (re)start, and after falling behind, it
//!   catches up from the fence history: the newest confirmed off/reboot of every node that
//!   is still out of the view. No incident is applied twice.
//! - A death Slurm could not take (slurmctld down) is kept and tried again every tick.
//! - With a health check ([`crate::hpc::health`]), a node back in the view is resumed only
//!   when its check passes; a failing check turns ocf's reason into
//!   `ocf: health failed (…)`, the node stays DOWN; an unknown result changes nothing. Checks
//!   of one node run at most every [`HEALTH_INTERVAL`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ocf_core::NodeName;
use ocf_fencing::history::now_millis;
use ocf_fencing::{
    DeathCause, FenceAction, FenceError, FenceEvent, FenceRecord, Fencer, HistoryFilter, NodeDeath,
};
use ocf_membership::Membership;
use serde::Serialize;
use tokio::sync::mpsc;

use super::holds::{self, HoldOwner, OCF_REASON_PREFIX};
use super::ledger::{Hold, Ledger, LedgerError};
use super::scontrol::{Scontrol, SlurmError};
use crate::fencing::daemon_fencer::DaemonFencer;
use crate::hpc::health::{Health, HealthCheck};
use crate::membership::daemon::DaemonClient;

/// The requester prefix of power actions (`ocf power`): their records are not deaths.
pub const POWER_REQUESTER_PREFIX: &str = "power@";

/// How often the bridge looks at the view and retries what Slurm did not take.
pub const DEFAULT_TICK: Duration = Duration::from_millis(250);

/// The least time between two health checks of one node.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(1);

/// What the bridge did about one node; printed one JSON line each by `ocf slurm bridge --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BridgeAction {
    /// The node, by its ocf name.
    pub node: String,
    /// Its Slurm name.
    pub slurm_node: String,
    /// `down`, `resume`, `kept` (another owner's hold left alone), `skipped` (not a death
    /// for Slurm: a power action, a node already back), `released` (another owner took
    /// over the hold), `health_failed`, `health_unknown` (the node stays out) or `error`.
    pub action: &'static str,
    /// The incident, when there is one.
    pub incident: Option<String>,
    /// The reason set, or why nothing was done.
    pub detail: String,
    /// When (milliseconds since the Unix epoch).
    pub at_ms: u64,
}

/// Why the bridge stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// Its state file.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Slurm cannot be used at all (`scontrol` missing).
    #[error(transparent)]
    Slurm(#[from] SlurmError),
}

/// The bridge between one `ocf node` and slurmctld.
pub struct Bridge {
    fencer: DaemonFencer,
    membership: DaemonClient,
    slurm: Scontrol,
    ledger: Ledger,
    map: BTreeMap<NodeName, String>,
    tick: Duration,
    pending: Vec<NodeDeath>,
    report: Option<mpsc::UnboundedSender<BridgeAction>>,
    health: Option<HealthCheck>,
    last_check: BTreeMap<String, (Instant, Health)>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("socket", &self.fencer.path())
            .field("scontrol", &self.slurm.program())
            .finish_non_exhaustive()
    }
}

impl Bridge {
    /// A bridge over the node daemon at `socket`, driving Slurm through `slurm`, remembering
    /// in `ledger`. Node names map one to one unless [`Bridge::with_map`] says otherwise.
    pub fn new(socket: &std::path::Path, slurm: Scontrol, ledger: Ledger) -> Self {
        Self {
            fencer: DaemonFencer::new(socket).with_timeout(Duration::from_secs(10)),
            membership: DaemonClient::new(socket),
            slurm,
            ledger,
            map: BTreeMap::new(),
            tick: DEFAULT_TICK,
            pending: Vec::new(),
            report: None,
            health: None,
            last_check: BTreeMap::new(),
        }
    }

    /// Resumes a node only once `check` passes for it.
    #[must_use]
    pub fn with_health(mut self, check: HealthCheck) -> Self {
        self.health = Some(check);
        self
    }

    /// Uses these Slurm names for these ocf nodes.
    #[must_use]
    pub fn with_map(mut self, map: BTreeMap<NodeName, String>) -> Self {
        self.map = map;
        self
    }

    /// Sends every [`BridgeAction`] to `tx` as well as to the log.
    #[must_use]
    pub fn with_report(mut self, tx: mpsc::UnboundedSender<BridgeAction>) -> Self {
        self.report = Some(tx);
        self
    }

    fn slurm_name(&self, node: &NodeName) -> String {
        self.map
            .get(node)
            .cloned()
            .unwrap_or_else(|| node.as_str().to_owned())
    }

    fn emit(&self, node: &NodeName, action: &'static str, incident: Option<&str>, detail: String) {
        let a = BridgeAction {
            node: node.as_str().to_owned(),
            slurm_node: self.slurm_name(node),
            action,
            incident: incident.map(str::to_owned),
            detail,
            at_ms: now_millis(),
        };
        tracing::info!(node = %a.node, slurm_node = %a.slurm_node, action, incident = ?a.incident, detail = %a.detail, "slurm bridge");
        if let Some(tx) = &self.report {
            let _ = tx.send(a);
        }
    }

    /// Runs until the process is stopped: events, catch-up, rejoins, retries.
    ///
    /// # Errors
    /// Only what cannot get better by waiting: `scontrol` missing, the state file unwritable.
    pub async fn run(mut self) -> Result<(), BridgeError> {
        let mut backoff = Duration::from_millis(100);
        loop {
            let stream = match self.fencer.subscribe().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, socket = %self.fencer.path().display(), "cannot subscribe to the fencer; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            // The stream is read by its own task: a select! must never cancel a read halfway.
            let (tx, mut rx) = mpsc::channel(256);
            let reader = tokio::spawn(async move {
                let mut stream = stream;
                loop {
                    let item = stream.next_event().await;
                    let end = matches!(item, Ok(None))
                        || matches!(&item, Err(e) if !matches!(e, FenceError::Lagged { .. }));
                    if tx.send(item).await.is_err() || end {
                        return;
                    }
                }
            });
            self.catch_up().await?;
            let mut tick = tokio::time::interval(self.tick);
            loop {
                tokio::select! {
                    item = rx.recv() => match item {
                        Some(Ok(Some(FenceEvent::NodeDeath { death }))) => self.on_death(*death).await?,
                        Some(Ok(Some(_))) => {}
                        Some(Err(FenceError::Lagged { missed })) => {
                            tracing::warn!(missed, "fell behind the fencer's events; catching up from its history");
                            self.catch_up().await?;
                        }
                        Some(Ok(None)) | None => {
                            tracing::warn!("the fencer's event stream ended; subscribing again");
                            break;
                        }
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "the fencer's event stream failed; subscribing again");
                            break;
                        }
                    },
                    _ = tick.tick() => {
                        self.retry_pending().await?;
                        self.check_rejoins().await?;
                    }
                }
            }
            reader.abort();
            tokio::time::sleep(backoff).await;
        }
    }

    /// Reads the fence history and applies what the bridge has not: for every node, its
    /// newest confirmed off/reboot, if the node is still out of the view.
    async fn catch_up(&mut self) -> Result<(), BridgeError> {
        let records = match self.fencer.history(&HistoryFilter::all()).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the fence history to catch up; later");
                return Ok(());
            }
        };
        let view = self.members().await;
        let mut newest: BTreeMap<NodeName, &FenceRecord> = BTreeMap::new();
        for r in records.iter().filter(|r| is_death(r)) {
            if let Some(old) = newest.insert(r.target.clone(), r)
                && let Some(i) = &old.incident
            {
                self.ledger.mark_handled(i.as_str());
            }
        }
        for (target, r) in newest {
            let Some(incident) = &r.incident else {
                continue;
            };
            if self.ledger.handled(incident.as_str()) {
                continue;
            }
            if view.as_ref().is_some_and(|v| v.contains(&target)) {
                self.ledger.mark_handled(incident.as_str());
                self.emit(
                    &target,
                    "skipped",
                    Some(incident.as_str()),
                    "back in the view since".into(),
                );
                continue;
            }
            let death = NodeDeath {
                target: target.clone(),
                incident: incident.clone(),
                view: None,
                cause: DeathCause::Fenced { action: r.action },
                device: None,
                at_ms: r.ended_ms.unwrap_or(r.started_ms),
                record: Some(r.id),
            };
            self.on_death(death).await?;
        }
        self.ledger.save()?;
        tracing::info!(
            records = records.len(),
            "slurm bridge caught up from the fence history"
        );
        Ok(())
    }

    async fn members(&self) -> Option<Vec<NodeName>> {
        match self.membership.current_view().await {
            Ok(Some(v)) => Some(v.members().iter().map(|m| m.name.clone()).collect()),
            Ok(None) => None,
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the view");
                None
            }
        }
    }

    /// Whether the death's record was asked for only by `ocf power`.
    async fn power_only(&self, death: &NodeDeath) -> bool {
        let Some(id) = death.record else { return false };
        let filter = HistoryFilter::all().target(death.target.clone()).limit(64);
        match self.fencer.history(&filter).await {
            Ok(records) => records.iter().find(|r| r.id == id).is_some_and(|r| {
                !r.requesters.is_empty()
                    && r.requesters
                        .iter()
                        .all(|q| q.as_str().starts_with(POWER_REQUESTER_PREFIX))
            }),
            Err(_) => false,
        }
    }

    async fn on_death(&mut self, death: NodeDeath) -> Result<(), BridgeError> {
        let incident = death.incident.as_str().to_owned();
        if self.ledger.handled(&incident) {
            return Ok(());
        }
        if self.power_only(&death).await {
            self.ledger.mark_handled(&incident);
            self.ledger.save()?;
            self.emit(
                &death.target,
                "skipped",
                Some(&incident),
                "a power action asked for by ocf power (Slurm's own)".into(),
            );
            return Ok(());
        }
        let name = self.slurm_name(&death.target);
        let node = match self.slurm.node(&name).await {
            Ok(n) => n,
            Err(e @ SlurmError::Missing { .. }) => return Err(e.into()),
            Err(e) => {
                self.defer(death, &e);
                return Ok(());
            }
        };
        match holds::owner(&node) {
            HoldOwner::Other(reason) => {
                self.ledger.mark_handled(&incident);
                self.ledger.save()?;
                self.emit(
                    &death.target,
                    "kept",
                    Some(&incident),
                    format!("held by another owner: {reason}"),
                );
                return Ok(());
            }
            HoldOwner::Free | HoldOwner::Slurm | HoldOwner::Ocf => {}
        }
        let reason = death_reason(&death);
        if let Err(e) = self.slurm.set_down(&name, &reason).await {
            if matches!(e, SlurmError::Missing { .. }) {
                return Err(e.into());
            }
            self.defer(death, &e);
            return Ok(());
        }
        let absent = self
            .members()
            .await
            .is_none_or(|v| !v.contains(&death.target));
        self.ledger.mark_handled(&incident);
        self.ledger.hold(
            death.target.as_str(),
            Hold {
                incident: incident.clone(),
                absent_seen: absent,
            },
        );
        self.ledger.save()?;
        self.emit(&death.target, "down", Some(&incident), reason);
        Ok(())
    }

    fn defer(&mut self, death: NodeDeath, e: &SlurmError) {
        self.emit(
            &death.target,
            "error",
            Some(death.incident.as_str()),
            format!("{e}; trying again"),
        );
        if !self.pending.iter().any(|d| d.incident == death.incident) {
            self.pending.push(death);
        }
    }

    async fn retry_pending(&mut self) -> Result<(), BridgeError> {
        for death in std::mem::take(&mut self.pending) {
            self.on_death(death).await?;
        }
        Ok(())
    }

    /// Resumes the nodes ocf holds that have left the view and are back in it.
    async fn check_rejoins(&mut self) -> Result<(), BridgeError> {
        if self.ledger.holds().is_empty() {
            return Ok(());
        }
        let Some(view) = self.members().await else {
            return Ok(());
        };
        let held: Vec<(String, Hold)> = self
            .ledger
            .holds()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (node, hold) in held {
            let Ok(target) = node.parse::<NodeName>() else {
                self.ledger.release(&node);
                continue;
            };
            if !view.contains(&target) {
                if self.ledger.saw_absent(&node) {
                    self.ledger.save()?;
                }
                continue;
            }
            if !hold.absent_seen {
                continue;
            }
            let name = self.slurm_name(&target);
            let state = match self.slurm.node(&name).await {
                Ok(n) => n,
                Err(e @ SlurmError::Missing { .. }) => return Err(e.into()),
                Err(e) => {
                    tracing::debug!(error = %e, node = %name, "cannot read the node to resume it; later");
                    continue;
                }
            };
            match holds::owner(&state) {
                HoldOwner::Ocf if !self.health_passes(&target, &name, &state, &hold).await => {}
                HoldOwner::Ocf => match self.slurm.resume(&name).await {
                    Ok(()) => {
                        self.ledger.release(&node);
                        self.ledger.save()?;
                        self.emit(
                            &target,
                            "resume",
                            Some(&hold.incident),
                            "back in the view".into(),
                        );
                    }
                    Err(e) => tracing::debug!(error = %e, node = %name, "resume failed; later"),
                },
                other => {
                    self.ledger.release(&node);
                    self.ledger.save()?;
                    let detail = match other {
                        HoldOwner::Other(r) => format!("another owner holds it now: {r}"),
                        _ => "no longer held by ocf".into(),
                    };
                    self.emit(&target, "released", Some(&hold.incident), detail);
                }
            }
        }
        Ok(())
    }
}

impl Bridge {
    /// Whether `node`'s health lets it return (true without a health check). A failure turns
    /// ocf's reason into the failure's; an unknown result is reported once and changes
    /// nothing.
    async fn health_passes(
        &mut self,
        target: &NodeName,
        name: &str,
        state: &super::scontrol::SlurmNode,
        hold: &Hold,
    ) -> bool {
        let Some(check) = &self.health else {
            return true;
        };
        let key = target.as_str().to_owned();
        if let Some((at, _)) = self.last_check.get(&key)
            && at.elapsed() < HEALTH_INTERVAL
        {
            return false;
        }
        let health = check.check(name).await;
        let before = self
            .last_check
            .insert(key, (Instant::now(), health.clone()))
            .map(|(_, h)| h);
        let changed = before.as_ref() != Some(&health);
        match health {
            Health::Pass => true,
            Health::Fail(why) => {
                let reason = format!(
                    "{OCF_REASON_PREFIX}health failed ({why}), after incident {}",
                    hold.incident
                );
                if state.reason.as_deref() != Some(reason.as_str()) {
                    match self.slurm.set_down(name, &reason).await {
                        Ok(()) => self.emit(target, "health_failed", Some(&hold.incident), reason),
                        Err(e) => {
                            tracing::debug!(error = %e, node = %name, "cannot set the health reason; later");
                        }
                    }
                }
                false
            }
            Health::Unknown(why) => {
                if changed {
                    self.emit(
                        target,
                        "health_unknown",
                        Some(&hold.incident),
                        format!("the health check could not say ({why}); the node stays as it is"),
                    );
                }
                false
            }
        }
    }
}

/// A record that means its target is dead: a confirmed off or reboot.
fn is_death(r: &FenceRecord) -> bool {
    r.succeeded() && matches!(r.action, FenceAction::Off | FenceAction::Reboot)
}

/// The reason ocf gives Slurm for a death.
///
/// ```
/// use ocf_fencing::{DeathCause, FenceAction, NodeDeath};
/// use ocf_ref::hpc::slurm::bridge::death_reason;
/// let d = NodeDeath {
///     target: "n3".parse().unwrap(),
///     incident: "n3@left-view-4.1.0".parse().unwrap(),
///     view: None,
///     cause: DeathCause::Fenced { action: FenceAction::Reboot },
///     device: None,
///     at_ms: 0,
///     record: Some(1),
/// };
/// assert_eq!(death_reason(&d), "ocf: fenced (reboot), incident n3@left-view-4.1.0");
/// ```
pub fn death_reason(death: &NodeDeath) -> String {
    match &death.cause {
        DeathCause::Fenced { action } => {
            format!(
                "{OCF_REASON_PREFIX}fenced ({action}), incident {}",
                death.incident
            )
        }
        DeathCause::NotFenced { reason } => format!(
            "{OCF_REASON_PREFIX}lost, not fenced ({reason}), incident {}",
            death.incident
        ),
        other => format!(
            "{OCF_REASON_PREFIX}dead ({other:?}), incident {}",
            death.incident
        ),
    }
}
