//! Power actions on many nodes through the cluster fencer: what Slurm's SuspendProgram,
//! ResumeProgram and RebootProgram run (`ocf power off|on|reboot n[2-3,7]`).
//!
//! Every node's action is a fence request (requester `power@<host>`) to the local node's
//! fencer, so Slurm powering n3 off while an HA manager fences n3 off is one incident and one
//! device action. Per device (as this node's config lists them; nodes it does not know share
//! one "cluster" limit) at most `concurrency` actions run at once and starts are at least
//! `min_gap` apart. Each node has its own deadline. The result of each node is verified:
//! `off` and `reboot` by the fencer's confirmed record (fence agents read the power state
//! back before they answer), `on` and `reboot` with `wait_rejoin` by the node's own
//! `ocf node` rejoining the view.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ocf_core::NodeName;
use ocf_fencing::{FenceAction, FenceRequest, Fencer};
use ocf_membership::Membership;
use serde::Serialize;
use tokio::sync::{Mutex, Semaphore};

use crate::fencing::daemon_fencer::DaemonFencer;
use crate::membership::config::NodeConfig;
use crate::membership::daemon::DaemonClient;

/// The limit key of nodes that no device in this node's config lists.
pub const CLUSTER_LIMIT: &str = "cluster";

/// How a power run is paced and bounded.
#[derive(Debug, Clone)]
pub struct PowerOptions {
    /// Actions at once per device (at least 1).
    pub concurrency: usize,
    /// The least time between two starts on one device.
    pub min_gap: Duration,
    /// Each node's deadline, from the start of the run: fencing and, for `on`, rejoining.
    pub deadline: Duration,
    /// Wait for the node to rejoin the view after `on` (always) and `reboot` (when set).
    pub wait_rejoin: bool,
}

impl Default for PowerOptions {
    /// 4 at once and 100 ms apart per device, 300 s per node, waiting for `on` to rejoin.
    fn default() -> Self {
        Self {
            concurrency: 4,
            min_gap: Duration::from_millis(100),
            deadline: Duration::from_secs(300),
            wait_rejoin: true,
        }
    }
}

/// One node's result: one JSON object per node from `ocf power --json`.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct PowerResult {
    /// The node.
    pub node: String,
    /// The action asked for.
    pub action: FenceAction,
    /// Whether it was done and verified.
    pub ok: bool,
    /// How it was verified (`fence record confirmed`, `rejoined the view`), or what failed.
    pub detail: String,
    /// The fencer's record of it, when one was made.
    pub record: Option<u64>,
    /// The incident it joined or opened.
    pub incident: Option<String>,
    /// The device limit it ran under.
    pub device: String,
    /// How long it took, in milliseconds.
    pub took_ms: u64,
}

struct Limit {
    slots: Semaphore,
    last_start: Mutex<Option<Instant>>,
}

/// The device each host is limited by: the first `[[devices]]` entry listing it.
fn device_of(config: &NodeConfig, host: &NodeName) -> String {
    config
        .devices
        .iter()
        .find(|d| {
            d.hosts.as_ref().is_some_and(|h| h.contains(host))
                || d.host_map.as_ref().is_some_and(|m| m.contains_key(host))
        })
        .map_or_else(|| CLUSTER_LIMIT.to_owned(), |d| d.id.to_string())
}

