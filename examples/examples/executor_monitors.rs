//! An executor with recurring monitors: register resources, start them, monitor them every
//! 200 ms, and print the stream of results any number of subscribers can read.
//!
//! `cargo run -p examples --example executor_monitors`

use std::sync::Arc;
use std::time::Duration;

use ocf_ref::resources::executor::{ExecutorConfig, LocalExecutor};
use ocf_ref::resources::native::{NATIVE_PROVIDER, NativeDummy};
use ocf_ref::resources::registry::AgentRegistry;
use ocf_resources::{Action, AgentId, Executor, ExecutorAdmin, Operation, ResourceSpec};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let registry = AgentRegistry::from_env();
    registry.add_native(Arc::new(NativeDummy::new()));
    let executor = LocalExecutor::new(Arc::new(registry), ExecutorConfig::default().concurrency(4));
    let mut results = executor.subscribe().await?;

    let agent = AgentId::new(NATIVE_PROVIDER, "Dummy")?;
    let mut recurring = Vec::new();
    for name in ["web", "db"] {
        executor
            .register(ResourceSpec::new(name, agent.clone()))
            .await?;
        executor
            .execute(name, Operation::new(Action::Start, Duration::from_secs(20)))
            .await?;
        let monitor = Operation::new(Action::Monitor, Duration::from_secs(20))
            .every(Duration::from_millis(200));
        recurring.push((name, executor.start_recurring(name, monitor).await?));
    }

    // Two starts, then a few monitors of each.
    for _ in 0..8 {
        let r = match results.next_result().await {
            Ok(Some(r)) => r,
            // The executor has shut down: the stream is over.
            Ok(None) => break,
            // This reader fell behind: the stream goes on after the gap, and each
            // resource's history holds what was missed.
            Err(ocf_resources::ResourceError::Lagged { missed }) => {
                println!("(missed {missed} results; see the history)");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let summary = r.outcome().map_or_else(
            || format!("{:?}", r.result),
            ocf_resources::AgentOutcome::summary,
        );
        println!(
            "#{:<3} {:<4} {:<8} {summary}",
            r.call_id, r.resource, r.action
        );
    }
    for (name, id) in recurring {
        executor.cancel_recurring(name, id).await?;
        executor
            .execute(name, Operation::new(Action::Stop, Duration::from_secs(20)))
            .await?;
    }
    println!(
        "history of web: {} operations",
        executor.history("web").await?.len()
    );
    Ok(())
}
