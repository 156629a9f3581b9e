//! The membership conformance suite (`ocf_conformance::membership`) on the etcd engine, against
//! three real etcd members on loopback:
//!
//! - directly: three `EtcdEngine`s in this process; kill = abort a node's engine without a word
//!   to etcd or its peers (its detector goes silent, the others revoke its lease);
//! - through node daemons: each engine behind an in-process node daemon, handles are
//!   `DaemonClient`s on the daemons' sockets.
//!
//! Every check must pass, none may be skipped.

#![cfg(feature = "etcd")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod etcd_support;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use etcd_support::EtcdCluster;
use ocf_conformance::membership::{self, MembershipCluster, Options};
use ocf_conformance::{CheckOutcome, Clock, Report};
use ocf_membership::Membership;
use ocf_ref::conformance::TokioClock;
use ocf_ref::membership::builtin::key::ClusterKey;
use ocf_ref::membership::builtin::loopback;
use ocf_ref::membership::config::{BackendKind, EtcdConfig, NodeConfig};
use ocf_ref::membership::daemon::{self, DaemonClient, EtcdDaemon};
use ocf_ref::membership::etcd::EtcdEngine;

const CHECKS: usize = 9;

fn assert_all_passed(report: &Report, etcd: &EtcdCluster) {
    if !report.passed() {
        eprintln!("{}", etcd.logs());
    }
    report.assert_passed();
    for c in &report.checks {
        assert_eq!(c.outcome, CheckOutcome::Pass, "{report}");
    }
    assert_eq!(report.checks.len(), CHECKS, "{report}");
}

/// Loopback configs of `backend = "etcd"` against `etcd`, under `prefix`.
fn configs(name: &str, etcd: &EtcdCluster, dir: &std::path::Path) -> Vec<NodeConfig> {
    let mut configs = loopback::configs(name, 3, dir).unwrap();
    for c in &mut configs {
        c.backend = BackendKind::Etcd;
        c.etcd = Some(EtcdConfig {
            endpoints: etcd.endpoints(),
            ca_file: None,
            cert_file: None,
            key_file: None,
            user: None,
            password_file: None,
            prefix: Some(format!("/ocf-test/{name}/")),
            lease_ttl_s: 4,
        });
    }
    configs
}

struct Direct {
    engines: Vec<Arc<EtcdEngine>>,
    clock: TokioClock,
}

#[async_trait]
impl MembershipCluster for Direct {
    fn implementation(&self) -> String {
        format!(
            "etcd ({} engines, 3 etcd members on loopback)",
            self.engines.len()
        )
    }

    fn nodes(&self) -> Vec<Arc<dyn Membership>> {
        self.engines
            .iter()
            .map(|e| Arc::clone(e) as Arc<dyn Membership>)
            .collect()
    }

    fn clock(&self) -> &dyn Clock {
        &self.clock
    }

    async fn kill(&self, index: usize) -> Result<(), String> {
        self.engines
            .get(index)
            .ok_or_else(|| format!("no node {index}"))?
            .abort();
        Ok(())
    }

    async fn shut_down(&self, index: usize) -> Result<(), String> {
        self.engines
            .get(index)
            .ok_or_else(|| format!("no node {index}"))?
            .stop();
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_engine_passes_the_membership_suite() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let etcd = EtcdCluster::start(3);
    let dir = tempfile::tempdir().unwrap();
    let key = ClusterKey::random();
    let mut engines = Vec::new();
    for c in &configs("confe", &etcd, dir.path()) {
        engines.push(Arc::new(EtcdEngine::start(c, &key).await.unwrap()));
    }
    // The detectors admit every node first, so that the kill is the detector's to notice.
    wait_detectors(&engines).await;
    let cluster = Direct {
        engines,
        clock: TokioClock::new(),
    };
    let report = membership::run(&cluster, &Options::default()).await;
    let revokes: u64 = cluster
        .engines
        .iter()
        .map(|e| e.stats().revokes.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    for e in &cluster.engines {
        e.shutdown().await;
    }
    assert_all_passed(&report, &etcd);
    // The killed node left through the detector's revoke, not through its lease's TTL.
    assert!(revokes >= 1, "no survivor revoked the killed node's lease");
}

/// Waits until every engine's failure detector has a view of all the engines.
async fn wait_detectors(engines: &[Arc<EtcdEngine>]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !engines.iter().all(|e| {
        e.detector()
            .hub()
            .current()
            .is_some_and(|v| v.members().len() == engines.len())
    }) {
        assert!(
            std::time::Instant::now() < deadline,
            "the detectors never agreed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

struct Daemons {
    running: Mutex<Vec<Option<EtcdDaemon>>>,
    clients: Vec<DaemonClient>,
    clock: TokioClock,
}

#[async_trait]
impl MembershipCluster for Daemons {
    fn implementation(&self) -> String {
        "etcd (3 node daemons, 3 etcd members on loopback, DaemonClient)".into()
    }

    fn nodes(&self) -> Vec<Arc<dyn Membership>> {
        self.clients
            .iter()
            .map(|c| Arc::new(c.clone()) as Arc<dyn Membership>)
            .collect()
    }

    fn clock(&self) -> &dyn Clock {
        &self.clock
    }

    async fn kill(&self, index: usize) -> Result<(), String> {
        let daemon = self
            .running
            .lock()
            .unwrap()
            .get_mut(index)
            .and_then(Option::take)
            .ok_or_else(|| format!("no running node {index}"))?;
        daemon.shutdown().await;
        Ok(())
    }

    async fn shut_down(&self, index: usize) -> Result<(), String> {
        self.kill(index).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_engine_through_node_daemons_passes_the_membership_suite() {
    let etcd = EtcdCluster::start(3);
    let dir = tempfile::tempdir().unwrap();
    let key = ClusterKey::random();
    let mut daemons = Vec::new();
    let mut clients = Vec::new();
    for c in &configs("confed", &etcd, dir.path()) {
        daemons.push(Some(daemon::serve_etcd_with_key(c, &key).await.unwrap()));
        clients.push(DaemonClient::new(c.socket_path()));
    }
    let cluster = Daemons {
        running: Mutex::new(daemons),
        clients,
        clock: TokioClock::new(),
    };
    let report = membership::run(&cluster, &Options::default()).await;
    let left: Vec<EtcdDaemon> = cluster
        .running
        .lock()
        .unwrap()
        .drain(..)
        .flatten()
        .collect();
    for d in left {
        d.shutdown().await;
    }
    assert_all_passed(&report, &etcd);
}