/// Runs `action` on every host through the fencer of the node `config` names; calls
/// `progress` as each node starts and ends (for stderr), and returns every node's result in
/// the order given.
pub async fn power(
    config: &NodeConfig,
    action: FenceAction,
    hosts: &[NodeName],
    options: &PowerOptions,
    progress: Arc<dyn Fn(&str) + Send + Sync>,
) -> Vec<PowerResult> {
    let socket = config.socket_path();
    let started = Instant::now();
    let mut limits: BTreeMap<String, Arc<Limit>> = BTreeMap::new();
    let mut tasks = Vec::new();
    for host in hosts {
        let device = device_of(config, host);
        let limit = Arc::clone(limits.entry(device.clone()).or_insert_with(|| {
            Arc::new(Limit {
                slots: Semaphore::new(options.concurrency.max(1)),
                last_start: Mutex::new(None),
            })
        }));
        let host = host.clone();
        let socket = socket.clone();
        let options = options.clone();
        let progress = Arc::clone(&progress);
        tasks.push(tokio::spawn(async move {
            let deadline = started + options.deadline;
            let run = one(
                &socket, action, &host, &device, &limit, &options, &*progress,
            );
            match tokio::time::timeout_at(deadline.into(), run).await {
                Ok(r) => r,
                Err(_) => PowerResult {
                    node: host.to_string(),
                    action,
                    ok: false,
                    detail: format!("deadline of {} s passed", options.deadline.as_secs_f64()),
                    record: None,
                    incident: None,
                    device,
                    took_ms: millis(started.elapsed()),
                },
            }
        }));
    }
    let mut out = Vec::new();
    for (t, host) in tasks.into_iter().zip(hosts) {
        out.push(t.await.unwrap_or_else(|e| PowerResult {
            node: host.to_string(),
            action,
            ok: false,
            detail: format!("internal failure: {e}"),
            record: None,
            incident: None,
            device: CLUSTER_LIMIT.to_owned(),
            took_ms: millis(started.elapsed()),
        }));
    }
    out
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

async fn one(
    socket: &std::path::Path,
    action: FenceAction,
    host: &NodeName,
    device: &str,
    limit: &Limit,
    options: &PowerOptions,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> PowerResult {
    let begun = Instant::now();
    let _slot = limit.slots.acquire().await;
    {
        let mut last = limit.last_start.lock().await;
        if let Some(at) = *last {
            let next = at + options.min_gap;
            if next > Instant::now() {
                tokio::time::sleep_until(next.into()).await;
            }
        }
        *last = Some(Instant::now());
    }
    progress(&format!(
        "{action} {host}: asking the cluster fencer (device limit {device})"
    ));
    let fencer = DaemonFencer::new(socket).with_timeout(options.deadline + Duration::from_secs(5));
    let request = FenceRequest::new(
        host.clone(),
        action,
        crate::fencing::requester::on_this_host("power"),
    )
    .with_timeout(options.deadline);
    let mut result = PowerResult {
        node: host.to_string(),
        action,
        ok: false,
        detail: String::new(),
        record: None,
        incident: None,
        device: device.to_owned(),
        took_ms: 0,
    };
    let record = match fencer.fence(request).await {
        Ok(r) => Some(r),
        Err(e) => {
            result.detail = e.to_string();
            e.record().cloned()
        }
    };
    if let Some(r) = &record {
        result.record = Some(r.id);
        result.incident = r.incident.as_ref().map(ToString::to_string);
    }
    let confirmed = record
        .as_ref()
        .is_some_and(ocf_fencing::FenceRecord::succeeded);
    if !confirmed {
        if result.detail.is_empty() {
            result.detail = "the fencer did not confirm it".into();
        }
        result.took_ms = millis(begun.elapsed());
        progress(&format!("{action} {host}: FAILED: {}", result.detail));
        return result;
    }
    let rejoin = match action {
        FenceAction::On => true,
        FenceAction::Reboot => options.wait_rejoin,
        _ => false,
    };
    if rejoin {
        progress(&format!(
            "{action} {host}: confirmed; waiting for its ocf node to rejoin the view"
        ));
        let client = DaemonClient::new(socket);
        loop {
            if let Ok(Some(v)) = client.current_view().await
                && v.members().iter().any(|m| m.name == *host)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        result.detail = "fence record confirmed; rejoined the view".into();
    } else {
        result.detail = "fence record confirmed".into();
    }
    result.ok = true;
    result.took_ms = millis(begun.elapsed());
    progress(&format!(
        "{action} {host}: done in {} ms ({})",
        result.took_ms, result.detail
    ));
    result
}
