//! A membership client printing events, as an HA manager or a scheduler would follow them.
//!
//! `cargo run -p examples --example membership_events -- /run/ocf/c1-1.sock` follows a running
//! `ocf node` daemon. With no argument it starts a three-node cluster of the built-in engine on
//! loopback in this process, follows node 1, and stops node 3 halfway, so there is something
//! to see.

use std::sync::Arc;
use std::time::Duration;

use ocf_membership::{Membership, Subscription};
use ocf_ref::membership::builtin::BuiltinEngine;
use ocf_ref::membership::builtin::key::ClusterKey;
use ocf_ref::membership::builtin::loopback;
use ocf_ref::membership::daemon::DaemonClient;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Some(socket) = std::env::args().nth(1) {
        let client = DaemonClient::new(socket);
        let events = client.subscribe().await?;
        return print_events(events, usize::MAX).await;
    }

    let engines = local_cluster().await?;
    let events = engines[0].subscribe().await?;
    let stopper = Arc::clone(&engines[2]);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        println!("-- stopping node 3");
        stopper.stop();
    });
    print_events(events, 2).await
}

/// Prints the starting view and then `limit` events.
async fn print_events(
    mut events: Box<dyn Subscription>,
    limit: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(v) = events.initial_view() {
        println!(
            "current view {} members {:?}",
            v.id,
            v.member_ids().collect::<Vec<_>>()
        );
    }
    for _ in 0..limit {
        let ev = match events.next_event().await {
            Ok(Some(ev)) => ev,
            // The end: the source shut down.
            Ok(None) => break,
            // Events were dropped for a slow reader; the stream goes on after the gap.
            Err(ocf_membership::MembershipError::Lagged { missed }) => {
                println!("missed {missed} events");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        println!(
            "#{} {} view {} members {:?} joined {:?} left {:?} quorate {}",
            ev.seq,
            ev.kind.ocf_name(),
            ev.view.id,
            ev.view.member_ids().collect::<Vec<_>>(),
            ev.view.joined(),
            ev.view.left(),
            ev.view.is_quorate()
        );
    }
    Ok(())
}

/// Three built-in nodes on free loopback ports, sharing a fresh key.
async fn local_cluster() -> Result<Vec<Arc<BuiltinEngine>>, Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir();
    let configs = loopback::configs("example", 3, &dir)?;
    Ok(loopback::start(&configs, &ClusterKey::random()).await?)
}
