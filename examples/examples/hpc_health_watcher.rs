//! The HPC use of the same APIs: a node-health watcher, as a scheduler such as Slurm would run
//! beside its controller. It follows membership, and when a compute node leaves the view it
//! power-cycles it through the fencer (off, then on) and reports the node back as "down,
//! fenced" for the scheduler to drain and resume.
//!
//! `cargo run -p examples --example hpc_health_watcher`
//!
//! Here the cluster is three built-in nodes on loopback and the power switch a null device;
//! in production the membership is a daemon client and the device a `fence_ipmilan`.

use std::sync::Arc;
use std::time::Duration;

use ocf_fencing::{FenceAction, FenceRequest, Fencer, FencerAdmin};
use ocf_membership::{EventKind, Membership};
use ocf_ref::failover::QuorumPolicy;
use ocf_ref::fencing::devices::native::NullDevice;
use ocf_ref::fencing::fencer::{FencerConfig, LocalFencer};
use ocf_ref::membership::builtin::BuiltinEngine;
use ocf_ref::membership::builtin::key::ClusterKey;
use ocf_ref::membership::builtin::loopback;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let engines = local_cluster().await?;
    let head: Arc<dyn Membership> = engines[0].clone();
    let power = Arc::new(NullDevice::new(
        "pdu".parse()?,
        ["n1".parse()?, "n2".parse()?, "n3".parse()?],
    ));
    // The watcher only power-cycles from a quorate view: a cut-off head node must not.
    let fencer = LocalFencer::with(
        FencerConfig::default(),
        Arc::new(QuorumPolicy::new(head.clone())),
    );
    fencer.register_device(power.clone()).await?;

    let mut events = head.subscribe().await?;
    let crash = Arc::clone(&engines[2]);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        println!("-- compute node n3 stops answering");
        crash.stop();
    });

    while let Some(ev) = events.next_event().await? {
        if ev.kind == EventKind::Evicted {
            break;
        }
        if let Some(gone) = ev.view.left().first() {
            let name: ocf_core::NodeName = format!("n{gone}").parse()?;
            println!(
                "{name} left view {}: draining it and power-cycling",
                ev.view.id
            );
            for action in [FenceAction::Off, FenceAction::On] {
                let request = FenceRequest::new(name.clone(), action, "health-watcher@n1".parse()?);
                let record = fencer.fence(request).await?;
                println!(
                    "  {action} of {name}: record {} ok={}",
                    record.id,
                    record.succeeded()
                );
            }
            println!("{name}: state DOWN reason=\"fenced by ocf\" (scheduler may resume it)");
            println!("power device used {} time(s)", power.fence_calls());
            return Ok(());
        }
    }
    Ok(())
}

/// Three built-in nodes on free loopback ports, sharing a fresh key.
async fn local_cluster() -> Result<Vec<Arc<BuiltinEngine>>, Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir();
    let configs = loopback::configs("hpc", 3, &dir)?;
    Ok(loopback::start(&configs, &ClusterKey::random()).await?)
}
